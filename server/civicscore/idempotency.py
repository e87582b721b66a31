"""The one way a use case claims an idempotency key: look it up, and hand back the claim to write."""

from __future__ import annotations

from civicscore.errors import InvalidInput
from civicscore.store import IdempotencyRecord, Store
from civicscore.validation import check_idempotency_key


def claim_key(store: Store, key: str, method: str, request_digest: str
              ) -> tuple[IdempotencyRecord | None, str | None]:
    """(claim to write with the result, stored result of an earlier identical request); (None, None) without a key.

    Raises InvalidInput when the key is not 1-128 printable characters, IdempotencyConflict when it
    was used for a different request.
    """
    if not key:
        return None, None
    if problems := check_idempotency_key(key):
        raise InvalidInput(problems)
    claim = IdempotencyRecord(key=key, method=method, request_digest=request_digest)
    return claim, store.idempotent_result(key, method, request_digest)
