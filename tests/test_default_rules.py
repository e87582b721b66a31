"""The default ruleset's behaviour, specified as golden cases in rules/tests/default_cases.yaml.

Every case runs through a real EnginePool (durable_rules in worker processes);
the score arithmetic and text formatting are also checked as pure functions.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any

import pytest

from civicscore.domain.canonical import _reference_json, canonical_json, canonical_jsons, digest_of
from civicscore.domain.model import (
    FiredRule,
    FlagResult,
    IndicatorScore,
    TaskCounts,
    UnitEvaluation,
)
from civicscore.domain.officials import OfficialEvaluation
from civicscore.domain.scoring import ScoringParameters, combine, display_score, dx_result, task_rates
from civicscore.domain.text import (
    LANGUAGES,
    Language,
    fill_template,
    format_number,
    format_percent,
    format_value,
    round_half_away,
)
from civicscore.engine.pool import EnginePool
from civicscore.ruleset import Ruleset, load_ruleset
from civicscore.ruleset.cases import CaseRun, GoldenCase, read_case_files, run_cases

RULES = Path(__file__).resolve().parents[1] / "rules"
CASE_FILES = sorted((RULES / "tests").glob("*.yaml"))


def rule_files() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(RULES.glob("*.yaml"))}


def case_texts() -> dict[str, str]:
    """The case files as `civicscore rules test` reads them: `tests/<name>.yaml` -> text."""
    return {path.relative_to(RULES).as_posix(): path.read_text(encoding="utf-8") for path in CASE_FILES}


RULESET = load_ruleset(rule_files())
CASES = read_case_files(case_texts(), RULESET)


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return RULESET


@pytest.fixture(scope="module")
def run() -> Iterator[CaseRun]:
    """Every case evaluated once, in one call, by real worker processes (as `civicscore rules test` does)."""
    with EnginePool(load_ruleset(rule_files()), workers=2) as pool:
        yield run_cases(pool, RULESET, CASES)


@pytest.fixture(scope="module")
def results(run: CaseRun) -> dict[str, UnitEvaluation]:
    return {result.case.name: result.evaluation for result in run.results}


@pytest.fixture(scope="module")
def official_results(run: CaseRun) -> dict[str, OfficialEvaluation]:
    """The officials' evaluations, by `<case name>/<official id>`."""
    return {f"{result.case.name}/{official.official_id}": official
            for result in run.results for official in result.officials}


def test_the_default_cases_are_many() -> None:
    assert len(CASES) >= 40
    assert len(CASE_FILES) >= 1 and all(case.file.startswith("tests/") for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: GoldenCase, run: CaseRun) -> None:
    result = next(r for r in run.results if r.case is case)
    assert result.passed, "\n".join([result.headline(), *result.details()])


def test_coverage_of_the_default_rules_is_complete(run: CaseRun, ruleset: Ruleset) -> None:
    """Every rule fires in some case and not in another; every numeric threshold is crossed both
    ways and met exactly. The officials' rules count as silent only in cases with officials (or, for
    head rules, with a head), so the unit-only cases cannot cover them."""
    coverage = run.coverage
    assert {rule.rule_id for rule in coverage.rules} == ruleset.rule_ids
    assert coverage.complete, "\n".join(coverage.summary())
    assert not coverage.never_at_threshold, "\n".join(coverage.summary())
    assert len(coverage.thresholds) >= 18
    with_officials = {case.name for case in CASES if case.officials}
    people_rules = [rule for rule in ruleset.rules if rule.fact in ("official", "head")]
    assert {rule.rule_id for rule in people_rules} == {"head-accountability", "individual-praise",
                                                       "individual-reminder"}
    for rule in (r for r in coverage.rules if r.rule_id in {p.rule_id for p in people_rules}):
        assert set(rule.fired_in) <= with_officials and set(rule.silent_in) <= with_officials, rule
    for threshold in coverage.thresholds:
        if threshold.rule_id in {rule.rule_id for rule in people_rules}:
            assert threshold.both_sides and threshold.at_threshold_in, threshold.describe()


def test_every_rule_fires_in_some_case(results: dict[str, UnitEvaluation],
                                       official_results: dict[str, OfficialEvaluation], ruleset: Ruleset) -> None:
    fired = {rule.rule_id for result in [*results.values(), *official_results.values()]
             for rule in result.fired_rules}
    assert fired == ruleset.rule_ids


