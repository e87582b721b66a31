"""Quarters (`2026-Q3`), half-years (`2026-H1`) and years (`2026`): parsing, bounds and neighbours."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from civicscore.errors import shown

_QUARTER = re.compile(r"^(\d{4})-Q([1-4])\Z")
# The years anything that names a quarter may fall in (dates, quarters, timestamps): the field domains.
FIRST_YEAR, LAST_YEAR = 2000, 2100
# Asia/Ho_Chi_Minh: UTC+7 all year (no daylight saving). Days and quarters end at midnight Hanoi time.
HANOI = dt.timezone(dt.timedelta(hours=7), "ICT")


def day_ends_at(day: dt.date) -> dt.datetime:
    """The first instant after `day` in Hanoi time: what happened before it happened on or before `day`."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), HANOI)


class InvalidPeriod(ValueError):
    """A period string that is not of the form expected (`YYYY-Qn`, or also `YYYY-Hn` and `YYYY` where
    half-years and years are accepted)."""


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    quarter: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """Parse `2026-Q3`; raise InvalidPeriod with the expected form otherwise."""
        match = _QUARTER.match(text)
        if not match or not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR:
            raise InvalidPeriod(f"{shown(text)} is not a quarter; write it as YYYY-Qn, e.g. 2026-Q3")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, day: dt.date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * self.quarter - 2, 1)

    @property
    def end(self) -> dt.date:
        if self.quarter == 4:
            return dt.date(self.year, 12, 31)
        return dt.date(self.year, 3 * self.quarter + 1, 1) - dt.timedelta(days=1)

    @property
    def closes_at(self) -> dt.datetime:
        """The first instant after the quarter in Hanoi time (its end, exclusive)."""
        return day_ends_at(self.end)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.quarter == 1 else Quarter(self.year, self.quarter - 1)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.quarter == 4 else Quarter(self.year, self.quarter + 1)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.quarter}"


@dataclass(frozen=True)
class QuarterToDate:
    """A quarter cut at `as_of` (inclusive): the inputs of a report on demand read its bounds in place of a
    whole quarter's (`provisional`)."""

    quarter: Quarter
    as_of: dt.date

    @property
    def start(self) -> dt.date:
        return self.quarter.start

    @property
    def end(self) -> dt.date:
        return self.as_of

    @property
    def closes_at(self) -> dt.datetime:
        return day_ends_at(self.as_of)

    def previous(self) -> Quarter:
        return self.quarter.previous()

    def __str__(self) -> str:
        return str(self.quarter)



_ROLLUP = re.compile(r"^(\d{4})(?:-H([12]))?\Z")
HALF_YEAR = "half_year"
YEAR = "year"


@dataclass(frozen=True, order=True)
class Rollup:
    """A half-year (`2026-H1` = Q1 + Q2, `2026-H2` = Q3 + Q4) or a year (`2026` = Q1..Q4), summed up from
    the stored evaluations of its quarters (sơ kết, tổng kết); `half` is 1 or 2, 0 for the whole year."""

    year: int
    half: int = 0

    @classmethod
    def parse(cls, text: str) -> Rollup:
        """Parse `2026-H1`, `2026-H2` or `2026`; raise InvalidPeriod with the expected forms otherwise."""
        match = _ROLLUP.match(text)
        if not match or not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR:
            raise InvalidPeriod(f"{shown(text)} is not a half-year or a year; write YYYY-H1, YYYY-H2 or YYYY, "
                                "e.g. 2026-H1 or 2026")
        return cls(int(match.group(1)), int(match.group(2) or 0))

    @property
    def kind(self) -> str:
        """`half_year` or `year` (the `span` of the rules' rollup fact)."""
        return HALF_YEAR if self.half else YEAR

    @property
    def quarters(self) -> tuple[Quarter, ...]:
        """Its quarters, in order: two for a half-year, four for a year."""
        numbers = (1, 2, 3, 4) if not self.half else ((1, 2) if self.half == 1 else (3, 4))
        return tuple(Quarter(self.year, n) for n in numbers)

    @property
    def last(self) -> Quarter:
        """Its last quarter: the ruleset in force for it grades the period and raises its flags."""
        return self.quarters[-1]

    @property
    def start(self) -> dt.date:
        return self.quarters[0].start

    @property
    def end(self) -> dt.date:
        return self.last.end

    @property
    def closes_at(self) -> dt.datetime:
        """The first instant after the period in Hanoi time (its end, exclusive)."""
        return day_ends_at(self.end)

    def previous(self) -> Rollup:
        """The period of the same kind before it: 2026-H1 -> 2025-H2, 2026 -> 2025."""
        if self.half == 2:
            return Rollup(self.year, 1)
        return Rollup(self.year - 1, 2 if self.half == 1 else 0)

    def __str__(self) -> str:
        return f"{self.year}-H{self.half}" if self.half else str(self.year)


Period = Quarter | Rollup


def parse_any_period(text: str) -> Period:
    """A quarter (`2026-Q3`), a half-year (`2026-H1`, `2026-H2`) or a year (`2026`); InvalidPeriod naming
    the three forms otherwise."""
    try:
        return Quarter.parse(text) if _QUARTER.match(text) else Rollup.parse(text)
    except InvalidPeriod:
        raise InvalidPeriod(f"{shown(text)} is not a period from {FIRST_YEAR} to {LAST_YEAR}; write a quarter "
                            "YYYY-Qn (2026-Q3), a half-year YYYY-H1 or YYYY-H2 (2026-H1) or a year YYYY (2026)"
                            ) from None


def rollups_of(quarter: Quarter) -> tuple[Rollup, Rollup]:
    """The half-year and the year a quarter belongs to."""
    return Rollup(quarter.year, 1 if quarter.quarter <= 2 else 2), Rollup(quarter.year)


def period_label(period: Period, lang: str) -> str:
    """A period as a sentence names it: `quý 2026-Q3` / `2026-Q3`, `6 tháng đầu năm 2026` / `the first half
    of 2026`, `năm 2026` / `2026`."""
    if isinstance(period, Quarter):
        return f"quý {period}" if lang == "vi" else str(period)
    if period.half:
        if lang == "vi":
            return f"6 tháng {'đầu' if period.half == 1 else 'cuối'} năm {period.year}"
        return f"the {'first' if period.half == 1 else 'second'} half of {period.year}"
    return f"năm {period.year}" if lang == "vi" else str(period.year)


def period_title(period: Period, lang: str) -> str:
    """A period as a heading names it: `Quý 2026-Q3`, `6 tháng đầu năm 2026` / `First half of 2026`,
    `Năm 2026` / `2026`."""
    label = period_label(period, lang)
    if lang != "vi" and label.startswith("the "):
        label = label.removeprefix("the ")
    return label[:1].upper() + label[1:]
