"""Passwords for people: set and change them, and sign in with them for a short-lived token.

A password is never stored, logged or echoed: the store keeps its argon2id hash only, audit
entries name who set it and when, and error messages say what is wrong without the value.
Passwords are compared after Unicode NFC normalisation, so Vietnamese typed with any input method
(precomposed or combining marks) is the same password.

Signing in is throttled in the database, per identity, so that every replica counts the same
failures: the LOCK_AFTER-th consecutive failure locks the identity for `lockout_duration` (one
minute, doubling with each lock-out since the last success, at most an hour). A sign-in while
locked is refused even with the right password. Every other failure (wrong password, unknown
identity, no password, revoked identity) gets the same message after the same argon2 work (an
unknown identity is checked against a dummy hash), so a caller cannot tell which it was.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from civicscore.auth.tokens import new_token
from civicscore.errors import (
    FailedPrecondition,
    InvalidInput,
    LockedOut,
    NotFound,
    PermissionDenied,
    SignInRefused,
    Violation,
)
from civicscore.store import Store
from civicscore.store.base import CredentialRecord, IdentityRecord, NewAuditEvent, PasswordRecord

log = logging.getLogger("civicscore.access")

MIN_CHARACTERS = 12
MAX_BYTES = 256  # bounds the work a password costs (argon2 hashes any length)
LOCK_AFTER = 10
FIRST_LOCK = dt.timedelta(minutes=1)
LONGEST_LOCK = dt.timedelta(hours=1)
SESSION = dt.timedelta(hours=12)
# At most this many argon2 computations at once (each takes 64 MiB and a core for ~50 ms): a burst of
# sign-ins waits here instead of exhausting the server's memory.
CONCURRENT_HASHES = 4
HASH_WAIT_S = 10.0

SIGN_IN_FAILED = ("sign-in failed: the identity or the password is wrong (an identity without a password "
                  "cannot sign in: an administrator sets one with `civicscore admin password ID`)")

_hasher = PasswordHasher()  # argon2id, RFC 9106's low-memory profile
_hashing = threading.BoundedSemaphore(CONCURRENT_HASHES)
_dummy_lock = threading.Lock()
_dummy: list[str] = []


class TooManySignIns(LockedOut):
    """More sign-ins at once than the server hashes; retry in a moment."""

    reason = "TOO_MANY_SIGN_INS"


@dataclass(frozen=True)
class SignedIn:
    token: str  # shown once to the person, never stored or logged
    credential: CredentialRecord
    identity: IdentityRecord


def normalized(password: str) -> str:
    return unicodedata.normalize("NFC", password)


def password_problems(password: str, identity_id: str, field: str = "new_password") -> list[Violation]:
    """What is wrong with `password` as a new password of `identity_id`, never quoting it."""
    text = normalized(password)
    if not text:
        return [Violation(field, f"{field} is required: give the new password", "REQUIRED")]
    if len(text) < MIN_CHARACTERS:
        return [Violation(field, f"{field} is too short: a password needs at least {MIN_CHARACTERS} characters "
                          "(a few words make a good one)", "TOO_SHORT")]
    if len(text.encode("utf-8")) > MAX_BYTES:
        return [Violation(field, f"{field} is too long: a password may have at most {MAX_BYTES} bytes in UTF-8 "
                          f"({MAX_BYTES} Latin letters, fewer Vietnamese ones)", "TOO_LONG")]
    if text.strip().casefold() == identity_id.casefold():
        return [Violation(field, f"{field} must not be the identity's id; choose another", "SAME_AS_ID")]
    return []


def lockout_duration(lockouts: int) -> dt.timedelta:
    """How long the `lockouts`-th lock-out since the last success lasts: 1 minute, doubling, at most 1 hour."""
    return min(FIRST_LOCK * (1 << min(max(lockouts - 1, 0), 16)), LONGEST_LOCK)


def _with_hash_slot(work: str) -> None:
    if not _hashing.acquire(timeout=HASH_WAIT_S):
        raise TooManySignIns(f"too many {work} in progress on this server; retry in a few seconds",
                             retry_after_s=1.0)


def hash_password(password: str) -> str:
    """The argon2id hash (`$argon2id$…`) of a password, normalised to NFC."""
    _with_hash_slot("password changes")
    try:
        return _hasher.hash(normalized(password))
    finally:
        _hashing.release()


def _dummy_hash() -> str:
    with _dummy_lock:
        if not _dummy:
            _dummy.append(_hasher.hash("not a password: checked when an identity has none"))
        return _dummy[0]


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash`; with None, the same work against a dummy hash, and False."""
    target = stored_hash if stored_hash is not None else _dummy_hash()
    _with_hash_slot("sign-ins")
    try:
        _hasher.verify(target, normalized(password))
        return stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    finally:
        _hashing.release()


