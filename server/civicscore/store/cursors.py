"""Keyset pagination: opaque cursors that carry the last row's sort key.

A cursor names the listing it came from, so one list's token handed to
another is rejected instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_

from civicscore.store.base import InvalidCursor, Page

T = TypeVar("T")
Key = tuple[str | int, ...]


def encode_cursor(listing: str, key: Key) -> str:
    payload = json.dumps([listing, *key], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(listing: str, cursor: str, arity: int) -> Key:
    """The sort key inside `cursor`; InvalidCursor if it is not a token of this listing."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursor(cursor) from error
    if (
        not isinstance(payload, list)
        or len(payload) != arity + 1
        or payload[0] != listing
        or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in payload[1:])
    ):
        raise InvalidCursor(cursor)
    return tuple(payload[1:])


def after_key(columns: Sequence[ColumnElement[Any]], key: Key) -> ColumnElement[bool]:
    """`(c1, c2, ...) > (k1, k2, ...)` spelled out, so both backends can use the index."""
    clauses: list[ColumnElement[bool]] = []
    for i, column in enumerate(columns):
        equal_prefix = [columns[j] == key[j] for j in range(i)]
        clauses.append(and_(*equal_prefix, column > key[i]))
    return or_(*clauses)


def paginate(
    query: Select[Any],
    columns: Sequence[ColumnElement[Any]],
    *,
    listing: str,
    after: str | None,
    limit: int,
) -> Select[Any]:
    """Order by the key columns, start after the cursor, fetch one row more than a page."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if after is not None:
        key = decode_cursor(listing, after, len(columns))
        if not all(isinstance(v, c.type.python_type) for v, c in zip(key, columns, strict=True)):
            raise InvalidCursor(after)
        query = query.where(after_key(columns, key))
    return query.order_by(*columns).limit(limit + 1)


def page_of(items: list[T], keys: list[Key], *, listing: str, limit: int) -> Page[T]:
    """Cut the extra row off and point the cursor at the page's last row."""
    if len(items) <= limit:
        return Page(items=items, next_cursor=None)
    return Page(items=items[:limit], next_cursor=encode_cursor(listing, keys[limit - 1]))
