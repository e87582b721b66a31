"""The `civicscore` command: import data, run evaluations and read results from a civicscore server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from civicscore_client import (
    cli_explain,
    cli_extensions,
    cli_obstacles,
    cli_officials,
    cli_passwords,
    cli_report,
    cli_review,
    cli_views,
)
from civicscore_client.cli_admin import admin_app
from civicscore_client.cli_audit import audit_app
from civicscore_client.cli_import import import_app
from civicscore_client.cli_rules import rules_app
from civicscore_client.cli_session import DEFAULT_SERVER, Session

app = typer.Typer(
    name="civicscore",
    help=(
        "Evaluate Hanoi's departments and communes on their assigned tasks: import assignments, outcomes "
        "and measurements, run a quarter's evaluation, and read scores, rankings and recommendations."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(
    ctx: typer.Context,
    server: Annotated[
        str,
        typer.Option("--server", envvar="CIVICSCORE_SERVER", help="Server address, HOST:PORT."),
    ] = DEFAULT_SERVER,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print results as JSON (for scripts) instead of tables.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each reply.")] = 30.0,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="CIVICSCORE_TOKEN",
            show_default=False,
            help=(
                "Bearer token to call the server with. Prefer --token-file: other users of this machine "
                "can see a command line."
            ),
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            envvar="CIVICSCORE_TOKEN_FILE",
            show_default=False,
            help="File holding the bearer token (surrounding whitespace ignored); keep it mode 600.",
        ),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            "--ca-cert",
            envvar="CIVICSCORE_CA_CERT",
            show_default=False,
            help="CA certificate (PEM) to check the server's certificate with; connects with TLS.",
        ),
    ] = None,
    client_cert: Annotated[
        Path | None,
        typer.Option(
            "--client-cert",
            envvar="CIVICSCORE_CLIENT_CERT",
            show_default=False,
            help="Client certificate (PEM) for mutual TLS, with --client-key; connects with TLS.",
        ),
    ] = None,
    client_key: Annotated[
        Path | None,
        typer.Option(
            "--client-key",
            envvar="CIVICSCORE_CLIENT_KEY",
            show_default=False,
            help="Private key (PEM) of --client-cert.",
        ),
    ] = None,
    server_name: Annotated[
        str | None,
        typer.Option(
            "--server-name",
            envvar="CIVICSCORE_SERVER_NAME",
            show_default=False,
            help="Name to check the server's certificate against instead of the host in --server (TLS only).",
        ),
    ] = None,
) -> None:
    """Options shared by every command; give them before the command name."""
    if token is not None and token_file is not None:
        token, token_file = _one_token_source(ctx, token, token_file)
    ctx.obj = Session(
        server=server,
        json_output=json_output,
        timeout=timeout,
        token=token,
        token_file=token_file,
        ca_cert=ca_cert,
        client_cert=client_cert,
        client_key=client_key,
        server_name=server_name,
    )


def _one_token_source(ctx: typer.Context, token: str, token_file: Path) -> tuple[str | None, Path | None]:
    """A token given on the command line wins over one from the environment; two on the same level clash."""
    token_on_line = _on_command_line(ctx, "token")
    file_on_line = _on_command_line(ctx, "token_file")
    if token_on_line and not file_on_line:
        return token, None
    if file_on_line and not token_on_line:
        return None, token_file
    where = "on the command line" if token_on_line else "in the environment (CIVICSCORE_TOKEN, CIVICSCORE_TOKEN_FILE)"
    raise typer.BadParameter(f"a token and a token file are both given {where}: give one", param_hint="'--token'")


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


app.add_typer(import_app, name="import")
app.add_typer(rules_app, name="rules")
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")
cli_views.register(app)
cli_review.register(app)
cli_extensions.register(app)
cli_obstacles.register(app)
cli_officials.register(app)
cli_explain.register(app)
cli_report.register(app)
cli_passwords.register(app)


def main() -> None:
    """Entry point of the `civicscore` console script."""
    app()


if __name__ == "__main__":
    main()
