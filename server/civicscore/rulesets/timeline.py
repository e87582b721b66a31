"""Which ruleset is in force for which quarter, from the activations not rolled back.

Every ruleset says from which quarter it is in force (`in_force_from`). A
ruleset applies from that quarter until the next ruleset's quarter. When two
live activations share a quarter, the later one wins: it corrects the earlier
one for the same quarters. A rollback removes its activation from the
timeline, so whatever it had replaced is in force again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from civicscore.domain.periods import Quarter
from civicscore.store.base import ActivationRecord


@dataclass(frozen=True)
class InForce:
    """From `from_quarter` on (until the next entry), the ruleset of `activation` applies."""

    from_quarter: Quarter
    activation: ActivationRecord


def timeline_of(activations: Iterable[ActivationRecord]) -> list[InForce]:
    """The timeline made by the live activations (rolled-back ones are ignored), oldest quarter first."""
    latest: dict[str, ActivationRecord] = {}
    for activation in sorted(activations, key=lambda a: a.seq):
        if activation.rolled_back_at is None:
            latest[activation.in_force_from] = activation
    return sorted((InForce(Quarter.parse(q), a) for q, a in latest.items()), key=lambda e: e.from_quarter)


def in_force_for(timeline: Sequence[InForce], quarter: Quarter) -> ActivationRecord | None:
    """The activation whose ruleset applies to `quarter`, or None before the first entry."""
    found = None
    for entry in timeline:
        if entry.from_quarter <= quarter:
            found = entry.activation
        else:
            break
    return found


def active_in(timeline: Sequence[InForce], quarter: Quarter) -> ActivationRecord | None:
    """What counts as active at `quarter`: the ruleset in force then, or before any is, the first one."""
    found = in_force_for(timeline, quarter)
    return found if found is not None or not timeline else timeline[0].activation
