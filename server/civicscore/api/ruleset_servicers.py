"""RulesetService: versions, check, activate, roll back, status and what-if."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from civicscore import evaluate
from civicscore.api import ruleset_out as out
from civicscore.api.convert import request_digest
from civicscore.api.errors import handle_errors
from civicscore.api.filters import parse_filter
from civicscore.api.identity import caller
from civicscore.api.paging import decode_token, encode_token, page_size
from civicscore.api.simulate_out import simulation_out
from civicscore.engine.port import EngineError
from civicscore.errors import EvaluationFailed, FailedPrecondition, InvalidInput, NotFound, Violation
from civicscore.ruleset import is_rule_file
from civicscore.ruleset.limits import MAX_FILE_BYTES, MAX_RULE_FILES, size_text
from civicscore.rulesets import NoRulesetInForce, RulesetRefused, simulation
from civicscore.runtime import Runtime
from civicscore.store.base import NothingToRollBack
from civicscore.validation import check_idempotency_key, hanoi_today
from civicscore_api.v1 import rulesets_pb2, rulesets_pb2_grpc


def _digest_of_name(name: str, field: str) -> str:
    digest = name.removeprefix("rulesets/")
    if not name.startswith("rulesets/") or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInput([Violation(field, f"{name!r} is not a ruleset name; write rulesets/ and the 64 hex "
                                      "digits of its digest (see `civicscore rules history`)", "INVALID_NAME")])
    return digest


def _files_in(files: Iterable[rulesets_pb2.RuleFile], field: str) -> dict[str, str]:
    """The request's rule files, checked: unique top-level YAML paths, UTF-8 text within limits."""
    items = list(files)
    violations: list[Violation] = []
    if not items:
        violations.append(Violation(field, "no rule files given; send the top-level *.yaml files of a rules "
                                    "folder", "REQUIRED"))
    if len(items) > MAX_RULE_FILES:
        violations.append(Violation(field, f"{len(items)} files; at most {MAX_RULE_FILES}", "TOO_MANY"))
    result: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not is_rule_file(item.path):
            violations.append(Violation(f"{where}.path", f"{item.path!r} is not a rule file name: give the name of "
                                        "a top-level .yaml file such as flags.yaml (no folders)", "INVALID_PATH",
                                        index))
        elif item.path in result:
            violations.append(Violation(f"{where}.path", f"{item.path} is given twice", "DUPLICATE", index))
        if len(item.content.encode("utf-8")) > MAX_FILE_BYTES:
            violations.append(Violation(f"{where}.content", f"{item.path} is larger than {size_text(MAX_FILE_BYTES)}, "
                                        "the most a rule file may be; split it into smaller files", "TOO_LARGE",
                                        index))
        result[item.path] = item.content
    if violations:
        raise InvalidInput(violations)
    return result


def _refused(refused: RulesetRefused, files: dict[str, str], field: str) -> InvalidInput:
    """A refused ruleset as INVALID_ARGUMENT: one violation per issue, at the file it is in."""
    order = {path: index for index, path in enumerate(files)}
    violations = [
        Violation(f"{field}[{order[issue.file]}].content" if issue.file in order else field, str(issue),
                  "RULESET_INVALID", order.get(issue.file, -1))
        for issue in refused.issues
    ]
    count = len(refused.issues)
    first = f" First: {refused.issues[0]}" if refused.issues else ""
    return InvalidInput(violations, f"ruleset refused: {count} problem{'s' if count != 1 else ''}; the ruleset in "
                                    f"force keeps serving. Run `civicscore rules check` for the full list.{first}")


