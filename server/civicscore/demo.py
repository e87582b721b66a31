"""Demo data for `make run`: Hanoi's real units with a SYNTHETIC but plausible history.

Units are the real departments (since March 2025) and communes/wards (since
July 2025) from `demo_data/hanoi-units.csv`. Everything else (assignments,
outcomes, measurements, extension requests and decisions, obstacles, officials) is
invented by a seeded generator and marked as such: ids start with `DEMO-`, titles and
reasons with `[Mô phỏng]`, the reporting system and the identity are
`demo-synthetic` and every note says so. The data goes through the normal
ingest and extension use cases, so it is validated like any city system's.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from civicscore import demo_obstacles, demo_officials, evaluate, extensions, ingest, officials
from civicscore.domain.periods import Quarter
from civicscore.runtime import Runtime
from civicscore.validation import HANOI, hanoi_today

log = logging.getLogger("civicscore.demo")
UNITS_CSV = Path(__file__).parent / "demo_data" / "hanoi-units.csv"
SYSTEM = "demo-synthetic"
NOTE = "Dữ liệu mô phỏng / synthetic demo data"
SEED = 818  # Decision 818/QĐ-UBND set up the steering committee

PAR_TASKS = (
    "Rà soát, đơn giản hóa thủ tục hành chính thuộc thẩm quyền",
    "Công bố, công khai thủ tục hành chính mới ban hành",
    "Báo cáo kết quả cải cách hành chính quý",
    "Kiện toàn tổ chức bộ máy sau sắp xếp đơn vị hành chính",
    "Tiếp nhận, xử lý phản ánh, kiến nghị của người dân",
    "Rà soát vị trí việc làm, cơ cấu ngạch công chức",
    "Kiểm tra công tác cải cách hành chính tại đơn vị trực thuộc",
    "Thực hiện kỷ luật, kỷ cương hành chính",
)
DX_TASKS = (
    "Số hóa hồ sơ, kết quả giải quyết thủ tục hành chính",
    "Cung cấp dịch vụ công trực tuyến toàn trình",
    "Triển khai thanh toán trực tuyến phí, lệ phí",
    "Kết nối, chia sẻ dữ liệu với Cơ sở dữ liệu quốc gia về dân cư",
    "Ký số văn bản đi trên hệ thống quản lý văn bản",
    "Cập nhật dữ liệu lên Hệ thống thông tin giải quyết TTHC",
)
INDICATOR_MEANS = {
    "dx.online_applications": 0.7, "dx.fully_online": 0.25, "dx.on_time_resolution": 0.96,
    "dx.records_digitised": 0.85, "dx.online_payment": 0.45, "dx.esigned_documents": 0.93,
    "dx.satisfaction": 0.9,
}
EXTENSION_REASONS = (
    "[Mô phỏng] Chờ ý kiến thẩm định của cơ quan chuyên môn",
    "[Mô phỏng] Phát sinh khối lượng hồ sơ cần rà soát bổ sung",
    "[Mô phỏng] Chờ kết nối, chia sẻ dữ liệu từ hệ thống của Bộ, ngành",
    "[Mô phỏng] Đơn vị đang kiện toàn nhân sự sau sắp xếp bộ máy",
)
APPROVAL_REASON = "[Mô phỏng] Đồng ý gia hạn; đơn vị bảo đảm hoàn thành trong hạn mới"
REFUSAL_REASON = "[Mô phỏng] Chưa đủ căn cứ gia hạn; đề nghị đơn vị tập trung hoàn thành đúng hạn"
T = TypeVar("T")


def _batches(items: Sequence[T], size: int = 5000) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _unit_inputs() -> list[ingest.UnitInput]:
    with UNITS_CSV.open(encoding="utf-8") as f:
        return [ingest.UnitInput(code=r["code"], name_vi=r["name_vi"], name_en=r["name_en"], kind=r["kind"],
                                 block=r["block"], parent="", active=True, under_review_periods=())
                for r in csv.DictReader(f)]


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(8 + rng.randrange(9), rng.randrange(60)), HANOI)


Generated = tuple[list[ingest.AssignmentInput], list[ingest.OutcomeInput], list[ingest.MeasurementInput]]


def generate(units: Sequence[ingest.UnitInput], quarters: Sequence[Quarter], today: dt.date,
             indicators: frozenset[str]) -> Generated:
    """Make assignments, outcomes and measurements for each unit and quarter; same seed, same data."""
    rng = random.Random(SEED)
    assignments: list[ingest.AssignmentInput] = []
    outcomes: list[ingest.OutcomeInput] = []
    measurements: list[ingest.MeasurementInput] = []
    for unit in units:
        # A unit's latent diligence: most are good, a few excellent, a few struggling.
        diligence = min(0.99, max(0.35, rng.gauss(0.82, 0.12)))
        per_quarter = rng.randint(24, 40) if unit.kind == "department" else rng.randint(6, 16)
        for quarter in quarters:
            span = (quarter.end - quarter.start).days
            for n in range(per_quarter):
                aid = f"DEMO-{quarter}-{unit.code}-{n + 1:03d}"
                area = "dx" if rng.random() < 0.35 else "par"
                due = quarter.start + dt.timedelta(days=rng.randrange(5, span + 1))
                assigned = due - dt.timedelta(days=rng.randint(20, 60))
                title = rng.choice(DX_TASKS if area == "dx" else PAR_TASKS)
                assignments.append(ingest.AssignmentInput(
                    assignment_id=aid, unit=f"units/{unit.code}", title=f"[Mô phỏng] {title}", area=area,
                    source_document="DEMO — dữ liệu mô phỏng", assigned_on=assigned.isoformat(),
                    due_on=due.isoformat(), priority=rng.choice(("normal", "normal", "high", "low"))))
                outcomes.extend(_outcomes_for(aid, assigned, due, diligence, today, rng))
            for indicator, mean in INDICATOR_MEANS.items():
                if rng.random() < 0.15 or indicator not in indicators:
                    continue  # not every unit reports every indicator
                denominator = float(rng.randint(40, 4000) if unit.kind == "department" else rng.randint(20, 900))
                share = min(1.0, max(0.0, rng.gauss(mean * (0.7 + 0.35 * diligence), 0.08)))
                measurements.append(ingest.MeasurementInput(
                    unit=f"units/{unit.code}", period=str(quarter), indicator=indicator,
                    numerator=float(round(denominator * share)), denominator=denominator,
                    reported_at=_at(min(today, quarter.end + dt.timedelta(days=5)), rng), reporting_system=SYSTEM))
    return assignments, outcomes, measurements


def _outcomes_for(aid: str, assigned: dt.date, due: dt.date, diligence: float, today: dt.date,
                  rng: random.Random) -> list[ingest.OutcomeInput]:
    first_report = min(today, assigned + dt.timedelta(days=rng.randint(3, 15)))
    reports = [ingest.OutcomeInput(outcome_id=f"{aid}-R1", assignment=f"assignments/{aid}", status="in_progress",
                                   completed_on="", quality="", reminders=0, reported_at=_at(first_report, rng),
                                   reporting_system=SYSTEM, note=NOTE)]
    if rng.random() < 0.02:
        cancelled_on = min(today, first_report + dt.timedelta(days=5))
        reports.append(ingest.OutcomeInput(outcome_id=f"{aid}-R2", assignment=f"assignments/{aid}",
                                           status="cancelled", completed_on="", quality="", reminders=0,
                                           reported_at=_at(cancelled_on, rng), reporting_system=SYSTEM, note=NOTE))
        return reports
    if rng.random() < diligence + 0.12:
        late_days = 0 if rng.random() < diligence else rng.randint(1, 40)
        done = max(first_report, min(today, due + dt.timedelta(days=late_days - rng.randint(0, 10))))
        reminders = 0 if done <= due else min(6, late_days // 10)
        quality = "returned_for_rework" if rng.random() < (1 - diligence) / 3 else "accepted"
        reports.append(ingest.OutcomeInput(
            outcome_id=f"{aid}-R2", assignment=f"assignments/{aid}", status="completed",
            completed_on=done.isoformat(), quality=quality, reminders=reminders,
            reported_at=_at(min(today, done + dt.timedelta(days=1)), rng), reporting_system=SYSTEM, note=NOTE))
    elif due < today:
        # most overdue tasks got a reminder or two; a few were escalated past three
        reminders = rng.choice((1, 1, 2, 2, 3, 4, 5))
        reports.append(ingest.OutcomeInput(
            outcome_id=f"{aid}-R2", assignment=f"assignments/{aid}", status="in_progress", completed_on="",
            quality="", reminders=reminders, reported_at=_at(min(today, due + dt.timedelta(days=7 * reminders)), rng),
            reporting_system=SYSTEM, note=NOTE))
    return reports


@dataclass(frozen=True)
class ExtensionPlan:
    """One synthetic extension request and, unless it stays pending, the committee's decision on it."""

    assignment_id: str
    requested_at: dt.datetime
    due_on: dt.date
    reason: str
    decision: str  # approve | refuse | "" (pending)
    decided_at: dt.datetime | None


