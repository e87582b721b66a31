"""Who is using the console: the session cookie, the person behind it, and CSRF tokens.

A session is the bearer token SignIn returned for the person, kept only in an HttpOnly, SameSite=Strict
cookie (Secure, with the `__Host-` prefix, when the console is served over TLS). Its state lives on the
server, in the database, like any credential: the 12-hour expiry, the idle expiry and sign-out
(SignOut revokes it) hold on every replica, and every call the console makes for the person carries
the person's own token, so the server's access table decides and the audit log names the person.

CSRF: every form carries a token derived from the session (HMAC-SHA256 keyed by the session token),
so any replica checks it without shared state; the sign-in form, before a session exists, uses a
random cookie repeated in the form (double submit). Both travel only to this origin (SameSite=Strict).

Single sign-on (OpenID Connect) would plug in here: a callback route that verifies the provider's ID
token, maps its subject to an identity, and obtains a civicscore sign-in token for it from the server
(a SignIn variant that trusts the console's own credential); the cookie, CSRF and everything after stay
as they are. See README, "Web console".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from civicscore.auth.policy import Permission, permissions_of
from civicscore_api.v1 import identities_pb2

_CSRF_CONTEXT = b"civicscore-console-csrf-v1"


@dataclass(frozen=True)
class CookieNames:
    session: str
    sign_in: str
    language: str


def cookie_names(secure: bool) -> CookieNames:
    """`__Host-` cookies (Secure, Path=/, no Domain) when served over TLS; plain names on loopback HTTP."""
    prefix = "__Host-" if secure else ""
    return CookieNames(session=f"{prefix}cs_session", sign_in=f"{prefix}cs_signin", language="cs_lang")


@dataclass(frozen=True)
class Person:
    """The signed-in person, as the server knows them (WhoAmI)."""

    token: str
    identity_id: str
    display_name: str
    roles: frozenset[int]

    @classmethod
    def from_whoami(cls, token: str, reply: identities_pb2.WhoAmIResponse) -> Person:
        identity = reply.identity
        return cls(token=token, identity_id=identity.identity_id,
                   display_name=identity.display_name or identity.identity_id, roles=frozenset(identity.roles))

    @property
    def committee(self) -> bool:
        return identities_pb2.ROLE_COMMITTEE in self.roles

    @property
    def policy(self) -> bool:
        return identities_pb2.ROLE_POLICY in self.roles

    @property
    def admin(self) -> bool:
        return identities_pb2.ROLE_ADMIN in self.roles

    @property
    def personal_read(self) -> bool:
        """Whether the server lets this person read officials (`personal.read`), by the server's own role table:
        the console shows the individuals' pages only to them (the server still decides every call)."""
        names = tuple(identities_pb2.Role.Name(identities_pb2.Role.ValueType(role)).removeprefix("ROLE_").lower()
                      for role in self.roles if role in identities_pb2.Role.values())
        return Permission.PERSONAL in permissions_of(names)

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_matches(expected: str, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def new_sign_in_nonce() -> str:
    return secrets.token_urlsafe(32)


def set_cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict")


def clear_cookie(response: Response, name: str, *, secure: bool) -> None:
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from a page of this console (Origin, else Referer, vs Host).

    Browsers send Origin on every POST; SameSite=Strict cookies and the CSRF token are the main defence,
    this is a second one that costs nothing.
    """
    host = request.headers.get("host", "")
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True  # not a browser's cross-site request (those always carry Origin on POST)
    if source == "null":
        return False
    scheme_split = source.split("://", 1)
    if len(scheme_split) != 2:
        return False
    return scheme_split[1].split("/", 1)[0] == host


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this console only (never `//host` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
