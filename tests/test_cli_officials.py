"""`civicscore officials …` through the real server: importing officials from a CSV file (one row per
appointment; every rejected line named, here or by the server, and nothing stored), listing and showing
them with position labels in Vietnamese or English, a quarter's results and recommendations about them,
`personal.read` refused to a reader, deactivation and deletion; and `civicscore rules test --json` with the
officials' results of the cases that have officials.

One server (SQLite; the CLI does not depend on the backend, tests/test_officials.py covers both) serves the
whole module: the officials are imported and 2026-Q3 evaluated once. The last test changes officials.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from civicscore_api.v1 import officials_pb2
from civicscore_client.cli import app
from civicscore_client.cli_locale import Lang, position_label
from tests.scenario import assignment
from tests.test_extensions import Served, cli, done, hanoi, start_server

pytestmark = pytest.mark.slow
RULES = Path(__file__).resolve().parents[1] / "rules"
HEADER = "official_id,display_name,unit,position,start_on,end_on"
# Positions as codes and as the Vietnamese labels, a Vietnamese date, a name in decomposed Unicode (NFD).
OFFICIALS_CSV = "\n".join([
    HEADER,
    "CB-001,Nguyễn Thị Lan,SNV,head,2024-01-01,",
    'CB-002,Trần Văn Bình,STP,"Cán bộ, công chức",2023-03-01,2026-07-31',
    "CB-002,Trần Văn Bình,SCT,Cấp phó,01/08/2026,",
    f"CB-003,{unicodedata.normalize('NFD', 'Lê Quang Hùng')},SNV,Người đứng đầu,2020-01-01,2026-09-29",
]) + "\n"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three officials imported with the CLI; Q3 2026: SNV completes 5 of 10 on time (criticism: its head
    on 2026-09-30, Lan, gets head accountability); Bình leads 5 assignments in STP and SCT, all on time
    (individual praise); Hùng, head of SNV until 2026-09-29, gets nothing. Evaluated with the CLI."""
    workdir = tmp_path_factory.mktemp("cli-officials")
    served = start_server(workdir, f"sqlite:///{workdir / 'civicscore.db'}", hanoi(7, 1))
    try:
        csv_file = workdir / "officials.csv"
        csv_file.write_text(OFFICIALS_CSV, encoding="utf-8-sig")  # with a BOM, as spreadsheets save it
        imported = cli(served, "", "officials", "import", str(csv_file))
        snv = [assignment(f"SNV-{i}", "SNV", "2026-08-10") for i in range(10)]
        led = [assignment(f"STP-{i}", "STP", "2026-07-20") for i in range(3)] + [
            assignment(f"SCT-{i}", "SCT", "2026-09-10") for i in range(2)]
        for task in led:
            task.lead_official = "officials/CB-002"
        served.at(hanoi(9, 1))
        with served.client() as admin:
            admin.upsert_assignments(snv + led)
            admin.submit_outcomes([done(f"SNV-{i}", "2026-08-01", hanoi(8, 2)) for i in range(5)]
                                  + [done(t.assignment_id, "2026-07-15", hanoi(8, 2)) for t in led])
        served.at(hanoi(10, 5))
        evaluated = cli(served, "committee-1", "evaluate", "2026-Q3")
        yield {"served": served, "csv": csv_file, "imported": imported, "evaluated": evaluated, "dir": workdir}
    finally:
        served.proc.stop()


def test_the_import_stores_every_official_with_all_their_positions(world: dict[str, Any]) -> None:
    imported = world["imported"]
    assert imported.exit_code == 0, imported.output
    assert "officials.csv: đọc 4 dòng, 3 cán bộ" in imported.output
    assert "thêm mới 3, cập nhật 0, không đổi 0" in imported.output
    with world["served"].client() as admin:
        binh = admin.get_official("CB-002")
        hung = admin.get_official("CB-003")
    assert [(a.unit, a.position, a.start_on, a.end_on) for a in binh.appointments] == [
        ("units/STP", officials_pb2.OFFICIAL_POSITION_OFFICER, "2023-03-01", "2026-07-31"),
        ("units/SCT", officials_pb2.OFFICIAL_POSITION_DEPUTY, "2026-08-01", "")]
    assert hung.display_name == unicodedata.normalize("NFC", "Lê Quang Hùng")  # stored NFC
    evaluated = world["evaluated"]
    assert evaluated.exit_code == 0, evaluated.output
    assert "officials         3 evaluated, 3 new revisions" in evaluated.output


