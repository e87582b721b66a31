"""Rule files: loading, digests, compilation, and an actionable error (file:line:column) for
each kind of mistake policy staff can make, including the durable_rules hazards."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import unicodedata
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest
import yaml

from civicscore.domain.model import UnitKind
from civicscore.ruleset import RulesetInvalid, RulesetIssue, load_ruleset
from civicscore.ruleset.cases import read_case_files
from civicscore.ruleset.compiler import check_definition
from civicscore.ruleset.conditions import AllOf, AnyOf, Compare, ConditionSyntaxError, Truth, parse_condition, to_dnf
from civicscore.ruleset.reader import Reader
from civicscore.ruleset.yamltree import Pos, YList, YMap, YNode, YScalar, parse_yaml

RULES = Path(__file__).resolve().parents[1] / "rules"


def rule_files() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(RULES.glob("*.yaml"))}


def edited(file: str, old: str, new: str) -> dict[str, str]:
    """The default files with the first `old` in `file` replaced by `new`."""
    files = rule_files()
    assert old in files[file], old
    files[file] = files[file].replace(old, new, 1)
    return files


def with_rules(*rules: str) -> dict[str, str]:
    """The default files with rules appended to flags.yaml (its last section is `rules:`)."""
    files = rule_files()
    files["flags.yaml"] = files["flags.yaml"].rstrip("\n") + "\n" + "".join(rules)
    return files


def rule(rule_id: str, when: str, *, fact: str = "unit", flag: str = "reminder", extra: str = "") -> str:
    return (
        f"\n  - id: {rule_id}\n    fact: {fact}\n    flag: {flag}\n{extra}    when: {when}\n"
        '    reason: {vi: "Lý do", en: "Reason"}\n'
    )


def where(files: dict[str, str], file: str, needle: str, *, nth: int = 1) -> tuple[str, int, int]:
    """(file, line, column), 1-based, of the nth occurrence of `needle` (nth=-1: the last)."""
    text = files[file]
    index = text.rindex(needle) if nth == -1 else -1
    for _ in range(max(nth, 0)):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return file, line, index - (text.rfind("\n", 0, index) + 1) + 1


def problems(files: dict[str, str]) -> list[RulesetIssue]:
    with pytest.raises(RulesetInvalid) as raised:
        load_ruleset(files)
    return raised.value.issues


def only_problem(files: dict[str, str]) -> RulesetIssue:
    found = problems(files)
    assert len(found) == 1, [str(i) for i in found]
    return found[0]


def position(issue: RulesetIssue) -> tuple[str, int, int]:
    return issue.file, issue.line, issue.column


# ---- the default ruleset ---------------------------------------------------------------------


def test_default_ruleset_loads() -> None:
    ruleset = load_ruleset(rule_files())
    assert (ruleset.ruleset_id, ruleset.version, ruleset.in_force_from) == ("hanoi-default", "2026.1", "2025-Q3")
    assert ruleset.description_vi.startswith("Bộ quy tắc mặc định")
    assert ruleset.rule_count == 20
    assert {"dx-indicator-counted", "overdue-penalty", "grade.excellent", "grade.not_assessable",
            "praise-all-on-time", "explanation-criticised-twice", "annual-commendation",
            "obstacle-unresolved", "head-accountability", "individual-praise",
            "individual-reminder"} <= ruleset.rule_ids


def test_digest_is_sha256_over_sorted_path_content_pairs() -> None:
    files = rule_files()
    pairs = sorted([path, text] for path, text in files.items())
    expected = hashlib.sha256(
        json.dumps(pairs, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    ).hexdigest()
    ruleset = load_ruleset(files)
    assert ruleset.digest == expected
    assert ruleset.files == files


def test_digest_follows_rule_files_only() -> None:
    files = rule_files()
    digest = load_ruleset(files).digest
    extra = {**files, "README.md": "# notes", "tests/default_cases.yaml": "cases: []"}
    assert load_ruleset(extra).digest == digest
    assert set(load_ruleset(extra).files) == set(files)
    changed = edited("scoring.yaml", "late_credit: 0.75", "late_credit: 0.7")
    assert load_ruleset(changed).digest != digest


def test_indicators_flags_and_grades_are_data() -> None:
    ruleset = load_ruleset(rule_files())
    weights = {i.code: i.weight for i in ruleset.indicators}
    assert weights == {"dx.online_applications": 6, "dx.fully_online": 4, "dx.on_time_resolution": 6,
                       "dx.records_digitised": 5, "dx.online_payment": 3, "dx.esigned_documents": 3,
                       "dx.satisfaction": 3}
    assert ruleset.indicator_codes == frozenset(weights)
    online = ruleset.indicator("dx.online_applications")
    assert online is not None and online.name_vi == "Tỷ lệ hồ sơ nộp trực tuyến"
    assert online.default_targets[UnitKind.DEPARTMENT] == 0.8 and online.default_targets[UnitKind.WARD] == 0.6
    assert {(f.flag, f.kind, f.level, f.label_vi) for f in ruleset.flags} == {
        ("praise", "commendation", 1, "Biểu dương"),
        ("commendation_candidate", "commendation", 2, "Đề nghị khen thưởng"),
        ("annual_commendation_candidate", "commendation", 3, "Đề nghị khen thưởng năm"),
        ("reminder", "criticism", 1, "Nhắc nhở"),
        ("criticism", "criticism", 2, "Phê bình"),
        ("explanation_required", "criticism", 3, "Yêu cầu giải trình"),
        ("obstacle_unresolved", "escalation", 1, "Vướng mắc chưa được giải quyết"),
        ("individual_praise", "commendation", 1, "Biểu dương cá nhân"),
        ("individual_reminder", "criticism", 1, "Nhắc nhở cá nhân"),
        ("head_accountability", "criticism", 2, "Trách nhiệm người đứng đầu"),
    }
    assert [(g.grade, g.min_score) for g in ruleset.grades] == [
        ("excellent", 90), ("good", 70), ("completed", 50), ("not_completed", 0), ("not_assessable", None)]
    assert ruleset.not_assessable.label_vi == "Chưa đủ dữ liệu đánh giá"


def test_compile_gives_plain_data_and_a_fresh_copy_each_time() -> None:
    ruleset = load_ruleset(rule_files())
    first = ruleset.compile()
    rules_def = first.definition[first.name]
    json.dumps(first.definition)  # plain data only
    assert set(rules_def) == {first.init_rule} | ruleset.rule_ids
    assert set(first.action_names) == set(rules_def)
    assert all(rule["all"][0]["m"]["$and"][0]["tag"] for name, rule in rules_def.items() if name != first.init_rule)
    snapshot = copy.deepcopy(first.definition)
    for rule in rules_def.values():
        del rule["run"]  # what durable_rules does to what it is given
    assert ruleset.compile().definition == snapshot
    assert check_definition(snapshot[first.name]) == []


def test_vietnamese_text_is_normalised_to_nfc() -> None:
    files = rule_files()
    files["flags.yaml"] = unicodedata.normalize("NFD", files["flags.yaml"])
    ruleset = load_ruleset(files)
    label = next(f.label_vi for f in ruleset.flags if f.flag == "criticism")
    assert label == "Phê bình" and unicodedata.is_normalized("NFC", label)


# ---- each kind of mistake: what is wrong, where, and how to fix it ---------------------------


def test_unknown_key_suggests_the_right_one() -> None:
    files = edited("scoring.yaml", "    weight: 6\n", "    wieght: 6\n")
    found = problems(files)
    unknown = next(i for i in found if "unknown key" in i.message)
    assert position(unknown) == where(files, "scoring.yaml", "wieght")
    assert "did you mean `weight`?" in unknown.message
    assert any("missing `weight`" in i.message for i in found)


def test_wrong_type_says_what_was_expected() -> None:
    files = edited("scoring.yaml", "    weight: 6\n", "    weight: six\n")
    issue = only_problem(files)
    assert position(issue) == where(files, "scoring.yaml", "six")
    assert "must be a number, e.g. `weight: 6`, found text 'six'" in issue.message


def test_unquoted_version_must_be_quoted() -> None:
    files = edited("ruleset.yaml", 'version: "2026.1"', "version: 2026.1")
    issue = only_problem(files)
    assert position(issue) == where(files, "ruleset.yaml", "2026.1")
    assert "must be text" in issue.message and "quotes" in issue.message


def test_unknown_fact_field_in_a_condition_points_at_the_word() -> None:
    files = edited("flags.yaml", "assessable and timeliness < threshold", "assessable and timelines < threshold")
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "timelines <")
    assert "unknown field `timelines` for unit facts; did you mean `timeliness`?" in issue.message


def test_unknown_indicator() -> None:
    files = with_rules(rule("low-online", 'indicator == "dx.online_aplications" and attainment < 0.5',
                            fact="measurement"))
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", '"dx.online_aplications"')
    assert "unknown indicator 'dx.online_aplications'" in issue.message
    assert "did you mean `dx.online_applications`?" in issue.message


def test_unknown_flag() -> None:
    files = edited("flags.yaml", "    flag: praise\n", "    flag: prasie\n")
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "prasie")
    assert "unknown flag `prasie`" in issue.message and "did you mean `praise`?" in issue.message


def test_missing_english_text() -> None:
    files = edited("flags.yaml", '      en: "All {due} assignments due were completed on time, none is overdue"\n', "")
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "vi: \"Hoàn thành đúng hạn")
    assert "missing `en`" in issue.message


def test_duplicate_rule_id() -> None:
    files = with_rules(rule("criticism-low-timeliness", "due > 100"))
    issue = only_problem(files)
    first = where(files, "flags.yaml", "id: criticism-low-timeliness")
    assert position(issue) == where(files, "flags.yaml", "id: criticism-low-timeliness", nth=2)
    assert f"already used at flags.yaml:{first[1]}" in issue.message


@pytest.mark.parametrize(
    ("condition", "marker", "message"),
    [
        ("assessable and timeliness <", None, "expected a number, quoted text, true/false or a parameter name"),
        ("timeliness = 0.8", "=", "use `==`"),
        ("timeliness < 80%", "%", "80% is 0.8"),
        ("due > 1 due < 3", "due < 3", "unexpected `due` here; join tests with `and` / `or`"),
        ("(due > 1 or due < 3", None, "expected `)`"),
        ('grade == "good', '"good', "never closed"),
        ("__import__('os')", "(", "unexpected `(`"),
        ("(" * 17 + "due > 1" + ")" * 17, "(due > 1", "parentheses nested more than 16 deep here"),
        ("due > " + "9" * 900, "9" * 900, "this number has 900 characters"),
        ("due > 1 and " * 333 + "due > 2", "> 2", "the condition is 4,003 characters long, more than the 4,000"),
    ],
    ids=["incomplete", "single-equals", "percent", "no-join", "unclosed", "unclosed-quote", "code", "deep",
         "long-number", "long"],
)
def test_bad_condition_syntax(condition: str, marker: str | None, message: str) -> None:
    files = with_rules(rule("broken", condition))
    issue = only_problem(files)
    start = where(files, "flags.yaml", f"when: {condition}", nth=-1)
    start = (start[0], start[1], start[2] + len("when: "))
    column = start[2] + (condition.index(marker) if marker else len(condition))
    assert position(issue) == (start[0], start[1], column)
    assert message in issue.message


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("on_time == due", "comparing two fields (`due`) is not supported"),
        ("not due", "`due` is a whole number, not yes/no"),
        ("grade has \"good\"", "`has` applies to lists"),
        ("unit_code > \"A\"", "only `==` and `!=` apply"),
        ("due > \"five\"", "compare it with a number"),
        ("unit_kind == \"departmnet\"", "unknown unit kind 'departmnet' for `unit_kind`; did you mean `department`?"),
        ("grade == \"excelent\"", "unknown grade 'excelent' for `grade`; did you mean `excellent`?"),
        ("previous_flags has \"critisism\"", "did you mean `criticism`?"),
        ("due > limit", "unknown parameter `limit`"),
    ],
)
def test_condition_meaning_errors(condition: str, message: str) -> None:
    issue = only_problem(with_rules(rule("meaningless", condition)))
    assert message in issue.message


def test_rules_reading_flags_see_only_flags_of_rules_that_do_not() -> None:
    chained_grade = 'previous_grade == "excellent" and flags has "praise"'
    files = edited("flags.yaml", 'previous_grade == "excellent"', chained_grade)
    files["flags.yaml"] += rule("chained", 'flags has "commendation_candidate"')
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "id: chained")
    assert 'tests `flags has "commendation_candidate"`' in issue.message and "can never be true" in issue.message


def test_parameters_must_be_used_and_must_not_shadow_fields() -> None:
    unused = only_problem(with_rules(rule("unused", "due > 3", extra="    params: {limit: 4}\n")))
    assert "parameter `limit` of rule `unused` is not used" in unused.message
    shadow = only_problem(with_rules(rule("shadow", "due > 3", extra="    params: {due: 4}\n")))
    assert "has the name of a unit field; rename it, e.g. `max_due`" in shadow.message


def test_reason_placeholders_are_checked() -> None:
    files = edited("flags.yaml", 'vi: "Tỷ lệ đúng hạn {timeliness:%}', 'vi: "Tỷ lệ đúng hạn {timelines:%}')
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "{timelines:%}")
    assert "unknown placeholder {timelines} in the vi reason" in issue.message
    assert "did you mean `timeliness`?" in issue.message
    broken = only_problem(edited("flags.yaml", "{threshold:%}", "{threshold:%"))
    assert "never closed" in broken.message


def test_effects_apply_to_their_fact_types() -> None:
    files = with_rules("\n  - id: count-units\n    fact: unit\n    count_indicator: true\n    when: due > 0\n"
                       '    reason: {vi: "x", en: "x"}\n')
    issue = only_problem(files)
    assert "`count_indicator` applies to `measurement` facts, not `unit`" in issue.message
    none = only_problem(with_rules("\n  - id: idle\n    fact: unit\n    when: due > 0\n"
                                   '    reason: {vi: "x", en: "x"}\n'))
    assert "does not say what it does" in none.message


def test_yaml_syntax_error_has_a_position() -> None:
    files = edited("scoring.yaml", "  late_credit: 0.75", "  late_credit: [0.75")
    issue = problems(files)[0]
    assert issue.file == "scoring.yaml" and issue.line > 1
    assert "YAML syntax error" in issue.message


@pytest.mark.parametrize(("text", "position", "start"), [
    ("a: &x 1\nb: *x\n", (1, 4), "YAML anchors such as `&x` are not allowed"),
    ("a: [1]\nb: *x\n", (2, 4), "YAML aliases such as `*x` are not allowed"),  # refused, not "undefined alias"
    ("base: {a: 1}\nmore:\n  <<: {b: 2}\n", (3, 3), "YAML merge keys `<<` are not allowed"),
    ("a: !!python/object/apply:os.system [ls]\n", (1, 4), "YAML tags such as `!!python/object/apply:os.system`"),
    ("a: !!str 1\n", (1, 4), "YAML tags such as `!!str` are not allowed"),
    ("a: !local {b: 1}\n", (1, 4), "YAML tags such as `!local` are not allowed"),
    ("a:\n" + "".join("  " * depth + "- \n" for depth in range(1, 40)), (33, 65),
     "values are nested more than 32 levels deep here"),
    ("a: [" + "x, " * 100_000 + "x]\n", (1, 5 + 3 * 99_997), "the file has more than 100,000 values"),
    ("# " + "é" * (512 * 1024) + "\n", (1, 1), "f.yaml is larger than 1 MiB (1,048,576 bytes)"),  # bytes, not letters
], ids=["anchor", "alias", "merge-key", "code-tag", "plain-tag", "local-tag", "depth", "values", "size"])
def test_yaml_that_could_grow_or_run_is_refused_where_it_is_written(
        text: str, position: tuple[int, int], start: str) -> None:
    tree, issues = parse_yaml("f.yaml", text)
    assert tree is None
    assert (issues[0].file, issues[0].line, issues[0].column) == ("f.yaml", *position)
    assert issues[0].message.startswith(start)


def test_the_bomb_is_refused_at_its_first_anchors_and_aliases_without_expanding_them() -> None:
    levels = [f'a: &a [{",".join(["lol"] * 9)}]'] + [
        f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]"
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    tree, issues = parse_yaml("bomb.yaml", "\n".join(levels) + "\n")
    assert tree is None
    assert [(i.line, i.column) for i in issues] == [(1, 4), (2, 4), *((2, column) for column in range(8, 30, 3))]
    assert issues[-1].message.endswith("(reading this file stopped after 10 such problems; there may be more)")


def test_limits_are_far_above_the_default_files_and_refusals_stop_loading() -> None:
    # Nothing of the default rules or cases comes near a limit; they parse exactly as before.
    for text in (*rule_files().values(), CASES.read_text(encoding="utf-8")):
        tree, issues = parse_yaml("f.yaml", text)
        assert tree is not None and issues == []
    tree, issues = parse_yaml("f.yaml", "--- 1\n--- 2\n")
    assert tree is None and issues[0].message.startswith("YAML syntax error: but found another document")
    assert parse_yaml("f.yaml", "---\n") == (YScalar(Pos("f.yaml", 2, 1), None), [])
    # A quoted "<<" is a key like any other (unknown here), not a merge key.
    assert "unknown key `<<`" in problems(edited("ruleset.yaml", "ruleset:\n", 'ruleset:\n  "<<": 1\n'))[0].message
    refused = problems(edited("grades.yaml", "grades:", "grades: &g"))
    assert [(i.file, i.message[:26]) for i in refused] == [("grades.yaml", "YAML anchors such as `&g` ")]


def test_a_value_yaml_cannot_read_is_an_issue_at_its_position() -> None:
    files = edited("ruleset.yaml", "in_force_from: 2025-Q3", "in_force_from: 2026-02-30")
    [issue] = problems(files)
    assert (issue.file, issue.column) == ("ruleset.yaml", 18)
    assert issue.message == ("`2026-02-30` cannot be read as a date (day is out of range for month); correct it, "
                             "or put it in quotes if it is text")
    _, issues = parse_yaml("f.yaml", "a: " + "9" * 5000 + "\n")
    assert issues[0].message.startswith("`9999999999999999999999999999999999999999… (5000 characters)` cannot be read "
                                        "as a whole number (Exceeds the limit (4300 digits)")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "9" * 400, "1" + "0" * 400 + ".5"])
def test_a_parameter_must_be_a_number_of_reasonable_size(value: str) -> None:
    files = with_rules(rule("huge", "due > limit", extra=f"    params: {{limit: {value}}}\n"))
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", value, nth=-1)
    assert issue.message.startswith("parameter `limit` of rule `huge` must be a number of reasonable size")


def test_refused_rulesets_keep_their_issues_when_sent_between_processes() -> None:
    invalid = RulesetInvalid([RulesetIssue("b.yaml", 2, 1, "two"), RulesetIssue("a.yaml", 1, 1, "one")])
    again = pickle.loads(pickle.dumps(invalid))
    assert again.issues == invalid.issues and str(again) == str(invalid)


def test_duplicate_keys_sections_and_missing_sections() -> None:
    twice = only_problem(edited("scoring.yaml", "  late_credit: 0.75\n", "  late_credit: 0.75\n  late_credit: 0.7\n"))
    assert "`late_credit` is written twice" in twice.message
    files = rule_files()
    files["extra.yaml"] = "score:\n  task_points: 60\n  dx_points: 40\n  penalty_cap: 10\n"
    again = only_problem(files)
    assert position(again) == ("scoring.yaml", *where(files, "scoring.yaml", "score:")[1:])
    assert "`score:` is already written at extra.yaml:1" in again.message
    files = rule_files()
    del files["grades.yaml"]
    assert {i.message for i in problems(files)} == {
        "no `assessment:` section in any rule file; add one", "no `grades:` section in any rule file; add one"}
    unknown = only_problem(edited("flags.yaml", "rules:\n", "rulez:\n"))
    assert "unknown key `rulez`" in unknown.message and "did you mean `rules`?" in unknown.message


def test_numbers_that_do_not_add_up() -> None:
    weights = only_problem(edited("scoring.yaml", "quality: 0.3", "quality: 0.4"))
    assert "the task weights add up to 1.1; they must add up to 1" in weights.message
    bands = only_problem(edited("grades.yaml", "min_score: 70", "min_score: 95"))
    assert "`min_score` of `good` must be below 90" in bands.message
    last = only_problem(edited("grades.yaml", "    min_score: 0\n", "    min_score: 10\n"))
    assert "the last grade band must have `min_score: 0`" in last.message
    period = only_problem(edited("ruleset.yaml", "in_force_from: 2025-Q3", "in_force_from: 2025-Q5"))
    assert "write it as YYYY-Qn" in period.message


# ---- durable_rules hazards a rule file could express -----------------------------------------


def test_more_than_64_rules_that_can_match_one_fact_are_rejected() -> None:
    # 5 default rules already match unit facts in the flags stage: the 60th new one makes 65.
    rules = [rule(f"many-{i}", f"due > {i}") for i in range(70)]
    files = with_rules(*rules)
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "id: many-59")
    assert "up to 65 rule alternatives" in issue.message and "error 303" in issue.message


def test_rules_made_exclusive_by_equality_are_not_counted_together() -> None:
    rules = [rule(f"unit-{i}", f'unit_code == "U{i}" and due > 3') for i in range(100)]
    assert load_ruleset(with_rules(*rules)).rule_count == 120


def test_or_alternatives_count_and_may_not_explode() -> None:
    many = " or ".join(f"due > {i}" for i in range(65))
    issue = only_problem(with_rules(rule("wide", many)))
    assert "more than 64 alternatives" in issue.message
    product = " and ".join(f"(due > {i} or late > {i})" for i in range(7))  # 2**7 = 128
    assert "more than 64 alternatives" in only_problem(with_rules(rule("deep", product))).message


def test_a_condition_of_only_absence_tests_is_rejected() -> None:
    files = with_rules(rule("no-score", "score is missing"))
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "score is missing")
    assert "`$nex`" in issue.message and "loop forever" in issue.message
    branch = only_problem(with_rules(rule("half", "due > 3 or score is missing")))
    assert "only of `is missing` tests" in branch.message
    assert load_ruleset(with_rules(rule("fine", "due == 0 and score is missing"))).rule_count == 21


def test_too_many_distinct_equality_values_are_rejected() -> None:
    rules = [
        rule(f"codes-{n}", " or ".join(f'unit_code == "U{n}-{i}"' for i in range(57)))
        for n in range(5)
    ]
    files = with_rules(*rules)
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "id: codes-4")
    assert "more than 256 distinct values (most on `unit_code`)" in issue.message and "512" in issue.message


def test_definition_guard_catches_joins_state_fact_matches_and_missing_actions() -> None:
    join = {"all": [{f"m{i}": {"tag": "unit.flags"}} for i in range(17)], "run": "join"}
    bare = {"all": [{"m": {"$nex": {"score": 1}}}], "run": "bare"}
    either = {"all": [{"m": {"$or": [{"tag": "unit.flags"}, {"$nex": {"score": 1}}]}}], "run": "either"}
    silent = {"all": [{"m": {"tag": "unit.flags"}}]}
    found = check_definition({"join": join, "bare": bare, "either": either, "silent": silent})
    assert [name for name, _ in found] == ["join", "bare", "either", "silent"]
    assert "joins 17 facts" in found[0][1] and "state fact" in found[1][1] and "no action" in found[3][1]


# ---- thresholds that can never be crossed, and inverted escalation ---------------------------


@pytest.mark.parametrize(
    ("condition", "marker", "message"),
    [
        ("timeliness < 0.5 and timeliness > 0.8", "timeliness > 0.8",
         "`timeliness < 0.5` and `timeliness > 0.8` can never both be true, so the condition can never be true"),
        ("due > 4 and due < 5", "due < 5", "`due > 4` and `due < 5` can never both be true"),
        ('grade == "good" and grade == "excellent"', 'grade == "excellent"', "remove one of the two tests"),
        ("assessable and not assessable", "assessable", "`assessable` and `not assessable` can never both be true"),
        ("score is missing and score < 50", "score < 50", "a missing field fails every test"),
        ("due == 3 and due != 3", "due != 3", "`due == 3` and `due != 3` can never both be true"),
        ("(due > 10 or due < 3) and due > 5", "due > 5", "so one alternative of the `or` can never be true"),
        ("timeliness > 1.5", "timeliness", "`timeliness > 1.5` is never true: `timeliness` is a ratio between 0 and 1"),
        ("timeliness < 80", "timeliness", "is always true: `timeliness` is a ratio between 0 and 1 (80% is written "
         "0.8); write a percentage as a ratio, e.g. 0.8 for 80%"),
        ("timeliness > 1", "timeliness", "`timeliness > 1` is never true"),
        ("due == 4.5", "due", "never true: `due` is a whole number, 0 or more; compare `due` with a whole number"),
        ("score > 100", "score", "`score > 100` is never true: `score` is between 0 and 100"),
        ("penalty > 10", "penalty", "`penalty` is between 0 and 10"),
        ("dx_indicators > 7", "dx_indicators", "`dx_indicators` is a whole number between 0 and 7"),
        ("due < 0", "due", "`due < 0` is never true"),
    ],
)
def test_conditions_that_can_never_be_true(condition: str, marker: str, message: str) -> None:
    files = with_rules(rule("impossible", condition))
    issue = only_problem(files)
    start = where(files, "flags.yaml", f"when: {condition}", nth=-1)
    assert position(issue) == (start[0], start[1], start[2] + len("when: ") + condition.rindex(marker))
    assert message in issue.message, issue.message


def test_a_threshold_from_a_parameter_is_named_with_its_value() -> None:
    issue = only_problem(edited("flags.yaml", "params: {threshold: 0.9}", "params: {threshold: 90}"))
    assert "`timeliness < threshold` (`threshold` is 90) is always true" in issue.message


@pytest.mark.parametrize(
    "condition",
    [
        "due > 1 or due > 2",
        "timeliness <= 1 and timeliness >= 0",
        "due >= 5 and due <= 5",
        'grade == "good" or grade == "excellent"',
        "previous_grade is missing and due > 3",
        "score >= 0 and score < 50",
        'not under_review and unit_kind != "ward" and unit_kind != "commune"',
        "penalty == 10",
    ],
)
def test_conditions_that_can_be_true_are_accepted(condition: str) -> None:
    assert load_ruleset(with_rules(rule("possible", condition))).rule_count == 21


def test_escalation_levels_must_not_be_inverted() -> None:
    files = edited("flags.yaml", "params: {threshold: 0.8}", "params: {threshold: 0.95}")
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "id: criticism-low-timeliness")
    assert issue.message == (
        "the thresholds of `reminder` (level 1) and `criticism` (level 2) are inverted: rule "
        "`criticism-low-timeliness` raises the higher level when `timeliness < threshold` (`threshold` is 0.95), "
        "but rule `reminder-low-timeliness` raises the lower level only when `timeliness < threshold` "
        "(`threshold` is 0.9); a higher level needs the stricter threshold: swap the two numbers"
    )
    same = edited("flags.yaml", "params: {threshold: 0.8}", "params: {threshold: 0.9}")
    assert load_ruleset(same).rule_count == 20  # equal thresholds: both flags at once, not inverted
    other_tests = edited("flags.yaml", "params: {threshold: 0.8}\n    when: assessable and timeliness < threshold\n",
                         "params: {threshold: 0.95}\n    when: assessable and timeliness < threshold and due > 10\n")
    assert load_ruleset(other_tests).rule_count == 20  # rules that differ in more than the threshold


def test_commendation_rules_must_exclude_units_under_review() -> None:
    files = edited("flags.yaml", 'when: not under_review and grade == "excellent"', 'when: grade == "excellent"')
    issue = only_problem(files)
    assert position(issue) == where(files, "flags.yaml", "id: commendation-excellent-twice")
    assert "raises `commendation_candidate`, a commendation, without `not under_review`" in issue.message
    either = with_rules(rule("half-guarded", 'not under_review and due > 50 or grade == "excellent"', flag="praise"))
    assert "without `not under_review`" in only_problem(either).message
    guarded = with_rules(rule("guarded", "under_review != true and due > 50", flag="praise"))
    assert load_ruleset(guarded).rule_count == 21


def test_a_grade_band_above_the_highest_score_is_refused() -> None:
    files = edited("grades.yaml", "min_score: 90", "min_score: 110")
    issue = only_problem(files)
    assert position(issue) == where(files, "grades.yaml", "110")
    assert "grade `excellent` can never be given: it needs a score of 110 or more, but the highest score is 100" \
        in issue.message


# ---- the condition language ------------------------------------------------------------------


def test_conditions_parse_to_a_tree_without_eval() -> None:
    tree = parse_condition("not under_review and (timeliness < 0.8 or due >= min_due)")
    assert isinstance(tree, AllOf)
    assert tree.parts[0] == Truth("under_review", False, 4)
    assert isinstance(tree.parts[1], AnyOf)
    first = tree.parts[1].parts[0]
    assert isinstance(first, Compare) and (first.field, first.op, first.value.literal) == ("timeliness", "<", 0.8)
    branches = to_dnf(tree, 64)
    assert branches is not None and len(branches) == 2
    with pytest.raises(ConditionSyntaxError) as raised:
        parse_condition("__import__('os').system('true')")
    assert raised.value.offset == 16 and "unexpected `.`" in str(raised.value)


def test_issues_print_as_file_line_column() -> None:
    with pytest.raises(RulesetInvalid) as raised:
        load_ruleset(edited("scoring.yaml", "    weight: 6\n", "    weight: six\n"))
    assert "1 problem" in str(raised.value)
    assert str(raised.value.issues[0]).startswith("scoring.yaml:42:13: ")


# ---- the JSON schema editors use (rules/schema/) ---------------------------------------------

SCHEMAS = RULES / "schema"
CASES = RULES / "tests" / "default_cases.yaml"


def schema_validator(name: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML without YAML 1.1's timestamps: `2026-02-10` stays text, as YAML 1.2 (and so the editors that
    apply the schemas, e.g. yaml-language-server) reads it."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def schema_errors(name: str, text: str) -> list[str]:
    document = yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in schema_validator(name).iter_errors(document)]


def test_every_rule_file_names_the_schema_on_its_first_line() -> None:
    for path in sorted(RULES.glob("*.yaml")):
        assert path.read_text(encoding="utf-8").splitlines()[0] == (
            "# yaml-language-server: $schema=schema/ruleset.schema.json"
        ), path.name
    assert CASES.read_text(encoding="utf-8").splitlines()[0] == (
        "# yaml-language-server: $schema=../schema/cases.schema.json"
    )


def test_the_default_files_validate_against_the_schemas() -> None:
    for path, text in rule_files().items():
        assert schema_errors("ruleset.schema.json", text) == [], path
    assert schema_errors("cases.schema.json", CASES.read_text(encoding="utf-8")) == []


def test_the_schema_rejects_an_unknown_key_and_a_wrong_type() -> None:
    unknown = schema_errors("ruleset.schema.json", edited("scoring.yaml", "    weight: 6\n", "    wieght: 6\n")[
        "scoring.yaml"])
    assert any("'wieght' was unexpected" in error for error in unknown), unknown
    wrong = schema_errors("ruleset.schema.json", edited("scoring.yaml", "    weight: 6\n", "    weight: six\n")[
        "scoring.yaml"])
    assert any(error.startswith("indicators/0/weight: 'six' is not of type 'number'") for error in wrong), wrong
    unquoted = schema_errors("ruleset.schema.json", edited("ruleset.yaml", 'version: "2026.1"', "version: 2026.1")[
        "ruleset.yaml"])
    assert unquoted == ["ruleset/version: 2026.1 is not of type 'string'"]
    case = CASES.read_text(encoding="utf-8").replace("counts: {due: 10, completed: 10, on_time: 10}", "cunts: {}", 1)
    assert any("'cunts' was unexpected" in error for error in schema_errors("cases.schema.json", case))


def loader_mappings(monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]) -> list[tuple[Pos, set[str], set[str]]]:
    """Every block of keys the loader reads while `run` runs: (where, required keys, all keys allowed)."""
    seen: list[tuple[Pos, set[str], set[str]]] = []
    original = Reader.mapping

    def recording(self: Reader, node: YNode, what: str, *, required: Collection[str] = (),
                  optional: Collection[str] = ()) -> YMap | None:
        if isinstance(node, YMap):
            seen.append((node.pos, set(required), set(required) | set(optional)))
        return original(self, node, what, required=required, optional=optional)

    monkeypatch.setattr(Reader, "mapping", recording)
    run()
    monkeypatch.undo()
    return seen


def yaml_paths(file: str, text: str) -> dict[Pos, list[str | int]]:
    """Where each block of keys of a file stands: its path of keys and list indexes."""
    paths: dict[Pos, list[str | int]] = {}

    def walk(node: YNode, path: list[str | int]) -> None:
        if isinstance(node, YMap):
            paths[node.pos] = path
            for key, value in node.items.items():
                walk(value, [*path, key])
        elif isinstance(node, YList):
            for index, item in enumerate(node.items):
                walk(item, [*path, index])

    tree, _ = parse_yaml(file, text)
    assert tree is not None
    walk(tree, [])
    return paths


def schema_at(schema: dict[str, Any], path: list[str | int]) -> dict[str, Any]:
    """The subschema that describes the value at `path` ($ref followed, the object variant of a oneOf)."""

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        if "oneOf" in node and "properties" not in node:
            node = next(option for option in node["oneOf"] if option.get("type") == "object")
        return node

    node = resolve(schema)
    for step in path:
        if isinstance(step, int):
            node = resolve(node["items"])
        else:
            node = resolve(node.get("properties", {}).get(step) or node["additionalProperties"])
    return node


def assert_schema_knows_loader_keys(schema_file: str, texts: dict[str, str],
                                    mappings: list[tuple[Pos, set[str], set[str]]]) -> int:
    schema = json.loads((SCHEMAS / schema_file).read_text(encoding="utf-8"))
    paths = {pos: path for file, text in texts.items() for pos, path in yaml_paths(file, text).items()}
    compared = 0
    for pos, required, allowed in mappings:
        node = schema_at(schema, paths[pos])
        if "properties" not in node:  # an open map (keys are indicator codes or rule ids)
            assert isinstance(node.get("additionalProperties"), dict), (pos, paths[pos])
            continue
        assert set(node["properties"]) == allowed, (str(pos), paths[pos])
        assert set(node.get("required", [])) == required, (str(pos), paths[pos])
        compared += 1
    return compared


def test_the_schema_knows_every_key_the_loader_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys come from the loader's own calls while it reads the default files, so a key added to
    the loader and not to the schema (or the other way round) fails here."""
    files = rule_files()
    mappings = loader_mappings(monkeypatch, lambda: load_ruleset(files))
    assert assert_schema_knows_loader_keys("ruleset.schema.json", files, mappings) >= 20
    ruleset = load_ruleset(files)
    cases = {"tests/default_cases.yaml": CASES.read_text(encoding="utf-8")}
    mappings = loader_mappings(monkeypatch, lambda: read_case_files(cases, ruleset))
    assert assert_schema_knows_loader_keys("cases.schema.json", cases, mappings) >= 50
