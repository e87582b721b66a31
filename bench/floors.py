"""Ingest, evaluation and reads, each beside the floor that bounds it, measured in the same run.

Every figure here stands beside what the hardware allows for the same work, so
that a ratio says how far the server is from the floor, not how fast the
machine happened to be:

- ingest (SQLite): SubmitOutcomes of batches of 1,000 beside (1) the same rows
  inserted with plain sqlite3 into a copy of the same database (same table,
  indexes, foreign key, WAL, `synchronous=FULL`), one commit per 1,000: the
  insert-only floor; (2) the server's own SQL statements for the same batches,
  recorded from the store in this process and replayed with plain sqlite3 on
  another copy: what the server's statements cost without Python around them;
  (3) the echo and ack-only RPCs (transport alone);
- ingest (PostgreSQL): the same beside psycopg binary COPY of the same rows into
  the same table of a copy of the database, one commit per 1,000, and beside
  the server's own statements replayed with psycopg;
- evaluation: EvaluatePeriod beside the six counts per unit over
  `assignment_states` (the table the server reads) in one plain SQL statement,
  on both backends; and its throughput (units/s) beside the engine's own rate
  in a process of its own on one core (the same facts, evaluator and encoding
  as a worker; no database, no pipe) times the server's workers: the engine limit;
- reads: GetEvaluation beside a raw unary call returning the same reply bytes
  through the same interceptor (`bench.echo_server` Raw), calls alternating.

Each repeat runs on a fresh server and a fresh copy of a database loaded once
(`--floor-repeats`, median reported). `python -m bench --only-floors` runs these
figures alone (RESULTS.md is not rewritten).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from bench.data import PERIOD, assignments, load, outcome_for, submit_payloads, units
from civicscore_api.v1 import evaluations_pb2, outcomes_pb2
from tests.serverproc import RULES, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
NO_RATE_LIMIT = ("--rate-limit", "1000000", "--rate-burst", "1000000")
BATCH = 1000
START, END = dt.date(2026, 7, 1), dt.date(2026, 9, 30)
OUTCOME_COLUMNS = ("outcome_id", "assignment_id", "status", "completed_on", "quality", "reminders", "reported_at",
                   "reporting_system", "note", "recorded_by")
COPY_TYPES = ("text", "text", "text", "date", "text", "int4", "timestamp", "text", "text", "text")

# The six counts per unit the evaluation starts from, over the table the server reads (`assignment_states`):
# due, completed, on time, late and reworked among the quarter's non-cancelled assignments, and the open
# overdue ones of any quarter. One statement, one scan; `{start}` and `{end}` are the driver's placeholders.
STATE_SQL = """
SELECT unit_code,
  SUM(CASE WHEN due_on >= {start} THEN 1 ELSE 0 END) AS due,
  SUM(CASE WHEN due_on >= {start} AND status = 'completed' AND completed_on <= {end} THEN 1 ELSE 0 END) AS completed,
  SUM(CASE WHEN due_on >= {start} AND status = 'completed' AND completed_on <= due_on THEN 1 ELSE 0 END) AS on_time,
  SUM(CASE WHEN due_on >= {start} AND status = 'completed' AND completed_on > due_on AND completed_on <= {end}
      THEN 1 ELSE 0 END) AS late,
  SUM(CASE WHEN due_on >= {start} AND status = 'completed' AND completed_on <= {end}
      AND quality = 'returned_for_rework' THEN 1 ELSE 0 END) AS reworked,
  SUM(CASE WHEN due_on < {end} AND (status IS NULL OR status <> 'completed' OR completed_on > {end})
      THEN 1 ELSE 0 END) AS open_overdue
FROM assignment_states
WHERE due_on <= {end} AND (status IS NULL OR status <> 'cancelled')
GROUP BY unit_code
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--floor-repeats", type=int, default=3,
                        help="ingest, evaluation and read figures: repeats, each on a fresh server and database copy "
                             "(the median is reported)")
    parser.add_argument("--only-floors", action="store_true",
                        help="run the ingest, evaluation and read figures alone; RESULTS.md is not rewritten")


class Data:
    """The benchmark's units, assignments and outcomes, and the serialised SubmitOutcomes batches."""

    def __init__(self, unit_count: int, per_unit: int) -> None:
        self.units = units(unit_count, "B")
        self.assignments = assignments([u.code for u in self.units], per_unit, START)
        self.small_units = units(100, "S")
        self.small_assignments = assignments([u.code for u in self.small_units], 20, dt.date(2026, 4, 1))
        self.outcomes = [outcome_for(a, k) for k, a in enumerate(self.assignments)]
        self.payloads = submit_payloads(self.outcomes, BATCH)
        self.unit_count, self.per_unit = unit_count, per_unit


