"""Who is calling: a bearer token from the metadata, or a client certificate from mutual TLS.

Lookups are cached for a few seconds (a token is checked on every call); revoking
through this server drops the cache entry at once, and other replicas see a
revocation within CACHE_S.

A sign-in session is also refused once it has idled out (`sessions.IdlePolicy`), decided from the
use recorded in the database, and its use is recorded there about once a minute. A refusal for
idleness reads the database first: another replica may have recorded a later use than the cache
holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from civicscore.auth.caller import Caller
from civicscore.auth.policy import permissions_of
from civicscore.auth.tokens import parse_token, secret_matches
from civicscore.sessions import IdlePolicy
from civicscore.store import Store
from civicscore.store.base import CredentialRecord, IdentityRecord
from civicscore.tls import peer_certificate_names

CACHE_S = 5.0
_MAX_CACHED = 10_000
log = logging.getLogger("civicscore.access")


class Unauthenticated(Exception):
    """No usable credentials; the message says what to do and never contains a secret."""

    def __init__(self, message: str, reason: str = "UNAUTHENTICATED") -> None:
        super().__init__(message)
        self.reason = reason  # the ErrorInfo reason of the refusal


def _caller(credential: CredentialRecord, identity: IdentityRecord) -> Caller:
    return Caller(identity_id=identity.identity_id, roles=identity.roles, scope_units=frozenset(identity.scope_units),
                  permissions=permissions_of(identity.roles), credential_id=credential.credential_id,
                  credential_kind=credential.kind)


class Authenticator:
    def __init__(self, store: Store, *, clock: Callable[[], dt.datetime], idle: IdlePolicy | None = None) -> None:
        self.store = store
        self.clock = clock
        self.idle = idle or IdlePolicy()
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, tuple[CredentialRecord, IdentityRecord] | None]] = {}

    def forget(self, credential_id: str | None = None) -> None:
        """Drop cached lookups (one credential, or all after an identity changed)."""
        with self._lock:
            if credential_id is None:
                self._tokens.clear()
            else:
                self._tokens.pop(credential_id, None)

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]],
                     auth_context: Mapping[str, Sequence[bytes]]) -> Caller:
        authorization = [value for key, value in metadata if key == "authorization"]
        if authorization:
            if len(authorization) > 1:
                raise Unauthenticated("send one authorization header, not several")
            value = authorization[0]
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("the authorization header must be `Bearer <token>`")
            return self._token(token.strip())
        names = peer_certificate_names(auth_context)
        if names:
            return self._certificate(names)
        raise Unauthenticated("no credentials: send `authorization: Bearer <token>` metadata (CLI: --token-file or "
                              "CIVICSCORE_TOKEN_FILE) or connect with a registered client certificate")

    def _token(self, token: str) -> Caller:
        parsed = parse_token(token)
        if parsed is None:
            raise Unauthenticated("the bearer token is malformed: civicscore tokens look like cs_<12 hex>_<43 "
                                  "characters>; copy it again from where it was issued")
        key_id, secret = parsed
        found = self._lookup(key_id)
        if found is None or found[0].kind != "token" or found[0].secret_sha256 is None \
                or not secret_matches(secret, found[0].secret_sha256):
            raise Unauthenticated("the bearer token is not valid here (unknown or wrong); ask an administrator "
                                  "for a token of this server")
        caller = self._check_live(*found)
        if found[0].sign_in:
            self._session_used(key_id, *found)
        return caller

    def _session_used(self, key_id: str, credential: CredentialRecord, identity: IdentityRecord) -> None:
        """Refuse a sign-in session that idled out; else record this use when one is due."""
        now = self.clock()
        if self.idle.ended(credential, now):
            fresh = self._lookup(key_id, fresh=True)  # the cache may predate another replica's record of a use
            if fresh is None or fresh[0].credential_id != credential.credential_id:
                raise Unauthenticated("the bearer token is not valid here (unknown or wrong); ask an administrator "
                                      "for a token of this server")
            credential, identity = fresh
            self._check_live(credential, identity)
            if self.idle.ended(credential, now):
                raise Unauthenticated(self.idle.refusal(identity.identity_id), reason="SESSION_IDLE")
        if not self.idle.record_due(credential, now):
            return
        try:
            self.store.record_use(key_id, at=now, unless_since=now - self.idle.record_every)
        except Exception:  # bookkeeping must not fail a call that was admitted; the next call tries again
            log.warning("could not record the use of sign-in session %s; the next call tries again", key_id,
                        exc_info=True)
            return
        with self._lock:  # this process need not write again for record_every
            cached = self._tokens.get(key_id)
            if cached is not None and cached[1] is not None:
                self._tokens[key_id] = (cached[0], (dataclasses.replace(cached[1][0], last_used_at=now),
                                                    cached[1][1]))

    def _lookup(self, key_id: str, *, fresh: bool = False) -> tuple[CredentialRecord, IdentityRecord] | None:
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(key_id)
            if cached is not None and now - cached[0] < CACHE_S and not fresh:
                return cached[1]
        found = self.store.get_credential(key_id)
        with self._lock:
            if len(self._tokens) >= _MAX_CACHED:
                self._tokens.clear()
            self._tokens[key_id] = (now, found)
        return found

    def _certificate(self, names: list[str]) -> Caller:
        found = [(c, i) for c, i in self.store.certificate_credentials(names)]
        live = [(c, i) for c, i in found if c.revoked_at is None and i.revoked_at is None
                and (c.expires_at is None or c.expires_at > self.clock())]
        if not live:
            if found:
                return self._check_live(*found[0])  # says why (revoked or expired)
            raise Unauthenticated(f"the client certificate ({names[0]}) is trusted but not registered for any "
                                  "identity; ask an administrator to register it")
        return _caller(*sorted(live, key=lambda pair: pair[0].credential_id)[0])

    def _check_live(self, credential: CredentialRecord, identity: IdentityRecord) -> Caller:
        if identity.revoked_at is not None:
            raise Unauthenticated(f"identity {identity.identity_id} was revoked")
        if credential.sign_in and credential.revoked_at is not None:
            raise Unauthenticated(f"this sign-in session of {identity.identity_id} has ended (signed out, or "
                                  "revoked when the password was set or by an administrator); sign in again")
        if credential.sign_in and credential.expires_at is not None and credential.expires_at <= self.clock():
            raise Unauthenticated(f"this sign-in session of {identity.identity_id} expired at "
                                  f"{credential.expires_at.isoformat()} (a session lasts at most 12 hours); "
                                  "sign in again")
        if credential.revoked_at is not None:
            raise Unauthenticated(f"this credential of {identity.identity_id} was revoked; ask an administrator "
                                  "for a new one")
        if credential.expires_at is not None and credential.expires_at <= self.clock():
            raise Unauthenticated(f"this credential of {identity.identity_id} expired at "
                                  f"{credential.expires_at.isoformat()}; ask an administrator for a new one")
        return _caller(credential, identity)
