"""Quarters (`2026-Q3`): parsing, bounds and neighbours."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from civicscore.errors import shown

_QUARTER = re.compile(r"^(\d{4})-Q([1-4])\Z")
# The years anything that names a quarter may fall in (dates, quarters, timestamps): the field domains.
FIRST_YEAR, LAST_YEAR = 2000, 2100


class InvalidPeriod(ValueError):
    """A period string that is not `YYYY-Qn`."""


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

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.quarter == 1 else Quarter(self.year, self.quarter - 1)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.quarter == 4 else Quarter(self.year, self.quarter + 1)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.quarter}"
