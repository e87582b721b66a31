"""A TCP proxy that can cut a gRPC connection after the server has answered, before the client reads it.

The server's side of an HTTP/2 connection is nothing but frames (9-byte header: 24-bit length,
8-bit type, 8-bit flags, 31-bit stream id). The server sends a call's response HEADERS only once
its handler has returned, that is after a write has committed. Armed, the proxy forwards the
server's frames up to the first HEADERS frame of a call (stream id > 0) and then closes both
sockets instead: the client sees the connection drop (UNAVAILABLE) without ever reading the reply.
It cuts once, then forwards everything again, so the client's retry goes through.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

from tests.http2 import FRAME_HEADER_BYTES, HEADERS, frame_header


class CutProxy:
    """Listens on 127.0.0.1 (a free port) and forwards each connection to `upstream` (host:port)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._armed = False
        self.connections = 0
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="cutproxy-accept", daemon=True).start()

    def arm(self) -> None:
        """Cut the connection that carries the next call's response, once."""
        with self._lock:
            self._armed = True

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self._upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_replies, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        _close(source, sink)

    def _pump_replies(self, server: socket.socket, client: socket.socket) -> None:
        """Forward the server's frames whole, cutting at a call's HEADERS frame when armed."""
        pending = b""
        try:
            while data := server.recv(65536):
                pending += data
                ready = 0  # bytes of complete frames that may be forwarded
                while len(pending) - ready >= FRAME_HEADER_BYTES:
                    header = frame_header(pending, ready)
                    if header.kind == HEADERS and header.stream and self._take_cut():
                        if ready:
                            client.sendall(pending[:ready])
                        _close(server, client)
                        return
                    if len(pending) - ready < FRAME_HEADER_BYTES + header.length:
                        break
                    ready += FRAME_HEADER_BYTES + header.length
                if ready:
                    client.sendall(pending[:ready])
                    pending = pending[ready:]
        except OSError:
            pass
        _close(server, client)

    def _take_cut(self) -> bool:
        with self._lock:
            if not self._armed:
                return False
            self._armed = False
            self.cuts += 1
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        _close(*sockets)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
