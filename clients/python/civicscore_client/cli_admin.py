"""`civicscore admin …`: administration.

Local commands (dev-ca) work on this machine without a server; server commands manage identities
and their credentials on a civicscore server.
"""

from __future__ import annotations

import typer

from civicscore_client import cli_admin_local, cli_admin_remote, cli_passwords

admin_app = typer.Typer(
    help=(
        "Administration: development certificates (dev-ca), and the identities, roles and credentials "
        "allowed to call the server."
    ),
    no_args_is_help=True,
)
cli_admin_local.register(admin_app)
cli_admin_remote.register(admin_app)
cli_passwords.register_admin(admin_app)
