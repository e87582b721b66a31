"""The quarterly report through the real server: HTML checked in headless Chromium (console, ranking rows,
Vietnamese text, a screenshot), English labels, CSV for spreadsheets, PDF read back with pdftotext, and the
CLI writing the bytes the RPC returns.

Chromium (Debian's `chromium`), Python `playwright` and `pdftotext` (`poppler-utils`) are needed by some tests;
without them those tests are SKIPPED with a loud reason (CI installs them), like the PostgreSQL tests.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
import shutil
import subprocess
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from civicscore.report import ChromiumMissing, find_chromium
from civicscore.report import pdf as report_pdf
from civicscore_api.v1 import assignments_pb2, outcomes_pb2, units_pb2
from civicscore_client import FailedPrecondition, InvalidArgument
from civicscore_client.cli import app
from tests.scenario import PERIOD, assignment, completed, in_progress, load_quarter
from tests.serverproc import ServerProcess, hanoi_units
from tests.services import require_service

pytestmark = pytest.mark.slow

PREVIOUS = "2026-Q2"
CHROMIUM = find_chromium()
PDFTOTEXT = shutil.which("pdftotext")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]

_MISSING = [what for what, present in (
    ("Chromium (apt-get install chromium)", CHROMIUM), ("Python playwright (pip install playwright)", sync_playwright),
    ("pdftotext (apt-get install poppler-utils)", PDFTOTEXT)) if not present]
if _MISSING:
    warnings.warn(f"REPORT BROWSER/PDF TESTS ARE SKIPPED: missing {', '.join(_MISSING)}; CI installs them",
                  stacklevel=1)


def need_browser() -> None:
    """Skip loudly without Chromium and playwright (fail under CIVICSCORE_REQUIRE_SERVICES, as in CI)."""
    if CHROMIUM is None:
        require_service("Chromium", "it is not installed (make pdf-deps: apt-get install chromium; CI installs it)")
    if sync_playwright is None:
        require_service("Python playwright", "it is not installed (pip install playwright; CI installs it)")


def need_pdf_tools() -> None:
    """Skip loudly without Chromium and pdftotext (fail under CIVICSCORE_REQUIRE_SERVICES, as in CI)."""
    if CHROMIUM is None:
        require_service("Chromium", "it is not installed (make pdf-deps: apt-get install chromium; CI installs it)")
    if PDFTOTEXT is None:
        require_service("pdftotext", "it is not installed (make pdf-deps: apt-get install poppler-utils; "
                                     "CI installs it)")


@dataclass
class Served:
    server: ServerProcess
    assessable: list[str]  # codes of the quarter's assessable units, from ListEvaluations
    evaluated: int
    html_vi: bytes


def load_communes(server: ServerProcess) -> None:
    """Two wards graded, so that both ranking tables have rows: P-HOANKIEM does its 6 assignments on time
    (excellent, praise); P-CUANAM leaves 4 of 6 open after 5 reminders (three flags, the longest labels)."""
    items, outs = [], []
    for code, left_open in (("P-HOANKIEM", 0), ("P-CUANAM", 4)):
        for i in range(6):
            aid = f"{code}-{i}"
            items.append(assignment(aid, code, f"2026-08-{10 + i:02d}"))
            outs.append(completed(aid, f"2026-08-{5 + i:02d}") if i < 6 - left_open else in_progress(aid, 5))
    stubs = server.stubs()
    stubs.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=items), timeout=30)
    stubs.outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=outs), timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Hanoi's units, the 2026-Q3 scenario (and two graded wards) evaluated, and 2026-Q2 evaluated (nothing
    due) for the trend."""
    server = ServerProcess(tmp_path_factory.mktemp("report")).start()
    try:
        server.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        load_quarter(server)
        load_communes(server)
        with server.client() as client:
            client.evaluate_period(PREVIOUS)
            client.evaluate_period(PERIOD)
            evaluations = list(client.list_evaluations(PERIOD))
            html = client.get_quarterly_report(PERIOD).content
        assessable = [e.unit.removeprefix("units/") for e in evaluations if e.assessable]
        yield Served(server, assessable, len(evaluations), html)
    finally:
        server.stop()


