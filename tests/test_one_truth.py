"""Issue 12's acceptance check "three replicas behind nginx, one truth", for the ruleset lifecycle.

Three replicas on one PostgreSQL database behind Debian's nginx (tests/cluster.py). A ruleset
activated through one is in force on the others; 20 EvaluatePeriod calls through nginx alternating
with 3 activations and 2 rollbacks never store an evaluation with a ruleset that was not in force;
afterwards every unit has one revision per change of its result, and ListEvaluations is identical
to a single replica's after the same steps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from civicscore_api.v1 import evaluations_pb2, rulesets_pb2, rulesets_pb2_grpc, units_pb2
from civicscore_client import Client
from tests.cluster import running_cluster
from tests.postgres_support import fresh_postgres_schema, postgres_base_url
from tests.scenario import PERIOD, load_quarter
from tests.serverproc import RULES, ServerProcess, hanoi_units
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# The steps: E evaluates the quarter; A<threshold> activates the default rules with another criticism
# threshold (changing some units' flags); R rolls the latest activation back.
STEPS = ("E", "E", "E", "E", "A0.5", "E", "E", "E", "E", "A0.3", "E", "E", "E", "E", "R", "E", "E", "E",
         "A0.7", "E", "E", "R", "E", "E", "E")


def _variant(threshold: str) -> dict[str, str]:
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(RULES.glob("*.yaml"))}
    files["flags.yaml"] = files["flags.yaml"].replace("params: {threshold: 0.8}", f"params: {{threshold: {threshold}}}")
    return files


def _run(client: Client, steps: Sequence[str], first: str) -> list[str]:
    """Run the steps; the digest in force after each change, starting with `first`, in force before.

    Each digest is taken from the reply of the call that changed it: a status read through nginx may
    reach a replica that has not applied the change yet."""
    in_force = [first]
    for step in steps:
        if step == "E":
            client.evaluate_period(PERIOD)
        elif step == "R":
            in_force.append(client.rollback_ruleset(reason="hoàn tác").ruleset.digest)
        else:
            in_force.append(client.activate_ruleset(_variant(step[1:]), reason=f"ngưỡng {step[1:]}").ruleset.digest)
    return in_force


def _evaluations(client: Client) -> list[evaluations_pb2.Evaluation]:
    """Every unit's latest evaluation of the quarter, without what differs between runs (time, who)."""
    found = []
    for evaluation in client.list_evaluations(PERIOD):
        evaluation.ClearField("create_time")
        evaluation.evaluated_by = ""
        found.append(evaluation)
    return found


def _revisions(database: str) -> dict[str, list[str]]:
    """Per unit, the ruleset digest of each stored revision, in revision order."""
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT unit_code, ruleset_digest FROM evaluations WHERE period = :p ORDER BY unit_code, revision"),
                {"p": PERIOD}).all()
    finally:
        engine.dispose()
    found: dict[str, list[str]] = {}
    for unit, digest in rows:
        found.setdefault(str(unit), []).append(str(digest))
    return found


def _follows(revisions: list[str], in_force: list[str]) -> bool:
    """Whether the revisions' digests appear in the order the rulesets were in force (each at most once
    per period in force: a unit's result changes at most once per change of ruleset)."""
    position = 0
    for digest in revisions:
        while position < len(in_force) and in_force[position] != digest:
            position += 1
        if position == len(in_force):
            return False
        position += 1
    return True


def test_three_replicas_behind_nginx_keep_one_truth(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster", replicas=3) as cluster:
        with cluster.client() as client:
            client.upsert_units(hanoi_units())
        load_quarter(cluster)  # type: ignore[arg-type]  # the cluster has the stubs load_quarter uses

        # An activation through replica 0 is in force on replicas 1 and 2 (their status says so).
        files = _variant("0.6")
        with Client(cluster.replica_address(0), token=cluster.token) as first:
            started = time.monotonic()
            activated = first.activate_ruleset(files, reason="thử").ruleset.digest

        def everywhere() -> bool:
            for index in (1, 2):
                stub = rulesets_pb2_grpc.RulesetServiceStub(cluster.replicas[index].channel())
                status = stub.GetRulesetStatus(rulesets_pb2.GetRulesetStatusRequest(), timeout=30)
                if status.active.digest != activated:
                    return False
            return True

        assert eventually(everywhere, timeout_s=30)
        print(f"in force on the other replicas {time.monotonic() - started:.2f} s after the activation")
        with cluster.client() as client:
            first = client.rollback_ruleset(reason="trở lại").ruleset.digest
            in_force = _run(client, STEPS, first)
            clustered = _evaluations(client)
        answered = cluster.answers()
        assert len([i for i, n in answered.items() if n > 0]) == 3  # every replica served calls
        revisions = _revisions(cluster.database_url)

    short = [d[:6] for d in in_force]
    wrong = {unit: [d[:6] for d in digests] for unit, digests in revisions.items() if not _follows(digests, in_force)}
    assert revisions and not wrong, (short, wrong)
    with fresh_postgres_schema(postgres_base_url()) as database:
        (tmp_path / "single").mkdir()
        single = ServerProcess(tmp_path / "single", database_url=database).start()
        try:
            single.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=60)
            load_quarter(single)
            with single.client() as client:
                client.activate_ruleset(files, reason="thử")
                first = client.rollback_ruleset(reason="trở lại").ruleset.digest
                assert _run(client, STEPS, first) == in_force
                alone = _evaluations(client)
            assert _revisions(database) == revisions  # the same revisions, made with the same rulesets
        finally:
            single.stop()
    assert [e.SerializeToString(deterministic=True) for e in clustered] == \
        [e.SerializeToString(deterministic=True) for e in alone]
