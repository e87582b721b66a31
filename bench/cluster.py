"""The cluster figures of `make bench` (issue 12): (g)-(i), each with 1 and then 3 replicas in the same run.

(g) outcomes/s through SubmitOutcomes (batches of 1,000, each with an idempotency key) via nginx;
(h) GetEvaluation calls/s via nginx, with p50/p99;
(i) audited writes/s: UpsertUnits of one unit whose name changes, so each call appends one entry to
    the audit chain (as every write that changes something does: outcome batches, units,
    assignments, measurements, targets, identities and credentials, reviews, activations).

Each configuration runs `make cluster`'s own pieces (civicscore.cluster: a fresh PostgreSQL database,
Replica processes, Debian's nginx with grpc_pass), the first replica loading the demo data, and is
stopped and its database dropped afterwards. Load comes from several client PROCESSES (a Python gRPC
client is bound by its GIL), all on this machine: the CPU they, the replicas, nginx and PostgreSQL
use in each window is measured and reported, so that nobody mistakes a CPU-bound ratio for a
scaling result. Without nginx or PostgreSQL the figures are skipped, loudly.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import resource
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from civicscore.cluster.database import PostgresUnreachable, create_fresh_database, drop_database, postgres_url
from civicscore.cluster.nginx import Nginx, NginxMissing, find_nginx
from civicscore.cluster.processes import free_port
from civicscore.cluster.replicas import HOST, Replica
from civicscore_api.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    evaluations_pb2,
    evaluations_pb2_grpc,
    outcomes_pb2,
    units_pb2,
    units_pb2_grpc,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 1000
POOL_SIZE = 8  # per replica: 3 x (8 + 3) connections leave room for other users of a shared PostgreSQL
# The calls all come from one identity, far faster than the default per-identity limits.
REPLICA_ARGS = ("--workers", "1", "--rate-limit", "1000000", "--rate-burst", "1000000", "--max-in-flight", "1000",
                "--shutdown-grace", "5", "--no-watch-rules")
START_TIMEOUT_S = 300.0
WARM_UP_S = 1.0
# Placeholders of fixed width, replaced in serialised requests: a new batch costs a bytes.replace,
# not the client CPU of building 1,000 messages (the same length keeps the protobuf valid).
COUNTER = b"n000000"
SUBMIT = "/civicscore.v1.OutcomeService/SubmitOutcomes"
GET = "/civicscore.v1.EvaluationService/GetEvaluation"
UPSERT_UNITS = "/civicscore.v1.UnitService/UpsertUnits"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the cluster figures; defaults from CIVICSCORE_BENCH_CLUSTER_* for a quick run."""
    env = os.environ.get
    parser.add_argument("--cluster-seconds", type=float, default=float(env("CIVICSCORE_BENCH_CLUSTER_SECONDS", "8")),
                        help="(g)-(i): measured seconds of each figure and configuration")
    parser.add_argument("--cluster-clients", type=int, default=int(env("CIVICSCORE_BENCH_CLUSTER_CLIENTS", "4")),
                        help="(g)-(i): client processes")
    parser.add_argument("--cluster-threads", type=int, default=int(env("CIVICSCORE_BENCH_CLUSTER_THREADS", "4")),
                        help="(g)-(i): threads (calls in flight) per client process")
    parser.add_argument("--no-cluster", action="store_true", help="skip the cluster figures (g)-(i)")
    parser.add_argument("--only-cluster", action="store_true",
                        help="run the cluster figures (g)-(i) alone; RESULTS.md is not rewritten")


