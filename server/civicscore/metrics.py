"""Prometheus metrics, served over HTTP on `--metrics-listen host:port` (off by default).

Every function here is a hook that the rest of the server calls unconditionally: while metrics are
off each is a no-op (one global read), so callers never check. None of them raises or blocks on
I/O: prometheus-client updates a value in memory under a lock, and the HTTP server that Prometheus
scrapes runs in its own thread.

Series (all prefixed `civicscore_`):
    rpc_calls_total{method, code}            calls handled, by full method name and status code name
    rpc_duration_seconds{method}             histogram of handling time (a stream: until it ends)
    evaluation_units_total                   units evaluated by EvaluatePeriod
    evaluation_new_revisions_total           evaluations stored as a new revision
    ingest_outcomes_total{result}            outcomes submitted: accepted | duplicate
    engine_workers_alive                     engine worker processes running (set by the engine pool)
    engine_worker_restarts_total{reason}     engine workers replaced, by reason (set by the engine pool)
    ruleset_applied_sequence                 the activation this replica applies (set by the rulesets)
    ruleset_applied_info{digest}             1 for the digest of that activation
    limit_refusals_total{reason}             calls refused by a per-identity limit: RATE_LIMITED | TOO_MANY_IN_FLIGHT
    limits_shared                            1 while per-identity limits are kept in Redis, else 0
    limits_redis_fallback                    1 while Redis is configured but unreachable (local limits apply)
    limits_redis_errors_total                Redis failures seen by the limits (calls and probes)

Calls the server refuses before any handler runs (gRPC's `--max-concurrent-rpcs`, oversized
messages) are not counted here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = [
    "MetricsServer", "call_finished", "engine_worker_restarted", "engine_workers", "evaluation_recorded",
    "limit_refused", "limits_redis_error", "limits_state", "outcomes_recorded", "ruleset_applied", "serve",
]

log = logging.getLogger("civicscore.metrics")

# Handling times of this service span a health check (~0.2 ms) to an EvaluatePeriod of a big city (minutes).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0, 300.0)
LIMIT_REASONS = ("RATE_LIMITED", "TOO_MANY_IN_FLIGHT")


class _Series:
    """The collectors of one registry (one running server)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.calls = Counter("civicscore_rpc_calls", "RPCs handled, by method and status code",
                             ["method", "code"], registry=r)
        self.duration = Histogram("civicscore_rpc_duration_seconds", "RPC handling time, by method", ["method"],
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.units_evaluated = Counter("civicscore_evaluation_units", "Units evaluated by EvaluatePeriod",
                                       registry=r)
        self.new_revisions = Counter("civicscore_evaluation_new_revisions",
                                     "Evaluations stored as a new revision", registry=r)
        self.outcomes = Counter("civicscore_ingest_outcomes", "Outcomes submitted, accepted or duplicate",
                                ["result"], registry=r)
        self.workers_alive = Gauge("civicscore_engine_workers_alive", "Engine worker processes running",
                                   registry=r)
        self.worker_restarts = Counter("civicscore_engine_worker_restarts", "Engine workers replaced, by reason",
                                       ["reason"], registry=r)
        self.ruleset_sequence = Gauge("civicscore_ruleset_applied_sequence",
                                      "Sequence number of the ruleset activation this replica applies", registry=r)
        self.ruleset_info = Gauge("civicscore_ruleset_applied_info",
                                  "1 for the digest of the ruleset this replica applies", ["digest"], registry=r)
        self.limit_refusals = Counter("civicscore_limit_refusals", "Calls refused by a per-identity limit",
                                      ["reason"], registry=r)
        self.limits_shared = Gauge("civicscore_limits_shared", "1 while per-identity limits are kept in Redis",
                                   registry=r)
        self.limits_fallback = Gauge("civicscore_limits_redis_fallback",
                                     "1 while Redis is configured but unreachable and local limits apply",
                                     registry=r)
        self.redis_errors = Counter("civicscore_limits_redis_errors", "Redis failures seen by the limits",
                                    registry=r)
        for reason in LIMIT_REASONS:  # every series exists from the start, at 0
            self.limit_refusals.labels(reason)
        for result in ("accepted", "duplicate"):
            self.outcomes.labels(result)
        self._lock = threading.Lock()
        self._digest: str | None = None
        # method -> its duration child, (method, code) -> its counter child: labels() costs a lock and
        # a tuple hash; a plain dict read is cheaper on every call
        self._durations: dict[str, Any] = {}
        self._counts: dict[tuple[str, str], Any] = {}

    def call_finished(self, method: str, code: str, seconds: float, reply: object) -> None:
        count = self._counts.get((method, code))
        if count is None:
            count = self._counts[(method, code)] = self.calls.labels(method, code)
        count.inc()
        duration = self._durations.get(method)
        if duration is None:
            duration = self._durations[method] = self.duration.labels(method)
        duration.observe(seconds)
        if reply is not None and code == "OK":
            counts = _REPLY_COUNTS.get(method)
            if counts is not None:
                counts(self, reply)

    def ruleset_applied(self, sequence: int, digest: str) -> None:
        with self._lock:
            if self._digest is not None and self._digest != digest:
                self.ruleset_info.remove(self._digest)
            self._digest = digest
            self.ruleset_info.labels(digest).set(1)
            self.ruleset_sequence.set(sequence)


def _evaluated(series: _Series, reply: Any) -> None:
    series.units_evaluated.inc(reply.units_evaluated)
    series.new_revisions.inc(reply.new_revisions)


def _ingested(series: _Series, reply: Any) -> None:
    series.outcomes.labels("accepted").inc(reply.accepted)
    series.outcomes.labels("duplicate").inc(reply.duplicates)


# The evaluation and ingest counts are read off the replies of the calls that report them, in the
# one place every call passes through, rather than from inside the use cases.
_REPLY_COUNTS: dict[str, Callable[[_Series, Any], None]] = {
    "/civicscore.v1.EvaluationService/EvaluatePeriod": _evaluated,
    "/civicscore.v1.OutcomeService/SubmitOutcomes": _ingested,
    "/civicscore.v1.OutcomeService/StreamOutcomes": _ingested,
}

_series: _Series | None = None  # None: metrics are off


class MetricsServer:
    """The HTTP endpoint that Prometheus scrapes; `close()` stops it and turns the hooks off."""

    def __init__(self, listen: str) -> None:
        """Raises ValueError for a malformed address, OSError when it cannot be bound."""
        global _series
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"--metrics-listen {listen!r} is not host:port (e.g. 127.0.0.1:9464)")
        host = host.strip("[]")
        registry = CollectorRegistry()
        series = _Series(registry)
        try:
            self._httpd, self._thread = start_http_server(int(port), addr=host, registry=registry)
        except OSError as error:
            raise OSError(f"cannot serve metrics on {listen}: {error.strerror or error} "
                          "(pass another --metrics-listen host:port)") from error
        self.port: int = self._httpd.server_port
        self.address = f"{'[' + host + ']' if ':' in host else host}:{self.port}"
        _series = series
        log.info("metrics served on http://%s/metrics", self.address)

    def close(self) -> None:
        global _series
        _series = None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5.0)