def test_every_flag_and_grade_appears_in_some_case(results: dict[str, UnitEvaluation],
                                                   official_results: dict[str, OfficialEvaluation],
                                                   ruleset: Ruleset) -> None:
    flags = {f.flag for r in [*results.values(), *official_results.values()] for f in r.flags}
    assert flags == {f.flag for f in ruleset.flags}
    assert {r.grade for r in results.values()} == {g.grade for g in ruleset.grades}


def test_a_head_accountability_flag_carries_the_units_reasons(official_results: dict[str, OfficialEvaluation]
                                                              ) -> None:
    head = official_results["criticised-unit-head-accountability/H1"]
    (flag,) = head.flags
    assert (flag.flag, flag.kind, flag.level, flag.label_vi) == (
        "head_accountability", "criticism", 2, "Trách nhiệm người đứng đầu")
    assert [r.rule_id for r in flag.reasons] == [
        "head-accountability", "reminder-low-timeliness", "criticism-low-timeliness"]
    assert [r.rule_id for r in head.fired_rules] == ["head-accountability"]
    assert (head.position, head.headed_units, head.unit_code) == ("head", ("SNV",), "SNV")
    left = official_results["head-who-left-the-day-before-the-quarter-end-nothing/H1"]
    assert (left.position, left.headed_units, left.flags) == ("", (), ())


def test_flags_group_every_rule_that_raised_them(results: dict[str, UnitEvaluation]) -> None:
    result = results["not-assessable-overdue-rules-still-apply"]
    reminder = next(f for f in result.flags if f.flag == "reminder")
    assert [r.rule_id for r in reminder.reasons] == ["reminder-long-overdue"]
    assert reminder.kind == "criticism" and reminder.level == 1 and reminder.label_vi == "Nhắc nhở"
    twice = results["criticised-two-quarters-explanation-required"]
    criticism = next(f for f in twice.flags if f.flag == "criticism")
    assert [r.rule_id for r in criticism.reasons] == ["criticism-low-timeliness"]


def test_fired_rules_carry_source_fact_and_values(results: dict[str, UnitEvaluation]) -> None:
    result = results["timeliness-72.5-criticism"]
    rule = next(r for r in result.fired_rules if r.rule_id == "criticism-low-timeliness")
    assert rule.source.startswith("flags.yaml:")
    assert rule.fact == "unit"
    assert rule.flag == "criticism"
    assert rule.values == {"assessable": 1.0, "timeliness": 0.725}
    overdue = results["nothing-due-no-score"].fired_rules
    assert [r.fact for r in overdue if r.rule_id == "reminder-long-overdue"] == ["assignment T1"]


def test_evaluation_records_ruleset_and_inputs(results: dict[str, UnitEvaluation], ruleset: Ruleset) -> None:
    result = results["perfect-department-no-dx"]
    assert (result.ruleset_version, result.ruleset_digest) == (ruleset.version, ruleset.digest)
    assert result.inputs_digest == digest_of(next(c.facts for c in CASES if c.name == "perfect-department-no-dx"))
    assert result.grade_vi == "Hoàn thành xuất sắc nhiệm vụ" and result.grade_en == "Excellent"
    assert "timestamp" not in canonical_json(result)


# ---- the arithmetic and formatting, as pure functions ---------------------------------------


def params(**changes: float) -> ScoringParameters:
    base = dict(completion_weight=0.3, timeliness_weight=0.4, quality_weight=0.3, late_credit=0.75,
                rework_penalty=0.25, task_points=70.0, dx_points=30.0, penalty_cap=10.0)
    return ScoringParameters(**{**base, **changes})


def test_ruleset_scoring_numbers_are_those_of_default_rules(ruleset: Ruleset) -> None:
    assert ruleset.scoring == params()
    assert ruleset.min_due == 5


def test_task_rates_by_hand() -> None:
    rates = task_rates(TaskCounts(due=20, completed=16, on_time=10, late=6, reworked=2), params())
    assert rates is not None
    assert (rates.completion, rates.timeliness, rates.quality) == (0.8, 0.725, 0.96875)
    assert rates.task_result == pytest.approx(0.820625)
    assert task_rates(TaskCounts(), params()) is None


def test_dx_result_is_a_weighted_mean_and_none_without_indicators() -> None:
    assert dx_result([(6, 0.875), (4, 1.0), (3, 0.5)]) == pytest.approx(10.75 / 13)
    assert dx_result([]) is None


def test_score_split_penalty_and_floor() -> None:
    rates = task_rates(TaskCounts(due=10, completed=10, on_time=10), params())
    assert rates is not None
    assert combine(rates, None, 0.0, params()).score == 100.0
    assert combine(rates, 0.5, 4.0, params()).score == 70 + 15 - 4
    harsh = params(penalty_cap=500.0)
    assert combine(rates, None, 400.0, harsh).score == 0.0


