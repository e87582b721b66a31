"""Transport security and credentials: the server's TLS checks, peer certificate names, the development CA,
the SDK's token and TLS options, the CLI's credential options, and TLS / mutual TLS end to end.

Certificates are made per test run by `civicscore_client.devca` (nothing is checked in). Most tests
use a small in-process gRPC server that records what it receives; the last ones start the real server.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner, Result

from civicscore.tls import TlsConfigError, is_loopback, peer_certificate_names, server_credentials
from civicscore_api.v1 import identities_pb2, identities_pb2_grpc
from civicscore_client import CivicscoreError, Client, PermissionDenied, Unauthenticated, Unavailable
from civicscore_client._calls import Caller, bearer_metadata, tls_handshake_failed
from civicscore_client._connection import CredentialsError, is_local_target
from civicscore_client.cli import app
from civicscore_client.cli_session import Session
from civicscore_client.devca import (
    Issued,
    client_uri,
    make_ca,
    make_cert,
    make_client_cert,
    make_server_cert,
    write_dev_ca,
)
from tests.serverproc import BearerToken, ServerProcess

TOKEN = "cs_0123abcd_" + "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tX"[:43]
NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def write_pair(folder: Path, stem: str, issued: Issued) -> tuple[Path, Path]:
    """`stem.pem` and `stem.key` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A CA with a server and client certificates, and the certificates it must refuse."""
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca()
    other_ca = make_ca("another CA")
    p = SimpleNamespace(folder=folder, ca=ca, other_ca=other_ca)
    p.ca_pem = folder / "ca.pem"
    p.ca_pem.write_bytes(ca.cert_pem)
    p.other_ca_pem = folder / "other-ca.pem"
    p.other_ca_pem.write_bytes(other_ca.cert_pem)
    p.server = make_server_cert(ca, "localhost")
    p.server_cert, p.server_key = write_pair(folder, "server", p.server)
    p.client = make_client_cert(ca, "snv-task-tracker")
    p.client_cert, p.client_key = write_pair(folder, "client", p.client)
    p.unregistered_cert, p.unregistered_key = write_pair(folder, "unregistered", make_client_cert(ca, "nobody"))
    p.foreign_cert, p.foreign_key = write_pair(folder, "foreign", make_client_cert(other_ca, "snv-task-tracker"))
    expired = make_cert(ca, "snv-task-tracker", usage="client", uris=[client_uri("snv-task-tracker")],
                        not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    p.expired_cert, p.expired_key = write_pair(folder, "expired", expired)
    return p


# ---- in-process servers --------------------------------------------------------------------------


class Recorder(grpc.GenericRpcHandler):
    """Answers every unary call with an empty message (or aborts with `code`) and records what it saw."""

    def __init__(self, code: grpc.StatusCode | None = None, message: str = "") -> None:
        self.code = code
        self.message = message
        self.calls: list[dict[str, Any]] = []

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.calls.append({
                "method": method,
                "metadata": list(context.invocation_metadata()),
                # types-grpcio says Mapping[str, bytes]; grpc gives a list of values per key
                "names": peer_certificate_names(cast(Mapping[str, Sequence[bytes]], context.auth_context())),
            })
            if self.code is not None:
                context.abort(self.code, self.message)
            return b""

        return grpc.unary_unary_rpc_method_handler(handle)

    def authorization(self) -> list[str]:
        return [str(v) for call in self.calls for k, v in call["metadata"] if k == "authorization"]


@contextmanager
def fake_server(recorder: Recorder, credentials: grpc.ServerCredentials | None = None) -> Iterator[int]:
    """An in-process server on a free loopback port (TLS with `credentials`); yields the port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([recorder])
    port = (server.add_insecure_port("127.0.0.1:0") if credentials is None
            else server.add_secure_port("127.0.0.1:0", credentials))
    server.start()
    try:
        yield port
    finally:
        server.stop(None)


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250", "NO_COLOR": "1", **(env or {})})


def output_of(result: Result) -> str:
    return result.stdout + result.stderr


# ---- is_loopback -----------------------------------------------------------------------------------


@pytest.mark.parametrize("listen", [
    "127.0.0.1:50051", "127.0.0.1:0", "127.1.2.3:8080", "localhost:0", "LOCALHOST:50051", "[::1]:50051",
    "[::ffff:127.0.0.1]:50051", "unix:/tmp/civicscore.sock",
])
def test_loopback_addresses(listen: str) -> None:
    assert is_loopback(listen)


