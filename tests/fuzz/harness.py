"""The fuzzer's side of the wire: the server, its own identities, calling, guarding, minimising.

The server is the real one (`tests.serverproc.ServerProcess`) with Hanoi's demo data, started with
rate and in-flight limits far above what one sequential fuzzer can reach, so a refusal is never the
limiter's. Calls are made one at a time: the row ledger can then say which call changed what.

The fuzzer never calls as the bootstrap administrator: it creates identities of its own (every role;
a reporter scoped to one unit; a reader) and victims for revocation. Revoke calls are rewritten
when any string in them names a protected identity (the fuzzer's, the bootstrap admin's), even
disguised by case, invisible characters or compatibility forms, so it cannot lock itself out.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from civicscore_api.v1 import identities_pb2, measurements_pb2, rulesets_pb2
from tests.fuzz import hostile, oracle
from tests.fuzz.catalog import RPCS, Rpc
from tests.fuzz.ledger import RowLedger
from tests.fuzz.messages import copy_message, idempotency_keys, render, replace_protected, shrink_message
from tests.fuzz.oracle import Problem, Reply
from tests.fuzz.pools import Pools
from tests.fuzz.strategies import Call, Strategies
from tests.fuzz.survey import Group, Survey, group_key, lead, signature
from tests.serverproc import ServerProcess

# Far above a sequential fuzzer's rate: the limiter must never be the reason for a refusal.
SERVER_ARGS = ("--demo-data", "--rate-limit", "1000000", "--rate-burst", "1000000", "--rate-limit-hold", "0",
               "--max-in-flight", "64", "--max-concurrent-rpcs", "256", "--workers", "1", "--log-level", "WARNING")
TIMEOUT_S = 30.0
SLOW_TIMEOUT_S = 90.0  # evaluations, simulations, rule checks and PDF reports
WATCH_S = 2.0  # a server stream is read this long (or until it says it caught up), then the fuzzer cancels
MAX_STREAM_MESSAGES = 2000
PROTECTED_ROLES = tuple(v.number for v in identities_pb2.Role.DESCRIPTOR.values if v.number != 0)
MIN_ATTEMPTS = 60  # re-sends per failure group when minimising
PDF_LIMIT = 1  # a PDF report takes seconds (headless Chromium): one per run proves the path
CANARY_EVERY = 100  # accepted writes between canary reads (and after each RPC's run)
RULE_FILE = "civicscore.v1.RuleFile"
HEALTH_EVERY = 500  # calls between health checks (and at once after an UNAVAILABLE)
_FRAME = re.compile(r'File "[^"]*?(civicscore/[^"]+)", line (\d+), in (\w+)')
_PROTECTED_SUBSTRINGS_RE = re.compile(r"[^a-z0-9.-]")


@dataclass
class _InFlight:
    """A call sent and not yet judged."""

    rpc: Rpc
    payloads: list[Any]
    caller: str
    features: list[str]
    raw: bool
    version: int
    started: float
    wait: Callable[[], tuple[Reply, list[Message]]]


@dataclass
class _Settled:
    """A call's reply, with what it changed and what the server logged, taken before the next call."""

    flight: _InFlight
    reply: Reply
    responses: list[Message]
    delta: dict[str, int]
    wrote: bool
    server_error: str
    died: bool


@dataclass
class Identity:
    identity_id: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


