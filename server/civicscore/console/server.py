"""Serving the console: uvicorn in a thread of the civicscore process, or on its own (`python -m civicscore.console`).

Plain HTTP on a loopback address only; anywhere else it needs a certificate and key (the gRPC server's
by default) and serves HTTPS, with Secure cookies, as the gRPC server refuses plaintext off loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from civicscore.console.app import Console, ConsoleSettings
from civicscore_client import CivicscoreError, Client

log = logging.getLogger("civicscore.console")


class ConsoleRefused(ValueError):
    """The console cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class ConsoleConfig:
    listen: str  # host:port; port 0 picks a free one
    grpc_target: str  # where the console's SDK client connects (this server's own address)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    grpc_ca: Path | None = None  # CA of the gRPC server's certificate, when it serves TLS
    grpc_server_name: str | None = None
    candidates_root: Path | None = None
    max_live: int = 16


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConsoleRefused(f"--console-listen must be HOST:PORT (e.g. 127.0.0.1:8080), not {listen!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleServer:
    """The console's HTTP server in a background thread; `start()` returns once it is listening."""

    def __init__(self, config: ConsoleConfig) -> None:
        host, port = split_listen(config.listen)
        secure = config.tls_cert is not None and config.tls_key is not None
        if not secure and not is_loopback(host):
            raise ConsoleRefused(f"the console would serve plain HTTP on {config.listen}, outside this machine: give "
                                 "--tls-cert and --tls-key (the console uses the gRPC server's) or listen on "
                                 "127.0.0.1")
        self.config = config
        self.client = Client(config.grpc_target, ca_cert=config.grpc_ca, server_name_override=config.grpc_server_name,
                             timeout=30.0)
        self.console = Console(self.client, ConsoleSettings(secure=secure, candidates_root=config.candidates_root,
                                                            max_live=config.max_live))
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as err:
            self._socket.close()
            self.client.close()
            raise ConsoleRefused(f"the console cannot listen on {config.listen}: {err.strerror or err}") from None
        self.host = host
        self.port = self._socket.getsockname()[1]
        self.scheme = "https" if secure else "http"
        self._server = uvicorn.Server(uvicorn.Config(
            self.console.app, log_level="warning", access_log=False, lifespan="off", proxy_headers=False,
            ssl_certfile=str(config.tls_cert) if secure else None, ssl_keyfile=str(config.tls_key) if secure else None,
            timeout_graceful_shutdown=5, timeout_keep_alive=30, server_header=False))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="console-http", daemon=True)
        self._thread.start()
        for _ in range(500):
            if self._server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not self._server.started:
            raise ConsoleRefused("the console's web server did not start (see the log above)")

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def stop(self) -> None:
        """Ends the live streams, stops taking requests, waits up to 5 s for those in flight."""
        self.console.live.close()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
        self.client.close()


def first_sign_in(grpc_target: str, token_file: Path, password_file: Path) -> str | None:
    """The bootstrap administrator's first sign-in to the console: its identity id, with a password in
    `password_file` (mode 0600; the password is never logged).

    When the file does not exist and the bootstrap token in `token_file` is still valid, a random password is
    set for the token's identity (SetPassword, audited) and written to the file; an existing file is left as
    it is. Returns None when there is no bootstrap token to act with (a database set up by other means)."""
    if not token_file.is_file():
        return None
    token = token_file.read_text(encoding="ascii").strip()
    with Client(grpc_target, token=token, timeout=30.0) as client:
        try:
            identity = client.whoami().identity.identity_id
        except CivicscoreError as err:
            log.info("no console sign-in for the bootstrap administrator: its token is not valid (%s)", err.message)
            return None
        if password_file.exists():
            return identity
        password = secrets.token_urlsafe(15)
        staged = password_file.with_name(f".{password_file.name}.{os.getpid()}.tmp")
        password_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(password + "\n")
        try:
            client.set_password(identity, password)
        except CivicscoreError:
            staged.unlink(missing_ok=True)
            raise
        os.replace(staged, password_file)
        return identity