def test_rejected_lines_are_named_and_nothing_is_stored(world: dict[str, Any]) -> None:
    served: Served = world["served"]
    bad = write(world["dir"] / "bad.csv", HEADER,
                "CB-020,Phạm Thu Hà,SNV,chief,2026-01-01,",
                "CB-021,Đỗ Minh,SNV,officer,2026-01-01,",
                "CB-021,Đỗ Minh Tuấn,STP,officer,2026-01-01,",
                "CB-022,Hà An,SNV,deputy,2026-13-01,")
    result = cli(served, "", "officials", "import", str(bad))
    assert result.exit_code == 1, result.output
    for text in ("line 2: position: unknown value 'chief'; expected head | deputy | officer",
                 "line 4: display_name: 'Đỗ Minh Tuấn' differs from 'Đỗ Minh' on line 3",
                 "line 5: start_on: '2026-13-01' is not a date", "Chưa lưu gì"):
        assert text in result.output, text

    # what only the server knows: the units, overlapping positions; with --check (validate_only) and without
    refused = write(world["dir"] / "refused.csv", HEADER,
                    "CB-030,Vũ Hoa,XYZ,officer,2026-01-01,",
                    "CB-031,Ngô Lâm,SNV,officer,2026-01-01,",
                    "CB-031,Ngô Lâm,SNV,head,2026-06-01,",
                    "CB-032,Lý Mai,SNV,officer,2026-05-01,2026-04-30")
    for extra in (["--check"], []):
        result = cli(served, "", "officials", "import", str(refused), *extra, "--lang", "en")
        assert result.exit_code == 1, result.output
        lines = [line.strip() for line in result.output.splitlines()]
        rejected = lines[lines.index("Rejected lines:") + 1:]
        assert rejected[0].startswith("line 2: unit: unit 'units/XYZ' does not exist"), rejected
        assert rejected[1].startswith("line 3: row: two appointments in units/SNV overlap"), rejected
        assert rejected[1].endswith("(the official's rows: lines 3, 4)"), rejected
        assert rejected[2].startswith("line 5: end_on: "), rejected
        assert "Nothing was stored" in result.output
    json_result = cli(served, "", "--json", "officials", "import", str(refused), "--check")
    assert json_result.exit_code == 1
    report = json.loads(json_result.output)
    assert (report["stored"], [r["line"] for r in report["rejects"]]) == (False, [2, 3, 5])

    good = write(world["dir"] / "good.csv", HEADER, "CB-040,Đặng Văn Khoa,STP,officer,2026-02-01,")
    checked = cli(served, "", "officials", "import", str(good), "--check")
    assert checked.exit_code == 0 and "kiểm tra: dữ liệu hợp lệ; chưa lưu gì" in checked.output, checked.output
    with served.client() as admin:
        assert {o.official_id for o in admin.list_officials()} == {"CB-001", "CB-002", "CB-003"}

    missing = write(world["dir"] / "missing.csv", "official_id,display_name,unit,position", "CB-041,An,SNV,head")
    result = cli(served, "", "officials", "import", str(missing))
    assert result.exit_code == 2 and "missing column(s) start_on" in result.output, result.output


