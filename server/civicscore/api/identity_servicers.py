"""IdentityService: identities, tokens, certificates, revocation, WhoAmI, passwords and sign-in sessions."""

from __future__ import annotations

import grpc

from civicscore import identities, passwords, sessions
from civicscore.api.convert import timestamp_out
from civicscore.api.errors import handle_errors
from civicscore.api.filters import parse_filter
from civicscore.api.identity import caller, peer_address
from civicscore.api.paging import decode_token, encode_token, page_size
from civicscore.auth.authenticator import Authenticator
from civicscore.auth.caller import current_caller
from civicscore.auth.policy import ROLE_VALUES, Permission
from civicscore.auth.tokens import token_prefix
from civicscore.errors import FailedPrecondition, InvalidInput, NotFound, Violation, shown
from civicscore.runtime import Runtime
from civicscore.store.base import CredentialRecord, IdentityRecord
from civicscore_api.v1 import identities_pb2, identities_pb2_grpc

_ROLE_OUT = {role: identities_pb2.Role.Value(f"ROLE_{role.upper()}") for role in ROLE_VALUES}
_ROLE_IN = {value: role for role, value in _ROLE_OUT.items()}


def identity_out(record: IdentityRecord) -> identities_pb2.Identity:
    out = identities_pb2.Identity(
        name=f"identities/{record.identity_id}", identity_id=record.identity_id, display_name=record.display_name,
        roles=[_ROLE_OUT[r] for r in record.roles if r in _ROLE_OUT],
        scope_units=[f"units/{code}" for code in record.scope_units], create_time=timestamp_out(record.created_at),
        created_by=record.created_by, revoked=record.revoked_at is not None)
    if record.revoked_at is not None:
        out.revoke_time.CopyFrom(timestamp_out(record.revoked_at))
    return out


def credential_out(record: CredentialRecord) -> identities_pb2.Credential:
    out = identities_pb2.Credential(
        name=f"identities/{record.identity_id}/credentials/{record.credential_id}",
        kind=(identities_pb2.CREDENTIAL_KIND_TOKEN if record.kind == "token"
              else identities_pb2.CREDENTIAL_KIND_CERTIFICATE),
        certificate_subject=record.certificate_subject or "",
        token_prefix=token_prefix(record.credential_id) if record.kind == "token" else "",
        create_time=timestamp_out(record.created_at), created_by=record.created_by,
        revoked=record.revoked_at is not None, revoked_by=record.revoked_by or "", sign_in=record.sign_in)
    if record.sign_in:
        out.last_use_time.CopyFrom(timestamp_out(record.last_used_at or record.created_at))
    if record.expires_at is not None:
        out.expire_time.CopyFrom(timestamp_out(record.expires_at))
    if record.revoked_at is not None:
        out.revoke_time.CopyFrom(timestamp_out(record.revoked_at))
    return out


