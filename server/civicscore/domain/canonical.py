"""Canonical JSON and digests: the same data always gives the same bytes.

Used for the inputs digest of an evaluation, for comparing a new result with
the stored one (no new revision when equal) and for idempotency digests.

`to_plain` + `json.dumps` (in `_reference_json`) define the text. `canonical_json`
writes the same text without building the plain copy first: strings, numbers,
lists and dicts are written with the encoder's own primitives, each dataclass type
gets a generated writer (fields in sorted order), and a dataclass instance met
twice in one value (e.g. a fired rule that is also a flag's reason) is written
once. Anything unusual (enums, dates, subclasses of the JSON types) goes through
`to_plain`; whatever the fast writer cannot do exactly (non-finite numbers, enum
values that are containers, cycles) re-runs the reference, so errors are its too.

A dataclass field declared with `metadata=OMITTED_WHEN_EMPTY` is left out of the text while it is empty
(an empty tuple, list or dict, or None): a field added to a record whose digests are already stored
(e.g. the extended assignments of `UnitFacts`) keeps the digests of every record that does not use it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring as _string  # the C encoder's own str writer
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

D = TypeVar("D")

# Field metadata: leave the field out of the canonical text while it is empty (see the module docstring).
OMITTED_WHEN_EMPTY: dict[str, bool] = {"canonical_omitted_when_empty": True}


def _omitted_when_empty(field: dataclasses.Field[Any]) -> bool:
    return bool(field.metadata.get("canonical_omitted_when_empty"))


def to_plain(value: Any) -> Any:
    """Turn dataclasses, enums, dates, tuples and floats into JSON-ready plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not (_omitted_when_empty(f) and _is_empty(getattr(value, f.name)))}
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


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (tuple, list, dict)) and not value)


def record_from_plain(kind: type[D], data: dict[str, Any]) -> D:
    """The inverse of `to_plain` for a flat record dataclass: datetimes, dates, enums and tuples restored."""
    hints = get_type_hints(kind)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(kind):  # type: ignore[arg-type]
        value, hint = data[field.name], hints[field.name]
        if value is not None:
            # `X | None` (and other unions): the member types; otherwise the hint itself
            members = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
            bases = {get_origin(member) or member for member in members}
            if dt.datetime in bases:
                value = dt.datetime.fromisoformat(value)
            elif dt.date in bases:
                value = dt.date.fromisoformat(value)
            elif tuple in bases and isinstance(value, list):
                value = tuple(value)
            else:
                value = next((base(value) for base in bases if isinstance(base, type) and issubclass(base, enum.Enum)),
                             value)
        values[field.name] = value
    return kind(**values)


def record_from_json(kind: type[D], text: str) -> D:
    """A record dataclass from its canonical JSON text (see `record_from_plain`)."""
    return record_from_plain(kind, json.loads(text))