def _locked_out(identity_id: str, until: dt.datetime, now: dt.datetime) -> LockedOut:
    seconds = max((until - now).total_seconds(), 1.0)
    wait = f"{seconds / 60:.0f} minute(s)" if seconds >= 90 else f"{seconds:.0f} seconds"
    return LockedOut(f"identities/{identity_id} is temporarily locked after repeated failed sign-ins; try again "
                     f"in {wait}, or ask an administrator to set a new password", retry_after_s=seconds)


def _lockout_audit(client: str, at: dt.datetime) -> Callable[[PasswordRecord], NewAuditEvent]:
    def audit(record: PasswordRecord) -> NewAuditEvent:
        assert record.locked_until is not None
        return NewAuditEvent(at=at, actor=client, action="SignInLockout", target=f"identities/{record.identity_id}",
                             outcome="done", detail={"failed_sign_ins": LOCK_AFTER, "lockouts": record.lockouts,
                                                     "locked_seconds": int((record.locked_until - at).total_seconds())})
    return audit


def _count_failure(store: Store, identity_id: str, *, now: dt.datetime, client: str) -> PasswordRecord | None:
    counted = store.record_sign_in_failure(identity_id, at=now, limit=LOCK_AFTER, lock_for=lockout_duration,
                                           audit=_lockout_audit(client, now))
    if counted is not None and counted.locked_until is not None and counted.locked_until > now:
        log.warning("identities/%s is locked until %s after %d failed sign-ins in a row (last from %s)",
                    identity_id, counted.locked_until.isoformat(), LOCK_AFTER, client)
        raise _locked_out(identity_id, counted.locked_until, now)
    if counted is not None:
        log.warning("sign-in failed for identities/%s from %s (%d of %d before a lock-out)", identity_id, client,
                    counted.failed_attempts, LOCK_AFTER)
    return counted


def _count_miss(store: Store, identity_id: str, *, now: dt.datetime) -> None:
    """Count a failed sign-in as an id that cannot sign in; LockedOut, as for an identity, when it is locked."""
    before = store.get_sign_in_miss(identity_id)
    if before is not None and before.locked_until is not None and before.locked_until > now:
        raise _locked_out(identity_id, before.locked_until, now)
    counted = store.record_sign_in_miss(identity_id, at=now, limit=LOCK_AFTER, lock_for=lockout_duration)
    if counted.locked_until is not None and counted.locked_until > now:
        raise _locked_out(identity_id, counted.locked_until, now)