class ServerLog:
    """Reads the server's log as it grows, to name the exception behind an INTERNAL or UNKNOWN."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_error(self) -> str:
        """The last exception logged since the previous look: `Type: message @ file:line in function`."""
        if not self.path.exists():
            return ""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            text = handle.read().decode("utf-8", errors="replace")
            self.offset = handle.tell()
        blocks = text.split("Traceback (most recent call last):")
        if len(blocks) < 2:
            return ""
        block = blocks[-1]
        frames = _FRAME.findall(block)
        lines = [line for line in block.splitlines() if line and not line.startswith((" ", "\t"))]
        last = next((line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", line)),
                    lines[0] if lines else "")
        where = f" @ {frames[-1][0]}:{frames[-1][1]} in {frames[-1][2]}" if frames else ""
        return f"{last[:300]}{where}"


class FuzzHarness:
    """Runs generated calls against one real server and records what the properties say of them."""

    def __init__(self, workdir: Path, survey: Survey) -> None:
        self.workdir = workdir
        self.survey = survey
        self._last_ok: dict[str, list[Message]] = {}
        self._pending: dict[tuple[str, str, str, str], tuple[Rpc, list[Message], str]] = {}
        self._writes: list[str] = []  # accepted writes since the last canary read
        self._canary_broken: set[tuple[str, str, str]] = set()
        self._pdfs = 0
        self._since_health = 0
        self._in_flight: _InFlight | None = None
        self._recent: list[str] = []  # the last calls, named in a serving failure
        self._last_rpc: Rpc | None = None
        self._need_restart = False
        self._following = False
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fuzz-sender")
        self.database_dir = _memory_dir() or workdir
        database = self.database_dir / "civicscore.db"
        self.server = ServerProcess(workdir, database_url=f"sqlite:///{database}", extra_args=SERVER_ARGS)
        try:
            self.server.start(timeout=120)
            self.ledger = RowLedger(database)
            self.log = ServerLog(self.server.log_path)
            self._connect()
            self.pools = Pools(dt.datetime.now(dt.UTC).date())
            self.identities = self._make_identities()
            self.original_digest = ""
            self._seed()
        except BaseException:  # nothing left behind: no server, no database in /dev/shm
            self._sender.shutdown()
            self.server.stop()
            self._forget_database()
            raise
        self.strategies = Strategies(self.pools)

    # ---- set-up ------------------------------------------------------------------------------------
    def _connect(self) -> None:
        # The default metadata limit on purpose: a trailer that only a client with a raised limit can
        # read is a finding (issue 11: "errors that break themselves").
        self.channel = grpc.insecure_channel(self.server.address,
                                             options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
        self._callables: dict[tuple[str, bool], Any] = {}

    def _admin(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.server.token}"),)

    def _unary(self, rpc_short: str, request: Message, metadata: tuple[tuple[str, str], ...]) -> Any:
        rpc = next(r for r in RPCS if r.short == rpc_short)
        return self._callable(rpc, raw=False)(request, timeout=TIMEOUT_S, metadata=metadata)

    def _make_identities(self) -> dict[str, Identity]:
        """The fuzzer's callers (`main` holds every role) and victims the fuzzer may revoke."""
        admin = self._admin()
        whoami = self._unary("IdentityService.WhoAmI", identities_pb2.WhoAmIRequest(), admin)
        bootstrap = whoami.identity.identity_id
        plan = {
            "main": ("fuzzer", PROTECTED_ROLES, ["*"]),
            "reporter": ("fuzzer-reporter", (identities_pb2.ROLE_REPORTER,), ["units/SNV"]),
            "reader": ("fuzzer-reader", (identities_pb2.ROLE_READER,), []),
        }
        made: dict[str, Identity] = {}
        for role, (identity_id, roles, scope) in plan.items():
            made[role] = Identity(identity_id, self._create(identity_id, roles, scope))
        self.pools.protected_identities = {bootstrap, *(i.identity_id for i in made.values())}
        for n in range(4):  # victims: existing identities with credentials, for the revocation paths
            victim = f"fuzz-victim-{n}"
            self._create(victim, (identities_pb2.ROLE_READER,), [])
            self._unary("IdentityService.RegisterCertificate", identities_pb2.RegisterCertificateRequest(
                identity=f"identities/{victim}", certificate_subject=f"CN={victim}.hanoi.gov.vn"), admin)
        return made

    def _create(self, identity_id: str, roles: tuple[int, ...], scope: list[str]) -> str:
        admin = self._admin()
        create = _by_short("IdentityService.CreateIdentity")
        assert create is not None
        for all_units in ("units/*", "*"):  # how "every unit" is spelled changed with the field domains
            identity = identities_pb2.Identity(identity_id=identity_id, display_name=f"fuzzer {identity_id}",
                                               roles=roles, scope_units=[all_units if s == "*" else s for s in scope])
            try:
                self._unary(create.short, identities_pb2.CreateIdentityRequest(identity=identity), admin)
                break
            except grpc.RpcError as error:
                if "*" not in scope or error.code() != grpc.StatusCode.INVALID_ARGUMENT:  # type: ignore[attr-defined]
                    raise
        issued = self._unary("IdentityService.IssueToken", identities_pb2.IssueTokenRequest(
            identity=f"identities/{identity_id}"), admin)
        token: str = issued.token
        return token

    def _seed(self) -> None:
        """Fill the pools from the server: every List call with an empty request (first page), the
        ruleset in force with its files, a few targets so that UpsertTargets has exemplars."""
        main = self.identities["main"].metadata
        status = self._unary("RulesetService.GetActiveRuleset",
                             rulesets_pb2.GetActiveRulesetRequest(include_files=True), main)
        self.original_digest = status.ruleset.digest
        for rule_file in status.ruleset.files:
            self.pools.add("rule_path", rule_file.path)
            self.pools.add("rule_content", rule_file.content)
        self.pools.harvest(status)
        indicators = [i.code for i in status.ruleset.indicators]
        periods = self._unary("PeriodService.ListPeriods", _empty("PeriodService.ListPeriods"), main)
        # Quarters only: a target, a simulation and the rule files' checks take quarters (the list also has
        # the half-years and years of the evaluated quarters, listed among them by end date).
        quarters = [p.period_id for p in periods.periods if "-Q" in p.period_id]
        if indicators and quarters:
            self._unary("MeasurementService.UpsertTargets", measurements_pb2.UpsertTargetsRequest(targets=[
                measurements_pb2.Target(indicator=code, period=quarters[0], unit="units/SNV", value=0.7)
                for code in indicators[:3]]), main)
        for rpc in canary_rpcs():
            reply = self._callable(rpc, raw=False)(_empty(rpc.short), timeout=TIMEOUT_S, metadata=main)
            self.pools.harvest(reply, items=200)
        for quarter in quarters:  # evaluations and recommendations live under a quarter
            for short in ("EvaluationService.ListEvaluations", "EvaluationService.ListRecommendations",
                          "ReviewService.ListContests"):
                rpc = _by_short(short)
                if rpc is None:
                    continue
                request = rpc.request(parent=f"periods/{quarter}", page_size=200)
                reply = self._callable(rpc, raw=False)(request, timeout=TIMEOUT_S, metadata=main)
                self.pools.harvest(reply, items=200)
        self._seed_rule_file_requests(quarters[0] if quarters else "")
        for n in range(4):  # credential names, for RevokeCredential and ListCredentials
            request = identities_pb2.ListCredentialsRequest(parent=f"identities/fuzz-victim-{n}")
            self.pools.harvest(self._unary("IdentityService.ListCredentials", request, main), items=50)
        today = self.pools.today
        for delta in (-400, -120, -30, -1, 0):
            self.pools.add("date", (today + dt.timedelta(days=delta)).isoformat())
        for exemplar in self.pools.exemplars.get("civicscore.v1.Assignment", []):
            self.pools.add("date", exemplar.assigned_on, exemplar.due_on)
        for victim in range(4):
            self.pools.add("name:identities", f"identities/fuzz-victim-{victim}")
            self.pools.add("identity_id", f"fuzz-victim-{victim}")
        for name in self.pools.values("name:credentials"):
            self.pools.add("credential_id", name.rsplit("/", 1)[-1])

    def server_cpu_seconds(self) -> float:
        """CPU time the server process (with its engine workers, once they exited) used so far."""
        if self.server.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        return sum(int(v) for v in fields[11:15]) / ticks  # utime, stime, cutime, cstime

    def _seed_rule_file_requests(self, quarter: str) -> None:
        """Requests that carry a whole ruleset (check, simulate, activate) need every file with its
        own path: one per such RPC, holding the files in force, joins the exemplars, so that
        generated variants reach the checker and the engine rather than stop at a missing file."""
        files = self.pools.exemplars.get(RULE_FILE, [])
        if not files:
            return
        for rpc in RPCS:
            request = rpc.request()
            if _fill_rule_files(request, files, quarter):
                self.pools.add_request(request, rpc.response())

    def close(self) -> None:
        self.flush()
        self.survey.server_cpu_s = self.server_cpu_seconds()
        self._sender.shutdown()
        self.channel.close()
        self.ledger.close()
        self.server.stop()
        self._forget_database()

    def _forget_database(self) -> None:
        if self.database_dir != self.workdir:
            shutil.rmtree(self.database_dir, ignore_errors=True)

    # ---- calling -----------------------------------------------------------------------------------
    def _callable(self, rpc: Rpc, *, raw: bool) -> Any:
        key = (rpc.path, raw)
        if key not in self._callables:
            kinds = {(False, False): self.channel.unary_unary, (True, False): self.channel.stream_unary,
                     (False, True): self.channel.unary_stream, (True, True): self.channel.stream_stream}
            factory = kinds[(rpc.client_streaming, rpc.server_streaming)]
            if raw:  # identity serializers: the bytes go on the wire as they are
                self._callables[key] = factory(rpc.path)
            else:
                self._callables[key] = factory(rpc.path, request_serializer=rpc.request.SerializeToString,
                                               response_deserializer=rpc.response.FromString)
        return self._callables[key]

    def _invoke(self, rpc: Rpc, payloads: list[Any], caller: str, *, raw: bool = False
                ) -> tuple[Reply, list[Message]]:
        """Send one call and wait: the reply and the response messages (raw bytes are parsed)."""
        return self._send(rpc, payloads, caller, raw=raw)()

    def _send(self, rpc: Rpc, payloads: list[Any], caller: str, *, raw: bool = False
              ) -> Callable[[], tuple[Reply, list[Message]]]:
        """Start one call; returns a function that waits for its reply. A server stream is read at once."""
        multi = self._callable(rpc, raw=raw)
        metadata = self.identities[caller].metadata
        timeout = SLOW_TIMEOUT_S if _slow(rpc) else TIMEOUT_S
        request: Any = iter(payloads) if rpc.client_streaming else (payloads[0] if payloads else
                                                                    (b"" if raw else rpc.request()))
        if rpc.server_streaming:
            done = self._stream(multi, request, metadata, rpc, raw)
            return lambda: done

        def blocking() -> tuple[Reply, list[Message]]:
            try:
                response, call = multi.with_call(request, timeout=timeout, metadata=metadata)
            except grpc.RpcError as error:
                return _reply_of(error), []
            message = rpc.response.FromString(response) if raw else response
            return Reply(grpc.StatusCode.OK, "", tuple(call.trailing_metadata() or ())), [message]

        # A blocking call on one long-lived sender thread (it waits in gRPC's core without the GIL):
        # grpc's own future() starts a thread per call when calls do not overlap, about 2 ms each.
        return self._sender.submit(blocking).result

    def _stream(self, multi: Any, request: Any, metadata: tuple[tuple[str, str], ...], rpc: Rpc, raw: bool
                ) -> tuple[Reply, list[Message]]:
        """Read a server stream until it ends, says it caught up, or WATCH_S passes; then cancel it."""
        stream = multi(request, timeout=WATCH_S, metadata=metadata)
        received: list[Message] = []
        try:
            for item in stream:
                message = rpc.response.FromString(item) if raw else item
                received.append(message)
                if getattr(message, "caught_up", False) or len(received) >= MAX_STREAM_MESSAGES:
                    stream.cancel()
                    return Reply(grpc.StatusCode.OK, "", own_cancel=True), received
        except grpc.RpcError as error:
            reply = _reply_of(error)
            reply.own_cancel = reply.code == grpc.StatusCode.DEADLINE_EXCEEDED
            return reply, received
        return Reply(grpc.StatusCode.OK, ""), received

    # ---- one generated call --------------------------------------------------------------------------
    def execute(self, rpc: Rpc, call: Call) -> None:
        """Send a generated call and record what the properties say of its reply."""
        messages = call.messages
        if call.replay and rpc.path in self._last_ok:
            messages = self._last_ok[rpc.path]
        messages = [self._guard(rpc, m) for m in messages]
        features = [*call.notes, *(f for m in messages for f in hostile.features(m))]
        if call.caller != "main":
            features.append(f"caller: {call.caller}")
        self._run(rpc, messages, call.caller, features, raw_note="")

    def execute_raw(self, rpc: Rpc, what: str, payload: bytes) -> None:
        """Send malformed wire bytes (one message, or a stream of one) through a generic call."""
        self._run(rpc, [payload], "main", [f"wire: {what}"], raw_note=what)

    def _run(self, rpc: Rpc, payloads: list[Any], caller: str, features: list[str], *, raw_note: str) -> None:
        """Send a call and return at once. The previous call is settled first (its reply, and what it
        changed in the database, before anything else is sent), then judged while this one is on the
        server, so the fuzzer's own work overlaps the server's; hypothesis also generates the next
        example meanwhile. One call at a time is in flight, so the ledger knows which call changed what."""
        settled = self._settle()
        if self._follow_ups_due():
            if settled is not None:
                self._judge(settled)
                settled = None
            self._follow_ups()
        version = self.ledger.before()
        started = time.monotonic()
        wait = self._send(rpc, payloads, caller, raw=bool(raw_note))
        self._in_flight = _InFlight(rpc, payloads, caller, features, bool(raw_note), version, started, wait)
        if settled is not None:
            self._judge(settled)
        if rpc.server_streaming:
            self.flush()

    def flush(self) -> None:
        """Settle and judge the call in flight, if any, and run the checks it made due."""
        settled = self._settle()
        if settled is not None:
            self._judge(settled)
        if self._follow_ups_due():
            self._follow_ups()

    def _settle(self) -> _Settled | None:
        """Wait for the call in flight; note what it changed and what the server logged, at once."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return None
        reply, responses = flight.wait()
        self.survey.seconds[flight.rpc.short] += time.monotonic() - flight.started
        refused = reply.code != grpc.StatusCode.OK
        delta = self.ledger.changed_since(flight.version) if refused else {}
        wrote = not refused and self.ledger.moved(flight.version)
        server_error = self.log.new_error() if reply.code not in oracle.ALLOWED else ""
        died = self.server.proc is not None and self.server.proc.poll() is not None
        return _Settled(flight, reply, responses, delta, wrote, server_error, died)

    def _judge(self, settled: _Settled) -> None:
        flight, reply, responses = settled.flight, settled.reply, settled.responses
        rpc, payloads, caller, features, raw = flight.rpc, flight.payloads, flight.caller, flight.features, flight.raw
        self.survey.count(rpc.short, reply.code.name, features, raw=raw)
        problems = oracle.judge(rpc, reply, raw=raw)
        if settled.delta and not oracle.refusal_may_write(rpc, reply, settled.delta):
            changes = ", ".join(f"{table} {n:+d}" for table, n in sorted(settled.delta.items()))
            problems.append(Problem("rows", f"refused with {reply.code.name} but rows changed: {changes}"))
        if reply.code == grpc.StatusCode.OK:
            for response in responses:
                self.pools.harvest(response)
                token = getattr(response, "next_page_token", "")
                if token:  # a token for the same call: the next page, not a scope mismatch
                    self.pools.add(f"page_token:{rpc.request_descriptor.full_name}", token)
            if not raw:
                if not rpc.client_streaming and responses and not oracle.refusal_in_body(responses[0]):
                    self.pools.add_request(payloads[0], responses[0])
                self._last_ok[rpc.path] = payloads
                for message in payloads:
                    for key in idempotency_keys(message):
                        self.pools.add("idempotency_key", key)
            if settled.wrote:
                self._writes.append(f"{rpc.short} ({_features_line(features)})")
        if not raw and caller == "main":
            problems.extend(oracle.domain_problems(payloads, reply, responses))
        if settled.died:
            code = self.server.proc.returncode if self.server.proc else None
            problems.append(Problem("serving", f"the server exited (code {code})"))
            self._need_restart = True
        if problems:
            example = render(rpc, payloads, raw=raw)
            group = self.survey.fail(rpc.short, problems, reply.code.name, reply.message, example, features,
                                     settled.server_error)
            if group.count == 1 and not raw and group.kind in ("status", "message", "details", "rows", "domain"):
                self._pending[group.key] = (rpc, list(payloads), caller)
        self._recent = [*self._recent[-4:], f"{rpc.short}: {_features_line(features)}"]
        self._last_rpc = rpc
        self._since_health += 1
        if reply.code == grpc.StatusCode.UNAVAILABLE:
            self._since_health = HEALTH_EVERY

    def _follow_ups_due(self) -> bool:
        return (not self._following and (self._need_restart or self._since_health >= HEALTH_EVERY
                                         or len(self._writes) >= CANARY_EVERY))

    def _follow_ups(self) -> None:
        """Checks a judged call made due: a restart, a health check, canary reads (nothing in flight)."""
        self._following = True
        try:
            if self._need_restart:
                self._need_restart = False
                self._restart()
            if self._since_health >= HEALTH_EVERY:
                self.check_serving(self._last_rpc)
            if len(self._writes) >= CANARY_EVERY:
                self.canaries()
        finally:
            self._following = False

    # ---- guards --------------------------------------------------------------------------------------
    def freeze_pools(self) -> None:
        """Give the strategies a snapshot of the pools for the next hypothesis run: hypothesis replays
        choice sequences and requires the same draws from them, so what strategies read must not
        change while it runs (replies keep filling the live pools for the next run)."""
        self.flush()
        self.strategies.pools = self.pools.snapshot()

    def _guard(self, rpc: Rpc, message: Message) -> Message:
        """Keep the fuzzer from locking itself out, and expensive calls rare."""
        if rpc.method.startswith(("Revoke", "Delete", "Disable")):
            message = copy_message(message)
            replace_protected(message, self.pools.protected_identities)
        for fd, value in message.ListFields():
            if fd.enum_type is not None and not fd.is_repeated and \
                    fd.enum_type.values_by_number.get(value) is not None and \
                    fd.enum_type.values_by_number[value].name.endswith("_PDF"):
                self._pdfs += 1
                if self._pdfs > PDF_LIMIT:
                    message = copy_message(message)
                    message.ClearField(fd.name)
        return message

    # ---- after each RPC: minimise, check, restore -----------------------------------------------------
    def minimise_pending(self) -> None:
        """Shrink the first request of every new failure group to the fields the failure needs."""
        self.flush()
        pending, self._pending = self._pending, {}
        for key, (rpc, messages, caller) in pending.items():
            group = self.survey.groups.get(key)
            if group is None:
                continue
            smallest = self._minimise(rpc, messages, caller, group)
            group.minimal = render(rpc, smallest, raw=False)

    def _reproduces(self, rpc: Rpc, messages: list[Message], caller: str, group: Group) -> bool:
        version = self.ledger.before()
        reply, responses = self._invoke(rpc, messages, caller)
        self.survey.extra_calls[rpc.short] += 1
        problems = oracle.judge(rpc, reply)
        delta = self.ledger.changed_since(version) if reply.code != grpc.StatusCode.OK else {}
        if delta:
            problems.append(Problem("rows", ""))
        if caller == "main":
            problems.extend(oracle.domain_problems(messages, reply, responses))
        server_error = self.log.new_error() if any(p.kind == "status" for p in problems) else ""
        if self.server.proc is not None and self.server.proc.poll() is not None:
            self._restart()
        if not problems:
            return False
        return group_key(rpc.short, lead(problems), reply.code.name, reply.message, server_error) == group.key

    def _minimise(self, rpc: Rpc, messages: list[Message], caller: str, group: Group) -> list[Message]:
        budget = [MIN_ATTEMPTS]

        def still(candidate: list[Message]) -> bool:
            if budget[0] <= 0:
                return False
            budget[0] -= 1
            return self._reproduces(rpc, candidate, caller, group)

        current = [copy_message(m) for m in messages]
        if len(current) > 1:  # a stream: fewer messages first
            for i in range(len(current) - 1, -1, -1):
                candidate = current[:i] + current[i + 1:]
                if still(candidate):
                    current = candidate
        for position in range(len(current)):
            current[position] = shrink_message(current[position],
                                                lambda m, p=position: still([*current[:p], m, *current[p + 1:]]))
        return current

    def check_serving(self, rpc: Rpc | None = None) -> None:
        """Health check: the server must still say SERVING, on the fuzzer's connection and on a new
        one. A connection the server stopped serving is replaced (and a dead server restarted), so that
        one finding does not turn every later call into UNAVAILABLE."""
        self.flush()
        self._since_health = 0
        ok, detail = self._healthy(self.channel)
        if ok:
            return
        where = rpc.short if rpc else "(server)"
        if self.server.proc is not None and self.server.proc.poll() is not None:
            self.survey.fail(where, [Problem("serving", f"the server exited: {detail}")], "-", detail, "", [])
            self._restart()
            return
        fresh = grpc.insecure_channel(self.server.address)
        fresh_ok, fresh_detail = self._healthy(fresh)
        fresh.close()
        what = ("the fuzzer's connection is no longer served (a new connection is)" if fresh_ok
                else f"the server does not serve a new connection either ({fresh_detail})")
        self.survey.fail(where, [Problem("serving", f"{what}: {detail}")], "-", detail,
                         f"last calls: {' | '.join(self._recent)}", [])
        self.channel.close()
        self._connect()
        if not fresh_ok:
            self._restart()

    def _healthy(self, channel: grpc.Channel) -> tuple[bool, str]:
        self.survey.extra_calls["grpc.health.v1.Health.Check"] += 1
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        except grpc.RpcError as error:
            return False, f"health check failed: {error.code().name} {error.details()}"
        ok = status == health_pb2.HealthCheckResponse.SERVING
        return ok, f"health check says {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"

    def canaries(self) -> None:
        """Plain reads every client makes (a List with an empty request) must keep working after
        accepted writes: a stored value that breaks a read for everyone is found here."""
        self.flush()
        writes, self._writes = self._writes, []
        if not self._healthy(self.channel)[0]:  # a connection the server stopped serving: not a canary's fault
            self.check_serving(self._last_rpc)
        main = self.identities["main"].metadata
        for rpc in canary_rpcs():
            try:
                self._callable(rpc, raw=False)(_empty(rpc.short), timeout=TIMEOUT_S, metadata=main)
                continue
            except grpc.RpcError as error:
                reply = _reply_of(error)
            finally:
                self.survey.extra_calls[rpc.short] += 1
            if reply.code == grpc.StatusCode.UNAVAILABLE:  # the connection, not the read: check_serving says
                self.check_serving(rpc)
                continue
            seen = (rpc.short, reply.code.name, signature(reply.message))
            if seen in self._canary_broken:  # once per failure: every later canary would repeat it
                continue
            self._canary_broken.add(seen)
            detail = (f"an empty {rpc.request_descriptor.name} fails after accepted writes; the writes since "
                      f"the last good read: " + " | ".join(writes[-CANARY_EVERY:]))
            self.survey.fail(rpc.short, [Problem("canary", f"plain read fails with {reply.code.name}")],
                             reply.code.name, reply.message, detail, [])

    def restore(self) -> None:
        """After an RPC's run: the original ruleset in force again, the fuzzer still itself."""
        self.flush()
        main = self.identities["main"].metadata
        try:
            active = self._unary("RulesetService.GetActiveRuleset", rulesets_pb2.GetActiveRulesetRequest(), main)
            if active.ruleset.digest != self.original_digest:
                self._unary("RulesetService.ActivateRuleset", rulesets_pb2.ActivateRulesetRequest(
                    ruleset=f"rulesets/{self.original_digest}", reason="fuzz: restore the original ruleset"), main)
            self._unary("IdentityService.WhoAmI", identities_pb2.WhoAmIRequest(), main)
        except grpc.RpcError as error:
            raise AssertionError(f"the fuzzer could not restore its set-up: {error.code().name} "
                                 f"{error.details()}") from error
        finally:
            self.survey.extra_calls["(restore)"] += 2

    def _restart(self) -> None:
        self.channel.close()
        if self.server.proc is not None and self.server.proc.poll() is None:
            self.server.stop()
        self.server.start(timeout=120)
        self._connect()
        self.ledger.reopen()
        self.log = ServerLog(self.server.log_path)


