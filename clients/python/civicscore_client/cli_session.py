"""What every command shares: the server address, output mode, consoles, and one-line error reporting."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.markup import escape

from civicscore_client._client import Client
from civicscore_client._errors import (
    CivicscoreError,
    DeadlineExceeded,
    InvalidArgument,
    Unavailable,
)
from civicscore_client.importing import ImportFileError

DEFAULT_SERVER = "127.0.0.1:50051"
# Without a terminal (pipes, tests) rich would wrap tables at 80 columns and split Vietnamese names.
_PIPE_WIDTH = 200


@dataclass
class Session:
    """Options given before the command, plus the consoles the command writes to."""

    server: str = DEFAULT_SERVER
    json_output: bool = False
    timeout: float = 30.0
    out: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))

    def connect(self, *, timeout: float | None = None) -> Client:
        """A client for the chosen server (one channel; close it with `with`)."""
        return Client(self.server, timeout=timeout or self.timeout)

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
            self.fail(f"cannot reach civicscore at {self.server}: is the server running? start it with `make run`")
        except DeadlineExceeded:
            self.fail(f"civicscore at {self.server} did not answer in time; try again or raise --timeout")
        except InvalidArgument as err:
            lines = [f"  {v.field}: {v.description}" for v in err.violations if v.description not in err.message]
            self.fail("\n".join([err.message, *lines]))
        except CivicscoreError as err:
            self.fail(err.message)
        except KeyboardInterrupt:
            self.fail("interrupted", code=130)

    def fail(self, message: str, *, code: int = 1) -> NoReturn:
        """Print `error: message` on stderr and exit with `code`."""
        self.err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code)


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
