"""EnginePool: the RulesEngine the server uses; durable_rules runs in supervised worker processes.

The pool takes a ruleset already parsed and checked (`load_ruleset`, or the
check of a candidate): its text is parsed once, never again here. Workers are
spawned (never forked: the server holds gRPC objects). Each worker has a
feeding thread that sends it chunks of units, waits with a timeout, and on a
crash, a hang or an error kills it, starts a new one and puts the chunk back for
another try (`max_attempts` in all). Several threads may call `evaluate` at
once. A watcher thread notices a worker that dies while idle (killed by the
kernel's OOM killer, say), logs its exit code or signal, and starts its
successor at once, so the next call does not pay for it.

A worker is never left waiting on the parent: as soon as a reply has been read
off the pipe (the worker is then idle, reading), the feeding thread sends the
next chunk and only then unpickles the reply. Chunks shrink towards the end of a
call so that both workers finish at about the same time.

Cancellation: a call may pass a `threading.Event` (set when its client has
gone). Once it is set the call raises EvaluationCancelled within
`_CANCEL_POLL_S`; its chunks still queued are dropped by the feeding threads
when they reach them (each dropped chunk's future gets EvaluationCancelled, so
none is left pending), and a chunk already in a worker finishes there: the
worker is neither killed nor disturbed and takes the next chunk as usual.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, cast, overload

from civicscore.domain.model import RollupFacts, UnitEvaluation, UnitFacts
from civicscore.domain.officials import OfficialEvaluation, OfficialFacts
from civicscore.engine.facts import check_facts
from civicscore.engine.port import (
    EncodedEvaluation,
    EncodedOfficialEvaluation,
    EngineError,
    EvaluationCancelled,
    ReplyEncoder,
)
from civicscore.engine.worker import run_worker
from civicscore.ruleset import Ruleset

log = logging.getLogger("civicscore.engine")

MAX_CHUNK = 64
MIN_START_TIMEOUT_S = 60.0
_STOP_WAIT_S = 2.0
_CANCEL_POLL_S = 0.05  # how often a waiting call looks at its `cancelled` event
_WATCH_S = 0.5  # how often the watcher looks for workers that died while idle

# Called with ("started" | "died" | "stopped", the worker's pid, why): for metrics and tests.
WorkerEvent = Callable[[str, int, str], None]


def exit_reason(exitcode: int | None) -> str:
    """`exit code 1`, `killed by SIGKILL`, or `still running`, for a process's exit code."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def chunk_sizes(units: int, workers: int) -> list[int]:
    """How a call's units are split: at most MAX_CHUNK, shrinking with what remains (guided
    self-scheduling), so that the last chunks are small and no worker is left with a long tail."""
    sizes = []
    remaining = units
    while remaining > 0:
        size = max(1, min(MAX_CHUNK, math.ceil(remaining / (2 * workers))))
        sizes.append(size)
        remaining -= size
    return sizes


class _WorkerLost(Exception):
    """The worker died, hung or could not start; the job may be retried elsewhere."""


Facts = UnitFacts | RollupFacts | OfficialFacts


@dataclass(eq=False)
class _Job:
    facts: list[Facts]
    encoded: bool  # results as EncodedEvaluation / EncodedOfficialEvaluation (else the evaluations)
    cancelled: threading.Event | None = None  # the calling client has gone: do not start this chunk
    future: Future[list[Any]] = field(default_factory=Future)
    failures: list[str] = field(default_factory=list)
    abandoned: bool = False  # the caller stopped reading the call's results (see `evaluate_encoded_chunks`)

    def drop_if_cancelled(self) -> bool:
        """If the call was cancelled or abandoned, end the chunk's future with EvaluationCancelled and say so."""
        if not self.abandoned and (self.cancelled is None or not self.cancelled.is_set()):
            return False
        if not self.future.done():
            self.future.set_exception(EvaluationCancelled(f"evaluating {self.describe()} was cancelled"))
        return True

    def describe(self) -> str:
        """The chunk's units (or officials) and periods, for error messages."""
        codes = [unit.official_id if isinstance(unit, OfficialFacts) else unit.unit_code for unit in self.facts]
        periods = ", ".join(sorted({unit.period for unit in self.facts}))
        shown = ", ".join(codes[:10]) + (f" and {len(codes) - 10} more" if len(codes) > 10 else "")
        what = "officials" if all(isinstance(unit, OfficialFacts) for unit in self.facts) else "units"
        return f"{what} {shown} ({periods})"


