"""What every command shares: the server address, credentials, output mode, consoles, one-line error reporting.

The token is read (from --token, CIVICSCORE_TOKEN, or the file named by --token-file /
CIVICSCORE_TOKEN_FILE) only when a command connects, so local commands work whatever the token
options say; it is never printed: not in a message, an error or the Session's repr.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.markup import escape

from civicscore_api.v1 import periods_pb2
from civicscore_client._calls import tls_handshake_failed
from civicscore_client._client import Client
from civicscore_client._connection import CredentialsError, is_local_target
from civicscore_client._errors import (
    CivicscoreError,
    DeadlineExceeded,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from civicscore_client.importing import ImportFileError

DEFAULT_SERVER = "127.0.0.1:50051"
# Without a terminal (pipes, tests) rich would wrap tables at 80 columns and split Vietnamese names.
_PIPE_WIDTH = 200
TOKEN_HELP = "--token-file FILE or CIVICSCORE_TOKEN_FILE"
HIDDEN = "[token hidden]"


MAX_TOKEN_FILE_BYTES = 64 * 1024


@dataclass
class Session:
    """Options given before the command, plus the consoles the command writes to."""

    server: str = DEFAULT_SERVER
    json_output: bool = False
    timeout: float = 30.0
    out: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None
    _secrets: list[str] = field(default_factory=list, init=False, repr=False)

    @property
    def tls(self) -> bool:
        """Whether commands connect with TLS (a CA certificate or a client certificate was given)."""
        return self.ca_cert is not None or self.client_cert is not None

    def connect(self, *, timeout: float | None = None) -> Client:
        """A client for the chosen server (one channel; close it with `with`).

        Unusable credentials (a missing token file, half a client certificate, a token that would go
        in plaintext to another machine) end the command with one line on stderr and exit code 2.
        """
        if (self.client_cert is None) != (self.client_key is None):
            pair = ("--client-cert", "--client-key")
            given, missing = pair if self.client_key is None else pair[::-1]
            self.fail(f"{given} is given without {missing}: a client certificate needs both", code=2)
        if self.server_name and not self.tls:
            self.fail("--server-name needs TLS: give the server's CA certificate with --ca-cert", code=2)
        token = self.read_token()
        if token is not None and not self.tls and not is_local_target(self.server):
            self.fail(
                f"refusing to send the token in plaintext to {self.server}: give the server's CA certificate "
                "with --ca-cert (or CIVICSCORE_CA_CERT) to use TLS",
                code=2,
            )
        try:
            return Client(
                self.server,
                timeout=timeout or self.timeout,
                token=token,
                ca_cert=self.ca_cert,
                client_cert=self.client_cert,
                client_key=self.client_key,
                server_name_override=self.server_name,
            )
        except CredentialsError as err:
            self.fail(_cli_words(str(err)), code=2)

    def read_token(self) -> str | None:
        """The token from --token or the token file (surrounding whitespace ignored); None when neither."""
        if self.token is not None:
            token = self.token.strip()
            source = "--token / CIVICSCORE_TOKEN"
        elif self.token_file is not None:
            token = self._read_token_file(self.token_file)
            source = f"the token file {self.token_file}"
        else:
            return None
        if not token:
            self.fail(f"{source} is empty: it should hold a token like cs_<hex>_<43 characters>", code=2)
        self._secrets.append(token)
        return token

    def _read_token_file(self, path: Path) -> str:
        where = f"the token file {path} (--token-file / CIVICSCORE_TOKEN_FILE)"
        try:
            with path.expanduser().open("rb") as file:
                data = file.read(MAX_TOKEN_FILE_BYTES + 1)  # a token is 60 characters: never read a huge file
            mode = path.expanduser().stat().st_mode
        except FileNotFoundError:
            self.fail(f"{where} does not exist", code=2)
        except IsADirectoryError:
            self.fail(f"{where} is a directory, not a file holding a token", code=2)
        except PermissionError:
            self.fail(f"{where} is not readable (permission denied)", code=2)
        except OSError as err:
            self.fail(f"cannot read {where}: {err.strerror or err}", code=2)
        if len(data) > MAX_TOKEN_FILE_BYTES:
            self.fail(f"{where} is larger than {MAX_TOKEN_FILE_BYTES // 1024} KiB: it should hold one token like "
                      "cs_<hex>_<43 characters>", code=2)
        try:
            token = data.decode("ascii").strip()
        except UnicodeDecodeError:
            self.fail(f"{where} does not hold a token: it has non-ASCII bytes", code=2)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            self.warn(f"{where} can be read by other users of this machine: `chmod 600 {path}`")
        return token

    def print_json(self, value: Any) -> None:
        """Write a value as JSON on stdout, Vietnamese text as is (not \\u-escaped)."""
        self.out.file.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")

    @contextmanager
    def reporting_errors(self) -> Iterator[None]:
        """Turn expected failures into one clear line on stderr and an exit code, never a traceback."""
        try:
            yield
        except ImportFileError as err:
            self.fail(str(err), code=2)
        except Unavailable as err:
            if err.from_server:  # the server answered: it is up but cannot do this now
                self.fail(f"{err.message} (try again shortly)")
            if tls_handshake_failed(err):
                self.fail(self._handshake_failure(err.message))
            if "socket closed" in err.message.lower():
                self.fail(self._closed_connection())
            self.fail(f"cannot reach civicscore at {self.server}: is the server running? start it with `make run`")
        except DeadlineExceeded:
            self.fail(f"civicscore at {self.server} did not answer in time; try again or raise --timeout")
        except InvalidArgument as err:
            lines = [f"  {v.field}: {v.description}" for v in err.violations if v.description not in err.message]
            self.fail("\n".join([err.message, *lines]))
        except Unauthenticated as err:
            self.fail(self._unauthenticated(err.message))
        except PermissionDenied as err:
            message = err.message
            self.fail(message if "permission" in message.lower() else f"permission denied: {message}")
        except CivicscoreError as err:
            self.fail(err.message)
        except KeyboardInterrupt:
            self.fail("interrupted", code=130)

    def fail(self, message: str, *, code: int = 1) -> NoReturn:
        """Print `error: message` on stderr and exit with `code`."""
        self.err.print(f"[bold red]error:[/] {escape(self._redact(message))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code)

    def warn(self, message: str) -> None:
        """Print `warning: message` on stderr."""
        self.err.print(f"[yellow]warning:[/] {escape(self._redact(message))}", highlight=False, soft_wrap=True)

    def _redact(self, message: str) -> str:
        """The message with any token this session read hidden (a server should never echo one; still)."""
        for secret in (*self._secrets, self.token):
            if secret and secret.strip() and secret.strip() in message:
                message = message.replace(secret.strip(), HIDDEN)
        return message

    def _unauthenticated(self, message: str) -> str:
        """UNAUTHENTICATED in one line: what was refused, the server's reason, how to give credentials."""
        where = f"civicscore at {self.server}"
        if self.token is not None or self.token_file is not None:
            return f"{where} refused the credentials ({message}): give a valid token with {TOKEN_HELP}"
        if self.client_cert is not None:
            return (f"{where} refused the client certificate ({message}): an administrator must register its "
                    f"subject for an identity; or give a token with {TOKEN_HELP}")
        return f"{where} refused the call: no credentials were given ({message}); give a token with {TOKEN_HELP}"

    def _closed_connection(self) -> str:
        """The server accepted the connection and closed it: most often a TLS mismatch."""
        if not self.tls:
            return (f"civicscore at {self.server} closed the connection: if it serves TLS, give its CA certificate "
                    "with --ca-cert (or CIVICSCORE_CA_CERT)")
        if self.client_cert is not None:
            return (f"civicscore at {self.server} closed the connection during the TLS handshake: it did not accept "
                    "the client certificate (signed by a CA it does not trust, or expired?)")
        return (f"civicscore at {self.server} closed the connection during the TLS handshake: it may require a "
                "client certificate (--client-cert / --client-key)")

    def _handshake_failure(self, message: str) -> str:
        detail = _tls_detail(message)
        upper = message.upper()
        if "WRONG_VERSION_NUMBER" in upper:
            hint = "the server does not speak TLS on this port: leave out --ca-cert, or check the port"
        elif "HOSTNAME" in upper or "PEER NAME" in upper:
            hint = (f"the server's certificate is not issued for the host in {self.server}: connect by a name the "
                    "certificate carries, or give that name with --server-name")
        elif "EXPIRED" in upper:
            hint = "the server's certificate has expired: the server needs a new one"
        elif "CERTIFICATE_VERIFY_FAILED" in upper:
            hint = ("the server's certificate is not signed by the CA given with --ca-cert"
                    if self.ca_cert is not None else
                    "the server's certificate is not signed by a CA this machine trusts: give its CA with --ca-cert")
        else:
            hint = "check --ca-cert, --server-name and the server's certificate"
        return f"the TLS handshake with civicscore at {self.server} failed ({detail}): {hint}"