def cli(server: ServerProcess, *args: str) -> Any:
    return CliRunner().invoke(app, ["--server", server.address, *args],
                              env={"COLUMNS": "250", "NO_COLOR": "1", "CIVICSCORE_TOKEN": server.token})


def test_the_html_report_in_headless_chromium(served: Served, tmp_path: Path) -> None:
    need_browser()
    assert sync_playwright is not None and CHROMIUM is not None
    page_file = tmp_path / "report-vi.html"
    page_file.write_bytes(served.html_vi)
    screenshot = tmp_path / f"report-{PERIOD}-vi.png"
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda message: errors.append(f"console {message.type}: {message.text}")
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.goto(page_file.as_uri(), wait_until="load")
            rows = page.locator("table.ranking tbody tr")
            row_units = sorted(rows.nth(i).get_attribute("data-unit") or "" for i in range(rows.count()))
            text = page.inner_text("body")
            svg_charts = page.locator("svg[role=img]").count()
            title = page.title()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"report screenshot: {screenshot}")
    assert errors == []
    assert row_units == sorted(served.assessable) and len(served.assessable) >= 2
    assert title == f"Báo cáo đánh giá quý {PERIOD}"
    assert unicodedata.is_normalized("NFC", text)
    for expected in ("Sở Tư pháp", "Sở Nội vụ", "Hoàn thành xuất sắc nhiệm vụ", "Xếp hạng khối Sở, ban, ngành",
                     "Đề xuất khen thưởng, biểu dương", "Phê bình", "Chờ xem xét", "Bộ quy tắc đã dùng"):
        assert expected in text, expected
    assert svg_charts == 2
    assert screenshot.stat().st_size > 10_000


def test_the_html_report_holds_rankings_recommendations_and_the_ruleset(served: Served) -> None:
    html = served.html_vi.decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="vi">' in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert html.index('data-unit="SNV"') < html.index('data-unit="STP"')  # the better department first
    with served.server.client() as client:
        ruleset = client.get_evaluation(PERIOD, "SNV").ruleset_digest
        recommendations = list(client.list_recommendations(PERIOD))
    assert ruleset in html
    for recommendation in recommendations:
        code = recommendation.unit.removeprefix("units/")
        assert f'data-unit="{code}" data-flag="{recommendation.flag}"' in html
        for reason in recommendation.reasons:
            assert reason.rule_id in html
    assert f"Quý trước ({PREVIOUS})" in html


def test_english_labels(served: Served) -> None:
    with served.server.client() as client:
        reply = client.get_quarterly_report(PERIOD, language="en")
    html = reply.content.decode("utf-8")
    assert reply.file_name == f"civicscore-report-{PERIOD}-en.html"
    assert reply.content_type == "text/html; charset=utf-8"
    assert '<html lang="en">' in html and f"Quarterly evaluation report {PERIOD}" in html
    for expected in ("Ranking: Departments", "Department of Justice", "Excellent", "Commendation candidates",
                     "Awaiting review", "Ruleset used"):
        assert expected in html, expected
    assert "Xếp hạng" not in html and "Chờ xem xét" not in html


def test_the_same_data_gives_the_same_bytes_and_a_stamp_only_when_asked(served: Served) -> None:
    with served.server.client() as client:
        again = client.get_quarterly_report(PERIOD).content
        stamped = client.get_quarterly_report(
            PERIOD, generate_time=dt.datetime(2026, 10, 5, 2, 30, tzinfo=dt.UTC)).content.decode()
    assert again == served.html_vi
    assert "Lập báo cáo lúc 2026-10-05 09:30 (UTC+7)" in stamped
    assert "Lập báo cáo lúc" not in served.html_vi.decode()


