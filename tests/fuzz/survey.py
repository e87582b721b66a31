"""Every call counted, every distinct failure grouped, and the report the team fixes from.

A failure's group is (RPC, problem kind, status code, signature). The signature is the message with
its variable parts (quoted values, numbers, hex ids) replaced, or for INTERNAL the exception the server
logged for the incident, so 300 INTERNAL replies to SubmitOutcomes caused by one overflow are one
group, and two different bugs behind the same status are two. Each group keeps its first request,
the request after minimisation, and which hostile values its failing requests held compared with all
calls of the RPC (the likely cause).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tests.fuzz.oracle import Problem

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_HEX = re.compile(r"\b[0-9a-f]{6,}\b")
_NUMBER = re.compile(r"-?\d[\d,._]*")
MAX_EXAMPLE_CHARS = 1200
SHARED_RPCS = 5  # a failure this many RPCs share is reported once, with the RPCs named


def signature(message: str) -> str:
    """The message with its variable parts replaced, cut to 160 characters."""
    text = _QUOTED.sub("<v>", message)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:160]


@dataclass
class Group:
    rpc: str
    kind: str
    code: str
    signature: str
    detail: str
    message: str
    count: int = 0
    example: str = ""
    minimal: str = ""
    server_error: str = ""
    features: Counter[str] = field(default_factory=Counter)
    also: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.rpc, self.kind, self.code, self.signature)


SEVERITY = ("serving", "rows", "status", "canary", "domain", "message", "details")


def lead(problems: list[Problem]) -> Problem:
    """The most severe of a reply's problems: it names the group."""
    return min(problems, key=lambda p: SEVERITY.index(p.kind) if p.kind in SEVERITY else len(SEVERITY))


def group_key(rpc: str, problem: Problem, code: str, message: str, server_error: str) -> tuple[str, str, str, str]:
    basis = (server_error or message) if problem.kind in ("status", "rows", "serving") else problem.detail
    return (rpc, problem.kind, code, signature(basis))


class Survey:
    """The tally of a fuzz run."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # generated calls per RPC (typed and raw)
        self.raw_calls: Counter[str] = Counter()
        self.extra_calls: Counter[str] = Counter()  # minimisation, canaries, restores: not in the budget
        self.codes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.features: defaultdict[str, Counter[str]] = defaultdict(Counter)  # per RPC, over all calls
        self.groups: dict[tuple[str, str, str, str], Group] = {}
        self.seconds: Counter[str] = Counter()
        self.server_cpu_s = 0.0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def count(self, rpc: str, code: str, features: list[str], *, raw: bool = False) -> None:
        self.calls[rpc] += 1
        if raw:
            self.raw_calls[rpc] += 1
        self.codes[rpc][code] += 1
        for name in set(_feature_class(f) for f in features):
            self.features[rpc][name] += 1

    def fail(self, rpc: str, problems: list[Problem], code: str, message: str, example: str, features: list[str],
             server_error: str = "") -> Group:
        """Record a failing call under the group of its most severe problem; the other problems of the
        same reply (an INTERNAL also names an incident) are kept with the group, not grouped apart."""
        first = lead(problems)
        key = group_key(rpc, first, code, message, server_error)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(rpc, first.kind, code, key[3], first.detail, message[:600],
                                             example=example[:MAX_EXAMPLE_CHARS], server_error=server_error)
        group.count += 1
        group.also.update(p.detail for p in problems if p is not first and p.kind != "status")
        for name in set(_feature_class(f) for f in features):
            group.features[name] += 1
        return group

    def groups_for(self, rpc: str) -> list[Group]:
        return [g for g in self.groups.values() if g.rpc == rpc]

    # ---- the report -------------------------------------------------------------------------------
    def counts_table(self) -> str:
        lines = [f"{'RPC':44} {'calls':>7} {'raw':>5} {'ms/call':>7}  replies"]
        for rpc in sorted(self.calls):
            codes = ", ".join(f"{code} {n}" for code, n in self.codes[rpc].most_common())
            per_call = 1000 * self.seconds[rpc] / self.calls[rpc]
            lines.append(f"{rpc:44} {self.calls[rpc]:7,} {self.raw_calls[rpc]:5,} {per_call:7.1f}  {codes}")
        extra = sum(self.extra_calls.values())
        lines.append(f"{'total generated calls':44} {self.total:7,} {sum(self.raw_calls.values()):5,} {'':7}  "
                     f"(plus {extra:,} minimisation/canary/restore calls)")
        return "\n".join(lines)

    def report(self, rpcs: list[str] | None = None) -> str:
        """Every group: first those that many RPCs share (one entry each, with the RPCs named), then the
        rest RPC by RPC, with the likely cause and the minimised request."""
        groups = [g for g in self.groups.values() if rpcs is None or g.rpc in rpcs]
        if not groups:
            return "no failures"
        shared: defaultdict[tuple[str, str, str], list[Group]] = defaultdict(list)
        for group in groups:
            shared[(group.kind, group.code, group.signature)].append(group)
        widespread = {key: members for key, members in shared.items() if len(members) >= SHARED_RPCS}
        out = [f"{len(groups)} distinct failure(s) in {sum(g.count for g in groups):,} failing call(s)."]
        for (kind, code, _sig), members in sorted(widespread.items(), key=lambda item: -len(item[1])):
            first = max(members, key=lambda g: g.count)
            out.append("")
            out.append(f"[{kind}] {len(members)} RPCs -> {code} ×{sum(g.count for g in members)}: {first.detail}")
            out.append(f"    rpcs:    {', '.join(sorted(g.rpc for g in members))}")
            out.extend(self._describe(first))
        rest = [g for g in groups if (g.kind, g.code, g.signature) not in widespread]
        for group in sorted(rest, key=lambda g: (SEVERITY.index(g.kind) if g.kind in SEVERITY else 99, g.rpc,
                                                 -g.count)):
            out.append("")
            out.append(f"[{group.kind}] {group.rpc} -> {group.code} ×{group.count}: {group.detail}")
            out.extend(self._describe(group))
        return "\n".join(out)

    def _describe(self, group: Group) -> list[str]:
        lines = []
        if group.message:
            lines.append(f"    message: {group.message[:400]}")
        if group.server_error:
            lines.append(f"    server:  {group.server_error[:400]}")
        if group.also:
            lines.append(f"    also:    {'; '.join(sorted(group.also))[:400]}")
        if cause := self.likely_cause(group):
            lines.append(f"    values:  {cause}")
        if group.minimal:
            lines.append(f"    minimal: {group.minimal}")
        elif group.example:
            lines.append(f"    example: {group.example}")
        return lines

    def likely_cause(self, group: Group) -> str:
        """Hostile value classes most specific to the group's failing calls: present in most of them
        and rarer across all calls of the RPC."""
        total = self.calls[group.rpc] or 1
        scored = []
        for name, seen in group.features.items():
            share_failing = seen / group.count
            share_all = self.features[group.rpc][name] / total
            if share_failing >= 0.5:
                scored.append((share_failing - share_all, name, share_failing, share_all))
        scored.sort(reverse=True)
        return "; ".join(f"{name} ({failing:.0%} of failing, {overall:.0%} of all)"
                         for _, name, failing, overall in scored[:4])


def _feature_class(feature: str) -> str:
    """`outcomes[3].reported_at: negative nanos` -> `outcomes[].reported_at: negative nanos` (indices
    do not make a value class)."""
    return re.sub(r"\[\d+\]", "[]", re.sub(r"\(\d[\d,]* (chars|items)\)", "(long)", feature))
