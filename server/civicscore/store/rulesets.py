"""SQL for ruleset versions: contents by digest, and the append-only list of activations."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from civicscore.domain.canonical import canonical_json
from civicscore.store.base import (
    ActivationRecord,
    InvalidCursor,
    NewActivation,
    NothingToRollBack,
    Page,
    StoredRuleset,
)
from civicscore.store.cursors import decode_cursor, encode_cursor
from civicscore.store.tables import ruleset_activations, rulesets

_LISTING = "ruleset-activations"


def activation_from(row: Any) -> ActivationRecord:
    return ActivationRecord(
        seq=int(row.seq), digest=row.digest, version=row.version, in_force_from=row.in_force_from,
        actor=row.actor, source=row.source, reason=row.reason, activated_at=row.activated_at,
        rolled_back_at=row.rolled_back_at, rolled_back_by=row.rolled_back_by, rollback_reason=row.rollback_reason,
    )


def in_force_from_quarter(connection: Connection, in_force_from: str) -> ActivationRecord | None:
    """The latest live activation of a ruleset in force from `in_force_from` (the one that applies then)."""
    columns = ruleset_activations.c
    row = connection.execute(
        select(ruleset_activations).where(columns.rolled_back_at.is_(None), columns.in_force_from == in_force_from)
        .order_by(columns.seq.desc()).limit(1)).one_or_none()
    return None if row is None else activation_from(row)


def record_activation(connection: Connection, ruleset: StoredRuleset, activation: NewActivation) -> ActivationRecord:
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        insert(rulesets).values(
            digest=ruleset.digest, ruleset_id=ruleset.ruleset_id, version=ruleset.version,
            in_force_from=ruleset.in_force_from, files_json=canonical_json(ruleset.files),
            stored_at=ruleset.stored_at,
        ).on_conflict_do_nothing(index_elements=["digest"])
    )
    row = connection.execute(
        ruleset_activations.insert().values(
            digest=ruleset.digest, version=ruleset.version, in_force_from=ruleset.in_force_from,
            actor=activation.actor, source=activation.source, reason=activation.reason,
            activated_at=activation.at,
        ).returning(*ruleset_activations.c)
    ).one()
    return activation_from(row)


def roll_back_activation(
    connection: Connection, *, expected_digest: str, actor: str, reason: str, at: dt.datetime
) -> ActivationRecord:
    columns = ruleset_activations.c
    live = connection.execute(
        select(ruleset_activations).where(columns.rolled_back_at.is_(None)).order_by(columns.seq.desc()).limit(2)
    ).all()
    if not live:
        raise NothingToRollBack("no ruleset has been activated yet; there is nothing to roll back")
    latest = live[0]
    if expected_digest and latest.digest != expected_digest:
        raise NothingToRollBack(
            f"the latest activation (#{latest.seq}) is of ruleset {latest.version} ({latest.digest[:12]}), "
            f"not of {expected_digest[:12]}; someone activated another ruleset meanwhile; check "
            "`civicscore rules history` and try again"
        )
    if len(live) == 1:
        raise NothingToRollBack(
            f"activation #{latest.seq} ({latest.version}) is the only one in force; rolling it back would "
            "leave no ruleset: activate another ruleset instead"
        )
    row = connection.execute(
        ruleset_activations.update().where(columns.seq == latest.seq).values(
            rolled_back_at=at, rolled_back_by=actor, rollback_reason=reason,
        ).returning(*ruleset_activations.c)
    ).one()
    return activation_from(row)


def activations(connection: Connection, *, include_rolled_back: bool) -> list[ActivationRecord]:
    query = select(ruleset_activations).order_by(ruleset_activations.c.seq)
    if not include_rolled_back:
        query = query.where(ruleset_activations.c.rolled_back_at.is_(None))
    return [activation_from(row) for row in connection.execute(query)]


def list_activations(
    connection: Connection, *, version: str | None, source: str | None, rolled_back: bool | None,
    after: str | None, limit: int,
) -> Page[ActivationRecord]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    columns = ruleset_activations.c
    query = select(ruleset_activations)
    if version is not None:
        query = query.where(columns.version == version)
    if source is not None:
        query = query.where(columns.source == source)
    if rolled_back is not None:
        query = query.where(columns.rolled_back_at.is_not(None) if rolled_back else columns.rolled_back_at.is_(None))
    if after is not None:
        (seq,) = decode_cursor(_LISTING, after, 1)
        if not isinstance(seq, int):
            raise InvalidCursor(after)
        query = query.where(columns.seq < seq)
    found = [activation_from(row) for row in connection.execute(query.order_by(columns.seq.desc()).limit(limit + 1))]
    if len(found) <= limit:
        return Page(items=found, next_cursor=None)
    return Page(items=found[:limit], next_cursor=encode_cursor(_LISTING, (found[limit - 1].seq,)))


def get_ruleset(connection: Connection, digest: str) -> StoredRuleset | None:
    row = connection.execute(select(rulesets).where(rulesets.c.digest == digest)).one_or_none()
    if row is None:
        return None
    files: dict[str, str] = json.loads(row.files_json)
    return StoredRuleset(
        digest=row.digest, ruleset_id=row.ruleset_id, version=row.version, in_force_from=row.in_force_from,
        files=files, stored_at=row.stored_at,
    )
