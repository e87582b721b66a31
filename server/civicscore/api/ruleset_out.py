"""Rulesets, activations, issues and status as protobuf messages."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Sequence

from civicscore.api.convert import timestamp_out
from civicscore.ruleset import Ruleset, RulesetIssue
from civicscore.rulesets import InForce, RefusedAttempt, RulesetStatus
from civicscore.store.base import ActivationRecord
from civicscore_api.v1 import rulesets_pb2


def ruleset_name(digest: str) -> str:
    return f"rulesets/{digest}"


def ruleset_out(
    rs: Ruleset,
    *,
    activation: ActivationRecord | None = None,
    load_time: dt.datetime | None = None,
    include_files: bool = False,
) -> rulesets_pb2.Ruleset:
    ruleset = rulesets_pb2.Ruleset(
        name=ruleset_name(rs.digest), ruleset_id=rs.ruleset_id, version=rs.version, digest=rs.digest,
        in_force_from=rs.in_force_from, rule_count=rs.rule_count, description_vi=rs.description_vi,
        description_en=rs.description_en)
    if load_time is not None:
        ruleset.load_time.CopyFrom(timestamp_out(load_time))
    if activation is not None:
        ruleset.activation.CopyFrom(activation_out(activation))
    for ind in rs.indicators:
        ruleset.indicators.add(code=ind.code, display_name_vi=ind.name_vi, display_name_en=ind.name_en,
                               weight=ind.weight)
    for flag in rs.flags:
        ruleset.flags.add(flag=flag.flag, label_vi=flag.label_vi, label_en=flag.label_en, kind=flag.kind,
                          level=flag.level)
    if include_files:
        for path, content in sorted(rs.files.items()):
            ruleset.files.add(path=path, content=content)
    return ruleset


def activation_out(record: ActivationRecord) -> rulesets_pb2.RulesetActivation:
    out = rulesets_pb2.RulesetActivation(
        sequence=record.seq, ruleset=ruleset_name(record.digest), version=record.version, digest=record.digest,
        in_force_from=record.in_force_from, actor=record.actor, source=record.source,
        activate_time=timestamp_out(record.activated_at), reason=record.reason,
        rolled_back=record.rolled_back_at is not None, rolled_back_by=record.rolled_back_by or "",
        rollback_reason=record.rollback_reason or "")
    if record.rolled_back_at is not None:
        out.rollback_time.CopyFrom(timestamp_out(record.rolled_back_at))
    return out


def issue_out(issue: RulesetIssue) -> rulesets_pb2.RulesetIssue:
    return rulesets_pb2.RulesetIssue(file=issue.file, line=issue.line, column=issue.column, message=issue.message)


def issues_out(issues: Sequence[RulesetIssue]) -> list[rulesets_pb2.RulesetIssue]:
    return [issue_out(issue) for issue in issues]


def in_force_out(entry: InForce) -> rulesets_pb2.InForceEntry:
    a = entry.activation
    return rulesets_pb2.InForceEntry(from_period=str(entry.from_quarter), ruleset=ruleset_name(a.digest),
                                     version=a.version, digest=a.digest)


def refused_out(attempt: RefusedAttempt) -> rulesets_pb2.RefusedActivation:
    return rulesets_pb2.RefusedActivation(
        refuse_time=timestamp_out(attempt.at), source=attempt.source, actor=attempt.actor, digest=attempt.digest,
        issues=issues_out(attempt.issues))


_REPLICA = f"{socket.gethostname()}:{os.getpid()}"


def status_out(status: RulesetStatus, *, rules_folder: str) -> rulesets_pb2.GetRulesetStatusResponse:
    following = "single" if status.listening is None else "notices" if status.listening else "reconciling"
    response = rulesets_pb2.GetRulesetStatusResponse(
        active=ruleset_out(status.active, activation=status.active_activation, load_time=status.loaded_at),
        in_force=[in_force_out(e) for e in status.timeline],
        rules_folder=rules_folder,
        loaded_digests=list(status.loaded_digests),
        applied_activation=status.applied.activation.seq if status.applied.activation is not None else 0,
        applied_time=timestamp_out(status.applied.at), following=following,
        watching_rules_folder=status.watching_folder, replica=_REPLICA)
    if status.loaded_at is not None:
        response.load_time.CopyFrom(timestamp_out(status.loaded_at))
    if status.last_refused is not None:
        response.last_refused.CopyFrom(refused_out(status.last_refused))
    return response
