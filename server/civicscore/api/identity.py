"""Who is calling: the identity recorded with every write, activation and rollback.

There are no credentials yet (they come with transport security and roles), so
every caller is recorded as unauthenticated, with the address it called from.
"""

from __future__ import annotations

import grpc


def caller(context: grpc.ServicerContext) -> str:
    """The caller's identity as stored in records, e.g. `unauthenticated:ipv4:127.0.0.1` (the
    client's port changes with every connection and says nothing about who called)."""
    peer = context.peer()
    address = peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer
    return f"unauthenticated:{address}"
