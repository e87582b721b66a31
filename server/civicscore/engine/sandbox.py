"""`run_budgeted`: a function run in a child process with a time and a memory budget, killed when
the budget is spent or the caller gives up. For work on untrusted input: checking candidate rule
files (parsing, validation and a test-load in the rules engine) before anything of them reaches
the server process.

    outcome = run_budgeted(check_ruleset_files, files, budget=Budget(60.0, 1 << 30), cancelled=event)

The child is never forked from the caller (the server holds gRPC objects, DESIGN §4.8): it is
forked from multiprocessing's fork server, a fresh interpreter started once, which imported the
function's module and holds nothing else; a check then starts in milliseconds instead of the
second a spawned interpreter takes to import it (plain spawn where there is no fork server).
The child leads a process group of its own, so that killing it also kills any engine worker it
started. In the child, RLIMIT_DATA caps the memory (Python then raises MemoryError, reported as
the memory budget spent; engine workers it starts inherit the cap) and RLIMIT_CPU ends it should
its parent be gone. The parent waits on a pipe, looking at the clock and at `cancelled` every
`_POLL_S`, and reads a reply of bounded size. At most `_SLOTS` children run at once (one per
core, at least two): many candidates checked together queue instead of taking every core.

Errors (an exception the function raises is raised again in the caller when it can be pickled):
    EngineError
     ├── BudgetExceeded        .resource "time" or "memory": the child was stopped
     ├── EvaluationCancelled   `cancelled` was set (the caller's client has gone): the child was killed
     └── (itself)              the child died, or raised what cannot be sent back
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.reduction import ForkingPickler
from threading import BoundedSemaphore, Lock
from typing import Any, Literal, Protocol, TypeVar

from civicscore.engine.port import EngineError, EvaluationCancelled

T = TypeVar("T")

_POLL_S = 0.05  # how often the parent looks at the clock and at `cancelled`
_MAX_REPLY_BYTES = 256 * 1024 * 1024  # a reply larger than this is refused unread
_CPU_GRACE_S = 10  # RLIMIT_CPU is the time budget plus this: a backstop for an orphaned child
_JOIN_S = 2.0
_SLOTS = BoundedSemaphore(max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                              else os.cpu_count() or 2))
_CONTEXT_LOCK = Lock()
_context: ForkServerContext | SpawnContext | None = None


class Cancellation(Protocol):
    """What `run_budgeted` watches to stop early: a threading.Event, or anything with `is_set`."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class AnyOf:
    """A Cancellation set when any of its parts is (None parts are never set)."""

    parts: tuple[Cancellation | None, ...]

    def is_set(self) -> bool:
        return any(part is not None and part.is_set() for part in self.parts)


@dataclass(frozen=True)
class Budget:
    """Wall-clock seconds and bytes of memory a child may use."""

    time_s: float
    memory_bytes: int


class BudgetExceeded(EngineError):
    """The child used its whole time or memory budget and was stopped."""

    def __init__(self, resource: Literal["time", "memory"], message: str) -> None:
        super().__init__(message)
        self.resource = resource


def run_budgeted(function: Callable[..., T], *args: Any, budget: Budget, cancelled: Cancellation | None = None,
                 what: str = "the work") -> T:
    """`function(*args)` in a budgeted child process; its return value (both must pickle).

    `what` names the work in error messages ("checking the rule files"). Waiting for a free slot
    does not count against the budget, but stops when `cancelled` is set.
    Raises BudgetExceeded, EvaluationCancelled or EngineError (see the module docstring).
    """
    while not _SLOTS.acquire(timeout=_POLL_S):
        if cancelled is not None and cancelled.is_set():
            raise EvaluationCancelled(f"{what} was cancelled before it started")
    try:
        return _run(function, args, budget, cancelled, what)
    finally:
        _SLOTS.release()