def test_display_rounding_is_half_away_from_zero() -> None:
    assert display_score(2.675) == 2.68
    assert display_score(82.0625) == 82.06
    assert display_score(89.995) == 90.0
    assert round_half_away(-2.675) == -2.68


def test_vietnamese_and_english_number_formats() -> None:
    assert format_percent(0.725, "vi") == "72,5%"
    assert format_percent(0.725, "en") == "72.5%"
    assert format_percent(0.8, "vi") == "80%"
    assert format_number(1234567.891, "vi") == "1.234.567,89"
    assert format_number(1234567.891, "en") == "1,234,567.89"
    text = "Tỷ lệ đúng hạn {timeliness:%} thấp hơn ngưỡng {threshold:%}, điểm {score} {{x}}"
    assert fill_template(text, {"timeliness": 0.725, "threshold": 0.8}, "vi") == (
        "Tỷ lệ đúng hạn 72,5% thấp hơn ngưỡng 80%, điểm — {x}"
    )


# ---- canonical JSON: the bytes stored, compared and digested ---------------------------------


def representative_evaluation() -> UnitEvaluation:
    """An evaluation with every kind of value: shared fired rules, escapes, emoji, awkward floats."""
    penalty = FiredRule(
        rule_id="overdue-penalty",
        source="scoring.yaml:89",
        fact="assignment SNV-2026-017",
        values={"days_overdue": 45.0},
        reason_vi="Nhiệm vụ SNV-2026-017 quá hạn 45 ngày chưa hoàn thành: trừ 2 điểm",
        reason_en="Assignment SNV-2026-017 is 45 days overdue and still open: 2 points off",
    )
    grade = FiredRule(
        "grade.completed", "grades.yaml:30", "unit", {"score": 66.15625, "due": 20.0},
        "Điểm 66,16 từ 50 đến dưới 70", "Score 66.16 is from 50 to below 70",
    )
    timeliness = FiredRule(
        "criticism-low-timeliness", "flags.yaml:51", "unit", {"timeliness": 0.725, "assessable": 1.0},
        "Tỷ lệ đúng hạn 72,5% thấp hơn ngưỡng 80%", "On-time rate 72.5% is below the 80% threshold", "criticism",
    )
    reminders = FiredRule(
        "criticism-many-reminders", "flags.yaml:60", "assignment SNV-2026-017", {"reminders": 5.0},
        'Nhiệm vụ "SNV-2026-017" bị đôn đốc 5 lần\n(quá 3) \\ \U0001f4cc', "Reminded 5 times\t\x01 > 3", "criticism",
    )
    return UnitEvaluation(
        unit_code="SNV",
        period="2026-Q3",
        assessable=True,
        score=66.16,
        grade="completed",
        grade_vi="Hoàn thành nhiệm vụ",
        grade_en="Completed",
        counts=TaskCounts(due=20, completed=16, on_time=10, late=6, reworked=2),
        open_overdue=1,
        indicators=(
            IndicatorScore(
                "dx.online_applications", "Tỷ lệ hồ sơ nộp trực tuyến", "Applications submitted online",
                0.1 + 0.2, 0.8, 0.37500000000000006, 6, 1e-07, True,
            ),
            IndicatorScore(
                "dx.fully_online", "Tỷ lệ hồ sơ xử lý trực tuyến toàn trình", "Applications processed fully online",
                -0.0, None, 0.0, 4, 1e16, False,
            ),
        ),
        penalty=2.0,
        fired_rules=(penalty, grade, timeliness, reminders),
        flags=(FlagResult("criticism", "criticism", 2, "Phê bình", "Criticism", (timeliness, reminders)),),
        ruleset_version="2026.1",
        ruleset_digest="ab" * 32,
        inputs_digest="cd" * 32,
    )


