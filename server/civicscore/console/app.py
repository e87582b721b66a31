"""The committee's web console: a Starlette application that is a client of the gRPC API.

Every page is rendered on the server from what the SDK returns to the signed-in person; there is no
front-end build and no asset from elsewhere (the Content-Security-Policy allows this origin only). The
console holds no state of its own: sessions are the server's sign-in credentials (see `session`), so
any number of consoles beside any number of replicas give the same pages.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from civicscore.console import individuals, views
from civicscore.console.live import LiveUpdates
from civicscore.console.session import (
    Person,
    clear_cookie,
    cookie_names,
    csrf_matches,
    new_sign_in_nonce,
    safe_next,
    same_origin,
    set_cookie,
)
from civicscore.console.words import DEFAULT_LANGUAGE, LANGUAGES, Words
from civicscore_client import (
    CivicscoreError,
    Client,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

HERE = Path(__file__).resolve().parent
log = logging.getLogger("civicscore.console")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
REPORT_FORMATS = {"html": "html", "pdf": "pdf", "csv": "csv"}
MAX_FORM_BYTES = 64 * 1024


class SignInNeeded(Exception):
    """No session, or the server no longer accepts it: the person is sent to the sign-in page."""


class CsrfRefused(Exception):
    """A form without this session's CSRF token, or posted from another site."""


@dataclass(frozen=True)
class ConsoleSettings:
    secure: bool = False  # served over TLS: Secure, __Host- cookies
    candidates_root: Path | None = None  # folder whose sub-folders policy staff may simulate
    max_live: int = 16  # open live-update streams per console process (each is a call in flight on the server)
    version: str = ""


