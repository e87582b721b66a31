"""The `civicscore` command: import data, run evaluations and read results from a civicscore server."""

from __future__ import annotations

from typing import Annotated

import typer

from civicscore_client import cli_explain, cli_views
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
) -> None:
    """Options shared by every command; give them before the command name."""
    ctx.obj = Session(server=server, json_output=json_output, timeout=timeout)


app.add_typer(import_app, name="import")
app.add_typer(rules_app, name="rules")
cli_views.register(app)
cli_explain.register(app)


def main() -> None:
    """Entry point of the `civicscore` console script."""
    app()


if __name__ == "__main__":
    main()
