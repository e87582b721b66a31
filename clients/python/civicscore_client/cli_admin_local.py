"""`civicscore admin dev-ca`: a development CA and certificates for TLS and mutual TLS, made on this machine.

No server is needed. The files are PEM; private keys get mode 0600. Running it again in the same
folder keeps the CA (so certificates issued before stay valid) and issues the server and client
certificates anew.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from civicscore_client.cli_session import Session, session_of

if TYPE_CHECKING:
    from civicscore_client.devca import DevCaFiles

TLS_PORT = 50051
MTLS_PORT = 50052
DEV_ONLY = (
    "this CA is for development and tests only: whoever has ca.key can make certificates the server "
    "accepts. In production use your organisation's CA and keep private keys off shared disks."
)


def register(app: typer.Typer) -> None:
    """Add `dev-ca` to the `admin` sub-app."""
    app.command("dev-ca")(dev_ca)


def dev_ca(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into (created if missing).")],
    server_name: Annotated[
        str,
        typer.Option(
            "--server-name",
            help="Name (or IP address) clients use to reach the server; localhost, 127.0.0.1 and ::1 are always added.",
        ),
    ] = "localhost",
    clients: Annotated[
        list[str] | None,
        typer.Option(
            "--client",
            help="Make a client certificate CN=NAME (SAN urn:civicscore:NAME) for mutual TLS; repeat for more.",
            metavar="NAME",
        ),
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Days the certificates are valid.")] = 365,
) -> None:
    """Make a development CA, a server certificate and client certificates (for TLS and mutual TLS).

    Writes ca.pem and ca.key, server.pem and server.key, and client-NAME.pem and client-NAME.key
    for each --client, then prints the server flags and CLI options that use them. An existing CA
    in the folder is kept. For development and tests only.
    """
    session = session_of(ctx)
    try:
        from civicscore_client.devca import write_dev_ca
    except ImportError as error:  # pragma: no cover - cryptography is a dependency of the client package
        session.fail(f"dev-ca needs the 'cryptography' package ({error}): pip install cryptography", code=2)
    try:
        files = write_dev_ca(out, server_name=server_name, clients=clients or [], days=days)
    except (ValueError, OSError) as err:
        session.fail(str(err), code=2)
    if session.json_output:
        session.print_json(_as_json(files, server_name))
        return
    _print_summary(session, files, server_name, days)


def _address(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            return f"[{host.strip('[]')}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def _commands(files: DevCaFiles, server_name: str) -> dict[str, Any]:
    server = (
        f"python -m civicscore --listen 127.0.0.1:{TLS_PORT} --tls-cert {files.server_cert} "
        f"--tls-key {files.server_key} --client-ca {files.ca_cert} --mtls-listen 127.0.0.1:{MTLS_PORT}"
    )
    token_cli = (
        f"civicscore --server {_address(server_name, TLS_PORT)} --ca-cert {files.ca_cert} --token-file TOKEN_FILE"
    )
    client_cli = {
        name: (
            f"civicscore --server {_address(server_name, MTLS_PORT)} --ca-cert {files.ca_cert} "
            f"--client-cert {cert} --client-key {key}"
        )
        for name, (cert, key) in files.clients.items()
    }
    return {"server": server, "cli_with_token": token_cli, "cli_with_client_certificate": client_cli}


def _as_json(files: DevCaFiles, server_name: str) -> dict[str, Any]:
    from civicscore_client.devca import client_uri

    return {
        "out": str(files.ca_cert.parent),
        "reused_ca": files.reused_ca,
        "ca_cert": str(files.ca_cert),
        "ca_key": str(files.ca_key),
        "server_cert": str(files.server_cert),
        "server_key": str(files.server_key),
        "server_name": server_name,
        "clients": {
            name: {"cert": str(cert), "key": str(key), "subjects": [f"CN={name}", client_uri(name)]}
            for name, (cert, key) in files.clients.items()
        },
        "commands": _commands(files, server_name),
        "warning": DEV_ONLY,
    }


def _print_summary(session: Session, files: DevCaFiles, server_name: str, days: int) -> None:
    from civicscore_client.devca import client_uri, server_alt_names

    out = session.out
    folder = escape(str(files.ca_cert.parent))
    if files.reused_ca:
        out.print(f"Kept the development CA in {folder} (ca.pem, ca.key) and wrote, valid {days} days:")
    else:
        out.print(f"Wrote a development CA and certificates to {folder}, valid {days} days:")
        out.print(f"  {escape(str(files.ca_cert))}  CA certificate: clients' --ca-cert, the server's --client-ca")
        out.print(f"  {escape(str(files.ca_key))}  CA private key (mode 600): it signs certificates; keep it here")
    dns_names, ips = server_alt_names(server_name)
    names = ", ".join([*dns_names, *ips])
    out.print(f"  {escape(str(files.server_cert))}  server certificate for {escape(names)}")
    out.print(f"  {escape(str(files.server_key))}  server private key (mode 600)")
    for name, (cert, key) in files.clients.items():
        out.print(f"  {escape(str(cert))}  client certificate CN={escape(name)}, SAN {escape(client_uri(name))}")
        out.print(f"  {escape(str(key))}  its private key (mode 600)")
    commands = _commands(files, server_name)
    out.print("\nStart the server with TLS, and mutual TLS on a second port:")
    out.print(f"  {escape(commands['server'])}", soft_wrap=True)
    out.print("Call it with a token over TLS:")
    out.print(f"  {escape(commands['cli_with_token'])} periods", soft_wrap=True)
    if files.clients:
        out.print(
            "Call it with a client certificate (mutual TLS), once an administrator has registered its subject "
            "(CN=NAME or urn:civicscore:NAME) as a credential of an identity:"
        )
        for line in commands["cli_with_client_certificate"].values():
            out.print(f"  {escape(line)} periods", soft_wrap=True)
    session.warn(DEV_ONLY)
