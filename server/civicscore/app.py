"""Build the gRPC server from configuration: store, rules engine, servicers, health, reflection."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from civicscore.api.audit_servicers import AuditServicer
from civicscore.api.identity_servicers import IdentityServicer
from civicscore.api.ingest_servicers import (
    AssignmentServicer,
    MeasurementServicer,
    OutcomeServicer,
    UnitServicer,
)
from civicscore.api.maintenance_servicers import MaintenanceServicer
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
from civicscore.ratelimit import ConcurrencyLimiter, RateLimiter, RefusalHold
from civicscore.rulebook import FolderWatcher, RulesetRefused, RulesetRegistry, read_rule_files
from civicscore.runtime import Runtime
from civicscore.store.sql import open_store
from civicscore.tls import TlsConfigError, is_loopback, server_credentials
from civicscore_api.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    evaluations_pb2,
    evaluations_pb2_grpc,
    identities_pb2,
    identities_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
    measurements_pb2,
    measurements_pb2_grpc,
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
)
SERVICE_MODULES = tuple(module for module, _ in _SERVICES)
SERVICE_NAMES = tuple(module.DESCRIPTOR.services_by_name[name].full_name for module, name in _SERVICES)


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


class CivicscoreServer:
    """A running civicscore: gRPC server plus the runtime it serves from."""

    def __init__(self, config: ServerConfig, extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
                 extra_access: Mapping[str, Permission | Access] | None = None) -> None:
        credentials, mtls_credentials = _transport(config)
        files = read_rule_files(config.rules_dir)

        def engine_factory(rule_files: Mapping[str, str]) -> RulesEngine:
            # The pool validates and compiles the ruleset before starting any worker.
            return EnginePool(rule_files, workers=config.engine_workers, fault_delay_s=config.engine_fault_delay_s)

        self.store = open_store(config.database_url)
        self.rulesets = RulesetRegistry(self.store, engine_factory=engine_factory)
        try:
            self.rulesets.start(files, folder=str(config.rules_dir))
        except BaseException:
            self.rulesets.close()
            self.store.close()
            raise
        self.watcher = (FolderWatcher(config.rules_dir, self._folder_changed) if config.watch_rules else None)
        self.runtime = Runtime(store=self.store, rulesets=self.rulesets,
                               rules_folder=str(config.rules_dir.resolve()) if config.watch_rules else "")
        self._rules_dir = config.rules_dir
        if config.bootstrap_token_file is not None:
            bootstrap_admin(self.store, config.bootstrap_token_file, now=self.runtime.clock(), clock=self.runtime.clock)
        self.authenticator = Authenticator(self.store, clock=self.runtime.clock)
        self.refusals = RefusalAudit(self.store, clock=self.runtime.clock)
        interceptor = AccessInterceptor(
            self.authenticator, self.refusals, reflection=config.reflection,
            table={**METHOD_ACCESS, **(extra_access or {})},
            rate_limit=RateLimiter(config.rate_per_s, config.rate_burst),
            in_flight=ConcurrencyLimiter(config.max_in_flight_per_identity),
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
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.handler_threads, thread_name_prefix="rpc"),
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
        evaluations_pb2_grpc.add_EvaluationServiceServicer_to_server(EvaluationServicer(rt), self.server)
        rulesets_pb2_grpc.add_RulesetServiceServicer_to_server(RulesetServicer(rt), self.server)
        identities_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(rt, self.authenticator),
                                                                  self.server)
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(rt), self.server)
        reports_pb2_grpc.add_ReportServiceServicer_to_server(ReportServicer(rt), self.server)
        reviews_pb2_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(rt), self.server)
        maintenance_pb2_grpc.add_MaintenanceServiceServicer_to_server(MaintenanceServicer(rt), self.server)
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
        active = self.rulesets.active()
        log.info("ruleset %s %s (%s) in force for the current quarter; rules folder %s%s", active.ruleset_id,
                 active.version, active.digest[:12], config.rules_dir, " (watched)" if config.watch_rules else "")

    def _listen(self, address: str, credentials: grpc.ServerCredentials | None) -> int:
        try:
            port = (self.server.add_insecure_port(address) if credentials is None
                    else self.server.add_secure_port(address, credentials))
        except RuntimeError:
            port = 0
        if port == 0:
            self.refusals.close()
            self.rulesets.close()
            self.store.close()
            raise OSError(f"cannot listen on {address}: the address is in use or not available "
                          "(is another civicscore running? stop it or pass --listen host:port)")
        return port

    def _folder_changed(self, files: dict[str, str]) -> None:
        # A refusal is logged and reported by GetRulesetStatus; the ruleset in force keeps serving.
        with contextlib.suppress(RulesetRefused):
            self.rulesets.activate_folder(files, folder=str(self._rules_dir))

    def start(self) -> None:
        self.server.start()
        if self.watcher is not None:
            self.watcher.start()
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("civicscore serving on %s", self.address)

    def stop(self, grace: float = 10.0) -> None:
        """Report NOT_SERVING, let running calls finish within `grace`, then free the engine and store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.rulesets.stop_checks()  # a rule check in a child process ends now, not after the grace
        self.health.enter_graceful_shutdown()
        if self.watcher is not None:
            self.watcher.stop()
        self.server.stop(grace).wait()
        self.refusals.close()
        self.rulesets.close()
        self.store.close()
        log.info("civicscore stopped")

    def wait(self) -> None:
        self.server.wait_for_termination()
