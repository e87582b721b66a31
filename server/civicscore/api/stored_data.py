"""`civicscore admin check-data`: stored values outside the domains of the fields they are read back through.

The field domains are enforced on every write (`api/domains.py`), but rows
stored before a domain was enforced, or written around the API, may fall
outside (a due date in 2101). Reads skip such values where they would fail
(ListPeriods names no quarter outside 2000-2100); this check lists them so an
administrator can mend them, by reading every stored resource through its API
form and checking it with the same domains as a request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from civicscore.api import convert, domains
from civicscore.store import Store
from civicscore.store.base import Page

_PAGE = 1000


@dataclass(frozen=True)
class Finding:
    """One stored value outside its field's domain."""

    resource: str
    field: str
    value: str
    problem: str


@dataclass(frozen=True)
class DataCheck:
    """What `check_stored_data` found: resources checked per collection, the findings listed, and all of them."""

    checked: dict[str, int]
    findings: list[Finding]
    total: int


def _pages(list_page: Callable[..., Page[Any]]) -> Iterator[Any]:
    after: str | None = None
    while True:
        page = list_page(after=after, limit=_PAGE)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


_MEND = "write it again with a value in the domain (see docs/api.md), or ask the civicscore team"


def check_stored_data(store: Store, *, max_findings: int) -> DataCheck:
    """Every stored unit, assignment, outcome, measurement and target, checked against its fields' domains."""
    collections: list[tuple[str, Callable[..., Page[Any]], Callable[[Any], Any]]] = [
        ("units", store.list_units, convert.unit_out),
        ("assignments", store.list_assignments, convert.assignment_out),
        ("outcomes", store.list_outcomes, convert.outcome_out),
        ("measurements", store.list_measurements, convert.measurement_out),
        ("targets", store.list_targets, convert.target_out),
    ]
    checked: dict[str, int] = {}
    findings: list[Finding] = []
    total = 0
    for collection, list_page, to_message in collections:
        checked[collection] = 0
        for item in _pages(list_page):
            checked[collection] += 1
            message = to_message(item)
            for violation in domains.check_message(message):
                total += 1
                if len(findings) < max_findings:
                    value = getattr(message, violation.field.split(".")[0].split("[")[0], "")
                    if hasattr(value, "seconds"):  # a Timestamp, possibly one Python cannot hold
                        value = f"seconds={value.seconds}"
                    findings.append(Finding(resource=message.name, field=violation.field, value=str(value)[:200],
                                            problem=f"{violation.description}; {_MEND}"))
    return DataCheck(checked=checked, findings=findings, total=total)
