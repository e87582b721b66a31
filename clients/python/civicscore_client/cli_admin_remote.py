"""`civicscore admin …` commands that manage identities and credentials on a civicscore server."""

from __future__ import annotations

from typing import Annotated

import typer
from google.protobuf import timestamp_pb2
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import identities_pb2
from civicscore_client._identities import ROLES, identity_name
from civicscore_client.cli_locale import hanoi_time
from civicscore_client.cli_session import message_dict, messages_json, session_of

_ROLE_NAMES = {value: name for name, value in ROLES.items()}


def _when(ts: timestamp_pb2.Timestamp, present: bool = True) -> str:
    if not present or (ts.seconds == 0 and ts.nanos == 0):
        return ""
    return hanoi_time(ts, seconds=False)


def _roles(identity: identities_pb2.Identity) -> str:
    return ", ".join(_ROLE_NAMES.get(role, str(role)) for role in identity.roles)


def register(app: typer.Typer) -> None:
    """Add the server-side admin commands to the `admin` sub-app."""

    @app.command("create")
    def create(
        ctx: typer.Context,
        identity_id: Annotated[str, typer.Argument(help="Id: lowercase letters, digits, - and ., e.g. snv-tracker.")],
        name: Annotated[str, typer.Option("--name", help="Display name, e.g. the system or the person.")],
        role: Annotated[list[str], typer.Option("--role", help=f"A role ({', '.join(ROLES)}); repeat for more.")],
        unit: Annotated[list[str] | None, typer.Option(
            "--unit", help="For reporters: a unit it reports for (repeat), or * for every unit.")] = None,
    ) -> None:
        """Create an identity with roles (reporters: with the units they may submit for)."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            try:
                created = client.create_identity(identity_id, name, roles=role, scope_units=unit or [])
            except ValueError as error:
                session.fail(str(error), code=2)
            if session.json_output:
                session.print_json(message_dict(created))
                return
            scope = ", ".join(created.scope_units) or "-"
            session.out.print(f"created {created.name}: roles {_roles(created)}; units {scope}")
            session.out.print(f"next: civicscore admin token {created.identity_id}")

    @app.command("token")
    def token(
        ctx: typer.Context,
        identity: Annotated[str, typer.Argument(help="The identity id.")],
        days: Annotated[int, typer.Option("--days", min=1, max=400, help="Days until it expires.")] = 90,
    ) -> None:
        """Issue a bearer token. It is printed once, here: the server keeps only its hash."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            issued = client.issue_token(identity, valid_days=days)
            if session.json_output:
                session.print_json({"token": issued.token, "credential": message_dict(issued.credential)})
                return
            session.err.print(f"token for {identity_name(identity)}, expires {_when(issued.credential.expire_time)}."
                              " It is shown only now: store it as a secret (e.g. a file readable only by the "
                              "system that uses it, given with --token-file).")
            session.out.file.write(issued.token + "\n")

    @app.command("cert")
    def cert(
        ctx: typer.Context,
        identity: Annotated[str, typer.Argument(help="The identity id.")],
        subject: Annotated[str, typer.Argument(help="CN=<common name> or a subject alternative name.")],
        days: Annotated[int, typer.Option("--days", min=0, max=3650,
                                          help="Days the registration lasts (0: as the certificate).")] = 0,
    ) -> None:
        """Accept a client certificate (mutual TLS) for an identity."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            credential = client.register_certificate(identity, subject, valid_days=days)
            if session.json_output:
                session.print_json(message_dict(credential))
                return
            session.out.print(f"registered {credential.name}: certificate subject {credential.certificate_subject}")

    @app.command("list")
    def list_identities(
        ctx: typer.Context,
        role: Annotated[str | None, typer.Option("--role", help="Only identities with this role.")] = None,
        all_: Annotated[bool, typer.Option("--all", help="Include revoked identities.")] = False,
    ) -> None:
        """List identities with their roles and units."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            found = list(client.list_identities(role=role, revoked=None if all_ else False))
            if session.json_output:
                session.print_json(messages_json(found))
                return
            table = Table(title="Identities")
            for column in ("Id", "Name", "Roles", "Units", "Created", "By", "Revoked"):
                table.add_column(column, overflow="fold")
            for identity in found:
                table.add_row(identity.identity_id, Text(identity.display_name), _roles(identity),
                              ", ".join(u.removeprefix("units/") for u in identity.scope_units),
                              _when(identity.create_time), identity.created_by,
                              _when(identity.revoke_time) if identity.revoked else "")
            session.out.print(table)

    @app.command("credentials")
    def credentials(ctx: typer.Context,
                    identity: Annotated[str, typer.Argument(help="The identity id.")]) -> None:
        """List an identity's credentials (never a token's secret)."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            found = client.list_credentials(identity)
            if session.json_output:
                session.print_json(messages_json(found))
                return
            table = Table(title=f"Credentials of {identity_name(identity)}")
            for column in ("Name", "Kind", "Token / subject", "Expires", "Created", "Last used", "Revoked"):
                table.add_column(column, overflow="fold")
            for credential in found:
                kind = "token" if credential.kind == identities_pb2.CREDENTIAL_KIND_TOKEN else "certificate"
                table.add_row(credential.name, f"{kind} (sign-in)" if credential.sign_in else kind,
                              credential.token_prefix or credential.certificate_subject,
                              _when(credential.expire_time), _when(credential.create_time),
                              _when(credential.last_use_time),
                              f"{_when(credential.revoke_time)} by {credential.revoked_by}" if credential.revoked
                              else "")
            session.out.print(table)

    @app.command("revoke-credential")
    def revoke_credential(ctx: typer.Context, name: Annotated[str, typer.Argument(
            help="identities/ID/credentials/CREDENTIAL, as `admin credentials` lists it.")]) -> None:
        """Revoke one credential; the identity's other credentials keep working."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            revoked = client.revoke_credential(name)
            session.out.print(f"revoked {revoked.name}")

    @app.command("revoke")
    def revoke(ctx: typer.Context, identity: Annotated[str, typer.Argument(help="The identity id.")]) -> None:
        """Revoke an identity and every credential of it."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            revoked = client.revoke_identity(identity)
            session.out.print(f"revoked {revoked.name} and all its credentials")

    @app.command("check-data")
    def check_data(
        ctx: typer.Context,
        limit: Annotated[int, typer.Option("--limit", min=1, max=10_000,
                                           help="The most findings to list (all are counted).")] = 1000,
    ) -> None:
        """Check every stored unit, assignment, outcome, measurement and target against the domains of
        its fields (Kiểm tra dữ liệu đã lưu); exit code 1 when a value is outside its domain."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            reply = client.check_stored_data(max_findings=limit, timeout=600)
        if session.json_output:
            session.print_json(message_dict(reply))
        else:
            checked = ", ".join(f"{count:,} {collection}" for collection, count in sorted(reply.checked.items()))
            session.out.print(f"checked {checked}")
            for finding in reply.findings:
                session.out.print(f"{escape(finding.resource)} {escape(finding.field)} = {escape(finding.value)}: "
                                  f"{escape(finding.problem)}")
            if reply.total_findings > len(reply.findings):
                session.out.print(f"… and {reply.total_findings - len(reply.findings):,} more")
            session.out.print(f"{reply.total_findings:,} value(s) outside their domain" if reply.total_findings
                              else "every stored value is within its domain")
        if reply.total_findings:
            raise typer.Exit(1)

    @app.command("whoami")
    def whoami(ctx: typer.Context) -> None:
        """Who the server says you are, with which roles and credential."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            reply = client.whoami()
            if session.json_output:
                session.print_json(message_dict(reply))
                return
            identity = reply.identity
            units = ", ".join(u.removeprefix("units/") for u in identity.scope_units) or "-"
            session.out.print(f"{identity.identity_id} ({identity.display_name}): roles {_roles(identity)}; "
                              f"units {units}; credential {reply.credential.name}")
