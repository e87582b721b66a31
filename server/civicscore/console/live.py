"""Live updates of the review queue: WatchRecommendations, as the person, relayed as server-sent events.

Each open queue page holds one watch that starts at the newest change (no replay of the history) and is
resumed by the SDK from its cursor when a replica goes away. A change is sent to the browser as an
`event: change` with the recommendation's period, name and status; the page then fetches its rows
again with the person's session, so what it shows is always what ListRecommendations says. A watch the
server ends (the session signed out or expired) sends `event: end`, and the page offers to sign in.

Each stream is a call in flight on the gRPC server, counted against the person's in-flight limit
(`--max-in-flight`, 8) and the server's `--max-concurrent-rpcs`. So the open streams are bounded: at most
`per_person` for one person (more tabs on the queue do not take the slots their page loads need) and
`limit` per console process; beyond either, the browser is told to come back later (503 with a `retry:`
hint), and the page keeps working without live updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from civicscore.console.views import kind_name, short, status_name
from civicscore_api.v1 import reviews_pb2
from civicscore_client import CivicscoreError, Client, PermissionDenied, Unauthenticated
from civicscore_client._reviews import Watch

log = logging.getLogger("civicscore.console.live")
KEEP_ALIVE_S = 15.0
_CHANGE_KINDS = {reviews_pb2.RECOMMENDATION_CHANGE_KIND_RAISED: "raised",
                 reviews_pb2.RECOMMENDATION_CHANGE_KIND_SUPERSEDED: "superseded",
                 reviews_pb2.RECOMMENDATION_CHANGE_KIND_REVIEWED: "reviewed",
                 reviews_pb2.RECOMMENDATION_CHANGE_KIND_CONTESTED: "contested"}
Item = tuple[str, dict[str, Any]] | None


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class LiveUpdates:
    """Open live streams of one console process, bounded; `close()` ends them all (at shutdown)."""

    def __init__(self, limit: int, per_person: int = 2) -> None:
        self.limit = limit
        self.per_person = per_person
        self._lock = threading.Lock()
        self._watches: dict[Watch, str] = {}
        self._closed = False

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._watches)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            watches = list(self._watches)
        for watch in watches:
            watch.cancel()

    def stream(self, request: Request, client: Client, person: str) -> Response:
        with self._lock:
            full = self._closed or len(self._watches) >= self.limit or \
                sum(1 for who in self._watches.values() if who == person) >= self.per_person
        if full:
            return Response("retry: 60000\n\n", status_code=503, media_type="text/event-stream",
                            headers={"Retry-After": "60"})
        return StreamingResponse(self._events(client, person), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _events(self, client: Client, person: str) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=256)

        def put(item: Item) -> None:
            if item is not None and queue.full():
                return  # the page refetches its rows on any change: a dropped change loses nothing
            queue.put_nowait(item)

        watch = client.watch_recommendations(from_newest=True, resume_attempts=None)
        with self._lock:
            self._watches[watch] = person

        def pump() -> None:
            try:
                for message in watch:
                    if message.HasField("change"):
                        change = message.change
                        rec = change.recommendation
                        item: Item = ("change", {
                            "period": short(rec.period, "periods"), "name": short(rec.name, "recommendations"),
                            "kind": kind_name(rec.kind), "status": status_name(rec.status),
                            "change": _CHANGE_KINDS.get(change.kind, "")})
                        loop.call_soon_threadsafe(put, item)
                    elif message.caught_up:
                        loop.call_soon_threadsafe(put, ("ready", {}))
            except (Unauthenticated, PermissionDenied) as err:
                loop.call_soon_threadsafe(put, ("end", {"reason": "signed_out" if isinstance(err, Unauthenticated)
                                                        else "forbidden"}))
            except CivicscoreError as err:
                log.warning("live updates ended: %s", err.message)
                loop.call_soon_threadsafe(put, ("end", {"reason": "error"}))
            except RuntimeError:  # the event loop closed under us (console shutting down)
                return
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
                    loop.call_soon_threadsafe(put, None)

        threading.Thread(target=pump, name="console-live", daemon=True).start()
        try:
            yield "retry: 5000\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=KEEP_ALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is None:
                    return
                yield _event(*item)
        finally:
            watch.cancel()
            with self._lock:
                self._watches.pop(watch, None)
