"""The contract with city systems: buf's breaking-change check against the released contract, and
the API discoverable through reflection by an independent client (`buf curl`).

buf comes from npm (`make test` installs it into tools/buf); without it these tests are skipped,
and pytest says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from civicscore_api.v1 import units_pb2
from tests.scenario import PERIOD, load_quarter
from tests.serverproc import ServerProcess, hanoi_units

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / "tools" / "buf" / "node_modules" / ".bin" / "buf"
CONTRACT = ROOT / "contract" / "civicscore-v1.binpb"

pytestmark = pytest.mark.skipif(not BUF.exists(), reason="SKIPPED LOUDLY: buf is not installed (run `make test`, "
                                                          "which installs it from npm into tools/buf)")


def breaking(protos: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), "breaking", str(protos), "--against", str(CONTRACT)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def protos(tmp_path: Path) -> Path:
    copy = tmp_path / "protos"
    shutil.copytree(ROOT / "protos", copy)
    return copy


def test_the_protos_do_not_break_the_released_contract(protos: Path) -> None:
    result = breaking(protos)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_changed_field_type_is_breaking(protos: Path) -> None:
    units = protos / "civicscore" / "v1" / "units.proto"
    text = units.read_text(encoding="utf-8")
    field = "  string block = 6 [(domain) = {kind: VALUE_KIND_TEXT, max_length: 60}];"
    assert field in text
    units.write_text(text.replace(field, "  bytes block = 6;"), encoding="utf-8")
    result = breaking(protos)
    assert result.returncode != 0
    assert '"block"' in result.stdout and 'changed type from "string" to "bytes"' in result.stdout
    units.write_text(text, encoding="utf-8")  # reverting fixes it
    assert breaking(protos).returncode == 0


def test_a_removed_rpc_is_breaking(protos: Path) -> None:
    periods = protos / "civicscore" / "v1" / "periods.proto"
    text = periods.read_text(encoding="utf-8")
    rpc = next(line for line in text.splitlines() if "rpc GetPeriod(" in line)
    periods.write_text(text.replace(rpc + "\n", ""), encoding="utf-8")
    result = breaking(protos)
    assert result.returncode != 0 and 'RPC "GetPeriod"' in result.stdout, result.stdout


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("reflection")).start()
    try:
        proc.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        load_quarter(proc)
        with proc.client() as admin:
            admin.evaluate_period(PERIOD)
        yield proc
    finally:
        proc.stop()


def buf_curl(proc: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    header = f"authorization: Bearer {proc.token}"  # reflection needs an identity, as every call does
    return subprocess.run([str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H", header,
                           "--reflect-header", header, *args], capture_output=True, text=True, timeout=120)


def test_buf_curl_lists_the_services_and_reads_an_evaluation_through_reflection(evaluated: ServerProcess) -> None:
    listed = buf_curl(evaluated, "--list-services", f"http://{evaluated.address}")
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert {"civicscore.v1.EvaluationService", "civicscore.v1.RulesetService", "civicscore.v1.IdentityService",
            "grpc.health.v1.Health"} <= services
    read = buf_curl(evaluated, "-d", json.dumps({"name": f"periods/{PERIOD}/evaluations/SNV"}),
                    f"http://{evaluated.address}/civicscore.v1.EvaluationService/GetEvaluation")
    assert read.returncode == 0, read.stderr
    evaluation = json.loads(read.stdout)["evaluation"]
    assert (evaluation["unit"], evaluation["grade"]) == ("units/SNV", "excellent")
    assert evaluation["gradeLabelVi"] == "Hoàn thành xuất sắc nhiệm vụ"
    refused = subprocess.run([str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services",
                              f"http://{evaluated.address}"], capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0  # reflection without an identity is refused
