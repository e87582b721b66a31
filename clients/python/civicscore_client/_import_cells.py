"""Typed values of one row: every problem becomes a Reject, so a row reports all its problems at once."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from civicscore_client._import_records import Reject, nfc

E = TypeVar("E", bound=int)

HANOI = dt.timezone(dt.timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh: +07:00 all year, no summer time

_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_VN_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


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
            self.reject(column, f"expected text, found {json.dumps(value, ensure_ascii=False)}")
            return ""
        else:
            text = str(value)
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
            self.reject(column, f"unknown value {text!r}; expected {' | '.join(choices)}")
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
                return dt.date(int(vn.group(3)), int(vn.group(2)), int(vn.group(1))).isoformat()
            if len(text) != 10:
                raise ValueError
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            self.reject(column, f"{text!r} is not a date; write YYYY-MM-DD, e.g. 2026-07-15")
            return ""

    def timestamp(self, column: str) -> Timestamp | None:
        """An ISO 8601 date-time; Hanoi time (+07:00) when it has no offset."""
        text = self.text(column, required=True)
        if not text:
            return None
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            self.reject(column, f"{text!r} is not an ISO 8601 date-time; write e.g. 2026-07-15T09:30:00+07:00")
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=HANOI)
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
            self.reject(column, f"{text!r} is not a whole number of 0 or more")
            return 0
        return int(number)

    def number(self, column: str) -> float:
        """A finite decimal number (`.` as the decimal point)."""
        text = self.text(column, required=True)
        if not text:
            return 0.0
        try:
            number = float(text)
            if not math.isfinite(number):
                raise ValueError
        except ValueError:
            hint = " (use . as the decimal point)" if "," in text else ""
            self.reject(column, f"{text!r} is not a number{hint}")
            return 0.0
        return number

    def quarter(self, column: str) -> str:
        """A quarter `YYYY-Qn` (a `periods/` prefix is accepted)."""
        text = self.text(column, required=True).removeprefix("periods/")
        if not text:
            return ""
        match = _QUARTER.match(text)
        if not match:
            self.reject(column, f"{text!r} is not a quarter; write YYYY-Qn, e.g. 2026-Q3")
            return ""
        return f"{match.group(1)}-Q{match.group(2)}"
