"""Canonical JSON and digests: the same data always gives the same bytes.

Used for the inputs digest of an evaluation, for comparing a new result with
the stored one (no new revision when equal) and for idempotency digests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
from typing import Any


def to_plain(value: Any) -> Any:
    """Turn dataclasses, enums, dates, tuples and floats into JSON-ready plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {value!r} cannot be stored")
        # repr() is the shortest round-tripping form: stable across runs and machines.
        return float(repr(value))
    return value


def canonical_json(value: Any) -> str:
    """Serialise to compact, key-sorted JSON with non-ASCII kept as UTF-8."""
    return json.dumps(to_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_of(value: Any) -> str:
    """SHA-256 of the canonical JSON of `value`."""
    return sha256_hex(canonical_json(value))