def plan_extensions(assignments: Sequence[ingest.AssignmentInput], outcomes: Sequence[ingest.OutcomeInput],
                    now: dt.datetime) -> list[ExtensionPlan]:
    """Requests before the due date for about half of the tasks completed late, a quarter of those still
    open past their due date and a few others; most approved (a late approval now and then, after the
    quarter's end), some refused, some pending. A generator of its own: the rest of the demo is unchanged."""
    rng = random.Random(SEED + 1)
    today = hanoi_today(now)
    completed = {o.assignment.removeprefix("assignments/"): dt.date.fromisoformat(o.completed_on)
                 for o in outcomes if o.status == "completed"}
    cancelled = {o.assignment.removeprefix("assignments/") for o in outcomes if o.status == "cancelled"}
    plans: list[ExtensionPlan] = []
    for a in assignments:
        due, assigned = dt.date.fromisoformat(a.due_on), dt.date.fromisoformat(a.assigned_on)
        done = completed.get(a.assignment_id)
        late, still_open = done is not None and done > due, done is None and due < today
        if a.assignment_id in cancelled or rng.random() >= (0.5 if late else 0.25 if still_open else 0.02):
            continue
        asked_on = max(assigned + dt.timedelta(days=1), due - dt.timedelta(days=rng.randint(2, 12)))
        asked_at = _at(asked_on, rng)
        if asked_on >= due or asked_at >= now:
            continue
        if late and done is not None:
            new_due = max(done, due + dt.timedelta(days=rng.randint(5, 20)))
        else:
            new_due = due + dt.timedelta(days=rng.randint(10, 45) if still_open else rng.randint(5, 30))
        decided_at = _at(asked_on + dt.timedelta(days=rng.randint(1, 7)), rng)
        draw = rng.random()
        decision = "approve" if draw < 0.65 else "refuse" if draw < 0.88 else ""
        if decided_at >= now:
            decision = ""
        plans.append(ExtensionPlan(a.assignment_id, asked_at, new_due, rng.choice(EXTENSION_REASONS), decision,
                                   decided_at if decision else None))
    return plans


