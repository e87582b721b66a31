"""Officials in golden cases (`officials:` of a quarter's case, `expect.officials`). Read by `casefile`.

    officials:
      - id: P1
        name: Nguyễn Văn A                        # optional
        positions:                                # unit: default the case's unit; to: default still held
          - {position: head, from: 2025-01-01}
          - {unit: SXD, position: officer, from: 2026-01-01, to: 2026-02-15}
        under_review: false                       # the official themself (default false)
        led: {due: 5, completed: 5, on_time: 5}   # or led_assignments, as `assignments` (+ `unit`)
        led_overdue: [31, 31]                     # with `led`: days overdue of open led assignments
    expect:
      officials:
        P1: {flags: [individual_praise, individual_reminder], fired: [...], not_fired: [...], reasons: {...}}

The runner (`cases.run_cases`) evaluates the case's unit, then builds the officials' facts with
`engine.people.build_official_facts`, the case's unit being the only unit with a result, and evaluates them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from civicscore.domain.model import TaskCounts
from civicscore.domain.officials import Appointment, Official, OfficialFacts, Position
from civicscore.domain.periods import Quarter
from civicscore.engine.facts import InvalidFacts, check_facts
from civicscore.ruleset.yamltree import Pos, YNode

if TYPE_CHECKING:
    from civicscore.ruleset.casefile import _CaseReader

OFFICIAL_KEYS = ("name", "positions", "under_review", "led", "led_assignments", "led_overdue")
POSITION_KEYS = ("unit", "position", "from", "to")
POSITIONS = tuple(position.value for position in Position)
OFFICIAL_EXPECT_KEYS = ("flags", "fired", "not_fired", "reasons")


@dataclass(frozen=True)
class CaseOfficial:
    """An official of a case: who they are and what they lead (`led_overdue`: days overdue, any order)."""

    official: Official
    led: TaskCounts
    led_overdue: tuple[int, ...] = ()


@dataclass(frozen=True)
class OfficialExpectation:
    """What a case expects for one official; `flags` None: not checked. `reasons` may name the official's
    own rules and the headed unit's rules whose reasons a flag carries."""

    flags: tuple[str, ...] | None = None
    fired: tuple[str, ...] = ()
    not_fired: tuple[str, ...] = ()
    reasons: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def read_officials(cases: _CaseReader, node: YNode, what: str, quarter: Quarter, unit_code: str
                   ) -> tuple[CaseOfficial, ...] | None:
    """The officials of a case (None after an issue, recorded in `cases.r`)."""
    listed = cases.r.sequence(node, f"`officials` of {what}")
    found = [_official(cases, item, what, quarter, unit_code) for item in listed]
    seen: dict[str, Pos] = {}
    for item, official in zip(listed, found, strict=True):
        if official is None:
            continue
        official_id = official.official.official_id
        if official_id in seen:
            cases.r.error(item.pos, f"official `{official_id}` of {what} is already listed at {seen[official_id]}; "
                                    "ids must be unique")
        seen.setdefault(official_id, item.pos)
    if any(official is None for official in found) or len(seen) != len(found):
        return None
    return tuple(official for official in found if official is not None)


def _official(cases: _CaseReader, node: YNode, what: str, quarter: Quarter, unit_code: str) -> CaseOfficial | None:
    r = cases.r
    block = r.mapping(node, f"an official of {what}", required=("id", "positions"), optional=OFFICIAL_KEYS)
    if block is None:
        return None
    items = block.items
    before = len(r.issues)
    official_id = r.text(items["id"], f"the id of an official of {what}", example="id: P1")
    name = f"official `{official_id}` of {what}" if official_id else f"an official of {what}"
    full_name = r.text(items["name"], f"the name of {name}", example="name: Nguyễn Văn A") if "name" in items else ""
    listed = r.sequence(items["positions"], f"`positions` of {name}")
    if not listed:
        r.error(items["positions"].pos, f"`positions` of {name} is empty; list at least one position held")
    appointments = [_appointment(cases, item, name, unit_code) for item in listed]
    under_review = cases.boolean(items["under_review"], f"`under_review` of {name}") if "under_review" in items \
        else False
    led, overdue = _led(cases, items, block.pos, name, quarter)
    if len(r.issues) > before or official_id is None or led is None or under_review is None:
        return None
    try:  # the counts alone: the rest of the facts is made when the case runs
        check_facts([OfficialFacts(official_id, unit_code, str(quarter), "", False, led,
                                   tuple(sorted(overdue, reverse=True)))])
    except InvalidFacts as error:
        detail = str(error).replace(f"official {official_id} {quarter}: ", "")
        where = items.get("led") or items.get("led_assignments") or block
        r.error(where.pos, f"what {name} leads contradicts itself: {detail}")
        return None
    official = Official(
        official_id=official_id, name=full_name or "",
        appointments=tuple(a for a in appointments if a is not None),
        under_review_periods=(str(quarter),) if under_review else (),
    )
    return CaseOfficial(official, led, overdue)


