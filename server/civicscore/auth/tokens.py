"""Bearer tokens: `cs_<key id>_<secret>`, random, shown once; only SHA-256 of the secret is stored.

The key id (12 hex digits) names the credential, so a token is found with one
primary-key lookup and its secret compared in constant time. The secret has 256
bits of entropy, so a plain SHA-256 is enough (no slow hash: nothing to guess).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_FORMAT = re.compile(r"cs_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class NewToken:
    token: str  # give it to the caller once, never store or log it
    key_id: str
    secret_sha256: str


def new_token() -> NewToken:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(f"cs_{key_id}_{secret}", key_id, secret_hash(secret))


def parse_token(token: str) -> tuple[str, str] | None:
    """(key id, secret), or None when the text is not a civicscore token."""
    match = _FORMAT.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_sha256)


def token_prefix(key_id: str) -> str:
    """What may be shown of a token: enough to recognise it, nothing to use it."""
    return f"cs_{key_id}_…"
