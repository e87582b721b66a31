"""Identity calls: identities, tokens, certificates, revocation, and who the caller is."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from civicscore_api.v1 import identities_pb2
from civicscore_client._calls import new_idempotency_key
from civicscore_client._connection import Connection
from civicscore_client._names import join_filter, unit_name

PAGE_SIZE = 1000
ROLES = {"reporter": identities_pb2.ROLE_REPORTER, "reader": identities_pb2.ROLE_READER,
         "policy": identities_pb2.ROLE_POLICY, "committee": identities_pb2.ROLE_COMMITTEE,
         "admin": identities_pb2.ROLE_ADMIN}


def identity_name(identity: str) -> str:
    """`identities/{id}` from an id or a name."""
    return identity if identity.startswith("identities/") else f"identities/{identity}"


def role_value(role: str) -> identities_pb2.Role.ValueType:
    try:
        return ROLES[role.lower()]
    except KeyError:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}") from None


class IdentityCalls(Connection):
    """IdentityService."""

    def create_identity(self, identity_id: str, display_name: str, *, roles: Sequence[str],
                        scope_units: Sequence[str] = (), idempotency_key: str | None = None,
                        timeout: float | None = None) -> identities_pb2.Identity:
        """Create an identity; `roles` by name (reporter, reader, policy, committee, admin), `scope_units`
        by code or name (`*` for every unit) for reporters."""
        identity = identities_pb2.Identity(
            identity_id=identity_id, display_name=display_name, roles=[role_value(r) for r in roles],
            scope_units=[unit_name(u) for u in scope_units])
        request = identities_pb2.CreateIdentityRequest(identity=identity,
                                                       idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._identities.CreateIdentity, request, timeout=timeout).identity

    def issue_token(self, identity: str, *, valid_days: int = 0, idempotency_key: str | None = None,
                    timeout: float | None = None) -> identities_pb2.IssueTokenResponse:
        """A new bearer token for the identity (`.token`, shown once) and its credential.

        If the reply is lost and the retry comes back FailedPrecondition (reason TOKEN_ALREADY_ISSUED),
        the message names the credential issued: revoke it and ask again."""
        request = identities_pb2.IssueTokenRequest(identity=identity_name(identity), valid_days=valid_days,
                                                   idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._identities.IssueToken, request, timeout=timeout)

    def register_certificate(self, identity: str, subject: str, *, valid_days: int = 0,
                             idempotency_key: str | None = None,
                             timeout: float | None = None) -> identities_pb2.Credential:
        """Accept a client certificate (subject `CN=…` or a subject alternative name) for the identity."""
        request = identities_pb2.RegisterCertificateRequest(
            identity=identity_name(identity), certificate_subject=subject, valid_days=valid_days,
            idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._identities.RegisterCertificate, request, timeout=timeout).credential

    def list_identities(self, *, role: str | None = None, revoked: bool | None = None, filter: str = "",
                        timeout: float | None = None) -> Iterator[identities_pb2.Identity]:
        query = join_filter(f"role={role}" if role else "",
                            f"revoked={str(revoked).lower()}" if revoked is not None else "", filter)

        def fetch(token: str) -> tuple[Sequence[identities_pb2.Identity], str]:
            request = identities_pb2.ListIdentitiesRequest(page_size=PAGE_SIZE, page_token=token, filter=query)
            reply = self._calls.unary(self._identities.ListIdentities, request, timeout=timeout)
            return reply.identities, reply.next_page_token

        return self._calls.pages(fetch)

    def list_credentials(self, identity: str, *, timeout: float | None = None) -> list[identities_pb2.Credential]:
        request = identities_pb2.ListCredentialsRequest(parent=identity_name(identity))
        return list(self._calls.unary(self._identities.ListCredentials, request, timeout=timeout).credentials)

    def revoke_credential(self, name: str, *, timeout: float | None = None) -> identities_pb2.Credential:
        """Revoke one credential, `identities/{id}/credentials/{credential}`."""
        request = identities_pb2.RevokeCredentialRequest(name=name)
        return self._calls.unary(self._identities.RevokeCredential, request, timeout=timeout).credential

    def revoke_identity(self, identity: str, *, timeout: float | None = None) -> identities_pb2.Identity:
        request = identities_pb2.RevokeIdentityRequest(name=identity_name(identity))
        return self._calls.unary(self._identities.RevokeIdentity, request, timeout=timeout).identity

    def whoami(self, *, timeout: float | None = None) -> identities_pb2.WhoAmIResponse:
        """The identity and credential this client is authenticated as."""
        return self._calls.unary(self._identities.WhoAmI, identities_pb2.WhoAmIRequest(), timeout=timeout)

    def set_password(self, identity: str, new_password: str, *, current_password: str = "",
                     timeout: float | None = None) -> identities_pb2.Identity:
        """Set an identity's password: an administrator for any identity; any identity for its own, giving
        `current_password`. At least 12 characters, at most 256 bytes, not the identity's id; the server
        keeps only its argon2id hash. The new password ends the identity's sign-in sessions, except the one
        this client calls with when it changes its own. Sending the same change again is harmless."""
        request = identities_pb2.SetPasswordRequest(identity=identity_name(identity), new_password=new_password,
                                                    current_password=current_password)
        return self._calls.unary(self._identities.SetPassword, request, timeout=timeout).identity

    def sign_in(self, identity_id: str, password: str, *, timeout: float | None = None
                ) -> identities_pb2.SignInResponse:
        """Sign in with a password (no token needed): `.token`, a 12-hour bearer token shown once, acting with
        exactly the identity's roles; it ends with `sign_out()`, or after the server's idle limit without use
        (30 minutes by default: then Unauthenticated, reason SESSION_IDLE).

        Unauthenticated when the identity or the password is wrong (one message for both); ResourceExhausted
        (reason ACCOUNT_LOCKED, `retry_after` in seconds) after 10 failures in a row."""
        request = identities_pb2.SignInRequest(identity_id=identity_id.removeprefix("identities/"),
                                               password=password)
        return self._calls.unary(self._identities.SignIn, request, timeout=timeout)

    def sign_out(self, *, timeout: float | None = None) -> identities_pb2.Credential:
        """End the sign-in session this client calls with (its token, from `sign_in`): the token is refused
        from then on. Returns the session's credential, now revoked.

        FailedPrecondition for a token an administrator issued or a client certificate (an administrator
        revokes those); Unauthenticated when the token no longer works (signed out already, idle, expired
        or revoked): either way, the session is over."""
        return self._calls.unary(self._identities.SignOut, identities_pb2.SignOutRequest(), timeout=timeout).credential
