"""Page sizes and opaque page tokens bound to the filter they were issued for."""

from __future__ import annotations

import base64
import hashlib
import json

from civicscore.errors import InvalidInput, Violation

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(value: int) -> int:
    if value < 0:
        raise InvalidInput([Violation("page_size", "page_size must not be negative", "OUT_OF_RANGE")])
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def encode_token(cursor: str | None, scope: str) -> str:
    """Wrap a store cursor; `scope` (e.g. parent + filter) must be the same on the next request."""
    if cursor is None:
        return ""
    raw = json.dumps({"c": cursor, "s": _fingerprint(scope)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_NOT_OURS = "page_token is not one this server issued; pass next_page_token from the previous response"


def decode_token(token: str, scope: str) -> str | None:
    """The store cursor inside a page token; INVALID_ARGUMENT for a token this server did not issue."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor, fingerprint = data["c"], data["s"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput([Violation("page_token", _NOT_OURS, "INVALID_PAGE_TOKEN")]) from None
    if not isinstance(cursor, str):  # tokens are not secret: anyone can build one with a bad cursor
        raise InvalidInput([Violation("page_token", _NOT_OURS, "INVALID_PAGE_TOKEN")])
    if fingerprint != _fingerprint(scope):
        raise InvalidInput([Violation("page_token", "page_token was issued for a different parent or filter; "
                                      "keep them unchanged while paging", "INVALID_PAGE_TOKEN")])
    return str(cursor)


def decode_offset(token: str, scope: str) -> int:
    """The position a page token of an in-memory list (ListPeriods) resumes from; 0 without a token."""
    cursor = decode_token(token, scope)
    if cursor is None:
        return 0
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 9:
        raise InvalidInput([Violation("page_token", _NOT_OURS, "INVALID_PAGE_TOKEN")])
    return int(cursor)
