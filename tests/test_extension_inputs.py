"""Effective due dates in the evaluation inputs, on SQLite and PostgreSQL: the store's SQL against the
definition in `civicscore.domain.extensions` on random data, the quarter-end boundary, migration 0011,
the inputs digest of units without extensions, and golden cases that list assignments."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect

from civicscore.domain.canonical import canonical_json, digest_of, sha256_hex
from civicscore.domain.extensions import Approval, TaskHistory, effective_due_on, quarter_inputs
from civicscore.domain.model import (
    ExtendedTask,
    ExtensionStatus,
    OutcomeStatus,
    Quality,
    TaskCounts,
    UnitFacts,
    UnitKind,
)
from civicscore.domain.periods import HANOI, Quarter
from civicscore.evaluate import active_units, gather_fact_groups, gather_facts
from civicscore.ruleset import load_ruleset
from civicscore.ruleset.casefile import CaseFileInvalid, read_case_file
from civicscore.store.base import NewExtension
from civicscore.store.connection import create_store_engine
from civicscore.store.sql import SqlStore, open_store
from tests.postgres_support import database_url_fixture
from tests.test_ruleset import rule_files
from tests.test_store import NOW, at, done, migrate, report, task, unit

database_url = database_url_fixture()

QUARTERS = (Quarter(2026, 1), Quarter(2026, 2), Quarter(2026, 3))


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    opened = open_store(database_url, clock=lambda: NOW)
    try:
        yield opened
    finally:
        opened.close()


def _request(store: SqlStore, assignment_id: str, due_on: dt.date, asked_at: dt.datetime) -> int:
    new = NewExtension(assignment_id=assignment_id, requested_due_on=due_on, reason="Chờ thẩm định",
                       requested_by="tester", requested_at=asked_at)
    return store.request_extension(new, check=lambda target: None).extension.extension_id


def _approve(store: SqlStore, assignment_id: str, due_on: dt.date, decided_at: dt.datetime) -> Approval:
    extension_id = _request(store, assignment_id, due_on, decided_at - dt.timedelta(days=1))
    store.decide_extension(extension_id, approve=True, reason="Đồng ý", decided_by="committee", at=decided_at)
    return Approval(extension_id, due_on, decided_at)


Inputs = tuple[dict[str, TaskCounts], dict[str, list[tuple[str, dt.date, int, int]]], dict[str, list[ExtendedTask]]]


def _store_inputs(store: SqlStore, quarter: Quarter) -> Inputs:
    overdue = {code: sorted((t.assignment_id, t.due_on, t.days_overdue, t.reminders) for t in tasks)
               for code, tasks in store.open_overdue(end=quarter.end).items()}
    return (store.task_counts(start=quarter.start, end=quarter.end), overdue,
            store.extended_tasks(start=quarter.start, end=quarter.end))


def test_the_sql_follows_the_definition_on_random_histories(store: SqlStore) -> None:
    rng = random.Random(20261205)
    store.upsert_units([unit("SNV"), unit("STP"), unit("P-HOANKIEM", UnitKind.WARD)])
    codes = ("SNV", "STP", "P-HOANKIEM")
    first, last = dt.date(2026, 1, 5), dt.date(2026, 9, 25)
    histories: dict[str, dict[str, TaskHistory]] = defaultdict(dict)
    tasks, reports = [], []
    for n in range(90):
        code = codes[n % 3]
        aid = f"A{n:03d}"
        due = first + dt.timedelta(days=rng.randrange((last - first).days))
        tasks.append(task(aid, code, due))
        kind = rng.choice(("none", "open", "done", "done", "done", "cancelled"))
        status, completed_on, reworked, reminders = None, None, False, 0
        if kind == "open":
            status, reminders = OutcomeStatus.IN_PROGRESS, rng.randrange(6)
            reports.append(report(f"{aid}-r", aid, status, at(10, 1), reminders=reminders))
        elif kind == "cancelled":
            status = OutcomeStatus.CANCELLED
            reports.append(report(f"{aid}-r", aid, status, at(10, 1)))
        elif kind == "done":
            status, reworked = OutcomeStatus.COMPLETED, rng.random() < 0.2
            completed_on = min(due + dt.timedelta(days=rng.randrange(-20, 40)), dt.date(2026, 9, 30))
            completed_on = max(completed_on, dt.date(2026, 1, 5))
            reports.append(done(f"{aid}-r", aid, completed_on, at(10, 1),
                                quality=Quality.RETURNED_FOR_REWORK if reworked else Quality.ACCEPTED))
        histories[code][aid] = TaskHistory(aid, due, status, completed_on, reworked, reminders)
    store.upsert_assignments(tasks)
    store.record_outcomes(reports)
    # Extensions on a third of the assignments: approvals around the quarters' ends (the last and the
    # first instant of a quarter among them), refusals, pending and superseded requests.
    boundaries = [q.closes_at for q in QUARTERS]
    for n in range(0, 90, 3):
        aid, code = f"A{n:03d}", codes[n % 3]
        history = histories[code][aid]
        approvals = []
        for _ in range(rng.randrange(1, 4)):
            new_due = history.due_on + dt.timedelta(days=rng.randrange(-10, 60))
            if rng.random() < 0.3:
                edge = rng.choice(boundaries)
                decided = edge - dt.timedelta(microseconds=1) if rng.random() < 0.5 else edge
            else:
                decided = dt.datetime.combine(history.due_on + dt.timedelta(days=rng.randrange(-30, 60)),
                                              dt.time(rng.randrange(24)), HANOI)
            fate = rng.choice(("approve", "approve", "refuse", "pending"))
            if fate == "approve":
                approvals.append(_approve(store, aid, new_due, decided))
            elif fate == "refuse":
                refused = _request(store, aid, new_due, decided)
                store.decide_extension(refused, approve=False, reason="Không", decided_by="committee", at=decided)
            else:
                _request(store, aid, new_due, decided)  # pending, or superseded by the next request
        histories[code][aid] = dataclasses.replace(history, approvals=tuple(approvals))
    for quarter in QUARTERS:
        counts, overdue, extended = _store_inputs(store, quarter)
        expected = {code: quarter_inputs(list(histories[code].values()), quarter) for code in codes}
        assert counts == {code: e.counts for code, e in expected.items() if e.counts.due}, quarter
        assert overdue == {code: sorted((t.assignment_id, t.due_on, t.days_overdue, t.reminders) for t in e.overdue)
                           for code, e in expected.items() if e.overdue}, quarter
        assert extended == {code: list(e.extended) for code, e in expected.items() if e.extended}, quarter
        every_overdue = store.open_overdue(end=quarter.end)
        for chosen in ([], ["STP"], ["P-HOANKIEM", "SNV"], ["NOBODY", "STP", "SNV"]):  # EvaluatePeriod's groups
            # each chosen unit's, as the whole has it; others may come too (PostgreSQL: those in between)
            some_counts = store.task_counts(start=quarter.start, end=quarter.end, unit_codes=chosen)
            some_overdue = store.open_overdue(end=quarter.end, unit_codes=chosen)
            for some, whole in ((some_counts, counts), (some_overdue, every_overdue)):
                assert {code: value for code, value in some.items() if code in chosen} == {
                    code: value for code, value in whole.items() if code in chosen}, (quarter, chosen)
                assert all(whole[code] == value for code, value in some.items()), (quarter, chosen)
        due, _ = store.period_figures(start=quarter.start, end=quarter.end, period=str(quarter))
        assert due == sum(e.counts.due for e in expected.values()), quarter
    assert any(extended for *_, extended in (_store_inputs(store, q) for q in QUARTERS))
    units = list(active_units(store))
    for quarter in QUARTERS:  # EvaluatePeriod gathers the facts a group of units at a time
        whole = gather_facts(store, quarter, units)
        for sizes, shape in (((1,), [1, 1, 1]), ((1, 2), [1, 2]), ((2, 1), [2, 1]), ((1, 8), [1, 2]), ((3,), [3])):
            groups = list(gather_fact_groups(store, quarter, units, sizes=sizes))
            assert [len(group) for group in groups] == shape
            assert [facts for group in groups for facts in group] == whole


def test_an_approval_counts_until_the_last_instant_of_the_quarter(store: SqlStore) -> None:
    q1 = Quarter(2026, 1)
    store.upsert_units([unit("SNV")])
    store.upsert_assignments([task("LATE", "SNV", dt.date(2026, 3, 10)), task("OPEN", "SNV", dt.date(2026, 3, 1))])
    store.record_outcomes([done("LATE-done", "LATE", dt.date(2026, 3, 20), at(4, 1)),
                           report("OPEN-open", "OPEN", OutcomeStatus.IN_PROGRESS, at(4, 1), reminders=2)])
    assert store.task_counts(start=q1.start, end=q1.end) == {"SNV": TaskCounts(due=2, completed=1, on_time=0, late=1)}
    # decided at 23:59:59.999999 on 31 March, Hanoi time: in force for Q1
    last = q1.closes_at - dt.timedelta(microseconds=1)
    late = _approve(store, "LATE", dt.date(2026, 3, 25), last)
    assert store.task_counts(start=q1.start, end=q1.end) == {"SNV": TaskCounts(due=2, completed=1, on_time=1, late=0)}
    # decided at midnight: Q2's, not Q1's; it moves OPEN out of Q1 from Q2 on only
    opened = _approve(store, "OPEN", dt.date(2026, 4, 20), q1.closes_at)
    assert store.open_overdue(end=q1.end)["SNV"][0].due_on == dt.date(2026, 3, 1)
    assert store.extended_tasks(start=q1.start, end=q1.end) == {
        "SNV": [ExtendedTask("LATE", dt.date(2026, 3, 10), dt.date(2026, 3, 25), late.extension_id)]}
    q2 = Quarter(2026, 2)
    assert store.task_counts(start=q2.start, end=q2.end) == {"SNV": TaskCounts(due=1)}
    assert "SNV" not in store.open_overdue(end=dt.date(2026, 4, 19))
    assert store.extended_tasks(start=q2.start, end=q2.end) == {
        "SNV": [ExtendedTask("OPEN", dt.date(2026, 3, 1), dt.date(2026, 4, 20), opened.extension_id)]}
    # the latest approval wins even when its date is earlier: back to before the completion
    _approve(store, "LATE", dt.date(2026, 3, 15), dt.datetime(2026, 3, 31, 23, 0, tzinfo=HANOI))
    assert store.task_counts(start=q1.start, end=q1.end)["SNV"].late == 0  # decided before the other one
    _approve(store, "LATE", dt.date(2026, 3, 15), last)  # same instant as the first: the later request wins
    assert store.task_counts(start=q1.start, end=q1.end)["SNV"].late == 1
    records = store.list_extensions(assignment_id="LATE").items
    assert [r.status for r in records] == [ExtensionStatus.APPROVED] * 3
    assert records[0].effective_due_on == dt.date(2026, 3, 15)
    as_of_q1 = store.list_extensions(assignment_id="OPEN", as_of=q1.closes_at).items[0]
    assert (as_of_q1.original_due_on, as_of_q1.effective_due_on) == (dt.date(2026, 3, 1), dt.date(2026, 3, 1))


def test_migration_0011_adds_the_extensions_table_and_removes_it(database_url: str) -> None:
    def tables() -> set[str]:
        engine = create_store_engine(database_url)
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    migrate(database_url, "0010")
    assert "assignment_extensions" not in tables() and "credentials" in tables()
    migrate(database_url, "0011")
    engine = create_store_engine(database_url)
    try:
        found = inspect(engine)
        assert {c["name"] for c in found.get_columns("assignment_extensions")} == {
            "id", "assignment_id", "requested_due_on", "due_on_at_request", "reason", "requested_by", "requested_at",
            "status", "decision_reason", "decided_by", "decided_at", "superseded_by"}
        assert {i["name"] for i in found.get_indexes("assignment_extensions")} == {
            "ix_assignment_extensions_assignment_id", "ix_assignment_extensions_status"}
        assert {fk["referred_table"] for fk in found.get_foreign_keys("assignment_extensions")} == {
            "assignments", "assignment_extensions"}
    finally:
        engine.dispose()
    migrate(database_url, "0010", down=True)
    assert "assignment_extensions" not in tables()
    open_store(database_url).close()  # and up to head again
    assert "assignment_extensions" in tables()


def test_units_without_extensions_keep_their_inputs_digest() -> None:
    facts = UnitFacts("SNV", UnitKind.DEPARTMENT, "departments", "2026-Q3", TaskCounts(due=5, completed=5, on_time=5))
    # the text, and so the digest stored before extensions existed: the fields of then, no `extended`
    before = {"block": "departments", "counts": {"completed": 5, "due": 5, "late": 0, "on_time": 5, "reworked": 0},
              "measurements": [], "overdue": [], "period": "2026-Q3", "previous": None, "under_review": False,
              "unit_code": "SNV", "unit_kind": "department"}
    assert canonical_json(facts) == json.dumps(before, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert digest_of(facts) == sha256_hex(canonical_json(facts))
    extended = dataclasses.replace(facts, extended=(ExtendedTask("T1", dt.date(2026, 8, 10), dt.date(2026, 8, 31), 7),))
    assert '"extended":[{"assignment_id":"T1","due_on":"2026-08-31","extension_id":7' in canonical_json(extended)
    assert digest_of(extended) != digest_of(facts)


def test_effective_due_on_takes_the_latest_approval_before_an_instant() -> None:
    noon = dt.datetime(2026, 2, 5, 12, tzinfo=HANOI)
    first, second = Approval(1, dt.date(2026, 3, 15), noon), Approval(2, dt.date(2026, 2, 15), noon)
    original = dt.date(2026, 2, 10)
    assert effective_due_on(original, [first, second], before=noon) == original
    assert effective_due_on(original, [first, second], before=noon + dt.timedelta(microseconds=1)) == second.due_on
    assert effective_due_on(original, [second, first], before=Quarter(2026, 1).closes_at) == second.due_on


CASE_HEADER = "defaults:\n  period: 2026-Q1\ncases:\n"


def _case_problems(body: str) -> list[str]:
    ruleset = load_ruleset(rule_files())
    with pytest.raises(CaseFileInvalid) as invalid:
        read_case_file("tests/extension_cases.yaml", CASE_HEADER + body, ruleset)
    return [issue.message for issue in invalid.value.issues]


def test_case_files_list_assignments_with_their_extensions() -> None:
    ruleset = load_ruleset(rule_files())
    case = read_case_file("tests/ok.yaml", CASE_HEADER + """  - name: listed
    assignments:
      - {id: T1, due_on: 2026-02-10, completed_on: 2026-02-20, rework: true,
         extensions: [{due_on: 2026-02-28, approved_on: 2026-02-05}]}
      - {id: T2, due_on: "2026-03-01", status: in_progress, reminders: 4}
      - {id: T3, due_on: 2026-03-02, status: cancelled}
    expect: {grade: not_assessable}
