"""Identity use cases: create identities, issue tokens, register certificates, revoke; bootstrap.

Every change is audited in the same transaction, with the acting identity and
never a secret. Token secrets are returned once and stored only as SHA-256.

Creating an identity, issuing a token and registering a certificate take an idempotency
key. A retry of the same request with the same key is answered with the first reply and
changes nothing, except for a token: its secret was shown once and is not kept, so a retry
whose first reply was lost is refused with TOKEN_ALREADY_ISSUED naming the credential that
reply held, to revoke before issuing another (no valid token is left behind unknown).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from civicscore.auth.policy import ALL_UNITS, ROLE_VALUES, Role
from civicscore.auth.tokens import new_token
from civicscore.domain.canonical import digest_of, record_from_json
from civicscore.errors import AlreadyExists, FailedPrecondition, InvalidInput, NotFound, Violation, shown
from civicscore.idempotency import claim_key
from civicscore.store import Store
from civicscore.store.base import Conflict, CredentialRecord, IdentityRecord, NewAuditEvent

log = logging.getLogger("civicscore.access")

IDENTITY_ID = re.compile(r"[a-z0-9][a-z0-9.-]{1,62}")
MAX_TOKEN_DAYS = 400
DEFAULT_TOKEN_DAYS = 90
BOOTSTRAP_ID = "bootstrap-admin"


class TokenAlreadyIssued(FailedPrecondition):
    """A retried IssueToken whose first reply (and so its token) was lost."""

    reason = "TOKEN_ALREADY_ISSUED"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    credential: CredentialRecord


def _audit(actor: str, action: str, target: str, at: dt.datetime, **detail: object) -> NewAuditEvent:
    return NewAuditEvent(at=at, actor=actor, action=action, target=target, outcome="done", detail=dict(detail))


def create_identity(store: Store, *, identity_id: str, display_name: str, roles: Sequence[str],
                    scope_units: Sequence[str], actor: str, now: dt.datetime, idempotency_key: str = ""
                    ) -> IdentityRecord:
    claim, replayed = claim_key(store, idempotency_key, "CreateIdentity",
                                digest_of([identity_id, display_name, list(roles), list(scope_units), actor]))
    if replayed is not None:
        return record_from_json(IdentityRecord, replayed)
    violations: list[Violation] = []
    if not IDENTITY_ID.fullmatch(identity_id):
        violations.append(Violation("identity.identity_id", f"{shown(identity_id)} is not a valid id: 2-63 lowercase "
                                    "letters, digits, `-` or `.`, e.g. snv-task-tracker", "INVALID_ID"))
    if not display_name.strip() or len(display_name) > 200:
        violations.append(Violation("identity.display_name", "give a display name of 1-200 characters",
                                    "REQUIRED"))
    if not roles:
        violations.append(Violation("identity.roles", "give at least one role: "
                                    + ", ".join(sorted(ROLE_VALUES)), "REQUIRED"))
    for index, role in enumerate(roles):
        if role not in ROLE_VALUES:
            violations.append(Violation(f"identity.roles[{index}]", f"unknown role {shown(role)}; roles: "
                                        + ", ".join(sorted(ROLE_VALUES)), "UNKNOWN_ROLE"))
    codes = [unit.removeprefix("units/") for unit in scope_units]
    if Role.REPORTER.value in roles and not codes:
        violations.append(Violation("identity.scope_units", "a reporter needs the units it reports for "
                                    "(units/SNV, ...), or units/* for every unit", "REQUIRED"))
    if codes and Role.REPORTER.value not in roles:
        violations.append(Violation("identity.scope_units", "only reporters have a scope of units",
                                    "NOT_A_REPORTER"))
    known = store.get_units([c for c in codes if c != ALL_UNITS])
    for index, code in enumerate(codes):
        if code != ALL_UNITS and code not in known:
            violations.append(Violation(f"identity.scope_units[{index}]", f"unit units/{code} does not exist",
                                        "UNKNOWN_UNIT"))
    if violations:
        raise InvalidInput(violations)
    record = IdentityRecord(identity_id=identity_id, display_name=display_name.strip(),
                            roles=tuple(sorted(set(roles))), scope_units=tuple(sorted(set(codes))),
                            created_at=now, created_by=actor)
    try:
        return store.create_identity(record, audit=_audit(actor, "CreateIdentity", f"identities/{identity_id}", now,
                                                          roles=list(record.roles),
                                                          scope_units=list(record.scope_units)),
                                     idempotency=claim)
    except Conflict:
        raise AlreadyExists(f"identity identities/{identity_id} already exists", ids=[identity_id]) from None


def _live_identity(store: Store, name: str, field: str) -> IdentityRecord:
    identity_id = name.removeprefix("identities/")
    found = store.get_identity(identity_id)
    if found is None:
        raise NotFound(f"identities/{identity_id}")
    if found.revoked_at is not None:
        raise InvalidInput([Violation(field, f"identities/{identity_id} was revoked; create a new identity",
                                      "REVOKED")])
    return found


def issue_token(store: Store, *, identity: str, valid_days: int, actor: str, now: dt.datetime,
                idempotency_key: str = "") -> IssuedToken:
    claim, replayed = claim_key(store, idempotency_key, "IssueToken", digest_of([identity, valid_days, actor]))
    if replayed is not None:
        raise _token_already_issued(identity, record_from_json(CredentialRecord, replayed))
    days = valid_days or DEFAULT_TOKEN_DAYS
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InvalidInput([Violation("valid_days", f"valid_days must be 1-{MAX_TOKEN_DAYS} (0 means "
                                      f"{DEFAULT_TOKEN_DAYS})", "OUT_OF_RANGE")])
    found = _live_identity(store, identity, "identity")
    token = new_token()
    credential = CredentialRecord(credential_id=token.key_id, identity_id=found.identity_id, kind="token",
                                  secret_sha256=token.secret_sha256, certificate_subject=None,
                                  expires_at=now + dt.timedelta(days=days), created_at=now, created_by=actor)
    stored = store.add_credential(credential, audit=_audit(actor, "IssueToken", f"identities/{found.identity_id}",
                                                           now, credential=credential.credential_id, valid_days=days),
                                  idempotency=claim)
    if stored.credential_id != credential.credential_id:  # the same request, committed first by another call
        raise _token_already_issued(identity, stored)
    return IssuedToken(token.token, credential)


def _token_already_issued(identity: str, first: CredentialRecord) -> TokenAlreadyIssued:
    name = f"identities/{first.identity_id}/credentials/{first.credential_id}"
    return TokenAlreadyIssued(
        f"this request (same idempotency key) already issued a token for {identity}: {name}. A token is shown "
        f"only once and its reply was lost, so it cannot be shown again; revoke {name} (civicscore admin "
        "revoke-credential) and issue a new token with a new request")


def register_certificate(store: Store, *, identity: str, subject: str, valid_days: int, actor: str,
                         now: dt.datetime, idempotency_key: str = "") -> CredentialRecord:
    claim, replayed = claim_key(store, idempotency_key, "RegisterCertificate",
                                digest_of([identity, subject, valid_days, actor]))
    if replayed is not None:
        return record_from_json(CredentialRecord, replayed)
    subject = subject.strip()
    if not subject or len(subject) > 500:
        raise InvalidInput([Violation("certificate_subject", "give the certificate's subject as CN=<common name> "
                                      "or one of its subject alternative names", "REQUIRED")])
    if valid_days < 0 or valid_days > 3650:
        raise InvalidInput([Violation("valid_days", "valid_days must be 0-3650", "OUT_OF_RANGE")])
    found = _live_identity(store, identity, "identity")
    credential = CredentialRecord(
        credential_id=f"cert-{secrets.token_hex(6)}", identity_id=found.identity_id, kind="certificate",
        secret_sha256=None, certificate_subject=subject,
        expires_at=now + dt.timedelta(days=valid_days) if valid_days else None, created_at=now, created_by=actor)
    return store.add_credential(credential, audit=_audit(actor, "RegisterCertificate",
                                                         f"identities/{found.identity_id}", now,
                                                         credential=credential.credential_id, subject=subject),
                                idempotency=claim)


def credential_name(name: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "identities" or parts[2] != "credentials" or not parts[1] or not parts[3]:
        raise InvalidInput([Violation("name", f"{shown(name)} is not a credential name; write "
                                      "identities/ID/credentials/CREDENTIAL", "INVALID_NAME")])
    return parts[1], parts[3]


def revoke_credential(store: Store, *, name: str, actor: str, now: dt.datetime) -> CredentialRecord:
    identity_id, credential_id = credential_name(name)
    found = store.get_credential(credential_id)
    if found is None or found[0].identity_id != identity_id:
        raise NotFound(name)
    revoked = store.revoke_credential(credential_id, by=actor, at=now,
                                      audit=_audit(actor, "RevokeCredential", name, now))
    assert revoked is not None
    return revoked


def revoke_identity(store: Store, *, name: str, actor: str, now: dt.datetime) -> IdentityRecord:
    identity_id = name.removeprefix("identities/")
    revoked = store.revoke_identity(identity_id, by=actor, at=now,
                                    audit=_audit(actor, "RevokeIdentity", f"identities/{identity_id}", now))
    if revoked is None:
        raise NotFound(f"identities/{identity_id}")
    return revoked


def bootstrap_admin(store: Store, token_file: Path, *, now: dt.datetime, clock: Callable[[], dt.datetime]) -> bool:
    """On a database without an active administrator, create one and write its token to `token_file`
    (mode 0600). The token is never logged. Returns whether it did.

    Safe when several replicas start at once on a new database: the check and the creation are one
    transaction that they take in turn (`Store.create_first_admin`), so exactly one administrator and
    one token are made, and only the replica that made them writes the token file; the others log
    that an administrator exists and leave the file alone (another replica's, or the same path on a
    shared disk, which then holds the one token)."""
    actor = "server-bootstrap"
    for attempt in range(3):
        if store.has_active_admin():
            log.info("an administrator exists; no bootstrap token written")
            return False
        identity_id = BOOTSTRAP_ID
        if attempt or store.get_identity(identity_id) is not None:  # revoked earlier: pick a fresh id
            identity_id = f"{BOOTSTRAP_ID}-{secrets.token_hex(3)}"
        token = new_token()
        issued_at = clock()
        credential = CredentialRecord(credential_id=token.key_id, identity_id=identity_id, kind="token",
                                      secret_sha256=token.secret_sha256, certificate_subject=None,
                                      expires_at=issued_at + dt.timedelta(days=MAX_TOKEN_DAYS),
                                      created_at=issued_at, created_by=actor)
        identity = IdentityRecord(identity_id=identity_id, display_name="Bootstrap administrator (replace with "
                                  "named identities, then revoke)", roles=tuple(sorted(ROLE_VALUES)),
                                  scope_units=(ALL_UNITS,), created_at=now, created_by=actor)
        audit = [_audit(actor, "CreateIdentity", f"identities/{identity_id}", now, roles=sorted(ROLE_VALUES),
                        scope_units=[ALL_UNITS]),
                 _audit(actor, "IssueToken", f"identities/{identity_id}", issued_at,
                        credential=credential.credential_id, valid_days=MAX_TOKEN_DAYS)]
        # The token reaches the disk before the administrator is committed: a process that dies in
        # between leaves it in the temporary file, never an administrator whose token nobody has.
        pending = _stage_secret(token_file, token.token)
        try:
            created = store.create_first_admin(identity, credential, audit=audit)
        except Conflict:  # the id was taken meanwhile (not by an administrator): try a fresh one
            pending.unlink(missing_ok=True)
            continue
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        if not created:
            pending.unlink(missing_ok=True)
            log.info("an administrator exists (created by another process starting on this database at the "
                     "same time); no bootstrap token written")
            return False
        os.replace(pending, token_file)  # whole or not at all: a reader never sees half a token
        log.warning("created identity %s with every role; its token is in %s (readable by this user only). Use "
                    "it to create named identities, then revoke it", identity_id, token_file)
        return True
    raise AlreadyExists(f"could not create a bootstrap administrator: identities {BOOTSTRAP_ID}-* kept being "
                        "taken; create an administrator with `civicscore admin` instead")


def _stage_secret(path: Path, secret: str) -> Path:
    """Write `secret`, readable by this user only, to a temporary file beside `path` (renamed over it
    once the secret is valid), synced to disk; returns the temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staged, 0o600)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged
