"""How every call is made: one channel, a default deadline, retries of UNAVAILABLE, errors as exceptions.

A bearer token travels in every call's metadata (`authorization: Bearer <token>`); it is never part
of a repr, a log line or an exception message. UNAUTHENTICATED and PERMISSION_DENIED are not
retried (they are not UNAVAILABLE), and neither is a failed TLS handshake: a wrong CA or server name
does not fix itself.

Retrying a write is safe only because the request is resent unchanged, with the idempotency key it
was first sent with: the server then replies as it did the first time instead of writing again.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from civicscore_client._errors import Cancelled, CivicscoreError, Unavailable, error_from_rpc

T = TypeVar("T")
M = TypeVar("M", bound=Message)
Request = TypeVar("Request")
Response = TypeVar("Response")

MIB = 1024 * 1024
# Large batches and long violation lists must fit: gRPC's defaults are 4 MiB per message and
# 8 KiB of metadata, and rich error details travel in the trailing metadata.
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", 64 * MIB),
    ("grpc.max_send_message_length", 64 * MIB),
    ("grpc.max_metadata_size", 4 * MIB),
]
MAX_KEY_LENGTH = 128
AUTHORIZATION = "authorization"
HIDDEN = "<hidden>"
# Printable ASCII without spaces: what a metadata value may carry, and what tokens are made of.
_TOKEN_CHARACTERS = re.compile(r"^[\x21-\x7e]+$")
# Half the server's default 32 MiB message limit: room for the envelope, and for a smaller limit.
BATCH_BYTES = 16 * MIB


def new_idempotency_key() -> str:
    """A fresh key for one logical write; reuse it for every retry of that write."""
    return str(uuid.uuid4())


def batch_keys(key: str | None, count: int) -> list[str]:
    """One idempotency key per batch: the caller's key as is for one batch, or derived from it per batch."""
    if key is None:
        return [new_idempotency_key() for _ in range(count)]
    if count == 1:
        return [key]
    stem = key if len(key) <= MAX_KEY_LENGTH - 12 else hashlib.sha256(key.encode()).hexdigest()[:64]
    return [f"{stem}.batch{number}" for number in range(1, count + 1)]


def split(items: Sequence[M], size: int, *, max_bytes: int = BATCH_BYTES) -> Iterator[tuple[int, Sequence[M]]]:
    """Consecutive slices of at most `size` messages and about `max_bytes`, each with its first offset.

    The byte bound keeps a batch of long notes under the server's message size limit.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    start = 0
    used = 0
    for index, item in enumerate(items):
        item_bytes = item.ByteSize() + 8  # field tag and length prefix, generously
        if index > start and (index - start == size or used + item_bytes > max_bytes):
            yield start, items[start:index]
            start, used = index, 0
        used += item_bytes
    if start < len(items):
        yield start, items[start:]


def bearer_metadata(token: str) -> tuple[str, str]:
    """The metadata entry that authenticates a call with `token` (surrounding whitespace ignored).

    Raises ValueError, without the token in the message, when the token cannot be sent as is.
    """
    value = token.strip()
    if not value:
        raise ValueError("the token is empty")
    if value.lower().startswith("bearer "):
        raise ValueError("give the token alone, without the 'Bearer ' prefix")
    if not _TOKEN_CHARACTERS.match(value):
        raise ValueError(
            f"the token ({len(value)} characters) holds spaces, control or non-ASCII characters: "
            "it is not a civicscore token (they look like cs_<hex>_<43 characters>)"
        )
    return (AUTHORIZATION, f"Bearer {value}")


def redacted(metadata: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Metadata fit to show: the authorization value hidden."""
    return [(key, HIDDEN if key.lower() == AUTHORIZATION else value) for key, value in metadata]


def tls_handshake_failed(error: CivicscoreError) -> bool:
    """Whether an UNAVAILABLE error is a failed TLS handshake (wrong CA, server name, or a plaintext server).

    A server that refuses the client's certificate usually shows as a closed socket instead: TLS 1.3
    lets the client finish its side of the handshake before the server checks the certificate.
    """
    if not isinstance(error, Unavailable) or error.from_server:
        return False
    message = error.message.lower()
    return "handshake failed" in message or "verification check failed" in message


def cancelled_unasked(err: grpc.RpcError, error: CivicscoreError) -> bool:
    """Whether a call was CANCELLED by the other end with no word of why: not by this client (gRPC says
    "Locally cancelled by application!" then) and not by civicscore's code (its errors carry a status).
    gRPC's server answers so for a call that reached it as it began its shutdown, before any code of ours
    ran (a proxy passes the answer on); a call cut by a shutdown's end is cancelled likewise. Either way
    the call may be retried like UNAVAILABLE: reads change nothing and every write carries an
    idempotency key, so a write that was stored is answered as before, not stored twice."""
    if not isinstance(error, Cancelled) or error.from_server:
        return False
    details = err.details() if isinstance(err, grpc.Call) else None
    return not details or details == "CANCELLED"


class Caller:
    """Makes calls on one channel with a default deadline, retrying UNAVAILABLE with exponential backoff."""

    def __init__(
        self,
        *,
        timeout: float,
        max_attempts: int,
        initial_backoff: float,
        max_backoff: float,
        metadata: Sequence[tuple[str, str]] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.metadata = tuple(metadata)
        self._sleep = sleep

    def __repr__(self) -> str:
        return (f"Caller(timeout={self.timeout}, max_attempts={self.max_attempts}, "
                f"metadata={redacted(self.metadata)})")

    def unary(
        self,
        method: grpc.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        *,
        timeout: float | None = None,
    ) -> Response:
        """Call a unary method; the same request object (and idempotency key) is resent on each retry."""
        deadline = timeout or self.timeout
        return self.retrying(lambda: method(request, timeout=deadline, metadata=self.metadata))

    def stream(
        self,
        method: grpc.StreamUnaryMultiCallable[Request, Response],
        requests: Callable[[], Iterator[Request]],
        *,
        timeout: float | None = None,
        retry: bool = True,
    ) -> Response:
        """Call a client-streaming method; `requests` makes a fresh iterator for each attempt."""
        deadline = timeout or self.timeout
        return self.retrying(
            lambda: method(requests(), timeout=deadline, metadata=self.metadata),
            attempts=self.max_attempts if retry else 1,
        )

    def retrying(self, attempt: Callable[[], T], *, attempts: int | None = None) -> T:
        """Run `attempt` until it succeeds or fails with anything but UNAVAILABLE, or attempts run out.

        A failed TLS handshake is UNAVAILABLE too, but is not retried: it fails the same way again. A call
        the server cancelled unasked is retried too (`cancelled_unasked`).
        """
        limit = attempts or self.max_attempts
        delay = self.initial_backoff
        for number in range(1, limit + 1):
            try:
                return attempt()
            except grpc.RpcError as err:
                error = error_from_rpc(err)
                retryable = (isinstance(error, Unavailable) and not tls_handshake_failed(error)) or \
                    cancelled_unasked(err, error)
                if not retryable or number == limit:
                    raise error from err
            # Full jitter keeps many clients that lost the same server from retrying in step.
            self._sleep(random.uniform(0, delay))
            delay = min(delay * 2, self.max_backoff)
        raise CivicscoreError("unreachable: the retry loop always returns or raises")  # pragma: no cover

    def pages(self, fetch: Callable[[str], tuple[Sequence[T], str]]) -> Iterator[T]:
        """Every item of a List call; `fetch` maps a page token to that page's items and the next token."""
        token = ""
        while True:
            items, token = fetch(token)
            yield from items
            if not token:
                return