""", ruleset)[0]
    assert case.facts.counts == TaskCounts(due=2, completed=1, on_time=1, late=0, reworked=1)
    assert [(t.assignment_id, t.days_overdue, t.reminders) for t in case.facts.overdue] == [("T2", 30, 4)]
    assert case.facts.extended == (ExtendedTask("T1", dt.date(2026, 2, 10), dt.date(2026, 2, 28), 1),)


@pytest.mark.parametrize(("body", "message"), [
    ("  - name: both\n    counts: {due: 1}\n    assignments: [{id: T1, due_on: 2026-02-10}]\n"
     "    expect: {grade: good}\n",
     "gives both `counts` and `assignments`"),
    ("  - name: neither\n    expect: {grade: good}\n", "has no task facts: add `counts`"),
    ("  - name: overdue\n    assignments: [{id: T1, due_on: 2026-02-10}]\n    overdue: [{id: T1, days_overdue: 3}]\n"
     "    expect: {grade: good}\n", "is worked out from `assignments`"),
    ("  - name: twice\n    assignments: [{id: T1, due_on: 2026-02-10}, {id: T1, due_on: 2026-02-11}]\n"
     "    expect: {grade: good}\n", "assignment `T1` of case `twice` is already listed"),
    ("  - name: no-date\n    assignments: [{id: T1, due_on: 10/02/2026}]\n    expect: {grade: good}\n",
     "`due_on` of assignment `T1` of case `no-date` must be a date"),
    ("  - name: unfinished\n    assignments: [{id: T1, due_on: 2026-02-10, status: completed}]\n"
     "    expect: {grade: good}\n", "is completed: add `completed_on`"),
    ("  - name: open-but-done\n    assignments: [{id: T1, due_on: 2026-02-10, status: in_progress, "
     "completed_on: 2026-02-01}]\n    expect: {grade: good}\n", "is in_progress: leave `completed_on` out"),
    ("  - name: bad-extension\n    assignments: [{id: T1, due_on: 2026-02-10, extensions: [{due_on: 2026-03-01}]}]\n"
     "    expect: {grade: good}\n", "is missing `approved_on`"),
    ("  - name: empty\n    assignments: []\n    expect: {grade: good}\n", "is empty; list at least one assignment"),
])
def test_case_file_mistakes_about_assignments_are_named(body: str, message: str) -> None:
    problems = _case_problems(body)
    assert any(message in problem for problem in problems), problems
