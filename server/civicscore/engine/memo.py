"""A rule runner that remembers which rules a fact fired, by the values the rules read.

Every compiled rule matches one fact (`ruleset.compiler.compile_pattern`: the fact's tag, then tests
of its own fields), so whether a rule fires for a fact depends on nothing but the values of the
fields its pattern tests: not on the fact's other fields, on the other facts of the session, or on
the order they came in. Two facts with the same tag and the same values in every field that some
rule of that tag tests therefore fire the same rules. `MemoRunner` keys the rules a fact fired by
those values and asks the engine only about facts unlike any it has seen; a unit's session is
opened in the engine only when one of its facts is new.

Most facts repeat: an overdue assignment is, to the default rules, its days overdue and reminders,
whatever its id or unit. On the bench's 1,100 units (about 20 open overdue assignments each, asserted in
two stages) one process asked the engine about 374 facts and answered 46,926 from memory.

The fields are read off the durable_rules definition itself, the data the engine matches with, not
off the rule files. A definition holding anything else than the single-fact patterns the compiler
writes (a join, a reference to another fact or to the session's state, an operator not listed
below) turns the memo off for the whole ruleset: every fact then goes to the engine, as before.

The key keeps each value's type (`1`, `1.0` and `true` are told apart, as the engine's JSON does)
and whether a field is absent. The memo is per process and per ruleset (a worker holds one), and
is emptied when it would pass `MAX_ENTRIES` (a unit's summary facts rarely repeat, so they fill it):
it decides nothing the engine would not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from civicscore.engine.evaluator import RuleRunner
from civicscore.engine.facts import Fact
from civicscore.ruleset import CompiledRuleset

# About 1.5 KB an entry (measured with tracemalloc): at most about 12 MB a worker.
MAX_ENTRIES = 8_192

# Operators of `compile_test` whose argument is {field: value}.
_COMPARISONS = frozenset({"$lt", "$lte", "$gt", "$gte", "$neq", "$ex", "$nex"})
_ABSENT = object()


class _NotSingleFact(Exception):
    """A pattern this module cannot read as tests of one fact's own fields."""


def fields_read(rules: Mapping[str, Any]) -> dict[str, tuple[str, ...]] | None:
    """For each fact tag, the fields (sorted) that the patterns of its rules test; None when a rule is not a
    single-fact pattern of the form `ruleset.compiler` writes (the memo is then off)."""
    by_tag: dict[str, set[str]] = {}
    try:
        for rule in rules.values():
            patterns = rule.get("all") if isinstance(rule, Mapping) else None
            if not isinstance(patterns, list) or len(patterns) != 1 or set(rule) != {"all", "run"}:
                raise _NotSingleFact
            ((alias, expression),) = _items(patterns[0], exactly_one=True)
            if alias.startswith("$"):
                raise _NotSingleFact
            tag, fields = _tagged(expression)
            by_tag.setdefault(tag, set()).update(fields)
    except _NotSingleFact:
        return None
    return {tag: tuple(sorted(fields)) for tag, fields in by_tag.items()}


def _items(value: Any, *, exactly_one: bool = False) -> list[tuple[str, Any]]:
    if not isinstance(value, Mapping) or (exactly_one and len(value) != 1):
        raise _NotSingleFact
    return list(value.items())


def _tagged(expression: Any) -> tuple[str, set[str]]:
    """The tag a pattern requires (`{"tag": t}` alone, or first in its `$and`) and the fields it tests."""
    ((key, argument),) = _items(expression, exactly_one=True)
    if key == "tag" and isinstance(argument, str):
        return argument, {"tag"}
    if key != "$and" or not isinstance(argument, list) or not argument:
        raise _NotSingleFact
    ((first, tag),) = _items(argument[0], exactly_one=True)
    if first != "tag" or not isinstance(tag, str):
        raise _NotSingleFact
    fields: set[str] = set()
    for test in argument:
        _collect(test, fields)
    return tag, fields