def load_snapshot(workdir: Path, data: Data, database_url: str | None = None) -> str:
    """A database holding the units and assignments (no outcomes), loaded through a server that is then stopped.

    Its administrator's token stays in `workdir`/admin.token (`_server` hands it to the servers on copies)."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(workdir, database_url=database_url, extra_args=NO_RATE_LIMIT).start(timeout=120)
    try:
        stubs = server.stubs()
        load(stubs, data.units, data.assignments)
        load(stubs, data.small_units, data.small_assignments)
    finally:
        server.stop()
    if server.database_url.startswith("sqlite:///"):  # everything in the main file, so that a copy of it is whole
        db = sqlite3.connect(server.database_url.removeprefix("sqlite:///"))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    return server.database_url


# ---- the server's own statements, recorded in this process and replayed ------------------------------------


class Recorder:
    """The SQL a store runs on this thread, in order: ("one" | "many", statement, parameters), "commit",
    "rollback", and ("copy", table, columns, rows) for the rows it COPYs (PostgreSQL, `Driver.copy_rows`).

    A context manager: it listens to `engine` and wraps `Driver.copy_rows` within the block only."""

    def __init__(self, engine: Any) -> None:
        self.ops: list[tuple[Any, ...]] = []
        self._engine = engine
        self._thread = threading.get_ident()
        self._listeners = (("before_cursor_execute", self._execute),
                           ("commit", lambda connection: self._mark("commit")),
                           ("rollback", lambda connection: self._mark("rollback")))

    def __enter__(self) -> Recorder:
        from sqlalchemy import event

        from civicscore.store.driver import Driver

        for name, listener in self._listeners:
            event.listen(self._engine, name, listener)
        self._copy_rows = copy_rows = Driver.copy_rows
        recorder = self

        def recorded_copy(driver: Any, table: str, columns: Any, rows: Any) -> None:
            if threading.get_ident() == recorder._thread:
                recorder.ops.append(("copy", table, tuple(columns), list(rows)))
            copy_rows(driver, table, columns, rows)

        Driver.copy_rows = recorded_copy  # type: ignore[method-assign]  # until the block ends
        return self

    def __exit__(self, *_exc: object) -> None:
        from sqlalchemy import event

        from civicscore.store.driver import Driver

        Driver.copy_rows = self._copy_rows  # type: ignore[method-assign]
        for name, listener in self._listeners:
            event.remove(self._engine, name, listener)

    def _execute(self, connection: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> None:
        if threading.get_ident() == self._thread:  # not the SQLite checkpointer's thread
            self.ops.append(("many" if executemany else "one", statement, parameters))

    def _mark(self, what: str) -> None:
        if threading.get_ident() == self._thread:
            self.ops.append((what,))


def record_ingest(database_url: str, payloads: Sequence[bytes], actor: str) -> list[tuple[Any, ...]]:
    """The statements SubmitOutcomes runs for `payloads`: the servicer's steps (its one-pass way: these batches
    are valid), on a store in this process."""
    from civicscore.api import convert, outcome_wire, scope
    from civicscore.ingest import PreparedOutcomes, submit_prepared_outcomes
    from civicscore.store.sql import open_store

    store = open_store(database_url)
    try:
        if store.checkpointer is not None:
            store.checkpointer.close()  # its work is off the request path; the replay's own autocheckpoint stands in
        now = dt.datetime(2026, 10, 6, 3, 0, tzinfo=dt.UTC)
        with Recorder(store.engine) as recorder:
            for payload in payloads:
                request = outcomes_pb2.SubmitOutcomesRequest.FromString(payload)
                outcomes = outcome_wire.prepared_outcomes(request.outcomes, now)
                assert outcomes is not None, "the benchmark's batches are valid"
                scope.check_outcomes(store, [o.assignment for o in request.outcomes])
                submit_prepared_outcomes(
                    store, PreparedOutcomes(outcomes, lambda request=request: [
                        convert.outcome_input(o) for o in request.outcomes]),
                    now=now, idempotency_key=request.idempotency_key, actor=actor,
                    request_digest=convert.request_digest(request))
        return recorder.ops
    finally:
        store.close()


def _sqlite_connection(path: Path) -> sqlite3.Connection:
    """Plain sqlite3 with the server's settings (store.connection.SQLITE_PRAGMAS)."""
    from civicscore.store.connection import SQLITE_PRAGMAS

    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in SQLITE_PRAGMAS:
        db.execute(pragma)
    return db


def replay_sqlite(path: Path, ops: Sequence[tuple[Any, ...]]) -> float:
    """Seconds to run `ops` with plain sqlite3 (every result read, as the server reads it)."""
    db = _sqlite_connection(path)
    try:
        start = time.perf_counter()
        for op in ops:
            if op[0] == "one":
                db.execute(op[1], op[2]).fetchall()
            elif op[0] == "many":
                db.executemany(op[1], op[2])
            elif db.in_transaction:
                db.execute("COMMIT" if op[0] == "commit" else "ROLLBACK")
        return time.perf_counter() - start
    finally:
        db.close()