@pytest.mark.parametrize("listen", [
    "0.0.0.0:50051", "[::]:50051", ":50051", "10.1.2.3:50051", "192.168.0.10:443", "civicscore.example:50051",
    "localhost.example:50051", "[2001:db8::1]:50051", "[::ffff:10.0.0.1]:1",
])
def test_other_addresses_are_not_loopback(listen: str) -> None:
    assert not is_loopback(listen)


# ---- peer_certificate_names ----------------------------------------------------------------------------


def test_peer_names_are_the_common_name_then_the_alternative_names() -> None:
    context: dict[str, list[bytes]] = {
        "transport_security_type": [b"ssl"],
        "x509_common_name": [b"snv-task-tracker"],
        "x509_subject_alternative_name": [b"urn:civicscore:snv-task-tracker", b"snv.hanoi.gov.vn"],
        "x509_pem_cert": [b"-----BEGIN CERTIFICATE-----..."],
    }
    assert peer_certificate_names(context) == ["CN=snv-task-tracker", "urn:civicscore:snv-task-tracker",
                                               "snv.hanoi.gov.vn"]


def test_peer_names_decode_utf8_and_drop_duplicates() -> None:
    context: dict[str, list[bytes]] = {"transport_security_type": [b"ssl"], "x509_common_name": ["Sở Nội vụ".encode()],
               "x509_subject_alternative_name": [b"a.example", b"a.example"]}
    assert peer_certificate_names(context) == ["CN=Sở Nội vụ", "a.example"]


@pytest.mark.parametrize("context", [
    {},
    {"transport_security_type": [b"ssl"], "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"]},
    {"transport_security_type": [b"insecure"], "x509_common_name": [b"spoofed"]},
])
def test_no_peer_names_without_a_certificate(context: dict[str, list[bytes]]) -> None:
    assert peer_certificate_names(context) == []


# ---- server_credentials -----------------------------------------------------------------------------


def test_server_credentials_accept_a_matching_pair_and_a_client_ca(pki: SimpleNamespace) -> None:
    assert isinstance(server_credentials(pki.server_cert, pki.server_key), grpc.ServerCredentials)
    assert isinstance(server_credentials(pki.server_cert, pki.server_key, pki.ca_pem), grpc.ServerCredentials)


def refusal(cert: Path, key: Path, ca: Path | None = None) -> str:
    with pytest.raises(TlsConfigError) as caught:
        server_credentials(cert, key, ca)
    return str(caught.value)