def _run(function: Callable[..., T], args: tuple[Any, ...], budget: Budget, cancelled: Cancellation | None,
         what: str) -> T:
    if cancelled is not None and cancelled.is_set():
        raise EvaluationCancelled(f"{what} was cancelled before it started")
    ctx = _context_for(function)
    receive, send = ctx.Pipe(duplex=False)
    # Not a daemon: daemonic processes may not start children, and the test-load starts one.
    process = ctx.Process(target=_child_main, args=(send, function, args, budget), name="civicscore-budgeted")
    deadline = time.monotonic() + budget.time_s
    try:
        process.start()
    except OSError as error:  # e.g. no more processes: the caller reports it like a crash
        receive.close()
        raise EngineError(f"{what} could not start a process: {error}") from error
    finally:
        send.close()
    try:
        raw = _wait_for_reply(receive, process, deadline, budget, cancelled, what)
    finally:
        _kill_group(process)
        receive.close()
    try:
        kind, payload = ForkingPickler.loads(raw)
    except Exception as error:  # e.g. an exception type whose constructor cannot be called again
        raise EngineError(f"{what} failed: its reply could not be read ({type(error).__name__}: {error})") from None
    if kind == "ok":
        result: T = payload
        return result
    if kind == "raised" and isinstance(payload, Exception):
        raise payload
    if kind == "memory":
        raise BudgetExceeded("memory", f"{what} needed more than its memory budget of {_mib(budget.memory_bytes)}")
    raise EngineError(f"{what} failed: {payload}")


def start_early(function: Callable[..., object]) -> None:
    """Start the fork server now (with `function`'s module), so that the first run need not wait for it."""
    if _context_for(function).get_start_method() == "forkserver":
        import multiprocessing.forkserver

        multiprocessing.forkserver.ensure_running()


def _context_for(function: Callable[..., object]) -> ForkServerContext | SpawnContext:
    """The fork server context (started on first use with the function's module imported), else spawn."""
    global _context
    with _CONTEXT_LOCK:
        if _context is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                forkserver = multiprocessing.get_context("forkserver")
                forkserver.set_forkserver_preload([function.__module__])
                _context = forkserver
            else:
                _context = multiprocessing.get_context("spawn")
        return _context


def _wait_for_reply(receive: Connection, process: multiprocessing.process.BaseProcess, deadline: float,
                    budget: Budget, cancelled: Cancellation | None, what: str) -> bytes:
    while not receive.poll(_POLL_S):
        if cancelled is not None and cancelled.is_set():
            raise EvaluationCancelled(f"{what} was cancelled (the caller has gone); the process doing it was killed")
        if time.monotonic() > deadline:
            raise BudgetExceeded("time", f"{what} did not finish within its time budget of {budget.time_s:g} s")
    try:
        return receive.recv_bytes(_MAX_REPLY_BYTES)
    except EOFError:  # the child died without a word
        process.join(_JOIN_S)
        code = process.exitcode
        if code in (-signal.SIGKILL, -signal.SIGXCPU):  # the kernel's CPU limit, or the OOM killer
            raise BudgetExceeded("time" if code == -signal.SIGXCPU else "memory",
                                 f"{what} was stopped by the system (exit code {code}): it used too much CPU "
                                 "time or memory") from None
        raise EngineError(f"{what} failed: its process died (exit code {code}), possibly out of its memory "
                          f"budget of {_mib(budget.memory_bytes)}") from None
    except OSError as error:  # longer than _MAX_REPLY_BYTES
        raise BudgetExceeded("memory", f"{what} gave a reply larger than {_mib(_MAX_REPLY_BYTES)}") from error


def _kill_group(process: multiprocessing.process.BaseProcess) -> None:
    """Kill the child and whatever it started (its process group), then reap it."""
    pid = process.pid
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):  # no group (yet): the child alone
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    process.join(_JOIN_S)


def _child_main(conn: Connection, function: Callable[..., object], args: tuple[Any, ...], budget: Budget) -> None:
    """The child: its own process group, limits, the function, one reply."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _limit(budget)
    reply: tuple[str, object]
    try:
        reply = ("ok", function(*args))
    except MemoryError:
        reply = ("memory", "")  # the frames holding the memory are gone once this block ends
    except Exception as error:
        reply = ("raised", error)
    try:
        conn.send(reply)
    except MemoryError:
        conn.send(("memory", ""))
    except (BrokenPipeError, OSError):
        pass  # the parent has gone
    except Exception as error:  # the result or exception does not pickle
        conn.send(("error", f"its {'result' if reply[0] == 'ok' else 'error'} could not be sent back "
                            f"({type(error).__name__}: {error})"))


def _limit(budget: Budget) -> None:
    try:
        import resource
    except ImportError:  # not on a POSIX system: the parent's clock still applies
        return
    with contextlib.suppress(ValueError, OSError):  # a lower hard limit set by the system stays
        resource.setrlimit(resource.RLIMIT_DATA, (budget.memory_bytes, budget.memory_bytes))
    cpu = int(budget.time_s) + _CPU_GRACE_S
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + _CPU_GRACE_S))


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"
