"""A reporter writes only for the units in its scope: one out-of-scope item refuses the whole batch.

The refusal names the items and the caller's scope, and nothing about units the
caller may not see: an assignment of another unit and an assignment that does not
exist get the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from civicscore.auth.caller import current_caller
from civicscore.errors import PermissionDenied
from civicscore.store import Store

_LISTED = 10


def _refuse(what: str, bad: list[str], scope: Iterable[str]) -> PermissionDenied:
    shown = "; ".join(bad[:_LISTED]) + (f"; and {len(bad) - _LISTED} more" if len(bad) > _LISTED else "")
    units = ", ".join(f"units/{code}" for code in sorted(scope)) or "none"
    return PermissionDenied(f"nothing was stored: {len(bad)} {what} are outside your scope (units: {units}): {shown}")


def check_outcomes(store: Store, assignments: Iterable[str]) -> None:
    """Refuse the batch if any outcome's assignment is not one of the caller's units' assignments (read from
    `assignments` only when the caller is restricted to some units)."""
    caller = current_caller()
    if caller is None or caller.unrestricted:
        return
    names = list(assignments)
    ids = sorted({a.removeprefix("assignments/") for a in names})
    units = store.assignment_units(ids)
    bad = [f"outcomes[{index}]: {name} is not an assignment of your units (or does not exist)"
           for index, name in enumerate(names)
           if not caller.may_submit_for(units.get(name.removeprefix("assignments/"), ""))]
    if bad:
        raise _refuse("outcomes", bad, caller.scope_units)


def check_measurements(units: list[str]) -> None:
    """Refuse the batch if any measurement is for a unit outside the caller's scope."""
    caller = current_caller()
    if caller is None or caller.unrestricted:
        return
    bad = [f"measurements[{index}]: {unit or '(no unit)'}" for index, unit in enumerate(units)
           if not caller.may_submit_for(unit.removeprefix("units/"))]
    if bad:
        raise _refuse("measurements", bad, caller.scope_units)
