"""`python -m tests.clockserver ...`: the civicscore server with a clock the test sets.

For behaviour that depends on the date (an extension must be asked for before the due date; an
approval counts for the quarters that end after it), a test runs the real server with
`ServerProcess(..., module="tests.clockserver")` and moves its clock with `set_clock`. The server's
clock (`Runtime.clock`: the time of requests and decisions, "today", evaluations, tokens) reads the
instant written in `clock.txt` in the server's working directory on every call; without the file it
is the real clock. Everything else is the ordinary server, `civicscore.__main__.main`.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable
from pathlib import Path

CLOCK_FILE = "clock.txt"


def set_clock(workdir: Path, moment: dt.datetime) -> None:
    """Make the server started in `workdir` read `moment` as the time (an aware datetime)."""
    if moment.tzinfo is None:
        raise ValueError("give the moment with its time zone")
    tmp = workdir / f"{CLOCK_FILE}.tmp"
    tmp.write_text(moment.isoformat(), encoding="utf-8")
    tmp.replace(workdir / CLOCK_FILE)


def file_clock(path: Path) -> Callable[[], dt.datetime]:
    """A clock reading the instant in `path` (ISO 8601 with its offset), the real clock without the file."""

    def now() -> dt.datetime:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return dt.datetime.now(dt.UTC)
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)

    return now


def main() -> int:
    import civicscore.app as app
    from civicscore.__main__ import main as serve

    clock = file_clock(Path.cwd() / CLOCK_FILE)
    app.Runtime = functools.partial(app.Runtime, clock=clock)  # type: ignore[misc]
    return serve()


if __name__ == "__main__":
    sys.exit(main())
