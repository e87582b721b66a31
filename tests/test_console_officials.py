"""The console's pages about officials (cá nhân), in a real Chromium against a real server with the demo data.

A committee member works through the individuals' queue of the newest quarter, decides a head's
accountability, and the decision is read back through gRPC; every page they opened left `read_personal`
entries in the audit log under their name. A reader sees no way in and gets the server's refusal. The
pages pass axe-core in both languages and are photographed. Without Chromium, playwright or axe-core these
tests are SKIPPED loudly, as tests/test_console.py's.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from civicscore_api.v1 import evaluations_pb2
from tests.serverproc import ServerProcess, admin_client
from tests.services import require_service
from tests.test_console import (
    AXE,
    CHROMIUM,
    LAUNCH_ARGS,
    PEOPLE,
    ROOT,
    SCREENSHOTS,
    Console,
    Watched,
    need_browser,
    open_as,
)

pytestmark = pytest.mark.slow

MEMBER, READER, WATCHER = "nguyen.van.an", "tran.thi.binh", "pham.thu.ha"  # committee, reader, committee

try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    need_browser()
    workdir = tmp_path_factory.mktemp("console-officials")
    server = ServerProcess(workdir, extra_args=(
        "--demo-data", "--console-listen", "127.0.0.1:0", "--console-port-file", str(workdir / "console.port")))
    server.start(timeout=180)
    try:
        with admin_client(server.address) as admin:
            for identity_id in (MEMBER, READER, WATCHER):
                name, roles, password = PEOPLE[identity_id]
                admin.create_identity(identity_id, name, roles=roles)
                admin.set_password(identity_id, password)
            evaluated = [p.period_id for p in admin.list_periods() if p.units_evaluated and "-Q" in p.period_id]
            port = (workdir / "console.port").read_text().strip()
            yield Console(server, f"http://127.0.0.1:{port}", max(evaluated), admin)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def people(browser: Browser, console: Console) -> Iterator[list[Watched]]:
    opened: list[Watched] = []
    yield opened
    for watched in opened:
        assert watched.errors == [], f"console errors: {watched.errors}"
        assert watched.hosts <= {"127.0.0.1"}, f"requests left 127.0.0.1: {watched.hosts}"
        watched.close()


def personal_reads(console: Console, actor: str) -> list[dict[str, Any]]:
    """The audit log's `read_personal` entries of `actor`: the method, the target and the officials read."""
    return [{"target": event.target, **json.loads(event.detail_json)}
            for event in console.admin.list_audit_events(actor=actor, action="read_personal")]


def official_recommendation(console: Console, *, flag: str, status: str = "proposed") -> evaluations_pb2.Recommendation:
    """A recommendation of the quarter about an official (the one with the most reasons: its page shows most)."""
    found = list(console.admin.list_official_recommendations(console.period, flag=flag, status=status))
    assert found, f"the demo data has a {status} {flag} in {console.period}"
    return max(found, key=lambda rec: (len(rec.reasons), rec.name))


def path_of(console: Console, rec: evaluations_pb2.Recommendation) -> str:
    return f"/quarters/{console.period}/recommendations/{urllib.parse.quote(rec.name.rsplit('/', 1)[-1])}"