# The exact text: a change here changes every stored result digest (and so every revision check).
REPRESENTATIVE_JSON = (
    '{"assessable":true,"counts":{"completed":16,"due":20,"late":6,"on_time":10,"reworked":2},"fired_ru'
    'les":[{"fact":"assignment SNV-2026-017","flag":"","reason_en":"Assignment SNV-2026-017 is 45 days '
    'overdue and still open: 2 points off","reason_vi":"Nhiệm vụ SNV-2026-017 quá hạn 45 ngày chưa hoàn'
    ' thành: trừ 2 điểm","rule_id":"overdue-penalty","source":"scoring.yaml:89","values":{"days_overdue'
    '":45.0}},{"fact":"unit","flag":"","reason_en":"Score 66.16 is from 50 to below 70","reason_vi":"Đi'
    'ểm 66,16 từ 50 đến dưới 70","rule_id":"grade.completed","source":"grades.yaml:30","values":{"due":'
    '20.0,"score":66.15625}},{"fact":"unit","flag":"criticism","reason_en":"On-time rate 72.5% is below'
    ' the 80% threshold","reason_vi":"Tỷ lệ đúng hạn 72,5% thấp hơn ngưỡng 80%","rule_id":"criticism-lo'
    'w-timeliness","source":"flags.yaml:51","values":{"assessable":1.0,"timeliness":0.725}},{"fact":"as'
    'signment SNV-2026-017","flag":"criticism","reason_en":"Reminded 5 times\\t\\u0001 > 3","reason_vi"'
    ':"Nhiệm vụ \\"SNV-2026-017\\" bị đôn đốc 5 lần\\n(quá 3) \\\\ 📌","rule_id":"criticism-many-reminde'
    'rs","source":"flags.yaml:60","values":{"reminders":5.0}}],"flags":[{"flag":"criticism","kind":"cri'
    'ticism","label_en":"Criticism","label_vi":"Phê bình","level":2,"reasons":[{"fact":"unit","flag":"c'
    'riticism","reason_en":"On-time rate 72.5% is below the 80% threshold","reason_vi":"Tỷ lệ đúng hạn '
    '72,5% thấp hơn ngưỡng 80%","rule_id":"criticism-low-timeliness","source":"flags.yaml:51","values":'
    '{"assessable":1.0,"timeliness":0.725}},{"fact":"assignment SNV-2026-017","flag":"criticism","reaso'
    'n_en":"Reminded 5 times\\t\\u0001 > 3","reason_vi":"Nhiệm vụ \\"SNV-2026-017\\" bị đôn đốc 5 lần\\'
    'n(quá 3) \\\\ 📌","rule_id":"criticism-many-reminders","source":"flags.yaml:60","values":{"reminder'
    's":5.0}}]}],"grade":"completed","grade_en":"Completed","grade_vi":"Hoàn thành nhiệm vụ","indicator'
    's":[{"attainment":0.37500000000000006,"counted":true,"indicator":"dx.online_applications","name_en'
    '":"Applications submitted online","name_vi":"Tỷ lệ hồ sơ nộp trực tuyến","points":1e-07,"target":0'
    '.8,"value":0.30000000000000004,"weight":6},{"attainment":0.0,"counted":false,"indicator":"dx.fully'
    '_online","name_en":"Applications processed fully online","name_vi":"Tỷ lệ hồ sơ xử lý trực tuyến t'
    'oàn trình","points":1e+16,"target":null,"value":-0.0,"weight":4}],"inputs_digest":"cdcdcdcdcdcdcdc'
    'dcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","open_overdue":1,"penalty":2.0,"period":"2026-Q'
    '3","ruleset_digest":"abababababababababababababababababababababababababababababababab","ruleset_ve'
    'rsion":"2026.1","score":66.16,"unit_code":"SNV"}'
)


def test_canonical_json_of_an_evaluation_is_pinned() -> None:
    evaluation = representative_evaluation()
    assert canonical_json(evaluation) == REPRESENTATIVE_JSON
    assert _reference_json(evaluation) == REPRESENTATIVE_JSON  # to_plain + json.dumps: the definition
    assert canonical_jsons([evaluation, list(evaluation.flags[0].reasons)]) == [
        REPRESENTATIVE_JSON,
        canonical_json(list(evaluation.flags[0].reasons)),
    ]
    assert digest_of(evaluation) == hashlib.sha256(REPRESENTATIVE_JSON.encode()).hexdigest()


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Size(IntEnum):
    SMALL = 1
    LARGE = 3


class Shape(Enum):
    PAIR = (1, 2)  # an enum whose value is a container
    NAME = "name"


class Label(str):
    """A str subclass (written as its text)."""


Point = collections.namedtuple("Point", "x y")


@dataclass(frozen=True)
class Leaf:
    name: str
    weight: float
    tags: tuple[Any, ...]
    extra: dict[Any, Any]


@dataclass
class Node:
    children: list[Any]
    leaf: Leaf | None
    when: dt.date
    at: dt.datetime
    mapping: dict[Any, Any]


