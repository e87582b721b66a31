"""SQL for identities, credentials and the hash-chained audit log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from civicscore.domain.canonical import canonical_json, sha256_hex
from civicscore.store.base import (
    AuditEntry,
    Conflict,
    CredentialRecord,
    IdentityRecord,
    InvalidCursor,
    NewAuditEvent,
    Page,
)
from civicscore.store.cursors import decode_cursor, encode_cursor
from civicscore.store.tables import audit_events, credentials, identities

GENESIS_HASH = "0" * 64
_LISTING = "identities"
# Any 64-bit constant: PostgreSQL writers of the audit log take this advisory lock in turn.
_AUDIT_LOCK = 0x63697663_61756474
# Another: replicas starting at once on a new database take it in turn to create the first administrator.
_BOOTSTRAP_LOCK = 0x63697663_626f6f74


def identity_from(row: Any) -> IdentityRecord:
    return IdentityRecord(
        identity_id=row.identity_id, display_name=row.display_name, roles=tuple(json.loads(row.roles_json)),
        scope_units=tuple(json.loads(row.scope_units_json)), created_at=row.created_at, created_by=row.created_by,
        revoked_at=row.revoked_at, revoked_by=row.revoked_by,
    )


def credential_from(row: Any) -> CredentialRecord:
    return CredentialRecord(
        credential_id=row.credential_id, identity_id=row.identity_id, kind=row.kind,
        secret_sha256=row.secret_sha256, certificate_subject=row.certificate_subject, expires_at=row.expires_at,
        created_at=row.created_at, created_by=row.created_by, revoked_at=row.revoked_at, revoked_by=row.revoked_by,
        sign_in=bool(row.sign_in), last_used_at=row.last_used_at,
    )


def create_identity(connection: Connection, identity: IdentityRecord, audit: NewAuditEvent | None) -> IdentityRecord:
    exists = connection.execute(
        select(identities.c.identity_id).where(identities.c.identity_id == identity.identity_id)
    ).first()
    if exists is not None:
        raise Conflict(f"identity {identity.identity_id} already exists")
    try:
        connection.execute(identities.insert().values(
            identity_id=identity.identity_id, display_name=identity.display_name,
            roles_json=canonical_json(list(identity.roles)),
            scope_units_json=canonical_json(list(identity.scope_units)),
            created_at=identity.created_at, created_by=identity.created_by,
        ))
    except IntegrityError:  # a concurrent create of the same id won
        raise Conflict(f"identity {identity.identity_id} already exists") from None
    if audit is not None:
        append_audit(connection, [audit])
    return identity


def get_identity(connection: Connection, identity_id: str) -> IdentityRecord | None:
    row = connection.execute(select(identities).where(identities.c.identity_id == identity_id)).one_or_none()
    return None if row is None else identity_from(row)


def list_identities(connection: Connection, *, role: str | None, revoked: bool | None, after: str | None,
                    limit: int) -> Page[IdentityRecord]:
    query = select(identities).order_by(identities.c.identity_id)
    if revoked is not None:
        column = identities.c.revoked_at
        query = query.where(column.is_not(None) if revoked else column.is_(None))
    if after is not None:
        (key,) = decode_cursor(_LISTING, after, 1)
        if not isinstance(key, str):
            raise InvalidCursor(after)
        query = query.where(identities.c.identity_id > key)
    found: list[IdentityRecord] = []
    # Roles are a JSON list: filter here (identities are few: tens to hundreds).
    for row in connection.execute(query):
        record = identity_from(row)
        if role is None or role in record.roles:
            found.append(record)
            if len(found) > limit:
                break
    if len(found) <= limit:
        return Page(items=found, next_cursor=None)
    return Page(items=found[:limit], next_cursor=encode_cursor(_LISTING, (found[limit - 1].identity_id,)))


def has_active_admin(connection: Connection) -> bool:
    rows = connection.execute(select(identities.c.roles_json).where(identities.c.revoked_at.is_(None)))
    return any("admin" in json.loads(row.roles_json) for row in rows)


def create_first_admin(connection: Connection, identity: IdentityRecord, credential: CredentialRecord,
                       audit: Sequence[NewAuditEvent]) -> bool:
    """Store `identity` with `credential` unless an active administrator exists; whether it did.

    Replicas starting at once on a new database all try: the check and the insert run in one
    transaction that holds the bootstrap lock (PostgreSQL: an advisory lock taken before the check,
    so each replica's check sees the creator's commit; SQLite: the database's write lock, taken at
    BEGIN IMMEDIATE), so exactly one of them creates an administrator. Conflict when the identity's
    id is taken (by a revoked identity, say): pick another id and call again."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BOOTSTRAP_LOCK})
    if has_active_admin(connection):
        return False
    create_identity(connection, identity, None)
    add_credential(connection, credential, None)
    append_audit(connection, audit)
    return True


def add_credential(connection: Connection, credential: CredentialRecord, audit: NewAuditEvent | None
                   ) -> CredentialRecord:
    connection.execute(credentials.insert().values(
        credential_id=credential.credential_id, identity_id=credential.identity_id, kind=credential.kind,
        secret_sha256=credential.secret_sha256, certificate_subject=credential.certificate_subject,
        expires_at=credential.expires_at, created_at=credential.created_at, created_by=credential.created_by,
        sign_in=credential.sign_in, last_used_at=credential.last_used_at,
    ))
    if audit is not None:
        append_audit(connection, [audit])
    return credential


