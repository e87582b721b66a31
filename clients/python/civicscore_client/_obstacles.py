"""Obstacle calls (khó khăn, vướng mắc): a unit reports what blocks an assignment, the committee office
names who resolves it and closes it with a resolution."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from civicscore_api.v1 import obstacles_pb2
from civicscore_client._calls import new_idempotency_key
from civicscore_client._connection import Connection
from civicscore_client._names import assignment_name, join_filter, period_or_dates, unit_name

STATUSES = ("open", "assigned", "resolved", "unresolved")


def obstacle_name(name: str) -> str:
    """`assignments/{id}/obstacles/{n}` as given, or from the short form `{id}/{n}` (ids hold no `/`)."""
    name = name.strip()
    if name.startswith("assignments/"):
        return name
    assignment, _, number = name.partition("/")
    return f"assignments/{assignment}/obstacles/{number}"


class ObstacleCalls(Connection):
    """ObstacleService."""

    def report_obstacle(self, assignment: str, description: str, request: str, requested_of: str = "", *,
                        idempotency_key: str | None = None, timeout: float | None = None) -> obstacles_pb2.Obstacle:
        """Report what blocks an assignment (`description`), what the unit asks for (`request`) and from whom.

        Retried after a lost reply with the same idempotency key (a fresh one unless given): recorded once.
        """
        message = obstacles_pb2.ReportObstacleRequest(
            assignment=assignment_name(assignment), description=description, request=request,
            requested_of=requested_of, idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._obstacles.ReportObstacle, message, timeout=timeout).obstacle

    def assign_obstacle(self, name: str, *, unit: str = "", official: str = "", idempotency_key: str | None = None,
                        timeout: float | None = None) -> obstacles_pb2.Obstacle:
        """Name who resolves an obstacle: a unit (`SNV` or `units/SNV`) or an official (free text)."""
        message = obstacles_pb2.AssignObstacleRequest(
            name=obstacle_name(name), resolver_unit=unit_name(unit) if unit else "", resolver_official=official,
            idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._obstacles.AssignObstacle, message, timeout=timeout).obstacle

    def resolve_obstacle(self, name: str, resolution: str, *, idempotency_key: str | None = None,
                         timeout: float | None = None) -> obstacles_pb2.Obstacle:
        """Close an obstacle with a required resolution."""
        message = obstacles_pb2.ResolveObstacleRequest(
            name=obstacle_name(name), resolution=resolution, idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._obstacles.ResolveObstacle, message, timeout=timeout).obstacle

    def get_obstacle(self, name: str, *, timeout: float | None = None) -> obstacles_pb2.Obstacle:
        """One obstacle, `assignments/{id}/obstacles/{n}` or `{id}/{n}`."""
        message = obstacles_pb2.GetObstacleRequest(name=obstacle_name(name))
        return self._calls.unary(self._obstacles.GetObstacle, message, timeout=timeout).obstacle

    def list_obstacles(self, *, assignment: str | None = None, unit: str | None = None, status: str | None = None,
                       age: str | None = None, reported_in: str | None = None, resolved_in: str | None = None,
                       filter: str = "", timeout: float | None = None) -> Iterator[obstacles_pb2.Obstacle]:
        """Every obstacle matching, oldest first: of one assignment, of a unit, in a status (`unresolved`: open
        or assigned), by age in days (`">30"`, `"<=7"`), reported or resolved in a quarter or a date range."""
        age_term = ""
        if age:
            age_term = "age" + age.strip().replace(" ", "")
            if age_term[3:4] not in (">", "<", "="):
                age_term = "age=" + age_term[3:]
        query = join_filter(
            f"unit={unit_name(unit)}" if unit else "",
            f"status={status.lower()}" if status else "",
            age_term,
            f"reported_in={period_or_dates(reported_in)}" if reported_in else "",
            f"resolved_in={period_or_dates(resolved_in)}" if resolved_in else "",
            filter,
        )
        parent = assignment_name(assignment) if assignment else ""

        def fetch(token: str) -> tuple[Sequence[obstacles_pb2.Obstacle], str]:
            message = obstacles_pb2.ListObstaclesRequest(parent=parent, page_size=1000, page_token=token, filter=query)
            reply = self._calls.unary(self._obstacles.ListObstacles, message, timeout=timeout)
            return reply.obstacles, reply.next_page_token

        return self._calls.pages(fetch)