def test_csv_for_spreadsheets(served: Served) -> None:
    with served.server.client() as client:
        reply = client.get_quarterly_report(PERIOD, format="csv")
    assert reply.content.startswith(b"\xef\xbb\xbf")
    assert reply.content_type == "text/csv; charset=utf-8"
    assert reply.file_name == f"civicscore-report-{PERIOD}-vi.csv"
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"), newline="")))
    assert len(rows) == served.evaluated == 141
    by_code = {row["Mã đơn vị"]: row for row in rows}
    assert by_code["STP"]["Tên đơn vị"] == "Sở Tư pháp"
    assert by_code["SNV"]["Xếp loại"] == "Hoàn thành xuất sắc nhiệm vụ" and by_code["SNV"]["Hạng"] == "1"
    assert by_code["SNV"]["Điểm"] == "100.00"
    assert "Phê bình" in by_code["STP"]["Cờ đề xuất"]
    assert by_code["SCT"]["Hạng"] == ""  # not assessable
    assert sorted(code for code, row in by_code.items() if row["Hạng"]) == sorted(served.assessable)
    with served.server.client() as client:
        english = client.get_quarterly_report(PERIOD, format="csv", language="en").content
    header = english.decode("utf-8-sig").splitlines()[0]
    assert header.startswith("Unit code,Unit name,Block,Rank,Score")


def test_the_pdf_opens_and_names_the_units(served: Served, tmp_path: Path) -> None:
    need_pdf_tools()
    assert PDFTOTEXT is not None
    target = tmp_path / "report.pdf"
    result = cli(served.server, "report", "--period", PERIOD, "--format", "pdf", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"%PDF-")
    text = subprocess.run([PDFTOTEXT, "-enc", "UTF-8", str(target), "-"], capture_output=True, check=True,
                          timeout=60).stdout.decode("utf-8")
    text = unicodedata.normalize("NFC", text)
    for expected in ("Sở Tư pháp", "Sở Nội vụ", f"Báo cáo đánh giá quý {PERIOD}"):
        assert expected in text, expected


@dataclass(frozen=True)
class Word:
    """A word pdftotext found on a page, with its box in points from the page's top left."""

    page: int
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')