# ---- helpers --------------------------------------------------------------------------------------------
def _memory_dir() -> Path | None:
    """A fresh folder in /dev/shm (tmpfs), or None. The fuzz server's database lives there: every
    commit fsyncs (synchronous=FULL), 3 ms each on this machine's disk and free on tmpfs, and the fuzz
    suite tests what the API answers, not durability (tests/test_store.py and the kill tests do)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        return None
    return Path(tempfile.mkdtemp(prefix="civicscore-fuzz-", dir=shm))


def _fill_rule_files(message: Message, files: list[Message], quarter: str) -> bool:
    """Put every rule file into the message's repeated RuleFile field (one level of nesting, for
    ActivateRulesetRequest.files.files) and the quarter into a `period`; whether there was a place."""
    filled = False
    for fd in message.DESCRIPTOR.fields:
        if fd.message_type is not None and fd.message_type.full_name == RULE_FILE and fd.is_repeated:
            getattr(message, fd.name).extend(files)
            filled = True
        elif fd.message_type is not None and not fd.is_repeated and fd.message_type.full_name != RULE_FILE:
            inner = type(getattr(message, fd.name))()
            if any(f.message_type is not None and f.message_type.full_name == RULE_FILE
                   for f in inner.DESCRIPTOR.fields) and _fill_rule_files(inner, files, quarter):
                getattr(message, fd.name).CopyFrom(inner)
                filled = True
    if filled and quarter and "period" in message.DESCRIPTOR.fields_by_name:
        message.period = f"periods/{quarter}"  # type: ignore[attr-defined]
    return filled


def canary_rpcs() -> list[Rpc]:
    """Every unary read whose request needs nothing: List calls without a parent (`page_size`,
    `page_token`, `filter` only) and requests without fields, except those that change things."""
    plain = {"page_size", "page_token", "filter"}
    found = []
    for rpc in RPCS:
        names = {fd.name for fd in rpc.request_descriptor.fields}
        if rpc.client_streaming or rpc.server_streaming:
            continue
        if (names and names <= plain and rpc.method.startswith("List")) or (
                not names and rpc.method.startswith(("Get", "List", "WhoAmI"))):
            found.append(rpc)
    return found


def _features_line(features: list[str]) -> str:
    return "; ".join(features[:3]) or "ordinary values"


def _by_short(short: str) -> Rpc | None:
    return next((r for r in RPCS if r.short == short), None)


def _empty(short: str) -> Message:
    rpc = _by_short(short)
    assert rpc is not None, short
    return rpc.request()


def _slow(rpc: Rpc) -> bool:
    return rpc.method in ("EvaluatePeriod", "SimulateRuleset", "CheckRuleset", "ActivateRuleset",
                          "GetQuarterlyReport", "ContestRecommendation", "CheckStoredData")


def _reply_of(error: grpc.RpcError) -> Reply:
    call: Any = error
    return Reply(call.code(), call.details() or "", tuple(call.trailing_metadata() or ()))
