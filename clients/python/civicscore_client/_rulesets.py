"""Ruleset calls: versions, check, activate, roll back, status, what-if; and explaining an evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from civicscore_api.v1 import evaluations_pb2, rulesets_pb2
from civicscore_client._calls import new_idempotency_key
from civicscore_client._connection import Connection
from civicscore_client._names import evaluation_name, join_filter, period_name

PAGE_SIZE = 1000


# The server's limits (civicscore.ruleset.limits; this package does not import the server): a rule
# file may be 1 MiB and a ruleset 50 files. Reading stops one past each, so that the server, or
# `rules check` on this machine, refuses what is too large by name, and nothing larger is held here.
MAX_RULE_FILE_BYTES = 1024 * 1024
MAX_RULE_FILES = 50


def read_rules_folder(path: str | Path) -> dict[str, str]:
    """The rule files of a folder as the server takes them: every top-level `*.yaml` / `*.yml`,
    keyed by file name (the `tests/` cases, README and schema are not part of a ruleset).

    At most 51 files are read, each up to one byte past 1 MiB (the cut text of a longer file is
    refused as too large wherever it is checked). Raises UnicodeDecodeError for a file that is not UTF-8.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of rule files")
    items = [item for item in sorted(folder.iterdir()) if item.is_file() and item.suffix in (".yaml", ".yml")]
    return {item.name: read_rule_text(item) for item in items[: MAX_RULE_FILES + 1]}


def read_rule_text(path: Path) -> str:
    """A rule or case file's UTF-8 text, read no further than one byte past 1 MiB."""
    with path.open("rb") as file:
        data = file.read(MAX_RULE_FILE_BYTES + 1)
    if len(data) > MAX_RULE_FILE_BYTES:  # cut, perhaps inside a character: refused as too large anyway
        return data.decode("utf-8", errors="replace")
    return data.decode("utf-8")


def rule_files(files: Mapping[str, str]) -> list[rulesets_pb2.RuleFile]:
    """`{path: content}` as RuleFile messages, by path."""
    return [rulesets_pb2.RuleFile(path=path, content=content) for path, content in sorted(files.items())]


def ruleset_name(ruleset: str) -> str:
    """`rulesets/{digest}` from a digest or a name."""
    return ruleset if ruleset.startswith("rulesets/") else f"rulesets/{ruleset}"


class RulesetCalls(Connection):
    """RulesetService beyond the active ruleset, and EvaluationService.ExplainEvaluation."""

    def get_ruleset(self, ruleset: str, *, include_files: bool = False,
                    timeout: float | None = None) -> rulesets_pb2.Ruleset:
        """A stored ruleset, by digest or `rulesets/{digest}`."""
        request = rulesets_pb2.GetRulesetRequest(name=ruleset_name(ruleset), include_files=include_files)
        return self._calls.unary(self._rulesets.GetRuleset, request, timeout=timeout).ruleset

    def list_ruleset_activations(
        self, *, version: str | None = None, source: str | None = None, filter: str = "",
        timeout: float | None = None,
    ) -> Iterator[rulesets_pb2.RulesetActivation]:
        """Every activation ever made, newest first."""
        query = join_filter(f"version={version}" if version else "", f"source={source}" if source else "", filter)

        def fetch(token: str) -> tuple[Sequence[rulesets_pb2.RulesetActivation], str]:
            request = rulesets_pb2.ListRulesetActivationsRequest(page_size=PAGE_SIZE, page_token=token, filter=query)
            reply = self._calls.unary(self._rulesets.ListRulesetActivations, request, timeout=timeout)
            return reply.activations, reply.next_page_token

        return self._calls.pages(fetch)

    def check_ruleset(self, files: Mapping[str, str], *,
                      timeout: float | None = None) -> rulesets_pb2.CheckRulesetResponse:
        """Every problem of candidate rule files (`{path: content}`), as the server would refuse them."""
        request = rulesets_pb2.CheckRulesetRequest(files=rule_files(files))
        return self._calls.unary(self._rulesets.CheckRuleset, request, timeout=timeout)

    def activate_ruleset(
        self,
        files: Mapping[str, str] | None = None,
        *,
        ruleset: str | None = None,
        reason: str = "",
        validate_only: bool = False,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> rulesets_pb2.ActivateRulesetResponse:
        """Activate new rule files, or (with `ruleset=`) a stored ruleset again."""
        if (files is None) == (ruleset is None):
            raise ValueError("give either rule files or a stored ruleset to activate")
        request = rulesets_pb2.ActivateRulesetRequest(
            reason=reason, validate_only=validate_only, idempotency_key=idempotency_key or new_idempotency_key())
        if files is not None:
            request.files.files.extend(rule_files(files))
        else:
            request.ruleset = ruleset_name(ruleset or "")
        return self._calls.unary(self._rulesets.ActivateRuleset, request, timeout=timeout)

    def rollback_ruleset(self, *, expected_digest: str = "", reason: str = "", idempotency_key: str | None = None,
                         timeout: float | None = None) -> rulesets_pb2.RollbackRulesetResponse:
        """Undo the latest activation (only if it is of `expected_digest`, when given)."""
        request = rulesets_pb2.RollbackRulesetRequest(
            expected_digest=expected_digest, reason=reason, idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._rulesets.RollbackRuleset, request, timeout=timeout)

    def get_ruleset_status(self, *, timeout: float | None = None) -> rulesets_pb2.GetRulesetStatusResponse:
        """The active ruleset, what is in force from which quarter, and the last refused activation."""
        request = rulesets_pb2.GetRulesetStatusRequest()
        return self._calls.unary(self._rulesets.GetRulesetStatus, request, timeout=timeout)

    def simulate_ruleset(self, files: Mapping[str, str], period: str, *, changed_only: bool = False,
                         timeout: float | None = None) -> rulesets_pb2.SimulateRulesetResponse:
        """Evaluate a stored quarter with candidate rule files and compare with the rules in force."""
        request = rulesets_pb2.SimulateRulesetRequest(
            files=rule_files(files), period=period_name(period), changed_only=changed_only)
        return self._calls.unary(self._rulesets.SimulateRuleset, request, timeout=timeout)

    def explain_evaluation(self, period: str, unit: str, *, revision: int = 0,
                           timeout: float | None = None) -> evaluations_pb2.ExplainEvaluationResponse:
        """Why a unit got its score, grade and flags, and what would change them."""
        request = evaluations_pb2.ExplainEvaluationRequest(name=evaluation_name(period, unit), revision=revision)
        return self._calls.unary(self._evaluations.ExplainEvaluation, request, timeout=timeout)
