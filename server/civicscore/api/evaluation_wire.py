"""An evaluation's reply on the wire, made once and stored beside it, so that reads do not re-encode it.

An `Evaluation` message is two parts: the BODY, every field that comes from the
canonical result (score, grade, counts, indicators, fired rules, flags, a roll-up),
and the ENVELOPE, the fields of the stored revision (name, revision, digests, time,
the unit's block and name, who evaluated). The engine worker that makes a result
also encodes its body (`body_of`, handed to the engine pool by the server, from the
result object itself: no JSON is parsed) and the
store keeps the bytes with the revision (`evaluations.reply_pb`, `reply_format`, and
`reply_of`: the digest of the result they were made from).
GetEvaluation then writes the envelope and appends the stored body: protobuf
encodings of disjoint fields concatenate into the encoding of the whole message,
so no result is parsed or rebuilt on a read.

This module imports only protobuf and the contract: engine workers load it.
Change `body` and you must bump `BODY_FORMAT`: bodies stored in another format,
or made from another result than the one stored, are read the long way (the
canonical JSON, through `body` again).
"""

from __future__ import annotations

from typing import Any

from civicscore.domain.scoring import display_score
from civicscore_api.v1 import evaluations_pb2

BODY_FORMAT = 1


def score_display(score: float | None) -> str:
    """Round half away from zero to 2 decimals, for display only."""
    return "" if score is None else f"{display_score(score):.2f}"


def _field(value: Any, name: str) -> Any:
    """A field of a result as stored (a dict from its canonical JSON) or as made (the engine's dataclass):
    the JSON's keys are the dataclass's field names, and its numbers round-trip exactly (repr)."""
    return value[name] if type(value) is dict else getattr(value, name)


def body(data: Any) -> evaluations_pb2.Evaluation:
    """The fields of an Evaluation that come from its canonical result: `json.loads(result_json)`, or the
    UnitEvaluation it was written from (one code path for both, so a stored body is what a read of the
    JSON would give)."""
    f = _field
    counts, score, flags = f(data, "counts"), f(data, "score"), f(data, "flags")
    evaluation = evaluations_pb2.Evaluation(
        assessable=f(data, "assessable"), score=score or 0.0, has_score=score is not None,
        score_display=score_display(score), grade=f(data, "grade"), grade_label_vi=f(data, "grade_vi"),
        grade_label_en=f(data, "grade_en"),
        counts=evaluations_pb2.TaskCounts(due=f(counts, "due"), completed=f(counts, "completed"),
                                          on_time=f(counts, "on_time"), late=f(counts, "late"),
                                          reworked=f(counts, "reworked"), open_overdue=f(data, "open_overdue")),
        penalty=f(data, "penalty"), flags=[f(flag, "flag") for flag in flags], flag_labels=flag_labels_out(flags))
    for ind in f(data, "indicators"):
        target = f(ind, "target")
        evaluation.indicators.add(
            indicator=f(ind, "indicator"), display_name_vi=f(ind, "name_vi"), display_name_en=f(ind, "name_en"),
            value=f(ind, "value"), target=target or 0.0, attainment=f(ind, "attainment"), weight=f(ind, "weight"),
            points=f(ind, "points"), counted=f(ind, "counted"))
    add_rule = evaluation.fired_rules.add  # tens per unit: the hot loop of a body
    for rule in f(data, "fired_rules"):
        r = rule if type(rule) is dict else rule.__dict__
        add_rule(rule_id=r["rule_id"], source=r["source"], fact=r["fact"], values=r["values"],
                 reason_vi=r["reason_vi"], reason_en=r["reason_en"], flag=r["flag"])
    rollup = data.get("rollup") if type(data) is dict else getattr(data, "rollup", None)
    if rollup:
        evaluation.rollup.CopyFrom(rollup_out(rollup))
    return evaluation


def body_of(result: Any) -> tuple[int, bytes]:
    """(BODY_FORMAT, the encoded body) of a UnitEvaluation: what the engine worker stores beside its result."""
    return BODY_FORMAT, body(result).SerializeToString()


def reply_bytes(envelope: evaluations_pb2.Evaluation, stored_body: bytes) -> bytes:
    """A GetEvaluationResponse's bytes: the envelope's encoding, then the stored body's, as field 1."""
    evaluation = envelope.SerializeToString() + stored_body
    return b"\x0a" + _varint(len(evaluation)) + evaluation


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def rollup_out(rollup: Any) -> evaluations_pb2.PeriodRollup:
    """How a half-year or year result (its `rollup`, stored or as made) was summed up from its quarters."""
    f = _field
    timeliness = f(rollup, "timeliness")
    return evaluations_pb2.PeriodRollup(
        span=f(rollup, "span"), quarters=f(rollup, "quarters"), missing_quarters=f(rollup, "missing"),
        assessable_quarters=f(rollup, "assessable_quarters"),
        min_assessable_quarters=f(rollup, "min_assessable_quarters"),
        excellent_quarters=f(rollup, "excellent_quarters"), criticism_quarters=f(rollup, "criticism_quarters"),
        timeliness=timeliness or 0.0, under_review=f(rollup, "under_review"),
        results=[evaluations_pb2.QuarterResult(
            period=f(r, "period"), revision=f(r, "revision"), assessable=f(r, "assessable"),
            score=f(r, "score") or 0.0, has_score=f(r, "score") is not None, score_display=score_display(f(r, "score")),
            grade=f(r, "grade"), grade_label_vi=f(r, "grade_vi"), grade_label_en=f(r, "grade_en"),
            timeliness=f(r, "timeliness"), flags=f(r, "flags"), criticism_flags=f(r, "criticism_flags"),
            ruleset_version=f(r, "ruleset_version"), ruleset_digest=f(r, "ruleset_digest"))
            for r in f(rollup, "results")])


def flag_labels_out(flags: Any) -> list[evaluations_pb2.FlagLabel]:
    """The flags' labels, as the ruleset that raised them named them."""
    return [evaluations_pb2.FlagLabel(flag=_field(x, "flag"), label_vi=_field(x, "label_vi"),
                                      label_en=_field(x, "label_en")) for x in flags]


def fired_rule_out(rule: dict[str, Any]) -> evaluations_pb2.FiredRule:
    """A stored fired rule (from canonical JSON) as the contract's message."""
    return evaluations_pb2.FiredRule(
        rule_id=rule["rule_id"], source=rule["source"], fact=rule["fact"], values=rule["values"],
        reason_vi=rule["reason_vi"], reason_en=rule["reason_en"], flag=rule["flag"])
