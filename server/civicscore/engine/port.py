"""What the use cases need from a rules engine; implementations live beside this file."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload

from civicscore.domain.canonical import canonical_jsons, sha256_hex
from civicscore.domain.model import (
    FiredRule,
    FlagResult,
    IndicatorScore,
    QuarterResult,
    RollupFacts,
    RollupSummary,
    TaskCounts,
    UnitEvaluation,
    UnitFacts,
)
from civicscore.domain.officials import OfficialEvaluation, OfficialFacts


class EngineError(Exception):
    """An evaluation could not be completed (e.g. it kept crashing engine workers)."""


class EvaluationCancelled(EngineError):
    """The caller's `cancelled` event was set: the evaluation stopped before it finished."""


@dataclass(frozen=True)
class EncodedFlag:
    """A raised flag as stored with a recommendation; `reasons_json` is `canonical_json(list(flag.reasons))`."""

    flag: str
    kind: str
    level: int
    label_vi: str
    label_en: str
    reasons_json: str


@dataclass(frozen=True)
class EncodedEvaluation:
    """A UnitEvaluation already serialised (by the engine worker that made it).

    `result_json` is exactly `canonical_json(evaluation)` and `result_digest` its
    `sha256_hex`; the other fields are those of the evaluation that callers store
    beside it. `evaluation()` decodes the full UnitEvaluation when it is needed.
    """

    unit_code: str
    period: str
    assessable: bool
    score: float | None
    grade: str
    counts: TaskCounts
    indicators: tuple[IndicatorScore, ...]
    flags: tuple[EncodedFlag, ...]
    ruleset_version: str
    ruleset_digest: str
    inputs_digest: str
    result_json: str
    result_digest: str
    # The reply's body made by the pool's `reply_encoder` (format, bytes); 0 and b"" without one.
    reply_format: int = 0
    reply: bytes = b""

    def evaluation(self) -> UnitEvaluation:
        """The UnitEvaluation whose canonical JSON is `result_json`."""
        return evaluation_from_json(self.result_json)


def _encoded(result: UnitEvaluation | OfficialEvaluation) -> tuple[str, tuple[EncodedFlag, ...]]:
    """A result's canonical JSON and its flags with their reasons' (each fired rule is written once)."""
    result_json, *reasons = canonical_jsons([result, *(list(flag.reasons) for flag in result.flags)])
    return result_json, tuple(
        EncodedFlag(flag.flag, flag.kind, flag.level, flag.label_vi, flag.label_en, reasons_json)
        for flag, reasons_json in zip(result.flags, reasons, strict=True))


# Given a result, (format, bytes) of its reply's body as the api layer sends it: handed to the engine pool
# by the server (api.evaluation_wire.body_of), so that the engine never imports the api.
ReplyEncoder = Callable[[UnitEvaluation], tuple[int, bytes]]


def encode_evaluation(result: UnitEvaluation, reply_encoder: ReplyEncoder | None = None) -> EncodedEvaluation:
    """Serialise an evaluation and its flags' reasons (each fired rule is written once), and with a
    `reply_encoder` its reply's body."""
    result_json, flags = _encoded(result)
    reply_format, reply = reply_encoder(result) if reply_encoder is not None else (0, b"")
    return EncodedEvaluation(
        unit_code=result.unit_code,
        period=result.period,
        assessable=result.assessable,
        score=result.score,
        grade=result.grade,
        counts=result.counts,
        indicators=result.indicators,
        flags=flags,
        ruleset_version=result.ruleset_version,
        ruleset_digest=result.ruleset_digest,
        inputs_digest=result.inputs_digest,
        result_json=result_json,
        result_digest=sha256_hex(result_json),
        reply_format=reply_format,
        reply=reply,
    )


def evaluation_from_json(text: str) -> UnitEvaluation:
    """Decode `canonical_json(evaluation)` back into an equal UnitEvaluation."""
    data: dict[str, Any] = json.loads(text)
    return UnitEvaluation(
        **{
            **data,
            "counts": TaskCounts(**data["counts"]),
            "indicators": tuple(IndicatorScore(**item) for item in data["indicators"]),
            "fired_rules": tuple(FiredRule(**item) for item in data["fired_rules"]),
            "flags": tuple(
                FlagResult(**{**item, "reasons": tuple(FiredRule(**reason) for reason in item["reasons"])})
                for item in data["flags"]
            ),
            "rollup": _rollup_from_plain(data["rollup"]) if data.get("rollup") else None,
        }
    )


@dataclass(frozen=True)
class EncodedOfficialEvaluation:
    """An OfficialEvaluation already serialised (by the engine worker that made it), as EncodedEvaluation is
    for units: `result_json` is exactly `canonical_json(evaluation)`, `result_digest` its `sha256_hex`."""

    official_id: str
    unit_code: str
    period: str
    position: str
    flags: tuple[EncodedFlag, ...]
    ruleset_version: str
    ruleset_digest: str
    inputs_digest: str
    result_json: str
    result_digest: str

    def evaluation(self) -> OfficialEvaluation:
        """The OfficialEvaluation whose canonical JSON is `result_json`."""
        return official_evaluation_from_json(self.result_json)


