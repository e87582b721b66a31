"""The Python client is a package others install: `pip install ./clients/python` gives a typed SDK and the CLI.

The wheel is built from a copy of clients/python (as pip does), installed into its own directory
and imported from outside the repository, so nothing of the checkout can stand in for it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from tests.serverproc import ROOT, ServerProcess

CLIENT = ROOT / "clients" / "python"


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(source)], check=True, capture_output=True, text=True)
    (wheel,) = out.glob("civicscore_client-*.whl")
    return wheel


def test_the_wheel_holds_the_typed_sdk_the_stubs_the_cli_and_the_readme(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert {"civicscore_client/py.typed", "civicscore_api/py.typed"} <= names
    protos = sorted(p.stem for p in (ROOT / "protos" / "civicscore" / "v1").glob("*.proto"))
    for stem in protos:
        assert {f"civicscore_api/v1/{stem}_pb2.py", f"civicscore_api/v1/{stem}_pb2.pyi",
                f"civicscore_api/v1/{stem}_pb2_grpc.py"} <= names, f"{stem} is missing from the wheel"
    assert "civicscore = civicscore_client.cli:main" in scripts
    assert metadata["Requires-Python"] == ">=3.11"
    requires = {r.split(">=")[0] for r in metadata.get_all("Requires-Dist") or []}
    assert requires >= {"grpcio", "protobuf", "grpcio-status"}
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "Deadlines, retries and idempotency" in metadata.get_payload()


def test_the_installed_package_talks_to_the_server_from_outside_the_checkout(tmp_path: Path,
                                                                              seeded_server: ServerProcess) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(_build_wheel(tmp_path))], check=True, capture_output=True, text=True)
    script = (
        "import sys, civicscore_client, civicscore_api\n"
        "from civicscore_client import Client\n"
        "print(civicscore_client.__file__)\n"
        "print(civicscore_api.__file__)\n"
        "with Client(sys.argv[1], token=sys.argv[2]) as client:\n"
        "    print(client.whoami().identity.identity_id)\n"
        "    print(client.get_unit('SNV').display_name_vi)\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n{script}",
                           seeded_server.address, seeded_server.token],
                          cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    sdk, api, identity, unit = done.stdout.splitlines()
    assert Path(sdk).is_relative_to(target) and Path(api).is_relative_to(target)
    assert identity and unit == "Sở Nội vụ"
