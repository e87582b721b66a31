"""The authenticated caller of the RPC being served (set by the access interceptor)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from civicscore.auth.policy import ALL_UNITS, CITY_WIDE_ROLES, Permission


@dataclass(frozen=True)
class Caller:
    identity_id: str
    roles: tuple[str, ...]
    scope_units: frozenset[str]
    permissions: frozenset[Permission]
    credential_id: str
    credential_kind: str  # token | certificate

    def may_submit_for(self, unit_code: str) -> bool:
        return ALL_UNITS in self.scope_units or unit_code in self.scope_units

    @property
    def unrestricted(self) -> bool:
        return ALL_UNITS in self.scope_units

    def may_act_for(self, unit_code: str) -> bool:
        """Whether the caller may write for the unit where a reporter is bounded by its scope (an extension
        request): within its scope, or in a city-wide role (committee, admin)."""
        return self.may_submit_for(unit_code) or any(role in CITY_WIDE_ROLES for role in self.roles)


CURRENT: ContextVar[Caller | None] = ContextVar("civicscore_caller", default=None)


def current_caller() -> Caller | None:
    """The caller of the RPC this thread serves, or None outside an authenticated call."""
    return CURRENT.get()
