"""The only module that imports durable_rules: a guarded `Host` and one session at a time.

Guards against the hazards measured on durable_rules 2.0.28 (DESIGN §4):
- the Host's background timer threads are disabled (`_run`), they crash deletes;
- rules are registered once, from a deep copy, actions bound by name;
- one session per unit evaluation, ids from a counter, never two alive at once;
- an init rule fires first so `delete_state` never meets a session without actions;
- action exceptions (which durable_rules would swallow into the session state) are raised here;
- fact ids never collide under durable's 32-bit hash (see below).

Speed: facts are asserted a batch at a time (one `assert_facts` call per stage of
a unit), and the fired actions are drained by a lean loop over the same C calls
`durable.engine.Ruleset._flush_actions` makes (start_action_for_state, then
update_state + complete_and_start_action per action), without its per-action
Closure, Promise and clock reads. Every action is one of our recorders, so there
is nothing else of durable's action machinery to keep.

Fact ids: durable_rules stores a session's facts under the FNV-1a 32-bit hash of
their id (state.c `storeMessage`) and rejects a fact whose hash is taken
("observed"). A batch reports only its last fact's result, so a rejected fact in
the middle would go unnoticed: ids are therefore chosen so that their hashes are
distinct from each other and from the session's state fact (`sid-<sid>`). The
runner checks at start that this build hashes ids that way (a known colliding
pair must collide); if it does not, facts are asserted one at a time, where a
collision shows in the result and the fact is retried under a new id.

Numbers: durable_rules' JSON parser refuses a number with an exponent but no decimal point (`1e-05`,
`1e+16`: error 204), which is how Python writes floats under 0.0001 or from 10^16 up (a DX value of 1 in
200,000, say). In a batch the refusal is not reported for a fact other than the last one (its rules
silently do not fire), and we have seen the process crash after it. Such numbers are written with a point
(`1.0e-05`), which it reads exactly (`_engine_json`).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence

import durable_rules_engine
from durable import engine as durable_engine

from civicscore.engine.facts import Fact
from civicscore.ruleset import CompiledRuleset
from civicscore.ruleset.compiler import engine_number_text

_ID_ATTEMPTS = 5
MAX_BATCH = 256  # facts per assert_facts call (tested with 3,000 x 60 fired rules)

# durable_rules_engine result codes of the assert calls.
_HANDLED, _NOT_HANDLED, _OBSERVED = 0, 1, 2

# Two ids with the same FNV-1a 32-bit hash (found by search): the self-check of the id model.
_COLLIDING_IDS = ("40189", "797186")
_SELF_CHECK_SID = "id-model-check"

# A number json.dumps may have written in a form durable_rules refuses (or a non-finite one): the text is then
# written again by `_engine_json`. Strings rarely hold a digit before an "e", so this rarely fires for nothing.
_RISKY_NUMBER = re.compile(r"[0-9]e|NaN|Infinity")
_string = json.encoder.encode_basestring  # the C encoder's own str writer (as json.dumps with ensure_ascii=False)

Action = Callable[[str], None]  # called with the id of the fact that fired the rule
# How an action message continues after `{"<action name>`, when the fact's id comes first.
_ACTION_FACT_ID = '":{"m":{"id": "'


def _message(fact: Fact, sid: str, fact_id: str) -> Fact:
    """The fact as sent to durable_rules: its id first (see `_action_of`), then its fields and sid."""
    message = {"id": fact_id, **fact}
    message["id"] = fact_id
    message["sid"] = sid
    return message


def fnv1a_32(text: str) -> int:
    """durable_rules' `fnv1Hash32` of a string's UTF-8 bytes (its `char` is signed on x86)."""
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ (byte if byte < 0x80 else byte | 0xFFFFFF00)) * 0x01000193) & 0xFFFFFFFF
    return value


# Fact ids are "1", "2", ... in every session: their hashes are looked up, not recomputed.
_fact_id_hash = functools.lru_cache(maxsize=65536)(fnv1a_32)


def _engine_json(value: object) -> str:
    """`value` as json.dumps writes it (same separators), but every float in a form durable_rules reads: with a
    decimal point before any exponent (`1.0e-05`). A non-finite number, which it cannot compare, is refused."""
    if isinstance(value, str):
        return _string(value)
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"the rules engine cannot compare the non-finite number {value!r}")
        return engine_number_text(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(str(key))}: {_engine_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_engine_json(item) for item in value) + "]"
    raise TypeError(f"a fact cannot hold {type(value).__name__}")


class RunnerBroken(RuntimeError):
    """The durable_rules state is uncertain (a session could not be deleted); restart the process."""


class ActionFailed(RuntimeError):
    """An action raised while durable_rules ran it."""


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
        self._actions = {name: self._recorder(name) for name in compiled.action_names}
        self._host = _QuietHost(self._actions)
        self._host.register_rulesets(copy.deepcopy(compiled.definition))
        # The C handle of the registered ruleset (durable.engine.Ruleset keeps it as `_handle`).
        self._handle: int = self._host.get_ruleset(self._name)._handle
        self._sessions = 0
        self._sid: str | None = None
        self._next_fact = 0
        self._taken: set[int] = set()  # id hashes used in the open session
        self._fired: dict[str, list[str]] = {}  # fact id -> rules fired, in firing order
        self._failure: str | None = None  # the first action error of the open session
        self.broken = False
        self.batching = self._ids_hash_as_expected()

    @property
    def live_sessions(self) -> int:
        """Sessions open now: 0 or 1."""
        return 0 if self._sid is None else 1

    @property
    def sessions_used(self) -> int:
        """Sessions opened since the runner started."""
        return self._sessions

    def _recorder(self, name: str) -> Action:
        def record(fact_id: str) -> None:
            self._fired.setdefault(fact_id, []).append(name)

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
        self._taken = {fnv1a_32(f"sid-{self._sid}")}
        self._failure = None
        if self._init_rule not in self.assert_fact({"tag": self._init_tag}):
            raise RuntimeError("the init rule did not fire")

    def assert_fact(self, fact: Fact) -> list[str]:
        """Assert a fact in the open session; the rules it fired, each once, in firing order."""
        return self.assert_facts([fact])[0]

    def assert_facts(self, facts: Sequence[Fact]) -> list[list[str]]:
        """Assert facts in the open session; for each, the rules it fired, each once, in firing order."""
        if self._sid is None:
            raise RuntimeError("no open session; call begin() first")
        if not self.batching:
            return [self._assert_alone(fact) for fact in facts]
        sid = self._sid
        fired: list[list[str]] = []
        for start in range(0, len(facts), MAX_BATCH):
            chunk = facts[start : start + MAX_BATCH]
            ids = [self._new_id() for _ in chunk]
            code = self._assert([_message(fact, sid, fact_id) for fact, fact_id in zip(chunk, ids, strict=True)])
            if code == _OBSERVED:  # impossible with distinct hashes: durable_rules is not what was checked
                self.batching = False
                raise RuntimeError("durable_rules rejected a fact id whose hash was free")
            fired.extend(self._take_fired(fact_id) for fact_id in ids)
        self._raise_failure()
        return fired

    def end(self) -> None:
        """Delete the open session; raise ActionFailed if an action failed in it."""
        sid, self._sid = self._sid, None
        if sid is None:
            return
        try:
            durable_rules_engine.delete_state(self._handle, sid)
        except Exception as error:
            self.broken = True
            raise RunnerBroken(f"session {sid} could not be deleted: {error}") from error
        finally:
            self._fired.clear()
        self._raise_failure()

    def _assert_alone(self, fact: Fact) -> list[str]:
        sid = self._sid
        assert sid is not None
        for _ in range(_ID_ATTEMPTS):
            fact_id = self._new_id()
            if self._assert([_message(fact, sid, fact_id)]) != _OBSERVED:
                fired = self._take_fired(fact_id)
                self._raise_failure()
                return fired
            # the id's 32-bit hash collides with a fact already in the session: try another
        raise RuntimeError(f"no free fact id after {_ID_ATTEMPTS} tries")

    def _new_id(self) -> str:
        while True:
            self._next_fact += 1
            fact_id = str(self._next_fact)
            hashed = _fact_id_hash(fact_id)
            if hashed not in self._taken:
                self._taken.add(hashed)
                return fact_id

    def _take_fired(self, fact_id: str) -> list[str]:
        return list(dict.fromkeys(self._fired.pop(fact_id, ())))

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise ActionFailed(f"a rule action failed: {self._failure}")

    def _assert(self, messages: list[Fact]) -> int:
        """Assert facts with one C call and run every action they fired; the result code of the last."""
        handle = self._handle
        text = json.dumps(messages, ensure_ascii=False)
        if _RISKY_NUMBER.search(text):
            text = _engine_json(messages)
        if len(messages) == 1:
            code, state = durable_rules_engine.assert_fact(handle, text[1:-1])
        else:
            code, state = durable_rules_engine.assert_facts(handle, text)
        if code not in (_HANDLED, _NOT_HANDLED, _OBSERVED):
            raise RuntimeError(f"durable_rules answered {code} to an assert")
        started = durable_rules_engine.start_action_for_state(handle, state)
        if not started:
            return int(code)
        state_text, message = started
        while message:
            self._run_action(*self._action_of(message))
            durable_rules_engine.update_state(handle, state_text)
            message = durable_rules_engine.complete_and_start_action(handle, state)
        return int(code)

    def _action_of(self, message: str) -> tuple[str, str]:
        """The action name and fact id of an action message, `{"<action>":{"m":<the fact as sent>}}`.

        The fact's text is the one we sent, id first, so both are read off the front of
        the message; anything else is parsed as JSON.
        """
        head, found, rest = message.partition(_ACTION_FACT_ID)
        if found and head.startswith('{"'):
            action_name, fact_id = head[2:], rest[: rest.find('"')]
            if action_name in self._actions and fact_id.isdigit():
                return action_name, fact_id
        ((action_name, frame),) = json.loads(message).items()
        return action_name, str(frame["m"]["id"])

    def _run_action(self, action_name: str, fact_id: str) -> None:
        try:
            self._actions[action_name](fact_id)
        except Exception as error:  # like durable_rules: later actions still run; raised after the assert
            if self._failure is None:
                self._failure = f"{type(error).__name__}: {error}"

    def _ids_hash_as_expected(self) -> bool:
        """Whether this durable_rules build rejects the second of two ids with equal FNV-1a hashes."""
        first, second = _COLLIDING_IDS
        if fnv1a_32(first) != fnv1a_32(second):  # pragma: no cover - constants checked by a test
            return False
        sid = _SELF_CHECK_SID
        codes = []
        try:
            for fact_id in ("1", first, second):
                codes.append(self._assert([_message({"tag": self._init_tag}, sid, fact_id)]))
        finally:
            durable_rules_engine.delete_state(self._handle, sid)
            self._fired.clear()
            self._failure = None
        return codes == [_HANDLED, _HANDLED, _OBSERVED]