def pdf_words(pdf: Path) -> tuple[list[Word], float]:
    """Every word of the PDF with its box (pdftotext -bbox), in page then line order; and the page width."""
    assert PDFTOTEXT is not None
    out = subprocess.run([PDFTOTEXT, "-bbox", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True,
                         timeout=60).stdout.decode("utf-8")
    width = float(re.search(r'<page width="([\d.]+)"', out).group(1))  # type: ignore[union-attr]
    words = []
    for number, page in enumerate(out.split("<page ")[1:], start=1):
        for x0, y0, x1, y1, text in _WORD.findall(page):
            words.append(Word(number, unicodedata.normalize("NFC", html.unescape(text)),
                              float(x0), float(y0), float(x1), float(y1)))
    return sorted(words, key=lambda w: (w.page, round(w.y0), w.x0)), width


@dataclass
class RankingHeader:
    """A ranking table's header row as printed (again on each page the table continues on)."""

    block: str  # the "Xếp hạng khối ..." heading it is under
    words: list[Word]  # the header's words, every line of it
    rank: Word  # "Hạng", the first column's header, on the header's last line


def ranking_headers(words: list[Word]) -> list[RankingHeader]:
    """Each ranking table header: a line starting `Hạng Mã Đơn vị`, with the lines above it that are part of
    the header (bottom-aligned cells: up to 3 lines), under the latest `Xếp hạng khối BLOCK` heading."""
    headers: list[RankingHeader] = []
    block = ""
    for i, word in enumerate(words):
        if [w.text for w in words[i:i + 3]] == ["Xếp", "hạng", "khối"] and words[i + 3].page == word.page:
            rest = [w.text for w in words[i + 3:i + 12] if abs(w.y0 - word.y0) < 2]
            block = " ".join(rest).split(" (")[0]
        if [w.text for w in words[i:i + 4]] == ["Hạng", "Mã", "Đơn", "vị"]:
            band = [w for w in words if w.page == word.page and word.y1 - 40 < w.y1 <= word.y1 + 1]
            headings = {w.y0 for w in band if w.text == "khối"}
            band = [w for w in band if not headings or w.y0 > max(headings) + 2]
            headers.append(RankingHeader(block, band, word))
    return headers


def test_the_vietnamese_pdf_keeps_every_ranking_column_and_grades_whole(served: Served, tmp_path: Path) -> None:
    """Every ranking header printed (each block's, again on each page) ends with the whole "Cờ đề xuất" column
    inside the page, and a grade takes at most two lines of its cell, not one word per line."""
    need_pdf_tools()
    with served.server.client() as client:
        pdf = client.get_quarterly_report(PERIOD, format="pdf", timeout=180).content
        ranked = {block: len([e for e in client.list_rankings(PERIOD, block) if e.rank])
                  for block in ("departments", "communes")}
    target = tmp_path / "report-vi.pdf"
    target.write_bytes(pdf)
    words, page_width = pdf_words(target)
    headers = ranking_headers(words)
    assert sorted({h.block for h in headers}) == ["Sở, ban, ngành", "Xã, phường"], [h.block for h in headers]
    assert ranked["departments"] >= 2 and ranked["communes"] >= 2  # rows in both tables
    for header in headers:
        texts = [w.text for w in header.words]
        flag_words = [w for w in header.words if w.text in ("Cờ", "đề", "xuất")]
        assert [w.text for w in sorted(flag_words, key=lambda w: (round(w.y0), w.x0))] == ["Cờ", "đề", "xuất"], (
            header.block, texts)
        rightmost = max(header.words, key=lambda w: w.x1)
        assert rightmost in flag_words and rightmost.x1 <= page_width, (header.block, texts)
        assert "Quá" in texts and "Xếp" in texts  # the header is read whole: open overdue, grade
    # The grade column: from its header's "Xếp" to the next header word on the right, below the header
    # down to the next heading ("Chưa đủ điều kiện ..."). Its lines: at most two per ranked unit.
    for header in headers:
        grade = next(w for w in header.words if w.text == "Xếp")
        right = min(w.x0 for w in header.words if w.x0 > grade.x1 + 25)
        below = [w for w in words if w.page == header.rank.page and w.y0 > header.rank.y1]
        end = min((w.y0 for w in below if w.text == "Chưa" and w.x0 < header.rank.x1), default=1e9)
        cells = [w for w in below if w.y0 < end and grade.x0 - 1 <= w.x0 < right]
        lines = {round(w.y0) for w in cells}
        rows = [w for w in below if w.y0 < end and w.x1 <= header.rank.x1 + 2 and w.text.isdigit()]
        assert rows and len(lines) <= 2 * len(rows), (header.block, [w.text for w in cells], len(rows))
        assert {"Hoàn", "thành"} <= {w.text for w in cells}, [w.text for w in cells]
    text = " ".join(w.text for w in words)
    assert text.count("Cờ đề xuất") >= 4  # two ranking headers and two "not graded" tables, at least


def test_the_cli_writes_the_bytes_the_rpc_returns(served: Served, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli(served.server, "report", "--period", PERIOD)  # default file name from the server
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"civicscore-report-{PERIOD}-vi.html").read_bytes() == served.html_vi
    result = cli(served.server, "report", "--period", PERIOD, "--lang", "en", "--format", "csv", "-o", "out.csv")
    assert result.exit_code == 0, result.output
    with served.server.client() as client:
        assert (tmp_path / "out.csv").read_bytes() == client.get_quarterly_report(
            PERIOD, format="csv", language="en").content


def test_refusals(served: Served) -> None:
    with served.server.client(max_attempts=1) as client:
        with pytest.raises(FailedPrecondition) as not_evaluated:
            client.get_quarterly_report("2031-Q1")
        assert "civicscore evaluate 2031-Q1" in not_evaluated.value.message
        with pytest.raises(InvalidArgument):
            client.get_quarterly_report("2026-Q5")
    result = cli(served.server, "report", "--period", PERIOD, "--lang", "fr")
    assert result.exit_code == 2


def test_pdf_without_chromium_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_pdf, "find_chromium", lambda: None)
    with pytest.raises(ChromiumMissing) as missing:
        report_pdf.html_to_pdf("<p>x</p>")
    assert "apt-get install chromium" in missing.value.message
    assert missing.value.reason == "CHROMIUM_MISSING"
