"""The engine's memo (engine.memo): a fact is answered from memory only with what durable_rules itself answers.

In this process, against the real durable_rules adapter: random facts near every threshold of the default
rules, the whole default evaluation with and without the memo, and definitions the memo must refuse to read.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from civicscore.domain.canonical import canonical_json
from civicscore.engine.durable_adapter import DurableRunner
from civicscore.engine.evaluator import UnitEvaluator
from civicscore.engine.memo import MemoRunner, fields_read
from civicscore.ruleset import load_ruleset
from civicscore.ruleset.fields import FACT_FIELDS, FieldType
from tests.test_engine import rule_files, varied_units

RULESET = load_ruleset(rule_files())
COMPILED = RULESET.compile()
DEFINITION = COMPILED.definition[COMPILED.name]


def literals(expression: Any, found: dict[str, set[Any]]) -> None:
    """Each field's values compared with in a pattern expression, into `found`."""
    if isinstance(expression, list):
        for part in expression:
            literals(part, found)
        return
    for key, argument in expression.items():
        if key in ("$and", "$or"):
            literals(argument, found)
        elif key == "$iany":
            for field, inner in argument.items():
                found.setdefault(field, set()).add(inner["$i"])
        elif key.startswith("$"):
            for field, value in argument.items():
                found.setdefault(field, set()).add(value)
        else:
            found.setdefault(key, set()).add(argument)


def _pools() -> dict[str, list[Any]]:
    """For each field a rule tests, values on and around each threshold, and of other types."""
    found: dict[str, set[Any]] = {}
    for rule in DEFINITION.values():
        literals(rule["all"][0]["m"], found)
    pools: dict[str, list[Any]] = {}
    for field, values in found.items():
        pool: list[Any] = []
        for value in values:
            pool.append(value)
            if isinstance(value, bool):
                pool.extend([not value, int(value)])
            elif isinstance(value, (int, float)):
                pool.extend([value - 1, value + 1, value - 0.001, value + 0.001, float(value), -value])
        pools[field] = sorted(set(pool), key=repr)
    return pools


POOLS = _pools()
TAGS = sorted(tag for tag in fields_read(DEFINITION) or {} if tag != COMPILED.init_tag)
TEXTS = sorted({value for values in POOLS.values() for value in values if isinstance(value, str)})


@st.composite
def facts(draw: st.DrawFn) -> dict[str, Any]:
    """A fact of some tag: each field a rule of the ruleset may test present or not, drawn from its pool; a few
    fields no rule tests, with values of their own (they must not change the answer)."""
    tag = draw(st.sampled_from(TAGS))
    fact: dict[str, Any] = {"tag": tag}
    fields = FACT_FIELDS.get(tag.split(".")[0], {})
    for name in sorted((set(fields) | set(POOLS)) - {"tag"}):
        if not draw(st.booleans()):
            continue
        if name in POOLS and draw(st.integers(0, 4)):
            options = POOLS[name]
            kind = fields[name].type if name in fields else None
            if kind is FieldType.TEXT_LIST or name in ("flags", "previous_flags", "unit_flags", "quarter_flags"):
                fact[name] = draw(st.lists(st.sampled_from(TEXTS or ["x"]), max_size=4, unique=True))
            else:
                fact[name] = draw(st.sampled_from(options))
        else:
            fact[name] = draw(st.one_of(st.integers(-5, 200), st.floats(-1, 200, allow_nan=False),
                                        st.booleans(), st.text(max_size=6)))
    fact["unit_code"] = draw(st.text(max_size=8))  # tested by no rule: may differ between like facts
    return fact


@pytest.fixture(scope="module")
def runners() -> Iterator[tuple[DurableRunner, MemoRunner]]:
    plain = DurableRunner(copy.deepcopy(COMPILED))
    memo = MemoRunner.over(DurableRunner(COMPILED), COMPILED)
    assert memo.enabled
    yield plain, memo


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sessions=st.lists(st.lists(facts(), min_size=1, max_size=12), min_size=1, max_size=4))
def test_remembered_answers_are_the_engines_own(runners: tuple[DurableRunner, MemoRunner],
                                                 sessions: list[list[dict[str, Any]]]) -> None:
    plain, memo = runners
    for session in sessions:
        plain.begin()
        memo.begin()
        try:
            expected = plain.assert_facts(session)
            assert memo.assert_facts(session) == expected
            # the same facts again, one at a time: now from memory, still the engine's answers
            assert [memo.assert_fact(fact) for fact in session] == expected
        finally:
            plain.end()
            memo.end()


