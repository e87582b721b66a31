"""Several server processes on one PostgreSQL database follow one timeline of rulesets (issue 12, item 1).

Real processes (tests/serverproc.py) sharing a fresh schema: an activation or rollback through one is
in force on the others (by NOTIFY, or by reconciliation when a notice is missed); an evaluation is
never saved with a ruleset no longer in force; start-up and the rules folder record one activation
whatever the number of replicas; the folder is watched by one replica at a time.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from civicscore_api.v1 import units_pb2
from civicscore_client import Client
from tests.postgres_support import fresh_postgres_schema, postgres_base_url
from tests.scenario import PERIOD, load_quarter
from tests.serverproc import RULES, ServerProcess, hanoi_units
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_postgres_schema(postgres_base_url()) as url:
        yield url


def _edited(rules: Path, folder: Path, threshold: str) -> dict[str, str]:
    """The default rule files with another praise threshold (a different digest, same quarter)."""
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(rules.glob("*.yaml"))}
    files["flags.yaml"] = files["flags.yaml"].replace("params: {threshold: 0.8}", f"params: {{threshold: {threshold}}}")
    folder.mkdir(parents=True, exist_ok=True)
    return files


_TOKEN: dict[str, str] = {}  # database -> the administrator's token, written by the replica that made it


def _start(workdir: Path, database: str, *, rules: Path = RULES, watch: bool = False,
           extra: tuple[str, ...] = ()) -> ServerProcess:
    """A replica on `database`; replicas after the first use the first one's administrator token."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = ServerProcess(workdir, database_url=database, rules=rules, watch_rules=watch, extra_args=extra).start()
    if proc.token:
        _TOKEN[database] = proc.token
    else:
        proc.token = _TOKEN[database]
    return proc


def _digest(proc: ServerProcess) -> str:
    with proc.client() as c:
        return c.get_ruleset_status().active.digest