def test_a_missing_file_is_named(pki: SimpleNamespace, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert refusal(missing, pki.server_key) == f"TLS certificate (--tls-cert) file {missing} does not exist"
    assert refusal(pki.server_cert, missing) == f"TLS private key (--tls-key) file {missing} does not exist"
    message = refusal(pki.server_cert, pki.server_key, missing)
    assert message == f"client CA certificate (--client-ca) file {missing} does not exist"


def test_a_directory_or_an_empty_file_is_refused(pki: SimpleNamespace, tmp_path: Path) -> None:
    assert "is a directory" in refusal(tmp_path, pki.server_key)
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    assert refusal(empty, pki.server_key).endswith(f"{empty} is empty")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_key_is_refused(pki: SimpleNamespace, tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_bytes(pki.server.key_pem)
    key.chmod(0)
    assert "not readable by this process" in refusal(pki.server_cert, key)


def test_files_that_are_not_pem_are_refused(pki: SimpleNamespace, tmp_path: Path) -> None:
    der = tmp_path / "server.der"
    der.write_bytes(pki.server.cert.public_bytes(serialization.Encoding.DER))
    message = refusal(der, pki.server_key)
    assert str(der) in message and "is not PEM" in message and "openssl x509 -inform der" in message
    text = tmp_path / "notes.txt"
    text.write_text("not a key\n")
    assert "is not PEM" in refusal(pki.server_cert, text)
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert "not a valid certificate" in refusal(garbled, pki.server_key)


def test_swapped_certificate_and_key_are_pointed_out(pki: SimpleNamespace) -> None:
    assert "swapped" in refusal(pki.server_key, pki.server_cert)


def test_a_key_that_does_not_match_the_certificate_is_refused(pki: SimpleNamespace) -> None:
    message = refusal(pki.server_cert, pki.client_key)
    assert message.startswith(f"the TLS private key {pki.client_key} does not match the certificate {pki.server_cert}")


def test_an_encrypted_key_is_refused(pki: SimpleNamespace, tmp_path: Path) -> None:
    key = tmp_path / "encrypted.key"
    key.write_bytes(pki.server.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    assert "encrypted with a passphrase" in refusal(pki.server_cert, key)


def test_an_expired_or_future_server_certificate_is_refused(pki: SimpleNamespace, tmp_path: Path) -> None:
    expired = make_cert(pki.ca, "localhost", usage="server", dns_names=["localhost"],
                        not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    cert, key = write_pair(tmp_path, "expired", expired)
    message = refusal(cert, key)
    assert f"the server certificate in {cert} (CN=localhost) expired on" in message
    future = make_cert(pki.ca, "localhost", usage="server", not_before=NOW + DAY, not_after=NOW + 10 * DAY)
    cert, key = write_pair(tmp_path, "future", future)
    assert "is not valid before" in refusal(cert, key)


def test_a_client_ca_that_is_not_a_ca_is_refused(pki: SimpleNamespace) -> None:
    message = refusal(pki.server_cert, pki.server_key, pki.client_cert)
    assert "not a CA certificate" in message and str(pki.client_cert) in message


# ---- the development CA ------------------------------------------------------------------------------


def test_dev_certificates_chain_to_their_ca_with_the_right_names(pki: SimpleNamespace) -> None:
    server, client = pki.server.cert, pki.client.cert
    server.verify_directly_issued_by(pki.ca.cert)
    client.verify_directly_issued_by(pki.ca.cert)
    with pytest.raises(ValueError):
        client.verify_directly_issued_by(pki.other_ca.cert)  # names differ
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert pki.client.common_name == "snv-task-tracker"
    san = client.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:civicscore:snv-task-tracker"]
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    ca_constraints = pki.ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert ca_constraints.ca and ca_constraints.path_length == 0


def test_dev_certificates_last_the_days_asked(pki: SimpleNamespace) -> None:
    cert = make_server_cert(pki.ca, "civicscore.test", days=30).cert
    assert cert.not_valid_before_utc <= dt.datetime.now(dt.UTC)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=30) <= lifetime <= dt.timedelta(days=30, minutes=6)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["civicscore.test", "localhost"]
    by_ip = make_server_cert(pki.ca, "10.0.0.5").cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in by_ip.value.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "127.0.0.1", "::1"]


def test_write_dev_ca_keeps_keys_private_and_reuses_its_ca(tmp_path: Path) -> None:
    out = tmp_path / "dev-ca"
    files = write_dev_ca(out, clients=["snv-task-tracker", "ubnd-ba-dinh"], days=10)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ca.key", "ca.pem", "client-snv-task-tracker.key", "client-snv-task-tracker.pem",
                     "client-ubnd-ba-dinh.key", "client-ubnd-ba-dinh.pem", "server.key", "server.pem"]
    for path in out.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.suffix == ".key" else 0o644), path
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(files.server_cert.read_bytes()).verify_directly_issued_by(ca)

    again = write_dev_ca(out, clients=["ubnd-hoan-kiem"])
    assert again.reused_ca and files.ca_cert.read_bytes() == ca.public_bytes(serialization.Encoding.PEM)
    added = x509.load_pem_x509_certificate((out / "client-ubnd-hoan-kiem.pem").read_bytes())
    added.verify_directly_issued_by(ca)

    (out / "ca.key").unlink()
    with pytest.raises(FileExistsError, match=r"ca.pem exists but .*ca.key does not"):
        write_dev_ca(out)


def test_client_names_must_be_identity_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        write_dev_ca(tmp_path, clients=["../escape"])
    assert not list(tmp_path.iterdir())


