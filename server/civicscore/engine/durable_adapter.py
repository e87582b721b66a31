"""The only module that imports durable_rules: a guarded `Host` and one session at a time.

Guards against the hazards measured on durable_rules 2.0.28 (DESIGN §4):
- the Host's background timer threads are disabled (`_run`), they crash deletes;
- rules are registered once, from a deep copy, actions bound by name;
- one session per unit evaluation, ids from a counter, never two alive at once;
- an init rule fires first so `delete_state` never meets a session without actions;
- action exceptions (swallowed into the session state) are raised here;
- a fact id that collides with another under durable's 32-bit hash gets a new id.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from durable import engine as durable_engine

from civicscore.engine.facts import Fact
from civicscore.ruleset import CompiledRuleset

_ID_ATTEMPTS = 5

Action = Callable[[Any], None]


class RunnerBroken(RuntimeError):
    """The durable_rules state is uncertain (a session could not be deleted); restart the process."""


class ActionFailed(RuntimeError):
    """An action raised inside durable_rules (which only records it in the session state)."""


class _QuietHost(durable_engine.Host):  # type: ignore[misc]
    """A Host without background timer threads, with actions looked up by name."""

    def __init__(self, actions: Mapping[str, Action]) -> None:
        self._named_actions = dict(actions)
        super().__init__()

    def _run(self) -> None:
        """Start no timer threads: rules here use no timers, and the threads crash deletes."""

    def get_action(self, action_name: str) -> Action:
        """Bind a rule's `run` name to its recorder (durable_rules calls this on registration)."""
        return self._named_actions[action_name]


class DurableRunner:
    """Runs one compiled ruleset in this process; implements evaluator.RuleRunner."""

    def __init__(self, compiled: CompiledRuleset) -> None:
        self._name = compiled.name
        self._init_rule = compiled.init_rule
        self._init_tag = compiled.init_tag
        self._fired: list[str] = []
        self._host = _QuietHost({name: self._recorder(name) for name in compiled.action_names})
        self._host.register_rulesets(copy.deepcopy(compiled.definition))
        self._sessions = 0
        self._sid: str | None = None
        self._next_fact = 0
        self.broken = False

    @property
    def live_sessions(self) -> int:
        """Sessions open now: 0 or 1."""
        return 0 if self._sid is None else 1

    @property
    def sessions_used(self) -> int:
        """Sessions opened since the runner started."""
        return self._sessions

    def _recorder(self, name: str) -> Action:
        def record(_closure: Any) -> None:
            self._fired.append(name)

        return record

    def begin(self) -> None:
        """Open a new session and fire the init rule in it."""
        if self.broken:
            raise RunnerBroken("an earlier session could not be deleted")
        if self._sid is not None:
            raise RuntimeError("a session is already open; end it first")
        self._sessions += 1
        self._sid = str(self._sessions)
        self._next_fact = 0
        if self._init_rule not in self.assert_fact({"tag": self._init_tag}):
            raise RuntimeError("the init rule did not fire")

    def assert_fact(self, fact: Fact) -> list[str]:
        """Assert a fact in the open session; the rules it fired, each once, in firing order."""
        if self._sid is None:
            raise RuntimeError("no open session; call begin() first")
        for _ in range(_ID_ATTEMPTS):
            self._next_fact += 1
            self._fired.clear()
            try:
                state = self._host.assert_fact(self._name, {**fact, "sid": self._sid, "id": str(self._next_fact)})
            except durable_engine.MessageNotHandledException:
                return []
            except durable_engine.MessageObservedException:
                continue  # the id's 32-bit hash collides with a fact already in the session
            _raise_action_error(state)
            return list(dict.fromkeys(self._fired))
        raise RuntimeError(f"no free fact id after {_ID_ATTEMPTS} tries")

    def end(self) -> None:
        """Delete the open session, after checking it for swallowed action errors."""
        sid, self._sid = self._sid, None
        if sid is None:
            return
        try:
            state = self._host.get_state(self._name, sid)
            self._host.delete_state(self._name, sid)
        except Exception as error:
            self.broken = True
            raise RunnerBroken(f"session {sid} could not be deleted: {error}") from error
        _raise_action_error(state)


def _raise_action_error(state: Any) -> None:
    if isinstance(state, dict) and "exception" in state:
        raise ActionFailed(f"a rule action failed: {state['exception']}")
