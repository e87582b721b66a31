"""Synthetic obstacles (khó khăn, vướng mắc) for the demo: reported by units on open tasks, some assigned to a
resolver, some resolved, some left open for more than 30 days so that the rules escalate them.

Everything is marked `[Mô phỏng]` like the rest of the demo and drawn from a generator of its own (seed
818 + 2), so the other demo data does not change. Recorded through the obstacle use cases.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass

from civicscore import ingest, obstacles
from civicscore.runtime import Runtime
from civicscore.validation import HANOI

SEED = 818 + 2
BLOCKERS = (
    ("[Mô phỏng] Chưa có hướng dẫn về định mức chi cho nhiệm vụ", "[Mô phỏng] Đề nghị hướng dẫn định mức chi",
     "Sở Tài chính", "STC"),
    ("[Mô phỏng] Chưa kết nối được dữ liệu dân cư với hệ thống của đơn vị",
     "[Mô phỏng] Đề nghị hỗ trợ kết nối, chia sẻ dữ liệu", "Sở Khoa học và Công nghệ", "SKHCN"),
    ("[Mô phỏng] Thiếu biên chế sau sắp xếp bộ máy", "[Mô phỏng] Đề nghị bổ sung, điều động công chức",
     "Sở Nội vụ", "SNV"),
    ("[Mô phỏng] Vướng quy định về thẩm quyền phê duyệt", "[Mô phỏng] Đề nghị Ban Chỉ đạo cho ý kiến chỉ đạo",
     "Văn phòng UBND Thành phố", ""),
    ("[Mô phỏng] Chưa được bố trí kinh phí triển khai", "[Mô phỏng] Đề nghị bố trí kinh phí bổ sung",
     "Sở Tài chính", "STC"),
)
OFFICIAL = "[Mô phỏng] Phó Chánh Văn phòng UBND Thành phố"
RESOLUTION = "[Mô phỏng] Đã hướng dẫn, tháo gỡ; đơn vị tiếp tục triển khai"


@dataclass(frozen=True)
class ObstaclePlan:
    """One synthetic obstacle: when it is reported, and when (if ever) it is assigned and resolved."""

    assignment_id: str
    reported_at: dt.datetime
    blocker: int
    assigned_at: dt.datetime | None
    resolver_unit: str
    resolved_at: dt.datetime | None


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(8 + rng.randrange(9), rng.randrange(60)), HANOI)


def plan_obstacles(assignments: Sequence[ingest.AssignmentInput], outcomes: Sequence[ingest.OutcomeInput],
                   unit_codes: frozenset[str], now: dt.datetime) -> list[ObstaclePlan]:
    """Obstacles on about one in twenty of the tasks finished late or still open past their due date and a few
    others, reported while the task was open; most assigned, most of those resolved."""
    rng = random.Random(SEED)
    today = now.astimezone(HANOI).date()
    finished: dict[str, dt.date] = {}
    for o in outcomes:
        if o.status in ("completed", "cancelled"):
            day = (dt.date.fromisoformat(o.completed_on) if o.completed_on
                   else (o.reported_at or now).astimezone(HANOI).date())
            finished[o.assignment.removeprefix("assignments/")] = min(day, finished.get(
                o.assignment.removeprefix("assignments/"), day))
    plans: list[ObstaclePlan] = []
    for a in assignments:
        due, assigned = dt.date.fromisoformat(a.due_on), dt.date.fromisoformat(a.assigned_on)
        done = finished.get(a.assignment_id)
        troubled = (done is not None and done > due) or (done is None and due < today)
        if rng.random() >= (0.06 if troubled else 0.005):
            continue
        last_day = min(done or today, today) - dt.timedelta(days=1)
        if last_day <= assigned:
            continue
        reported_on = assigned + dt.timedelta(days=rng.randint(1, max(1, (last_day - assigned).days)))
        reported_at = _at(min(reported_on, last_day), rng)
        if reported_at >= now:
            continue
        blocker = rng.randrange(len(BLOCKERS))
        assigned_at = resolved_at = None
        if rng.random() < 0.7:
            assigned_at = _at(reported_at.date() + dt.timedelta(days=rng.randint(1, 10)), rng)
            if rng.random() < 0.7:
                resolved_at = _at(assigned_at.date() + dt.timedelta(days=rng.randint(3, 40)), rng)
        # Keep the story consistent: resolved before the task was finished, and nothing in the future.
        if resolved_at is not None and done is not None and resolved_at.date() >= done:
            resolved_at = _at(done - dt.timedelta(days=1), rng)
        if resolved_at is not None and (resolved_at >= now or assigned_at is None or resolved_at <= assigned_at):
            resolved_at = None
        if assigned_at is not None and assigned_at >= now:
            assigned_at = resolved_at = None
        code = BLOCKERS[blocker][3]
        plans.append(ObstaclePlan(a.assignment_id, reported_at, blocker, assigned_at,
                                  code if code in unit_codes else "", resolved_at))
    return plans


def record_obstacles(runtime: Runtime, plans: Sequence[ObstaclePlan], actor: str) -> int:
    """Report, assign and resolve through the obstacle use cases, in the order of time; how many were reported.
    Reported before the tasks' outcomes are stored, while the tasks are still open."""
    events = sorted([(p.reported_at, 0, i) for i, p in enumerate(plans)]
                    + [(p.assigned_at, 1, i) for i, p in enumerate(plans) if p.assigned_at is not None]
                    + [(p.resolved_at, 2, i) for i, p in enumerate(plans) if p.resolved_at is not None])
    names: dict[int, str] = {}
    for moment, kind, index in events:
        plan = plans[index]
        description, request, requested_of, _ = BLOCKERS[plan.blocker]
        if kind == 0:
            found = obstacles.report_obstacle(
                runtime.store, f"assignments/{plan.assignment_id}", description=description, request=request,
                requested_of=requested_of, actor=actor, now=moment)
            names[index] = obstacles.obstacle_name(found)
        elif kind == 1:
            obstacles.assign_obstacle(
                runtime.store, names[index], resolver_unit=f"units/{plan.resolver_unit}" if plan.resolver_unit else "",
                resolver_official="" if plan.resolver_unit else OFFICIAL, actor=actor, now=moment)
        else:
            obstacles.resolve_obstacle(runtime.store, names[index], resolution=RESOLUTION, actor=actor, now=moment)
    return len(plans)
