"""The committee's web console in a real Chromium (Debian's, through playwright), against a real server.

One server runs with the console and the demo data (141 Hanoi units, two quarters); people are named
identities with passwords, and every decision is read back through gRPC. Without Chromium, playwright or
axe-core these tests are SKIPPED loudly (CI installs them and fails instead).
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from civicscore.domain.periods import Quarter
from civicscore.report import find_chromium
from civicscore_api.v1 import extensions_pb2, obstacles_pb2
from civicscore_client import Client, Unauthenticated
from tests.serverproc import ServerProcess, admin_client
from tests.services import require_service

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = find_chromium()
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 768}

PEOPLE = {  # identity id: (display name, roles, password)
    "nguyen.van.an": ("Nguyễn Văn An", ["committee"], "an-committee-pass-2026"),
    "pham.thu.ha": ("Phạm Thu Hà", ["committee"], "ha-committee-pass-2026"),
    "tran.thi.binh": ("Trần Thị Bình", ["reader"], "binh-reader-pass-2026"),
    "le.van.cuong": ("Lê Văn Cường", ["policy"], "cuong-policy-pass-2026"),
    "do.minh.khoa": ("Đỗ Minh Khoa", ["reader"], "khoa-reader-pass-2026"),
    "vu.quang.huy": ("Vũ Quang Huy", ["admin"], "huy-admin-pass-2026"),
}
CANDIDATE = "stricter-excellent"  # the default rules with "excellent" from 95 points instead of 90

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


def need_browser() -> None:
    if CHROMIUM is None:
        require_service("Chromium", "it is not installed (make pdf-deps: apt-get install chromium; CI installs it)")
    if sync_playwright is None:
        require_service("Python playwright", "it is not installed (pip install playwright; CI installs it)")


@dataclass
class Console:
    server: ServerProcess
    url: str
    period: str
    admin: Client

    def client_as(self, identity_id: str) -> Client:
        token = self.admin.sign_in(identity_id, PEOPLE[identity_id][2]).token
        return self.admin.with_token(token)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    need_browser()
    workdir = tmp_path_factory.mktemp("console")
    candidate = workdir / "candidates" / CANDIDATE
    candidate.mkdir(parents=True)
    for rule_file in (ROOT / "rules").glob("*.yaml"):
        text = rule_file.read_text(encoding="utf-8")
        if rule_file.name == "grades.yaml":
            band = "  - grade: excellent\n    min_score: {}\n"
            assert band.format(90) in text
            text = text.replace(band.format(90), band.format(95))
        (candidate / rule_file.name).write_text(text, encoding="utf-8")
    server = ServerProcess(workdir, extra_args=(
        "--demo-data", "--console-listen", "127.0.0.1:0", "--console-port-file", str(workdir / "console.port"),
        "--console-candidates", str(workdir / "candidates")))
    server.start(timeout=180)
    try:
        with admin_client(server.address) as admin:
            for identity_id, (name, roles, password) in PEOPLE.items():
                admin.create_identity(identity_id, name, roles=roles)
                admin.set_password(identity_id, password)
            evaluated = [p.period_id for p in admin.list_periods() if p.units_evaluated]
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


class Watched:
    """A browser context whose console errors, failed requests and every request's host are recorded."""

    def __init__(self, browser: Browser, base: str, **options: Any) -> None:
        self.context: BrowserContext = browser.new_context(viewport=VIEWPORT, locale="vi-VN", **options)
        self.base = base
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.page: Page = self.context.new_page()
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.hosts.add(urllib.parse.urlsplit(request.url).hostname or ""))

    def sign_in(self, identity_id: str) -> None:
        self.page.goto(self.base + "/sign-in")
        self.page.fill("#identity_id", identity_id)
        self.page.fill("#password", PEOPLE[identity_id][2])
        self.page.click("form[action='/sign-in'] button[type=submit]")
        self.page.wait_for_load_state()
        assert "/sign-in" not in self.page.url, self.page.content()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser: Browser, console: Console) -> Iterator[list[Watched]]:
    opened: list[Watched] = []
    yield opened
    for watched in opened:
        assert watched.errors == [], f"console errors: {watched.errors}"
        assert watched.hosts <= {"127.0.0.1"}, f"requests left 127.0.0.1: {watched.hosts}"
        watched.close()