def test_a_fact_like_one_seen_is_answered_without_the_engine() -> None:
    engine = DurableRunner(COMPILED)
    memo = MemoRunner.over(engine, COMPILED)
    overdue = {"tag": "overdue.score", "unit_code": "A", "assignment_id": "A-1", "days_overdue": 40, "reminders": 1}
    memo.begin()
    assert memo.assert_facts([overdue]) == [["overdue-penalty"]]
    memo.end()
    assert (memo.engine_facts, engine.sessions_used) == (1, 1)
    memo.begin()  # another unit, another assignment, the same days overdue: no session opened at all
    assert memo.assert_facts([{**overdue, "unit_code": "B", "assignment_id": "B-9"}]) == [["overdue-penalty"]]
    memo.end()
    assert (memo.engine_facts, memo.remembered_facts, engine.sessions_used) == (1, 1, 1)
    memo.begin()  # a value a rule reads differs: the engine is asked
    assert memo.assert_facts([{**overdue, "days_overdue": 0}]) == [[]]
    memo.end()
    assert (memo.engine_facts, engine.sessions_used, engine.live_sessions) == (2, 2, 0)


def test_types_and_absent_fields_are_told_apart() -> None:
    memo = MemoRunner.over(DurableRunner(COMPILED), COMPILED)
    grade = {"tag": "unit.grade", "assessable": True, "score": 95.0}
    memo.begin()
    for fact in (grade, {**grade, "assessable": 1}, {"tag": "unit.grade", "assessable": True}, {**grade, "score": 95}):
        memo.assert_fact(fact)  # one at a time: each finds those before it remembered
    memo.end()
    assert (memo.engine_facts, memo.remembered_facts) == (4, 0)
    memo.begin()
    assert memo.assert_fact({**grade, "score": 95, "unit_code": "X"}) == memo.assert_fact({**grade, "score": 95})
    memo.end()
    assert (memo.engine_facts, memo.remembered_facts) == (4, 2)


def test_the_memo_is_emptied_when_full_and_answers_the_same() -> None:
    units = varied_units("M", 60)
    plain = UnitEvaluator(RULESET, DurableRunner(copy.deepcopy(COMPILED)))
    small = MemoRunner.over(DurableRunner(COMPILED), COMPILED, max_entries=8)  # full after a few facts
    remembering = UnitEvaluator(RULESET, small)
    for unit in units:
        assert canonical_json(remembering.evaluate(unit)) == canonical_json(plain.evaluate(unit))
    assert len(small._memo) <= 8
    assert small.remembered_facts > 0


def test_whole_evaluations_with_and_without_the_memo_are_byte_identical() -> None:
    units = varied_units("W", 120)
    engine = DurableRunner(COMPILED)
    memo = MemoRunner.over(engine, COMPILED)
    plain = UnitEvaluator(RULESET, DurableRunner(copy.deepcopy(COMPILED)))
    remembering = UnitEvaluator(RULESET, memo)
    for _ in range(2):
        for unit in units:
            assert canonical_json(remembering.evaluate(unit)) == canonical_json(plain.evaluate(unit))
    asked = memo.engine_facts
    assert 0 < asked < memo.remembered_facts
    sessions = engine.sessions_used
    for unit in units:  # a third time: every fact is remembered, no session is opened
        remembering.evaluate(unit)
    assert (memo.engine_facts, engine.sessions_used) == (asked, sessions)


def test_the_fields_read_are_those_each_rules_conditions_test() -> None:
    reads = fields_read(DEFINITION)
    assert reads is not None
    expected: dict[str, set[str]] = {COMPILED.init_tag: {"tag"}}
    for rule in RULESET.rules:  # the tests each rule's conditions resolved to, as the compiler reads them
        expected.setdefault(rule.tag, {"tag"}).update(test.field for branch in rule.branches for test in branch)
    assert {tag: set(fields) for tag, fields in reads.items()} == expected
    assert COMPILED.init_tag not in MemoRunner.over(DurableRunner(COMPILED), COMPILED)._reads


@pytest.mark.parametrize("change", [
    "join", "other fact", "session state", "unknown operator", "no tag", "tag not first", "extra key",
])
def test_a_definition_the_memo_cannot_read_turns_it_off(change: str) -> None:
    definition = copy.deepcopy(DEFINITION)
    rule = definition["overdue-penalty"]
    tests = rule["all"][0]["m"]["$and"]
    if change == "join":
        rule["all"].append({"n": {"tag": "unit.flags"}})
    elif change == "other fact":
        tests.append({"$gt": {"days_overdue": {"first": "days_overdue"}}})
    elif change == "session state":
        tests.append({"reminders": {"$s": "limit"}})
    elif change == "unknown operator":
        tests.append({"$mt": {"assignment_id": "A.*"}})
    elif change == "no tag":
        del tests[0]
    elif change == "tag not first":
        tests.append(tests.pop(0))
    elif change == "extra key":
        rule["pri"] = 1
    assert fields_read(definition) is None
    memo = MemoRunner(DurableRunner(COMPILED), fields_read(definition))
    assert not memo.enabled
    fact = {"tag": "overdue.score", "days_overdue": 40, "reminders": 1}
    for _ in range(2):
        memo.begin()
        assert memo.assert_facts([fact]) == [["overdue-penalty"]]
        memo.end()
    assert (memo.engine_facts, memo.remembered_facts) == (2, 0)