def _appointment(cases: _CaseReader, node: YNode, name: str, unit_code: str) -> Appointment | None:
    r = cases.r
    block = r.mapping(node, f"a position of {name}", required=("position", "from"), optional=POSITION_KEYS)
    if block is None:
        return None
    items = block.items
    unit = r.text(items["unit"], f"the unit of a position of {name}", example="unit: SNV") if "unit" in items \
        else unit_code
    position = cases.word(items["position"], f"a position of {name}", "position", POSITIONS)
    start = cases.date(items["from"], f"`from` of a position of {name}")
    end = cases.date(items["to"], f"`to` of a position of {name}") if "to" in items else None
    if start is not None and end is not None and end < start:
        cases.r.error(items["to"].pos, f"a position of {name} ends ({end}) before it starts ({start})")
        return None
    if unit is None or position is None or start is None or ("to" in items and end is None):
        return None
    return Appointment(unit, Position(position), start, end)


def _led(cases: _CaseReader, items: Mapping[str, YNode], pos: Pos, name: str, quarter: Quarter
         ) -> tuple[TaskCounts | None, tuple[int, ...]]:
    """What the official leads: `led` counts (and `led_overdue` days), or worked out from `led_assignments`;
    nothing given: nothing led."""
    r = cases.r
    if "led" in items and "led_assignments" in items:
        r.error(items["led_assignments"].pos, f"{name} gives both `led` and `led_assignments`: give one, the "
                                              "counts or the assignments they are worked out from")
        return None, ()
    if "led_assignments" in items:
        if "led_overdue" in items:
            r.error(items["led_overdue"].pos, f"`led_overdue` of {name} is worked out from `led_assignments`; "
                                              "leave it out (list the open assignments instead)")
            return None, ()
        inputs = cases.assignments(items["led_assignments"], f"the led assignments of {name}", quarter,
                                   extra_keys=("unit",))
        if inputs is None:
            return None, ()
        return inputs.counts, tuple(task.days_overdue for task in inputs.overdue)
    counts = cases.counts(items["led"], f"`led` of {name}") if "led" in items else TaskCounts()
    days = tuple(_days(cases, items["led_overdue"], name)) if "led_overdue" in items else ()
    return counts, days


def _days(cases: _CaseReader, node: YNode, name: str) -> Iterator[int]:
    for item in cases.r.sequence(node, f"`led_overdue` of {name}"):
        days = cases.r.integer(item, f"a number of days in `led_overdue` of {name}", example="led_overdue: [31, 45]",
                               minimum=1)
        if days is not None:
            yield days


def read_official_expectations(cases: _CaseReader, node: YNode, what: str, official_ids: tuple[str, ...]
                               ) -> dict[str, OfficialExpectation]:
    """`expect.officials`: {official id: {flags, fired, not_fired, reasons}}, for officials of the case."""
    if not official_ids:
        cases.r.error(node.pos, f"`officials` of the expectations of {what} names officials, but the case lists "
                                "none: add them under `officials` of the case")
        return {}
    block = cases.r.mapping(node, f"`officials` of the expectations of {what}", optional=official_ids)
    if block is None:
        return {}
    found: dict[str, OfficialExpectation] = {}
    for official_id, item in block.items.items():
        if official_id not in official_ids:
            continue  # reported by `mapping`, with a "did you mean"
        name = f"official `{official_id}` in {what}"
        expected = cases.r.mapping(item, f"the expectations of {name}", optional=OFFICIAL_EXPECT_KEYS)
        if expected is None:
            continue
        keys = expected.items
        if not keys:
            cases.r.error(expected.pos, f"the expectations of {name} are empty; say at least the `flags` expected")
            continue
        flags = cases.words(keys.get("flags"), f"the expected flags of {name}", "flag", cases.flags)
        fired = cases.words(keys.get("fired"), f"`fired` of {name}", "rule", cases.rule_ids)
        not_fired = cases.words(keys.get("not_fired"), f"`not_fired` of {name}", "rule", cases.rule_ids)
        reasons = cases.reason_expectations(keys["reasons"], name) if "reasons" in keys else {}
        found[official_id] = OfficialExpectation(flags if "flags" in keys else None, fired or (), not_fired or (),
                                                 reasons)
    return found