def cluster_figures(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """(g)-(i) with 1 and 3 replicas, or {"skipped": why} when nginx or PostgreSQL is missing."""
    if args.no_cluster:
        return _skip("--no-cluster was given")
    try:
        nginx_binary = find_nginx()
    except NginxMissing as missing:
        return _skip(str(missing))
    base_url = (os.environ.get("CIVICSCORE_BENCH_POSTGRES_URL") or os.environ.get("CIVICSCORE_TEST_POSTGRES_URL")
                or DEFAULT_POSTGRES_URL)
    try:
        settings = _postgres_settings(base_url)
    except (PostgresUnreachable, ValueError) as unreachable:
        return _skip(str(unreachable))
    started = time.perf_counter()
    results: dict[str, Any] = {"cores": os.cpu_count() or 1, "clients": args.cluster_clients,
                               "threads": args.cluster_threads, "seconds": args.cluster_seconds, "batch": BATCH,
                               "pool_size": POOL_SIZE, "postgres": settings}
    for replicas in (1, 3):
        results[f"r{replicas}"] = _configuration(out / f"cluster-{replicas}", base_url, nginx_binary, replicas, args)
    for figure, key in (("g", "outcomes_per_s"), ("h", "calls_per_s"), ("i", "calls_per_s")):
        one, three = results["r1"][figure][key], results["r3"][figure][key]
        results[f"ratio_{figure}"] = round(three / one, 2) if one else None
    results["wall_s"] = round(time.perf_counter() - started, 1)
    _print(results)
    return results


def _skip(reason: str) -> dict[str, Any]:
    print(f"\n*** (g)-(i) CLUSTER FIGURES SKIPPED: {reason} ***\n", flush=True)
    return {"skipped": reason}


def _postgres_settings(url: str) -> dict[str, str]:
    """PostgreSQL's durability settings (what a commit waits for), reachable or PostgresUnreachable."""
    engine = create_engine(postgres_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {name: str(connection.execute(text(f"SHOW {name}")).scalar()) for name in
                    ("server_version", "synchronous_commit", "fsync", "wal_sync_method", "commit_delay")}
    except OperationalError as error:
        raise PostgresUnreachable(f"PostgreSQL at {postgres_url(url).render_as_string(hide_password=True)} is "
                                  "not reachable: "
                                  f"{str(error.orig).strip().splitlines()[0] if error.orig else error}") from error
    finally:
        engine.dispose()


# -- one configuration: a fresh database, replicas, nginx ---------------------------------------------

@contextlib.contextmanager
def _running_cluster(folder: Path, base_url: str, nginx_binary: str, count: int) -> Iterator[tuple[Any, ...]]:
    """`count` replicas on a fresh database behind nginx: (nginx address, token, database URL, replicas, nginx)."""
    database_url = create_fresh_database(base_url, prefix="civicscore_bench")
    token_file = folder / "admin.token"
    replicas = [Replica(number, port=free_port(HOST), folder=folder / f"replica-{number}", database_url=database_url,
                        rules=ROOT / "rules", token_file=token_file, pool_size=POOL_SIZE, demo_data=number == 1,
                        extra_args=REPLICA_ARGS) for number in range(1, count + 1)]
    nginx = Nginx(folder / "nginx", listen=f"{HOST}:{free_port(HOST)}", upstreams=[r.address for r in replicas],
                  binary=nginx_binary)
    try:
        replicas[0].start()  # alone: it loads the demo data and creates the administrator
        replicas[0].wait_serving(START_TIMEOUT_S)
        for replica in replicas[1:]:
            replica.start()
        for replica in replicas[1:]:
            replica.wait_serving(START_TIMEOUT_S)
        nginx.start()
        _wait_through_nginx(nginx.listen)
        yield nginx.listen, token_file.read_text().strip(), database_url, replicas, nginx
    finally:
        nginx.stop(graceful=False)
        for replica in replicas:
            replica.stop(60.0)
        drop_database(database_url)


def _wait_through_nginx(address: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)


def _configuration(folder: Path, base_url: str, nginx_binary: str, count: int,
                   args: argparse.Namespace) -> dict[str, Any]:
    clients, threads, seconds = args.cluster_clients, args.cluster_threads, args.cluster_seconds
    slots = clients * threads
    print(f"(g)-(i) {count} replica(s): fresh database, demo data, nginx ...", flush=True)
    started = time.perf_counter()
    with _running_cluster(folder, base_url, nginx_binary, count) as (address, token, database_url, replicas, nginx):
        startup = time.perf_counter() - started
        names = _load_fixture(address, token, slots)
        pids = {"replicas": [pid for r in replicas for pid in _tree(r.pid)], "nginx": _tree(nginx.pid),
                "postgres": _backends(database_url)}
        out: dict[str, Any] = {"replicas": count, "startup_s": round(startup, 1), "evaluation_names": len(names)}
        with _ClientPool(clients, address, token) as pool:
            for figure, kind, extra in (("g", "submit", {}), ("h", "read", {"names": names}), ("i", "audit", {})):
                before = _count(database_url, "SELECT count(*) FROM audit_events")
                phase = _measure(pool, {"kind": kind, "threads": threads, "seconds": seconds, **extra},
                                 pids, database_url)
                phase["audit_entries"] = _count(database_url, "SELECT count(*) FROM audit_events") - before
                if kind == "submit":
                    phase["outcomes_per_s"] = round(phase["calls_per_s"] * BATCH)
                out[figure] = phase
                _print_phase(figure, count, phase)
    return out


def _load_fixture(address: str, token: str, slots: int) -> list[str]:
    """Units and assignments for the writers (each writer thread its own, so writers never wait on each
    other's rows), and the names of the demo data's evaluations for the readers."""
    metadata = _bearer(token)
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date()  # Hanoi's day, as the server checks
    with grpc.insecure_channel(address) as channel:
        units_stub = units_pb2_grpc.UnitServiceStub(channel)
        unit_list = [units_pb2.Unit(code=f"CB-{slot:03d}", display_name_vi=f"Đơn vị thử nghiệm {slot}",
                                    display_name_en=f"Cluster bench unit {slot}", kind=units_pb2.UNIT_KIND_WARD,
                                    block="bench", active=True) for slot in range(slots)]
        units_stub.UpsertUnits(units_pb2.UpsertUnitsRequest(units=unit_list), timeout=120, metadata=metadata)
        assignment_list = [assignments_pb2.Assignment(
            assignment_id=f"CB-{slot:03d}-{k:04d}", unit=f"units/CB-{slot:03d}", title=f"Nhiệm vụ thử nghiệm {k}",
            area=assignments_pb2.AREA_PAR, source_document="BENCH",
            assigned_on=(today - dt.timedelta(days=40)).isoformat(), due_on=(today - dt.timedelta(days=10)).isoformat())
            for slot in range(slots) for k in range(BATCH)]
        stub = assignments_pb2_grpc.AssignmentServiceStub(channel)
        for i in range(0, len(assignment_list), 5000):
            stub.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=assignment_list[i:i + 5000]),
                                   timeout=120, metadata=metadata)
        evaluations = evaluations_pb2_grpc.EvaluationServiceStub(channel)
        names: list[str] = []
        for quarter in _recent_quarters(today):
            listed = evaluations.ListEvaluations(evaluations_pb2.ListEvaluationsRequest(
                parent=f"periods/{quarter}", page_size=1000), timeout=60, metadata=metadata)
            names.extend(e.name for e in listed.evaluations)
    if not names:
        raise RuntimeError("the demo data has no evaluations to read")
    return names


