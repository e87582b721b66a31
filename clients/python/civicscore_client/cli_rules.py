"""`civicscore rules …`: the policy staff's tool for the rule files.

Local commands (check, test) read a rules folder on this machine; server commands
(simulate, activate, rollback, status, history, show) talk to a civicscore server.
"""

from __future__ import annotations

import typer

from civicscore_client import cli_rules_local, cli_rules_remote

rules_app = typer.Typer(
    help=(
        "Check, test, simulate and activate the rule files in rules/ (Kiểm tra, chạy thử, mô phỏng và "
        "áp dụng bộ quy tắc)."
    ),
    no_args_is_help=True,
)
cli_rules_local.register(rules_app)
cli_rules_remote.register(rules_app)
