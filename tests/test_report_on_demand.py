"""Reports on demand (báo cáo đột xuất) through the real server: the quarter to a day, evaluated for the
report, never stored, marked provisional; on SQLite and PostgreSQL.

On 2026-08-15 (Hanoi) SNV has one assignment done on time (due 07-20), one open past its due date (08-10:
5 days overdue) and one not yet due (09-20, not counted); STP has nothing due yet. The report as of that day
counts 2 assignments due, grades nobody (too few due), shows its head's and the quarter's other sections,
and says it is provisional; the quarter's stored results stay empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from civicscore_api.v1 import officials_pb2
from civicscore_client import InvalidArgument
from tests.postgres_support import database_url_fixture
from tests.scenario import assignment
from tests.test_extensions import Served, cli, done, hanoi, start_server
from tests.test_officials import browser_text, need_browser

pytestmark = pytest.mark.slow
database_url_param = database_url_fixture()


@pytest.fixture()
def served(tmp_path: Path, database_url_param: str) -> Iterator[Served]:
    server = start_server(tmp_path, database_url_param, hanoi(8, 1))
    try:
        with server.client() as admin:
            admin.upsert_officials([officials_pb2.Official(
                official_id="CB-001", display_name="Nguyễn Thị Lan", appointments=[officials_pb2.Appointment(
                    unit="units/SNV", position=officials_pb2.OFFICIAL_POSITION_HEAD, start_on="2024-01-01")])])
            admin.upsert_assignments([assignment("SNV-1", "SNV", "2026-07-20"),
                                      assignment("SNV-2", "SNV", "2026-08-10"),
                                      assignment("SNV-3", "SNV", "2026-09-20")])
            admin.submit_outcomes([done("SNV-1", "2026-07-18", hanoi(7, 19))])
        server.at(hanoi(8, 15, 10))
        yield server
    finally:
        server.proc.stop()


def test_a_report_on_demand_is_the_quarter_to_a_day_and_stores_nothing(served: Served, tmp_path: Path) -> None:
    with served.client("committee-1") as committee:
        reply = committee.get_quarterly_report("2026-Q3", as_of="2026-08-15")
        csv_reply = committee.get_quarterly_report("2026-Q3", format="csv", as_of="2026-08-15")
        english = committee.get_quarterly_report("2026-Q3", language="en", as_of="2026-08-15")
        assert list(committee.list_evaluations("2026-Q3")) == []  # nothing stored
        assert list(committee.list_recommendations("2026-Q3")) == []
        assert list(committee.list_official_evaluations("2026-Q3")) == []
    assert reply.file_name == "civicscore-report-2026-Q3-to-2026-08-15-vi.html"
    html = reply.content.decode("utf-8")
    assert "Báo cáo đột xuất quý 2026-Q3 đến ngày 15/08/2026" in html
    assert "Từ 2026-07-01 đến 2026-08-15" in html
    assert "TẠM TÍNH — Báo cáo đột xuất" in html and "Kết quả này không được lưu" in html
    assert "Report on demand: 2026-Q3 to 2026-08-15" in english.content.decode("utf-8")

    header, *rows = csv.reader(io.StringIO(csv_reply.content.decode("utf-8-sig")))
    assert header[-1] == "Tạm tính đến ngày"
    snv = next(row for row in rows if row[0] == "SNV")
    assert snv[-1] == "2026-08-15"
    assert snv[header.index("Nhiệm vụ đến hạn")] == "2" and snv[header.index("Quá hạn chưa xong")] == "1"

    need_browser()
    shown = browser_text(tmp_path, "on-demand", reply.content)
    assert shown["errors"] == []
    assert "TẠM TÍNH" in shown["body"] and "đến ngày 15/08/2026" in shown["body"]


def test_a_report_on_demand_of_a_finished_quarter_does_not_replace_its_evaluation(served: Served) -> None:
    served.at(hanoi(10, 2))
    with served.client("committee-1") as committee:
        committee.evaluate_period("2026-Q3")
        stored = [(e.unit, e.revision) for e in committee.list_evaluations("2026-Q3")]
        on_demand = committee.get_quarterly_report("2026-Q3", as_of="2026-08-15").content.decode("utf-8")
        regular = committee.get_quarterly_report("2026-Q3").content.decode("utf-8")
        assert [(e.unit, e.revision) for e in committee.list_evaluations("2026-Q3")] == stored
    assert "TẠM TÍNH" in on_demand and "TẠM TÍNH" not in regular and "Từ 2026-07-01 đến 2026-09-30" in regular


def test_what_a_report_on_demand_refuses(served: Served) -> None:
    with served.client("committee-1") as committee:
        cases = [("2026-Q3", "2026-08-16", "IN_THE_FUTURE", "is after today (2026-08-15, Hanoi)"),
                 ("2026-Q3", "2026-10-01", "NOT_IN_PERIOD", "is not in 2026-Q3 (2026-07-01 to 2026-09-30)"),
                 ("2026", "2026-08-15", "NOT_A_QUARTER", "a report on demand is of a quarter"),
                 ("2026-Q3", "15/08/2026", "", "as_of")]
        for period, day, reason, words in cases:
            with pytest.raises(InvalidArgument) as refused:
                committee.get_quarterly_report(period, as_of=day)
            assert words in str(refused.value), str(refused.value)
            if reason:
                assert [v.reason for v in refused.value.violations] == [reason]


def test_the_cli_writes_a_report_on_demand(served: Served, tmp_path: Path) -> None:
    target = tmp_path / "dot-xuat.html"
    result = cli(served, "committee-1", "report", "--period", "2026-Q3", "--as-of", "2026-08-15", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert "TẠM TÍNH" in target.read_text(encoding="utf-8")