class RulesetServicer(rulesets_pb2_grpc.RulesetServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def GetActiveRuleset(self, request: rulesets_pb2.GetActiveRulesetRequest, context: grpc.ServicerContext
                         ) -> rulesets_pb2.GetActiveRulesetResponse:
        status = self.rt.rulesets.status()
        return rulesets_pb2.GetActiveRulesetResponse(ruleset=out.ruleset_out(
            status.active, activation=status.active_activation, load_time=status.loaded_at,
            include_files=request.include_files))

    @handle_errors
    def GetRuleset(self, request: rulesets_pb2.GetRulesetRequest, context: grpc.ServicerContext
                   ) -> rulesets_pb2.GetRulesetResponse:
        digest = _digest_of_name(request.name, "name")
        try:
            ruleset = self.rt.rulesets.ruleset(digest)
        except KeyError:
            raise NotFound(request.name, f"{request.name} was never activated here") from None
        latest = next((e.activation for e in reversed(self.rt.rulesets.timeline())
                       if e.activation.digest == digest), None)
        return rulesets_pb2.GetRulesetResponse(ruleset=out.ruleset_out(
            ruleset, activation=latest, include_files=request.include_files))

    @handle_errors
    def ListRulesetActivations(self, request: rulesets_pb2.ListRulesetActivationsRequest,
                               context: grpc.ServicerContext) -> rulesets_pb2.ListRulesetActivationsResponse:
        terms = parse_filter(request.filter, {"version", "source", "rolled_back"})
        rolled_back = terms.get("rolled_back")
        if rolled_back not in (None, "true", "false"):
            raise InvalidInput([Violation("filter", f"rolled_back must be true or false, not {rolled_back!r}",
                                          "INVALID_FILTER")])
        scope = f"activations|{request.filter}"
        page = self.rt.store.list_activations(
            version=terms.get("version"), source=terms.get("source"),
            rolled_back=None if rolled_back is None else rolled_back == "true",
            after=decode_token(request.page_token, scope), limit=page_size(request.page_size))
        return rulesets_pb2.ListRulesetActivationsResponse(
            activations=[out.activation_out(a) for a in page.items],
            next_page_token=encode_token(page.next_cursor, scope))

    @handle_errors
    def CheckRuleset(self, request: rulesets_pb2.CheckRulesetRequest, context: grpc.ServicerContext
                     ) -> rulesets_pb2.CheckRulesetResponse:
        files = _files_in(request.files, "files")
        # Checked in a budgeted child process, killed when the call ends (cancelled, deadline passed).
        cancelled = evaluate.cancellation_event(context.add_callback, shutdown=self.rt.shutdown)
        try:
            with evaluate.stops_when_cancelled("checking the rule files"):
                outcome = self.rt.rulesets.check(files, cancelled=cancelled)
        except EngineError as error:  # e.g. the server is shutting down
            raise EvaluationFailed(f"the rule files could not be checked: {error}") from error
        response = rulesets_pb2.CheckRulesetResponse(valid=not outcome.issues, issues=out.issues_out(outcome.issues))
        if outcome.ruleset is not None and not outcome.issues:
            response.ruleset.CopyFrom(out.ruleset_out(outcome.ruleset))
        return response

    @handle_errors
    def ActivateRuleset(self, request: rulesets_pb2.ActivateRulesetRequest, context: grpc.ServicerContext
                        ) -> rulesets_pb2.ActivateRulesetResponse:
        if violations := check_idempotency_key(request.idempotency_key):
            raise InvalidInput(violations)
        source = request.WhichOneof("source")
        files: dict[str, str] | None = None
        digest: str | None = None
        if source == "files":
            files = _files_in(request.files.files, "files.files")
        elif source == "ruleset":
            digest = _digest_of_name(request.ruleset, "ruleset")
            if self.rt.store.get_ruleset(digest) is None:
                raise NotFound(request.ruleset, f"{request.ruleset} was never activated here; send its files")
        else:
            raise InvalidInput([Violation("source", "give the rule files (files) or a stored ruleset (ruleset)",
                                          "REQUIRED")])
        cancelled = evaluate.cancellation_event(context.add_callback, shutdown=self.rt.shutdown)
        try:
            with evaluate.stops_when_cancelled("activating the rule files"):
                done = self.rt.rulesets.activate_request(
                    files, digest=digest, actor=caller(context), reason=request.reason,
                    validate_only=request.validate_only, idempotency_key=request.idempotency_key,
                    request_digest=request_digest(request), cancelled=cancelled)
        except RulesetRefused as refused:
            raise _refused(refused, files or {}, "files.files") from None
        except EngineError as error:  # e.g. the server is shutting down
            raise EvaluationFailed(f"the activation could not finish: {error}") from error
        response = rulesets_pb2.ActivateRulesetResponse(
            ruleset=out.ruleset_out(done.ruleset, activation=done.activation), unchanged=done.unchanged,
            evaluated_periods_affected=list(done.evaluated_periods_affected))
        if done.activation is not None:
            response.activation.CopyFrom(out.activation_out(done.activation))
        return response

    @handle_errors
    def RollbackRuleset(self, request: rulesets_pb2.RollbackRulesetRequest, context: grpc.ServicerContext
                        ) -> rulesets_pb2.RollbackRulesetResponse:
        if violations := check_idempotency_key(request.idempotency_key):
            raise InvalidInput(violations)
        if request.expected_digest:
            _digest_of_name(f"rulesets/{request.expected_digest}", "expected_digest")
        try:
            record = self.rt.rulesets.rollback_request(
                expected_digest=request.expected_digest, actor=caller(context), reason=request.reason,
                idempotency_key=request.idempotency_key, request_digest=request_digest(request))
        except NothingToRollBack as refused:
            raise FailedPrecondition(str(refused)) from None
        status = self.rt.rulesets.status()
        return rulesets_pb2.RollbackRulesetResponse(
            rolled_back=out.activation_out(record),
            ruleset=out.ruleset_out(status.active, activation=status.active_activation, load_time=status.loaded_at))

    @handle_errors
    def GetRulesetStatus(self, request: rulesets_pb2.GetRulesetStatusRequest, context: grpc.ServicerContext
                         ) -> rulesets_pb2.GetRulesetStatusResponse:
        return out.status_out(self.rt.rulesets.status(), rules_folder=self.rt.rules_folder)

    @handle_errors
    def SimulateRuleset(self, request: rulesets_pb2.SimulateRulesetRequest, context: grpc.ServicerContext
                        ) -> rulesets_pb2.SimulateRulesetResponse:
        quarter = evaluate.parse_period(request.period)
        files = _files_in(request.files, "files")
        if quarter.start > hanoi_today(self.rt.clock()):
            raise FailedPrecondition(f"quarter {quarter} has not started yet; simulate a quarter with data")
        # Set when the call ends: a client that cancels or whose deadline passes stops the work.
        cancelled = evaluate.cancellation_event(context.add_callback, shutdown=self.rt.shutdown)
        try:
            with evaluate.stops_when_cancelled(f"the simulation of {quarter}"):
                done = simulation.simulate(self.rt.store, self.rt.rulesets, files, quarter,
                                           changed_only=request.changed_only, cancelled=cancelled)
        except RulesetRefused as refused:
            raise _refused(refused, files, "files") from None
        except NoRulesetInForce as missing:
            raise FailedPrecondition(str(missing)) from None
        except EngineError as error:
            raise EvaluationFailed(f"the simulation of {quarter} could not finish: {error}") from error
        return simulation_out(done.simulation, out.ruleset_out(done.baseline), out.ruleset_out(done.candidate),
                              str(quarter))
