"""`make bench`: the figures of bench/RESULTS.md, each beside a baseline from the same run.

(a)-(c) ingest, evaluation and reads, each beside the floor that bounds it (bench/floors.py):
    SubmitOutcomes beside the same rows inserted with plain sqlite3 and the server's own statements
    replayed (SQLite), and beside psycopg COPY and its own statements replayed (PostgreSQL);
    EvaluatePeriod beside the six counts per unit over the table the server reads, on both backends,
    and its throughput beside the engine's own rate per core times the workers; GetEvaluation beside
    a raw unary call returning the same bytes through the same interceptor.
    `python -m bench --only-floors` runs them alone (RESULTS.md is not rewritten);
(d) server RSS (server process and engine workers) before and after 200
    EvaluatePeriod calls;
(e) server RSS before and after 100 ruleset activations (each one starts new
    engine workers and retires the old ones), and the time one activation takes;
(f) another identity's latency while one identity floods past its rate limit:
    p50/p99 of identity B's GetEvaluation calls (paced within B's own limit)
    alone, before and after, beside the same while identity A's threads call
    as fast as they can (most refused with RESOURCE_EXHAUSTED), on a server of
    its own with the default limits; A's allowed and refused counts too.
    `python -m bench --only-f` runs this figure alone (RESULTS.md is not rewritten);
(g)-(i) SubmitOutcomes outcomes/s, GetEvaluation calls/s and audited writes/s through nginx with 1
    and then 3 replicas on PostgreSQL, and their ratios (bench/cluster.py; skipped loudly without
    PostgreSQL or nginx). `python -m bench --only-cluster` runs them alone (RESULTS.md is not rewritten).

(a)-(e) run on servers whose per-identity rate limit is set out of the way
(their calls all come from one identity, far faster than the default limit).

Machines here are shared and noisy: ratios, not absolute numbers, are the
figures to compare between runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench.cluster import add_arguments as add_cluster_arguments
from bench.cluster import cluster_figures, result_notes, result_rows
from bench.console import add_arguments as add_console_arguments
from bench.console import console_figure
from bench.console import result_row as console_row
from bench.console import update_results as update_console_results
from bench.data import SMALL_PERIOD, assignments, load, units
from bench.floors import NO_RATE_LIMIT, floor_figures, floor_notes, floor_rows
from bench.floors import add_arguments as add_floor_arguments
from civicscore_api.v1 import evaluations_pb2, evaluations_pb2_grpc, rulesets_pb2, units_pb2
from tests.serverproc import RULES, ServerProcess

OUT = Path(__file__).resolve().parent / "out"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ROOT = Path(__file__).resolve().parent.parent
# (f): the server's default per-identity limits, stated so that the figure says what it measured.
FLOOD_RATE_PER_S = 50.0
FLOOD_BURST = 100

def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def server_rss(server: ServerProcess) -> tuple[int, int]:
    """(server process RSS, sum of its children's RSS) in KiB."""
    assert server.proc is not None
    children = 0
    for pid in server.child_pids():
        with contextlib.suppress(FileNotFoundError):
            children += rss_kib(pid)
    return rss_kib(server.proc.pid), children


def main() -> int:
    parser = argparse.ArgumentParser(description="civicscore benchmarks")
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--per-unit", type=int, default=200)
    parser.add_argument("--evaluations", type=int, default=200, help="EvaluatePeriod calls for the RSS figure")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--activations", type=int, default=100, help="ruleset activations for the RSS figure (e)")
    parser.add_argument("--flood-reads", type=int, default=400,
                        help="(f): identity B's calls in each phase (alone before, during the flood, alone after)")
    parser.add_argument("--flood-pace", type=float, default=20.0,
                        help="(f): identity B's calls per second (within its rate limit)")
    parser.add_argument("--flood-threads", type=int, default=8, help="(f): identity A's flooding threads")
    parser.add_argument("--flood-threads-many", type=int, default=32,
                        help="(f'): identity A's flooding threads, more than one identity may have calls in progress")
    parser.add_argument("--only-f", action="store_true", help="run figure (f) alone; RESULTS.md is not rewritten")
    parser.add_argument("--flood-own-connections", action="store_true",
                        help="with --only-f: each flooding thread on a connection of its own (a flood a front proxy "
                             "limiting connections per client is for), instead of the figures (f), (f'), (f'')")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite bench/RESULTS.md")
    add_floor_arguments(parser)
    add_cluster_arguments(parser)
    add_console_arguments(parser)
    args = parser.parse_args()

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    if args.only_f and args.flood_own_connections:
        f = flood_figure(OUT / "f", args.flood_reads, args.flood_pace, args.flood_threads_many, own_connections=True)
        (OUT / "results.json").write_text(json.dumps({"f_own_connections": f}, indent=2))
        _print_flood(f, "f_own_connections")
        return 0
    if args.only_console:
        j = console_figure(OUT / "j", args.console_reads)
        (OUT / "results.json").write_text(json.dumps({"j": j}, indent=2))
        if not args.no_write:
            update_console_results(RESULTS, j, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
        return 0
    if args.only_cluster:
        (OUT / "results.json").write_text(json.dumps({"cluster": cluster_figures(OUT, args)}, indent=2))
        return 0
    if args.only_f:
        floods = flood_figures(args)
        (OUT / "results.json").write_text(json.dumps(floods, indent=2))
        return 0
    if args.only_floors:
        floors = floor_figures(OUT, args)
        floors["machine"] = _machine()
        (OUT / "results.json").write_text(json.dumps(floors, indent=2))
        _print_headline(floors)
        return 0
    results: dict[str, object] = {}
    # (a)-(c) each beside its floor, on servers and databases of their own
    results.update(floor_figures(OUT / "floors", args))
    server = ServerProcess(OUT, workers=os.cpu_count() or 1, extra_args=NO_RATE_LIMIT).start(timeout=120)
    try:
        stubs = server.stubs()
        small_units = units(100, "S")
        load(stubs, small_units, assignments([u.code for u in small_units], 20, dt.date(2026, 4, 1)))

        # (d) RSS before/after repeated evaluations of a period (100 units x 20 assignments)
        request = evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{SMALL_PERIOD}")
        stubs.evaluations.EvaluatePeriod(request, timeout=600)
        before = server_rss(server)
        start = time.perf_counter()
        for _ in range(args.evaluations):
            stubs.evaluations.EvaluatePeriod(request, timeout=600)
        spent = time.perf_counter() - start
        after = server_rss(server)
        results["d"] = {"evaluations": args.evaluations, "units_per_evaluation": len(small_units),
                        "server_rss_kib_before": before[0], "server_rss_kib_after": after[0],
                        "workers_rss_kib_before": before[1], "workers_rss_kib_after": after[1],
                        "growth_pct": round(100 * (sum(after) - sum(before)) / sum(before), 2),
                        "seconds": round(spent, 1)}
        print(f"(d) RSS server {before[0] / 1024:.1f} -> {after[0] / 1024:.1f} MiB, workers "
              f"{before[1] / 1024:.1f} -> {after[1] / 1024:.1f} MiB after {args.evaluations} evaluations "
              f"({spent:.0f}s)", flush=True)

        # (e) RSS before/after ruleset activations (blue/green: new workers each time)
        results["e"] = activations_rss(server, args.activations)
        e = results["e"]
        print(f"(e) RSS server {e['server_rss_kib_before'] / 1024:.1f} -> {e['server_rss_kib_after'] / 1024:.1f} MiB "
              f"over {args.activations} activations; median activation {e['activation_median_s']} s, "
              f"growth {e['growth_pct']}%", flush=True)
    finally:
        server.stop()

    # (f), (f'), (f'') each on a server of its own, with the default per-identity limits
    results.update(flood_figures(args))
    # (g)-(i) on clusters of their own: PostgreSQL, replicas, nginx
    results["cluster"] = cluster_figures(OUT, args)
    # (j) the console's queue page beside the same data through gRPC
    results["j"] = None if args.no_console else console_figure(OUT / "j", args.console_reads)

    results["machine"] = _machine()
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    if not args.no_write:
        _write_results(results)
    _print_headline(results)
    return 0


# The headline ratios (issue 14) and their targets: (key, "min" or "max", target).
TARGETS = (
    ("ingest_sqlite_vs_insert_floor", "min", 0.30),
    ("ingest_pg_vs_copy_floor", "min", 0.30),
    ("evaluate_sqlite_vs_state_sql", "max", 3.0),
    ("evaluate_vs_engine_limit", "min", 0.75),
    ("get_evaluation_p99_vs_raw", "max", 1.6),
)


def _verdict(value: object, kind: str, target: float) -> str:
    if not isinstance(value, int | float):
        return "not measured"
    return "met" if (value >= target if kind == "min" else value <= target) else "NOT MET"


def _print_headline(results: dict[str, object]) -> None:
    for key, kind, target in TARGETS:
        value = results.get(key)
        print(f"{key} = {value} (target {'>=' if kind == 'min' else '<='} {target}): "
              f"{_verdict(value, kind, target)}", flush=True)


def _machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version(),
            "platform": platform.platform(), "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def activations_rss(server: ServerProcess, count: int) -> dict[str, object]:
    """Activate `count` rulesets (a threshold changes each time) and compare RSS before and after.

    Five activations run first as a warm-up (imports, caches), so that "before" is the steady state;
    the RSS before the warm-up is reported too.
    """
    stub = server.stubs().rulesets
    files = {path.name: path.read_text(encoding="utf-8") for path in sorted(RULES.glob("*.yaml"))}
    marker = "params: {threshold: 0.8}"
    assert marker in files["flags.yaml"]

    def activate(i: int) -> float:
        changed = {**files, "flags.yaml": files["flags.yaml"].replace(marker, f"params: {{threshold: 0.{5000 + i}}}")}
        request = rulesets_pb2.ActivateRulesetRequest(
            files=rulesets_pb2.RuleFiles(files=[rulesets_pb2.RuleFile(path=k, content=v) for k, v in changed.items()]),
            reason=f"bench {i}", idempotency_key=f"bench-activation-{i}")
        start = time.perf_counter()
        stub.ActivateRuleset(request, timeout=120)
        return time.perf_counter() - start

    cold = server_rss(server)
    for i in range(5):
        activate(i)
    before = server_rss(server)
    start = time.perf_counter()
    times = [activate(5 + i) for i in range(count)]
    spent = time.perf_counter() - start
    after = server_rss(server)
    return {"activations": count, "server_rss_kib_cold": cold[0], "server_rss_kib_before": before[0],
            "server_rss_kib_after": after[0], "workers_rss_kib_before": before[1], "workers_rss_kib_after": after[1],
            "growth_pct": round(100 * (after[0] - before[0]) / before[0], 2),
            "activation_median_s": round(statistics.median(times), 3), "seconds": round(spent, 1)}


def p50_p99(samples_ms: list[float]) -> tuple[float, float]:
    """Median and 99th percentile, taken as in (c)."""
    ordered = sorted(samples_ms)
    return ordered[len(ordered) // 2], ordered[max(0, int(len(ordered) * 0.99) - 1)]


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class PacedReads:
    latencies_ms: list[float] = field(default_factory=list)
    refused: int = 0  # RESOURCE_EXHAUSTED
    failed: int = 0  # any other error


def paced_reads(address: str, token: str, names: list[str], count: int, pace_per_s: float) -> PacedReads:
    """`count` GetEvaluation calls, one every 1/pace_per_s seconds, on a channel of their own."""
    channel = grpc.insecure_channel(address)
    stub = evaluations_pb2_grpc.EvaluationServiceStub(channel)
    metadata = _bearer(token)
    out = PacedReads()
    interval = 1.0 / pace_per_s
    next_at = time.perf_counter()
    try:
        for i in range(count):
            request = evaluations_pb2.GetEvaluationRequest(name=names[i % len(names)])
            start = time.perf_counter()
            try:
                stub.GetEvaluation(request, timeout=30, metadata=metadata)
                out.latencies_ms.append((time.perf_counter() - start) * 1000)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    out.refused += 1
                else:
                    out.failed += 1
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.perf_counter()  # fell behind: do not catch up in a burst
    finally:
        channel.close()
    return out


def flood_main() -> None:
    """Identity A, in a process of its own (so that its threads do not take B's GIL): reads its settings
    (address, token, names, threads) as one JSON line on stdin, prints `flooding` once its threads call
    GetEvaluation as fast as they can, and on a `stop` line prints their allowed/refused/failed counts
    as JSON. It runs at the lowest CPU priority: the flooder stands for a client on another machine,
    so that what B feels is the server's cost of A's calls, not A's own client code."""
    settings = json.loads(sys.stdin.readline())
    address, token, names, threads = (settings[k] for k in ("address", "token", "names", "threads"))
    # Each thread on a TCP connection of its own (gRPC shares one between identical channels otherwise).
    options = [("grpc.use_local_subchannel_pool", 1)] if settings.get("own_connections") else []
    os.nice(19)
    stop = threading.Event()
    counts = [[0, 0, 0] for _ in range(threads)]  # allowed, refused, failed
    reasons: dict[str, int] = {}

    def run(slot: int) -> None:
        channel = grpc.insecure_channel(address, options=options)
        stub = evaluations_pb2_grpc.EvaluationServiceStub(channel)
        metadata = _bearer(token)
        mine = counts[slot]
        i = slot
        while not stop.is_set():
            try:
                stub.GetEvaluation(evaluations_pb2.GetEvaluationRequest(name=names[i % len(names)]), timeout=30,
                                   metadata=metadata)
                mine[0] += 1
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    mine[1] += 1
                    if mine[1] <= 20:  # a sample of why (rate limit or calls in flight)
                        reason = (error.details() or "").split(";")[0].split(" ", 1)[-1]
                        reasons[reason] = reasons.get(reason, 0) + 1
                else:
                    mine[2] += 1
            i += threads
        channel.close()

    workers = [threading.Thread(target=run, args=(slot,), daemon=True) for slot in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    print("flooding", flush=True)
    sys.stdin.readline()  # "stop"
    stop.set()
    for worker in workers:
        worker.join(60)
    spent = time.perf_counter() - start
    print(json.dumps({"allowed": sum(c[0] for c in counts), "refused": sum(c[1] for c in counts),
                      "failed": sum(c[2] for c in counts), "seconds": spent, "refusal_sample": reasons}), flush=True)


def flood_figures(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """(f) the default server; (f') more flooding threads than one identity may run calls at once;
    (f'') the default server but with refusals answered at once (`--rate-limit-hold 0`), for contrast."""
    out: dict[str, dict[str, object]] = {}
    for key, threads, extra in (("f", args.flood_threads, ()), ("f_many", args.flood_threads_many, ()),
                                ("f_no_hold", args.flood_threads, ("--rate-limit-hold", "0"))):
        out[key] = flood_figure(OUT / key, args.flood_reads, args.flood_pace, threads, extra)
        _print_flood(out[key], key)
    return out


def flood_figure(workdir: Path, reads: int, pace_per_s: float, threads: int,
                 extra_args: tuple[str, ...] = (), own_connections: bool = False) -> dict[str, object]:
    """(f): identity B's GetEvaluation latency alone (before and after) and while identity A floods."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(workdir, workers=1, extra_args=(
        "--rate-limit", str(FLOOD_RATE_PER_S), "--rate-burst", str(FLOOD_BURST), *extra_args)).start(timeout=120)
    try:
        flood_units = units(20, "F")
        stubs = server.stubs()
        stubs.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=flood_units), timeout=120)
        stubs.evaluations.EvaluatePeriod(evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{SMALL_PERIOD}"),
                                         timeout=600)
        names = [f"periods/{SMALL_PERIOD}/evaluations/{u.code}" for u in flood_units]
        with server.client() as admin:
            tokens = {}
            for who, label in (("bench-flooder", "A"), ("bench-reader", "B")):
                admin.create_identity(who, f"Benchmark identity {label}", roles=["reader"])
                tokens[label] = admin.issue_token(who, valid_days=1).token
        paced_reads(server.address, tokens["B"], names, 20, pace_per_s)  # warm up
        before = paced_reads(server.address, tokens["B"], names, reads, pace_per_s)

        # The token travels on stdin, not in the command line (which `ps` shows).
        flooder = subprocess.Popen([sys.executable, "-c", "from bench.__main__ import flood_main; flood_main()"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert flooder.stdin is not None and flooder.stdout is not None
        try:
            flooder.stdin.write(json.dumps({"address": server.address, "token": tokens["A"], "names": names,
                                            "threads": threads, "own_connections": own_connections}) + "\n")
            flooder.stdin.flush()
            if flooder.stdout.readline().strip() != "flooding":
                raise RuntimeError("the flooding process did not start")
            time.sleep(1.0)  # past A's burst: from here on A is refused most of the time
            during = paced_reads(server.address, tokens["B"], names, reads, pace_per_s)
            flooder.stdin.write("stop\n")
            flooder.stdin.flush()
            flood: dict[str, Any] = json.loads(flooder.stdout.readline())
            flooder.wait(60)
        finally:
            if flooder.poll() is None:
                flooder.kill()
                flooder.wait()
        after = paced_reads(server.address, tokens["B"], names, reads, pace_per_s)
    finally:
        server.stop()

    base_p50, base_p99 = p50_p99(before.latencies_ms + after.latencies_ms)
    p50, p99 = p50_p99(during.latencies_ms)
    seconds = float(flood["seconds"])
    allowed, refused = int(flood["allowed"]), int(flood["refused"])
    phases = (before, during, after)
    return {"rate_per_s": FLOOD_RATE_PER_S, "burst": FLOOD_BURST, "flood_threads": threads,
            "server_flags": " ".join(extra_args), "own_connections": own_connections,
            "b_reads": reads, "b_pace_per_s": pace_per_s,
            "baseline_p50_ms": round(base_p50, 3), "baseline_p99_ms": round(base_p99, 3),
            "flood_p50_ms": round(p50, 3), "flood_p99_ms": round(p99, 3),
            "ratio_p50": round(p50 / base_p50, 2), "ratio_p99": round(p99 / base_p99, 2),
            "b_refused": sum(phase.refused for phase in phases), "b_failed": sum(phase.failed for phase in phases),
            "a_allowed": allowed, "a_refused": refused, "a_failed": flood["failed"],
            "a_seconds": round(seconds, 1), "a_calls_per_s": round((allowed + refused) / seconds),
            "a_allowed_per_s": round(allowed / seconds, 1), "a_refusal_sample": flood["refusal_sample"]}


def _flood_row(label: str, f: dict[str, object]) -> str:
    target = "(contrast: what the hold buys)" if f["server_flags"] else "B's normal latency"
    return (f"| {label} identity B's GetEvaluation latency ({f['b_reads']} calls at {f['b_pace_per_s']:g}/s) while "
            f"identity A floods past its rate limit ({f['rate_per_s']:g}/s, burst {f['burst']}) with "
            f"{f['flood_threads']} threads | p50 {f['flood_p50_ms']} ms, p99 {f['flood_p99_ms']} ms; A made "
            f"{f['a_calls_per_s']:,} calls/s: {f['a_allowed']:,} allowed, {f['a_refused']:,} refused "
            f"(RESOURCE_EXHAUSTED); B refused {f['b_refused']} | B alone, before and after: p50 "
            f"{f['baseline_p50_ms']} ms, p99 {f['baseline_p99_ms']} ms | p50 {f['ratio_p50']}x, p99 {f['ratio_p99']}x "
            f"| {target} |")


def _print_flood(f: dict[str, object], key: str = "f") -> None:
    label = {"f": "(f)", "f_many": "(f')", "f_no_hold": "(f'')",
             "f_own_connections": "(each flooding thread on a connection of its own)"}[key]
    print(f"{label}{' ' + str(f['server_flags']) if f['server_flags'] else ''} identity B GetEvaluation alone p50 {f['baseline_p50_ms']} ms, p99 {f['baseline_p99_ms']} ms; "
          f"while A floods ({f['flood_threads']} threads, {f['a_calls_per_s']} calls/s: {f['a_allowed']:,} allowed, "
          f"{f['a_refused']:,} refused) p50 {f['flood_p50_ms']} ms, p99 {f['flood_p99_ms']} ms; "
          f"ratio p50 {f['ratio_p50']}, p99 {f['ratio_p99']}; B refused {f['b_refused']}", flush=True)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _write_results(r: dict[str, object]) -> None:
    d, e, f, m = (r[k] for k in ("d", "e", "f", "machine"))
    flood_rows = "\n".join(_flood_row(label, r[key]) for label, key in (
        ("(f)", "f"), ("(f')", "f_many"), ("(f'') for contrast, with `--rate-limit-hold 0`:", "f_no_hold")))
    j = r.get("j")
    console_line = console_row(j if isinstance(j, dict) else None)
    text = f"""# Benchmark results

Written by `make bench` ({m['date']}) on {m['cpus']} CPUs ({m['cpu']}), Python {m['python']},
{m['platform']}. The server runs as its own process with one engine worker per
core on a fresh SQLite file; the client is the benchmark process. Machines here are
shared and noisy, so each figure stands beside a baseline measured in the same run.

| figure | result | baseline (same run) | ratio | target |
|---|---|---|---|---|
{floor_rows(r)}
| (d) RSS over {d['evaluations']} EvaluatePeriod calls ({d['units_per_evaluation']} units each, {d['seconds']} s) | server {d['server_rss_kib_before'] / 1024:.1f} -> {d['server_rss_kib_after'] / 1024:.1f} MiB; workers {d['workers_rss_kib_before'] / 1024:.1f} -> {d['workers_rss_kib_after'] / 1024:.1f} MiB | before | {d['growth_pct']}% growth | flat |
| (e) server RSS over {e['activations']} ruleset activations ({e['seconds']} s; each starts new engine workers and retires the old) | server {e['server_rss_kib_before'] / 1024:.1f} -> {e['server_rss_kib_after'] / 1024:.1f} MiB (before warm-up {e['server_rss_kib_cold'] / 1024:.1f}); workers {e['workers_rss_kib_before'] / 1024:.1f} -> {e['workers_rss_kib_after'] / 1024:.1f} MiB; median activation {e['activation_median_s']} s | before (after 5 warm-up activations) | {e['growth_pct']}% growth | within 10% |
{flood_rows}
{result_rows(r["cluster"])}
{console_line}

{floor_notes(r)}
(f) runs on a server of its own with the default
per-identity limits ((a)-(e) set the rate limit out of the way: their calls all
come from one identity); A floods from a process of its own at the lowest CPU
priority, standing for a client on another machine, so that B's figure shows
the server's cost of A's refused calls rather than A's client code; B paces its
calls within its own limit. The server holds a rate-limited call's refusal
about as long as the caller should have waited, and a connection may open only
as many streams as one identity may run calls ({f['flood_threads']}): (f') floods
with more threads than that, (f'') turns the hold off to show what it buys.
{result_notes(r["cluster"])}
(j) fetches the page as a signed-in committee member's browser would (HTTP with the session cookie, the whole HTML read; no
scripts or styles, which are cached), alternating with its baseline, so noise falls on both alike: the
ratio is what the console adds to the gRPC calls it makes (HTML rendering, HTTP, the SDK's conversion).
Raw numbers: `bench/out/results.json`.
"""
    RESULTS.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
