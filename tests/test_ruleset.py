"""Rule files: loading, digests, compilation, and an actionable error (file:line:column) for
each kind of mistake policy staff can make, including the durable_rules hazards."""

from __future__ import annotations

import copy
import hashlib
import json
import unicodedata
from pathlib import Path

import pytest

from civicscore.domain.model import UnitKind
from civicscore.ruleset import RulesetInvalid, RulesetIssue, load_ruleset
from civicscore.ruleset.compiler import check_definition
from civicscore.ruleset.conditions import AllOf, AnyOf, Compare, ConditionSyntaxError, Truth, parse_condition, to_dnf

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
    assert ruleset.rule_count == 15
    assert {"dx-indicator-counted", "overdue-penalty", "grade.excellent", "grade.not_assessable",
            "praise-all-on-time", "explanation-criticised-twice"} <= ruleset.rule_ids


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
        ("reminder", "criticism", 1, "Nhắc nhở"),
        ("criticism", "criticism", 2, "Phê bình"),
        ("explanation_required", "criticism", 3, "Yêu cầu giải trình"),
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
    ],
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
    assert load_ruleset(with_rules(*rules)).rule_count == 115


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
    assert load_ruleset(with_rules(rule("fine", "due == 0 and score is missing"))).rule_count == 16


def test_too_many_distinct_equality_values_are_rejected() -> None:
    rules = [
        rule(f"codes-{n}", " or ".join(f'unit_code == "U{n}-{i}"' for i in range(60)))
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
    assert str(raised.value.issues[0]).startswith("scoring.yaml:37:13: ")
