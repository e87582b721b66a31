"""How big, deep and costly a rule file or a case file may be (the policy staff's manual,
rules/README.md, states these numbers).

Far above what policy staff write: the default rules' largest file (tests/default_cases.yaml) is
25 KB with 1,859 values, 6 levels deep; checking the whole folder takes under a second and about
30 MB in each of its two processes. Low enough that no file, however written, can exhaust the
server: a file is refused at the first value past a limit, before anything more is read.
"""

from __future__ import annotations

MAX_FILE_BYTES = 1024 * 1024  # one rule or case file, in UTF-8 bytes
MAX_RULE_FILES = 50  # rule files in one ruleset
MAX_DEPTH = 32  # blocks and lists inside one another
MAX_NODES = 100_000  # values in one file: every key, item and text counts one
MAX_CONDITION_CHARS = 4000  # one `when` condition: room for 64 alternatives (the default rules' longest: 78)
MAX_CONDITION_DEPTH = 16  # parentheses inside one another in a `when` condition

CHECK_TIME_S = 60.0  # checking candidate rule files, test-load included (wall clock)
CHECK_MEMORY_BYTES = 512 * 1024 * 1024  # the memory the process that checks them may use
CASES_TIME_S = 120.0  # running golden cases (`civicscore rules test`), with the same memory budget


def size_text(size: int) -> str:
    """A byte count as policy staff read it: `1 MiB (1,048,576 bytes)`."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit} ({size:,} bytes)"
    return f"{size:,} bytes"
