"""ObstacleService: decode, call the obstacle use cases, encode (with the Obstacle message's conversion)."""

from __future__ import annotations

import datetime as dt

import grpc

from civicscore import obstacles
from civicscore.api.convert import timestamp_out
from civicscore.api.errors import handle_errors
from civicscore.api.filters import parse_filter
from civicscore.api.identity import caller
from civicscore.api.paging import decode_token, encode_token, page_size
from civicscore.domain.obstacles import ObstacleRecord, ObstacleStatus, days_open, hanoi_date
from civicscore.extensions import parse_assignment_name
from civicscore.runtime import Runtime
from civicscore_api.v1 import obstacles_pb2, obstacles_pb2_grpc

OBSTACLE_STATUSES = {
    ObstacleStatus.OPEN: obstacles_pb2.OBSTACLE_STATUS_OPEN,
    ObstacleStatus.ASSIGNED: obstacles_pb2.OBSTACLE_STATUS_ASSIGNED,
    ObstacleStatus.RESOLVED: obstacles_pb2.OBSTACLE_STATUS_RESOLVED,
}


def obstacle_out(r: ObstacleRecord, now: dt.datetime) -> obstacles_pb2.Obstacle:
    """An obstacle as the API shows it; `days_open` counts to its resolution's date, else to today (Hanoi)."""
    until = hanoi_date(r.resolved_at if r.resolved_at is not None else now)
    message = obstacles_pb2.Obstacle(
        name=obstacles.obstacle_name(r), obstacle_id=r.obstacle_id, assignment=f"assignments/{r.assignment_id}",
        unit=f"units/{r.unit_code}", assignment_title=r.assignment_title, description=r.description,
        request=r.request, requested_of=r.requested_of, reported_by=r.reported_by,
        report_time=timestamp_out(r.reported_at), status=OBSTACLE_STATUSES[r.status],
        resolver_unit=f"units/{r.resolver_unit}" if r.resolver_unit else "", resolver_official=r.resolver_official,
        assigned_by=r.assigned_by, resolution=r.resolution, resolved_by=r.resolved_by,
        days_open=max(0, days_open(r.reported_at, until)))
    if r.assigned_at is not None:
        message.assign_time.CopyFrom(timestamp_out(r.assigned_at))
    if r.resolved_at is not None:
        message.resolve_time.CopyFrom(timestamp_out(r.resolved_at))
    return message


class ObstacleServicer(obstacles_pb2_grpc.ObstacleServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def ReportObstacle(self, request: obstacles_pb2.ReportObstacleRequest, context: grpc.ServicerContext
                       ) -> obstacles_pb2.ReportObstacleResponse:
        now = self.rt.clock()
        recorded = obstacles.report_obstacle(
            self.rt.store, request.assignment, description=request.description, request=request.request,
            requested_of=request.requested_of, actor=caller(context), now=now,
            idempotency_key=request.idempotency_key)
        return obstacles_pb2.ReportObstacleResponse(obstacle=obstacle_out(recorded, now))

    @handle_errors
    def AssignObstacle(self, request: obstacles_pb2.AssignObstacleRequest, context: grpc.ServicerContext
                       ) -> obstacles_pb2.AssignObstacleResponse:
        now = self.rt.clock()
        assigned = obstacles.assign_obstacle(
            self.rt.store, request.name, resolver_unit=request.resolver_unit,
            resolver_official=request.resolver_official, actor=caller(context), now=now,
            idempotency_key=request.idempotency_key)
        return obstacles_pb2.AssignObstacleResponse(obstacle=obstacle_out(assigned, now))

    @handle_errors
    def ResolveObstacle(self, request: obstacles_pb2.ResolveObstacleRequest, context: grpc.ServicerContext
                        ) -> obstacles_pb2.ResolveObstacleResponse:
        now = self.rt.clock()
        resolved = obstacles.resolve_obstacle(
            self.rt.store, request.name, resolution=request.resolution, actor=caller(context), now=now,
            idempotency_key=request.idempotency_key)
        return obstacles_pb2.ResolveObstacleResponse(obstacle=obstacle_out(resolved, now))

    @handle_errors
    def GetObstacle(self, request: obstacles_pb2.GetObstacleRequest, context: grpc.ServicerContext
                    ) -> obstacles_pb2.GetObstacleResponse:
        found = obstacles.get_obstacle(self.rt.store, request.name)
        return obstacles_pb2.GetObstacleResponse(obstacle=obstacle_out(found, self.rt.clock()))

    @handle_errors
    def ListObstacles(self, request: obstacles_pb2.ListObstaclesRequest, context: grpc.ServicerContext
                      ) -> obstacles_pb2.ListObstaclesResponse:
        now = self.rt.clock()
        assignment_id = parse_assignment_name(request.parent, "parent") if request.parent else None
        rest, ages = obstacles.split_age(request.filter)
        wanted = obstacles.obstacle_filter(parse_filter(rest, obstacles.FILTER_FIELDS), ages, now)
        # Ages move with the day: the token is valid for the day (Hanoi) it was made on.
        scope = f"obstacles|{request.parent}|{request.filter}|{hanoi_date(now) if ages else ''}"
        page = self.rt.store.list_obstacles(
            assignment_id=assignment_id, unit_code=wanted.unit_code, statuses=wanted.statuses,
            reported_from=wanted.reported_from, reported_before=wanted.reported_before, resolved=wanted.resolved,
            after=decode_token(request.page_token, scope), limit=page_size(request.page_size))
        return obstacles_pb2.ListObstaclesResponse(obstacles=[obstacle_out(r, now) for r in page.items],
                                                   next_page_token=encode_token(page.next_cursor, scope))
