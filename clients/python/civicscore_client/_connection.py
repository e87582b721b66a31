"""The channel and the stubs a client holds, shared by its read and write calls.

Transport: plaintext by default (the server allows it on loopback addresses only), TLS when a CA
certificate (`ca_cert`) or a client certificate (`client_cert` + `client_key`, mutual TLS) is given,
or any `grpc.ChannelCredentials` as `credentials`. A bearer `token` is sent with every call; it is
never sent in plaintext to an address outside this machine.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import grpc

from civicscore_api.v1 import (
    assignments_pb2_grpc,
    audit_pb2_grpc,
    evaluations_pb2_grpc,
    extensions_pb2_grpc,
    identities_pb2_grpc,
    maintenance_pb2_grpc,
    measurements_pb2_grpc,
    obstacles_pb2_grpc,
    officials_pb2_grpc,
    outcomes_pb2_grpc,
    periods_pb2_grpc,
    reports_pb2_grpc,
    reviews_pb2_grpc,
    rulesets_pb2_grpc,
    units_pb2_grpc,
)
from civicscore_client._calls import AUTHORIZATION, CHANNEL_OPTIONS, Caller, bearer_metadata

# PEM given as bytes or text, or the path of a PEM file (a str that does not start with "-----BEGIN").
PemSource = bytes | str | Path
_PEM_BEGIN = "-----BEGIN"


class CredentialsError(ValueError):
    """Credentials or TLS files given to a client cannot be used; the message never holds a token."""


class Connection:
    """One channel to one server with a stub per service; closed by `close()` or by leaving `with`."""

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        initial_backoff: float = 0.2,
        max_backoff: float = 5.0,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        token: str | None = None,
        ca_cert: PemSource | None = None,
        client_cert: PemSource | None = None,
        client_key: PemSource | None = None,
        server_name_override: str | None = None,
    ) -> None:
        """`ca_cert`, `client_cert` and `client_key` are PEM bytes or text, or a PEM file's path.

        `server_name_override` checks the server certificate against this name instead of the
        address's host (for development certificates). Raises CredentialsError when a file is
        missing or not PEM, when only one of `client_cert` / `client_key` is given, or when a token
        would travel in plaintext to an address outside this machine.
        """
        self.address = address
        self._owns_channel = True
        tls_files = ca_cert is not None or client_cert is not None or client_key is not None
        if credentials is not None and tls_files:
            raise CredentialsError("give either credentials= or ca_cert/client_cert/client_key, not both")
        if tls_files:
            credentials = channel_credentials(ca_cert, client_cert, client_key)
        self.secure = credentials is not None
        self.authenticated = token is not None
        call_metadata = list(metadata)
        if token is not None:
            if any(key.lower() == AUTHORIZATION for key, _ in call_metadata):
                raise CredentialsError("give the token either as token= or in metadata, not both")
            if not self.secure and not is_local_target(address):
                raise CredentialsError(
                    f"refusing to send the token in plaintext to {address}: give the server's CA certificate "
                    "(ca_cert=) to use TLS"
                )
            try:
                call_metadata.append(bearer_metadata(token))
            except ValueError as err:
                raise CredentialsError(str(err)) from None
        options: list[tuple[str, int | str]] = [*CHANNEL_OPTIONS]
        if server_name_override:
            if not self.secure:
                raise CredentialsError("server_name_override needs TLS: give ca_cert (or credentials=) too")
            options.append(("grpc.ssl_target_name_override", server_name_override))
        self._calls = Caller(
            timeout=timeout,
            max_attempts=max_attempts,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            metadata=call_metadata,
        )
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=options)
        self._units = units_pb2_grpc.UnitServiceStub(self._channel)
        self._assignments = assignments_pb2_grpc.AssignmentServiceStub(self._channel)
        self._outcomes = outcomes_pb2_grpc.OutcomeServiceStub(self._channel)
        self._measurements = measurements_pb2_grpc.MeasurementServiceStub(self._channel)
        self._evaluations = evaluations_pb2_grpc.EvaluationServiceStub(self._channel)
        self._rulesets = rulesets_pb2_grpc.RulesetServiceStub(self._channel)
        self._identities = identities_pb2_grpc.IdentityServiceStub(self._channel)
        self._audit = audit_pb2_grpc.AuditServiceStub(self._channel)
        self._maintenance = maintenance_pb2_grpc.MaintenanceServiceStub(self._channel)
        self._periods = periods_pb2_grpc.PeriodServiceStub(self._channel)
        self._reports = reports_pb2_grpc.ReportServiceStub(self._channel)
        self._reviews = reviews_pb2_grpc.ReviewServiceStub(self._channel)
        self._extensions = extensions_pb2_grpc.ExtensionServiceStub(self._channel)
        self._obstacles = obstacles_pb2_grpc.ObstacleServiceStub(self._channel)
        self._officials = officials_pb2_grpc.OfficialServiceStub(self._channel)

    @property
    def timeout(self) -> float:
        """Default deadline of each call attempt, in seconds."""
        return self._calls.timeout

    def __repr__(self) -> str:
        token = "<hidden>" if self.authenticated else None
        return f"{type(self).__name__}({self.address!r}, tls={self.secure}, token={token!r})"

    def with_token(self, token: str) -> Self:
        """A client for calls made as the identity of `token`, over this client's channel.

        For a program that acts for many people at once (the web console: one per signed-in person)
        without a connection per person. It shares the channel, deadline and retries; its `close()` is
        a no-op (close this client to close the channel). Raises CredentialsError when the token is
        malformed or would travel in plaintext to an address outside this machine.
        """
        if not self.secure and not is_local_target(self.address):
            raise CredentialsError(
                f"refusing to send the token in plaintext to {self.address}: give the server's CA certificate "
                "(ca_cert=) to use TLS"
            )
        try:
            authorization = bearer_metadata(token)
        except ValueError as err:
            raise CredentialsError(str(err)) from None
        other = copy.copy(self)
        other._owns_channel = False
        other.authenticated = True
        metadata = [(key, value) for key, value in self._calls.metadata if key.lower() != AUTHORIZATION]
        other._calls = copy.copy(self._calls)
        other._calls.metadata = (*metadata, authorization)
        return other

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled (a no-op for a client made by `with_token`)."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def channel_credentials(
    ca_cert: PemSource | None, client_cert: PemSource | None = None, client_key: PemSource | None = None
) -> grpc.ChannelCredentials:
    """TLS channel credentials: the CA to trust (the system's when None), and a client certificate for mTLS."""
    if (client_cert is None) != (client_key is None):
        given, missing = ("client_cert", "client_key") if client_key is None else ("client_key", "client_cert")
        raise CredentialsError(f"{given} is given without {missing}: a client certificate needs both")
    root = read_pem(ca_cert, "CA certificate", "CERTIFICATE") if ca_cert is not None else None
    chain = read_pem(client_cert, "client certificate", "CERTIFICATE") if client_cert is not None else None
    key = read_pem(client_key, "client key", "PRIVATE KEY") if client_key is not None else None
    return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)