class IdentityServicer(identities_pb2_grpc.IdentityServiceServicer):
    def __init__(self, runtime: Runtime, authenticator: Authenticator) -> None:
        self.rt = runtime
        self.authenticator = authenticator

    @handle_errors
    def CreateIdentity(self, request: identities_pb2.CreateIdentityRequest, context: grpc.ServicerContext
                       ) -> identities_pb2.CreateIdentityResponse:
        given = request.identity
        roles = []
        for index, role in enumerate(given.roles):
            if role not in _ROLE_IN:
                raise InvalidInput([Violation(f"identity.roles[{index}]", "give a role: REPORTER, READER, POLICY, "
                                              "COMMITTEE or ADMIN", "UNKNOWN_ROLE")])
            roles.append(_ROLE_IN[role])
        record = identities.create_identity(
            self.rt.store, identity_id=given.identity_id, display_name=given.display_name, roles=roles,
            scope_units=list(given.scope_units), actor=caller(context), now=self.rt.clock(),
            idempotency_key=request.idempotency_key)
        return identities_pb2.CreateIdentityResponse(identity=identity_out(record))

    @handle_errors
    def IssueToken(self, request: identities_pb2.IssueTokenRequest, context: grpc.ServicerContext
                   ) -> identities_pb2.IssueTokenResponse:
        issued = identities.issue_token(self.rt.store, identity=request.identity, valid_days=request.valid_days,
                                        actor=caller(context), now=self.rt.clock(),
                                        idempotency_key=request.idempotency_key)
        return identities_pb2.IssueTokenResponse(token=issued.token, credential=credential_out(issued.credential))

    @handle_errors
    def RegisterCertificate(self, request: identities_pb2.RegisterCertificateRequest,
                            context: grpc.ServicerContext) -> identities_pb2.RegisterCertificateResponse:
        record = identities.register_certificate(
            self.rt.store, identity=request.identity, subject=request.certificate_subject,
            valid_days=request.valid_days, actor=caller(context), now=self.rt.clock(),
            idempotency_key=request.idempotency_key)
        return identities_pb2.RegisterCertificateResponse(credential=credential_out(record))

    @handle_errors
    def ListIdentities(self, request: identities_pb2.ListIdentitiesRequest, context: grpc.ServicerContext
                       ) -> identities_pb2.ListIdentitiesResponse:
        terms = parse_filter(request.filter, {"role", "revoked"})
        role = terms.get("role")
        if role is not None and role not in ROLE_VALUES:
            raise InvalidInput([Violation("filter", f"unknown role {shown(role)}", "INVALID_FILTER")])
        revoked = terms.get("revoked")
        if revoked not in (None, "true", "false"):
            raise InvalidInput([Violation("filter", "revoked must be true or false", "INVALID_FILTER")])
        scope = f"identities|{request.filter}"
        page = self.rt.store.list_identities(
            role=role, revoked=None if revoked is None else revoked == "true",
            after=decode_token(request.page_token, scope), limit=page_size(request.page_size))
        return identities_pb2.ListIdentitiesResponse(identities=[identity_out(i) for i in page.items],
                                                     next_page_token=encode_token(page.next_cursor, scope))

    @handle_errors
    def ListCredentials(self, request: identities_pb2.ListCredentialsRequest, context: grpc.ServicerContext
                        ) -> identities_pb2.ListCredentialsResponse:
        identity_id = request.parent.removeprefix("identities/")
        if self.rt.store.get_identity(identity_id) is None:
            raise NotFound(f"identities/{identity_id}")
        return identities_pb2.ListCredentialsResponse(
            credentials=[credential_out(c) for c in self.rt.store.list_credentials(identity_id)])

    @handle_errors
    def RevokeCredential(self, request: identities_pb2.RevokeCredentialRequest, context: grpc.ServicerContext
                         ) -> identities_pb2.RevokeCredentialResponse:
        record = identities.revoke_credential(self.rt.store, name=request.name, actor=caller(context),
                                              now=self.rt.clock())
        self.authenticator.forget(record.credential_id)
        return identities_pb2.RevokeCredentialResponse(credential=credential_out(record))

    @handle_errors
    def RevokeIdentity(self, request: identities_pb2.RevokeIdentityRequest, context: grpc.ServicerContext
                       ) -> identities_pb2.RevokeIdentityResponse:
        me = current_caller()
        if me is not None and request.name.removeprefix("identities/") == me.identity_id:
            raise FailedPrecondition("you cannot revoke the identity you are calling with; use another administrator")
        record = identities.revoke_identity(self.rt.store, name=request.name, actor=caller(context),
                                            now=self.rt.clock())
        self.authenticator.forget()
        return identities_pb2.RevokeIdentityResponse(identity=identity_out(record))

    @handle_errors
    def WhoAmI(self, request: identities_pb2.WhoAmIRequest, context: grpc.ServicerContext
               ) -> identities_pb2.WhoAmIResponse:
        me = current_caller()
        assert me is not None, "WhoAmI is admitted for authenticated callers only"
        identity = self.rt.store.get_identity(me.identity_id)
        found = self.rt.store.get_credential(me.credential_id)
        assert identity is not None
        response = identities_pb2.WhoAmIResponse(identity=identity_out(identity))
        if found is not None:
            response.credential.CopyFrom(credential_out(found[0]))
        return response

    @handle_errors
    def SetPassword(self, request: identities_pb2.SetPasswordRequest, context: grpc.ServicerContext
                    ) -> identities_pb2.SetPasswordResponse:
        me = current_caller()
        assert me is not None, "SetPassword is admitted for authenticated callers only"
        done = passwords.set_password(
            self.rt.store, identity=request.identity, new_password=request.new_password,
            current_password=request.current_password, caller_id=me.identity_id,
            caller_credential=me.credential_id, caller_is_admin=Permission.IDENTITIES in me.permissions,
            now=self.rt.clock(), client=peer_address(context))
        for credential_id in done.sessions_ended:  # refused at once here; other replicas within the cache's time
            self.authenticator.forget(credential_id)
        return identities_pb2.SetPasswordResponse(identity=identity_out(done.identity),
                                                  sessions_ended=len(done.sessions_ended))

    @handle_errors
    def SignIn(self, request: identities_pb2.SignInRequest, context: grpc.ServicerContext
               ) -> identities_pb2.SignInResponse:
        signed = passwords.sign_in(self.rt.store, identity_id=request.identity_id, password=request.password,
                                   now=self.rt.clock(), client=peer_address(context))
        return identities_pb2.SignInResponse(token=signed.token, credential=credential_out(signed.credential),
                                             identity=identity_out(signed.identity))

    @handle_errors
    def SignOut(self, request: identities_pb2.SignOutRequest, context: grpc.ServicerContext
                ) -> identities_pb2.SignOutResponse:
        me = current_caller()
        assert me is not None, "SignOut is admitted for authenticated callers only"
        record = sessions.sign_out(self.rt.store, identity_id=me.identity_id, credential_id=me.credential_id,
                                   credential_kind=me.credential_kind, now=self.rt.clock(),
                                   client=peer_address(context))
        self.authenticator.forget(record.credential_id)  # the next call with it is refused at once
        return identities_pb2.SignOutResponse(credential=credential_out(record))
