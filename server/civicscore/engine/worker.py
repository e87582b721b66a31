"""Engine worker process: loads the compiled ruleset once, then evaluates chunks sent over a pipe.

Protocol (pickled tuples over a multiprocessing Connection):
    worker -> parent  ("ready", pid) | ("failed", message)          once, at start
    parent -> worker  ("evaluate", [UnitFacts | RollupFacts | OfficialFacts, ...], encoded) | ("stop",)
    worker -> parent  ("ok", [UnitEvaluation | EncodedEvaluation | OfficialEvaluation
                              | EncodedOfficialEvaluation, ...]) | ("error", message)
With `encoded` true the worker also serialises each result (port.encode_evaluation, with the reply's
body when the pool was given a `reply_encoder`, or port.encode_official_evaluation for an official),
so the parent neither unpickles the nested dataclasses nor writes their JSON.
The rules each fact fires are remembered by the values the rules read (engine.memo): durable_rules is asked
only about facts unlike those this worker has seen.
The worker never touches a database and ignores SIGINT (the parent handles shutdown).
"""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from civicscore.domain.model import UnitEvaluation
from civicscore.engine.evaluator import UnitEvaluator
from civicscore.engine.memo import MemoRunner
from civicscore.engine.port import ReplyEncoder, encode_evaluation, encode_official_evaluation
from civicscore.ruleset import Ruleset

if TYPE_CHECKING:
    from civicscore.engine.durable_adapter import DurableRunner


def worker_evaluator(ruleset: Ruleset) -> tuple[DurableRunner, UnitEvaluator]:
    """What a worker evaluates with: durable_rules running the compiled ruleset, and the evaluator over it
    through the memo of fired rules. Imports durable_rules' C engine (the server process never calls this)."""
    from civicscore.engine.durable_adapter import DurableRunner

    compiled = ruleset.compile()
    runner = DurableRunner(compiled)
    return runner, UnitEvaluator(ruleset, MemoRunner.over(runner, compiled))


def run_worker(conn: Connection, ruleset: Ruleset, fault_delay_s: float = 0.0,
               reply_encoder: ReplyEncoder | None = None) -> None:
    """Process entry point; returns (ending the process) on "stop", EOF, or an unrecoverable error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        runner, evaluator = worker_evaluator(ruleset)
    except Exception as error:
        conn.send(("failed", f"{type(error).__name__}: {error}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent went away
        if message[0] != "evaluate":
            return
        try:
            results: list[object] = []
            for unit in message[1]:
                if fault_delay_s > 0:
                    time.sleep(fault_delay_s)
                result = evaluator.evaluate(unit)
                if message[2]:
                    results.append(encode_evaluation(result, reply_encoder) if isinstance(result, UnitEvaluation)
                                   else encode_official_evaluation(result))
                else:
                    results.append(result)
            reply: tuple[str, object] = ("ok", results)
        except Exception as error:
            reply = ("error", f"{type(error).__name__}: {error}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
        if runner.broken:
            return  # durable state is uncertain: let the supervisor start a fresh process
