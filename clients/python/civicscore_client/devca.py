"""A development certificate authority: a CA, a server certificate and client certificates, as PEM.

Pure functions over the `cryptography` library, used by `civicscore admin dev-ca` and by tests (which
also need certificates that are expired, not yet valid or signed by another CA). Keys are ECDSA P-256.
Nothing here is meant for production: a real deployment uses the organisation's own CA.

    ca = make_ca()
    server = make_server_cert(ca, "localhost")
    client = make_client_cert(ca, "snv-task-tracker")
    write_dev_ca(Path("var/dev-ca"), server_name="localhost", clients=["snv-task-tracker"])
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_DAYS = 365
DEFAULT_CA_NAME = "civicscore development CA"
CLIENT_URI_PREFIX = "urn:civicscore:"
# The same shape as an identity id, so that a client's name can be its identity's id and a file name.
CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
# Certificates start a little in the past so that a clock a few minutes behind still accepts them.
BACKDATE = dt.timedelta(minutes=5)

Usage = Literal["ca", "server", "client"]


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def common_name(self) -> str:
        """The subject's common name."""
        names = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        value = names[0].value if names else ""
        return value if isinstance(value, str) else value.decode()


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def validity(
    days: int = DEFAULT_DAYS, *, not_before: dt.datetime | None = None, not_after: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """The validity window: from a few minutes ago for `days` days, unless given explicitly (UTC)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    start = not_before or dt.datetime.now(dt.UTC) - BACKDATE
    end = not_after or start + BACKDATE + dt.timedelta(days=days)
    if end <= start:
        raise ValueError(f"not_after ({end.isoformat()}) must be after not_before ({start.isoformat()})")
    return start, end


def make_ca(
    common_name: str = DEFAULT_CA_NAME,
    *,
    days: int = DEFAULT_DAYS,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Issued:
    """A self-signed CA certificate that may sign end-entity certificates only (path length 0)."""
    key = key or new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = validity(days, not_before=not_before, not_after=not_after)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("ca"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(builder.sign(key, hashes.SHA256()), key)


def make_cert(
    issuer: Issued,
    common_name: str,
    *,
    usage: Literal["server", "client"],
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    uris: Sequence[str] = (),
    days: int = DEFAULT_DAYS,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Issued:
    """An end-entity certificate for a server or a client, signed by `issuer`.

    `not_before` / `not_after` override the window computed from `days`, e.g. to make an expired one.
    """
    key = key or new_key()
    start, end = validity(days, not_before=not_before, not_after=not_after)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dict.fromkeys(dns_names)]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ip_addresses)]
    alt_names += [x509.UniformResourceIdentifier(uri) for uri in dict.fromkeys(uris)]
    purpose = ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def server_alt_names(server_name: str) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses a development server certificate carries: the name, localhost and loopback."""
    dns_names: list[str] = []
    ips: list[str] = []
    try:
        ips.append(str(ipaddress.ip_address(server_name.strip("[]"))))
    except ValueError:
        dns_names.append(server_name)
    dns_names.append("localhost")
    ips += ["127.0.0.1", "::1"]
    return list(dict.fromkeys(dns_names)), list(dict.fromkeys(ips))


def make_server_cert(ca: Issued, server_name: str = "localhost", *, days: int = DEFAULT_DAYS) -> Issued:
    """A server certificate: CN=server_name, SANs DNS:server_name, DNS:localhost, IP:127.0.0.1, IP:::1.

    It ends with its CA at the latest.
    """
    dns_names, ips = server_alt_names(server_name)
    start, end = validity(days)
    return make_cert(ca, server_name, usage="server", dns_names=dns_names, ip_addresses=ips,
                     not_before=start, not_after=min(end, ca.cert.not_valid_after_utc))


def make_client_cert(ca: Issued, name: str, *, days: int = DEFAULT_DAYS) -> Issued:
    """A client certificate: CN=name, SAN URI:urn:civicscore:name. It ends with its CA at the latest."""
    check_client_name(name)
    start, end = validity(days)
    return make_cert(ca, name, usage="client", uris=[client_uri(name)], not_before=start,
                     not_after=min(end, ca.cert.not_valid_after_utc))


def client_uri(name: str) -> str:
    """The URI subject alternative name of a development client certificate."""
    return f"{CLIENT_URI_PREFIX}{name}"


def check_client_name(name: str) -> None:
    """Refuse a client name that could not be an identity id or a file name."""
    if not CLIENT_NAME.match(name):
        raise ValueError(
            f"client name {name!r} is not valid: use lowercase letters, digits, '-' and '.', starting with a "
            "letter or digit (at most 63 characters), e.g. snv-task-tracker"
        )


def _key_usage(usage: Usage) -> x509.KeyUsage:
    """Key usage bits: a CA signs certificates; an ECDSA end-entity key signs handshakes."""
    is_ca = usage == "ca"
    return x509.KeyUsage(
        digital_signature=not is_ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )


def load_issued(cert_file: Path, key_file: Path) -> Issued:
    """A certificate and its key read back from PEM files (e.g. an existing development CA)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_file} is not an ECDSA key written by this tool")
    return Issued(cert, key)


@dataclass
class DevCaFiles:
    """What `write_dev_ca` wrote, by role."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # name -> (cert, key)
    reused_ca: bool = False

    def written(self) -> list[Path]:
        """Every file, in the order written (the CA's only when it was created)."""
        files = [] if self.reused_ca else [self.ca_cert, self.ca_key]
        files += [self.server_cert, self.server_key]
        for cert, key in self.clients.values():
            files += [cert, key]
        return files


def write_dev_ca(
    out: Path, *, server_name: str = "localhost", clients: Sequence[str] = (), days: int = DEFAULT_DAYS
) -> DevCaFiles:
    """Write ca.pem/ca.key, server.pem/server.key and client-NAME.pem/.key into `out`; keys get mode 0600.

    When `out` already holds ca.pem and ca.key, that CA is reused (so clients can be added later and
    the certificates issued before stay valid); the server and client files are written anew.
    """
    for name in clients:
        check_client_name(name)
    out.mkdir(parents=True, exist_ok=True)
    files = DevCaFiles(out / "ca.pem", out / "ca.key", out / "server.pem", out / "server.key")
    have_cert, have_key = files.ca_cert.exists(), files.ca_key.exists()
    if have_cert and have_key:
        ca = load_issued(files.ca_cert, files.ca_key)
        files.reused_ca = True
        if ca.cert.not_valid_after_utc <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
            raise ValueError(
                f"the CA in {files.ca_cert} expires on {ca.cert.not_valid_after_utc:%Y-%m-%d}: remove "
                f"{files.ca_cert} and {files.ca_key} to make a new one (and issue every certificate again)"
            )
    elif have_cert or have_key:
        present, missing = (files.ca_cert, files.ca_key) if have_cert else (files.ca_key, files.ca_cert)
        raise FileExistsError(
            f"{present} exists but {missing} does not: remove {present} to make a new CA, or restore {missing}"
        )
    else:
        ca = make_ca(days=days)
        write_pem(files.ca_cert, ca.cert_pem)
        write_pem(files.ca_key, ca.key_pem, private=True)
    server = make_server_cert(ca, server_name, days=days)
    write_pem(files.server_cert, server.cert_pem)
    write_pem(files.server_key, server.key_pem, private=True)
    for name in dict.fromkeys(clients):
        client = make_client_cert(ca, name, days=days)
        cert_path, key_path = out / f"client-{name}.pem", out / f"client-{name}.key"
        write_pem(cert_path, client.cert_pem)
        write_pem(key_path, client.key_pem, private=True)
        files.clients[name] = (cert_path, key_path)
    return files


def write_pem(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write a PEM file; a private key is created with mode 0600 and never readable by others, even briefly."""
    mode = 0o600 if private else 0o644
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask may have taken bits away from a public file
            handle.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
