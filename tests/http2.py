"""Just enough HTTP/2 framing for tests that look at a gRPC connection's bytes (RFC 9113, section 4.1)."""

from __future__ import annotations

import socket
from typing import NamedTuple

FRAME_HEADER_BYTES = 9
HEADERS = 0x1
SETTINGS = 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
_ACK = 0x1
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class FrameHeader(NamedTuple):
    length: int
    kind: int
    flags: int
    stream: int


def frame_header(data: bytes, at: int = 0) -> FrameHeader:
    """The header of the frame that starts at `at` (which must hold at least FRAME_HEADER_BYTES bytes)."""
    return FrameHeader(length=int.from_bytes(data[at:at + 3], "big"), kind=data[at + 3], flags=data[at + 4],
                       stream=int.from_bytes(data[at + 5:at + 9], "big") & 0x7FFFFFFF)


def server_settings(address: str) -> dict[int, int]:
    """The SETTINGS a server announces when a client opens an HTTP/2 connection (prior knowledge)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(_PREFACE + bytes(FRAME_HEADER_BYTES))  # the preface and an empty SETTINGS frame
        data = b""
        while True:
            while len(data) < FRAME_HEADER_BYTES or len(data) < FRAME_HEADER_BYTES + frame_header(data).length:
                chunk = sock.recv(65536)
                assert chunk, "the server closed the connection before sending its SETTINGS"
                data += chunk
            header = frame_header(data)
            end = FRAME_HEADER_BYTES + header.length
            payload, data = data[FRAME_HEADER_BYTES:end], data[end:]
            if header.kind == SETTINGS and not header.flags & _ACK:
                return {int.from_bytes(payload[i:i + 2], "big"): int.from_bytes(payload[i + 2:i + 6], "big")
                        for i in range(0, header.length, 6)}
