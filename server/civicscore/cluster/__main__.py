"""`python -m civicscore.cluster` (`make cluster`): replicas on one PostgreSQL database behind nginx, until Ctrl-C.

The database is created when missing; the first replica loads the demo data into an empty one (and
creates the administrator, writing its token file) before the others start, so that happens once.
Every process runs in a session of its own: Ctrl-C reaches this tool alone, which then stops nginx
(no new calls) and the replicas (calls in flight finish), in that order.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from civicscore.cluster.database import PostgresUnreachable, ensure_database, postgres_url
from civicscore.cluster.nginx import Nginx, NginxMissing, find_nginx
from civicscore.cluster.replicas import HOST, Replica
from civicscore.store.connection import CONNECTIONS_OUTSIDE_POOL, DEFAULT_POOL_SIZE

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/civicscore"
START_TIMEOUT_S = 300.0  # the first replica loads and evaluates two quarters of demo data
STOP_TIMEOUT_S = 120.0  # a replica's shutdown grace, and some


class _Stop(Exception):
    """Ctrl-C or SIGTERM: stop the cluster."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m civicscore.cluster",
        description="Run civicscore replicas on one PostgreSQL database behind Debian's nginx (grpc_pass).",
        epilog="Arguments after -- go to every replica, e.g. -- --redis redis://127.0.0.1:6379/0")
    parser.add_argument("--database", default=os.environ.get("CIVICSCORE_CLUSTER_DATABASE", DEFAULT_DATABASE),
                        help="PostgreSQL URL; the database is created if missing (default %(default)s)")
    parser.add_argument("--listen", default="127.0.0.1:50051",
                        help="nginx's address, where clients connect; replicas take the next ports "
                             "(default %(default)s)")
    parser.add_argument("--replicas", type=int, default=3, help="replica processes (default %(default)s)")
    parser.add_argument("--workdir", type=Path, default=Path("var/cluster"),
                        help="logs, the admin token file and nginx's files (default %(default)s)")
    parser.add_argument("--rules", type=Path, default=Path("rules"), help="rules folder (default %(default)s)")
    parser.add_argument("--db-pool-size", type=int, default=DEFAULT_POOL_SIZE,
                        help="each replica's --db-pool-size (default %(default)s)")
    parser.add_argument("--no-demo-data", dest="demo_data", action="store_false",
                        help="do not load the demo data into an empty database")
    parser.add_argument("server_args", nargs="*", help="extra arguments for every replica (after --)")
    args = parser.parse_args(argv)
    if not 1 <= args.replicas <= 20:
        parser.error(f"--replicas must be from 1 to 20, not {args.replicas}")
    if args.db_pool_size < 1:
        parser.error(f"--db-pool-size must be at least 1, not {args.db_pool_size}")
    try:
        postgres_url(args.database)
    except ValueError as error:
        parser.error(str(error))
    host, _, port = args.listen.rpartition(":")
    if host != HOST or not port.isdigit() or not 0 < int(port) < 65536 - args.replicas:
        parser.error(f"--listen must be {HOST}:PORT (nginx and the replicas speak plaintext on loopback only), "
                     f"not {args.listen!r}")
    return args


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _say(message: str) -> None:
    print(message, flush=True)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    port = int(args.listen.rpartition(":")[2])
    replica_ports = [port + number for number in range(1, args.replicas + 1)]
    try:
        nginx_binary = find_nginx()
    except NginxMissing as missing:
        _say(f"make cluster: {missing}")
        return 2
    busy = [taken for taken in (port, *replica_ports) if _port_taken(taken)]
    if busy:
        _say(f"make cluster: port(s) {', '.join(map(str, busy))} on {HOST} are in use (is `make run` or another "
             "cluster running?); stop it, or give another --listen port")
        return 2
    try:
        created = ensure_database(args.database)
    except PostgresUnreachable as unreachable:
        _say(f"make cluster: {unreachable}")
        return 2
    url = postgres_url(args.database)
    _say(f"database {url.database} on {url.host or 'localhost'}:{url.port or 5432}: "
         f"{'created' if created else 'exists'}")

    workdir = args.workdir.resolve()
    token_file = workdir / "admin.token"
    replicas = [Replica(number, port=replica_port, folder=workdir / f"replica-{number}", database_url=args.database,
                        rules=args.rules.resolve(), token_file=token_file, pool_size=args.db_pool_size,
                        demo_data=args.demo_data and number == 1, extra_args=args.server_args)
                for number, replica_port in enumerate(replica_ports, start=1)]
    nginx = Nginx(workdir / "nginx", listen=args.listen, upstreams=[r.address for r in replicas], binary=nginx_binary)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        try:
            _start(replicas, nginx)
        except (RuntimeError, TimeoutError, OSError) as error:
            _say(f"make cluster: could not start: {error}")
            return 1
        _describe(args, replicas, nginx, token_file)
        _watch(replicas, nginx)
    except _Stop as stop:
        _say(f"\n{stop}: stopping nginx, then the replicas (calls in flight finish)")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave processes behind
            signal.signal(signum, signal.SIG_IGN)
        _stop(replicas, nginx)
    return 0


