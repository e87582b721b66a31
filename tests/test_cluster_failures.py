"""Replicas failing under load, through Debian's nginx in front of real processes on one PostgreSQL database.

- Kill -9 under load: writers keep writing four kinds of audited data through nginx while a replica is
  killed ten times (each replica in turn), each time with a write of the round's kind held in flight on it
  in the database; after each kill `civicscore audit verify` (the CLI) finds the hash chain intact, and at
  the end every acknowledged write is stored exactly once, read back through every replica directly.
- Rolling restart: each replica in turn gets SIGTERM while an EvaluatePeriod through nginx has been in
  flight on it for more than 10 s; clients that never retry keep calling through nginx, and no call fails.

A call is held in flight by locking the table it writes (`Cluster.writes_held`); the replica serving it is
found from the database (the client port of the waiting session, owned by one replica's process), since
nginx logs a call only when it ends.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from civicscore.cluster.nginx import AccessEntry
from civicscore_api.v1 import measurements_pb2, units_pb2
from civicscore_client import Client
from civicscore_client.cli import app
from tests.cluster import Cluster, running_cluster
from tests.scenario import PERIOD, REPORTED, assignment, completed
from tests.serverproc import hanoi_units, timestamp
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

KILLS = 10
WRITERS = 3
BATCH = 4  # assignments and outcomes per write
KINDS = ("assignments", "outcomes", "measurements", "targets")  # the tables written, one held per round
MAX_PROBES = 12  # extra writes per round until one waits on the replica to kill (round robin: a few)
EVALUATION_HELD_S = 11.0  # an EvaluatePeriod is in flight longer than 10 s when its replica gets SIGTERM
SHUTDOWN_GRACE_S = 120  # longer than the held EvaluatePeriod: the replica lets it finish
EVALUATED_PERIODS = ("2026-Q3", "2026-Q2", "2026-Q1", "2025-Q4", "2025-Q3")  # quarters of the ruleset in force
LOADERS = 3  # clients calling through nginx during a rolling restart, none retrying
# Measurements and targets are keyed by unit, period and indicator, and an indicator must be one the ruleset
# in force for the period knows: the n-th such write gets the n-th (indicator, unit, period).
INDICATORS = ("dx.esigned_documents", "dx.fully_online", "dx.on_time_resolution", "dx.online_applications",
              "dx.online_payment", "dx.records_digitised", "dx.satisfaction")
MEASURED_PERIODS = ("2026-Q3", "2026-Q2", "2026-Q1", "2025-Q4", "2025-Q3")
# The test's clients are one identity calling as fast as they can: per-identity limits are not what is tested.
LIMITS = ("--rate-limit", "100000", "--rate-burst", "100000", "--max-in-flight", "64")
EVALUATE = "/civicscore.v1.EvaluationService/EvaluatePeriod"


# ---- finding the replica that serves a held call --------------------------------------------------------

def local_ports(pid: int) -> set[int]:
    """The local TCP ports of process `pid`'s sockets (Linux /proc: its socket inodes, found in net/tcp)."""
    inodes = set()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def waiting_replicas(cluster: Cluster, held_by: int) -> Counter[int]:
    """How many database sessions of each running replica wait, directly or behind others, on the lock of
    session `held_by` (`Cluster.writes_held`): those stay in flight until it is released. A session waiting
    for a moment on another lock (two writers' audit entries, say) is not counted: its call may end before
    the replica is killed. A session is matched to its replica by its client port (the replicas' pooled
    sessions carry no application name)."""
    engine = create_engine(cluster.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            waiting = connection.execute(text(
                "SELECT pid, client_port, pg_blocking_pids(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'")).all()
    finally:
        engine.dispose()
    held = {held_by}
    grew = True
    while grew:  # sessions blocked by the holder, or by a session it blocks
        stuck = {pid for pid, _, blockers in waiting if held & set(blockers or ())}
        grew = not stuck <= held
        held |= stuck
    ports = [port for pid, port, _ in waiting if pid in held]
    if not ports:
        return Counter()
    owners = {port: index for index, replica in enumerate(cluster.replicas)
              if replica.proc is not None and replica.proc.poll() is None
              for port in local_ports(replica.proc.pid)}
    return Counter(owners[port] for port in ports if port in owners)


def hold_a_call_on(cluster: Cluster, victim: int, held_by: int, launch: Callable[[int], object]) -> int:
    """With the table of `launch`'s call held by session `held_by`, launch calls through nginx (`launch(n)`
    starts the n-th in a thread) until one waits in the database on replica `victim`; how many were launched."""
    launched = 0
    while launched < MAX_PROBES:
        waiting = waiting_replicas(cluster, held_by)
        if waiting[victim]:
            return launched
        launch(launched)
        launched += 1

        def one_more_waits(before: int = sum(waiting.values())) -> bool:
            # The new call reaches the database (or another writer's call does): either way one more waits.
            return sum(waiting_replicas(cluster, held_by).values()) > before

        assert eventually(one_more_waits, timeout_s=120), \
            f"call {launched} never reached the database: {waiting_replicas(cluster, held_by)}"
    assert eventually(lambda: waiting_replicas(cluster, held_by)[victim] > 0, timeout_s=30), \
        f"{launched} calls through nginx and none waits on replica {victim}: {waiting_replicas(cluster, held_by)}"
    return launched


# ---- kill -9 under load ------------------------------------------------------------------------------

class Ledger:
    """Every write the cluster acknowledged: its kind, its idempotency key and the ids it stored."""

    def __init__(self, units: list[str]) -> None:
        self.units = units
        self.stored: dict[str, list[str]] = {kind: [] for kind in KINDS}
        self._numbers = itertools.count()
        self.keys: list[str] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def acknowledged(self, kind: str, key: str, ids: list[str]) -> None:
        with self._lock:
            self.stored[kind].extend(ids)
            self.keys.append(key)

    def measured(self) -> tuple[str, str, str]:
        """A fresh (indicator, unit code, period) for one measurement or target."""
        with self._lock:
            number = next(self._numbers)
        per_period = len(INDICATORS) * len(self.units)
        return (INDICATORS[number % len(INDICATORS)], self.units[number // len(INDICATORS) % len(self.units)],
                MEASURED_PERIODS[number // per_period])

    def failed(self, what: str, error: BaseException) -> None:
        with self._lock:
            self.failures.append(f"{what}: {error!r}")


def write(client: Client, ledger: Ledger, kind: str, name: str) -> None:
    """One audited write of `kind` named `name`, with its own idempotency key; checks its reply says it
    stored everything anew (a retry after a cut gets the first reply, stored or replayed, never "unchanged")."""
    key = f"{name}-{kind}"
    ids = [f"{name}-{item}" for item in range(BATCH)]
    if kind == "assignments":
        reply_a = client.upsert_assignments([assignment(aid, "SNV", "2026-08-20") for aid in ids],
                                            idempotency_key=key)
        assert (reply_a.created, reply_a.updated, reply_a.unchanged) == (BATCH, 0, 0), f"{key}: {reply_a}"
    elif kind == "outcomes":
        reply_o = client.submit_outcomes([completed(aid, "2026-08-10") for aid in ids], idempotency_key=key)
        assert (reply_o.accepted, reply_o.duplicates) == (BATCH, 0), f"{key}: {reply_o}"
        ids = [f"{aid}-done" for aid in ids]
    elif kind == "measurements":
        indicator, unit, period = ledger.measured()
        ids = [f"{indicator} {unit} {period}"]
        reply_m = client.submit_measurements([measurements_pb2.Measurement(
            unit=f"units/{unit}", period=period, indicator=indicator, numerator=3, denominator=4,
            reported_at=timestamp(REPORTED), reporting_system="chaos")], idempotency_key=key)
        assert (reply_m.created, reply_m.updated, reply_m.unchanged) == (1, 0, 0), f"{key}: {reply_m}"
    else:
        indicator, unit, period = ledger.measured()
        ids = [f"{indicator} {unit} {period}"]
        reply_t = client.upsert_targets([measurements_pb2.Target(
            indicator=indicator, period=period, unit=f"units/{unit}", value=0.5)], idempotency_key=key)
        assert (reply_t.created, reply_t.updated, reply_t.unchanged) == (1, 0, 0), f"{key}: {reply_t}"
    ledger.acknowledged(kind, key, ids)


def retrying_client(cluster: Cluster) -> Client:
    # The SDK resends a call cut by the kill (UNAVAILABLE) with the same idempotency key.
    return cluster.client(max_attempts=10, initial_backoff=0.1, max_backoff=1.0, timeout=120)


def writer(cluster: Cluster, ledger: Ledger, number: int, stop: threading.Event) -> None:
    """Mixed writes through nginx until `stop`: each step writes assignments, their outcomes, a
    measurement and a target."""
    with retrying_client(cluster) as client:
        step = 0
        while not stop.is_set():
            name = f"w{number}_s{step}"
            try:
                for kind in ("assignments", "outcomes", "measurements", "targets"):
                    write(client, ledger, kind, name)
            except Exception as error:  # any failure is counted and reported
                ledger.failed(name, error)
                return
            step += 1


def probe(cluster: Cluster, ledger: Ledger, kind: str, name: str) -> None:
    """One more write of `kind` through nginx (outcomes need their assignments first)."""
    with retrying_client(cluster) as client:
        try:
            if kind == "outcomes":
                write(client, ledger, "assignments", name)
            write(client, ledger, kind, name)
        except Exception as error:  # counted and reported
            ledger.failed(name, error)


def audit_verify(address: str, token: str, expected: str) -> str:
    """`civicscore audit verify` against one replica; asserts the chain is intact and returns its head."""
    result = CliRunner().invoke(app, ["--server", address, "audit", "verify",
                                      *(("--expected", expected) if expected else ())],
                                env={"CIVICSCORE_TOKEN": token, "COLUMNS": "250"})
    assert result.exit_code == 0, f"audit verify on {address}:\n{result.output}"
    assert "intact" in result.stdout and not re.search(r"\b(DELETED|EDITED|REORDERED|HEAD_MISSING)\b",
                                                        result.stdout), result.stdout
    head = re.search(r"--expected (\d+:[0-9a-f]+)", result.stdout)
    assert head is not None, result.stdout
    return head[1]


def what_nginx_saw(cluster: Cluster) -> str:
    """For a failure's message: the calls nginx answered 502 (which replicas, their statuses) and its error log."""
    refused = [entry for entry in cluster.calls() if entry.status == "502"]
    lines = [f"  {entry.method} tried={entry.tried} upstream_statuses={entry.upstream_statuses}"
             for entry in refused[-40:]]
    return (f"nginx answered {len(refused)} call(s) with 502; the last ones:\n" + "\n".join(lines) +
            f"\nnginx's error log:\n{cluster.nginx.error_log_tail(60)}")


def cut_on(cluster: Cluster, victim: int, entries: list[AccessEntry]) -> list[AccessEntry]:
    """Calls that were cut on replica `victim`: nginx had sent them there and got no reply (502)."""
    return [entry for entry in entries
            if entry.tried and entry.tried[-1] == cluster.replica_address(victim) and not entry.answered_by
            and entry.upstream_statuses[-1] == "502"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    extra_args = ("--shutdown-grace", str(SHUTDOWN_GRACE_S), *LIMITS)
    with running_cluster(tmp_path, replicas=3, extra_args=extra_args) as running:
        running.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=60)
        yield running


def kill_with_a_write_in_flight(cluster: Cluster, ledger: Ledger, round_number: int,
                               probes: list[threading.Thread]) -> int:
    """Hold this round's table, make sure a write of it waits on the round's replica, SIGKILL that replica,
    then release the table and start the replica again; how many calls nginx saw cut on it."""
    victim, kind = round_number % len(cluster.replicas), KINDS[round_number % len(KINDS)]

    def launch(n: int) -> None:
        thread = threading.Thread(target=probe, args=(cluster, ledger, kind, f"p{round_number}_{n}"))
        probes.append(thread)
        thread.start()

    def cut() -> list[AccessEntry]:
        return cut_on(cluster, victim, cluster.calls()[seen:])

    seen = len(cluster.calls())
    with cluster.writes_held(kind) as held_by:
        hold_a_call_on(cluster, victim, held_by, launch)
        cluster.kill(victim)  # with a write of `kind` in flight on it, waiting in the database
        # nginx answers the cut call with 502: its client sees UNAVAILABLE and resends it, through nginx.
        assert eventually(lambda: bool(cut()), timeout_s=60), f"round {round_number}: no call cut on {victim}"
    cluster.restart(victim)
    return len(cut())


def test_kill_9_ten_times_under_mixed_writes_loses_and_duplicates_nothing_and_the_audit_chain_holds(
        cluster: Cluster) -> None:
    ledger = Ledger([unit.code for unit in hanoi_units()])
    stop = threading.Event()
    writers = [threading.Thread(target=writer, args=(cluster, ledger, number, stop)) for number in range(WRITERS)]
    probes: list[threading.Thread] = []
    head = ""
    cut_calls = 0
    for thread in writers:
        thread.start()
    try:
        for round_number in range(KILLS):
            cut_calls += kill_with_a_write_in_flight(cluster, ledger, round_number, probes)
            # The real verifier (`civicscore audit verify`), asked of the replica just killed and started again,
            # with the head the previous round noted: no entry lost, edited or reordered, none cut off the end.
            head = audit_verify(cluster.replica_address(round_number % len(cluster.replicas)), cluster.token, head)
            assert not ledger.failures, f"round {round_number}: {ledger.failures}\n{what_nginx_saw(cluster)}"
    finally:
        stop.set()
        for thread in writers + probes:
            thread.join(300)
    assert not ledger.failures, f"writes failed through nginx: {ledger.failures}\n{what_nginx_saw(cluster)}"
    assert cut_calls >= KILLS
    for kind in KINDS:
        assert len(ledger.stored[kind]) == len(set(ledger.stored[kind])), kind  # each id is written once

    for index, replica in enumerate(cluster.replicas):  # every replica reads the one truth
        with replica.client(timeout=120) as direct:
            stored = {
                "assignments": [a.assignment_id for a in direct.list_assignments(unit="SNV")],
                "outcomes": [o.outcome_id for o in direct.list_outcomes(unit="SNV")],
                "measurements": [f"{m.indicator} {m.unit.removeprefix('units/')} {m.period}"
                                 for m in direct.list_measurements()],
                "targets": [f"{t.indicator} {t.unit.removeprefix('units/')} {t.period}" for t in direct.list_targets()],
            }
        for kind in KINDS:
            ours = sorted(stored[kind])  # the cluster holds nothing else of these kinds
            expected = sorted(ledger.stored[kind])
            assert ours == expected, (f"replica {index}, {kind}: lost {sorted(set(expected) - set(ours))}, "
                                      f"{len(ours) - len(set(ours))} duplicated, "
                                      f"unacknowledged {sorted(set(ours) - set(expected))}")
    with cluster.replicas[0].client(timeout=120) as direct:
        events = list(direct.list_audit_events())
    audited = Counter(json.loads(event.detail_json).get("idempotency_key") for event in events
                      if event.outcome == "done" and event.detail_json.startswith("{"))
    # Each acknowledged write changed the data once, in one transaction with its one audit entry.
    assert {key: audited[key] for key in ledger.keys} == dict.fromkeys(ledger.keys, 1)
    audit_verify(cluster.replica_address(1), cluster.token, head)
    print(f"{KILLS} kills, {len(ledger.keys)} writes acknowledged, {cut_calls} calls cut")


# ---- rolling restart ------------------------------------------------------------------------------

def access_lines(cluster: Cluster) -> list[dict[str, str]]:
    """nginx's access log as it wrote it (with each call's request_time, which AccessEntry leaves out)."""
    return [json.loads(raw) for raw in cluster.nginx.access_log.read_text().splitlines() if raw.strip()]


class Load:
    """Clients calling through nginx (reads and writes) until stopped, by default never retrying; counts every
    call."""

    def __init__(self, cluster: Cluster, *, max_attempts: int = 1) -> None:
        self.cluster = cluster
        self.max_attempts = max_attempts
        self.calls = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._go = threading.Event()
        self._go.set()
        self._busy = 0
        self._threads = [threading.Thread(target=self._run, args=(number,)) for number in range(LOADERS)]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No load while the block runs (calls in flight finish first): consecutive calls of the test then go to
        consecutive replicas (nginx's round robin), so it can steer one to a given replica in a few tries."""
        with self._lock:
            self._go.clear()
        try:
            assert eventually(lambda: self._busy == 0, timeout_s=120)
            yield
        finally:
            self._go.set()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(300)

    def count(self, error: BaseException | None, what: str) -> None:
        with self._lock:
            self.calls += 1
            if error is not None:
                self.failures.append(f"{what}: {error!r}")

    def _run(self, number: int) -> None:
        with self.cluster.client(max_attempts=self.max_attempts, timeout=120) as client:
            step = 0
            while not self.stop.is_set():
                name = f"l{number}_{step}"
                # The writes are targets: an EvaluatePeriod locks the rows of the units it evaluates until it
                # commits, so a write that references a unit (an assignment, an outcome) would wait for it.
                target = measurements_pb2.Target(indicator=INDICATORS[step % len(INDICATORS)], period=PERIOD,
                                                 unit_kind=units_pb2.UNIT_KIND_WARD, value=(step % 99 + 1) / 100)
                calls: tuple[tuple[str, Callable[[], object]], ...] = (
                    ("GetActiveRuleset", client.get_active_ruleset),
                    ("UpsertTargets", partial(client.upsert_targets, [target], idempotency_key=f"{name}-targets")),
                    ("GetUnit", partial(client.get_unit, "SNV")),
                    ("WhoAmI", client.whoami))
                for what, call in calls:
                    while True:  # wait while paused; counted busy before the pause can see it idle
                        self._go.wait()
                        with self._lock:
                            if self._go.is_set():
                                self._busy += 1
                                break
                    try:
                        call()
                    except Exception as error:  # every failure is counted and reported
                        self.count(error, f"{what} {name}")
                    else:
                        self.count(None, what)
                    finally:
                        with self._lock:
                            self._busy -= 1
                step += 1


def sigterm_during_a_long_evaluation(cluster: Cluster, load: Load, victim: int, *, drain: bool) -> list[object]:
    """Hold the evaluations table, make sure an EvaluatePeriod through nginx waits on replica `victim`, SIGTERM
    it, keep the call waiting until it has been in flight more than 10 s (with load going on meanwhile),
    release it; check the replica finished it and exited 0, and start the replica again. With `drain`, the
    replica is first taken out of nginx's upstream (a reload: nginx's old workers finish the calls they hold,
    the new ones send calls elsewhere) and put back once it runs again, as an operator restarts a replica.
    The replies of the round's EvaluatePeriod calls (one, or more when round robin sent the first ones
    elsewhere)."""
    replies: list[object] = []
    callers: list[threading.Thread] = []
    started: list[float] = []

    def evaluate(period: str) -> None:
        with cluster.client(max_attempts=1, timeout=600) as client:
            try:
                replies.append(client.evaluate_period(period, idempotency_key=f"roll-{victim}-{period}"))
            except Exception as error:
                replies.append(error)

    def launch(n: int) -> None:
        callers.append(threading.Thread(target=evaluate, args=(EVALUATED_PERIODS[n % len(EVALUATED_PERIODS)],)))
        started.append(time.monotonic())
        callers[-1].start()

    def evaluations_logged() -> list[dict[str, str]]:
        return [line for line in access_lines(cluster)[lines_before:] if line["method"] == EVALUATE]

    # New data due in every period the round may evaluate: each evaluation then saves new revisions (one that
    # changes nothing writes no evaluation, so it would not wait for the held table).
    quarters = {period: (f"{period[:4]}-{3 * int(period[-1]) - 2:02d}-01",
                         f"{period[:4]}-{3 * int(period[-1]) - 1:02d}-15") for period in EVALUATED_PERIODS}
    due = [(f"roll{victim}-{period}-{item}", first, middle) for period, (first, middle) in quarters.items()
           for item in range(3)]
    with cluster.client(timeout=120) as client:
        client.upsert_assignments([assignment(aid, "SNV", middle, assigned=first) for aid, first, middle in due])
        client.submit_outcomes([completed(aid, middle) for aid, _, middle in due])
    replica = cluster.replicas[victim]
    assert replica.proc is not None
    lines_before = len(access_lines(cluster))
    with cluster.writes_held("evaluations") as held_by:
        with load.paused():
            hold_a_call_on(cluster, victim, held_by, launch)
        if drain:
            cluster.drain(victim)
        replica.proc.send_signal(signal.SIGTERM)
        assert eventually(lambda: "shutting down: new calls are refused" in replica.log(), timeout_s=60)
        calls_at_sigterm = load.calls
        # The call stays in flight on the stopping replica past 10 s, while the load goes on through nginx. Which
        # of the launched calls waits there is not known, but none started after the last one launched.
        assert eventually(lambda: time.monotonic() - started[-1] > EVALUATION_HELD_S
                          and load.calls >= calls_at_sigterm + 20, timeout_s=60)
        assert cluster.running(victim), "the replica exited with a call in flight"
    for thread in callers:
        thread.join(300)
    assert replica.proc.wait(SHUTDOWN_GRACE_S + 60) == 0, replica.log()[-3000:]
    replica.stop()  # closes its channel; the process has exited
    assert len(replies) == len(callers)
    # nginx logs a call just after its last byte: wait for this round's EvaluatePeriod lines.
    assert eventually(lambda: len(evaluations_logged()) >= len(callers), timeout_s=30)
    on_victim = [line for line in evaluations_logged()
                 if line["upstream"].split(", ")[-1] == cluster.replica_address(victim)]
    assert on_victim and all(line["grpc_status"] == "0" for line in on_victim), on_victim
    assert max(float(line["request_time"]) for line in on_victim) > 10, on_victim
    cluster.restart(victim)
    if drain:
        cluster.undrain()
    # Back in nginx's rotation (a replica whose connection failed is left out for fail_timeout).
    mark = len(cluster.calls())
    assert eventually(lambda: victim in cluster.answers(cluster.calls()[mark:]), timeout_s=120)
    return replies


@pytest.mark.parametrize("drain", [True, False], ids=["drained-first", "unannounced"])
def test_rolling_restart_sigterm_during_a_long_evaluate_period_fails_no_call_through_nginx(
        cluster: Cluster, drain: bool) -> None:
    """Drained first (taken out of nginx's upstream, then SIGTERM), no call fails, though the clients never
    retry: this is how the README says to restart a replica. Unannounced (SIGTERM alone; open-source nginx
    has no active health checks), a call nginx sends on a kept-alive connection just as the replica sends
    its GOAWAY is refused unprocessed (nginx logs 502 and does not resend a POST), and one that reaches the
    replica as its shutdown begins is answered with a bare CANCELLED by gRPC itself: the SDK retries both
    (UNAVAILABLE, and a CANCELLED it did not ask for), so clients with the SDK's defaults see no failed call."""
    seen = len(cluster.calls())
    evaluations: list[object] = []
    with Load(cluster, max_attempts=1 if drain else 5) as load:
        assert eventually(lambda: load.calls >= 10, timeout_s=120)
        for victim in range(len(cluster.replicas)):
            replies = sigterm_during_a_long_evaluation(cluster, load, victim, drain=drain)
            assert not [reply for reply in replies if isinstance(reply, Exception)], replies
            assert not load.failures, f"round {victim}: {load.failures}"
            evaluations.extend(replies)
    assert not load.failures, f"{len(load.failures)} of {load.calls} calls failed: {load.failures[:10]}"

    logged = cluster.calls()[seen:]
    assert {cluster.index_of(entry.answered_by) for entry in logged if entry.method == EVALUATE} == {0, 1, 2}
    unanswered = [entry for entry in logged if not entry.answered_by or entry.grpc_status != "0"]
    if drain:  # nginx's side: every call it took was answered by a replica, with OK
        assert unanswered == []
    else:  # a call refused was refused unprocessed by a replica beginning its shutdown (GOAWAY, which nginx
        # answers with 502, or gRPC's bare CANCELLED), and its client retried it: no call failed
        assert all(entry.upstream_statuses[-1] == "502" or entry.grpc_status == "1" for entry in unanswered), \
            unanswered
    print(f"rolling restart ({'drained first' if drain else 'unannounced'}): {load.calls} calls by clients "
          f"{'without retries' if drain else 'with the SDK retries'}, {len(load.failures)} failed, "
          f"{len(unanswered)} refused by a stopping replica; {len(evaluations)} EvaluatePeriod calls, each answered")
