"""File names that break naive tools: shell syntax, control characters, invalid UTF-8, NAME_MAX."""

from __future__ import annotations

import os
from pathlib import Path

# As bytes: some are not valid UTF-8. None of them may ever be run as shell text (PWNED*).
HOSTILE_NAMES = [
    b"with space.py",
    b"new\nline.py",
    b"$(touch PWNED1).py",
    b"x; touch PWNED2; .py",
    b"`touch PWNED3`.py",
    b"quote'\"both.py",
    b"-rf.py",
    b"--help",
    b"*.py",
    "ünïcode.py".encode(),
    b"bad-\xff\xfe-utf8.py",
    b"\xff\xfe",
    b"esc\x1b[2J\rcr.py",  # a terminal escape and a carriage return: must not reach the log raw
    b"L" * 252 + b".py",  # 255 bytes, NAME_MAX
    "é".encode() * 126 + b".py",  # 255 bytes in 129 characters
]
assert all(len(n) <= 255 for n in HOSTILE_NAMES)


def create_hostile_files(directory: Path) -> list[bytes]:
    """Create every hostile name in `directory`; return their absolute paths as bytes."""
    paths = [os.path.join(os.fsencode(directory), n) for n in HOSTILE_NAMES]
    for p in paths:
        with open(p, "wb") as f:
            f.write(b"x")
    return paths


def pwned_files(*roots: Path) -> list[Path]:
    """Files an injected `touch PWNED...` would have made, anywhere under `roots`."""
    return [p for r in roots for p in r.rglob("PWNED*")]