MAX_PEM_BYTES = 1024 * 1024  # a certificate chain or key is a few KiB


def read_pem(source: PemSource, what: str, kind: str) -> bytes:
    """PEM bytes from bytes, text or a file path; `kind` is the expected block, e.g. CERTIFICATE."""
    if isinstance(source, bytes):
        data, origin = source, f"the {what} given"
    elif isinstance(source, str) and source.lstrip().startswith(_PEM_BEGIN):
        data, origin = source.encode(), f"the {what} given"
    else:
        path = Path(source).expanduser()
        origin = f"the {what} file {path}"
        try:
            with path.open("rb") as file:
                data = file.read(MAX_PEM_BYTES + 1)  # a PEM file is a few KiB: never read a huge one whole
        except FileNotFoundError:
            raise CredentialsError(f"{origin} does not exist") from None
        except IsADirectoryError:
            raise CredentialsError(f"{origin} is a directory, not a PEM file") from None
        except PermissionError:
            raise CredentialsError(f"{origin} is not readable (permission denied)") from None
        except OSError as err:
            raise CredentialsError(f"cannot read {origin}: {err.strerror or err}") from None
    if len(data) > MAX_PEM_BYTES:
        raise CredentialsError(f"{origin} is larger than {MAX_PEM_BYTES // 1024} KiB: it is not a PEM file")
    if f"{_PEM_BEGIN} ".encode() not in data or f"{kind}-----".encode() not in data:
        raise CredentialsError(f"{origin} is not PEM: expected a '-----BEGIN ... {kind}-----' block")
    if kind == "PRIVATE KEY" and b"ENCRYPTED" in data:
        raise CredentialsError(f"{origin} is encrypted with a passphrase: gRPC needs an unencrypted key")
    return data


def is_local_target(target: str) -> bool:
    """Whether a gRPC target names this machine only: loopback addresses, localhost, Unix sockets."""
    target = target.strip()
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    scheme, _, rest = target.partition(":")
    if scheme in ("ipv4", "ipv6"):
        return all(_is_local_host(_host_of(part)) for part in rest.split(","))
    if scheme == "dns":  # dns:host:port or dns://[authority]/host:port
        if rest.startswith("//"):
            rest = rest[2:].split("/", 1)[-1]
        return _is_local_host(_host_of(rest))
    return _is_local_host(_host_of(target))


def _host_of(target: str) -> str:
    if target.startswith("["):
        end = target.find("]")
        return target[1:end] if end > 0 else target
    if target.count(":") > 1:  # a bare IPv6 address
        return target
    return target.split(":", 1)[0]


def _is_local_host(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
