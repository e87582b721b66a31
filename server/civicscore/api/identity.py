"""Who is calling, as recorded with every write, activation and rollback: the authenticated identity."""

from __future__ import annotations

import grpc

from civicscore.auth.caller import current_caller


def peer_address(context: grpc.ServicerContext) -> str:
    """The caller's address without its port (which changes with every connection)."""
    peer = context.peer()
    return peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer


def caller(context: grpc.ServicerContext) -> str:
    """The caller's identity id (set by the access interceptor for every call it admits)."""
    current = current_caller()
    if current is not None:
        return current.identity_id
    # Only calls the access table leaves open get here; none of them writes.
    return f"unauthenticated:{peer_address(context)}"
