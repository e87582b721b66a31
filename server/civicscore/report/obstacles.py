"""The report's obstacles (khó khăn, vướng mắc): those still open at the period's end, oldest first, and
those resolved within the period (Hanoi time), read through the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from civicscore.domain.obstacles import ObstacleRecord, days_open, open_at
from civicscore.domain.periods import HANOI, Quarter, QuarterToDate, Rollup
from civicscore.store import Store

_PAGE = 1000


@dataclass(frozen=True)
class ObstacleRow:
    """One obstacle as the report lists it; `days_open` counts to the period's end (open ones) or to the
    day it was resolved (resolved ones)."""

    name: str  # assignments/{id}/obstacles/{n}
    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    assignment_id: str
    title: str
    description: str
    request: str
    requested_of: str
    reported_at: dt.datetime
    days_open: int
    resolver: str  # units/{code}, an official's name, or "" while none is named
    resolution: str
    resolved_at: dt.datetime | None


def _all(store: Store, **filters: object) -> Iterator[ObstacleRecord]:
    cursor: str | None = None
    while True:
        page = store.list_obstacles(after=cursor, limit=_PAGE, **filters)  # type: ignore[arg-type]
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def obstacle_rows(store: Store, period: Quarter | QuarterToDate | Rollup, names: Mapping[str, tuple[str, str]]
                  ) -> tuple[tuple[ObstacleRow, ...], tuple[ObstacleRow, ...]]:
    """(open at the period's end, oldest first; resolved within the period, in order of resolution)."""
    closes = period.closes_at
    start = dt.datetime.combine(period.start, dt.time(), HANOI)
    open_records = [r for r in _all(store, reported_before=closes) if open_at(r, closes)]
    resolved_records = list(_all(store, resolved=(start, closes)))
    known = dict(names)
    missing = sorted({r.unit_code for r in (*open_records, *resolved_records)} - set(known))
    known.update({code: (u.name_vi, u.name_en) for code, u in store.get_units(missing).items()})

    def row(r: ObstacleRecord, until: dt.date) -> ObstacleRow:
        vi, en = known.get(r.unit_code, (r.unit_code, ""))
        resolver = f"units/{r.resolver_unit}" if r.resolver_unit else r.resolver_official
        return ObstacleRow(
            name=f"assignments/{r.assignment_id}/obstacles/{r.obstacle_id}", unit_code=r.unit_code,
            unit_name_vi=vi, unit_name_en=en, assignment_id=r.assignment_id, title=r.assignment_title,
            description=r.description, request=r.request, requested_of=r.requested_of, reported_at=r.reported_at,
            days_open=max(0, days_open(r.reported_at, until)), resolver=resolver, resolution=r.resolution,
            resolved_at=r.resolved_at)

    still_open = [row(r, period.end) for r in open_records]
    resolved = [row(r, (r.resolved_at or closes).astimezone(HANOI).date()) for r in resolved_records]
    still_open.sort(key=lambda o: (-o.days_open, o.reported_at, o.name))
    resolved.sort(key=lambda o: (o.resolved_at or closes, o.name))
    return tuple(still_open), tuple(resolved)