def random_value(rng: random.Random, depth: int, pool: list[Any]) -> Any:
    """A value of any kind canonical_json accepts (or refuses), sometimes one already used."""
    if pool and rng.random() < 0.1:
        return rng.choice(pool)
    leaves: list[Callable[[], Any]] = [
        lambda: "".join(rng.choice('aZ9 "\\/\n\t\x00\x1fđặệ€\u2028\U0001f600') for _ in range(rng.randrange(6))),
        lambda: rng.choice([0, 1, -1, 2**53 + 1, -(10**30), 7]),
        lambda: rng.choice([0.0, -0.0, 0.1, 1 / 3, 1e16, 1e-07, 5e-324, 1.7976931348623157e308, 2.5, 100.0]),
        lambda: rng.choice([True, False, None]),
        lambda: rng.choice(list(Colour) + list(Size) + list(Shape)),
        lambda: dt.date(2026, rng.randrange(1, 13), rng.randrange(1, 29)),
        lambda: dt.datetime(2026, 3, 4, 5, 6, 7, rng.randrange(10**6), tzinfo=dt.timezone(dt.timedelta(hours=7))),
        lambda: Label(rng.choice(["x", "đ", ""])),
        lambda: rng.choice([frozenset({1}), float("nan"), -math.inf]) if rng.random() < 0.05 else 0,  # refused
    ]
    if depth <= 0 or rng.random() < 0.4:
        value = rng.choice(leaves)()
    else:
        keys = ["a", "b", "ß", "1", 1, 2, True, None, 1.5, Colour.RED]
        builders: list[Callable[[], Any]] = [
            lambda: [random_value(rng, depth - 1, pool) for _ in range(rng.randrange(4))],
            lambda: tuple(random_value(rng, depth - 1, pool) for _ in range(rng.randrange(4))),
            lambda: {rng.choice(keys): random_value(rng, depth - 1, pool) for _ in range(rng.randrange(4))},
            lambda: Point(random_value(rng, depth - 1, pool), 2),
            lambda: Leaf(
                Label("leaf"), rng.choice([0.5, 2.0]), tuple(random_value(rng, depth - 1, pool) for _ in range(2)),
                {rng.choice(keys): random_value(rng, depth - 1, pool)},
            ),
            lambda: Node(
                [random_value(rng, depth - 1, pool)],
                rng.choice([None, *[p for p in pool if isinstance(p, Leaf)]]),
                dt.date(2025, 12, 31),
                dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                {"k": random_value(rng, depth - 1, pool)},
            ),
        ]
        value = rng.choice(builders)()
    pool.append(value)
    return value


def outcome(write: Callable[[Any], str], value: Any) -> tuple[str, str]:
    try:
        return "text", write(value)
    except Exception as error:  # compared with the reference's error
        return type(error).__name__, str(error)


def test_canonical_json_writes_what_to_plain_and_json_dumps_write() -> None:
    rng = random.Random(20260930)
    pool: list[Any] = []
    values = [random_value(rng, 4, pool) for _ in range(1500)]
    values += [float("nan"), [1, float("inf")], Leaf("x", float("-inf"), (), {}), {"a": {1: [-0.0]}}]
    values += [{1: "a", "1": "b"}, Shape.PAIR, [Shape.PAIR]]
    for value in values:
        assert outcome(canonical_json, value) == outcome(_reference_json, value), value
    writable = [value for value in values if outcome(_reference_json, value)[0] == "text"]
    assert canonical_jsons(writable) == [canonical_json(value) for value in writable]
    with pytest.raises(ValueError, match=r"non-finite number nan cannot be stored"):
        canonical_json(FiredRule("r", "f.yaml:1", "unit", {"score": float("nan")}))


def test_placeholder_values_format_the_same_from_the_number_cache() -> None:
    def uncached(value: object, spec: str, lang: Language) -> str:  # format_value before the cache
        if value is None:
            return "—"
        if isinstance(value, bool):
            return {"vi": ("có", "không"), "en": ("yes", "no")}[lang][0 if value else 1]
        if isinstance(value, int | float):
            return format_percent(value, lang) if spec == "%" else format_number(value, lang)
        if isinstance(value, list | tuple):
            return ", ".join(uncached(v, spec, lang) for v in value) or "—"
        return str(value)

    values = [1, 1.0, True, False, -0.0, 0.0, 0.725, 2.675, -2.675, 1234567.891, 10**17 + 1, Size.LARGE]
    values += [None, "x", Label("y"), ["a", 0.5, 1], (), Colour.RED]
    for _ in range(2):  # the second round is served from the cache
        for value in values:
            for spec in ("", "%"):
                for lang in LANGUAGES:
                    assert format_value(value, spec, lang) == uncached(value, spec, lang), (value, spec, lang)