def _collect(test: Any, fields: set[str]) -> None:
    """Add the fields one test expression reads."""
    for key, argument in _items(test):
        if key in ("$and", "$or"):
            if not isinstance(argument, list):
                raise _NotSingleFact
            for part in argument:
                _collect(part, fields)
        elif key in _COMPARISONS:
            for field, value in _items(argument):
                _plain(field, value)
                fields.add(field)
        elif key == "$iany":  # {"$iany": {field: {"$i": value}}}: the list field holds the value
            ((field, inner),) = _items(argument, exactly_one=True)
            ((marker, value),) = _items(inner, exactly_one=True)
            if marker != "$i":
                raise _NotSingleFact
            _plain(field, value)
            fields.add(field)
        else:  # {field: value}: equality
            _plain(key, argument)
            fields.add(key)


def _plain(field: str, value: Any) -> None:
    """A field compared with a literal: not an operator, and not another fact's field or the session's state
    (durable_rules writes those as objects, e.g. {"$m": "x"} or {"$s": "y"})."""
    if field.startswith("$") or isinstance(value, (Mapping, list)):
        raise _NotSingleFact


def _key_value(value: Any) -> Any:
    if type(value) is list:
        return (list, tuple(_key_value(item) for item in value))
    return (type(value), value)


class MemoRunner:
    """A RuleRunner over `runner` (the engine) that answers facts like those already seen from memory; see the
    module docstring. `reads` is `fields_read` of the engine's definition; None turns the memo off."""

    def __init__(self, runner: RuleRunner, reads: Mapping[str, tuple[str, ...]] | None,
                 max_entries: int = MAX_ENTRIES) -> None:
        self._runner = runner
        self._reads = dict(reads) if reads is not None else None
        self._max_entries = max_entries
        self._memo: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._open = False  # between begin() and end()
        self._engine_open = False  # the engine's session for it is open
        self.engine_facts = 0  # facts the engine was asked about
        self.remembered_facts = 0  # facts answered from memory

    @classmethod
    def over(cls, runner: RuleRunner, compiled: CompiledRuleset, max_entries: int = MAX_ENTRIES) -> MemoRunner:
        """A MemoRunner over `runner`, the engine running `compiled`, remembering by what its rules read."""
        reads = fields_read(compiled.definition[compiled.name])
        if reads is not None:  # the session's own init fact is the engine's business
            reads.pop(compiled.init_tag, None)
        return cls(runner, reads, max_entries)

    @property
    def enabled(self) -> bool:
        """Whether facts are remembered (False: every fact goes to the engine)."""
        return self._reads is not None

    def begin(self) -> None:
        """Start a unit's session (the engine's opens with its first new fact)."""
        if self._open:
            raise RuntimeError("a session is already open; end it first")
        self._open = True

    def assert_fact(self, fact: Fact) -> list[str]:
        """Assert a fact; the rules it fired, each once, in firing order."""
        return self.assert_facts([fact])[0]

    def assert_facts(self, facts: Sequence[Fact]) -> list[list[str]]:
        """For each fact, the rules it fired (from memory, or from the engine in one call for the new ones)."""
        if not self._open:
            raise RuntimeError("no open session; call begin() first")
        keys = [self._key(fact) for fact in facts]
        memo = self._memo
        fired: list[tuple[str, ...] | None] = [None if key is None else memo.get(key) for key in keys]
        new = [i for i, rules in enumerate(fired) if rules is None]
        if new:
            if not self._engine_open:
                self._runner.begin()
                self._engine_open = True
            answers = self._runner.assert_facts([facts[i] for i in new])
            self.engine_facts += len(new)
            if len(memo) + len(new) > self._max_entries:
                memo.clear()
            for i, rules in zip(new, answers, strict=True):
                fired[i] = answer = tuple(rules)
                key = keys[i]
                if key is not None and len(memo) < self._max_entries:
                    memo[key] = answer
        self.remembered_facts += len(facts) - len(new)
        return [list(rules) for rules in fired]  # type: ignore[arg-type]

    def end(self) -> None:
        """End the unit's session (the engine's, if it was opened)."""
        self._open = False
        if self._engine_open:
            self._engine_open = False
            self._runner.end()

    def _key(self, fact: Fact) -> tuple[Any, ...] | None:
        """The values of the fields the rules of the fact's tag test, or None (ask the engine)."""
        if self._reads is None:
            return None
        tag = fact.get("tag")
        fields = self._reads.get(tag) if type(tag) is str else None
        if fields is None:
            return None
        return (tag, *(_key_value(fact.get(field, _ABSENT)) for field in fields))