def _with_identity(connection: Connection, query: Any) -> list[tuple[CredentialRecord, IdentityRecord]]:
    joined = query.join_from(credentials, identities, credentials.c.identity_id == identities.c.identity_id)
    result = []
    for row in connection.execute(joined):
        mapping = row._mapping
        credential = credential_from(_Prefixed(mapping, "c_"))
        identity = identity_from(_Prefixed(mapping, "i_"))
        result.append((credential, identity))
    return result


class _Prefixed:
    """Attribute access to one table's columns of a joined row (labelled `c_…` / `i_…`)."""

    def __init__(self, mapping: Any, prefix: str) -> None:
        self._mapping = mapping
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return self._mapping[self._prefix + name]


def _joined_select() -> Any:
    return select(
        *(column.label(f"c_{column.name}") for column in credentials.c),
        *(column.label(f"i_{column.name}") for column in identities.c),
    )


def get_credential(connection: Connection, credential_id: str) -> tuple[CredentialRecord, IdentityRecord] | None:
    found = _with_identity(connection, _joined_select().where(credentials.c.credential_id == credential_id))
    return found[0] if found else None


def certificate_credentials(connection: Connection, subjects: Sequence[str]
                            ) -> list[tuple[CredentialRecord, IdentityRecord]]:
    if not subjects:
        return []
    query = _joined_select().where(credentials.c.kind == "certificate",
                                   credentials.c.certificate_subject.in_(list(subjects)))
    return _with_identity(connection, query)


def list_credentials(connection: Connection, identity_id: str) -> list[CredentialRecord]:
    query = (select(credentials).where(credentials.c.identity_id == identity_id)
             .order_by(credentials.c.created_at.desc(), credentials.c.credential_id))
    return [credential_from(row) for row in connection.execute(query)]


def revoke_credential(connection: Connection, credential_id: str, *, by: str, at: dt.datetime,
                      audit: NewAuditEvent | None) -> CredentialRecord | None:
    where = credentials.c.credential_id == credential_id
    connection.execute(credentials.update().where(where, credentials.c.revoked_at.is_(None))
                       .values(revoked_at=at, revoked_by=by))
    row = connection.execute(select(credentials).where(where)).one_or_none()
    if row is None:
        return None
    if audit is not None:
        append_audit(connection, [audit])
    return credential_from(row)


def record_use(connection: Connection, credential_id: str, *, at: dt.datetime, unless_since: dt.datetime) -> bool:
    """Note a sign-in session's use at `at`, unless a use at or after `unless_since` is recorded already
    (another replica's, say); whether it wrote. One conditional UPDATE: no lock held past it."""
    last = credentials.c.last_used_at
    result = connection.execute(credentials.update()
                                .where(credentials.c.credential_id == credential_id,
                                       or_(last.is_(None), last < unless_since))
                                .values(last_used_at=at))
    return bool(result.rowcount)


def revoke_identity(connection: Connection, identity_id: str, *, by: str, at: dt.datetime,
                    audit: NewAuditEvent | None) -> IdentityRecord | None:
    where = identities.c.identity_id == identity_id
    connection.execute(identities.update().where(where, identities.c.revoked_at.is_(None))
                       .values(revoked_at=at, revoked_by=by))
    connection.execute(credentials.update()
                       .where(credentials.c.identity_id == identity_id, credentials.c.revoked_at.is_(None))
                       .values(revoked_at=at, revoked_by=by))
    row = connection.execute(select(identities).where(where)).one_or_none()
    if row is None:
        return None
    if audit is not None:
        append_audit(connection, [audit])
    return identity_from(row)


def entry_hash(prev_hash: str, at: dt.datetime, actor: str, action: str, target: str, outcome: str,
               detail_json: str) -> str:
    """SHA-256 over the previous entry's hash and this entry's fields (canonical JSON)."""
    return sha256_hex(canonical_json([prev_hash, at.astimezone(dt.UTC).isoformat(), actor, action, target, outcome,
                                      detail_json]))


def append_audit(connection: Connection, events: Sequence[NewAuditEvent]) -> None:
    """Append in order, each entry chained to the one before (writers take turns: see `_AUDIT_LOCK`).

    Each entry is numbered from the chain itself, the last entry's number + 1, read and written
    under the lock in the caller's transaction: a transaction that dies before committing gives
    its numbers back, so the log never shows a gap that looks like a deleted entry (a database
    sequence would have spent them: PostgreSQL never returns sequence values)."""
    if not events:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AUDIT_LOCK})
    last = connection.execute(
        select(audit_events.c.seq, audit_events.c.entry_hash).order_by(audit_events.c.seq.desc()).limit(1)
    ).one_or_none()
    seq, prev = (int(last.seq), str(last.entry_hash)) if last is not None else (0, GENESIS_HASH)
    rows = []
    for event in events:
        seq += 1
        detail_json = canonical_json(event.detail)
        digest = entry_hash(prev, event.at, event.actor, event.action, event.target, event.outcome, detail_json)
        rows.append({"seq": seq, "at": event.at, "actor": event.actor, "action": event.action,
                     "target": event.target, "outcome": event.outcome, "detail_json": detail_json,
                     "prev_hash": prev, "entry_hash": digest})
        prev = digest
    connection.execute(audit_events.insert(), rows)


def audit_entries(connection: Connection, *, after_seq: int, limit: int) -> list[AuditEntry]:
    query = select(audit_events).where(audit_events.c.seq > after_seq).order_by(audit_events.c.seq).limit(limit)
    return [
        AuditEntry(seq=int(row.seq), at=row.at, actor=row.actor, action=row.action, target=row.target,
                   outcome=row.outcome, detail_json=row.detail_json, prev_hash=row.prev_hash,
                   entry_hash=row.entry_hash)
        for row in connection.execute(query)
    ]