def serve(listen: str) -> MetricsServer:
    """Start serving metrics on `listen` (host:port; port 0 picks a free one) and turn the hooks on."""
    return MetricsServer(listen)


# ---- hooks: no-ops while metrics are off ----------------------------------------------------------


def call_finished(method: str, code: str, seconds: float, reply: object = None) -> None:
    """An RPC ended with status `code` (a StatusCode name) after `seconds`; `reply` is its response
    message when it has exactly one (unary), for the counts some replies carry."""
    series = _series
    if series is not None:
        series.call_finished(method, code, seconds, reply)


def evaluation_recorded(*, units: int, new_revisions: int) -> None:
    """An evaluation run evaluated `units` units and stored `new_revisions` new revisions."""
    series = _series
    if series is not None:
        series.units_evaluated.inc(units)
        series.new_revisions.inc(new_revisions)


def outcomes_recorded(*, accepted: int, duplicates: int) -> None:
    """A batch of outcomes was stored: `accepted` new ones, `duplicates` already stored."""
    series = _series
    if series is not None:
        series.outcomes.labels("accepted").inc(accepted)
        series.outcomes.labels("duplicate").inc(duplicates)


def engine_workers(*, alive: int) -> None:
    """The engine pool has `alive` worker processes running now."""
    series = _series
    if series is not None:
        series.workers_alive.set(alive)


def engine_worker_restarted(reason: str) -> None:
    """The engine pool replaced a worker; `reason` is a short, bounded word (e.g. crashed, hung, signal name)."""
    series = _series
    if series is not None:
        series.worker_restarts.labels(reason).inc()


_workers_alive = 0
_workers_lock = threading.Lock()


def engine_worker_event(what: str, pid: int, why: str) -> None:
    """An engine pool's worker `pid` was "started", "died" or "stopped" (`why` in words): kept as the gauge
    of workers alive in this process and, for deaths, a restart counted under a bounded reason."""
    global _workers_alive
    with _workers_lock:
        _workers_alive = max(0, _workers_alive + (1 if what == "started" else -1))
        alive = _workers_alive
    engine_workers(alive=alive)
    if what == "died":
        engine_worker_restarted(_restart_reason(why))


def _restart_reason(why: str) -> str:
    if why.startswith("killed by "):
        return why.removeprefix("killed by ").split()[0]  # the signal's name, e.g. SIGKILL
    for words, reason in (("did not", "hung"), ("exit code", "exited"), ("died", "exited"),
                          ("error in the worker", "error"), ("server's side", "bug")):
        if words in why:
            return reason
    return "other"


def ruleset_applied(sequence: int, digest: str) -> None:
    """This replica now applies the ruleset activation number `sequence`, of ruleset `digest`."""
    series = _series
    if series is not None:
        series.ruleset_applied(sequence, digest)


def limit_refused(reason: str) -> None:
    """A call was refused by a per-identity limit (`reason`: RATE_LIMITED or TOO_MANY_IN_FLIGHT)."""
    series = _series
    if series is not None:
        series.limit_refusals.labels(reason).inc()


def limits_state(*, shared: bool, fallback: bool) -> None:
    """Where per-identity limits are kept now: in Redis (`shared`), or locally, by choice or in `fallback`."""
    series = _series
    if series is not None:
        series.limits_shared.set(1 if shared else 0)
        series.limits_fallback.set(1 if fallback else 0)


def limits_redis_error() -> None:
    """The limits saw Redis fail once (a call or a probe)."""
    series = _series
    if series is not None:
        series.redis_errors.inc()