def replay_postgres(url: str, ops: Sequence[tuple[Any, ...]]) -> float:
    """Seconds to run `ops` with plain psycopg (every result read, as the server reads it)."""
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as db:
        cursor = db.cursor()
        start = time.perf_counter()
        for op in ops:
            if op[0] == "one":
                cursor.execute(op[1], op[2] or None)
                if cursor.description is not None:
                    cursor.fetchall()
            elif op[0] == "many":
                cursor.executemany(op[1], op[2])
            elif op[0] == "copy":
                _, table, columns, rows = op
                names = ", ".join(name for name, _ in columns)
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types([kind for _, kind in columns])
                    for row in rows:
                        copy.write_row(row)
            elif op[0] == "commit":
                db.commit()
            else:
                db.rollback()
        return time.perf_counter() - start


# ---- floors -------------------------------------------------------------------------------------------------


def stored_outcomes_sqlite(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM outcomes ORDER BY seq").fetchall()
    finally:
        db.close()


def insert_floor_sqlite(path: Path, rows: Sequence[tuple[Any, ...]]) -> float:
    """Seconds to insert `rows` as stored, batches of 1,000, one durable commit each, nothing else."""
    db = _sqlite_connection(path)
    statement = f"INSERT INTO outcomes ({', '.join(OUTCOME_COLUMNS)}) VALUES ({', '.join('?' * len(OUTCOME_COLUMNS))})"
    try:
        start = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(statement, rows[i:i + BATCH])
            db.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        db.close()


# What an EvaluatePeriod writes (its new evaluations, their recommendations and the reasons of each), in the
# order their foreign keys need.
SAVED_TABLES = ("evaluations", "recommendations", "recommendation_reasons")


def saved_rows_sqlite(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of SAVED_TABLES as stored (the first EvaluatePeriod's: the second changed nothing)."""
    db = sqlite3.connect(path)
    try:
        return {table: db.execute(f"SELECT * FROM {table}").fetchall() for table in SAVED_TABLES}
    finally:
        db.close()


def save_floor_sqlite(path: Path, saved: dict[str, list[tuple[Any, ...]]]) -> float:
    """Seconds to insert the rows an EvaluatePeriod saved into a database that has none of them, with plain
    sqlite3, as the server saves them: one transaction, one durable commit; nothing read, nothing else."""
    db = _sqlite_connection(path)
    try:
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        for table, rows in saved.items():
            if rows:
                db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        db.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        db.close()


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def stored_outcomes_postgres(url: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as db:
        return db.execute(f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM outcomes ORDER BY seq").fetchall()


def copy_floor_postgres(url: str, rows: Sequence[tuple[Any, ...]]) -> float:
    """Seconds to COPY (binary) `rows` into the outcomes table, batches of 1,000, one commit each."""
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as db:
        cursor = db.cursor()
        statement = f"COPY outcomes ({', '.join(OUTCOME_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        start = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            with cursor.copy(statement) as copy:
                copy.set_types(list(COPY_TYPES))
                for row in rows[i:i + BATCH]:
                    copy.write_row(row)
            db.commit()
        return time.perf_counter() - start


def state_sql_sqlite(path: Path, runs: int = 5) -> tuple[float, int]:
    db = sqlite3.connect(path)
    try:
        statement = STATE_SQL.format(start=":start", end=":end")
        return _best_of(runs, lambda: db.execute(statement, {"start": START.isoformat(),
                                                             "end": END.isoformat()}).fetchall())
    finally:
        db.close()


def state_sql_postgres(url: str, runs: int = 5) -> tuple[float, int]:
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as db:
        statement = STATE_SQL.format(start="%(start)s", end="%(end)s")
        return _best_of(runs, lambda: db.execute(statement, {"start": START, "end": END}).fetchall())


def _best_of(runs: int, query: Callable[[], list[Any]]) -> tuple[float, int]:
    """The median of `runs` timings of `query` (after one to warm the cache), and its row count."""
    rows = query()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        query()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(rows)


def engine_rate(database_url: str) -> dict[str, Any]:
    """The engine's units/s on one core in a process of its own, on the facts the server gathers for PERIOD."""
    proc = subprocess.run([sys.executable, "-c", "from bench.floors import engine_rate_main; engine_rate_main()"],
                          input=json.dumps({"url": database_url, "period": PERIOD}), capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=600)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def engine_rate_main() -> None:
    """What a worker does for each unit (evaluate, then encode as the server stores it: the canonical JSON, its
    digest and the reply's body), on one core."""
    os.sched_setaffinity(0, {0})
    settings = json.loads(sys.stdin.read())
    from civicscore.api.evaluation_wire import body_of
    from civicscore.domain.periods import Quarter
    from civicscore.engine.port import encode_evaluation
    from civicscore.engine.worker import worker_evaluator
    from civicscore.evaluate import active_units, gather_facts
    from civicscore.ruleset import load_ruleset
    from civicscore.store.sql import open_store

    store = open_store(settings["url"])
    try:
        facts = gather_facts(store, Quarter.parse(settings["period"]), list(active_units(store)))
    finally:
        store.close()
    ruleset = load_ruleset({p.name: p.read_text(encoding="utf-8") for p in sorted(RULES.glob("*.yaml"))})
    _, evaluator = worker_evaluator(ruleset)
    for unit in facts[:50]:  # warm up
        encode_evaluation(evaluator.evaluate(unit), body_of)
    start = time.perf_counter()
    for unit in facts:
        encode_evaluation(evaluator.evaluate(unit), body_of)
    spent = time.perf_counter() - start
    print(json.dumps({"units": len(facts), "seconds": spent, "units_per_s": len(facts) / spent}), flush=True)


def _server(workdir: Path, snapshot_dir: Path, **options: Any) -> ServerProcess:
    """A server on a copy of a snapshot, started; the copy's administrator token is the snapshot's."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(snapshot_dir / "admin.token", workdir / "admin.token")
    return ServerProcess(workdir, workers=os.cpu_count() or 1, extra_args=NO_RATE_LIMIT, **options).start(timeout=120)


# ---- one repeat ---------------------------------------------------------------------------------------------


def _timed(call: grpc.UnaryUnaryMultiCallable, payloads: Sequence[bytes]) -> float:
    start = time.perf_counter()
    for payload in payloads:
        call(payload, timeout=120)
    return time.perf_counter() - start


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) process `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of process `pid` and of its children (the server and its engine workers)."""
    children = {int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()}
    return _cpu_s(pid), sum(_cpu_s(child) for child in children)


def _evaluate(server: ServerProcess) -> tuple[float, float, Any, dict[str, float]]:
    """Seconds of the first EvaluatePeriod (new revisions) and of a second (inputs unchanged), the first reply,
    and the CPU seconds the server and its workers spent on the first."""
    stub = server.stubs().evaluations
    request = evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{PERIOD}")
    assert server.proc is not None
    before = _process_cpu(server.proc.pid)
    start = time.perf_counter()
    first = stub.EvaluatePeriod(request, timeout=600)
    first_s = time.perf_counter() - start
    after = _process_cpu(server.proc.pid)
    start = time.perf_counter()
    stub.EvaluatePeriod(request, timeout=600)
    cpu = {"server_cpu_s": round(after[0] - before[0], 3), "workers_cpu_s": round(after[1] - before[1], 3)}
    return first_s, time.perf_counter() - start, first, cpu


def _reads(server: ServerProcess, data: Data, count: int) -> dict[str, Any]:
    """GetEvaluation and the raw call with the same reply bytes, alternating, `count` each."""
    channel = server.channel()
    real = channel.unary_unary("/civicscore.v1.EvaluationService/GetEvaluation")
    raw = channel.unary_unary("/civicscore.bench.Echo/Raw")
    prime = channel.unary_unary("/civicscore.bench.Echo/Prime")
    names = [f"periods/{PERIOD}/evaluations/{data.units[(i * 7919) % len(data.units)].code}" for i in range(200)]
    requests = [evaluations_pb2.GetEvaluationRequest(name=name).SerializeToString() for name in names]
    reply_bytes = 0
    for name, request in zip(names, requests, strict=True):
        reply = real(request, timeout=30)
        reply_bytes += len(reply)
        prime(name.encode() + b"\0" + reply, timeout=30)
    for request in requests[:50]:  # warm up both
        real(request, timeout=30)
        raw(request, timeout=30)
    real_ms: list[float] = []
    raw_ms: list[float] = []
    for i in range(count):
        request = requests[i % len(requests)]
        for call, samples in ((real, real_ms), (raw, raw_ms)) if i % 2 == 0 else ((raw, raw_ms), (real, real_ms)):
            start = time.perf_counter()
            call(request, timeout=30)
            samples.append((time.perf_counter() - start) * 1000)
    real_p50, real_p99 = _p50_p99(real_ms)
    raw_p50, raw_p99 = _p50_p99(raw_ms)
    return {"reads": count, "reply_bytes_mean": round(reply_bytes / len(names)),
            "p50_ms": round(real_p50, 3), "p99_ms": round(real_p99, 3),
            "raw_p50_ms": round(raw_p50, 3), "raw_p99_ms": round(raw_p99, 3),
            "ratio_p50": round(real_p50 / raw_p50, 2), "ratio_p99": round(real_p99 / raw_p99, 2)}


def _p50_p99(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[max(0, int(len(ordered) * 0.99) - 1)]


def settle(database_url: str | None = None) -> None:
    """Let the copies just made reach the disk before anything is timed: their writeback would otherwise land on
    whichever figure runs first (a commit's fsync waits behind it), not on the floors measured later.
    PostgreSQL (`database_url`): a CHECKPOINT first, when the role may run one."""
    if database_url is not None:
        import psycopg

        try:
            with psycopg.connect(_psycopg_url(database_url), autocommit=True) as db:
                db.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            pass
    os.sync()


def sqlite_repeat(workdir: Path, snapshot: Path, data: Data, reads: int) -> dict[str, Any]:
    """One repeat on SQLite: a fresh server on a copy of the snapshot; floors on copies of their own."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("floor.db", "record.db", "replay.db"):
        shutil.copyfile(snapshot, workdir / name)
    shutil.copyfile(snapshot, workdir / "civicscore.db")
    cpus = os.cpu_count() or 1
    server = _server(workdir, snapshot.parent, module="bench.echo_server")
    settle()
    try:
        channel = server.channel()
        echo = channel.unary_unary("/civicscore.bench.Echo/Echo")
        ack = channel.unary_unary("/civicscore.bench.Echo/Ack")
        submit = channel.unary_unary("/civicscore.v1.OutcomeService/SubmitOutcomes")
        assert server.proc is not None
        # The server on one core, this process on the other: neither disturbs the other.
        os.sched_setaffinity(server.proc.pid, {1 % cpus})
        os.sched_setaffinity(0, {0})
        try:
            _timed(echo, data.payloads[:10])
            echo_1, ack_1 = _timed(echo, data.payloads), _timed(ack, data.payloads)
            ingest_s = _timed(submit, data.payloads)
            echo_2, ack_2 = _timed(echo, data.payloads), _timed(ack, data.payloads)
            rows = stored_outcomes_sqlite(workdir / "civicscore.db")
            floor_s = insert_floor_sqlite(workdir / "floor.db", rows)
        finally:
            all_cpus = set(range(cpus))
            os.sched_setaffinity(0, all_cpus)
            os.sched_setaffinity(server.proc.pid, all_cpus)
        n = len(data.outcomes)
        evaluate_s, again_s, first, cpu = _evaluate(server)
        read = _reads(server, data, reads)
    finally:
        server.stop()
    saved = saved_rows_sqlite(workdir / "civicscore.db")
    save_s = save_floor_sqlite(workdir / "floor.db", saved)  # the snapshot and outcomes: no evaluation
    ops = record_ingest(f"sqlite:///{workdir / 'record.db'}", data.payloads, actor="bench")
    replay_s = replay_sqlite(workdir / "replay.db", ops)
    state_s, state_rows = state_sql_sqlite(workdir / "civicscore.db")
    engine = engine_rate(f"sqlite:///{workdir / 'civicscore.db'}")
    ingest_rate = n / ingest_s
    throughput = first.units_evaluated / evaluate_s
    limit = cpus * engine["units_per_s"]
    # The least the first EvaluatePeriod could take on these cores, were all its work the engine's own (at its
    # in-process rate), the state SQL (reading) and the save floor (writing), spread evenly over the cores.
    engine_s = first.units_evaluated / engine["units_per_s"]
    least_s = (engine_s + state_s + save_s) / cpus
    for name in ("floor.db", "record.db", "replay.db"):
        (workdir / name).unlink(missing_ok=True)
    return {
        "outcomes": n, "batch": BATCH, "ingest_per_s": round(ingest_rate),
        "insert_floor_per_s": round(n / floor_s), "own_statements_per_s": round(n / replay_s),
        "own_statements": len(ops),
        "echo_per_s": round(n / statistics.mean([echo_1, echo_2])),
        "ack_per_s": round(n / statistics.mean([ack_1, ack_2])),
        "ingest_vs_insert_floor": round(ingest_rate * floor_s / n, 3),
        "ingest_vs_own_statements": round(ingest_rate * replay_s / n, 3),
        "units_evaluated": first.units_evaluated, "new_revisions": first.new_revisions,
        "evaluate_s": round(evaluate_s, 3), "evaluate_again_s": round(again_s, 3),
        "state_sql_s": round(state_s, 4), "state_sql_rows": state_rows,
        "evaluate_vs_state_sql": round(evaluate_s / state_s, 2),
        "evaluate_units_per_s": round(throughput, 1), "workers": cpus,
        "engine_units_per_s_per_core": round(engine["units_per_s"], 1),
        "evaluate_vs_engine_limit": round(throughput / limit, 3),
        # The CPU the first EvaluatePeriod took, and the share of it that the engine's own work (at its in-process
        # rate) would be: on these cores no overlap can bring `evaluate_vs_engine_limit` above that share.
        "evaluate_server_cpu_s": cpu["server_cpu_s"], "evaluate_workers_cpu_s": cpu["workers_cpu_s"],
        "evaluate_engine_cpu_share": round(first.units_evaluated / engine["units_per_s"]
                                           / (cpu["server_cpu_s"] + cpu["workers_cpu_s"]), 3),
        "save_floor_s": round(save_s, 4),
        "saved_rows": {table: len(rows) for table, rows in saved.items()},
        "saved_mib": round(sum(len(value.encode()) if isinstance(value, str) else len(value)
                               for rows in saved.values() for row in rows for value in row
                               if isinstance(value, str | bytes)) / 2**20, 1),
        "evaluate_least_s": round(least_s, 3),
        "evaluate_vs_state_sql_at_best": round(least_s / state_s, 2),
        "evaluate_vs_engine_limit_at_best": round(engine_s / (engine_s + state_s + save_s), 3),
        **{f"read_{key}": value for key, value in read.items()},
    }


def postgres_repeat(base_url: str, snapshot_url: str, snapshot_dir: Path, data: Data, workdir: Path
                    ) -> dict[str, Any]:
    """One repeat on PostgreSQL: fresh copies of the snapshot database for the server and each floor."""
    from civicscore.cluster.database import drop_database

    copies = {name: copy_database(base_url, snapshot_url, name) for name in ("server", "floor", "record", "replay")}
    try:
        server = _server(workdir, snapshot_dir, database_url=copies["server"])
        settle(copies["server"])
        try:
            submit = server.channel().unary_unary("/civicscore.v1.OutcomeService/SubmitOutcomes")
            ingest_s = _timed(submit, data.payloads)
            evaluate_s, again_s, first, _ = _evaluate(server)
        finally:
            server.stop()
        rows = stored_outcomes_postgres(copies["server"])
        copy_s = copy_floor_postgres(copies["floor"], rows)
        ops = record_ingest(copies["record"], data.payloads, actor="bench")
        replay_s = replay_postgres(copies["replay"], ops)
        state_s, state_rows = state_sql_postgres(copies["server"])
    finally:
        for url in copies.values():
            drop_database(url)
    n = len(data.outcomes)
    ingest_rate = n / ingest_s
    return {
        "outcomes": n, "batch": BATCH, "ingest_per_s": round(ingest_rate), "copy_floor_per_s": round(n / copy_s),
        "own_statements_per_s": round(n / replay_s), "own_statements": len(ops),
        "ingest_vs_copy_floor": round(ingest_rate * copy_s / n, 3),
        "ingest_vs_own_statements": round(ingest_rate * replay_s / n, 3),
        "units_evaluated": first.units_evaluated, "evaluate_s": round(evaluate_s, 3),
        "evaluate_again_s": round(again_s, 3), "state_sql_s": round(state_s, 4), "state_sql_rows": state_rows,
        "evaluate_vs_state_sql": round(evaluate_s / state_s, 2),
    }


def copy_database(base_url: str, template_url: str, label: str) -> str:
    """A new database that is a copy of `template_url`'s (nobody may be connected to it); its URL."""
    from sqlalchemy.engine import make_url

    from civicscore.cluster.database import create_fresh_database

    return create_fresh_database(base_url, prefix=f"civicscore_bench_{label}",
                                 template=str(make_url(template_url).database))


# ---- all repeats --------------------------------------------------------------------------------------------


def _median(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each number's median over the runs (the runs themselves are kept beside it)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            middle = statistics.median(run[key] for run in runs)
            out[key] = round(middle, 4) if isinstance(middle, float) else middle
        else:
            out[key] = value
    return {**out, "runs": list(runs)}


def postgres_base_url() -> str | None:
    return os.environ.get("CIVICSCORE_BENCH_POSTGRES_URL") or os.environ.get("CIVICSCORE_TEST_POSTGRES_URL")


def floor_figures(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The SQLite figures and (when PostgreSQL is configured) the PostgreSQL ones, and the headline ratios."""
    data = Data(args.units, args.per_unit)
    print(f"floors: loading {args.units} units x {args.per_unit} assignments ...", flush=True)
    snapshot = Path(load_snapshot(out / "snapshot-sqlite", data).removeprefix("sqlite:///"))
    sqlite_runs = []
    for i in range(args.floor_repeats):
        run = sqlite_repeat(out / f"sqlite-{i}", snapshot, data, args.reads)
        print(f"floors (SQLite, run {i + 1}): ingest {run['ingest_per_s']:,}/s, insert floor "
              f"{run['insert_floor_per_s']:,}/s ({run['ingest_vs_insert_floor']}), own statements "
              f"{run['own_statements_per_s']:,}/s ({run['ingest_vs_own_statements']}); evaluate {run['evaluate_s']} s, "
              f"state SQL {run['state_sql_s']} s ({run['evaluate_vs_state_sql']}x); {run['evaluate_units_per_s']} "
              f"units/s vs engine {run['engine_units_per_s_per_core']}/s/core x {run['workers']} "
              f"({run['evaluate_vs_engine_limit']}; engine's CPU share {run['evaluate_engine_cpu_share']}); "
              f"GetEvaluation p99 {run['read_p99_ms']} ms vs raw "
              f"{run['read_raw_p99_ms']} ms ({run['read_ratio_p99']}x)", flush=True)
        sqlite_runs.append(run)
    sqlite = _median(sqlite_runs)
    base_url = postgres_base_url()
    postgres: dict[str, Any]
    if base_url is None:
        print("floors: PostgreSQL figures SKIPPED: set CIVICSCORE_BENCH_POSTGRES_URL or "
              "CIVICSCORE_TEST_POSTGRES_URL", flush=True)
        postgres = {"skipped": "no PostgreSQL URL (CIVICSCORE_BENCH_POSTGRES_URL or CIVICSCORE_TEST_POSTGRES_URL)"}
    else:
        from civicscore.cluster.database import create_fresh_database, drop_database

        snapshot_url = create_fresh_database(base_url, prefix="civicscore_bench_snapshot")
        try:
            load_snapshot(out / "snapshot-postgres", data, snapshot_url)
            pg_runs = []
            for i in range(args.floor_repeats):
                run = postgres_repeat(base_url, snapshot_url, out / "snapshot-postgres", data, out / f"postgres-{i}")
                print(f"floors (PostgreSQL, run {i + 1}): ingest {run['ingest_per_s']:,}/s, COPY floor "
                      f"{run['copy_floor_per_s']:,}/s ({run['ingest_vs_copy_floor']}), own statements "
                      f"{run['own_statements_per_s']:,}/s ({run['ingest_vs_own_statements']}); evaluate "
                      f"{run['evaluate_s']} s, state SQL {run['state_sql_s']} s ({run['evaluate_vs_state_sql']}x)",
                      flush=True)
                pg_runs.append(run)
            postgres = _median(pg_runs)
        finally:
            drop_database(snapshot_url)
    return {
        "ingest_sqlite_vs_insert_floor": sqlite["ingest_vs_insert_floor"],
        "ingest_sqlite_vs_own_statements": sqlite["ingest_vs_own_statements"],
        "ingest_pg_vs_copy_floor": postgres.get("ingest_vs_copy_floor"),
        "ingest_pg_vs_own_statements": postgres.get("ingest_vs_own_statements"),
        "evaluate_sqlite_vs_state_sql": sqlite["evaluate_vs_state_sql"],
        "evaluate_pg_vs_state_sql": postgres.get("evaluate_vs_state_sql"),
        "evaluate_vs_engine_limit": sqlite["evaluate_vs_engine_limit"],
        "evaluate_engine_cpu_share": sqlite["evaluate_engine_cpu_share"],
        "evaluate_vs_state_sql_at_best": sqlite["evaluate_vs_state_sql_at_best"],
        "evaluate_vs_engine_limit_at_best": sqlite["evaluate_vs_engine_limit_at_best"],
        "get_evaluation_p99_vs_raw": sqlite["read_ratio_p99"],
        "sqlite": sqlite,
        "postgres": postgres,
        "repeats": args.floor_repeats,
    }


# ---- RESULTS.md ---------------------------------------------------------------------------------------------


def floor_rows(r: dict[str, Any]) -> str:
    """The rows of (a)-(c) in RESULTS.md's table (medians over the repeats)."""
    s, pg = r["sqlite"], r["postgres"]
    rows = [
        f"| (a) SubmitOutcomes into SQLite, {s['outcomes']:,} outcomes in batches of {s['batch']:,} with idempotency "
        f"keys | {s['ingest_per_s']:,} outcomes/s | plain sqlite3 insert of the same rows into the same table "
        f"(indexes, foreign key, WAL, synchronous=FULL), one commit per 1,000: {s['insert_floor_per_s']:,}/s | "
        f"**{r['ingest_sqlite_vs_insert_floor']}** (`ingest_sqlite_vs_insert_floor`) | >= 0.30 |",
        f"| (a') the same | | the server's own {s['own_statements']:,} statements for these batches, replayed with "
        f"plain sqlite3: {s['own_statements_per_s']:,}/s | {s['ingest_vs_own_statements']} | (where the time goes) |",
        f"| (a'') the same | | echo RPC, same payload in and back: {s['echo_per_s']:,}/s; ack-only RPC: "
        f"{s['ack_per_s']:,}/s | {round(s['ingest_per_s'] / s['echo_per_s'], 3)}; "
        f"{round(s['ingest_per_s'] / s['ack_per_s'], 3)} | (transport alone) |",
    ]
    if "skipped" in pg:
        rows.append(f"| (a''') SubmitOutcomes into PostgreSQL | SKIPPED: {pg['skipped']} | | | >= 0.30 |")
    else:
        rows += [
            f"| (a''') SubmitOutcomes into PostgreSQL, the same batches | {pg['ingest_per_s']:,} outcomes/s | psycopg "
            f"binary COPY of the same rows into the same table, one commit per 1,000: {pg['copy_floor_per_s']:,}/s | "
            f"**{r['ingest_pg_vs_copy_floor']}** (`ingest_pg_vs_copy_floor`) | >= 0.30 |",
            f"| (a'''') the same | | the server's own {pg['own_statements']:,} statements replayed with psycopg: "
            f"{pg['own_statements_per_s']:,}/s | {pg['ingest_vs_own_statements']} | (where the time goes) |",
        ]
    rows.append(
        f"| (b) EvaluatePeriod of {PERIOD}, {s['units_evaluated']:,} active units ({s['new_revisions']:,} new "
        f"revisions), SQLite | {s['evaluate_s']} s (again, inputs unchanged: {s['evaluate_again_s']} s) | the six "
        f"counts per unit over `assignment_states`, one plain SQL statement: {s['state_sql_s']} s | "
        f"**{r['evaluate_sqlite_vs_state_sql']}x** (`evaluate_sqlite_vs_state_sql`) | <= 3.0x |")
    if "skipped" not in pg:
        rows.append(
            f"| (b') the same on PostgreSQL | {pg['evaluate_s']} s (again: {pg['evaluate_again_s']} s) | the same SQL: "
            f"{pg['state_sql_s']} s | {r['evaluate_pg_vs_state_sql']}x (`evaluate_pg_vs_state_sql`) | (beside it) |")
    rows += [
        f"| (b'') EvaluatePeriod throughput, SQLite | {s['evaluate_units_per_s']:,} units/s | the engine in a process "
        f"of its own on one core, the same facts, evaluation and encoding, no database or pipe: "
        f"{s['engine_units_per_s_per_core']:,} units/s x {s['workers']} workers | **{r['evaluate_vs_engine_limit']}** "
        f"(`evaluate_vs_engine_limit`) | >= 0.75 |",
        f"| (b''') what bounds (b'') | CPU of the first EvaluatePeriod: server {s['evaluate_server_cpu_s']} s, "
        f"engine workers {s['evaluate_workers_cpu_s']} s | the engine's own work at its in-process rate: "
        f"{round(s['units_evaluated'] / s['engine_units_per_s_per_core'], 3)} s | {s['evaluate_engine_cpu_share']} "
        f"(`evaluate_engine_cpu_share`) | (the most (b'') can reach on these cores) |",
        f"| (b'''') what bounds (b) and (b'') whatever the server does | the engine's own work "
        f"({round(s['units_evaluated'] / s['engine_units_per_s_per_core'], 3)} CPU-s), the state SQL "
        f"({s['state_sql_s']} s) and the save floor: plain sqlite3 insert of the rows the call saved "
        f"({s['saved_rows']['evaluations']:,} evaluations, {s['saved_rows']['recommendations']:,} recommendations "
        f"and their reasons, {s['saved_mib']} MiB of text in UTF-8) in one transaction, {s['save_floor_s']} s; "
        f"the three spread evenly over {s['workers']} cores: {s['evaluate_least_s']} s | | (b) at best "
        f"{r['evaluate_vs_state_sql_at_best']}x (`evaluate_vs_state_sql_at_best`); (b'') at best "
        f"{r['evaluate_vs_engine_limit_at_best']} (`evaluate_vs_engine_limit_at_best`) | (the floors' own bound) |",
        f"| (c) GetEvaluation, {s['read_reads']:,} sequential calls (replies of {s['read_reply_bytes_mean']:,} bytes "
        f"on average) | p50 {s['read_p50_ms']} ms, p99 {s['read_p99_ms']} ms | a unary call returning the same "
        f"reply bytes through the same interceptor, alternating: p50 {s['read_raw_p50_ms']} ms, p99 "
        f"{s['read_raw_p99_ms']} ms | p99 **{r['get_evaluation_p99_vs_raw']}x** (`get_evaluation_p99_vs_raw`); "
        f"p50 {s['read_ratio_p50']}x | p99 <= 1.6x |",
    ]
    return "\n".join(rows)


def floor_notes(r: dict[str, Any]) -> str:
    s = r["sqlite"]
    runs = "one run" if r["repeats"] == 1 else f"the median of {r['repeats']} runs"
    return f"""(a)-(c) are {runs}, each on a fresh server (one engine worker per core) and a
fresh copy of one database loaded with the units and assignments, timed once the copies have reached
the disk (`sync`; on PostgreSQL a CHECKPOINT first); every run's figures are in
`bench/out/results.json`. In (a) the server is pinned to one core and the benchmark to the other; the
floors run in the benchmark process on copies of the database as it was before the ingest: the
insert floor writes the rows the server stored (read back from it) and nothing else, no checks,
no current state, no idempotency; the replay runs, in order, every statement the store ran for the
same batches ({s['own_statements']:,} of them, recorded from a store in the benchmark process through
SQLAlchemy's cursor events, commits included), so the gap between the two is the server's SQL and
the gap between the replay and the server is the Python around it. On PostgreSQL nothing is pinned:
the server, PostgreSQL and the benchmark share the cores. (b) counts the whole RPC (facts, the two
rule phases per unit, encoding, saving evaluations and recommendations); its baseline reads the
table the server reads, in one statement, and none of the rest. (b'') divides the units per second
of (b) by the engine's own rate in a process pinned to one core on the facts the server gathered,
evaluating and encoding each unit as a worker does, times the server's workers ({s['workers']}).
(b''') reads the CPU time of the server and of its engine workers from /proc before and after the
first EvaluatePeriod: with one worker per core, all cores busy, the units per second can at best be
the engine's rate times the cores times the engine's share of that CPU (its own work at its
in-process rate, over all the CPU the call took: gathering facts, passing them and the results
between processes, saving); that share bounds (b'') whatever the overlap. (b'''') asks what the
targets need: were the server's work nothing but the engine's (at its in-process rate), the reading
(the state SQL) and the writing (the save floor, on a copy of the database without evaluations),
spread evenly over the cores, the call would take their sum over the cores; no server can do better
without making the engine's work or the saved rows smaller.
(c) sends the same request bytes to both calls and reads the reply bytes without decoding them."""