@dataclass(frozen=True)
class _Next:
    """The chunk a feeding thread took while its worker was idle, and whether it was sent."""

    job: _Job
    sent: bool


class _Worker:
    """One spawned worker process and the parent's end of its pipe."""

    def __init__(self, ctx: SpawnContext, ruleset: Ruleset, fault_delay_s: float,
                 reply_encoder: ReplyEncoder | None = None) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self._closing = threading.Lock()  # kill() may run in the pool's close() and a slot's thread at once
        self.process: SpawnProcess = ctx.Process(
            target=run_worker, args=(child, ruleset, fault_delay_s, reply_encoder), name="civicscore-engine",
            daemon=True,
        )
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid or 0

    def wait_ready(self, timeout_s: float) -> None:
        """Wait for the worker's "ready"; raise _WorkerLost or EngineError (ruleset failed to load)."""
        reply = self._receive(timeout_s, "start")
        if reply[0] != "ready":
            self.kill()
            raise EngineError(f"an engine worker could not load the ruleset: {reply[1]}")

    def send(self, job: _Job) -> None:
        """Send a chunk; only while the worker waits for one (it is idle), so this cannot block for long."""
        if not self.process.is_alive():
            raise _WorkerLost(self._death())
        try:
            self.conn.send(("evaluate", job.facts, job.encoded))
        except (BrokenPipeError, OSError) as error:
            raise _WorkerLost(self._death()) from error

    def answer(self, timeout_s: float) -> bytes:
        """The pickled reply to the chunk sent last, killing the worker after `timeout_s`."""
        return self._receive_bytes(timeout_s, "answer")

    def _receive(self, timeout_s: float, what: str) -> tuple[str, object]:
        reply: tuple[str, object] = ForkingPickler.loads(self._receive_bytes(timeout_s, what))
        return reply

    def _receive_bytes(self, timeout_s: float, what: str) -> bytes:
        try:
            if not self.conn.poll(timeout_s):
                self.kill()
                raise _WorkerLost(f"worker {self.pid} did not {what} within {timeout_s:g} s and was killed")
            return self.conn.recv_bytes()
        except (EOFError, OSError) as error:
            raise _WorkerLost(self._death()) from error

    def _death(self) -> str:
        self.process.join(_STOP_WAIT_S)
        return f"worker {self.pid} died ({exit_reason(self.process.exitcode)})"

    def kill(self) -> None:
        """Kill the process (SIGKILL also ends a stopped one) and close the pipe; safe to call again, and from
        two threads at once (closing the pipe twice would close a descriptor number reused meanwhile)."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_STOP_WAIT_S)
        with self._closing:
            if not self.conn.closed:
                self.conn.close()

    def stop(self) -> None:
        """Ask the worker to exit, killing it if it does not."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop",))
        self.process.join(_STOP_WAIT_S)
        self.kill()


