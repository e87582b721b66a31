"""The rules folder on disk: reading its rule files, and watching it for changes.

Policy staff edit `rules/*.yaml`; the server activates what they saved without a
restart. Editors save in bursts (temporary files, renames), so changes are
debounced and the folder is read as a whole once it is quiet; identical content
is ignored, broken content is refused (the ruleset in force keeps serving).

With several replicas sharing the folder, one watches it at a time: `FolderDuty`
holds the installation's "rules-folder" leadership (store/cluster.py) while it
watches; when its replica dies another takes the leadership over, reads the folder
at once (to catch what changed meanwhile) and watches from then on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from watchfiles import watch

from civicscore.ruleset.limits import MAX_FILE_BYTES, MAX_RULE_FILES
from civicscore.store import Store
from civicscore.store.cluster import Leadership

log = logging.getLogger("civicscore.rules")

DEBOUNCE_MS = 800
LEADERSHIP_POLL_S = 5.0  # how often a replica checks it still leads, or tries to take the lead
FOLDER_LEADERSHIP = "rules-folder"


def read_rule_files(rules_dir: Path) -> dict[str, str]:
    """The folder's rule files, `{name: text}`: its top-level `*.yaml` / `*.yml` (not `tests/`).

    Bounded, whatever lies in the folder: at most MAX_RULE_FILES + 1 files, each read up to
    MAX_FILE_BYTES + 1 bytes. A longer file's text is its beginning (decoded leniently), which
    `load_ruleset` refuses by name as too large; so do more files than a ruleset may have.
    Raises UnicodeDecodeError for a file within the limit that is not UTF-8.
    """
    if not rules_dir.is_dir():
        raise FileNotFoundError(f"rules folder {rules_dir} does not exist")
    paths = [path for path in sorted(rules_dir.iterdir()) if path.is_file() and path.suffix in (".yaml", ".yml")]
    return {path.name: read_bounded_text(path) for path in paths[: MAX_RULE_FILES + 1]}


def read_bounded_text(path: Path) -> str:
    """A rule or case file's UTF-8 text, read no further than one byte past MAX_FILE_BYTES."""
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:  # cut, perhaps inside a character: refused as too large anyway
        return data.decode("utf-8", errors="replace")
    return data.decode("utf-8")


def _is_rule_file_change(rules_dir: Path, changed: str) -> bool:
    path = Path(changed)
    return path.parent == rules_dir and path.suffix in (".yaml", ".yml")


class FolderWatcher:
    """A daemon thread that calls `on_change(files)` when the folder's rule files change."""

    def __init__(self, rules_dir: Path, on_change: Callable[[dict[str, str]], None], *,
                 debounce_ms: int = DEBOUNCE_MS) -> None:
        self.rules_dir = rules_dir.resolve()
        self._on_change = on_change
        self._debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rules-folder-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        watcher = watch(
            self.rules_dir, stop_event=self._stop, debounce=self._debounce_ms, step=50, recursive=False,
            watch_filter=lambda _change, path: _is_rule_file_change(self.rules_dir, path),
            raise_interrupt=False, yield_on_timeout=True, rust_timeout=500,
        )
        for changes in watcher:
            self._ready.set()
            if not changes or self._stop.is_set():
                continue
            try:
                files = read_rule_files(self.rules_dir)
            except (OSError, UnicodeDecodeError) as error:
                log.error("rules folder %s could not be read: %s", self.rules_dir, error)
                continue
            try:
                self._on_change(files)
            except Exception:  # the watcher must outlive any one failed activation
                log.exception("activating the changed rules folder %s failed", self.rules_dir)
        self._ready.set()


class FolderDuty:
    """Watches the rules folder while this process holds the installation's folder leadership."""

    def __init__(self, store: Store, rules_dir: Path, on_change: Callable[[Mapping[str, str]], None], *,
                 poll_s: float = LEADERSHIP_POLL_S, debounce_ms: int = DEBOUNCE_MS) -> None:
        self._store = store
        self._rules_dir = rules_dir
        self._on_change = on_change
        self._poll_s = poll_s
        self._debounce_ms = debounce_ms
        self._leadership: Leadership | None = None
        self._watcher: FolderWatcher | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rules-folder-duty", daemon=True)

    @property
    def leading(self) -> bool:
        """Whether this process watches the folder now."""
        return self._watcher is not None

    def start(self) -> None:
        """Try to lead at once (so a single process watches from its first moment), then keep trying."""
        self._step()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._poll_s + 5.0)
        self._resign()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self._step()
            except Exception:  # e.g. the database is unreachable: the next round tries again
                log.exception("the rules folder's leadership could not be checked")

    def _step(self) -> None:
        if self._leadership is not None:
            if self._leadership.held():
                return
            log.warning("this replica lost the rules folder's leadership (its database connection broke); "
                        "another replica watches the folder now")
            self._resign()
        leadership = self._store.try_lead(FOLDER_LEADERSHIP)
        if leadership is None:
            return  # another replica watches it
        self._leadership = leadership
        self._watcher = FolderWatcher(self._rules_dir, self._changed, debounce_ms=self._debounce_ms)
        self._watcher.start()
        log.info("this replica watches the rules folder %s", self._rules_dir)
        try:  # what changed while no replica watched (e.g. between its leader's death and now)
            self._changed(read_rule_files(self._rules_dir))
        except (OSError, UnicodeDecodeError) as error:
            log.error("rules folder %s could not be read: %s", self._rules_dir, error)

    def _changed(self, files: Mapping[str, str]) -> None:
        try:
            self._on_change(files)
        except Exception:  # refused or failed: logged, reported by GetRulesetStatus; the watcher carries on
            log.exception("activating the rules folder %s failed", self._rules_dir)

    def _resign(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        leadership, self._leadership = self._leadership, None
        if leadership is not None:
            leadership.release()