def _activations(database: str) -> list[tuple[int, str, str, bool]]:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT seq, digest, source, rolled_back_at IS NOT NULL FROM ruleset_activations ORDER BY seq"))
            return [(int(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]
    finally:
        engine.dispose()


def test_an_activation_through_one_replica_is_in_force_on_the_others(tmp_path: Path, database: str) -> None:
    a = _start(tmp_path / "a", database)
    b = _start(tmp_path / "b", database)
    c = _start(tmp_path / "c", database)
    try:
        assert len(_activations(database)) == 1  # three start-ups with the same folder: one activation
        files = _edited(RULES, tmp_path, "0.75")
        with a.client() as admin:
            started = time.monotonic()
            activated = admin.activate_ruleset(files, reason="ngưỡng mới").ruleset.digest
        assert eventually(lambda: _digest(b) == activated and _digest(c) == activated, timeout_s=30)
        print(f"activation seen by the other replicas after {time.monotonic() - started:.2f} s")
        with b.client() as reader:
            status = reader.get_ruleset_status()
            assert status.following == "notices" and status.applied_activation == 2
        with c.client() as admin:  # a rollback through another replica is followed as well
            admin.rollback_ruleset(reason="nhầm ngưỡng")
        assert eventually(lambda: _digest(a) != activated and _digest(b) != activated, timeout_s=30)
        assert _digest(a) == _digest(b) == _digest(c)
    finally:
        for proc in (a, b, c):
            proc.stop()


def test_a_missed_notice_is_caught_up(tmp_path: Path, database: str) -> None:
    """B's listener connection is killed; the activation made meanwhile through A still reaches B."""
    a = _start(tmp_path / "a", database)
    b = _start(tmp_path / "b", database)
    try:
        assert b.proc is not None
        admin_db = create_engine(database)
        with admin_db.connect() as connection:
            killed = connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": f"civicscore-listener-{b.proc.pid}"}).all()
        admin_db.dispose()
        assert killed == [(True,)]
        with a.client() as admin:
            activated = admin.activate_ruleset(_edited(RULES, tmp_path, "0.7"), reason="thử").ruleset.digest
        assert eventually(lambda: _digest(b) == activated, timeout_s=30)
        assert "the ruleset listener lost its database connection" in b.log()
    finally:
        a.stop()
        b.stop()


def test_no_evaluation_is_saved_with_a_ruleset_no_longer_in_force(tmp_path: Path, database: str) -> None:
    """B evaluates slowly; A activates another ruleset meanwhile: B's save is refused and redone with the
    ruleset now in force, so every stored revision was made with the ruleset in force when it was saved."""
    a = _start(tmp_path / "a", database)
    b = _start(tmp_path / "b", database, extra=("--engine-fault-delay", "0.03"))
    try:
        a.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=60)
        load_quarter(a)
        result: dict[str, str] = {}

        def evaluate() -> None:
            with Client(b.address, token=a.token, timeout=300) as client:
                result["digest"] = client.evaluate_period(PERIOD).ruleset_digest

        worker = threading.Thread(target=evaluate)
        worker.start()
        time.sleep(1.0)  # B is in the rules engine now (141 units at 30 ms each)
        with a.client() as admin:
            activated = admin.activate_ruleset(_edited(RULES, tmp_path, "0.72"), reason="giữa chừng").ruleset.digest
        worker.join(300)
        assert result["digest"] == activated
        assert "changed while it was evaluated" in b.log()
        engine = create_engine(database)
        with engine.connect() as connection:
            digests = {row[0] for row in connection.execute(text("SELECT DISTINCT ruleset_digest FROM evaluations"))}
        engine.dispose()
        assert digests == {activated}
    finally:
        a.stop()
        b.stop()


def test_the_rules_folder_is_watched_by_one_replica_at_a_time(tmp_path: Path, database: str) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    a = _start(tmp_path / "a", database, rules=rules, watch=True)
    b = _start(tmp_path / "b", database, rules=rules, watch=True)
    try:
        def watching(proc: ServerProcess) -> bool:
            with proc.client() as c:
                return c.get_ruleset_status().watching_rules_folder

        assert eventually(lambda: watching(a) != watching(b), timeout_s=30)
        leader, other = (a, b) if watching(a) else (b, a)
        flags = rules / "flags.yaml"
        flags.write_text(flags.read_text(encoding="utf-8").replace("params: {threshold: 0.8}",
                                                                   "params: {threshold: 0.78}"), encoding="utf-8")
        assert eventually(lambda: len(_activations(database)) == 2, timeout_s=30)
        time.sleep(2.0)  # long enough for a second, wrong activation to show
        assert [source for _, _, source, _ in _activations(database)] == ["startup", "rules-folder"]
        leader.kill()  # SIGKILL: its database connections close, and with them its leadership
        assert eventually(lambda: watching(other), timeout_s=30)
        flags.write_text(flags.read_text(encoding="utf-8").replace("params: {threshold: 0.78}",
                                                                   "params: {threshold: 0.77}"), encoding="utf-8")
        assert eventually(lambda: len(_activations(database)) == 3, timeout_s=30)
        assert eventually(lambda: _digest(other) == _activations(database)[-1][1], timeout_s=30)
    finally:
        a.stop()
        b.stop()


_HOLD = """
import sys, time
from civicscore.store.sql import open_store
store = open_store(sys.argv[1])
with store.exclusive("ruleset-activation"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_process_killed_holding_the_activation_lock_leaves_no_lock_behind(database: str) -> None:
    """The activation lock is a session lock: a replica killed while holding it frees it with its connection."""
    import subprocess
    import sys

    from civicscore.store.sql import open_store

    holder = subprocess.Popen([sys.executable, "-c", _HOLD, database], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = open_store(database)
        taken = threading.Event()

        def take() -> None:
            with store.exclusive("ruleset-activation"):
                taken.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert not taken.wait(1.0)  # held by the other process
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        assert taken.wait(30)  # freed with the killed process's connection
        store.close()
    finally:
        holder.kill()
        holder.wait(30)