class EnginePool:
    """A RulesEngine over durable_rules worker processes (one per core by default).

    Raises EngineError when workers cannot load the ruleset within `start_timeout_s`
    (60 s by default). `fault_delay_s` makes workers sleep that long per unit
    (fault injection for tests); `on_worker` hears of every worker started, died
    or stopped (see WorkerEvent). `reply_encoder` (a module-level function: workers
    are spawned, so it travels by name) makes each encoded result carry its reply's
    body as well (see port.encode_evaluation).
    """

    def __init__(
        self,
        ruleset: Ruleset,
        *,
        workers: int | None = None,
        job_timeout_s: float = 30.0,
        max_attempts: int = 3,
        fault_delay_s: float = 0.0,
        start_timeout_s: float | None = None,
        on_worker: WorkerEvent | None = None,
        reply_encoder: ReplyEncoder | None = None,
    ) -> None:
        self._ruleset = ruleset
        self._on_worker = on_worker
        self._reply_encoder = reply_encoder
        self._ctx = multiprocessing.get_context("spawn")
        self._job_timeout_s = job_timeout_s
        # How long a worker may take to start and load the ruleset (durable_rules can hang there).
        self._start_timeout_s = start_timeout_s or max(MIN_START_TIMEOUT_S, job_timeout_s)
        self._max_attempts = max(1, max_attempts)
        self._fault_delay_s = fault_delay_s
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        count = workers if workers is not None else _cores()
        self._workers: list[_Worker | None] = [self._spawn() for _ in range(max(1, count))]
        try:
            for worker in self._workers:
                assert worker is not None
                worker.wait_ready(self._start_timeout_s)
        except (EngineError, _WorkerLost) as error:
            for worker in self._workers:
                if worker is not None:
                    worker.kill()
            raise EngineError(str(error)) from error
        for worker in self._workers:
            assert worker is not None
            self._event("started", worker.pid, "the pool started")
        # Held by a slot's feeding thread while a chunk is in its worker (it handles that worker's death),
        # or by the watcher while it replaces an idle worker that died.
        self._slots = [threading.Lock() for _ in self._workers]
        self._threads = [
            threading.Thread(target=self._serve, args=(slot,), name=f"engine-slot-{slot}", daemon=True)
            for slot in range(len(self._workers))
        ]
        for thread in self._threads:
            thread.start()
        self._watcher = threading.Thread(target=self._watch, name="engine-watcher", daemon=True)
        self._watcher.start()

    @property
    def ruleset(self) -> Ruleset:
        """The loaded ruleset (indicators, flags and grade labels for the api layer)."""
        return self._ruleset

    @property
    def ruleset_version(self) -> str:
        """Version of the loaded ruleset, recorded in every evaluation."""
        return self._ruleset.version

    @property
    def ruleset_digest(self) -> str:
        """Digest of the loaded rule files, recorded in every evaluation."""
        return self._ruleset.digest

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for tests and health reporting)."""
        with self._lock:
            return [worker.pid for worker in self._workers if worker is not None]

    @overload
    def evaluate(self, facts: Sequence[UnitFacts | RollupFacts], *, cancelled: threading.Event | None = None
                 ) -> list[UnitEvaluation]: ...

    @overload
    def evaluate(self, facts: Sequence[OfficialFacts], *, cancelled: threading.Event | None = None
                 ) -> list[OfficialEvaluation]: ...

    def evaluate(self, facts: Sequence[UnitFacts | RollupFacts] | Sequence[OfficialFacts], *,
                 cancelled: threading.Event | None = None) -> list[UnitEvaluation] | list[OfficialEvaluation]:
        """Evaluate units (or officials) in the workers; results in the order of `facts`.

        Raises InvalidFacts (a ValueError) for self-contradicting facts,
        EngineError when a chunk fails `max_attempts` times or the pool is
        closed, and EvaluationCancelled (an EngineError) soon after `cancelled`
        is set: chunks not yet sent to a worker are then dropped.
        """
        return cast(list[UnitEvaluation], self._evaluate(facts, encoded=False, cancelled=cancelled))

    @overload
    def evaluate_encoded(self, facts: Sequence[UnitFacts | RollupFacts], *, cancelled: threading.Event | None = None
                         ) -> list[EncodedEvaluation]: ...

    @overload
    def evaluate_encoded(self, facts: Sequence[OfficialFacts], *, cancelled: threading.Event | None = None
                         ) -> list[EncodedOfficialEvaluation]: ...

    def evaluate_encoded(self, facts: Sequence[UnitFacts | RollupFacts] | Sequence[OfficialFacts], *,
                         cancelled: threading.Event | None = None
                         ) -> list[EncodedEvaluation] | list[EncodedOfficialEvaluation]:
        """As `evaluate`, each result with its canonical JSON made in the worker (see EncodedEvaluation and
        EncodedOfficialEvaluation)."""
        return cast(list[EncodedEvaluation], self._evaluate(facts, encoded=True, cancelled=cancelled))

    def evaluate_encoded_chunks(self, facts: Sequence[UnitFacts | RollupFacts], *,
                                cancelled: threading.Event | None = None) -> Iterator[list[EncodedEvaluation]]:
        """As `evaluate_encoded`, the results given a chunk at a time, in order, each as soon as it is done, so
        that the caller can store them while the workers carry on. The facts are checked before anything is
        queued (at once, not at the first `next`); a caller that stops reading (closes the iterator, or drops
        it) has the chunks not yet started dropped."""
        return self.evaluate_encoded_groups([facts], total=len(facts), cancelled=cancelled)

    def evaluate_encoded_groups(self, groups: Iterable[Sequence[UnitFacts | RollupFacts]], *, total: int,
                                cancelled: threading.Event | None = None) -> Iterator[list[EncodedEvaluation]]:
        """As `evaluate_encoded_chunks` of all the groups' facts, taking them a group at a time (as they are read
        from the database, say): each group is checked and its chunks queued as it comes, so the workers start
        on the first while the next is made. `total`, the number of units in all the groups, shapes the chunks
        as for facts given at once. Every group is taken before this returns; when one cannot be made or is
        refused, the chunks already queued are dropped and the error is raised."""
        self._refuse_if_cancelled(total, cancelled)
        jobs: list[_Job] = []
        try:
            sizes = chunk_sizes(total, len(self._workers))
            taken = 0  # of `sizes`
            waiting: list[Facts] = []
            for group in groups:
                check_facts(group)  # the whole group before any of its chunks is queued
                waiting.extend(group)
                while taken < len(sizes) and len(waiting) >= sizes[taken]:
                    size = sizes[taken]
                    taken += 1
                    jobs.extend(self._enqueue(waiting[:size], encoded=True, cancelled=cancelled, sizes=[size]))
                    del waiting[:size]
            if waiting:  # fewer or more facts than `total` said
                jobs.extend(self._enqueue(waiting, encoded=True, cancelled=cancelled))
        except BaseException:
            for job in jobs:
                job.abandoned = True
            raise
        return self._chunks(jobs, cancelled)

    def _evaluate(self, facts: Sequence[Facts], *, encoded: bool, cancelled: threading.Event | None
                  ) -> list[Any]:
        return [result for chunk in self._chunks(self._queue(facts, encoded=encoded, cancelled=cancelled), cancelled)
                for result in chunk]

    def _queue(self, facts: Sequence[Facts], *, encoded: bool, cancelled: threading.Event | None) -> list[_Job]:
        """Check the facts and queue them as chunks for the workers."""
        self._refuse_if_cancelled(len(facts), cancelled)
        check_facts(facts)
        return self._enqueue(facts, encoded=encoded, cancelled=cancelled)

    @staticmethod
    def _refuse_if_cancelled(units: int, cancelled: threading.Event | None) -> None:
        if cancelled is not None and cancelled.is_set():
            raise EvaluationCancelled(f"the evaluation of {units} unit(s) was cancelled before it started")

    def _enqueue(self, facts: Sequence[Facts], *, encoded: bool, cancelled: threading.Event | None,
                 sizes: Sequence[int] | None = None) -> list[_Job]:
        """Queue checked facts as chunks for the workers (of `sizes`, by default `chunk_sizes`)."""
        units = list(facts)
        self._refuse_if_cancelled(len(units), cancelled)
        if not units:
            return []
        jobs = []
        start = 0
        for size in sizes if sizes is not None else chunk_sizes(len(units), len(self._workers)):
            jobs.append(_Job(units[start : start + size], encoded, cancelled))
            start += size
        with self._lock:
            if self._closed:
                raise EngineError("the engine pool is closed")
            for job in jobs:
                self._jobs.put(job)
        return jobs

    @staticmethod
    def _chunks(jobs: list[_Job], cancelled: threading.Event | None) -> Iterator[list[Any]]:
        """Each job's results in order, as it is done; the jobs not finished are dropped if the reader stops."""
        units = sum(len(job.facts) for job in jobs)
        try:
            for done, job in enumerate(jobs):
                if cancelled is None:
                    yield job.future.result()
                    continue
                while True:
                    try:
                        chunk = job.future.result(timeout=_CANCEL_POLL_S)
                        break
                    except TimeoutError:
                        if cancelled.is_set():
                            # The queued chunks are dropped by the feeding threads as they reach them.
                            raise EvaluationCancelled(
                                f"the evaluation of {units} unit(s) was cancelled after {done} of "
                                f"{len(jobs)} chunk(s)") from None
                yield chunk
        finally:
            for job in jobs:
                job.abandoned = not job.future.done()

    def close(self) -> None:
        """Fail queued work, stop the workers and their threads; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job.future.set_exception(EngineError("the engine pool was closed"))
            for _ in self._threads:
                self._jobs.put(None)
            workers = [w for w in self._workers if w is not None]
        for worker in workers:
            worker.stop()
            self._event("stopped", worker.pid, "the pool closed")
        for thread in self._threads:
            thread.join(_STOP_WAIT_S * 2)
        self._watcher.join(_STOP_WAIT_S * 2)

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self._ruleset, self._fault_delay_s, self._reply_encoder)

    def _event(self, what: str, pid: int, why: str) -> None:
        if self._on_worker is not None:
            with contextlib.suppress(Exception):  # a listener's bug must not break the pool
                self._on_worker(what, pid, why)

    def _watch(self) -> None:
        """Replace a worker that dies while no chunk is in it (a busy slot's thread sees its death itself)."""
        while True:
            with self._lock:
                if self._closed:
                    return
                workers = list(enumerate(self._workers))
            sentinels = {w.process.sentinel: (slot, w) for slot, w in workers if w is not None}
            for ready in wait(list(sentinels), timeout=_WATCH_S):
                slot, worker = sentinels[ready]  # type: ignore[index]
                if not self._slots[slot].acquire(blocking=False):
                    continue  # a chunk is in it: its feeding thread replaces it
                try:
                    with self._lock:
                        if self._closed or self._workers[slot] is not worker:
                            continue
                    worker.process.join(_STOP_WAIT_S)  # reaped, so that its exit code is known
                    reason = exit_reason(worker.process.exitcode)
                    log.error("engine worker %d of ruleset %s died while idle (%s); starting another now",
                              worker.pid, self._ruleset.version, reason)
                    self._event("died", worker.pid, reason)
                    self._discard(slot)
                    with contextlib.suppress(Exception):  # no process could start: the next job tries again
                        self._ready_worker(slot)
                finally:
                    self._slots[slot].release()

    def _serve(self, slot: int) -> None:
        """Feed one worker; when it dies, hangs or fails, retry the chunk and start a new worker."""
        job = self._jobs.get()
        sent_to: _Worker | None = None  # the worker `job` was already sent to, if any
        slot_lock = self._slots[slot]
        while job is not None:
            if sent_to is None and job.drop_if_cancelled():  # its caller has gone: do not start it
                job = self._jobs.get()
                continue
            if sent_to is None:  # with a chunk already in the worker, the slot is still held
                slot_lock.acquire()
            try:
                worker = self._ready_worker(slot)
                if sent_to is not worker:  # not sent yet, or sent to a worker that has since died
                    worker.send(job)
                raw = worker.answer(self._job_timeout_s)
            except _WorkerLost as lost:
                self._retry_or_fail(job, str(lost))
                self._replace(slot, str(lost))
                slot_lock.release()
                job, sent_to = self._jobs.get(), None
                continue
            except Exception as error:  # a bug on this side (e.g. unpicklable facts): no retry
                job.future.set_exception(EngineError(f"evaluating {job.describe()} failed: {error}"))
                self._replace(slot, f"a failure on the server's side: {error}")
                slot_lock.release()
                job, sent_to = self._jobs.get(), None
                continue
            following = self._send_next(worker)
            sent_to = worker if following is not None and following.sent else None
            try:
                kind, payload = ForkingPickler.loads(raw)
            except Exception as error:  # a bug (e.g. a result that cannot be unpickled): no retry
                kind, payload = "bug", error
            if kind == "ok":
                assert isinstance(payload, list)
                job.future.set_result(payload)
            elif kind == "bug":
                job.future.set_exception(EngineError(f"evaluating {job.describe()} failed: {payload}"))
            else:  # an error inside the worker: start afresh, in case durable_rules' state is damaged
                self._retry_or_fail(job, f"worker {worker.pid}: {payload}")
                self._replace(slot, f"an error in the worker: {payload}")
                sent_to = None  # the next chunk, if sent, is sent again to the new worker
            if sent_to is None:
                slot_lock.release()  # nothing in the worker: the watcher minds it until the next chunk
            job = following.job if following is not None else self._jobs.get()

    def _send_next(self, worker: _Worker) -> _Next | None:
        """Take the next queued chunk still wanted, if any, and send it to the (idle) worker."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return None
            if job is None:  # the pool is closing: leave the signal for the loop
                self._jobs.put(None)
                return None
            if not job.drop_if_cancelled():
                break
        try:
            worker.send(job)
        except Exception:  # sent again (and any error reported) by the next round
            return _Next(job, sent=False)
        return _Next(job, sent=True)

    def _replace(self, slot: int, why: str) -> None:
        """Kill the slot's worker and start its successor now (or on the next job if that fails)."""
        with self._lock:
            worker = self._workers[slot]
        if worker is not None:
            log.warning("engine worker %d of ruleset %s replaced: %s", worker.pid, self._ruleset.version, why)
            self._event("died", worker.pid, why)
        self._discard(slot)
        with contextlib.suppress(Exception):  # e.g. no process could be started: try again later
            self._ready_worker(slot)

    def _ready_worker(self, slot: int) -> _Worker:
        with self._lock:
            if self._closed:
                raise _WorkerLost("the engine pool was closed")
            worker = self._workers[slot]
        if worker is not None and worker.process.is_alive():
            return worker
        self._discard(slot)
        worker = self._spawn()
        with self._lock:
            closed = self._closed
            if not closed:
                self._workers[slot] = worker
        if closed:  # close() has already collected the workers to stop
            worker.kill()
            raise _WorkerLost("the engine pool was closed")
        worker.wait_ready(self._start_timeout_s)
        self._event("started", worker.pid, "a replacement")
        return worker

    def _discard(self, slot: int) -> None:
        with self._lock:
            worker, self._workers[slot] = self._workers[slot], None
        if worker is not None:
            worker.kill()

    def _retry_or_fail(self, job: _Job, reason: str) -> None:
        job.failures.append(reason)
        if job.drop_if_cancelled():  # nobody waits for it: no second try
            return
        with self._lock:
            if not self._closed and len(job.failures) < self._max_attempts:
                self._jobs.put(job)
                return
        message = (
            "the engine pool was closed"
            if self._closed
            else (f"evaluating {job.describe()} failed {len(job.failures)} times: {'; '.join(job.failures)}")
        )
        job.future.set_exception(EngineError(message))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