def test_a_committee_member_approves_a_heads_accountability_and_every_view_is_audited(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    member = open_as(people, browser, console, MEMBER).page
    member.goto(f"{console.url}/quarters/{console.period}")
    assert member.locator("#nav-individuals").inner_text() == "Cá nhân"
    member.click("#individuals-link")  # from the quarter page
    member.wait_for_url(re.compile(rf".*/quarters/{console.period}/individuals$"))
    assert "Mỗi lần xem đều được ghi vào nhật ký kiểm toán" in member.locator("#personal-note").inner_text()
    member.select_option("#f-kind", "criticism")
    member.select_option("#f-status", "proposed")
    member.click("form.filters button[type=submit]")
    member.wait_for_url(re.compile(r".*/individuals\?kind=criticism&status=proposed$"))
    assert set(member.locator("#individuals .kind").all_inner_texts()) == {"Phê bình"}
    expected = {r.name.rsplit("/", 1)[-1] for r in console.admin.list_official_recommendations(
        console.period, kind="criticism", status="proposed")}
    shown = {member.locator("#individuals tbody tr").nth(i).get_attribute("data-recommendation")
             for i in range(member.locator("#individuals tbody tr").count())}
    assert shown == expected

    head = official_recommendation(console, flag="head_accountability")
    slug = head.name.rsplit("/", 1)[-1]
    unit = console.admin.get_unit(head.unit.removeprefix("units/"))
    row = member.locator(f"#individuals tr[data-recommendation='{slug}']")
    text = row.inner_text()
    for shown_text in (head.official_display_name, "Người đứng đầu", unit.display_name_vi,
                       "Trách nhiệm người đứng đầu", head.reasons[0].text_vi, "Chưa có"):
        assert shown_text in text, (shown_text, text)
    assert "head_accountability" not in text and "OFFICIAL_POSITION" not in text  # labels, never codes
    assert f"kèm {len(head.reasons) - 1} lý do của đơn vị" in text  # listed on the recommendation's page

    # the recommendation: the person, their position and unit, their reason and the unit's, the decision form
    row.locator("th a").first.click()
    member.wait_for_url(re.compile(r".*/recommendations/.*~head_accountability~.*"))
    assert member.locator("h1").inner_text() == f"Trách nhiệm người đứng đầu: {head.official_display_name}"
    person = member.locator("#person").inner_text()
    assert head.official_display_name in person and "Người đứng đầu" in person and unit.display_name_vi in person
    assert member.locator("#person-reasons li").all_inner_texts() == [head.reasons[0].text_vi]
    assert member.locator("#unit-reasons li").all_inner_texts() == [r.text_vi for r in head.reasons[1:]]
    assert "Trang này có dữ liệu cá nhân" in member.locator("#personal-note").inner_text()
    assert member.locator("table.fired tr.this-flag").count() == 1
    assert member.locator("#history-h").is_visible() and member.locator("#history").count() == 0
    member.check("input[name=decision][value=approve]")
    member.fill("#reason", "Đồng ý, đề nghị người đứng đầu kiểm điểm trách nhiệm")
    member.click("form .primary")
    member.wait_for_selector("p.notice.success")
    assert "Chấp thuận" in member.locator("p.notice.success").inner_text()
    assert "Đồng ý, đề nghị người đứng đầu kiểm điểm" in member.locator("#history").inner_text()

    # read back through gRPC: stored with the member's identity
    reviews = list(console.admin.list_recommendation_reviews(head.name))
    assert [(r.reviewer, r.reason) for r in reviews] == [
        (MEMBER, "Đồng ý, đề nghị người đứng đầu kiểm điểm trách nhiệm")]
    approved = [r for r in console.admin.list_official_recommendations(console.period, official=head.official,
                                                                      flag="head_accountability")]
    assert [(r.status, r.last_reviewer) for r in approved] == [(evaluations_pb2.RECOMMENDATION_STATUS_APPROVED,
                                                                MEMBER)]

    # the person's page: positions held, with dates the Vietnamese way, and this quarter's flag, approved
    member.click("#official-link")
    member.wait_for_url(re.compile(r".*/officials/.+"))
    official_id = head.official.removeprefix("officials/")
    assert member.locator("h1").inner_text() == head.official_display_name
    positions = member.locator("#positions").inner_text()
    assert "Người đứng đầu" in positions and unit.display_name_vi in positions
    assert re.search(r"\b\d\d/\d\d/\d{4}\b", positions)
    quarter_row = member.locator("#official-history tbody tr", has_text=console.period).inner_text()
    assert "Trách nhiệm người đứng đầu (Đã chấp thuận)" in quarter_row
    assert "Mỗi lần xem đều được ghi vào nhật ký kiểm toán" in member.locator("#personal-note").inner_text()

    # every view of personal data is in the audit log, under the member's name
    reads = personal_reads(console, MEMBER)
    methods = {r["method"] for r in reads}
    assert {"ListOfficialRecommendations", "ListOfficialEvaluations", "GetOfficialEvaluation",
            "ListRecommendationReviews", "ReviewRecommendation", "GetOfficial"} <= methods, methods
    assert any(r["method"] == "GetOfficial" and r["officials"] == [official_id] for r in reads)
    assert any(r["method"] == "ReviewRecommendation" and official_id in r["officials"] for r in reads)


def test_a_reader_sees_no_way_in_and_gets_the_servers_refusal(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    watched = open_as(people, browser, console, READER)
    page = watched.page
    page.goto(f"{console.url}/quarters/{console.period}")
    assert page.locator("nav.main-nav").is_visible()
    assert page.locator("#nav-individuals").count() == 0 and page.locator("#individuals-link").count() == 0
    assert page.locator("a[href*='/individuals']").count() == 0
    head = official_recommendation(console, flag="head_accountability")
    for path in (f"/quarters/{console.period}/individuals", path_of(console, head), f"/{head.official}"):
        response = page.goto(console.url + path)
        assert response is not None and response.status == 403, path
        assert page.locator("h1").inner_text() == "Bạn không có quyền thực hiện thao tác này."
        said = page.locator(".server-message").inner_text()
        assert "personal.read" in said and "tran.thi.binh" in said, said
        assert head.official_display_name not in page.content()
    assert personal_reads(console, READER) == []  # refused before anything was read
    # the browser may report each refused page as a failed load; nothing else went wrong
    assert all(re.fullmatch(r"Failed to load resource: .*status of 403.*", e) for e in watched.errors), watched.errors
    watched.errors.clear()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_pages_about_officials_are_accessible_and_photographed(
        console: Console, browser: Browser, people: list[Watched], lang: str) -> None:
    if not AXE.is_file():
        require_service("axe-core", f"{AXE.relative_to(ROOT)} is missing (make test installs it with npm; CI too)")
    # bypass_csp: axe is injected by the test, from this machine's disk; the pages' own CSP stays in force
    watched = open_as(people, browser, console, WATCHER, bypass_csp=True)
    page = watched.page
    if lang == "en":
        page.click("a.lang-switch")
        page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == lang
    head = official_recommendation(console, flag="head_accountability")
    pages = {"individuals": f"/quarters/{console.period}/individuals",
             "official-recommendation": path_of(console, head), "official": f"/{head.official}"}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in pages.items():
        response = page.goto(console.url + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        note = page.locator("#personal-note").inner_text()
        assert note == ("Trang này có dữ liệu cá nhân. Mỗi lần xem đều được ghi vào nhật ký kiểm toán kèm tên người "
                        "xem." if lang == "vi" else
                        "This page shows personal data. Every view is recorded in the audit log with the viewer's "
                        "name."), note
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{name} ({lang}): {serious}"
        body = page.locator("main").inner_text()
        assert not re.search(r"\b(head_accountability|individual_praise|individual_reminder|OFFICIAL_POSITION_\w+|"
                             r"RECOMMENDATION_\w+)\b", body), (name, lang)
        if name != "official":
            page.screenshot(path=str(SCREENSHOTS / f"console-{name}-{lang}.png"))
        assert ("Trách nhiệm người đứng đầu" if lang == "vi" else "Head accountability") in body, (name, lang)

