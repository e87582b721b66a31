"""Write tests/durations.json, the seconds each test file took, from a pytest JUnit XML report.

    make test PYTEST_ARGS=--junitxml=/tmp/junit.xml
    .venv/bin/python scripts/test_durations.py /tmp/junit.xml

tests/conftest.py orders the files longest first with it, so that `make test`'s pytest-xdist processes
end together. A test's time in the report is its setup, call and teardown together.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "durations.json"


def file_seconds(report: Path) -> dict[str, float]:
    """Seconds per test file (`tests/test_x.py`), summed over the file's test cases."""
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        # classname is the dotted module path (`tests.test_x`), with the class name after it for a test in a class
        while module and not module[-1].startswith("test_"):
            module.pop()
        if module:
            totals["/".join(module) + ".py"] += float(case.get("time", "0"))
    return dict(totals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a JUnit XML report of a whole `make test` run")
    args = parser.parse_args(argv)
    seconds = file_seconds(args.report)
    if not seconds:
        print(f"{args.report}: no test cases found", file=sys.stderr)
        return 1
    ordered = dict(sorted(((path, round(s, 1)) for path, s in seconds.items()), key=lambda kv: (-kv[1], kv[0])))
    OUT.write_text(json.dumps({"about": "seconds per test file in one make test run (scripts/test_durations.py)",
                               "files": ordered}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(ordered)} files, {sum(ordered.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