def test_list_and_show_give_labels_in_vietnamese_or_english(world: dict[str, Any]) -> None:
    served: Served = world["served"]
    listed = cli(served, "committee-1", "officials", "list")
    assert listed.exit_code == 0, listed.output
    for text in ("Nguyễn Thị Lan", "Trần Văn Bình", unicodedata.normalize("NFC", "Lê Quang Hùng"),
                 "Người đứng đầu · SNV · 2024-01-01 – nay", "Cán bộ, công chức · STP · 2023-03-01 – 2026-07-31",
                 "Cấp phó · SCT · 2026-08-01 – nay", "Đang được đánh giá"):
        assert text in listed.output, text
    assert "OFFICIAL_POSITION" not in listed.output and "head" not in listed.output
    english = cli(served, "committee-1", "officials", "list", "--unit", "SCT", "--lang", "en")
    assert english.exit_code == 0, english.output
    assert "Deputy · SCT · 2026-08-01 – now" in english.output and "Officer · STP" in english.output
    assert "CB-001" not in english.output
    assert "Không có cán bộ nào" in cli(served, "committee-1", "officials", "list", "--inactive").output

    shown = cli(served, "committee-1", "officials", "show", "CB-002")
    assert shown.exit_code == 0, shown.output
    for text in ("officials/CB-002", "Trần Văn Bình", "Cấp phó · Sở Công Thương (SCT) · 2026-08-01 – nay",
                 "Quý bị thanh tra, kiểm tra hoặc xem xét kỷ luật", "không có"):
        assert text in shown.output, text
    as_json = cli(served, "committee-1", "--json", "officials", "show", "officials/CB-001")
    assert json.loads(as_json.output)["display_name"] == "Nguyễn Thị Lan"

    # a reporter sees its units' people only; a reader no one, told which permission it lacks
    reporter = cli(served, "snv-reporter", "officials", "list")
    assert "CB-001" in reporter.output and "CB-003" in reporter.output and "CB-002" not in reporter.output
    for args in (("list",), ("show", "CB-001"), ("results", "2026-Q3"), ("recommendations", "2026-Q3")):
        refused = cli(served, "reader-1", "officials", *args)
        assert refused.exit_code == 1 and "personal.read" in refused.output, (args, refused.output)
        assert "Nguyễn" not in refused.output


def test_results_of_a_quarter_with_flags_as_labels(world: dict[str, Any]) -> None:
    served: Served = world["served"]
    flagged = cli(served, "committee-1", "officials", "results", "2026-Q3", "--flagged")
    assert flagged.exit_code == 0, flagged.output
    for text in ("Kết quả đánh giá cá nhân kỳ 2026-Q3 (2)", "Nguyễn Thị Lan", "Trách nhiệm người đứng đầu",
                 "Trần Văn Bình", "Biểu dương cá nhân", "Cấp phó", "5 đến hạn, 5 đúng hạn, 0 quá hạn chưa xong"):
        assert text in flagged.output, text
    assert "CB-003" not in flagged.output and "head_accountability" not in flagged.output
    english = cli(served, "committee-1", "officials", "results", "2026-Q3", "--unit", "SNV", "--lang", "en")
    assert english.exit_code == 0, english.output
    for text in ("Head accountability", "Head", "CB-001", "CB-003", "0 due, 0 on time, 0 overdue and open"):
        assert text in english.output, text
    assert "CB-002" not in english.output
    as_json = json.loads(cli(served, "committee-1", "--json", "officials", "results", "2026-Q3").output)
    assert [(e["official"], [f["flag"] for f in e["flags"]]) for e in as_json] == [
        ("officials/CB-001", ["head_accountability"]), ("officials/CB-002", ["individual_praise"]),
        ("officials/CB-003", [])]
    none = cli(served, "committee-1", "officials", "results", "2026-Q2")
    assert none.exit_code == 0 and "Không có kết quả đánh giá cá nhân nào của kỳ 2026-Q2" in none.output


