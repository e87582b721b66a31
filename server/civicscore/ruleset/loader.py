"""`load_ruleset`: rule file texts in, a validated and compiled `Ruleset` out (no I/O)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from civicscore.domain.canonical import digest_of
from civicscore.domain.model import UnitKind
from civicscore.domain.text import TemplateError, parse_template
from civicscore.ruleset.compiler import compile_rules
from civicscore.ruleset.errors import RulesetInvalid, RulesetIssue
from civicscore.ruleset.fields import FACT_FIELDS, LOCALISED_PLACEHOLDERS, POSITIONS, ROLLUP, SPANS, UNIT, Vocabulary
from civicscore.ruleset.limits import MAX_RULE_FILES
from civicscore.ruleset.model import Effect, FlagDefinition, GradeDefinition, Rule, Ruleset, RuleTest, Stage
from civicscore.ruleset.reachability import inverted_levels, ruleset_limits
from civicscore.ruleset.reader import Bilingual, Reader
from civicscore.ruleset.rules import Vocabularies, check_reason, read_rule
from civicscore.ruleset.sections import (
    Assessment,
    GradeBand,
    read_assessment,
    read_flags,
    read_grades,
    read_header,
    read_indicators,
    read_scoring,
    read_task_names,
)
from civicscore.ruleset.yamltree import Pos, YNode, parse_yaml

SINGLE_SECTIONS = ("ruleset", "tasks", "score", "indicators", "assessment", "grades", "flags")
SECTIONS = (*SINGLE_SECTIONS, "rules")
DURABLE_NAME = "civicscore"


def is_rule_file(path: str) -> bool:
    """Rule files are the `*.yaml` / `*.yml` files at the top of the rules folder (not `tests/`)."""
    return "/" not in path and "\\" not in path and path.endswith((".yaml", ".yml"))


def ruleset_digest(files: Mapping[str, str]) -> str:
    """SHA-256 over the sorted (path, content) pairs of the rule files."""
    return digest_of(sorted([path, text] for path, text in files.items()))


def load_ruleset(files: Mapping[str, str]) -> Ruleset:
    """Validate and compile the rule files; raise RulesetInvalid listing every problem.

    `files` maps paths relative to the rules folder to their text; only top-level
    YAML files are rule files (README.md and tests/ are ignored).
    """
    rule_files = {path: text for path, text in files.items() if is_rule_file(path)}
    reader = Reader()
    sections = _parse_files(reader, rule_files)
    single = _single_sections(reader, sections)
    if len(single) < len(SINGLE_SECTIONS):
        raise RulesetInvalid(reader.issues)
    header = read_header(reader, single["ruleset"])
    scoring = read_scoring(reader, single["tasks"], single["score"])
    task_names = read_task_names(reader, single["tasks"])
    indicators = read_indicators(reader, single["indicators"])
    assessment = read_assessment(reader, single["assessment"])
    bands = read_grades(reader, single["grades"])
    flags = read_flags(reader, single["flags"])
    grades = [band.grade for band in bands] + ([assessment.not_assessable.grade] if assessment else [])
    if assessment and any(g.grade == assessment.not_assessable.grade.grade for g in grades[:-1]):
        reader.error(assessment.not_assessable.node.pos, "the not-assessable grade must differ from the bands")
    limits = ruleset_limits(scoring, len(indicators))
    if scoring is not None:
        _check_bands_reachable(reader, bands, scoring.max_score)
    vocab = Vocabularies(
        {
            Vocabulary.UNIT_KIND: tuple(kind.value for kind in UnitKind),
            Vocabulary.GRADE: tuple(g.grade for g in grades),
            Vocabulary.FLAG: tuple(f.flag for f in flags),
            Vocabulary.INDICATOR: tuple(i.code for i in indicators),
            Vocabulary.SPAN: SPANS,
            Vocabulary.POSITION: POSITIONS,
        },
        limits,
    )
    positions: dict[str, Pos] = {}
    rules = _grade_rules(reader, bands, assessment, positions)
    for node, _ in sections["rules"]:
        for item in reader.sequence(node, "`rules`"):
            rule = read_rule(reader, item, len(rules), vocab)
            if rule is None:
                continue
            if rule.rule_id in positions:
                first = positions[rule.rule_id]
                reader.error(item.pos, f"rule id `{rule.rule_id}` is already used at {first}; ids must be unique")
                continue
            positions[rule.rule_id] = item.pos
            rules.append(rule)
    if assessment is not None:
        _check_long_periods(reader, bands, assessment)
    _check_escalations(reader, rules, positions)
    _check_levels(reader, rules, flags, positions)
    _check_commendations(reader, rules, flags, positions)
    if reader.issues or header is None or scoring is None or assessment is None or task_names is None:
        raise RulesetInvalid(reader.issues or [RulesetIssue("ruleset.yaml", 1, 1, "the rule files are incomplete")])
    compiled, issues = compile_rules(DURABLE_NAME, rules, positions)
    if compiled is None:
        raise RulesetInvalid(issues)
    return Ruleset(
        ruleset_id=header.ruleset_id,
        version=header.version,
        in_force_from=header.in_force_from,
        description_vi=header.description.vi,
        description_en=header.description.en,
        digest=ruleset_digest(rule_files),
        files=dict(sorted(rule_files.items())),
        scoring=scoring,
        task_names=task_names,
        min_due=assessment.min_due,
        indicators=tuple(indicators),
        grades=tuple(grades),
        flags=tuple(flags),
        rules=tuple(sorted(rules, key=lambda r: (list(Stage).index(r.stage), r.order))),
        _compiled=compiled,
        long_periods=assessment.long_periods,
    )


def _parse_files(reader: Reader, rule_files: Mapping[str, str]) -> dict[str, list[tuple[YNode, Pos]]]:
    """Each file's top-level sections, in file-name order; raise on syntax errors (nothing else is
    worth reporting when a file does not parse: its sections would only look missing)."""
    if not rule_files:
        missing = "no rule files: the rules folder needs ruleset.yaml and the other *.yaml files"
        raise RulesetInvalid([RulesetIssue("ruleset.yaml", 1, 1, missing)])
    if len(rule_files) > MAX_RULE_FILES:  # each may be MAX_FILE_BYTES: bound the whole, too
        raise RulesetInvalid([RulesetIssue("ruleset.yaml", 1, 1, (
            f"there are more than {MAX_RULE_FILES} rule files (*.yaml at the top of the rules folder), the most a "
            "ruleset may have: merge some of them, or move what is not a rule file elsewhere"))])
    sections: dict[str, list[tuple[YNode, Pos]]] = defaultdict(list)
    for path in sorted(rule_files):
        tree, issues = parse_yaml(path, rule_files[path])
        reader.issues.extend(issues)
        if tree is None:
            if not issues:
                reader.error(Pos(path, 1, 1), f"{path} is empty; remove it or add sections ({', '.join(SECTIONS)})")
            continue
        top = reader.mapping(tree, f"the top level of {path}", optional=SECTIONS)
        if top is None:
            continue
        for key, node in top.items.items():
            if key in SECTIONS:
                sections[key].append((node, top.key_pos[key]))
    if reader.issues:
        raise RulesetInvalid(reader.issues)
    return sections


def _single_sections(reader: Reader, sections: Mapping[str, list[tuple[YNode, Pos]]]) -> dict[str, YNode]:
    single: dict[str, YNode] = {}
    for key in SINGLE_SECTIONS:
        found = sections.get(key, [])
        if not found:
            reader.error(Pos("ruleset.yaml", 1, 1), f"no `{key}:` section in any rule file; add one")
            continue
        for _, pos in found[1:]:
            reader.error(pos, f"`{key}:` is already written at {found[0][1]}; keep one")
        single[key] = found[0][0]
    if "rules" not in sections:
        reader.error(Pos("ruleset.yaml", 1, 1), "no `rules:` section in any rule file; add one")
    return single


def _grade_rules(
    reader: Reader, bands: list[GradeBand], assessment: Assessment | None, positions: dict[str, Pos]
) -> list[Rule]:
    """One rule per grade band (assessable, score in [min, next band's min)) and one for too few due."""
    specs: list[tuple[GradeBand, tuple[RuleTest, ...], dict[str, float | int]]] = []
    upper: float | None = None
    for band in bands:
        grade: GradeDefinition = band.grade
        assert grade.min_score is not None
        tests: list[RuleTest] = [RuleTest("assessable", "==", True), RuleTest("score", ">=", grade.min_score)]
        params: dict[str, float | int] = {"min_score": grade.min_score}
        if upper is not None:
            tests.append(RuleTest("score", "<", upper))
            params["max_score"] = upper
        specs.append((band, tuple(tests), params))
        upper = grade.min_score
    if assessment is not None:
        specs.append(
            (
                assessment.not_assessable,
                (RuleTest("assessable", "==", False),),
                {"min_due": assessment.min_due},
            )
        )
    rules: list[Rule] = []
    allowed = set(FACT_FIELDS[UNIT]) | set(LOCALISED_PLACEHOLDERS[UNIT])
    for band, band_tests, params in specs:
        rule_id = f"grade.{band.grade.grade}"
        what = f"grade `{band.grade.grade}`"
        check_reason(reader, band.node.items["reason"], what, band.reason, allowed, params)
        positions[rule_id] = band.node.pos
        rules.append(
            Rule(
                rule_id=rule_id,
                fact=UNIT,
                stage=Stage.GRADE,
                source=str(band.node.pos),
                order=len(rules),
                condition=" and ".join(f"{t.field} {t.op} {str(t.value).lower()}" for t in band_tests),
                branches=(band_tests,),
                fields=("score", "due") if band.grade.min_score is not None else ("due",),
                params=dict(params),
                effect=Effect.GRADE,
                grade=band.grade.grade,
                reason_vi=band.reason.vi,
                reason_en=band.reason.en,
            )
        )
    return rules


def _check_long_periods(reader: Reader, bands: list[GradeBand], assessment: Assessment) -> None:
    """The reason of `long_periods` shows rollup facts; with it, the grade bands grade half-years and years
    too, so their reasons may show only what a rollup fact has as well (the score, not `due`)."""
    long_periods, node = assessment.long_periods, assessment.long_periods_node
    if long_periods is None or node is None:
        return
    rollup = set(FACT_FIELDS[ROLLUP]) | set(LOCALISED_PLACEHOLDERS[ROLLUP])
    params = {"min_assessable_share": long_periods.min_assessable_share}
    check_reason(reader, node.items["reason"], "`long_periods`", Bilingual(long_periods.reason_vi,
                 long_periods.reason_en), rollup | {"min_assessable_quarters"}, params)
    for band in bands:
        shown = {name for lang in ("vi", "en") for name in _placeholders(getattr(band.reason, lang))}
        missing = sorted(shown - rollup - {"min_score", "max_score"})
        if missing:
            names = ", ".join(f"{{{name}}}" for name in missing)
            reader.error(band.node.items["reason"].pos,
                         f"the reason of grade `{band.grade.grade}` shows {names}, which half-years and years do "
                         "not have (`long_periods` grades them with the same bands): show the score instead, "
                         "e.g. \"Điểm {score} từ {min_score} trở lên\"")


def _placeholders(template: str) -> list[str]:
    try:
        return [placeholder.name for placeholder in parse_template(template)]
    except TemplateError:
        return []  # reported where the band is read


def _check_escalations(reader: Reader, rules: list[Rule], positions: Mapping[str, Pos]) -> None:
    """Rules that read this quarter's `flags` see flags of the flags stage only: no chains."""
    earlier = {rule.flag for rule in rules if rule.stage is Stage.FLAGS}
    for rule in rules:
        if rule.stage is not Stage.ESCALATION:
            continue
        for branch in rule.branches:
            for test in branch:
                if test.field == "flags" and test.op == "has" and test.value not in earlier:
                    reader.error(
                        positions[rule.rule_id],
                        f'rule `{rule.rule_id}` tests `flags has "{test.value}"`,'
                        " but only rules that themselves read `flags` raise it, so it can never be true: "
                        "rules reading `flags` see the flags raised by the other rules",
                    )


def _check_bands_reachable(reader: Reader, bands: list[GradeBand], max_score: float) -> None:
    """A band whose `min_score` is above the highest score could never be given."""
    for band in bands:
        minimum = band.grade.min_score
        if minimum is not None and minimum > max_score:
            reader.error(
                band.node.items["min_score"].pos,
                f"grade `{band.grade.grade}` can never be given: it needs a score of {minimum:g} or more, "
                f"but the highest score is {max_score:g} (`task_points` + `dx_points`); lower its `min_score`",
            )


def _check_levels(
    reader: Reader, rules: list[Rule], flags: list[FlagDefinition], positions: Mapping[str, Pos]
) -> None:
    """A higher level of a kind of flag (criticism before reminder) must not fire on milder figures."""
    for rule, message in inverted_levels(rules, flags):
        reader.error(positions[rule.rule_id], message)


def _check_commendations(
    reader: Reader, rules: list[Rule], flags: list[FlagDefinition], positions: Mapping[str, Pos]
) -> None:
    """Commendation is never proposed for a unit under review (Decree 98/2023/NĐ-CP, Art. 4)."""
    kinds = {definition.flag: definition.kind for definition in flags}
    for rule in rules:
        if rule.effect is not Effect.FLAG or kinds.get(rule.flag or "") != "commendation":
            continue
        guarded = all(
            any(t.field == "under_review" and (t.op, t.value) in (("==", False), ("!=", True)) for t in branch)
            for branch in rule.branches
        )
        if not guarded:
            reader.error(
                positions[rule.rule_id],
                f"rule `{rule.rule_id}` raises `{rule.flag}`, a commendation, without `not under_review`: "
                "commendation is never proposed for a unit under inspection or disciplinary review "
                "(Decree 98/2023/NĐ-CP, Art. 4); start its condition with `not under_review and`",
            )
