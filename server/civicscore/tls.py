"""Transport security for the server: which addresses may stay plaintext, TLS credentials, peer certificates.

- `is_loopback(listen)`: plaintext is allowed only where nothing outside this machine can connect.
- `server_credentials(cert, key, client_ca)`: the PEM files checked before gRPC sees them, so that a
  wrong file is refused at start-up with the file's name and what is wrong with it, instead of a
  handshake failure at the first client (or a C-core log line nobody reads).
- `peer_certificate_names(context.auth_context())`: the names a verified client certificate carries,
  `CN=<common name>` first, then its subject alternative names, as registered credentials name them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

log = logging.getLogger("civicscore.tls")

COMMON_NAME_KEY = "x509_common_name"
ALT_NAMES_KEY = "x509_subject_alternative_name"
SECURITY_TYPE_KEY = "transport_security_type"
# A warning at start-up when the server certificate expires sooner than this.
EXPIRY_WARNING = dt.timedelta(days=30)
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"


class TlsConfigError(ValueError):
    """A TLS file is missing, unreadable or wrong; the message names the file and what to do."""


def is_loopback(listen: str) -> bool:
    """Whether a listen address (`host:port`) is reachable from this machine only.

    Loopback: `127.0.0.0/8`, `::1` (also as `::ffff:127.x.y.z`), `localhost`, and Unix sockets
    (`unix:PATH`, `unix-abstract:NAME`). Not loopback: wildcard addresses (`0.0.0.0`, `[::]`, an
    empty host), any other address or host name.
    """
    target = listen.strip()
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    for scheme in ("dns:///", "ipv4:", "ipv6:"):
        target = target.removeprefix(scheme)
    host = _host_of(target)
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _host_of(target: str) -> str:
    """The host part of `host:port`, `[v6]:port`, a bare host or a bare IPv6 address."""
    if target.startswith("["):
        end = target.find("]")
        return target[1:end] if end > 0 else target
    if target.count(":") > 1:  # an IPv6 address without brackets, with or without a port
        try:
            ipaddress.ip_address(target)
            return target
        except ValueError:
            return target.rsplit(":", 1)[0]
    return target.split(":", 1)[0]


def server_credentials(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> grpc.ServerCredentials:
    """TLS credentials from PEM files; with `client_ca_file`, clients must present a certificate it signed.

    Raises TlsConfigError naming the file when one is missing, unreadable, not PEM, expired or not
    yet valid, when the key does not match the certificate, or when the client CA is not a CA.
    """
    cert_pem = _read(cert_file, "TLS certificate (--tls-cert)")
    key_pem = _read(key_file, "TLS private key (--tls-key)")
    chain = _certificates(cert_pem, cert_file, "TLS certificate (--tls-cert)")
    key = _private_key(key_pem, key_file)
    leaf = chain[0]
    if _public_der(leaf.public_key()) != _public_der(key.public_key()):
        raise TlsConfigError(
            f"the TLS private key {key_file} does not match the certificate {cert_file} (the first certificate "
            "in the file): give the key the certificate was issued for"
        )
    _check_validity(leaf, cert_file, "the server certificate")
    _warn_if_expiring(leaf, cert_file)
    if client_ca_file is None:
        return grpc.ssl_server_credentials([(key_pem, cert_pem)])
    ca_pem = _read(client_ca_file, "client CA certificate (--client-ca)")
    for ca in _certificates(ca_pem, client_ca_file, "client CA certificate (--client-ca)"):
        _check_is_ca(ca, client_ca_file)
        _check_validity(ca, client_ca_file, "the client CA certificate")
    return grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True)


def peer_certificate_names(auth_context: Mapping[str, Sequence[bytes]]) -> list[str]:
    """`["CN=<common name>", <subject alternative names>...]` of the peer's verified certificate.

    grpc gives a list of values per key (types-grpcio types it `Mapping[str, bytes]`: cast it).
    Empty when the connection is not TLS or the peer presented no certificate (the TLS listener
    does not ask for one; the mTLS listener refuses the handshake without one). Duplicates are
    dropped, the order kept.
    """
    security = [value.decode("utf-8", "replace") for value in auth_context.get(SECURITY_TYPE_KEY, ())]
    if security and "ssl" not in security:
        return []
    names: list[str] = []
    for value in auth_context.get(COMMON_NAME_KEY, ())[:1]:
        common_name = _text(value)
        if common_name:
            names.append(f"CN={common_name}")
    for value in auth_context.get(ALT_NAMES_KEY, ()):
        alt_name = _text(value)
        if alt_name:
            names.append(alt_name)
    return list(dict.fromkeys(names))


def _text(value: bytes | str) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else value).strip()


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TlsConfigError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise TlsConfigError(f"{what} file {path} is a directory, not a PEM file") from None
    except PermissionError:
        raise TlsConfigError(
            f"{what} file {path} is not readable by this process (permission denied): check its owner and mode"
        ) from None
    except OSError as err:
        raise TlsConfigError(f"cannot read {what} file {path}: {err.strerror or err}") from None
    if not data.strip():
        raise TlsConfigError(f"{what} file {path} is empty")
    return data


def _certificates(data: bytes, path: Path, what: str) -> list[x509.Certificate]:
    if _PEM_CERT not in data:
        if b"PRIVATE KEY-----" in data:
            hint = " (it holds a private key: are the certificate and key files swapped?)"
        else:
            hint = " (a DER file can be converted with `openssl x509 -inform der -in FILE -out FILE.pem`)"
        raise TlsConfigError(f"{what} file {path} is not PEM: no '-----BEGIN CERTIFICATE-----' block{hint}")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as err:
        raise TlsConfigError(f"{what} file {path} holds a PEM block that is not a valid certificate: {err}") from None


def _private_key(data: bytes, path: Path) -> PrivateKeyTypes:
    if b"PRIVATE KEY-----" not in data:
        hint = " (it holds a certificate: are the certificate and key files swapped?)" if _PEM_CERT in data else ""
        raise TlsConfigError(
            f"TLS private key (--tls-key) file {path} is not PEM: no '-----BEGIN ... PRIVATE KEY-----' block{hint}"
        )
    if b"ENCRYPTED" in data:
        raise TlsConfigError(
            f"TLS private key (--tls-key) file {path} is encrypted with a passphrase: the server needs it "
            "unencrypted (e.g. `openssl pkey -in KEY -out KEY.plain`), readable by the server only (mode 0600)"
        )
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise TlsConfigError(f"TLS private key (--tls-key) file {path} is not a valid private key: {err}") from None
    except UnsupportedAlgorithm as err:
        raise TlsConfigError(f"TLS private key (--tls-key) file {path} cannot be used: {err}") from None


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_validity(cert: x509.Certificate, path: Path, what: str) -> None:
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc <= now:
        raise TlsConfigError(
            f"{what} in {path} ({cert.subject.rfc4514_string()}) expired on "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: issue a new one"
        )
    if cert.not_valid_before_utc > now:
        raise TlsConfigError(
            f"{what} in {path} ({cert.subject.rfc4514_string()}) is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: check this machine's clock"
        )


def _warn_if_expiring(cert: x509.Certificate, path: Path) -> None:
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    if left < EXPIRY_WARNING:
        log.warning("the server certificate %s expires in %d day(s), on %s UTC: renew it soon",
                    path, left.days, f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M}")


def _check_is_ca(cert: x509.Certificate, path: Path) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return  # an old (v1) CA certificate: the handshake decides
    if not constraints.ca:
        raise TlsConfigError(
            f"client CA certificate (--client-ca) file {path} holds {cert.subject.rfc4514_string()}, which is not "
            "a CA certificate (basicConstraints CA:FALSE): give the CA certificate that signed the client certificates"
        )