def encode_official_evaluation(result: OfficialEvaluation) -> EncodedOfficialEvaluation:
    """Serialise an official's evaluation and its flags' reasons (each fired rule is written once)."""
    result_json, flags = _encoded(result)
    return EncodedOfficialEvaluation(
        official_id=result.official_id,
        unit_code=result.unit_code,
        period=result.period,
        position=result.position,
        flags=flags,
        ruleset_version=result.ruleset_version,
        ruleset_digest=result.ruleset_digest,
        inputs_digest=result.inputs_digest,
        result_json=result_json,
        result_digest=sha256_hex(result_json),
    )


def official_evaluation_from_json(text: str) -> OfficialEvaluation:
    """Decode `canonical_json(evaluation)` of an OfficialEvaluation back into an equal one."""
    data: dict[str, Any] = json.loads(text)
    return OfficialEvaluation(
        **{
            **data,
            "led": TaskCounts(**data["led"]),
            "headed_units": tuple(data["headed_units"]),
            "fired_rules": tuple(FiredRule(**item) for item in data["fired_rules"]),
            "flags": tuple(
                FlagResult(**{**item, "reasons": tuple(FiredRule(**reason) for reason in item["reasons"])})
                for item in data["flags"]
            ),
        }
    )


def _rollup_from_plain(data: dict[str, Any]) -> RollupSummary:
    """A RollupSummary from its canonical JSON data."""
    results = tuple(
        QuarterResult(**{**item, "flags": tuple(item["flags"]), "criticism_flags": tuple(item["criticism_flags"]),
                         "counts": TaskCounts(**item["counts"])})
        for item in data["results"]
    )
    return RollupSummary(**{**data, "quarters": tuple(data["quarters"]), "missing": tuple(data["missing"]),
                            "results": results})


class RulesEngine(Protocol):
    """Evaluates unit (or official) facts with one loaded ruleset."""

    @property
    def ruleset_version(self) -> str: ...

    @property
    def ruleset_digest(self) -> str: ...

    @overload
    def evaluate(self, facts: Sequence[UnitFacts | RollupFacts], *, cancelled: threading.Event | None = None
                 ) -> list[UnitEvaluation]: ...

    @overload
    def evaluate(self, facts: Sequence[OfficialFacts], *, cancelled: threading.Event | None = None
                 ) -> list[OfficialEvaluation]: ...

    def evaluate(self, facts: Sequence[UnitFacts | RollupFacts] | Sequence[OfficialFacts], *,
                 cancelled: threading.Event | None = None) -> list[UnitEvaluation] | list[OfficialEvaluation]:
        """Evaluate each unit's (or official's) facts; results are in the order of `facts`.

        When `cancelled` is set (e.g. the client has gone), work not yet started is dropped and
        EvaluationCancelled is raised promptly.
        """
        ...

    @overload
    def evaluate_encoded(self, facts: Sequence[UnitFacts | RollupFacts], *, cancelled: threading.Event | None = None
                         ) -> list[EncodedEvaluation]: ...

    @overload
    def evaluate_encoded(self, facts: Sequence[OfficialFacts], *, cancelled: threading.Event | None = None
                         ) -> list[EncodedOfficialEvaluation]: ...

    def evaluate_encoded(self, facts: Sequence[UnitFacts | RollupFacts] | Sequence[OfficialFacts], *,
                         cancelled: threading.Event | None = None
                         ) -> list[EncodedEvaluation] | list[EncodedOfficialEvaluation]:
        """As `evaluate`, with each result serialised by the engine (no `canonical_json` needed after)."""
        ...

    def evaluate_encoded_chunks(self, facts: Sequence[UnitFacts | RollupFacts], *,
                                cancelled: threading.Event | None = None) -> Iterator[list[EncodedEvaluation]]:
        """As `evaluate_encoded`, the results a chunk at a time, in order, each as soon as it is done; the facts
        are checked at once. A caller that stops reading has the work not yet started dropped."""
        ...

    def evaluate_encoded_groups(self, groups: Iterable[Sequence[UnitFacts | RollupFacts]], *, total: int,
                                cancelled: threading.Event | None = None) -> Iterator[list[EncodedEvaluation]]:
        """As `evaluate_encoded_chunks` of all the groups' facts, taken a group at a time: the work on a group
        starts while the next is made. `total` is the number of units in all the groups. Every group is taken
        before this returns; on an error the work already started is dropped."""
        ...

    def close(self) -> None:
        """Stop worker processes and free resources."""
        ...