def open_as(people: list[Watched], browser: Browser, console: Console, identity_id: str | None, **options: Any
            ) -> Watched:
    watched = Watched(browser, console.url, **options)
    people.append(watched)
    if identity_id:
        watched.sign_in(identity_id)
    return watched


def reviews_of(console: Console, slug: str) -> list[Any]:
    return list(console.admin.list_recommendation_reviews(f"periods/{console.period}/recommendations/{slug}"))


def test_a_committee_member_reviews_in_the_browser_and_a_second_browser_sees_it_live(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    watcher = open_as(people, browser, console, "pham.thu.ha")
    watcher.page.goto(f"{console.url}/quarters/{console.period}/queue?kind=criticism")
    watcher.page.wait_for_selector("#live-status:has-text('Đang tự cập nhật')")
    watcher.page.evaluate("window.__notReloaded = true")

    member = open_as(people, browser, console, "nguyen.van.an").page
    member.goto(f"{console.url}/quarters/{console.period}")
    member.click("nav >> text=Đề xuất cần xem xét")
    member.select_option("#f-kind", "criticism")
    member.click("form.filters button[type=submit]")
    member.wait_for_url(re.compile(r".*/queue\?kind=criticism(&.*)?$"))
    rows = member.locator("#queue tbody tr[data-status=proposed]")
    assert rows.count() >= 2
    first, second = (rows.nth(i).get_attribute("data-recommendation") for i in (0, 1))
    assert first and second and first != second
    assert all(member.locator("#queue .kind").all_inner_texts()) and \
        set(member.locator("#queue .kind").all_inner_texts()) == {"Phê bình"}

    # one: read its evidence, defer it with a reason
    member.click(f"#queue tr[data-recommendation='{first}'] th a")
    member.wait_for_selector("#figures-h")
    for heading in ("#reasons-h", "#fired-h", "#margins-h", "#contest-h", "#history-h"):
        assert member.locator(heading).is_visible()
    assert member.locator("table.fired tbody tr").count() >= 1
    member.check("input[name=decision][value=defer]")
    member.fill("#reason", "Chờ đơn vị giải trình về các nhiệm vụ quá hạn")
    member.click("form .primary")
    member.wait_for_selector("p.notice.success")
    assert "Tạm hoãn" in member.locator("p.notice.success").inner_text()
    assert "Chờ đơn vị giải trình" in member.locator("#history").inner_text()

    # another: approve it
    member.goto(f"{console.url}/quarters/{console.period}/recommendations/{urllib.parse.quote(second)}")
    member.check("input[name=decision][value=approve]")
    member.fill("#reason", "Đồng ý phê bình theo đề xuất")
    member.click("form .primary")
    member.wait_for_selector("p.notice.success")

    # stored, read back through gRPC, with the person's identity
    deferred, approved = reviews_of(console, first), reviews_of(console, second)
    assert [(r.reviewer, r.reason) for r in deferred] == [("nguyen.van.an", "Chờ đơn vị giải trình về các nhiệm vụ "
                                                                            "quá hạn")]
    assert [(r.reviewer, r.reason) for r in approved] == [("nguyen.van.an", "Đồng ý phê bình theo đề xuất")]
    audit = [e for e in console.admin.list_audit_events(actor="nguyen.van.an") if e.action == "review_recommendation"]
    assert len(audit) == 2

    # the second browser saw both without reloading
    watcher.page.wait_for_selector(f"#queue tr[data-recommendation='{first}'][data-status=deferred]", timeout=20_000)
    watcher.page.wait_for_selector(f"#queue tr[data-recommendation='{second}'][data-status=approved]", timeout=20_000)
    assert watcher.page.evaluate("window.__notReloaded") is True
    assert "nguyen.van.an" in watcher.page.locator(f"#queue tr[data-recommendation='{first}']").inner_text()


def test_a_reader_sees_no_decision_form_and_a_forged_post_is_refused_by_the_server(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    reader = open_as(people, browser, console, "tran.thi.binh")
    page = reader.page
    page.goto(f"{console.url}/quarters/{console.period}/queue?kind=criticism&status=proposed")
    slug = page.locator("#queue tbody tr").first.get_attribute("data-recommendation")
    assert slug
    page.click(f"#queue tr[data-recommendation='{slug}'] th a")
    page.wait_for_selector("#reader-note")
    assert page.locator("textarea#reason").count() == 0
    assert page.locator("input[name=decision]").count() == 0
    # file:line is for policy staff
    assert page.locator("table.fired code:has-text('.yaml:')").count() == 0

    csrf = page.locator("form[action='/sign-out'] input[name=csrf]").get_attribute("value")
    forged = reader.context.request.post(
        f"{console.url}/quarters/{console.period}/recommendations/{urllib.parse.quote(slug)}",
        form={"csrf": csrf or "", "decision": "approve", "reason": "forged"},
        headers={"Origin": console.url}, max_redirects=0)
    assert forged.status == 403
    body = forged.text()
    assert "Bạn không có quyền thực hiện thao tác này." in body
    assert "reviews.decide" in body or "committee" in body  # the server's own words say which permission
    assert reviews_of(console, slug) == []


def test_a_post_without_the_csrf_token_is_refused(console: Console, browser: Browser, people: list[Watched]) -> None:
    member = open_as(people, browser, console, "nguyen.van.an")
    page = member.page
    page.goto(f"{console.url}/quarters/{console.period}/queue?kind=commendation&status=proposed")
    slug = page.locator("#queue tbody tr").first.get_attribute("data-recommendation")
    assert slug
    target = f"{console.url}/quarters/{console.period}/recommendations/{urllib.parse.quote(slug)}"
    for form in ({"decision": "approve", "reason": "no token"},
                 {"decision": "approve", "reason": "wrong token", "csrf": "0" * 64}):
        refused = member.context.request.post(target, form=form, headers={"Origin": console.url}, max_redirects=0)
        assert refused.status == 403
        assert "Biểu mẫu đã hết hạn hoặc không hợp lệ" in refused.text()
    # posted from another site, even with the right token
    page.goto(target)
    csrf = page.locator("form .primary").locator("xpath=..").locator("input[name=csrf]").get_attribute("value")
    cross = member.context.request.post(target, form={"csrf": csrf or "", "decision": "approve", "reason": "x"},
                                        headers={"Origin": "http://evil.example"}, max_redirects=0)
    assert cross.status == 403
    assert reviews_of(console, slug) == []


def test_ten_wrong_passwords_lock_the_account_and_no_password_is_stored_or_logged(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    visitor = open_as(people, browser, console, None)
    page = visitor.page
    for attempt in range(10):
        page.goto(f"{console.url}/sign-in")
        page.fill("#identity_id", "do.minh.khoa")
        page.fill("#password", f"wrong-password-{attempt}")
        page.click("form[action='/sign-in'] button[type=submit]")
        expected = "Tài khoản tạm khóa" if attempt == 9 else "Tên đăng nhập hoặc mật khẩu không đúng."
        assert expected in page.locator("#sign-in-message").inner_text(), attempt
    page.goto(f"{console.url}/sign-in")
    page.fill("#identity_id", "do.minh.khoa")
    page.fill("#password", PEOPLE["do.minh.khoa"][2])  # the right one, too late
    with page.expect_response(lambda r: r.request.method == "POST") as caught:
        page.click("form[action='/sign-in'] button[type=submit]")
    assert int(caught.value.headers["retry-after"]) > 0
    assert re.fullmatch(r"Tài khoản tạm khóa do nhập sai mật khẩu nhiều lần\. Thử lại sau (1 phút|\d\d? giây)\.",
                        page.locator("#sign-in-message").inner_text())
    assert "/sign-in" in page.url and "cs_session" not in {c["name"] for c in visitor.context.cookies()}

    secrets = [password.encode() for _, _, password in PEOPLE.values()] + \
        [f"wrong-password-{i}".encode() for i in range(10)]
    database = console.server.workdir / "civicscore.db"
    with sqlite3.connect(database) as db:  # every table, every text column: no password in clear
        dump = "\n".join(db.iterdump()).encode()
    for path in console.server.workdir.rglob("*"):
        if path.is_file() and path.suffix in (".db", ".db-wal", ".log", ".token"):
            dump += path.read_bytes()
    for secret in secrets:
        assert secret not in dump, secret


def test_sign_out_ends_the_session_on_the_server(console: Console, browser: Browser, people: list[Watched]) -> None:
    reader = open_as(people, browser, console, "tran.thi.binh")
    cookies = {c["name"]: c for c in reader.context.cookies()}
    session = cookies["cs_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    token = session["value"]
    assert console.admin.with_token(token).whoami().identity.identity_id == "tran.thi.binh"
    reader.page.click("form[action='/sign-out'] button")
    reader.page.wait_for_url(re.compile(r".*/sign-in\?signed_out=1$"))
    assert "Bạn đã đăng xuất." in reader.page.content()
    assert "cs_session" not in {c["name"] for c in reader.context.cookies()}
    with pytest.raises(Unauthenticated):
        console.admin.with_token(token).whoami()
    reader.page.goto(f"{console.url}/quarters/{console.period}")
    assert "/sign-in" in reader.page.url


def test_policy_staff_see_what_a_candidate_folder_would_change(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    page = open_as(people, browser, console, "le.van.cuong").page
    page.click("nav >> text=Bộ quy tắc")
    assert page.locator("h1").inner_text() == "Bộ quy tắc đang áp dụng"
    page.select_option("#candidate", CANDIDATE)
    page.select_option("#wi-period", console.period)
    page.click("form[action='/rules/what-if'] button")
    page.wait_for_selector("#simulation-h")
    rows = page.locator("#simulation tbody tr")
    files = {path.name: path.read_text(encoding="utf-8")
             for path in (console.server.workdir / "candidates" / CANDIDATE).glob("*.yaml")}
    expected = console.admin.simulate_ruleset(files, console.period, changed_only=True)
    assert rows.count() == len(expected.units) > 0
    table = page.locator("#simulation").inner_text()
    assert "Hoàn thành xuất sắc nhiệm vụ → Hoàn thành tốt nhiệm vụ" in table
    assert "excellent" not in table  # labels, not codes


def test_an_administrator_sees_the_identities_and_verifies_the_audit_log(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    page = open_as(people, browser, console, "vu.quang.huy").page
    page.click("nav >> text=Quản trị")
    table = page.locator("main table").inner_text()
    assert all(identity_id in table for identity_id in PEOPLE) and "Ban Chỉ đạo" in table
    page.click("text=Kiểm tra tính toàn vẹn")
    result = page.locator("#audit-result").inner_text()
    assert result.startswith("Nhật ký toàn vẹn:") and "không bị sửa đổi" in result


def test_a_session_ended_on_the_server_sends_the_person_back_to_sign_in(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    reader = open_as(people, browser, console, "tran.thi.binh")
    reader.page.goto(f"{console.url}/quarters/{console.period}")
    sessions = [c for c in console.admin.list_credentials("tran.thi.binh") if c.sign_in and not c.revoked]
    for session in sessions:  # an administrator ends them (as a new password would)
        console.admin.revoke_credential(session.name)
    reader.page.goto(f"{console.url}/units")
    assert "/sign-in" in reader.page.url and "next=/units" in reader.page.url
    assert "Phiên làm việc đã kết thúc. Vui lòng đăng nhập lại." in reader.page.locator("#sign-in-message").inner_text()
    reader.page.fill("#identity_id", "tran.thi.binh")  # on the page it was sent to: back where it was going
    reader.page.fill("#password", PEOPLE["tran.thi.binh"][2])
    reader.page.click("form[action='/sign-in'] button[type=submit]")
    reader.page.wait_for_url(re.compile(r".*/units$"))


def test_a_person_changes_their_password_and_stays_signed_in(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    identity_id, new_password = "pham.thu.ha", "ha-new-password-2026-12"
    elsewhere = console.client_as(identity_id)  # another session of hers, e.g. on another computer
    page = open_as(people, browser, console, identity_id).page
    page.click("text=Đổi mật khẩu")
    page.fill("#current", "not her password")
    page.fill("#new", new_password)
    page.fill("#again", new_password)
    page.click("form[action='/password'] button")
    assert page.locator("#password-message").inner_text() == "Mật khẩu hiện tại không đúng."
    page.fill("#current", PEOPLE[identity_id][2])
    page.fill("#new", new_password)
    page.fill("#again", new_password)
    page.click("form[action='/password'] button")
    assert page.locator("#password-message").inner_text().startswith("Đã đổi mật khẩu.")
    page.goto(f"{console.url}/units")  # this session goes on
    assert page.url.endswith("/units")
    with pytest.raises(Unauthenticated):  # the other one ended
        elsewhere.whoami()
    assert console.admin.sign_in(identity_id, new_password).identity.identity_id == identity_id
    console.admin.set_password(identity_id, PEOPLE[identity_id][2])  # as it was, for the other tests


def test_the_committee_decides_an_extension_request_and_a_reader_only_reads_them(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    pending = list(console.admin.list_extensions(status="pending"))
    assert pending, "the demo data has pending extension requests"
    member = open_as(people, browser, console, "nguyen.van.an").page
    member.click("nav >> text=Gia hạn")
    row = member.locator("#extensions tbody tr[data-status=pending]").first
    name = row.get_attribute("data-extension")
    assert name
    row.locator("textarea").fill("Đồng ý gia hạn do vướng mắc về thủ tục liên ngành")
    row.locator("button[value=approve]").click()
    assert member.locator("#extension-saved").inner_text() == "Đã ghi nhận: Đã chấp thuận."
    decided = console.admin.get_extension(name)
    assert (decided.decided_by, decided.decision_reason) == (
        "nguyen.van.an", "Đồng ý gia hạn do vướng mắc về thủ tục liên ngành")
    assert decided.status == extensions_pb2.EXTENSION_STATUS_APPROVED

    reader = open_as(people, browser, console, "tran.thi.binh").page
    reader.goto(f"{console.url}/extensions?status=all")
    assert reader.locator("#extensions tbody tr").count() >= len(pending)
    assert reader.locator("#extensions textarea").count() == 0
    assert "Đã chấp thuận" in reader.locator(f"#extensions tr[data-extension='{name}']").inner_text()


def test_a_report_on_demand_is_made_from_the_quarter_page(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    """The committee picks a day of the quarter on its page and reads the provisional report to that day; the
    quarter's stored results are not touched."""
    quarter = Quarter.parse(console.period)
    day = quarter.start + dt.timedelta(days=44)
    stored = [(e.unit, e.revision) for e in console.admin.list_evaluations(console.period)]
    member = open_as(people, browser, console, "nguyen.van.an").page
    member.goto(f"{console.url}/quarters/{console.period}")
    assert member.locator("#as-of").get_attribute("min") == quarter.start.isoformat()
    member.fill("#as-of", day.isoformat())
    member.select_option("#od-format", "html")
    member.click("form.on-demand button[type=submit]")
    member.wait_for_selector("#provisional")
    assert member.title() == f"Báo cáo đột xuất quý {console.period} đến ngày {day:%d/%m/%Y}"
    assert member.locator("#provisional").inner_text().startswith("TẠM TÍNH")
    assert [(e.unit, e.revision) for e in console.admin.list_evaluations(console.period)] == stored


def test_the_committee_office_assigns_and_resolves_an_obstacle(
        console: Console, browser: Browser, people: list[Watched]) -> None:
    member = open_as(people, browser, console, "nguyen.van.an").page
    member.click("nav >> text=Vướng mắc")
    row = member.locator("#obstacles tbody tr[data-status=open]").first
    name = row.get_attribute("data-obstacle")
    assert name
    row.locator("select[name=unit]").select_option("SNV")
    row.locator("form[action$='/assign'] button").click()
    assert member.locator("#obstacle-saved").inner_text() == "Đã giao xử lý."
    assigned = console.admin.get_obstacle(name)
    assert assigned.resolver_unit == "units/SNV" and assigned.assigned_by == "nguyen.van.an"

    row = member.locator(f"#obstacles tr[data-obstacle='{name}']")
    assert "Sở Nội vụ" in row.inner_text()
    row.locator("textarea[name=resolution]").fill("Sở Nội vụ đã hướng dẫn quy trình liên thông")
    row.locator("form[action$='/resolve'] button").click()
    assert member.locator("#obstacle-saved").inner_text() == "Đã ghi kết quả giải quyết."
    resolved = console.admin.get_obstacle(name)
    assert resolved.status == obstacles_pb2.OBSTACLE_STATUS_RESOLVED
    assert (resolved.resolved_by, resolved.resolution) == ("nguyen.van.an",
                                                           "Sở Nội vụ đã hướng dẫn quy trình liên thông")
    assert member.locator(f"#obstacles tr[data-obstacle='{name}']").count() == 0  # no longer unresolved


PAGES = {  # name: path under the console, given the period
    "quarter": "/quarters/{period}",
    "queue": "/quarters/{period}/queue",
    "recommendation": None,  # the first criticism of the queue
    "units": "/units",
    "unit": "/units/SNV",
    "rules": "/rules",
    "extensions": "/extensions",
    "obstacles": "/obstacles",
}


def _recommendation_path(console: Console) -> str:
    found = next(r for r in console.admin.list_recommendations(console.period, kind="criticism", status="proposed"))
    slug = found.name.rsplit("/", 1)[-1]
    return f"/quarters/{console.period}/recommendations/{urllib.parse.quote(slug)}"


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_page_loads_cleanly_is_accessible_and_is_photographed(
        console: Console, browser: Browser, people: list[Watched], lang: str) -> None:
    if not AXE.is_file():
        require_service("axe-core", f"{AXE.relative_to(ROOT)} is missing (make test installs it with npm; CI too)")
    # bypass_csp: axe is injected by the test, from this machine's disk; the pages' own CSP stays in force
    # for everything else (checked by the response headers below)
    person = open_as(people, browser, console, "le.van.cuong", bypass_csp=True)
    page = person.page
    if lang == "en":
        page.click("a.lang-switch")
        page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == lang
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, template in PAGES.items():
        path = template.format(period=console.period) if template else _recommendation_path(console)
        response = page.goto(console.url + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle") if name != "queue" else page.wait_for_selector(
            "#live-status:not(:empty)")
        if name in ("quarter", "queue", "recommendation"):
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
            serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
                       if v["impact"] in ("serious", "critical")]
            assert serious == [], f"{name} ({lang}): {serious}"
            page.screenshot(path=str(SCREENSHOTS / f"console-{name}-{lang}.png"))
        body = page.locator("main").inner_text()
        assert not re.search(r"\b(commendation_candidate|criticism_candidate|RECOMMENDATION_|not_completed)\b", body), \
            (name, lang)
    if lang == "vi":
        page.goto(console.url + f"/quarters/{console.period}")
        text = page.locator("main").inner_text()
        assert "Kết quả đánh giá quý" in text and "Xếp hạng khối" in text
        assert re.search(r"\d+,\d\d", text)  # Vietnamese decimal comma


def test_make_runs_first_sign_in_and_a_console_off_loopback_needs_tls(tmp_path: Path) -> None:
    """What `make run` does: the bootstrap administrator gets a password file for its first sign-in (never
    logged); and a console on a non-loopback address without a certificate does not start."""
    password_file = tmp_path / "admin.password"
    server = ServerProcess(tmp_path, extra_args=(
        "--console-listen", "127.0.0.1:0", "--console-port-file", str(tmp_path / "console.port"),
        "--bootstrap-admin-password-file", str(password_file)))
    server.start()
    try:
        password = password_file.read_text().strip()
        assert len(password) >= 20 and password_file.stat().st_mode & 0o777 == 0o600
        with admin_client(server.address) as admin:
            signed_in = admin.sign_in("bootstrap-admin", password)
            assert signed_in.identity.identity_id == "bootstrap-admin"
        log = server.log()
        assert f"first sign-in to the console: identity bootstrap-admin, password in {password_file}" in log
        assert "committee console at http://127.0.0.1:" in log
        assert password not in log
    finally:
        server.stop()
    # started again: the file is kept as it is (the password may have been changed since)
    server.start()
    try:
        assert password_file.read_text().strip() == password
    finally:
        server.stop()

    refused = ServerProcess(tmp_path / "off-loopback", extra_args=("--console-listen", "0.0.0.0:0"))
    refused.workdir.mkdir()
    with pytest.raises(RuntimeError) as failed:
        refused.start()
    assert "cannot start: the console would serve plain HTTP on 0.0.0.0:0, outside this machine: give --tls-cert " \
           "and --tls-key" in str(failed.value)
