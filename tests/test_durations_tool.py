"""scripts/test_durations.py: seconds per test file from a JUnit XML report (the order `make test` runs them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("test_durations", ROOT / "scripts" / "test_durations.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_files_seconds_are_the_sum_of_its_cases_in_classes_or_not(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text("""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_one" time="1.5"/>
<testcase classname="tests.test_a" name="test_two[x]" time="2.25"/>
<testcase classname="tests.test_b.TestGroup" name="test_three" time="4.0"><skipped/></testcase>
</testsuite></testsuites>""", encoding="utf-8")
    assert _tool().file_seconds(report) == {"tests/test_a.py": 3.75, "tests/test_b.py": 4.0}


def test_every_file_in_the_table_exists() -> None:
    import json

    files = json.loads((ROOT / "tests" / "durations.json").read_text(encoding="utf-8"))["files"]
    assert files and all((ROOT / path).is_file() for path in files), [p for p in files if not (ROOT / p).is_file()]