def session_of(ctx: typer.Context) -> Session:
    """The Session the global callback stored in the context (a default one when called directly)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Session) else Session()


def message_dict(message: Message) -> dict[str, Any]:
    """A message as a JSON-ready dict with the .proto field names."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def messages_json(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as JSON-ready dicts."""
    return [message_dict(m) for m in messages]


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=_PIPE_WIDTH if wide else None, highlight=False)


def _tls_detail(message: str) -> str:
    """The useful end of a gRPC handshake error: `CERTIFICATE_VERIFY_FAILED: certificate has expired`."""
    marker = "OPENSSL_internal:"
    if marker in message:
        detail = message.split(marker, 1)[1]
    elif "failed with error:" in message:
        detail = message.split("failed with error:", 1)[1]
    else:
        detail = message.rsplit(": ", 2)[-1]
    return detail.strip().removesuffix(": OK").strip().rstrip(".")


def _cli_words(message: str) -> str:
    """An SDK credentials message in the CLI's option names."""
    for sdk, cli in (("ca_cert=", "--ca-cert"), ("client_cert", "--client-cert"), ("client_key", "--client-key"),
                     ("server_name_override", "--server-name")):
        message = message.replace(sdk, cli)
    return message


def latest_evaluated(client: Client) -> str | None:
    """The newest quarter with at least one evaluation (the server lists periods newest first; half-years and
    years are left out)."""
    quarters = (periods_pb2.PERIOD_KIND_QUARTER, periods_pb2.PERIOD_KIND_UNSPECIFIED)
    return next((period.period_id for period in client.list_periods()
                 if period.units_evaluated and period.kind in quarters), None)