class SecurityHeaders:
    """Security headers on every response (a plain ASGI middleware: it leaves the live stream alone)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith("/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Cache-Control", "public, max-age=3600" if cacheable else "no-store")
            await send(message)

        await self.app(scope, receive, sending)


class Console:
    """The console's routes, over one SDK client (the channel) that acts as each person in turn."""

    def __init__(self, client: Client, settings: ConsoleSettings | None = None) -> None:
        self.client = client
        self.settings = settings or ConsoleSettings()
        self.cookies = cookie_names(self.settings.secure)
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals["quote"] = quote
        self.templates.env.globals["quarter_of"] = views.quarter_of
        self.live = LiveUpdates(self.settings.max_live)
        routes = [
            Route("/", self.home),
            Route("/healthz", self.healthz),
            # Browsers ask for it on pages without an icon of their own (the report's HTML).
            Route("/favicon.ico", lambda request: RedirectResponse("/static/favicon.svg", status_code=301)),
            Route("/sign-in", self.sign_in_page, methods=["GET"]),
            Route("/sign-in", self.sign_in, methods=["POST"]),
            Route("/sign-out", self.sign_out, methods=["POST"]),
            Route("/language", self.language),
            Route("/password", self.password_page, methods=["GET"]),
            Route("/password", self.change_password, methods=["POST"]),
            Route("/go", self.go),
            Route("/quarters/{period}", self.quarter),
            Route("/quarters/{period}/queue", self.queue),
            Route("/quarters/{period}/queue/rows", self.queue_rows),
            Route("/quarters/{period}/individuals", self.individuals_queue),
            Route("/quarters/{period}/recommendations/{slug}", self.recommendation, methods=["GET"]),
            Route("/quarters/{period}/recommendations/{slug}", self.decide, methods=["POST"]),
            Route("/quarters/{period}/report.{fmt}", self.report),
            Route("/quarters/{period}/report-on-demand", self.report_on_demand),
            Route("/units", self.units),
            Route("/units/{code}", self.unit),
            Route("/officials/{official_id}", self.official_page),
            Route("/rules", self.rules, methods=["GET"]),
            Route("/rules/what-if", self.what_if, methods=["POST"]),
            Route("/extensions", self.extensions, methods=["GET"]),
            Route("/extensions/{assignment}/{number:int}", self.decide_extension, methods=["POST"]),
            Route("/obstacles", self.obstacles, methods=["GET"]),
            Route("/obstacles/{assignment}/{number:int}/{move}", self.move_obstacle, methods=["POST"]),
            Route("/admin", self.admin),
            Route("/live/recommendations", self.live_recommendations),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ]
        self.app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], exception_handlers={
            CivicscoreError: self._civicscore_error, SignInNeeded: self._sign_in_needed,
            CsrfRefused: self._csrf_refused, HTTPException: self._http_error, Exception: self._bug})

    # ---- who and how ----

    def words(self, request: Request) -> Words:
        lang = request.cookies.get(self.cookies.language, DEFAULT_LANGUAGE)
        return Words(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)

    def person(self, request: Request) -> Person:
        """The signed-in person (WhoAmI with their token), or SignInNeeded."""
        token = request.cookies.get(self.cookies.session)
        if not token:
            raise SignInNeeded
        try:
            as_person = self.client.with_token(token)
        except ValueError:  # a cookie that is not a token at all
            raise SignInNeeded from None
        try:
            reply = as_person.whoami()
        except Unauthenticated:
            raise SignInNeeded from None
        found = Person.from_whoami(token, reply)
        request.state.person = found
        return found

    def acting(self, person: Person) -> Client:
        return self.client.with_token(person.token)

    def page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        w = self.words(request)
        person = getattr(request.state, "person", None)
        context.setdefault("periods", [])
        return self.templates.TemplateResponse(request, template, {
            "w": w, "lang": w.lang, "person": person, "path": request.url.path,
            "full_path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "settings": self.settings, **context}, status_code=status_code)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form (bounded), after the same-origin check."""
        if not same_origin(request):
            raise CsrfRefused
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
            raise HTTPException(413, "the form is too large")
        form = await request.form(max_files=0, max_fields=50)
        return {key: value for key, value in form.items() if isinstance(value, str)}

    def check_csrf(self, person: Person, form: dict[str, str]) -> None:
        if not csrf_matches(person.csrf, form.get("csrf")):
            raise CsrfRefused

    # ---- errors as pages ----

    async def _sign_in_needed(self, request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET" or target.startswith("/live/") or request.url.path.endswith("/rows"):
            target = "/"  # after signing in, a page: not a form's target, the live stream or a fragment
        had_session = self.cookies.session in request.cookies
        response = RedirectResponse(f"/sign-in?next={quote(safe_next(target))}" + ("&ended=1" if had_session else ""),
                                    status_code=303)
        if had_session:
            clear_cookie(response, self.cookies.session, secure=self.settings.secure)
        return response

    async def _csrf_refused(self, request: Request, exc: Exception) -> Response:
        return self.page(request, "error.html.j2", 403, title=self.words(request)("error_csrf"), detail="")

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        w = self.words(request)
        title = w("error_not_found") if exc.status_code == 404 else w("error_invalid")
        return self.page(request, "error.html.j2", exc.status_code, title=title, detail=exc.detail or "")

    async def _civicscore_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CivicscoreError)
        if isinstance(exc, Unauthenticated):
            return await self._sign_in_needed(request, exc)
        w = self.words(request)
        status, title = _status_of(exc, w)
        headers = {}
        if isinstance(exc, ResourceExhausted) and exc.retry_after:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        violations = [f"{v.field}: {v.description}" for v in getattr(exc, "violations", [])]
        response = self.page(request, "error.html.j2", status, title=title, detail=exc.message,
                             violations=violations, code=exc.code.name if isinstance(exc.code, grpc.StatusCode) else "")
        response.headers.update(headers)
        return response

    async def _bug(self, request: Request, exc: Exception) -> Response:
        reference = uuid.uuid4().hex[:12]
        log.exception("console error %s on %s %s", reference, request.method, request.url.path)
        w = self.words(request)
        return self.page(request, "error.html.j2", 500, title=w("error_title"),
                         detail=f"{w('error_unavailable')} (#{reference})")

    # ---- sign-in, sign-out, language ----

    def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    def home(self, request: Request) -> Response:
        person = self.person(request)
        period = views.default_period(self.acting(person))
        return RedirectResponse(f"/quarters/{period}" if period else "/units", status_code=303)

    def sign_in_page(self, request: Request, *, message: str = "", identity_id: str = "",
                     status_code: int = 200) -> Response:
        nonce = request.cookies.get(self.cookies.sign_in) or new_sign_in_nonce()
        w = self.words(request)
        if not message and request.query_params.get("ended"):
            message = w("session_ended")
        if not message and request.query_params.get("signed_out"):
            message = w("signed_out")
        response = self.page(request, "sign_in.html.j2", status_code, nonce=nonce, message=message,
                             identity_id=identity_id, next=safe_next(request.query_params.get("next")))
        set_cookie(response, self.cookies.sign_in, nonce, secure=self.settings.secure, max_age=3600)
        return response

    async def sign_in(self, request: Request) -> Response:
        """A refused sign-in shows the form again with the reason (status 200: the page itself is fine, and
        browsers log any 4xx page as an error); a lockout adds Retry-After."""
        form = await self.form(request)
        nonce = request.cookies.get(self.cookies.sign_in, "")
        if not nonce or not csrf_matches(nonce, form.get("csrf")):
            raise CsrfRefused
        w = self.words(request)
        identity_id = form.get("identity_id", "").strip()
        password = form.get("password", "")
        if not identity_id or not password:
            return self.sign_in_page(request, message=w("fill_both"), identity_id=identity_id)
        try:
            reply = await run_in_threadpool(self.client.sign_in, identity_id, password)
        except (Unauthenticated, InvalidArgument):
            return self.sign_in_page(request, message=w("sign_in_failed"), identity_id=identity_id)
        except ResourceExhausted as err:
            wait = w.wait(err.retry_after or 60)
            response = self.sign_in_page(request, message=w("sign_in_locked", wait=wait), identity_id=identity_id)
            response.headers["Retry-After"] = str(max(1, round(err.retry_after or 60)))
            return response
        response = RedirectResponse(safe_next(form.get("next")), status_code=303)
        set_cookie(response, self.cookies.session, reply.token, secure=self.settings.secure)
        clear_cookie(response, self.cookies.sign_in, secure=self.settings.secure)
        return response

    async def sign_out(self, request: Request) -> Response:
        form = await self.form(request)
        response = RedirectResponse("/sign-in?signed_out=1", status_code=303)
        clear_cookie(response, self.cookies.session, secure=self.settings.secure)
        try:
            person = await run_in_threadpool(self.person, request)
        except SignInNeeded:
            return response  # already signed out (or the session ended): nothing to revoke
        self.check_csrf(person, form)
        await run_in_threadpool(self.acting(person).sign_out)
        return response

    def password_page(self, request: Request, *, message: str = "", done: bool = False) -> Response:
        self.person(request)
        return self.page(request, "password.html.j2", message=message, done=done)

    async def change_password(self, request: Request) -> Response:
        """The person changes their own password (SetPassword with the current one): their other sessions end,
        this one stays. A wrong current password counts as a failed sign-in on the server."""
        form = await self.form(request)
        person = await run_in_threadpool(self.person, request)
        self.check_csrf(person, form)
        w = self.words(request)
        current, new, again = form.get("current", ""), form.get("new", ""), form.get("again", "")
        if not current or not new:
            return await run_in_threadpool(self.password_page, request, message=w("password_fill"))
        if new != again:
            return await run_in_threadpool(self.password_page, request, message=w("password_mismatch"))
        try:
            await run_in_threadpool(self.acting(person).set_password, person.identity_id, new,
                                    current_password=current)
        except InvalidArgument as err:
            wrong = any(v.reason == "WRONG_PASSWORD" for v in err.violations)
            problems = w("password_wrong") if wrong else "; ".join(v.description for v in err.violations)
            return await run_in_threadpool(self.password_page, request, message=problems or err.message)
        except ResourceExhausted as err:
            message = w("sign_in_locked", wait=w.wait(err.retry_after or 60))
            return await run_in_threadpool(self.password_page, request, message=message)
        return await run_in_threadpool(self.password_page, request, done=True)

    def language(self, request: Request) -> Response:
        lang = request.query_params.get("to", DEFAULT_LANGUAGE)
        response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        response.set_cookie(self.cookies.language, lang if lang in LANGUAGES else DEFAULT_LANGUAGE,
                            max_age=365 * 24 * 3600, path="/", secure=self.settings.secure, httponly=True,
                            samesite="lax")
        return response

    def go(self, request: Request) -> Response:
        """The period picker's target (a plain GET form: it works without JavaScript)."""
        period = request.query_params.get("period", "")
        if not views.PERIOD.match(period):
            raise HTTPException(404, f"{period!r} is not a period such as 2026-Q3, 2026-H1 or 2026")
        suffix = {"queue": "/queue", "individuals": "/individuals"}.get(request.query_params.get("to", ""), "")
        return RedirectResponse(f"/quarters/{period}{suffix}", status_code=303)

    # ---- pages ----

    def _period(self, request: Request) -> str:
        period = str(request.path_params["period"])
        if not views.PERIOD.match(period):
            raise HTTPException(404, f"{period!r} is not a period such as 2026-Q3, 2026-H1 or 2026")
        return period

    def quarter(self, request: Request) -> Response:
        person = self.person(request)
        period = self._period(request)
        client = self.acting(person)
        w = self.words(request)
        first, last = views.on_demand_days(period, dt.datetime.now(dt.UTC)) or ("", "")
        return self.page(request, "quarter.html.j2", period=period, periods=views.periods(client),
                         quarter=views.quarter(client, period, w), heading=views.period_heading(period, w),
                         on_demand_min=first, on_demand_day=last)

    def queue(self, request: Request) -> Response:
        person = self.person(request)
        period = self._period(request)
        client = self.acting(person)
        w = self.words(request)
        chosen = views.QueueFilter.parse(request.query_params)
        rows, units = views.queue(client, period, chosen, w)
        return self.page(request, "queue.html.j2", period=period, periods=views.periods(client), rows=rows,
                         chosen=chosen, blocks=[(block, w.block(block)) for block in units.blocks()],
                         kinds=views.KINDS, statuses=views.STATUSES)

    def queue_rows(self, request: Request) -> Response:
        person = self.person(request)
        period = self._period(request)
        chosen = views.QueueFilter.parse(request.query_params)
        rows, _ = views.queue(self.acting(person), period, chosen, self.words(request))
        return self.page(request, "queue_rows.html.j2", period=period, rows=rows, chosen=chosen)

    def individuals_queue(self, request: Request) -> Response:
        """The recommendations about officials (cá nhân) of a quarter: personal data, each view audited."""
        person = self.person(request)
        period = self._period(request)
        if not views.QUARTER.match(period):
            raise HTTPException(404, f"officials are evaluated by quarter: {period!r} is not a quarter such as 2026-Q3")
        client = self.acting(person)
        w = self.words(request)
        chosen = views.QueueFilter.parse(request.query_params)
        rows = individuals.individuals(client, period, chosen, w)
        return self.page(request, "individuals.html.j2", period=period, periods=views.quarters(client), rows=rows,
                         chosen=chosen, kinds=views.KINDS, statuses=views.STATUSES)

    def official_page(self, request: Request) -> Response:
        person = self.person(request)
        client = self.acting(person)
        found = individuals.official_page(client, request.path_params["official_id"], self.words(request))
        return self.page(request, "official.html.j2", o=found, periods=views.periods(client))

    def recommendation(self, request: Request, *, message: str = "", status_code: int = 200,
                       form: dict[str, str] | None = None) -> Response:
        """A recommendation, about a unit (`UNIT~FLAG`) or an official (`UNIT~FLAG~OFFICIAL_ID`)."""
        person = self.person(request)
        period = self._period(request)
        w = self.words(request)
        wanted = request.query_params.get("id", "")
        wanted_id = int(wanted) if wanted.isdigit() and len(wanted) < 19 else 0
        slug = request.path_params["slug"]
        about_official = individuals.OfficialSlug.parse(slug)
        found: views.Detail | individuals.OfficialDetail
        if about_official is not None:
            template = "official_recommendation.html.j2"
            found = individuals.official_detail(self.acting(person), period, about_official, w, wanted_id)
        else:
            template = "recommendation.html.j2"
            found = views.detail(self.acting(person), period, slug, w, wanted_id)
        saved = request.query_params.get("saved", "")
        return self.page(request, template, status_code, period=period, d=found,
                         saved=w("decision_saved", decision=w.decision(saved)) if saved in views.DECISIONS else "",
                         message=message, form=form or {}, key=uuid.uuid4().hex, decisions=views.DECISIONS,
                         decision_name=views.decision_name, status_name=views.status_name)

    async def decide(self, request: Request) -> Response:
        form = await self.form(request)
        person = await run_in_threadpool(self.person, request)
        self.check_csrf(person, form)
        period = self._period(request)
        slug = request.path_params["slug"]
        w = self.words(request)
        decision, reason = form.get("decision", ""), form.get("reason", "").strip()
        problem = w("choose_decision") if decision not in views.DECISIONS else \
            w("reason_required") if not reason else ""
        if problem:
            return await run_in_threadpool(self.recommendation, request, message=problem, status_code=400, form=form)
        wanted = form.get("recommendation_id", "")
        name = f"periods/{period}/recommendations/{slug}"
        try:
            await run_in_threadpool(
                self.acting(person).review_recommendation, name, decision, reason,
                recommendation_id=int(wanted) if wanted.isdigit() and len(wanted) < 19 else 0,
                idempotency_key=form.get("key") or None)
        except InvalidArgument as err:
            return await run_in_threadpool(self.recommendation, request, message=err.message, status_code=400,
                                           form=form)
        return RedirectResponse(f"/quarters/{period}/recommendations/{quote(slug)}?saved={decision}", status_code=303)

    def report(self, request: Request) -> Response:
        return self._report(request, request.path_params["fmt"], as_of=None)

    def report_on_demand(self, request: Request) -> Response:
        """A report on demand (báo cáo đột xuất): the quarter to the day chosen, made by the server, provisional."""
        as_of = request.query_params.get("as_of", "")
        if not as_of:
            raise HTTPException(400, "choose the day the report is made up to")
        return self._report(request, request.query_params.get("format", "html"), as_of=as_of)

    def _report(self, request: Request, fmt: str, *, as_of: str | None) -> Response:
        person = self.person(request)
        period = self._period(request)
        if fmt not in REPORT_FORMATS:
            raise HTTPException(404, "reports come as .html, .pdf or .csv")
        w = self.words(request)
        reply = self.acting(person).get_quarterly_report(period, format=fmt, language=w.lang, timeout=120,
                                                          as_of=as_of)
        disposition = "inline" if fmt == "html" else "attachment"
        return Response(reply.content, media_type=reply.content_type, headers={
            "Content-Disposition": f"{disposition}; filename=\"{reply.file_name}\"",
            # the report's own HTML carries its styles inline: allow those for this response only
            **({"Content-Security-Policy": CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")}
               if fmt == "html" else {})})

    def units(self, request: Request) -> Response:
        person = self.person(request)
        client = self.acting(person)
        w = self.words(request)
        units = views.Units.load(client)
        by_block = [(w.block(block), sorted(((code, units.name(code, w)) for code, unit in units.by_code.items()
                                             if unit.block == block), key=lambda pair: pair[1].casefold()))
                    for block in units.blocks()]
        return self.page(request, "units.html.j2", by_block=by_block)

    def unit(self, request: Request) -> Response:
        person = self.person(request)
        w = self.words(request)
        unit, history = views.unit_history(self.acting(person), request.path_params["code"], w)
        return self.page(request, "unit.html.j2", unit=unit, history=history,
                         unit_name=w.pick(unit.display_name_vi, unit.display_name_en))

    def rules(self, request: Request, *, simulation: Any = None, chosen: str = "", period: str = "",
              status_code: int = 200) -> Response:
        person = self.person(request)
        client = self.acting(person)
        active = client.get_active_ruleset()
        history = list(client.list_ruleset_activations())
        history.sort(key=lambda a: a.sequence, reverse=True)
        root = self.settings.candidates_root
        return self.page(request, "rules.html.j2", status_code, active=active, history=history[:50],
                         candidates=views.candidate_folders(root), root=str(root or ""),
                         periods=views.quarters(client), simulation=simulation, chosen=chosen, period=period)

    async def what_if(self, request: Request) -> Response:
        form = await self.form(request)
        person = await run_in_threadpool(self.person, request)
        self.check_csrf(person, form)
        root = self.settings.candidates_root
        chosen, period = form.get("candidate", ""), form.get("period", "")
        if root is None or not views.QUARTER.match(period):
            raise HTTPException(400, "choose a candidate folder and a quarter")
        simulation = await run_in_threadpool(views.what_if, self.acting(person), root, chosen, period,
                                             self.words(request))
        return await run_in_threadpool(self.rules, request, simulation=simulation, chosen=chosen, period=period)

    def extensions(self, request: Request, *, message: str = "", failed: str = "", status_code: int = 200) -> Response:
        """Extension requests (gia hạn): pending ones first by default; the committee decides them here."""
        person = self.person(request)
        w = self.words(request)
        status = request.query_params.get("status", "pending")
        rows = views.extensions(self.acting(person), status if status in views.EXTENSION_STATUSES else "", w)
        saved = request.query_params.get("saved", "")
        return self.page(request, "extensions.html.j2", status_code, rows=rows, status=status,
                         statuses=views.EXTENSION_STATUSES, message=message, failed=failed, key=uuid.uuid4().hex,
                         saved=w("extension_decided", decision=w(f"extension_{saved}")) if saved in (
                             "approved", "refused") else "")

    async def decide_extension(self, request: Request) -> Response:
        form = await self.form(request)
        person = await run_in_threadpool(self.person, request)
        self.check_csrf(person, form)
        w = self.words(request)
        name = f"assignments/{request.path_params['assignment']}/extensions/{request.path_params['number']}"
        decision, reason = form.get("decision", ""), form.get("reason", "").strip()
        if decision not in ("approve", "refuse") or not reason:
            return await run_in_threadpool(self.extensions, request, message=w("extension_reason_required"),
                                           failed=name, status_code=400)
        try:
            await run_in_threadpool(self.acting(person).decide_extension, name, decision, reason,
                                    idempotency_key=form.get("key") or None)
        except (InvalidArgument, FailedPrecondition) as err:
            return await run_in_threadpool(self.extensions, request, message=err.message, failed=name,
                                           status_code=409 if isinstance(err, FailedPrecondition) else 400)
        done = "approved" if decision == "approve" else "refused"
        return RedirectResponse(f"/extensions?saved={done}", status_code=303)

    def obstacles(self, request: Request, *, message: str = "", status_code: int = 200) -> Response:
        """Obstacles units reported (khó khăn, vướng mắc): unresolved ones by default, oldest first; the
        committee office assigns who resolves each and closes it with the resolution."""
        person = self.person(request)
        w = self.words(request)
        status = request.query_params.get("status", "unresolved")
        client = self.acting(person)
        rows, units = views.obstacles(client, status if status in views.OBSTACLE_STATUSES else "", w)
        saved = request.query_params.get("saved", "")
        return self.page(request, "obstacles.html.j2", status_code, rows=rows, status=status,
                         statuses=views.OBSTACLE_STATUSES, message=message, key=uuid.uuid4().hex,
                         resolver_units=sorted(((code, units.name(code, w)) for code in units.by_code),
                                               key=lambda pair: pair[1].casefold()),
                         saved=w(f"obstacle_{saved}_done") if saved in ("assigned", "resolved") else "")

    async def move_obstacle(self, request: Request) -> Response:
        form = await self.form(request)
        person = await run_in_threadpool(self.person, request)
        self.check_csrf(person, form)
        w = self.words(request)
        name = f"assignments/{request.path_params['assignment']}/obstacles/{request.path_params['number']}"
        move, key = request.path_params["move"], form.get("key") or None
        client = self.acting(person)
        try:
            if move == "assign":
                unit, official = form.get("unit", "").strip(), form.get("official", "").strip()
                if bool(unit) == bool(official):
                    return await run_in_threadpool(self.obstacles, request, message=w("obstacle_resolver_needed"),
                                                   status_code=400)
                await run_in_threadpool(lambda: client.assign_obstacle(name, unit=unit, official=official,
                                                                       idempotency_key=key))
                done = "assigned"
            elif move == "resolve":
                resolution = form.get("resolution", "").strip()
                if not resolution:
                    return await run_in_threadpool(self.obstacles, request, message=w("obstacle_resolution_needed"),
                                                   status_code=400)
                await run_in_threadpool(lambda: client.resolve_obstacle(name, resolution, idempotency_key=key))
                done = "resolved"
            else:
                raise HTTPException(404, "obstacles are assigned or resolved")
        except (InvalidArgument, FailedPrecondition) as err:
            return await run_in_threadpool(self.obstacles, request, message=err.message,
                                           status_code=409 if isinstance(err, FailedPrecondition) else 400)
        return RedirectResponse(f"/obstacles?saved={done}", status_code=303)

    def admin(self, request: Request) -> Response:
        person = self.person(request)
        client = self.acting(person)
        identities = sorted(client.list_identities(), key=lambda identity: identity.identity_id)
        verification = client.verify_audit(timeout=120) if request.query_params.get("verify") else None
        return self.page(request, "admin.html.j2", identities=identities, verification=verification)

    async def live_recommendations(self, request: Request) -> Response:
        person = await run_in_threadpool(self.person, request)
        return self.live.stream(request, self.acting(person), person.identity_id)


def _status_of(error: CivicscoreError, w: Words) -> tuple[int, str]:
    if isinstance(error, PermissionDenied):
        return 403, w("error_forbidden")
    if isinstance(error, NotFound):
        return 404, w("error_not_found")
    if isinstance(error, InvalidArgument):
        return 400, w("error_invalid")
    if isinstance(error, FailedPrecondition):
        return 409, w("error_conflict")
    if isinstance(error, ResourceExhausted):
        return 429, w("error_busy")
    if isinstance(error, Unavailable):
        return 503, w("error_unavailable")
    return 502, w("error_title")
