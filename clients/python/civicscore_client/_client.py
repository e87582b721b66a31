"""`Client`: one method per RPC of the civicscore contract, over one channel.

Names can be given short (`"SNV"`, `"2026-Q3"`, `"QD818-17"`) or in full (`"units/SNV"`). Every
call has a deadline (`timeout`, 30 s by default) and is retried on UNAVAILABLE with exponential
backoff; writes carry an idempotency key (a fresh uuid4 unless given) that every retry reuses, and
are split into batches the server accepts; List methods return iterators that fetch every page.
"""

from __future__ import annotations

from civicscore_client._audit import AuditCalls
from civicscore_client._extensions import ExtensionCalls
from civicscore_client._identities import IdentityCalls
from civicscore_client._obstacles import ObstacleCalls
from civicscore_client._officials import OfficialCalls
from civicscore_client._reads import PAGE_SIZE, ReadCalls
from civicscore_client._reports import ReportCalls
from civicscore_client._reviews import ReviewCalls
from civicscore_client._rulesets import RulesetCalls
from civicscore_client._writes import MAX_BATCH, WriteCalls

__all__ = ["MAX_BATCH", "PAGE_SIZE", "Client"]


class Client(WriteCalls, ReadCalls, RulesetCalls, IdentityCalls, AuditCalls, ReportCalls, ReviewCalls,
             ExtensionCalls, ObstacleCalls, OfficialCalls):
    """A connection to one civicscore server; use it as a context manager so the channel is closed.

    with Client("127.0.0.1:50051", timeout=10) as client:
        client.submit_outcomes(outcomes)
        for unit in client.list_units(kind="ward"):
            ...
    """
