"""How watchd words values in its log lines, --validate and --help: signals, durations, commands,
URLs, counts. Pure text functions; every module that logs uses these, so one value reads the same
everywhere."""

from __future__ import annotations

import json
import os
import signal as _signal
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit


def signal_name(signum: int) -> str:
    try:
        return _signal.Signals(signum).name.removeprefix("SIG")
    except ValueError:
        return str(signum)


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


LOG_COMMAND_MAX = 60  # characters of a command in a log line (--validate shows it whole)


def command_for_log(command: str | tuple[str, ...]) -> str:
    """A command as a short, one-line string for log lines: a multi-line script must not break the
    line, an absolute program path is shown by its name (`/srv/venv/bin/python3 app.py` ->
    `python3 app.py`), and a long command is cut at LOG_COMMAND_MAX characters."""
    if isinstance(command, str):
        text = command
    else:
        program, *args = command
        text = " ".join([os.path.basename(program) if os.path.isabs(program) else program, *args])
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= LOG_COMMAND_MAX else text[: LOG_COMMAND_MAX - 3] + "..."


def ignore_hint(patterns: Sequence[str], *, command_line: bool) -> str:
    """How the user adds `patterns` to a watch's ignores, in the syntax they started watchd with:
    `-i app.log` on the command line, `ignore: ["app.log"]` in a config file."""
    if command_line:
        import shlex  # noqa: PLC0415 (only for a warning)

        return " ".join(f"-i {shlex.quote(p)}" for p in patterns)
    return "ignore: [" + ", ".join(json.dumps(p) for p in patterns) + "]"


def describe_command(command: str | tuple[str, ...]) -> str:
    if isinstance(command, str):
        return f"sh -c {command!r}"
    return " ".join(repr(a) if (not a or " " in a) else a for a in command)


def shown_url(url: str) -> str:
    """`url` without the password of its user part, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def count(n: int, noun: str) -> str:
    """`1 file`, `3 files`, `2 directories`, `2 watches`."""
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + ("es" if noun.endswith("ch") else "s")
    return f"{n} {noun if n == 1 else plural}"


def took(seconds: float) -> str:
    """How long something took, for a log line: `12 ms`, `1.50 s`."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