def _record_extensions(runtime: Runtime, plans: Sequence[ExtensionPlan]) -> int:
    """Ask and decide through the extension use cases, in the order of time; how many were asked."""
    events = sorted([(p.requested_at, 0, p) for p in plans]
                    + [(p.decided_at, 1, p) for p in plans if p.decided_at is not None], key=lambda e: (e[0], e[1]))
    names: dict[str, str] = {}
    for moment, kind, plan in events:
        if kind == 0:
            asked = extensions.request_extension(
                runtime.store, f"assignments/{plan.assignment_id}", due_on=plan.due_on.isoformat(),
                reason=plan.reason, actor=SYSTEM, now=moment)
            names[plan.assignment_id] = extensions.extension_name(asked.extension)
        else:
            extensions.decide_extension(
                runtime.store, names[plan.assignment_id], decision=plan.decision,
                reason=APPROVAL_REASON if plan.decision == "approve" else REFUSAL_REASON, actor=SYSTEM, now=moment)
    return len(plans)


def load_demo_data(runtime: Runtime) -> bool:
    """Load and evaluate the demo data if the database has no units; returns whether it did."""
    store = runtime.store
    if store.list_units(limit=1).items:
        log.info("database already has units; demo data not loaded")
        return False
    now = runtime.clock()
    today = hanoi_today(now)
    last = Quarter.containing(today).previous()
    quarters = [last.previous(), last]
    units = _unit_inputs()
    assignments, outcomes, measurements = generate(units, quarters, today, runtime.indicators_for(str(last)))
    ingest.upsert_units(store, units, idempotency_key="", actor=SYSTEM)
    # Officials (synthetic people, see demo_officials) before the assignments they lead.
    people = demo_officials.generate(units, quarters)
    officials.upsert_officials(store, people, idempotency_key="", actor=SYSTEM)
    assignments = demo_officials.with_leads(assignments, people)
    for chunk in _batches(assignments):
        ingest.upsert_assignments(store, chunk, idempotency_key="", actor=SYSTEM)
    # Extensions are asked before the due date, while the tasks are still open: before their outcomes.
    extension_count = _record_extensions(runtime, plan_extensions(assignments, outcomes, now))
    # Obstacles are reported while the tasks are open too (their own generator: see demo_obstacles).
    obstacle_count = demo_obstacles.record_obstacles(runtime, demo_obstacles.plan_obstacles(
        assignments, outcomes, frozenset(u.code for u in units), now), SYSTEM)
    for outcome_chunk in _batches(outcomes):
        ingest.submit_outcomes(store, outcome_chunk, now=now, idempotency_key="", actor=SYSTEM)
    for measurement_chunk in _batches(measurements):
        ingest.submit_measurements(store, measurement_chunk, now=now,
                                   indicators=runtime.indicators_for, idempotency_key="", actor=SYSTEM)
    for quarter in quarters:
        if runtime.rulesets.ruleset_for(quarter) is not None:
            evaluate.evaluate_period(store, runtime.rulesets, str(quarter), now=now, idempotency_key="", actor=SYSTEM)
    log.info("demo data loaded (SYNTHETIC): %d units, %d officials, %d assignments, %d outcomes, %d measurements, "
             "%d extension requests, %d obstacles for %s", len(units), len(people), len(assignments), len(outcomes),
             len(measurements), extension_count, obstacle_count, ", ".join(map(str, quarters)))
    return True
