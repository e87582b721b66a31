"""SQL for passwords (argon2id hashes only) and the sign-in throttle.

The throttle is counted in the database, in the same row as the hash, so that replicas sharing
the database agree: each failure is an increment under the row's lock (PostgreSQL: SELECT … FOR
UPDATE; SQLite: the write lock taken at BEGIN IMMEDIATE), never a count kept in one process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from civicscore.store.base import CredentialRecord, NewAuditEvent, PasswordRecord
from civicscore.store.identities import add_credential, append_audit
from civicscore.store.tables import credentials, identity_passwords, sign_in_misses

# Failures in a row are those less than this apart: one a day after the last starts the count again (for an
# identity and for an id that cannot sign in alike). Ids that cannot sign in are forgotten this long after
# their last failure (once not locked), a few at a time.
FAILURE_MEMORY = dt.timedelta(days=1)
_FORGET_AT_ONCE = 100


def _record(row: Any) -> PasswordRecord:
    return PasswordRecord(identity_id=row.identity_id, password_hash=row.password_hash, set_at=row.set_at,
                          set_by=row.set_by, failed_attempts=int(row.failed_attempts), lockouts=int(row.lockouts),
                          locked_until=row.locked_until, last_failed_at=row.last_failed_at)


def _locked(connection: Connection, identity_id: str) -> PasswordRecord | None:
    """The identity's row, locked until the transaction ends (SQLite's write lock is held already)."""
    query = select(identity_passwords).where(identity_passwords.c.identity_id == identity_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).one_or_none()
    return None if row is None else _record(row)


def get_password(connection: Connection, identity_id: str) -> PasswordRecord | None:
    row = connection.execute(
        select(identity_passwords).where(identity_passwords.c.identity_id == identity_id)).one_or_none()
    return None if row is None else _record(row)


def set_password(connection: Connection, identity_id: str, password_hash: str, *, by: str, at: dt.datetime,
                 keep_session: str | None, audit: Callable[[list[str]], NewAuditEvent]) -> list[str]:
    values = {"password_hash": password_hash, "set_at": at, "set_by": by, "failed_attempts": 0, "lockouts": 0,
              "locked_until": None}
    if _locked(connection, identity_id) is None:
        connection.execute(identity_passwords.insert().values(identity_id=identity_id, **values))
    else:
        connection.execute(identity_passwords.update()
                           .where(identity_passwords.c.identity_id == identity_id).values(**values))
    ended = _end_sessions(connection, identity_id, keep=keep_session, by=by, at=at)
    append_audit(connection, [audit(ended)])
    return ended


def _end_sessions(connection: Connection, identity_id: str, *, keep: str | None, by: str, at: dt.datetime
                  ) -> list[str]:
    """Revoke the identity's sign-in sessions not revoked yet, but `keep`; their credential ids. Those
    already past their 12 hours are revoked too: harmless, and the count is then what `ListCredentials`
    showed as not revoked."""
    live = [credentials.c.identity_id == identity_id, credentials.c.sign_in.is_(True),
            credentials.c.revoked_at.is_(None)]
    if keep is not None:
        live.append(credentials.c.credential_id != keep)
    ended = sorted(connection.execute(select(credentials.c.credential_id).where(*live)).scalars())
    if ended:
        connection.execute(credentials.update().where(credentials.c.credential_id.in_(ended))
                           .values(revoked_at=at, revoked_by=by))
    return ended


def record_sign_in_failure(connection: Connection, identity_id: str, *, at: dt.datetime, limit: int,
                           lock_for: Callable[[int], dt.timedelta],
                           audit: Callable[[PasswordRecord], NewAuditEvent]) -> PasswordRecord | None:
    found = _locked(connection, identity_id)
    if found is None:
        return None
    if found.locked_until is not None and found.locked_until > at:
        return found  # locked meanwhile by another failure: that one counted
    failed, lockouts, until = _counted(found, at=at, limit=limit, lock_for=lock_for)
    connection.execute(identity_passwords.update().where(identity_passwords.c.identity_id == identity_id)
                       .values(failed_attempts=failed, lockouts=lockouts, locked_until=until, last_failed_at=at))
    after = PasswordRecord(identity_id=identity_id, password_hash=found.password_hash, set_at=found.set_at,
                           set_by=found.set_by, failed_attempts=failed, lockouts=lockouts, locked_until=until,
                           last_failed_at=at)
    if until is not None:
        append_audit(connection, [audit(after)])
    return after


def _counted(found: PasswordRecord, *, at: dt.datetime, limit: int, lock_for: Callable[[int], dt.timedelta]
             ) -> tuple[int, int, dt.datetime | None]:
    """(failures in a row, lock-outs, locked until) after one more failure at `at`: failures less than a day
    apart are in a row; the limit-th locks, each lock-out doubling the next, and the count starts again."""
    last = found.last_failed_at
    in_a_row = found.failed_attempts if last is None or last >= at - FAILURE_MEMORY else 0
    failed, lockouts, until = in_a_row + 1, found.lockouts, None
    if failed >= limit:
        lockouts += 1
        until = at + lock_for(lockouts)
        failed = 0
    return failed, lockouts, until


def get_sign_in_miss(connection: Connection, identity_id: str) -> PasswordRecord | None:
    """The throttle of an id that cannot sign in, as a PasswordRecord without a hash; None when never tried."""
    row = connection.execute(select(sign_in_misses).where(sign_in_misses.c.identity_id == identity_id)).one_or_none()
    return None if row is None else _miss(row)


def _miss(row: Any) -> PasswordRecord:
    return PasswordRecord(identity_id=row.identity_id, password_hash="", set_at=row.last_failed_at, set_by="",
                          failed_attempts=int(row.failed_attempts), lockouts=int(row.lockouts),
                          locked_until=row.locked_until, last_failed_at=row.last_failed_at)


def record_sign_in_miss(connection: Connection, identity_id: str, *, at: dt.datetime, limit: int,
                        lock_for: Callable[[int], dt.timedelta]) -> PasswordRecord:
    """Count a failed sign-in as an id that cannot sign in, as `record_sign_in_failure` counts one of an
    identity (the limit-th in a row locks it, each lock-out doubling the next); forget a few ids idle for a day."""
    stale = (select(sign_in_misses.c.identity_id)
             .where(sign_in_misses.c.last_failed_at < at - FAILURE_MEMORY,
                    or_(sign_in_misses.c.locked_until.is_(None), sign_in_misses.c.locked_until < at))
             .limit(_FORGET_AT_ONCE).scalar_subquery())
    connection.execute(delete(sign_in_misses).where(sign_in_misses.c.identity_id.in_(stale)))
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(insert(sign_in_misses).values(
        identity_id=identity_id, failed_attempts=0, lockouts=0, locked_until=None, last_failed_at=at,
    ).on_conflict_do_nothing(index_elements=["identity_id"]))
    query = select(sign_in_misses).where(sign_in_misses.c.identity_id == identity_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    found = _miss(connection.execute(query).one())
    if found.locked_until is not None and found.locked_until > at:
        return found  # locked meanwhile by another failure: that one counted
    failed, lockouts, until = _counted(found, at=at, limit=limit, lock_for=lock_for)
    connection.execute(sign_in_misses.update().where(sign_in_misses.c.identity_id == identity_id)
                       .values(failed_attempts=failed, lockouts=lockouts, locked_until=until, last_failed_at=at))
    return PasswordRecord(identity_id=identity_id, password_hash="", set_at=at, set_by="", failed_attempts=failed,
                          lockouts=lockouts, locked_until=until, last_failed_at=at)


def complete_sign_in(connection: Connection, identity_id: str, *, verified_hash: str, at: dt.datetime,
                     credential: CredentialRecord, audit: NewAuditEvent) -> PasswordRecord | None:
    found = _locked(connection, identity_id)
    if found is None or found.password_hash != verified_hash:
        return None
    if found.locked_until is not None and found.locked_until > at:
        return found
    connection.execute(identity_passwords.update().where(identity_passwords.c.identity_id == identity_id)
                       .values(failed_attempts=0, lockouts=0, locked_until=None))
    add_credential(connection, credential, audit)
    return found
