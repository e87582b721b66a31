"""Sign-in sessions (the tokens SignIn issues): how they end.

A session ends when its person signs out (SignOut), after `IdlePolicy.limit` without use, 12 hours
after sign-in whatever its use, when the identity's password is set (passwords.set_password), or
when an administrator revokes it. SignOut ends sign-in sessions only: a token an administrator
issued, or a client certificate, is an administrator's to revoke, so that a script or a console
misconfigured with a system's token cannot end it (nor the bootstrap administrator lock itself out).

Idle expiry is decided from the database, so every replica agrees: the authenticator records a
session's use in `credentials.last_used_at` at most once per `IdlePolicy.record_every` (a minute;
less for the test-only limits below a few minutes), never on every call. The recorded use is thus
up to `record_every` older than the last real one, and a session is refused once the recorded
use is older than `limit + record_every`: it never ends before `limit` of real idleness, and at
most `record_every` after.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from civicscore.errors import FailedPrecondition
from civicscore.store import Store
from civicscore.store.base import CredentialRecord, NewAuditEvent

log = logging.getLogger("civicscore.access")

DEFAULT_IDLE = dt.timedelta(minutes=30)
RECORD_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class IdlePolicy:
    """How long a sign-in session may go unused, and how often its use is written down."""

    limit: dt.timedelta = DEFAULT_IDLE

    @property
    def record_every(self) -> dt.timedelta:
        """A minute; a quarter of the limit when that is shorter (test-only limits of seconds)."""
        return min(RECORD_EVERY, self.limit / 4)

    def last_use(self, credential: CredentialRecord) -> dt.datetime:
        """The session's last recorded use (its sign-in when none was recorded, as before revision 0010)."""
        return credential.last_used_at or credential.created_at

    def ended(self, credential: CredentialRecord, now: dt.datetime) -> bool:
        """Whether a sign-in session has gone unused too long (always False for other credentials)."""
        return credential.sign_in and now - self.last_use(credential) > self.limit + self.record_every

    def record_due(self, credential: CredentialRecord, now: dt.datetime) -> bool:
        """Whether this use of a sign-in session should be written down (the last is `record_every` old)."""
        return credential.sign_in and now - self.last_use(credential) >= self.record_every

    def refusal(self, identity_id: str) -> str:
        """The message that refuses a session that idled out."""
        return (f"this sign-in session of {identity_id} ended after {duration_words(self.limit)} without use; "
                f"sign in again (civicscore sign-in {identity_id})")


def duration_words(span: dt.timedelta) -> str:
    """`30 minutes`, `1 minute`, `90 seconds`: whole minutes when it is whole minutes, else seconds."""
    seconds = span.total_seconds()
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def sign_out(store: Store, *, identity_id: str, credential_id: str, credential_kind: str, now: dt.datetime,
             client: str) -> CredentialRecord:
    """Revoke the sign-in session `credential_id` that the caller `identity_id` is calling with; refused
    (FailedPrecondition) for a certificate or a token an administrator issued."""
    name = f"identities/{identity_id}/credentials/{credential_id}"
    if credential_kind == "certificate":
        raise FailedPrecondition(f"this call is authenticated by a client certificate ({name}): signing out "
                                 "ends sign-in sessions only; an administrator revokes certificates "
                                 f"(civicscore admin revoke-credential {name})")
    found = store.get_credential(credential_id)
    if found is None or found[0].identity_id != identity_id:  # the credential the call was admitted with
        raise AssertionError(f"the caller's credential {name} is not stored")
    if not found[0].sign_in:
        raise FailedPrecondition(f"this call is authenticated by a token an administrator issued ({name}), not a "
                                 "sign-in session: signing out ends sign-in sessions only; an administrator "
                                 f"revokes issued tokens (civicscore admin revoke-credential {name})")
    audit = NewAuditEvent(at=now, actor=identity_id, action="SignOut", target=name, outcome="done",
                          detail={"credential": credential_id, "from": client})
    revoked = store.revoke_credential(credential_id, by=identity_id, at=now, audit=audit)
    assert revoked is not None
    log.info("identities/%s signed out from %s (credential %s)", identity_id, client, credential_id)
    return revoked