def _reference_json(value: Any) -> str:
    """The definition of the canonical text (slow: builds the plain copy first)."""
    return json.dumps(to_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class _NotPlain(Exception):
    """The fast writer cannot reproduce the reference here; use the reference."""


_Memo = dict[int, tuple[Any, str]]
_Writer = Callable[[Any, _Memo], str]
_LEAVES = (str, int, float, bool, type(None))
_JSON_TYPES = (str, int, float, list, tuple, dict)
_WRITERS: dict[type, _Writer] = {}


def _dataclass_writer(cls: type) -> _Writer | None:
    """The generated writer of a dataclass type (None for other types), made once per type."""
    known = _WRITERS.get(cls)
    if known is not None:
        return known
    if not dataclasses.is_dataclass(cls) or issubclass(cls, (type, *_JSON_TYPES)):
        return None
    fields = sorted(dataclasses.fields(cls), key=lambda f: f.name)
    names = [f.name for f in fields]  # identifiers: safe in generated code
    reads = "".join(f"    v{i} = o.{name}\n" for i, name in enumerate(names))
    members = [  # strings and ints written in place, anything else by _write
        _string(name) + f":{{S(v{i}) if type(v{i}) is str else I(v{i}) if type(v{i}) is int else W(v{i}, memo)}}"
        for i, name in enumerate(names)
    ]
    if not any(_omitted_when_empty(f) for f in fields):
        source = f"def write(o, memo):\n{reads}    return f'{{{{{','.join(members)}}}}}'\n"
    else:  # each member in turn, those omitted while empty left out when they are
        parts = "".join(
            f"    if not E(v{i}):\n        m.append(f'{member}')\n" if _omitted_when_empty(fields[i])
            else f"    m.append(f'{member}')\n"
            for i, member in enumerate(members)
        )
        source = f"def write(o, memo):\n{reads}    m = []\n{parts}    return '{{' + ','.join(m) + '}}'\n"
    namespace: dict[str, Any] = {"S": _string, "I": int.__repr__, "W": _write, "E": _is_empty}
    exec(source, namespace)  # generated from dataclass field names only
    writer: _Writer = namespace["write"]
    _WRITERS[cls] = writer
    return writer


def _write(value: Any, memo: _Memo) -> str:
    """The canonical JSON text of `value` (the text `_reference_json` gives, or _NotPlain)."""
    kind = type(value)
    if kind is str:
        return _string(value)
    writer = _WRITERS.get(kind)
    if writer is not None:  # a dataclass
        seen = memo.get(id(value))
        if seen is None:  # the instance is kept in the memo, so its id cannot be reused meanwhile
            seen = memo[id(value)] = (value, writer(value, memo))
        return seen[1]
    if kind is dict:
        if len(value) == 1:  # most are a fired rule's values: one name and its number, written here at once
            ((key, item),) = value.items()
            if type(key) is str and type(item) is float and item - item == 0:
                return "{" + _string(key) + ":" + float.__repr__(item) + "}"
        for key in value:
            if type(key) is not str:
                value = {str(k): v for k, v in value.items()}  # to_plain's keys
                break
        # Finite floats (x - x == 0) and strings inline; anything else through _write.
        texts = [
            _string(k)
            + ":"
            + (
                float.__repr__(v)
                if type(v) is float and v - v == 0
                else _string(v)
                if type(v) is str
                else _write(v, memo)
            )
            for k, v in sorted(value.items())
        ]
        return "{" + ",".join(texts) + "}"
    if kind is float:
        if value - value != 0:  # inf or nan
            raise _NotPlain  # the reference raises its own error
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    if kind is list or kind is tuple:
        items = []
        for item in value:
            writer = _WRITERS.get(type(item))
            if writer is None:
                items.append(_write(item, memo))
                continue
            seen = memo.get(id(item))  # as above, without the extra call for each dataclass
            if seen is None:
                seen = memo[id(item)] = (item, writer(item, memo))
            items.append(seen[1])
        return "[" + ",".join(items) + "]"
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is dt.date:
        return _string(value.isoformat())
    if _dataclass_writer(kind) is not None:
        return _write(value, memo)
    plain = to_plain(value)  # enums, datetimes, subclasses of the JSON types, unknown objects
    if type(plain) not in _LEAVES:
        raise _NotPlain
    return _write(plain, memo)


def canonical_json(value: Any) -> str:
    """Serialise to compact, key-sorted JSON with non-ASCII kept as UTF-8 (the JSON of `to_plain(value)`)."""
    try:
        return _write(value, {})
    except Exception:  # the reference gives the same text, or the reference's error
        return _reference_json(value)


def canonical_jsons(values: Iterable[Any]) -> list[str]:
    """`canonical_json` of each value; an object met in several of them is written once."""
    memo: _Memo = {}
    texts = []
    for value in values:
        try:
            texts.append(_write(value, memo))
        except Exception:  # as in canonical_json
            texts.append(_reference_json(value))
    return texts


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_of(value: Any) -> str:
    """SHA-256 of the canonical JSON of `value`."""
    return sha256_hex(canonical_json(value))
