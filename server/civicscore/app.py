"""Build the gRPC server from configuration: store, rules engine, servicers, health, reflection."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from civicscore import metrics
from civicscore.api import evaluation_wire
from civicscore.api.audit_servicers import AuditServicer
from civicscore.api.extension_servicers import ExtensionServicer
from civicscore.api.identity_servicers import IdentityServicer
from civicscore.api.ingest_servicers import (
    AssignmentServicer,
    MeasurementServicer,
    OutcomeServicer,
    UnitServicer,
)
from civicscore.api.maintenance_servicers import MaintenanceServicer
from civicscore.api.obstacle_servicers import ObstacleServicer
from civicscore.api.official_servicers import OfficialServicer
from civicscore.api.read_servicers import EvaluationServicer, PeriodServicer
from civicscore.api.report_servicers import ReportServicer
from civicscore.api.request_checks import RequestCheckInterceptor
from civicscore.api.review_servicers import ReviewServicer
from civicscore.api.ruleset_servicers import RulesetServicer
from civicscore.auth.auditlog import RefusalAudit
from civicscore.auth.authenticator import Authenticator
from civicscore.auth.interceptor import AccessInterceptor
from civicscore.auth.policy import METHOD_ACCESS, Access, Permission
from civicscore.engine.pool import EnginePool
from civicscore.engine.port import RulesEngine
from civicscore.identities import bootstrap_admin
from civicscore.limits import LimitsState, SharedLimitsConfig, TrustedProxies, build_limits
from civicscore.ratelimit import RefusalHold
from civicscore.ruleset import Ruleset
from civicscore.rulesets import Rulesets, read_rule_files
from civicscore.rulesets.follower import Applied
from civicscore.runtime import Runtime
from civicscore.sessions import DEFAULT_IDLE, IdlePolicy
from civicscore.store.connection import DEFAULT_POOL_SIZE
from civicscore.store.sql import open_store
from civicscore.tls import TlsConfigError, is_loopback, server_credentials
from civicscore_api.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    evaluations_pb2,
    evaluations_pb2_grpc,
    extensions_pb2,
    extensions_pb2_grpc,
    identities_pb2,
    identities_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
    measurements_pb2,
    measurements_pb2_grpc,
    obstacles_pb2,
    obstacles_pb2_grpc,
    officials_pb2,
    officials_pb2_grpc,
    outcomes_pb2,
    outcomes_pb2_grpc,
    periods_pb2,
    periods_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
    reviews_pb2,
    reviews_pb2_grpc,
    rulesets_pb2,
    rulesets_pb2_grpc,
    units_pb2,
    units_pb2_grpc,
)

log = logging.getLogger("civicscore")
# gRPC's own grace is the configured one plus this, so that it is always this class that cancels the calls
# still running when the grace passes (and marks them as cancelled by the shutdown first).
_GRPC_GRACE_MARGIN_S = 3600.0
_STOP_POLL_S = 0.2  # how soon a second signal cuts the grace short
_HANDLERS_DRAIN_S = 10.0  # how long handlers of cancelled calls may take to wind down before the engines close

_SERVICES = (
    (units_pb2, "UnitService"),
    (assignments_pb2, "AssignmentService"),
    (outcomes_pb2, "OutcomeService"),
    (measurements_pb2, "MeasurementService"),
    (periods_pb2, "PeriodService"),
    (evaluations_pb2, "EvaluationService"),
    (rulesets_pb2, "RulesetService"),
    (identities_pb2, "IdentityService"),
    (reports_pb2, "ReportService"),
    (audit_pb2, "AuditService"),
    (reviews_pb2, "ReviewService"),
    (maintenance_pb2, "MaintenanceService"),
    (extensions_pb2, "ExtensionService"),
    (obstacles_pb2, "ObstacleService"),
    (officials_pb2, "OfficialService"),
)
SERVICE_MODULES = tuple(module for module, _ in _SERVICES)
# The health service name that tells whether per-identity limits are shared (see _limits_changed).
LIMITS_HEALTH = "civicscore.limits"
SERVICE_NAMES = tuple(module.DESCRIPTOR.services_by_name[name].full_name for module, name in _SERVICES)


def _bytes_as_they_are(reply: bytes) -> bytes:
    return reply


class RawReplies:
    """Stands for the gRPC server while a generated `add_…Servicer_to_server` registers a service, and gives
    the `methods` named a response serializer that sends bytes as they are: their servicer returns the reply
    already encoded (GetEvaluation, from the body stored with the evaluation: api.evaluation_wire). The
    interceptors keep each handler's serializers, so they pass the bytes on too."""

    def __init__(self, server: grpc.Server, methods: set[str]) -> None:
        self._server = server
        self._methods = methods
        self.registered = False

    @classmethod
    def register(cls, server: grpc.Server, add_servicer: Callable[[Any, Any], None], servicer: Any,
                 methods: set[str]) -> None:
        """Register `servicer` with the generated `add_servicer`, `methods` sending their replies' bytes as
        they are; RuntimeError when the generated code does not register its methods by name (a grpcio-tools
        older than the one pinned), for then `methods` would be encoded again."""
        raw = cls(server, methods)
        add_servicer(servicer, raw)
        if not raw.registered:
            raise RuntimeError(f"{type(servicer).__name__} was not registered by name: regenerate the gRPC code "
                               "(make gen)")

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """The generated code registers the same handlers again below; those are the ones that count."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        raw = {name: handler._replace(response_serializer=_bytes_as_they_are)  # type: ignore[attr-defined]
               if name in self._methods else handler for name, handler in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, raw),))
        self._server.add_registered_method_handlers(service, raw)  # type: ignore[attr-defined]
        self.registered = True


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:50051"
    database_url: str = "sqlite:///var/civicscore.db"
    rules_dir: Path = Path("rules")
    engine_workers: int | None = None
    engine_fault_delay_s: float = 0.0
    handler_threads: int = 16
    max_concurrent_rpcs: int = 64
    max_message_bytes: int = 32 * 1024 * 1024
    watch_rules: bool = True  # activate the rules folder's files when they change on disk
    tls_cert: Path | None = None  # TLS on `listen` (required unless it is a loopback address)
    tls_key: Path | None = None
    client_ca: Path | None = None  # with mtls_listen: a second listener requiring client certificates
    mtls_listen: str | None = None
    reflection: str = "authenticated"  # public | authenticated | off
    bootstrap_token_file: Path | None = None  # on a database without an administrator, create one
    rate_per_s: float = 50.0  # per identity
    rate_burst: int = 100
    max_in_flight_per_identity: int = 8
    # A rate-limited call's refusal is held back up to this long (0: answered at once); see RefusalHold.
    rate_limit_hold_s: float = 1.0
    # On SIGTERM, calls in flight get this long to finish (longer than an EvaluatePeriod of the demo
    # city, which takes about a second: see __main__'s --shutdown-grace); the rest are cancelled.
    shutdown_grace_s: float = 60.0
    # An idle WatchRecommendations sends a heartbeat this often, well within a proxy's read timeout.
    watch_heartbeat_s: float = 20.0
    # --redis and friends: per-identity limits shared by the replicas
    shared_limits: SharedLimitsConfig = field(default_factory=SharedLimitsConfig)
    metrics_listen: str | None = None  # host:port of the Prometheus endpoint (None: no metrics)
    db_pool_size: int = DEFAULT_POOL_SIZE  # most pooled database connections (PostgreSQL: no overflow)
    # A sign-in session unused this long ends (see civicscore.sessions; __main__'s --session-idle-minutes).
    session_idle_s: float = DEFAULT_IDLE.total_seconds()


def _transport(config: ServerConfig) -> tuple[grpc.ServerCredentials | None, grpc.ServerCredentials | None]:
    """(credentials of `listen`, of `mtls_listen`); plaintext only on loopback. Raises TlsConfigError."""
    if (config.tls_cert is None) != (config.tls_key is None):
        raise TlsConfigError("give both --tls-cert and --tls-key, or neither")
    if config.tls_cert is None or config.tls_key is None:
        if not is_loopback(config.listen):
            raise TlsConfigError(f"{config.listen} is not a loopback address: give --tls-cert and --tls-key "
                                 "(plaintext is allowed on 127.0.0.1 / localhost / ::1 only, for development)")
        if config.mtls_listen:
            raise TlsConfigError("--mtls-listen needs --tls-cert and --tls-key (the server's own certificate)")
        return None, None
    if config.mtls_listen is None and config.client_ca is not None:
        raise TlsConfigError("--client-ca is used by the mutual TLS listener: give --mtls-listen too")
    if config.mtls_listen is not None and config.client_ca is None:
        raise TlsConfigError("--mtls-listen needs --client-ca, the CA that signs client certificates")
    # The options fit together; only now read and check the files.
    main = server_credentials(config.tls_cert, config.tls_key)
    if config.mtls_listen is None:
        return main, None
    return main, server_credentials(config.tls_cert, config.tls_key, config.client_ca)


def _ruleset_applied(applied: Applied) -> None:
    if applied.activation is not None:
        metrics.ruleset_applied(applied.activation.seq, applied.activation.digest)


class CivicscoreServer:
    """A running civicscore: gRPC server plus the runtime it serves from."""

    def __init__(self, config: ServerConfig, extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
                 extra_access: Mapping[str, Permission | Access] | None = None) -> None:
        credentials, mtls_credentials = _transport(config)
        files = read_rule_files(config.rules_dir)

        def start_engine(ruleset: Ruleset) -> RulesEngine:
            return EnginePool(ruleset, workers=config.engine_workers, fault_delay_s=config.engine_fault_delay_s,
                              on_worker=metrics.engine_worker_event, reply_encoder=evaluation_wire.body_of)

        self.store = open_store(config.database_url, pool_size=config.db_pool_size)
        self.rulesets = Rulesets(self.store, start_engine=start_engine, on_applied=_ruleset_applied)
        try:
            self.rulesets.start(files, folder=str(config.rules_dir))
        except BaseException:
            self.rulesets.close()
            self.store.close()
            raise
        try:  # whatever fails from here (a taken port, a bad option) frees what was started, workers included
            self._assemble(config, credentials, mtls_credentials, extra_handlers, extra_access)
        except BaseException:
            self._abandon()
            raise

    def _assemble(self, config: ServerConfig, credentials: grpc.ServerCredentials | None,
                  mtls_credentials: grpc.ServerCredentials | None, extra_handlers: Sequence[grpc.GenericRpcHandler],
                  extra_access: Mapping[str, Permission | Access] | None) -> None:
        self._watch_rules = config.watch_rules
        self.runtime = Runtime(store=self.store, rulesets=self.rulesets,
                               rules_folder=str(config.rules_dir.resolve()) if config.watch_rules else "")
        self._rules_dir = config.rules_dir
        if config.bootstrap_token_file is not None:
            bootstrap_admin(self.store, config.bootstrap_token_file, now=self.runtime.clock(), clock=self.runtime.clock)
        self.authenticator = Authenticator(self.store, clock=self.runtime.clock,
                                           idle=IdlePolicy(dt.timedelta(seconds=config.session_idle_s)))
        self.refusals = RefusalAudit(self.store, clock=self.runtime.clock)
        self.metrics = metrics.serve(config.metrics_listen) if config.metrics_listen else None
        # Per identity, in Redis when configured (shared by the replicas), else local; started by start().
        self.limits = build_limits(config.shared_limits, rate_per_s=config.rate_per_s, burst=config.rate_burst,
                                   max_in_flight=config.max_in_flight_per_identity, on_change=self._limits_changed)
        interceptor = AccessInterceptor(
            self.authenticator, self.refusals, reflection=config.reflection,
            table={**METHOD_ACCESS, **(extra_access or {})},
            rate_limit=self.limits, in_flight=self.limits,
            trusted_proxies=TrustedProxies(config.shared_limits.trusted_proxies),
            observe_calls=metrics.call_finished if self.metrics is not None else None,
            # Held refusals sleep in handler threads: at most half of them, so other callers keep the rest.
            refusal_hold=RefusalHold(config.rate_per_s, max_hold_s=config.rate_limit_hold_s,
                                     per_identity=config.max_in_flight_per_identity,
                                     total=max(1, config.handler_threads // 2)))
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            # gRPC sets SO_REUSEPORT by default: a second server on a busy port would start and
            # share its traffic with the first, each with its own database. Refuse instead.
            ("grpc.so_reuseport", 0),
            # One identity may run max_in_flight_per_identity calls at once: a connection may not open more
            # streams than that (HTTP/2 SETTINGS), so a client that asks for more waits in its own
            # transport instead of making the server refuse it as fast as it can ask.
            ("grpc.max_concurrent_streams", config.max_in_flight_per_identity),
        ]
        self._handlers = futures.ThreadPoolExecutor(max_workers=config.handler_threads, thread_name_prefix="rpc")
        self._shutdown_grace_s = config.shutdown_grace_s
        self.server = grpc.server(
            self._handlers,
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
            options=options,
            # Authentication and limits first, then every request's bytes and field domains.
            interceptors=[interceptor, RequestCheckInterceptor(module.DESCRIPTOR for module in SERVICE_MODULES)],
        )
        rt = self.runtime
        units_pb2_grpc.add_UnitServiceServicer_to_server(UnitServicer(rt), self.server)
        assignments_pb2_grpc.add_AssignmentServiceServicer_to_server(AssignmentServicer(rt), self.server)
        outcomes_pb2_grpc.add_OutcomeServiceServicer_to_server(OutcomeServicer(rt), self.server)
        measurements_pb2_grpc.add_MeasurementServiceServicer_to_server(MeasurementServicer(rt), self.server)
        periods_pb2_grpc.add_PeriodServiceServicer_to_server(PeriodServicer(rt), self.server)
        RawReplies.register(self.server, evaluations_pb2_grpc.add_EvaluationServiceServicer_to_server,
                            EvaluationServicer(rt), {"GetEvaluation"})
        rulesets_pb2_grpc.add_RulesetServiceServicer_to_server(RulesetServicer(rt), self.server)
        identities_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(rt, self.authenticator),
                                                                  self.server)
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(rt), self.server)
        reports_pb2_grpc.add_ReportServiceServicer_to_server(ReportServicer(rt), self.server)
        reviews_pb2_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(rt, heartbeat_s=config.watch_heartbeat_s),
                                                             self.server)
        maintenance_pb2_grpc.add_MaintenanceServiceServicer_to_server(MaintenanceServicer(rt), self.server)
        extensions_pb2_grpc.add_ExtensionServiceServicer_to_server(ExtensionServicer(rt), self.server)
        obstacles_pb2_grpc.add_ObstacleServiceServicer_to_server(ObstacleServicer(rt), self.server)
        officials_pb2_grpc.add_OfficialServiceServicer_to_server(OfficialServicer(rt), self.server)
        if extra_handlers:
            self.server.add_generic_rpc_handlers(tuple(extra_handlers))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if config.reflection != "off":
            reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME),
                                                self.server)
        self.port = self._listen(config.listen, credentials)
        self.mtls_port = self._listen(config.mtls_listen, mtls_credentials) if config.mtls_listen else 0
        host = config.listen.rsplit(":", 1)[0]
        self.address = f"{host}:{self.port}"
        if credentials is None:
            log.warning("listening WITHOUT TLS on %s (loopback only, for development): tokens travel in clear "
                        "text; give --tls-cert and --tls-key for anything else", self.address)
        self._stopped = threading.Event()
        self._cut_short = threading.Event()
        active = self.rulesets.active()
        log.info("ruleset %s %s (%s) in force for the current quarter; rules folder %s%s", active.ruleset_id,
                 active.version, active.digest[:12], config.rules_dir, " (watched)" if config.watch_rules else "")

    def _abandon(self) -> None:
        """Free what a construction that failed part way had started: the gRPC server, its handler threads,
        the metrics listener, the refusal log's writer, the engine workers and the store."""
        for part in ("server", "_handlers", "metrics", "refusals"):
            started = getattr(self, part, None)
            if started is None:
                continue
            with contextlib.suppress(Exception):  # the error being raised is the one to report
                if part == "server":
                    started.stop(0)
                elif part == "_handlers":
                    started.shutdown(wait=False, cancel_futures=True)
                else:
                    started.close()
        with contextlib.suppress(Exception):
            self.rulesets.close()
        with contextlib.suppress(Exception):
            self.store.close()

    def _listen(self, address: str, credentials: grpc.ServerCredentials | None) -> int:
        try:
            port = (self.server.add_insecure_port(address) if credentials is None
                    else self.server.add_secure_port(address, credentials))
        except RuntimeError:
            port = 0
        if port == 0:
            raise OSError(f"cannot listen on {address}: the address is in use or not available "
                          "(is another civicscore running? stop it or pass --listen host:port)")
        return port

    def _limits_changed(self, state: LimitsState) -> None:
        """Report where the limits are kept: LIMITS_HEALTH is NOT_SERVING while Redis is configured but
        unreachable (each replica then applies its own limits); the server itself keeps serving."""
        serving = health_pb2.HealthCheckResponse.NOT_SERVING if state is LimitsState.FALLBACK \
            else health_pb2.HealthCheckResponse.SERVING
        self.health.set(LIMITS_HEALTH, serving)
        metrics.limits_state(shared=state is LimitsState.SHARED, fallback=state is LimitsState.FALLBACK)

    def start(self) -> None:
        self.limits.start()
        self.server.start()
        if self._watch_rules:  # while this replica leads the folder: one replica at a time
            self.rulesets.watch_folder(self._rules_dir)
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("civicscore serving on %s", self.address)

    def stop(self, grace: float | None = None) -> None:
        """Shut down: health NOT_SERVING and new calls refused (UNAVAILABLE: a load balancer sends them to
        another replica) at once, watches ended with their cursor, calls in flight given `grace` seconds
        (the configured shutdown grace by default) to finish, the rest cancelled and logged as cancelled
        by the shutdown; then free the engines and the store. Called again while calls are running
        (a second SIGTERM or Ctrl-C), it cuts the grace short."""
        if self._stopped.is_set():
            if grace is not None:
                self._cut_short.set()
            return
        self._stopped.set()
        grace = self._shutdown_grace_s if grace is None else grace
        self.runtime.shutdown.begun.set()  # watches end now and their clients resume elsewhere
        self.rulesets.stop_checks()  # a rule check in a child process ends now, not after the grace
        self.health.enter_graceful_shutdown()
        # gRPC is given more than the grace: the calls still running when it passes are cancelled here,
        # once `grace_over` is set, so that each of them knows the shutdown ended it, not its client.
        finished = self.server.stop(grace + _GRPC_GRACE_MARGIN_S)
        log.info("shutting down: new calls are refused (UNAVAILABLE); calls in flight have %g s to finish", grace)
        deadline = time.monotonic() + grace
        while not finished.is_set() and not self._cut_short.is_set() and time.monotonic() < deadline:
            finished.wait(min(_STOP_POLL_S, max(0.0, deadline - time.monotonic())))
        if not finished.is_set():
            self.runtime.shutdown.grace_over.set()
            ended = ("a second signal cut the grace short" if self._cut_short.is_set()
                     else f"the grace of {grace:g} s passed")
            log.warning("shutdown: %s with calls still running; cancelling them (their clients see UNAVAILABLE "
                        "and may retry on another replica)", ended)
            self.server.stop(None).wait()
        # Handlers of cancelled calls are still winding down (an evaluation notices within a moment and
        # logs why it stopped): let them finish before their engines and store close under them.
        drained = threading.Thread(target=self._handlers.shutdown, name="drain-handlers", daemon=True)
        drained.start()
        drained.join(_HANDLERS_DRAIN_S)
        self.limits.close()
        if self.metrics is not None:
            self.metrics.close()
        self.refusals.close()
        self.rulesets.close()
        self.store.close()
        log.info("civicscore stopped")

    def wait(self) -> None:
        self.server.wait_for_termination()