def _recent_quarters(today: dt.date) -> list[str]:
    """The two quarters before today's, which the demo data evaluates."""
    index = today.year * 4 + (today.month - 1) // 3
    return [f"{(index - back) // 4}-Q{(index - back) % 4 + 1}" for back in (2, 1)]


# -- client processes ---------------------------------------------------------------------------------

class _ClientPool:
    """Client processes (spawned: gRPC and fork do not mix) that run one phase at a time on a shared clock."""

    def __init__(self, count: int, address: str, token: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for index in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=client_main, args=(index, theirs, address, token), daemon=True)
            process.start()
            theirs.close()  # else a client that dies would leave our recv() waiting for ever
            self.pipes.append(ours)
            self.processes.append(process)

    def __enter__(self) -> _ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()

    def prepare(self, spec: dict[str, Any]) -> None:
        for pipe in self.pipes:
            pipe.send(spec)
        for pipe in self.pipes:
            ready = pipe.recv()
            if ready != "ready":
                raise RuntimeError(f"a client process could not prepare: {ready}")

    def go(self, start_at: float) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send(start_at)
        return [pipe.recv() for pipe in self.pipes]


def _measure(pool: _ClientPool, spec: dict[str, Any], pids: dict[str, list[int]], database_url: str
             ) -> dict[str, Any]:
    """One phase: every client process calls from start_at - WARM_UP_S; calls ending within the window count."""
    seconds = float(spec["seconds"])
    pool.prepare(spec)
    start_at = time.monotonic() + WARM_UP_S + 0.2
    end_at = start_at + seconds
    groups = dict(pids)
    snapshots: dict[str, dict[str, float]] = {}

    def snapshot(key: str, at: float) -> None:
        time.sleep(max(0.0, at - time.monotonic()))
        if key == "start":  # after the warm-up: the replicas' pools have opened their sessions
            groups["postgres"] = _backends(database_url)
        snapshots[key] = _cpu_now(groups)

    waiting: list[int] = []
    helpers = [threading.Thread(target=snapshot, args=("start", start_at)),
               threading.Thread(target=snapshot, args=("end", end_at)),
               threading.Thread(target=_sample_lock_waits, args=(database_url, start_at, end_at, waiting))]
    for helper in helpers:
        helper.start()
    replies = pool.go(start_at)
    for helper in helpers:
        helper.join()
    calls = sum(r["calls"] for r in replies)
    latencies = sorted(ms for r in replies for ms in r["latencies_ms"])
    errors: Counter[str] = Counter()
    for r in replies:
        errors.update(r["errors"])
    cores = os.cpu_count() or 1
    share = {name: round(100 * (snapshots["end"][name] - snapshots["start"][name]) / (seconds * cores), 1)
             for name in snapshots["end"]}
    share["clients"] = round(100 * sum(r["cpu_s"] for r in replies) / (seconds * cores), 1)
    return {"calls": calls, "seconds": seconds, "calls_per_s": round(calls / seconds, 1),
            "p50_ms": round(latencies[len(latencies) // 2], 2) if latencies else None,
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 2) if latencies else None,
            "errors": dict(errors), "cpu_pct_of_machine": share,
            "advisory_lock_waiters": round(statistics.mean(waiting), 1) if waiting else 0.0}


def client_main(index: int, pipe: Connection, address: str, token: str) -> None:
    """A client process: for each phase spec, prepare, say "ready", run from the given start, reply counts."""
    while True:
        spec = pipe.recv()
        if spec is None:
            return
        try:
            calls = _phase_calls(index, spec)
        except Exception as error:  # the parent reports it and stops the run
            pipe.send(f"{type(error).__name__}: {error}")
            continue
        pipe.send("ready")
        start_at = pipe.recv()
        pipe.send(_run_phase(address, token, spec, calls, start_at))


def _phase_calls(index: int, spec: dict[str, Any]) -> tuple[str, list[Callable[[int], bytes]]]:
    """The method, and for each thread a function from its call number to the serialised request."""
    threads = int(spec["threads"])
    kind = spec["kind"]
    if kind == "read":
        requests = [evaluations_pb2.GetEvaluationRequest(name=n).SerializeToString() for n in spec["names"]]
        return GET, [partial(_nth_read, requests, threads, index * threads + t) for t in range(threads)]
    makers: list[Callable[[int], bytes]] = []
    for t in range(threads):
        slot = index * threads + t
        if kind == "submit":
            template = _outcome_batch(slot)
        else:
            template = units_pb2.UpsertUnitsRequest(units=[units_pb2.Unit(
                code=f"CB-{slot:03d}", display_name_vi=f"Đơn vị thử nghiệm {slot} {COUNTER.decode()}",
                display_name_en=f"Cluster bench unit {slot}", kind=units_pb2.UNIT_KIND_WARD, block="bench",
                active=True)], idempotency_key=f"cb-{kind}-{slot}-{time.time_ns()}-{COUNTER.decode()}",
            ).SerializeToString()
        makers.append(partial(_numbered, template))
    return (SUBMIT if kind == "submit" else UPSERT_UNITS), makers


def _nth_read(requests: list[bytes], threads: int, slot: int, i: int) -> bytes:
    return requests[(i * threads + slot) % len(requests)]


def _numbered(template: bytes, i: int) -> bytes:
    """The template with its COUNTER placeholders replaced by call number `i`: a new batch or a changed unit."""
    return template.replace(COUNTER, b"n%06d" % i)


def _outcome_batch(slot: int) -> bytes:
    """A batch of 1,000 outcomes, one per assignment of this writer's unit (none shared with another writer)."""
    now = dt.datetime.now(dt.UTC)
    reported = timestamp_pb2.Timestamp()
    reported.FromDatetime(now - dt.timedelta(hours=1))
    completed = ((now + dt.timedelta(hours=7)).date() - dt.timedelta(days=12)).isoformat()
    run = time.time_ns()
    request = outcomes_pb2.SubmitOutcomesRequest(outcomes=[outcomes_pb2.Outcome(
        outcome_id=f"CB-{run}-{slot:03d}-{k:04d}-{COUNTER.decode()}", assignment=f"assignments/CB-{slot:03d}-{k:04d}",
        status=outcomes_pb2.OUTCOME_STATUS_COMPLETED, completed_on=completed, quality=outcomes_pb2.QUALITY_ACCEPTED,
        reported_at=reported, reporting_system="bench", note="Đã hoàn thành") for k in range(BATCH)],
        idempotency_key=f"cb-{run}-{slot}-{COUNTER.decode()}")
    return request.SerializeToString()


def _run_phase(address: str, token: str, spec: dict[str, Any], calls: tuple[str, list[Callable[[int], bytes]]],
               start_at: float) -> dict[str, Any]:
    method, makers = calls
    end_at = start_at + float(spec["seconds"])
    metadata = _bearer(token)
    counts = [0] * len(makers)
    latencies: list[list[float]] = [[] for _ in makers]
    errors: Counter[str] = Counter()

    def run(slot: int) -> None:
        # A TCP connection of its own per thread, as separate clients would have.
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
            make = makers[slot]
            time.sleep(max(0.0, start_at - WARM_UP_S - time.monotonic()))
            i = 0
            while (began := time.monotonic()) < end_at:
                try:
                    call(make(i), timeout=60, metadata=metadata)
                    ended = time.monotonic()
                    if began >= start_at and ended <= end_at:
                        counts[slot] += 1
                        latencies[slot].append((ended - began) * 1000)
                except grpc.RpcError as error:
                    errors[str(error.code().name)] += 1
                i += 1

    workers = [threading.Thread(target=run, args=(slot,)) for slot in range(len(makers))]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu_start = _own_cpu()
    time.sleep(max(0.0, end_at - time.monotonic()))
    cpu_end = _own_cpu()
    for worker in workers:
        worker.join()
    return {"calls": sum(counts), "latencies_ms": [ms for slot in latencies for ms in slot], "errors": dict(errors),
            "cpu_s": cpu_end - cpu_start}


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- where the CPU went -------------------------------------------------------------------------------

def _tree(pid: int | None) -> list[int]:
    """`pid` and its descendants (a replica's engine workers, nginx's worker)."""
    if pid is None:
        return []
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(parents.get(current, []))
    return out


def _backends(database_url: str) -> list[int]:
    """The PostgreSQL backends serving the cluster's database now (the replicas' pooled sessions)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [int(pid) for pid in connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalars()]
    finally:
        engine.dispose()


def _cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _cpu_now(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each group of processes, and of the whole machine (busy, all cores)."""
    out = {name: _cpu_seconds(group) for name, group in pids.items()}
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    out["machine_busy"] = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    return out


def _sample_lock_waits(database_url: str, start_at: float, end_at: float, samples: list[int]) -> None:
    """Every 0.2 s of the window: how many of the database's sessions wait for an advisory lock (the audit lock)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            time.sleep(max(0.0, start_at - time.monotonic()))
            while time.monotonic() < end_at:
                samples.append(int(connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")).scalar_one()))
                connection.commit()
                time.sleep(0.2)
    finally:
        engine.dispose()


def _count(database_url: str, query: str) -> int:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


# -- printing and RESULTS.md ----------------------------------------------------------------------------

def _print_phase(figure: str, count: int, phase: dict[str, Any]) -> None:
    what = {"g": f"{phase.get('outcomes_per_s', 0):,} outcomes/s ({phase['calls_per_s']} batches/s)",
            "h": f"{phase['calls_per_s']:,} calls/s", "i": f"{phase['calls_per_s']:,} audited writes/s"}[figure]
    print(f"({figure}) {count} replica(s): {what}, p50 {phase['p50_ms']} ms, p99 {phase['p99_ms']} ms, "
          f"errors {phase['errors'] or 0}, audit entries {phase['audit_entries']:,}, advisory-lock waiters "
          f"{phase['advisory_lock_waiters']}, CPU % of machine {phase['cpu_pct_of_machine']}", flush=True)


def _print(r: dict[str, Any]) -> None:
    print(f"(g) SubmitOutcomes ratio 3/1 replicas {r['ratio_g']}; (h) GetEvaluation {r['ratio_h']}; "
          f"(i) audited writes {r['ratio_i']} ({r['wall_s']} s for the cluster figures)", flush=True)


def _cpu(phase: dict[str, Any]) -> str:
    c = phase["cpu_pct_of_machine"]
    return (f"CPU {c['machine_busy']}% busy: clients {c['clients']}%, replicas {c['replicas']}%, "
            f"PostgreSQL {c['postgres']}%, nginx {c['nginx']}%, other processes {_other(c)}%")


def _other(c: dict[str, float]) -> float:
    """CPU % of the machine used by none of ours: other work on a shared machine."""
    return round(max(0.0, c["machine_busy"] - c["clients"] - c["replicas"] - c["postgres"] - c["nginx"]), 1)


def result_rows(r: dict[str, Any]) -> str:
    """The rows of (g)-(i) for RESULTS.md's table."""
    if "skipped" in r:
        return f"| (g)-(i) cluster figures through nginx, 1 and 3 replicas | **SKIPPED**: {r['skipped']} | | | |"
    one, three = r["r1"], r["r3"]
    load = f"{r['clients']} client processes x {r['threads']} threads"
    g1, g3, h1, h3, i1, i3 = one["g"], three["g"], one["h"], three["h"], one["i"], three["i"]
    return "\n".join([
        f"| (g) SubmitOutcomes through nginx into PostgreSQL, batches of {r['batch']:,} with idempotency keys, "
        f"{load} | 3 replicas: {g3['outcomes_per_s']:,} outcomes/s (p50 {g3['p50_ms']} ms); {_cpu(g3)} | "
        f"1 replica: {g1['outcomes_per_s']:,} outcomes/s (p50 {g1['p50_ms']} ms); {_cpu(g1)} | {r['ratio_g']} | "
        f"(no target: see below) |",
        f"| (h) GetEvaluation through nginx, {load} | 3 replicas: {h3['calls_per_s']:,} calls/s (p50 {h3['p50_ms']} "
        f"ms, p99 {h3['p99_ms']} ms); {_cpu(h3)} | 1 replica: {h1['calls_per_s']:,} calls/s (p50 {h1['p50_ms']} ms, "
        f"p99 {h1['p99_ms']} ms); {_cpu(h1)} | {r['ratio_h']} | (no target: see below) |",
        f"| (i) audited writes through nginx (UpsertUnits of one changed unit: one audit entry each), {load} | "
        f"3 replicas: {i3['calls_per_s']:,} writes/s (p50 {i3['p50_ms']} ms; {i3['advisory_lock_waiters']} sessions "
        f"waiting for the audit lock on average); {_cpu(i3)} | 1 replica: {i1['calls_per_s']:,} writes/s (p50 "
        f"{i1['p50_ms']} ms; {i1['advisory_lock_waiters']} waiting); {_cpu(i1)} | {r['ratio_i']} | "
        f"(one lock for all replicas) |",
    ])


def result_notes(r: dict[str, Any]) -> str:
    """The paragraph under RESULTS.md's table that says how (g)-(i) were measured and how to read them."""
    if "skipped" in r:
        return (f"(g)-(i) were SKIPPED in this run: {r['skipped'].rstrip('.')}. They need PostgreSQL "
                "(CIVICSCORE_BENCH_POSTGRES_URL, else CIVICSCORE_TEST_POSTGRES_URL) and nginx (`make cluster-deps`).")
    pg = r["postgres"]
    errors = {f"({figure}) {count} replica(s)": r[f"r{count}"][figure]["errors"]
              for count in (1, 3) for figure in "ghi" if r[f"r{count}"][figure]["errors"]}
    error_text = f" Errors: {errors}." if errors else " No call failed."
    cores = r["cores"]
    h1, h3 = r["r1"]["h"]["cpu_pct_of_machine"], r["r3"]["h"]["cpu_pct_of_machine"]
    writes = r["r3"]["i"]["calls_per_s"]
    hold = f"{1000 / writes:.1f} ms" if writes else "unknown"
    return f"""(g)-(i) run `make cluster`'s pieces (civicscore.cluster): for each configuration a fresh
PostgreSQL {pg['server_version'].split()[0]} database (dropped afterwards), replicas with one engine worker and
a pool of {r['pool_size']} connections each, the first loading the demo data, and Debian's nginx in front
(grpc_pass, round robin per call); 1 replica, then 3, in the same run. Load comes from
{r['clients']} client processes of {r['threads']} threads each (a Python gRPC client is bound by its GIL), each
thread on a connection of its own, for {r['seconds']:g} s per figure after {WARM_UP_S:g} s of warm-up
({r['wall_s']} s in all). Clients, nginx, PostgreSQL and the replicas all share this machine's {cores}
cores, with whatever else runs on it ("other processes": it is shared); the CPU columns say who used
them, in % of all {cores} cores over the window. So the ratios are not a scaling result, and none is
claimed: a replica is one Python process whose Python work holds one GIL, so one replica uses about
one core at most (in (h): {h1['replicas'] * cores / 100:.2f} cores, the machine {h1['machine_busy']}% busy);
three can add only what is left of {cores} cores after the clients, PostgreSQL, nginx and the other
processes (in (h) the 3 replicas used {h3['replicas'] * cores / 100:.2f} cores, the machine
{h3['machine_busy']}% busy). On a machine with a free core per replica besides PostgreSQL's, and the
clients elsewhere, a replica-bound read like (h) should approach 3x until PostgreSQL or nginx
saturates; (i) would not, for the audit lock, and (g) takes the same lock once per batch. Every
write that changes something (outcome batches, units, assignments, measurements, targets, saved
evaluations, identities and credentials, reviews, ruleset activations; refusals too) appends to
one hash chain under one PostgreSQL advisory lock (`pg_advisory_xact_lock` in store/identities.py,
`append_audit`), which the transactions of every replica take in turn and hold until their COMMIT
(synchronous_commit={pg['synchronous_commit']}, fsync={pg['fsync']}: the holder waits for its WAL flush).
Audited writes are therefore serialised across the cluster: {writes:,} writes/s with 3 replicas is
one write per {hold}, which is one lock hold if the lock is what bounds them, as the sessions
waiting for it say (sampled every 0.2 s): more replicas add waiters, not throughput. What would
raise (i): appending the audit entries of many calls in one transaction (a batching appender, one
commit for many), a shorter hold (insert unchained entries, and number and chain them after commit
by one chaining writer), faster commits (a WAL device with a faster flush; commit_delay does not
help while the lock serialises commits), or separate chains per partition (per unit or per writer,
anchored together periodically); for (g), larger batches too (one lock hold per {r['batch']:,}
outcomes here).{error_text}"""