def test_dev_ca_command_writes_the_files_and_says_how_to_use_them(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = cli("admin", "dev-ca", "--out", str(out), "--client", "snv-task-tracker", "--days", "30")
    assert result.exit_code == 0, output_of(result)
    assert (out / "client-snv-task-tracker.key").stat().st_mode & 0o777 == 0o600
    for expected in (f"--tls-cert {out / 'server.pem'}", f"--tls-key {out / 'server.key'}",
                     f"--client-ca {out / 'ca.pem'}", "--mtls-listen", f"--ca-cert {out / 'ca.pem'}",
                     "--token-file", f"--client-cert {out / 'client-snv-task-tracker.pem'}",
                     "CN=snv-task-tracker, SAN urn:civicscore:snv-task-tracker"):
        assert expected in result.stdout, expected
    assert "for development and tests only" in result.stderr

    as_json = cli("--json", "admin", "dev-ca", "--out", str(out))
    assert as_json.exit_code == 0 and '"reused_ca": true' in as_json.stdout

    bad = cli("admin", "dev-ca", "--out", str(out), "--client", "Not Valid")
    assert bad.exit_code == 2 and "client name 'Not Valid' is not valid" in bad.stderr


# ---- the SDK: tokens, TLS options, errors ---------------------------------------------------------------


def test_the_token_is_sent_on_every_call_and_never_shown() -> None:
    recorder = Recorder()
    with fake_server(recorder) as port, Client(f"127.0.0.1:{port}", token=f"  {TOKEN}\n") as client:
        client.whoami()
        list(client.list_periods())
        assert TOKEN not in repr(client) and "<hidden>" in repr(client)
        assert TOKEN not in repr(client._calls)
    assert recorder.authorization() == [f"Bearer {TOKEN}"] * 2


def test_no_authorization_metadata_without_a_token() -> None:
    recorder = Recorder()
    with fake_server(recorder) as port, Client(f"127.0.0.1:{port}") as client:
        client.whoami()
    assert recorder.authorization() == []


@pytest.mark.parametrize(("code", "error"), [
    (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
    (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
])
def test_refusals_are_typed_and_not_retried(code: grpc.StatusCode, error: type[CivicscoreError]) -> None:
    recorder = Recorder(code, "refused: needs permission identities.manage")
    with fake_server(recorder) as port, Client(f"127.0.0.1:{port}", token=TOKEN, max_attempts=5) as client, \
            pytest.raises(error) as caught:
        client.whoami()
    assert len(recorder.calls) == 1
    assert caught.value.message == "refused: needs permission identities.manage"
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


@pytest.mark.parametrize("bad", ["", "   ", f"Bearer {TOKEN}", "cs_0123abcd_two words", "cs_0123abcd_tiếng"])
def test_a_token_that_cannot_be_sent_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        Client("127.0.0.1:1", token=bad)
    assert (bad.strip() or "@@") not in str(caught.value)


def test_a_token_is_never_sent_in_plaintext_to_another_machine() -> None:
    with pytest.raises(CredentialsError, match=r"refusing to send the token in plaintext to civicscore\.invalid"):
        Client("civicscore.invalid:50051", token=TOKEN)
    with Client("civicscore.invalid:50051") as anonymous, \
            pytest.raises(CredentialsError, match=r"refusing to send the token in plaintext to civicscore\.invalid"):
        anonymous.with_token(TOKEN)


def test_with_token_acts_as_another_identity_over_the_same_channel() -> None:
    with Client("127.0.0.1:1", token=TOKEN) as base:
        other = base.with_token("cs_0123456789ab_" + "x" * 43)
        assert other._channel is base._channel
        assert [value for key, value in other._calls.metadata if key == "authorization"] == \
            ["Bearer cs_0123456789ab_" + "x" * 43]
        assert [value for key, value in base._calls.metadata if key == "authorization"] == [f"Bearer {TOKEN}"]
        assert "cs_0123456789ab" not in repr(other)
        other.close()  # not its channel to close: the base's calls still go out (and fail: nothing listens)
        with pytest.raises(Unavailable):
            base.whoami(timeout=0.5)
    with pytest.raises(CredentialsError, match="holds spaces"):
        Client("127.0.0.1:1").with_token("not a token")


@pytest.mark.parametrize(("target", "local"), [
    ("127.0.0.1:50051", True), ("localhost:1", True), ("[::1]:50051", True), ("dns:///localhost:50051", True),
    ("ipv4:127.0.0.1:1,127.0.0.2:2", True), ("unix:/run/civicscore.sock", True),
    ("civicscore.invalid:50051", False), ("dns:///civicscore.invalid:443", False), ("0.0.0.0:50051", False),
    ("ipv4:127.0.0.1:1,192.0.2.1:2", False),
])
def test_local_targets(target: str, local: bool) -> None:
    assert is_local_target(target) is local


def test_tls_options_are_checked_before_connecting(pki: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="client_cert is given without client_key"):
        Client("127.0.0.1:1", ca_cert=pki.ca_pem, client_cert=pki.client_cert)
    with pytest.raises(CredentialsError, match=f"the CA certificate file {tmp_path / 'no.pem'} does not exist"):
        Client("127.0.0.1:1", ca_cert=tmp_path / "no.pem")
    with pytest.raises(CredentialsError, match="is not PEM"):
        Client("127.0.0.1:1", ca_cert=pki.client_key)
    with pytest.raises(CredentialsError, match="server_name_override needs TLS"):
        Client("127.0.0.1:1", server_name_override="localhost")
    with pytest.raises(CredentialsError, match="not both"):
        Client("127.0.0.1:1", credentials=grpc.ssl_channel_credentials(), ca_cert=pki.ca_pem)


def test_token_over_tls_with_pem_given_as_bytes_text_or_path(pki: SimpleNamespace) -> None:
    recorder = Recorder()
    with fake_server(recorder, server_credentials(pki.server_cert, pki.server_key)) as port:
        for ca in (pki.ca.cert_pem, pki.ca.cert_pem.decode(), pki.ca_pem, str(pki.ca_pem)):
            with Client(f"localhost:{port}", token=TOKEN, ca_cert=ca) as client:
                client.whoami()
                assert "tls=True" in repr(client)
    assert recorder.authorization() == [f"Bearer {TOKEN}"] * 4


def test_server_name_override_checks_the_certificate_against_that_name(pki: SimpleNamespace, tmp_path: Path) -> None:
    named = make_cert(pki.ca, "civicscore.test", usage="server", dns_names=["civicscore.test"])
    cert, key = write_pair(tmp_path, "named", named)
    recorder = Recorder()
    with fake_server(recorder, server_credentials(cert, key)) as port:
        with Client(f"127.0.0.1:{port}", ca_cert=pki.ca_pem, max_attempts=3) as client, \
                pytest.raises(Unavailable) as caught:
            client.whoami()
        assert tls_handshake_failed(caught.value)
        with Client(f"127.0.0.1:{port}", ca_cert=pki.ca_pem, server_name_override="civicscore.test") as client:
            client.whoami()
    assert len(recorder.calls) == 1


def test_mutual_tls_presents_the_client_certificate(pki: SimpleNamespace) -> None:
    recorder = Recorder()
    credentials = server_credentials(pki.server_cert, pki.server_key, pki.ca_pem)
    with fake_server(recorder, credentials) as port, \
            Client(f"localhost:{port}", ca_cert=pki.ca_pem, client_cert=pki.client_cert,
                   client_key=pki.client_key) as client:
        client.whoami()
    assert recorder.calls[0]["names"] == ["CN=snv-task-tracker", "urn:civicscore:snv-task-tracker"]


@pytest.mark.parametrize("which", ["foreign", "expired", "none"])
def test_mutual_tls_refuses_certificates_the_ca_did_not_sign_expired_or_missing(
    pki: SimpleNamespace, which: str
) -> None:
    recorder = Recorder()
    pair = {"foreign": (pki.foreign_cert, pki.foreign_key), "expired": (pki.expired_cert, pki.expired_key),
            "none": (None, None)}[which]
    credentials = server_credentials(pki.server_cert, pki.server_key, pki.ca_pem)
    with fake_server(recorder, credentials) as port, \
            Client(f"localhost:{port}", ca_cert=pki.ca_pem, client_cert=pair[0], client_key=pair[1],
                   max_attempts=1) as client, pytest.raises(Unavailable):
        client.whoami()
    assert recorder.calls == []


def test_a_wrong_ca_fails_the_handshake_at_once(pki: SimpleNamespace) -> None:
    sleeps: list[float] = []
    recorder = Recorder()
    with fake_server(recorder, server_credentials(pki.server_cert, pki.server_key)) as port, \
            Client(f"localhost:{port}", ca_cert=pki.other_ca_pem) as client:
        client._calls = Caller(timeout=5, max_attempts=5, initial_backoff=0.01, max_backoff=0.01,
                               sleep=sleeps.append)
        with pytest.raises(Unavailable) as caught:
            client.whoami()
    assert tls_handshake_failed(caught.value) and "CERTIFICATE_VERIFY_FAILED" in caught.value.message
    assert sleeps == []  # not retried


def test_bearer_metadata_and_caller_repr_hide_nothing_but_the_token() -> None:
    assert bearer_metadata(f" {TOKEN} ") == ("authorization", f"Bearer {TOKEN}")
    caller = Caller(timeout=1, max_attempts=1, initial_backoff=0, max_backoff=0,
                    metadata=[("x-request", "1"), bearer_metadata(TOKEN)])
    assert "('x-request', '1')" in repr(caller) and TOKEN not in repr(caller)


# ---- the CLI's credential options ----------------------------------------------------------------------


def test_cli_sends_the_token_from_a_file_and_never_prints_it(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"\n  {TOKEN}  \n")
    token_file.chmod(0o600)
    recorder = Recorder(grpc.StatusCode.UNAUTHENTICATED, f"the bearer token {TOKEN} is not valid here")
    with fake_server(recorder) as port:
        result = cli("--server", f"127.0.0.1:{port}", "--token-file", str(token_file), "periods")
    assert recorder.authorization() == [f"Bearer {TOKEN}"]
    assert result.exit_code == 1
    assert TOKEN not in output_of(result)
    assert "refused the credentials" in result.stderr and "--token-file FILE or CIVICSCORE_TOKEN_FILE" in result.stderr
    assert "[token hidden] is not valid here" in result.stderr


def test_cli_token_from_the_environment(tmp_path: Path) -> None:
    recorder = Recorder()
    with fake_server(recorder) as port:
        result = cli("--server", f"127.0.0.1:{port}", "periods", env={"CIVICSCORE_TOKEN": TOKEN})
        assert result.exit_code == 0, output_of(result)
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        token_file.chmod(0o600)
        result = cli("--server", f"127.0.0.1:{port}", "periods", env={"CIVICSCORE_TOKEN_FILE": str(token_file)})
        assert result.exit_code == 0, output_of(result)
    assert recorder.authorization() == [f"Bearer {TOKEN}"] * 2


def test_cli_without_credentials_says_how_to_give_them() -> None:
    recorder = Recorder(grpc.StatusCode.UNAUTHENTICATED, "no credentials")
    with fake_server(recorder) as port:
        result = cli("--server", f"127.0.0.1:{port}", "periods")
    assert result.exit_code == 1
    assert "refused the call: no credentials were given (no credentials)" in result.stderr
    assert "CIVICSCORE_TOKEN_FILE" in result.stderr


def test_cli_permission_denied_shows_the_servers_message() -> None:
    recorder = Recorder(grpc.StatusCode.PERMISSION_DENIED,
                        "reader-bot may not call ActivateRuleset: it needs the policy role")
    with fake_server(recorder) as port:
        result = cli("--server", f"127.0.0.1:{port}", "--token", TOKEN, "periods")
    assert result.exit_code == 1
    assert "permission denied: reader-bot may not call ActivateRuleset: it needs the policy role" in result.stderr
    assert TOKEN not in output_of(result)


def test_cli_a_missing_token_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    result = cli("--server", "127.0.0.1:1", "--token-file", str(missing), "periods")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: the token file {missing} (--token-file / CIVICSCORE_TOKEN_FILE) " \
                                    "does not exist"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = cli("--server", "127.0.0.1:1", "--token-file", str(empty), "periods")
    assert result.exit_code == 2 and f"the token file {empty} is empty" in result.stderr


def test_cli_a_token_file_others_can_read_gets_a_warning(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    recorder = Recorder()
    with fake_server(recorder) as port:
        result = cli("--server", f"127.0.0.1:{port}", "--token-file", str(token_file), "periods")
    assert result.exit_code == 0
    assert f"chmod 600 {token_file}" in result.stderr and TOKEN not in output_of(result)


def test_cli_local_commands_do_not_read_the_token_file(tmp_path: Path) -> None:
    result = cli("--token-file", str(tmp_path / "missing"), "admin", "dev-ca", "--out", str(tmp_path / "ca"))
    assert result.exit_code == 0, output_of(result)


def test_cli_token_sources(tmp_path: Path) -> None:
    both = cli("--token", TOKEN, "--token-file", str(tmp_path / "t"), "periods")
    assert both.exit_code == 2 and "both given on the command line" in both.stderr and TOKEN not in output_of(both)
    recorder = Recorder()
    with fake_server(recorder) as port:  # the command line wins over the environment
        result = cli("--server", f"127.0.0.1:{port}", "--token", TOKEN, "periods",
                     env={"CIVICSCORE_TOKEN_FILE": str(tmp_path / "missing")})
    assert result.exit_code == 0, output_of(result)
    assert recorder.authorization() == [f"Bearer {TOKEN}"]


def test_cli_refuses_a_plaintext_token_to_another_machine() -> None:
    result = cli("--server", "civicscore.invalid:50051", "--token", TOKEN, "periods")
    assert result.exit_code == 2
    assert "refusing to send the token in plaintext to civicscore.invalid:50051" in result.stderr
    assert "--ca-cert" in result.stderr and TOKEN not in output_of(result)


def test_cli_checks_the_tls_options(pki: SimpleNamespace, tmp_path: Path) -> None:
    half = cli("--server", "localhost:1", "--client-cert", str(pki.client_cert), "periods")
    assert half.exit_code == 2 and "--client-cert is given without --client-key" in half.stderr
    no_tls = cli("--server", "localhost:1", "--server-name", "civicscore.test", "periods")
    assert no_tls.exit_code == 2 and "--server-name needs TLS" in no_tls.stderr
    missing = cli("--server", "localhost:1", "--ca-cert", str(tmp_path / "ca.pem"), "periods")
    assert missing.exit_code == 2 and f"the CA certificate file {tmp_path / 'ca.pem'} does not exist" in missing.stderr


def test_cli_explains_a_failed_handshake(pki: SimpleNamespace) -> None:
    with fake_server(Recorder(), server_credentials(pki.server_cert, pki.server_key)) as port:
        wrong_ca = cli("--server", f"localhost:{port}", "--ca-cert", str(pki.other_ca_pem), "periods")
    assert wrong_ca.exit_code == 1
    assert f"the TLS handshake with civicscore at localhost:{port} failed" in wrong_ca.stderr
    assert "not signed by the CA given with --ca-cert" in wrong_ca.stderr
    with fake_server(Recorder()) as port:
        plaintext = cli("--server", f"localhost:{port}", "--ca-cert", str(pki.ca_pem), "periods")
    assert plaintext.exit_code == 1 and "does not speak TLS on this port" in plaintext.stderr
    with fake_server(Recorder(), server_credentials(pki.server_cert, pki.server_key)) as port:
        no_ca = cli("--server", f"127.0.0.1:{port}", "periods")
    assert no_ca.exit_code == 1 and "if it serves TLS, give its CA certificate with --ca-cert" in no_ca.stderr


def test_cli_over_tls_and_mutual_tls(pki: SimpleNamespace) -> None:
    recorder = Recorder()
    credentials = server_credentials(pki.server_cert, pki.server_key, pki.ca_pem)
    with fake_server(recorder, credentials) as port:
        result = cli("--server", f"127.0.0.1:{port}", "--ca-cert", str(pki.ca_pem), "--server-name", "localhost",
                     "--client-cert", str(pki.client_cert), "--client-key", str(pki.client_key), "periods",
                     env={"CIVICSCORE_TOKEN": ""})
        assert result.exit_code == 0, output_of(result)
        # 127.0.0.1, not localhost: after retries the error may be ::1's refused connection instead
        refused = cli("--server", f"127.0.0.1:{port}", "--ca-cert", str(pki.ca_pem),
                      "--client-cert", str(pki.foreign_cert), "--client-key", str(pki.foreign_key), "periods")
    assert recorder.calls[0]["names"] == ["CN=snv-task-tracker", "urn:civicscore:snv-task-tracker"]
    assert refused.exit_code == 1 and "did not accept the client certificate" in refused.stderr


def test_the_token_stays_out_of_help_and_the_session_repr() -> None:
    result = cli("--help", env={"CIVICSCORE_TOKEN": TOKEN})
    assert result.exit_code == 0 and "--token-file" in result.stdout and TOKEN not in output_of(result)
    assert TOKEN not in repr(Session(token=TOKEN))


# ---- end to end: the real server over TLS and mutual TLS ------------------------------------------------


class TlsServerProcess(ServerProcess):
    """The real server with TLS on its main port and mutual TLS on a second one."""

    def __init__(self, workdir: Path, pki: SimpleNamespace) -> None:
        self.pki = pki
        self.mtls_port_file = workdir / "mtls-port"
        super().__init__(workdir, extra_args=(
            "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--client-ca", str(pki.ca_pem),
            "--mtls-listen", "127.0.0.1:0", "--mtls-port-file", str(self.mtls_port_file)))

    @property
    def mtls_address(self) -> str:
        return f"127.0.0.1:{self.mtls_port_file.read_text().strip()}"

    def channel(self) -> grpc.Channel:
        """A TLS channel carrying the administrator's token (used by `start` for the health check)."""
        if self._channel is None:
            raw = grpc.secure_channel(self.address, grpc.ssl_channel_credentials(self.pki.ca.cert_pem))
            self._channel = grpc.intercept_channel(raw, BearerToken(self.token)) if self.token else raw
        return self._channel


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: SimpleNamespace) -> Iterator[TlsServerProcess]:
    proc = TlsServerProcess(tmp_path_factory.mktemp("tls-server"), pki)
    proc.start()
    try:
        assert proc.token, "the server wrote no bootstrap administrator token"
        with Client(proc.address, token=proc.token, ca_cert=pki.ca_pem) as admin:
            admin.create_identity("snv-task-tracker", "Hệ thống theo dõi nhiệm vụ của Sở Nội vụ", roles=["reader"])
            admin.register_certificate("snv-task-tracker", "CN=snv-task-tracker")
        yield proc
    finally:
        proc.stop()


@pytest.mark.slow
def test_e2e_a_token_over_tls(tls_server: TlsServerProcess, pki: SimpleNamespace) -> None:
    with Client(tls_server.address, token=tls_server.token, ca_cert=pki.ca_pem) as client:
        me = client.whoami()
    assert me.identity.identity_id and identities_pb2.ROLE_ADMIN in me.identity.roles
    with Client(tls_server.address, ca_cert=pki.ca_pem) as client, pytest.raises(Unauthenticated):
        client.whoami()
    with Client(tls_server.address, max_attempts=1) as client, pytest.raises(Unavailable):
        client.whoami()  # plaintext to a TLS port


@pytest.mark.slow
def test_e2e_cli_over_tls(tls_server: TlsServerProcess, pki: SimpleNamespace, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(tls_server.token + "\n")
    token_file.chmod(0o600)
    result = cli("--server", tls_server.address, "--ca-cert", str(pki.ca_pem), "--token-file", str(token_file),
                 "periods")
    assert result.exit_code == 0, output_of(result)
    assert tls_server.token not in output_of(result)
    wrong = token_file.with_name("wrong")
    wrong.write_text("cs_000000000000_" + "A" * 43)
    wrong.chmod(0o600)
    refused = cli("--server", tls_server.address, "--ca-cert", str(pki.ca_pem), "--token-file", str(wrong), "periods")
    assert refused.exit_code == 1 and "refused the credentials" in refused.stderr
    assert "A" * 43 not in output_of(refused)


@pytest.mark.slow
def test_e2e_mutual_tls_with_a_registered_certificate(tls_server: TlsServerProcess, pki: SimpleNamespace) -> None:
    with Client(tls_server.mtls_address, ca_cert=pki.ca_pem, server_name_override="localhost",
                client_cert=pki.client_cert, client_key=pki.client_key) as client:
        me = client.whoami()
    assert me.identity.identity_id == "snv-task-tracker"
    assert me.credential.certificate_subject == "CN=snv-task-tracker"


@pytest.mark.slow
def test_e2e_mutual_tls_with_the_raw_stub(tls_server: TlsServerProcess, pki: SimpleNamespace) -> None:
    credentials = grpc.ssl_channel_credentials(pki.ca.cert_pem, pki.client.key_pem, pki.client.cert_pem)
    with grpc.secure_channel(tls_server.mtls_address, credentials) as channel:
        reply = identities_pb2_grpc.IdentityServiceStub(channel).WhoAmI(identities_pb2.WhoAmIRequest(), timeout=10)
    assert reply.identity.identity_id == "snv-task-tracker"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["foreign", "expired", "none"])
def test_e2e_mutual_tls_refuses_the_handshake(tls_server: TlsServerProcess, pki: SimpleNamespace, which: str) -> None:
    pair = {"foreign": (pki.foreign_cert, pki.foreign_key), "expired": (pki.expired_cert, pki.expired_key),
            "none": (None, None)}[which]
    with Client(tls_server.mtls_address, ca_cert=pki.ca_pem, client_cert=pair[0], client_key=pair[1],
                max_attempts=1) as client, pytest.raises(Unavailable) as caught:
        client.whoami()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE and not caught.value.from_server


@pytest.mark.slow
def test_e2e_an_unregistered_certificate_is_unauthenticated(
    tls_server: TlsServerProcess, pki: SimpleNamespace
) -> None:
    with Client(tls_server.mtls_address, ca_cert=pki.ca_pem, client_cert=pki.unregistered_cert,
                client_key=pki.unregistered_key) as client, pytest.raises(Unauthenticated) as caught:
        client.whoami()
    assert "CN=nobody" in caught.value.message
    mtls = ("--server", tls_server.mtls_address, "--ca-cert", str(pki.ca_pem))
    result = cli(*mtls, "--client-cert", str(pki.unregistered_cert), "--client-key", str(pki.unregistered_key),
                 "periods")
    assert result.exit_code == 1
    assert f"civicscore at {tls_server.mtls_address} refused the client certificate (" in result.stderr
    assert "CN=nobody" in result.stderr
    result = cli(*mtls, "--client-cert", str(pki.client_cert), "--client-key", str(pki.client_key), "periods")
    assert result.exit_code == 0, output_of(result)


@pytest.mark.slow
def test_e2e_the_server_refuses_to_start_with_a_bad_key(tmp_path: Path, pki: SimpleNamespace) -> None:
    proc = ServerProcess(tmp_path, extra_args=("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)))
    with pytest.raises(RuntimeError) as caught:
        proc.start(timeout=60)
    assert "does not match the certificate" in str(caught.value)