def sign_in(store: Store, *, identity_id: str, password: str, now: dt.datetime, client: str) -> SignedIn:
    """A 12-hour bearer token for the identity, if `password` is its password and it is not locked.

    `client` (the caller's address) goes to the log and the audit log, never the password."""
    violations = []
    if not identity_id:
        violations.append(Violation("identity_id", "identity_id is required: give the identity to sign in as",
                                    "REQUIRED"))
    if not password:
        violations.append(Violation("password", "password is required", "REQUIRED"))
    if violations:
        raise InvalidInput(violations)
    record = store.get_password(identity_id)
    if record is not None and record.locked_until is not None and record.locked_until > now:
        raise _locked_out(identity_id, record.locked_until, now)
    identity = store.get_identity(identity_id) if record is not None else None
    matches = password_matches(record.password_hash if record is not None else None, password)
    if record is None or identity is None or identity.revoked_at is not None:
        # Answered as a wrong password is, and counted and locked the same way: no answer, and no lock-out
        # that comes or does not come, tells which ids exist.
        if identity is not None:
            log.warning("sign-in refused for identities/%s from %s: the identity was revoked", identity_id, client)
        else:
            log.warning("sign-in failed from %s: no identity with a password by that id", client)
        _count_miss(store, identity_id, now=now)
        raise SignInRefused(SIGN_IN_FAILED)
    if not matches:
        _count_failure(store, identity_id, now=now, client=client)
        raise SignInRefused(SIGN_IN_FAILED)
    token = new_token()
    credential = CredentialRecord(credential_id=token.key_id, identity_id=identity_id, kind="token",
                                  secret_sha256=token.secret_sha256, certificate_subject=None,
                                  expires_at=now + SESSION, created_at=now, created_by=identity_id, sign_in=True,
                                  last_used_at=now)
    audit = NewAuditEvent(at=now, actor=identity_id, action="SignIn", target=f"identities/{identity_id}",
                          outcome="done", detail={"credential": token.key_id, "from": client,
                                                  "valid_hours": int(SESSION.total_seconds() // 3600)})
    before = store.complete_sign_in(identity_id, verified_hash=record.password_hash, at=now, credential=credential,
                                    audit=audit)
    if before is None:  # the password changed while this one was being checked
        raise SignInRefused(SIGN_IN_FAILED)
    if before.locked_until is not None and before.locked_until > now:  # locked meanwhile by other failures
        raise _locked_out(identity_id, before.locked_until, now)
    log.info("identities/%s signed in from %s (credential %s, valid %s)", identity_id, client, token.key_id, SESSION)
    return SignedIn(token.token, credential, identity)


@dataclass(frozen=True)
class PasswordSet:
    identity: IdentityRecord
    sessions_ended: tuple[str, ...]  # credential ids of the sign-in sessions the new password revoked


def set_password(store: Store, *, identity: str, new_password: str, current_password: str, caller_id: str,
                 caller_credential: str, caller_is_admin: bool, now: dt.datetime, client: str) -> PasswordSet:
    """Set `identity`'s password: an administrator for anyone, an identity for itself with its current one.

    A new password ends every sign-in session of the identity but `caller_credential` when the identity
    changes its own (whoever knew the old password is signed out; the person stays signed in where they
    changed it). A wrong current password counts as a failed sign-in (it may lock the identity). Sending
    again a change that was made (the new password is already the password) succeeds and changes nothing."""
    target = identity.removeprefix("identities/")
    if not target:
        raise InvalidInput([Violation("identity", "identity is required: give identities/ID", "REQUIRED")])
    own = target == caller_id
    if not own and not caller_is_admin:
        raise PermissionDenied(f"{caller_id} may change only its own password; setting the password of "
                               f"identities/{target} needs the permission `identities.manage` (role admin)")
    if current_password and not own:
        raise InvalidInput([Violation("current_password", "current_password is only for changing your own "
                                      "password; leave it empty to set another identity's", "NOT_YOURS")])
    found = store.get_identity(target)
    if found is None:
        raise NotFound(f"identities/{target}")
    if found.revoked_at is not None:
        raise InvalidInput([Violation("identity", f"identities/{target} was revoked; it cannot sign in",
                                      "REVOKED")])
    problems = password_problems(new_password, target)
    if problems:
        raise InvalidInput(problems)
    if own and (current_password or not caller_is_admin) and _check_current(
            store, target, current_password=current_password, new_password=new_password, now=now, client=client):
        return PasswordSet(found, ())  # sent again after it was done: nothing to change
    password_hash = hash_password(new_password)

    def audit(ended: list[str]) -> NewAuditEvent:
        return NewAuditEvent(at=now, actor=caller_id, action="SetPassword", target=f"identities/{target}",
                             outcome="done", detail={"own": own, "sessions_ended": len(ended)})

    ended = store.set_password(target, password_hash, by=caller_id, at=now,
                               keep_session=caller_credential if own else None, audit=audit)
    log.info("the password of identities/%s was %s by %s; %d sign-in session(s) ended", target,
             "changed" if own else "set", caller_id, len(ended))
    return PasswordSet(found, tuple(ended))


def _check_current(store: Store, identity_id: str, *, current_password: str, new_password: str,
                   now: dt.datetime, client: str) -> bool:
    """Refuse a wrong current password (counted as a failed sign-in); True when the new password is the
    password already (a change sent again), False when the change may go ahead."""
    if not current_password:
        raise InvalidInput([Violation("current_password", "current_password is required: give your current "
                                      "password to change it (an administrator can set it without)", "REQUIRED")])
    record = store.get_password(identity_id)
    if record is None:
        raise FailedPrecondition(f"identities/{identity_id} has no password yet: an administrator sets the first "
                                 "one (civicscore admin password ID)")
    if record.locked_until is not None and record.locked_until > now:
        raise _locked_out(identity_id, record.locked_until, now)
    if password_matches(record.password_hash, current_password):
        return False
    if password_matches(record.password_hash, new_password):
        return True
    _count_failure(store, identity_id, now=now, client=client)
    raise InvalidInput([Violation("current_password", "current_password is wrong: give the password you sign "
                                  "in with now", "WRONG_PASSWORD")])