def _start(replicas: list[Replica], nginx: Nginx) -> None:
    """The first replica alone (demo data, administrator), then the others together, then nginx."""
    first, others = replicas[0], replicas[1:]
    _say(f"starting replica 1 on {first.address} (log {first.log_path})")
    first.start()
    first.wait_serving(START_TIMEOUT_S)
    if others:
        _say(f"starting replicas 2-{len(replicas)}")
    for replica in others:
        replica.start()
    for replica in others:  # waited for here, not in threads, so that Ctrl-C stops the wait at once
        replica.wait_serving(START_TIMEOUT_S)
    nginx.start()


def _describe(args: argparse.Namespace, replicas: list[Replica], nginx: Nginx, token_file: Path) -> None:
    peak = args.db_pool_size + CONNECTIONS_OUTSIDE_POOL
    _say(f"\ncivicscore cluster: {len(replicas)} replicas behind nginx on {nginx.listen}")
    for replica in replicas:
        _say(f"  replica {replica.number}  {replica.address}  pid {replica.pid}  log {replica.log_path}")
    _say(f"  nginx      {nginx.listen}  pid {nginx.pid}  config {nginx.config_path}  access log {nginx.access_log}")
    _say(f"  database   {postgres_url(args.database).render_as_string(hide_password=True)}: at most "
         f"{len(replicas)} x {peak} = {len(replicas) * peak} connections (pool {args.db_pool_size} + "
         f"{CONNECTIONS_OUTSIDE_POOL} each)")
    if token_file.exists():
        _say(f"  admin token: {token_file}  (export CIVICSCORE_TOKEN_FILE={token_file})")
    else:
        _say(f"  admin token: none written: the database had an administrator already (a new database writes "
             f"{token_file})")
    _say(f"\ntry: {Path(sys.executable).parent / 'civicscore'} --server {nginx.listen} --token-file {token_file} "
         "periods\n     (kill -9 a replica's pid: nginx routes around it)")
    _say("Ctrl-C stops everything.")


def _watch(replicas: list[Replica], nginx: Nginx) -> None:
    """Report each process that ends, once, until stopped; the cluster keeps serving on what is left."""
    reported: set[int] = set()
    nginx_reported = False
    while True:
        for replica in replicas:
            code = replica.exit_code()
            if code is not None and replica.number not in reported:
                reported.add(replica.number)
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                _say(f"replica {replica.number} (pid {replica.pid}) ended with {how}; nginx sends calls to the "
                     f"others. Its log: {replica.log_path}")
        if not nginx.running and not nginx_reported:
            nginx_reported = True
            _say(f"nginx ended: clients cannot reach the cluster. Its log: {nginx.error_log}")
        time.sleep(1.0)


def _stop(replicas: list[Replica], nginx: Nginx) -> None:
    nginx.stop(graceful=False)
    with ThreadPoolExecutor(len(replicas)) as stopping:
        codes = list(stopping.map(lambda replica: replica.stop(STOP_TIMEOUT_S), replicas))
    _say(f"stopped: nginx and {sum(code is not None for code in codes)} replica(s)")


if __name__ == "__main__":
    sys.exit(main())
