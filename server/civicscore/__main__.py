"""`python -m civicscore`: run the server until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import grpc

from civicscore.app import CivicscoreServer, ServerConfig
from civicscore.auth.policy import Access, Permission
from civicscore.limits import options as limit_options
from civicscore.passwords import SESSION
from civicscore.rulesets import RulesetRefused
from civicscore.sessions import DEFAULT_IDLE
from civicscore.store.connection import DEFAULT_POOL_SIZE
from civicscore.store.diagnosis import explain_failure

if TYPE_CHECKING:
    from civicscore.console.server import ConsoleServer

MAX_IDLE_MINUTES = int(SESSION.total_seconds() // 60)  # a sign-in session's whole life


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m civicscore", description="Run the civicscore gRPC server.")
    parser.add_argument("--listen", default=os.environ.get("CIVICSCORE_LISTEN", "127.0.0.1:50051"),
                        help="host:port to listen on; port 0 picks a free one (default %(default)s)")
    parser.add_argument("--database", default=os.environ.get("CIVICSCORE_DATABASE", "sqlite:///var/civicscore.db"),
                        help="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://... (default %(default)s)")
    parser.add_argument("--rules", type=Path, default=Path(os.environ.get("CIVICSCORE_RULES", "rules")),
                        help="folder of rule files (default %(default)s)")
    parser.add_argument("--no-watch-rules", dest="watch_rules", action="store_false",
                        help="do not activate the rules folder's files when they change on disk")
    parser.add_argument("--workers", type=int, default=None, help="engine worker processes (default: one per core)")
    parser.add_argument("--demo-data", action="store_true",
                        help="on an empty database, load Hanoi's units and a synthetic quarter of data")
    parser.add_argument("--port-file", type=Path, help="write the bound port to this file once serving")
    parser.add_argument("--tls-cert", type=Path, default=_env_path("CIVICSCORE_TLS_CERT"),
                        help="server certificate (PEM) for TLS on --listen; required unless it is a loopback address")
    parser.add_argument("--tls-key", type=Path, default=_env_path("CIVICSCORE_TLS_KEY"),
                        help="the certificate's private key (PEM)")
    parser.add_argument("--client-ca", type=Path, default=_env_path("CIVICSCORE_CLIENT_CA"),
                        help="CA (PEM) that signs client certificates, for --mtls-listen")
    parser.add_argument("--mtls-listen", default=os.environ.get("CIVICSCORE_MTLS_LISTEN"),
                        help="host:port of a second listener that requires a client certificate (mutual TLS)")
    parser.add_argument("--mtls-port-file", type=Path, help="write the bound mutual-TLS port to this file")
    parser.add_argument("--reflection", choices=("public", "authenticated", "off"),
                        default=os.environ.get("CIVICSCORE_REFLECTION", "authenticated"),
                        help="who may use server reflection (default %(default)s)")
    parser.add_argument("--bootstrap-admin-token-file", type=Path,
                        default=_env_path("CIVICSCORE_BOOTSTRAP_TOKEN_FILE"),
                        help="on a database without an administrator, create one and write its token here (0600)")
    parser.add_argument("--rate-limit", type=float, default=50.0, help="calls per second per identity (default 50)")
    parser.add_argument("--rate-burst", type=int, default=100, help="burst allowance per identity (default 100)")
    parser.add_argument("--rate-limit-hold", type=float, default=1.0,
                        help="hold the refusal of a rate-limited call up to this many seconds, about as long as "
                             "its caller should have waited, so that a client ignoring RetryInfo cannot flood "
                             "(0: refuse at once; default 1)")
    parser.add_argument("--max-in-flight", type=int, default=8,
                        help="calls one identity may have running at once (default 8)")
    parser.add_argument("--db-pool-size", type=int, default=DEFAULT_POOL_SIZE,
                        help="most database connections in the pool (PostgreSQL: a few more of the process's own; "
                             "keep replicas x (pool + those) within max_connections; default %(default)s)")
    parser.add_argument("--max-concurrent-rpcs", type=int, default=64,
                        help="calls running at once in all; more get RESOURCE_EXHAUSTED (default 64)")
    limit_options.add_arguments(parser)  # --redis, --redis-prefix, ..., --trusted-proxy
    parser.add_argument("--metrics-listen", default=os.environ.get("CIVICSCORE_METRICS_LISTEN") or None,
                        metavar="HOST:PORT", help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off)")
    parser.add_argument("--shutdown-grace", type=float, default=60.0, metavar="SECONDS",
                        help="on SIGTERM, refuse new calls at once and give calls in flight this long to finish "
                             "before cancelling them; a second SIGTERM or Ctrl-C cancels them at once (default "
                             "%(default)g: an EvaluatePeriod of Hanoi takes about a second, of 1,100 units about two)")
    parser.add_argument("--watch-heartbeat", type=float, default=20.0, metavar="SECONDS",
                        help="an idle WatchRecommendations sends a heartbeat this often, so that a proxy's read "
                             "timeout (nginx: 60 s) does not cut it (default %(default)g)")
    parser.add_argument("--session-idle-minutes", type=int, default=int(DEFAULT_IDLE.total_seconds() // 60),
                        metavar="MINUTES",
                        help="a person's sign-in session (SignIn) unused this long ends, on every replica: its "
                             "use is recorded in the database about once a minute (1-720; sessions end 12 hours "
                             "after sign-in anyway; default %(default)s)")
    parser.add_argument("--console-listen", default=os.environ.get("CIVICSCORE_CONSOLE_LISTEN") or None,
                        metavar="HOST:PORT", help="serve the committee's web console here (e.g. 127.0.0.1:8080; "
                        "HTTPS with --tls-cert/--tls-key off loopback); off by default")
    parser.add_argument("--bootstrap-admin-password-file", type=Path, metavar="FILE",
                        help="with --console-listen and --bootstrap-admin-token-file: give the bootstrap administrator "
                        "a random password for its first console sign-in, written to FILE (mode 0600)")
    parser.add_argument("--console-port-file", type=Path, help="write the console's bound port to this file")
    parser.add_argument("--console-candidates", type=Path, default=_env_path("CIVICSCORE_CONSOLE_CANDIDATES"),
                        metavar="FOLDER", help="folder whose sub-folders hold candidate rule sets that policy "
                        "staff may simulate from the console (what-if)")
    parser.add_argument("--console-grpc-ca", type=Path, default=None, metavar="PEM",
                        help="CA certificate the console trusts for this server's TLS (default: --tls-cert)")
    parser.add_argument("--log-level", default=os.environ.get("CIVICSCORE_LOG_LEVEL", "INFO"))
    parser.add_argument("--engine-fault-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    # Tests only: an idle limit in seconds, below the minute the public flag allows (overrides it).
    parser.add_argument("--session-idle-seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.shared_limits = limit_options.config_from_arguments(args, parser)
    limits = (("--rate-limit", args.rate_limit, None), ("--rate-burst", args.rate_burst, 1),
              ("--rate-limit-hold", args.rate_limit_hold, 0), ("--max-in-flight", args.max_in_flight, 1),
              ("--shutdown-grace", args.shutdown_grace, 0), ("--watch-heartbeat", args.watch_heartbeat, None),
              ("--max-concurrent-rpcs", args.max_concurrent_rpcs, 1), ("--db-pool-size", args.db_pool_size, 1))
    for flag, value, least in limits:
        if least is None and not value > 0:
            parser.error(f"{flag} must be greater than 0, not {value}")
        if least is not None and value < least:
            parser.error(f"{flag} must be at least {least}, not {value}")
    if not 1 <= args.session_idle_minutes <= MAX_IDLE_MINUTES:
        parser.error(f"--session-idle-minutes must be from 1 to {MAX_IDLE_MINUTES} (a sign-in session ends 12 hours "
                     f"after sign-in anyway), not {args.session_idle_minutes}")
    if args.session_idle_seconds is not None and not args.session_idle_seconds > 0:
        parser.error(f"--session-idle-seconds must be greater than 0, not {args.session_idle_seconds}")
    args.session_idle_s = (args.session_idle_seconds if args.session_idle_seconds is not None
                           else args.session_idle_minutes * 60.0)
    return args


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def main(argv: list[str] | None = None, *, extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
         extra_access: Mapping[str, Permission | Access] | None = None) -> int:
    """Run the server; `extra_handlers` (with their `extra_access`) let the benchmarks add baseline RPCs."""
    args = _parse(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("civicscore")
    config = ServerConfig(listen=args.listen, database_url=args.database, rules_dir=args.rules,
                          engine_workers=args.workers, engine_fault_delay_s=args.engine_fault_delay,
                          watch_rules=args.watch_rules, tls_cert=args.tls_cert, tls_key=args.tls_key,
                          client_ca=args.client_ca, mtls_listen=args.mtls_listen, reflection=args.reflection,
                          bootstrap_token_file=args.bootstrap_admin_token_file, rate_per_s=args.rate_limit,
                          shutdown_grace_s=args.shutdown_grace, watch_heartbeat_s=args.watch_heartbeat,
                          rate_burst=args.rate_burst, max_in_flight_per_identity=args.max_in_flight,
                          rate_limit_hold_s=args.rate_limit_hold, shared_limits=args.shared_limits,
                          metrics_listen=args.metrics_listen,
                          max_concurrent_rpcs=args.max_concurrent_rpcs, db_pool_size=args.db_pool_size,
                          session_idle_s=args.session_idle_s)
    try:  # opening the store creates a SQLite file's missing folder, or says why it cannot
        server = CivicscoreServer(config, extra_handlers, extra_access)
    except RulesetRefused as refused:  # a broken rules folder and no ruleset in force to fall back on
        log.error("cannot start: the rules folder %s has %d problem(s):\n%s", config.rules_dir, len(refused.issues),
                  "\n".join(f"  {issue}" for issue in refused.issues))
        return 2
    except Exception as exc:  # a bad or unusable database, a busy port: say what and why, without a traceback
        log.error("cannot start: %s", explain_failure(exc, config.database_url))
        return 2
    if args.demo_data:
        from civicscore.demo import load_demo_data

        try:
            load_demo_data(server.runtime)
        except Exception as exc:  # a disk that fills while the demo data loads: the same refusal, no traceback
            server.stop()
            log.error("cannot start: loading the demo data failed: %s", explain_failure(exc, config.database_url))
            return 2

    signals: list[int] = []

    def _stop(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)
        name = signal.Signals(signum).name
        if len(signals) > 1:  # runs nested in the first signal's stop(), which it cuts short
            log.warning("signal %s received again: cancelling the calls still running now", name)
            server.stop(grace=0)
            return
        log.info("signal %s received; shutting down (a second one cancels the calls still running)", name)
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    console = None
    if args.console_listen:
        from civicscore.console.server import ConsoleRefused

        try:
            console = start_console(args, server.port)
        except ConsoleRefused as refused:
            server.stop(grace=0)
            log.error("cannot start: %s", refused)
            return 2
        log.info("committee console at %s", console.url)
        if args.bootstrap_admin_password_file and args.bootstrap_admin_token_file:
            from civicscore.console.server import first_sign_in

            identity = first_sign_in(f"127.0.0.1:{server.port}", args.bootstrap_admin_token_file,
                                     args.bootstrap_admin_password_file)
            if identity:
                log.warning("first sign-in to the console: identity %s, password in %s (readable by this user only; "
                            "change it after signing in)", identity, args.bootstrap_admin_password_file)
    ports = ((args.mtls_port_file, server.mtls_port), (args.console_port_file, console.port if console else None),
             (args.port_file, server.port))
    for path, port in ports:
        if path and port is not None:  # the main port file last: waiting for it means all are written
            tmp = path.with_suffix(".tmp")
            tmp.write_text(str(port))
            tmp.replace(path)
    # What start-up made (modules, the schema, the ruleset, logged as a count) lives as long as the process:
    # out of the collector's reach, a full collection, which a large evaluation's results set off, scans only
    # what calls made since. Measured in-process: the full collections of an evaluation of 1,100 units took
    # 0.34-0.56 s, and 0.01-0.03 s once start-up's objects were frozen.
    gc.collect()
    gc.freeze()
    log.debug("start-up objects frozen out of garbage collection: %d", gc.get_freeze_count())
    server.wait()
    if console is not None:
        console.stop()
    server.stop()
    return 0


def start_console(args: argparse.Namespace, grpc_port: int) -> ConsoleServer:
    """The console beside this server, a client of its gRPC port (on loopback unless it listens elsewhere)."""
    from civicscore.console.server import ConsoleConfig, ConsoleServer

    host = args.listen.rpartition(":")[0].strip("[]")
    target_host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "localhost") else host
    if ":" in target_host:
        target_host = f"[{target_host}]"
    tls = args.tls_cert is not None and args.tls_key is not None
    console = ConsoleServer(ConsoleConfig(
        listen=args.console_listen, grpc_target=f"{target_host}:{grpc_port}",
        tls_cert=args.tls_cert if tls else None, tls_key=args.tls_key if tls else None,
        grpc_ca=(args.console_grpc_ca or args.tls_cert) if tls else None, candidates_root=args.console_candidates))
    console.start()
    return console


if __name__ == "__main__":
    sys.exit(main())
