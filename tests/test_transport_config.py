"""The server refuses transport settings that would be insecure or half-given, before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from civicscore.app import ServerConfig, _transport
from civicscore.tls import TlsConfigError

CERT, KEY, CA = Path("server.pem"), Path("server.key"), Path("ca.pem")


@pytest.mark.parametrize(("config", "message"), [
    (ServerConfig(listen="0.0.0.0:50051"), "not a loopback address"),
    (ServerConfig(listen="10.1.2.3:50051"), "not a loopback address"),
    (ServerConfig(tls_cert=CERT), "both --tls-cert and --tls-key"),
    (ServerConfig(tls_key=KEY), "both --tls-cert and --tls-key"),
    (ServerConfig(mtls_listen="127.0.0.1:0", client_ca=CA), "--mtls-listen needs --tls-cert"),
    (ServerConfig(tls_cert=CERT, tls_key=KEY, client_ca=CA), "give --mtls-listen too"),
    (ServerConfig(tls_cert=CERT, tls_key=KEY, mtls_listen="127.0.0.1:0"), "--mtls-listen needs --client-ca"),
])
def test_insecure_or_incomplete_transport_is_refused(config: ServerConfig, message: str) -> None:
    with pytest.raises(TlsConfigError, match=message):
        _transport(config)


def test_plaintext_on_loopback_is_allowed() -> None:
    assert _transport(ServerConfig(listen="127.0.0.1:50051")) == (None, None)
    assert _transport(ServerConfig(listen="[::1]:50051")) == (None, None)
