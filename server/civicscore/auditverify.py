"""Verifying the hash-chained audit log: which entries were edited, deleted or reordered.

Each entry's hash covers the previous entry's hash and its own fields, so:
- an entry whose fields no longer give its stored hash was EDITED;
- a gap in the sequence numbers where the chain breaks (the entry after the gap names a
  previous hash that is not the entry before the gap's) means entries were DELETED;
- an entry whose `prev_hash` is not the hash of the entry before it (with no gap) was moved:
  REORDERED (or the entry before it was edited and re-hashed, which the same message covers);
- entries cut off from the end leave a valid chain: a (sequence, hash) noted earlier catches it.

Deletion is judged by the hash links, not by the numbers alone. Entries are numbered from the
chain under the audit lock (see `store.identities.append_audit`), so a transaction that died
leaves no gap; but databases written before that (schema revision 0008) numbered entries from a
PostgreSQL sequence, which spent a number for every transaction that died between its insert
and its commit. Such a gap is followed by an entry chained to the one before it: nothing was
removed, and it is not reported. Hiding a real deletion that way would take re-hashing every
later entry, which the numbers could not reveal either (they are not hashed): only a head noted
earlier (`expected_*`) catches a rewritten chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from civicscore.store.base import AuditEntry
from civicscore.store.identities import GENESIS_HASH, entry_hash


@dataclass(frozen=True)
class AuditProblem:
    kind: str  # EDITED | DELETED | REORDERED | HEAD_MISSING
    sequence: int
    message: str


@dataclass(frozen=True)
class AuditVerification:
    entries_checked: int
    problems: tuple[AuditProblem, ...]
    head_sequence: int
    head_hash: str

    @property
    def valid(self) -> bool:
        return not self.problems


def verify_chain(entries: Iterable[AuditEntry], *, expected_sequence: int = 0,
                 expected_hash: str = "") -> AuditVerification:
    """Check every entry, in sequence order; `expected_*` is a head noted at an earlier check."""
    problems: list[AuditProblem] = []
    listed = list(entries)
    where = {entry.entry_hash: entry.seq for entry in listed}
    previous_seq, previous_hash = 0, GENESIS_HASH
    for entry in listed:
        computed = entry_hash(entry.prev_hash, entry.at, entry.actor, entry.action, entry.target, entry.outcome,
                              entry.detail_json)
        if computed != entry.entry_hash:
            problems.append(AuditProblem("EDITED", entry.seq, f"entry #{entry.seq} ({entry.action} by {entry.actor}) "
                                         "does not match its hash: its content was changed"))
        skipped = entry.seq != previous_seq + 1
        if skipped and (entry.prev_hash != previous_hash or computed != entry.entry_hash):
            missing = f"#{previous_seq + 1}" if entry.seq == previous_seq + 2 else \
                f"#{previous_seq + 1} to #{entry.seq - 1}"
            problems.append(AuditProblem("DELETED", entry.seq, f"entries {missing} are missing before #{entry.seq}"))
        elif not skipped and entry.prev_hash != previous_hash:
            follows = where.get(entry.prev_hash)
            detail = (f"its chain says it follows entry #{follows}" if follows is not None
                      else "the entry it follows is not in the log (or was changed and re-hashed)")
            problems.append(AuditProblem("REORDERED", entry.seq, f"entry #{entry.seq} does not follow "
                                         f"#{previous_seq}: {detail}"))
        previous_seq, previous_hash = entry.seq, entry.entry_hash
    if expected_sequence:
        noted = next((e for e in listed if e.seq == expected_sequence), None)
        if noted is None or noted.entry_hash != expected_hash:
            state = "is missing" if noted is None else "has another hash"
            problems.append(AuditProblem("HEAD_MISSING", expected_sequence, f"entry #{expected_sequence}, noted "
                                         f"earlier with hash {expected_hash[:12]}…, {state}: the log was cut or "
                                         "rewritten"))
    return AuditVerification(entries_checked=len(listed), problems=tuple(problems), head_sequence=previous_seq,
                             head_hash=previous_hash if listed else "")
