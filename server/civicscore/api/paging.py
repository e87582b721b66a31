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


def decode_token(token: str, scope: str) -> str | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor, fingerprint = data["c"], data["s"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput([Violation("page_token", "page_token is not one this server issued; "
                                      "pass next_page_token from the previous response", "INVALID_PAGE_TOKEN")]
                           ) from None
    if fingerprint != _fingerprint(scope):
        raise InvalidInput([Violation("page_token", "page_token was issued for a different parent or filter; "
                                      "keep them unchanged while paging", "INVALID_PAGE_TOKEN")])
    return str(cursor)