def test_recommendations_about_officials_name_the_person_and_the_review_name(world: dict[str, Any]) -> None:
    served: Served = world["served"]
    listed = cli(served, "committee-1", "officials", "recommendations", "2026-Q3")
    assert listed.exit_code == 0, listed.output
    for text in ("Đề xuất về cá nhân kỳ 2026-Q3 (2)", "2026-Q3/SNV~head_accountability~CB-001",
                 "Nguyễn Thị Lan (CB-001) · Sở Nội vụ (SNV) · Trách nhiệm người đứng đầu",
                 "mức 2 · trạng thái: Chờ xem xét", "2026-Q3/SCT~individual_praise~CB-002",
                 "Người đứng đầu Sở Nội vụ", "civicscore review"):
        assert text in listed.output, text
    reviewed = cli(served, "committee-1", "review", "approve", "2026-Q3/SNV~head_accountability~CB-001",
                   "--reason", "Đồng ý, đề nghị kiểm điểm")
    assert reviewed.exit_code == 0, reviewed.output
    english = cli(served, "committee-1", "officials", "recommendations", "2026-Q3", "--official", "CB-001",
                  "--lang", "en")
    assert english.exit_code == 0, english.output
    assert "Head accountability" in english.output and "last decision: Approved · committee-1" in english.output
    assert "CB-002" not in english.output
    assert "CB-001" not in cli(served, "stp-reporter", "officials", "recommendations", "2026-Q3").output


def test_rules_test_json_holds_the_officials_results() -> None:
    result = CliRunner().invoke(app, ["--json", "rules", "test", str(RULES), "-k",
                                      "official-leading-5-on-time-in-two-units"],
                                env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    (case,) = json.loads(result.output)["cases"]
    (official,) = case["officials"]
    assert official == {
        "official_id": "P1", "unit": "SNV", "position": "officer", "under_review": False,
        "led": {"due": 5, "completed": 5, "on_time": 5, "late": 0, "reworked": 0, "open_overdue": 0},
        "headed_units": [], "flags": ["individual_praise"], "fired": ["individual-praise"]}


def test_position_labels_are_the_servers() -> None:
    from civicscore.domain.officials import POSITION_LABELS

    for position, (vi, en) in POSITION_LABELS.items():
        assert (position_label(position.value, Lang.vi), position_label(position.value, Lang.en)) == (vi, en)


def test_deactivate_delete_and_import_again(world: dict[str, Any]) -> None:
    """Last: it changes officials the tests above read."""
    served: Served = world["served"]
    extra = write(world["dir"] / "extra.csv", HEADER, "CB-050,Đinh Thị Hồng,STP,officer,2026-02-01,")
    assert cli(served, "", "officials", "import", str(extra)).exit_code == 0
    deleted = cli(served, "", "officials", "delete", "CB-050")
    assert deleted.exit_code == 0 and "Đã xoá officials/CB-050." in deleted.output, deleted.output
    gone = cli(served, "", "officials", "show", "CB-050")
    assert gone.exit_code == 1 and "officials/CB-050 does not exist" in gone.output
    kept = cli(served, "", "officials", "delete", "CB-002")
    assert kept.exit_code == 1 and "deactivate them instead" in kept.output, kept.output
    assert "With this command: civicscore officials deactivate CB-002" in kept.output
    refused = cli(served, "committee-1", "officials", "deactivate", "CB-003")
    assert refused.exit_code == 1 and "officials.write" in refused.output, refused.output

    with served.client() as admin:
        hung = admin.get_official("CB-003")
        hung.under_review_periods.append("2026-Q2")
        hung.ClearField("name")
        admin.upsert_officials([hung])
    deactivated = cli(served, "", "officials", "deactivate", "CB-003")
    assert deactivated.exit_code == 0, deactivated.output
    assert "Đã thôi đánh giá Lê Quang Hùng (officials/CB-003)" in deactivated.output
    again = cli(served, "", "officials", "deactivate", "officials/CB-003", "--lang", "en")
    assert again.exit_code == 0 and "was already deactivated; nothing changed" in again.output
    inactive = cli(served, "committee-1", "officials", "list", "--inactive")
    assert "CB-003" in inactive.output and "Đã thôi đánh giá" in inactive.output and "CB-001" not in inactive.output
    assert "CB-003" not in cli(served, "committee-1", "officials", "list").output

    # importing the file again changes nothing: the activity and the quarters under review are kept
    imported = cli(served, "", "officials", "import", str(world["csv"]), "--lang", "en")
    assert imported.exit_code == 0 and "created 0, updated 0, unchanged 3" in imported.output, imported.output
    shown = cli(served, "committee-1", "officials", "show", "CB-003", "--lang", "en")
    assert "Deactivated" in shown.output and "2026-Q2" in shown.output, shown.output
