"""Typed values of one row: every problem becomes a Reject, so a row reports all its problems at once.

Values are held to the server's field domains (docs/api.md), so that a value the server would refuse
is a reject at its line, and no value can break the request it goes into: dates, times and quarters
fall in the years 2000-2100 (a time from 2000-01-01 00:00 to before 2101-01-01 00:00, Hanoi time),
numbers are finite, text is valid Unicode.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from civicscore_client._import_records import Reject, nfc, shown

E = TypeVar("E", bound=int)

HANOI = dt.timezone(dt.timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh: +07:00 all year, no summer time

_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_VN_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# The years the server's domains accept (protos/civicscore/v1/domains.proto: VALUE_KIND_DATE, _PERIOD).
FIRST_YEAR, LAST_YEAR = 2000, 2100
FIRST_INSTANT = dt.datetime(FIRST_YEAR, 1, 1, tzinfo=HANOI)
END_INSTANT = dt.datetime(LAST_YEAR + 1, 1, 1, tzinfo=HANOI)  # exclusive
_YEARS = f"the years {FIRST_YEAR}-{LAST_YEAR}"
_SURROGATE = re.compile("[\ud800-\udfff]")


class Cells:
    """Typed access to one row's values; each problem becomes a Reject and a placeholder is returned."""

    def __init__(self, line: int, values: Mapping[str, object]) -> None:
        self.line = line
        self.values = values
        self.rejects: list[Reject] = []

    def reject(self, column: str, reason: str) -> None:
        self.rejects.append(Reject(self.line, column, reason))

    def text(self, column: str, *, required: bool = False) -> str:
        """The value as NFC text, stripped; empty when absent."""
        value = self.values.get(column)
        if value is None:
            text = ""
        elif isinstance(value, str):
            text = nfc(value).strip()
        elif isinstance(value, bool) or not isinstance(value, int | float):
            self.reject(column, f"expected text, found {shown(json.dumps(value, ensure_ascii=False))}")
            return ""
        else:
            text = str(value)
        surrogate = None if text.isascii() else _SURROGATE.search(text)
        if surrogate is not None:  # only a JSON `\ud800`-style escape makes one; it cannot be sent as text
            self.reject(column, f"holds \\u{ord(surrogate.group()):04x}, half of a UTF-16 surrogate pair, at "
                                f"character {surrogate.start() + 1}: not a character; fix the escape")
            return ""
        if required and not text:
            self.reject(column, "required; the value is empty" if column in self.values else "required; missing")
        return text

    def choice(self, column: str, choices: Mapping[str, E], unset: E, *, required: bool) -> E:
        """One of a fixed set of words (case-insensitive, `-` or space for `_`); `unset` when empty."""
        text = self.text(column, required=required)
        if not text:
            return unset
        word = re.sub(r"[\s-]+", "_", text.lower())
        if word not in choices:
            self.reject(column, f"unknown value {shown(text)}; expected {' | '.join(choices)}")
            return unset
        return choices[word]

    def date(self, column: str, *, required: bool) -> str:
        """A calendar date as `YYYY-MM-DD`, from `YYYY-MM-DD` or `DD/MM/YYYY`."""
        text = self.text(column, required=required)
        if not text:
            return ""
        try:
            vn = _VN_DATE.match(text)
            if vn:
                day = dt.date(int(vn.group(3)), int(vn.group(2)), int(vn.group(1)))
            elif len(text) != 10:
                raise ValueError
            else:
                day = dt.date.fromisoformat(text)
        except ValueError:
            self.reject(column, f"{shown(text)} is not a date; write YYYY-MM-DD, e.g. 2026-07-15")
            return ""
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            self.reject(column, f"{shown(text)} is outside {_YEARS}, the dates civicscore accepts")
            return ""
        return day.isoformat()

    def timestamp(self, column: str) -> Timestamp | None:
        """An ISO 8601 date-time; Hanoi time (+07:00) when it has no offset."""
        text = self.text(column, required=True)
        if not text:
            return None
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            self.reject(column, f"{shown(text)} is not an ISO 8601 date-time; write e.g. 2026-07-15T09:30:00+07:00")
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=HANOI)
        if not FIRST_INSTANT <= moment < END_INSTANT:
            self.reject(column, f"{shown(text)} is outside {_YEARS} (Hanoi time), the times civicscore accepts")
            return None
        stamp = Timestamp()
        stamp.FromDatetime(moment)
        return stamp

    def whole_number(self, column: str) -> int:
        """A whole number of 0 or more; 0 when empty."""
        text = self.text(column)
        if not text:
            return 0
        try:
            number = float(text)
            if not number.is_integer() or number < 0 or number > 2**31 - 1:
                raise ValueError
        except ValueError:
            self.reject(column, f"{shown(text)} is not a whole number of 0 or more")
            return 0
        return int(number)

    def number(self, column: str) -> float:
        """A finite decimal number (`.` as the decimal point)."""
        text = self.text(column, required=True)
        if not text:
            return 0.0
        try:
            number = float(text)
        except ValueError:
            hint = " (use . as the decimal point)" if "," in text else ""
            self.reject(column, f"{shown(text)} is not a number{hint}")
            return 0.0
        if not math.isfinite(number):  # inf, nan, or too large for a double, as 1e400
            self.reject(column, f"{shown(text)} is not a finite number")
            return 0.0
        return number

    def quarter(self, column: str) -> str:
        """A quarter `YYYY-Qn` (a `periods/` prefix is accepted)."""
        text = self.text(column, required=True).removeprefix("periods/")
        if not text:
            return ""
        match = _QUARTER.match(text)
        if not match:
            self.reject(column, f"{shown(text)} is not a quarter; write YYYY-Qn, e.g. 2026-Q3")
            return ""
        if not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR:
            self.reject(column, f"{shown(text)} is outside {_YEARS}, the quarters civicscore accepts")
            return ""
        return f"{match.group(1)}-Q{match.group(2)}"
