"""Reading one value from text: durations, signals, listen addresses, URLs, ${VAR} expansion.

Pure functions that raise ValueError with a message that says what to write instead; the config
reader adds where the value came from (file:line:column and key, or the command-line flag)."""

from __future__ import annotations

import os
import re
import signal as _signal
from collections.abc import Mapping
from urllib.parse import urlsplit

from watchd.logtext import format_duration
from watchd.model import ListenAddress

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+)$")


def parse_listen(text: str) -> ListenAddress:
    """'127.0.0.1:8000', '[::1]:8000', 'localhost:8000', ':8000', '8000', 'unix:/run/app.sock'.

    A bare port, or ':PORT', listens on 127.0.0.1 only: a development server is not for the
    network unless the address says so (0.0.0.0:8000, [::]:8000).
    """
    raw = text.strip()
    if raw.startswith("unix:"):
        path = raw[len("unix:") :]
        if not path:
            raise ValueError("unix: needs a socket path (write unix:/run/user/1000/app.sock)")
        if not os.path.isabs(path):
            raise ValueError(f"unix socket path {path!r} is relative (write an absolute path)")
        return ListenAddress(text=raw, path=os.path.normpath(path))
    if raw.isdigit():
        raw = "127.0.0.1:" + raw
    m = _HOST_PORT.match(raw)
    if m is None:
        raise ValueError(
            f"cannot read address {text.strip()!r} (write HOST:PORT like 127.0.0.1:8000, "
            "[::1]:8000, or unix:/path)"
        )
    port = int(m["port"])
    if port > 65535:
        raise ValueError(f"port {port} is out of range (use 1 to 65535, or 0 for any free port)")
    host = m["v6"] if m["v6"] is not None else (m["host"] or "127.0.0.1")
    if m["v6"] is not None and ":" not in host:
        raise ValueError(f"[{host}] is not an IPv6 address (write IPv4 addresses without brackets)")
    return ListenAddress(text=text.strip(), host=host, port=port)


_DURATION = re.compile(r"^\s*(-?)(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


MAX_DURATION = 24 * 3600.0  # seconds: longer is a slip (3000000h overflowed the stop's timer)


def parse_duration(text: str) -> float:
    """'250ms', '1.5s', '2m', '1h' -> seconds, at most MAX_DURATION. A bare number is refused:
    50 what? Every value an error message suggests is one this accepts."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"invalid duration {text!r} (write a number with a unit: 250ms, 1.5s, 2m)")
    sign, number, unit = m.groups()
    if sign:
        raise ValueError(f"duration {text.strip()!r} is negative (write a duration like 2s)")
    if unit is None:
        fits = [f"{number}{u}" for u in ("ms", "s") if float(number) * _UNITS[u] <= MAX_DURATION]
        hint = f"write {' or '.join(fits)}" if fits else "write a number with a unit: 250ms, 1.5s, 2m"
        raise ValueError(f"duration {text.strip()!r} has no unit ({hint})")
    seconds = float(number) * _UNITS[unit]
    if seconds > MAX_DURATION:
        raise ValueError(f"duration {text.strip()!r} is too long (at most {format_duration(MAX_DURATION)})")
    return seconds


def parse_signal(value: str | int) -> int:
    """'HUP', 'SIGHUP', 'hup', 1 or '1' -> 1."""
    text = str(value).strip()
    if text.removeprefix("-").isdigit():
        num = int(text)
        if 1 <= num < _signal.NSIG:
            return num
        raise ValueError(
            f"signal number {num} is out of range (use 1 to {_signal.NSIG - 1}, or a name like HUP)"
        )
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(_signal.Signals[name])
    except KeyError:
        raise ValueError(f"unknown signal {text!r} (use a name like HUP, USR1 or a number)") from None


_ENV = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a post action's target, or None."""
    example = "(write it like http://127.0.0.1:9090/-/reload)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL: {exc} {example}"
    if parts.scheme not in ("http", "https"):
        return f"{url!r}: only http:// and https:// URLs can be posted to {example}"
    if not parts.hostname:
        return f"{url!r} has no host {example}"
    if port == 0:
        return f"{url!r}: port 0 {example}"
    if any(c in url for c in " \r\n\t"):
        return f"{url!r} holds a space or a line break (encode it as %20)"
    return None


_ENV_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; ``$${`` is a literal ``${``."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        if m.group(1) is None:
            raise ValueError("unclosed '${' (write ${NAME}, or $${ for a literal ${)")
        body = _ENV_BODY.fullmatch(m.group(1))
        if body is None:
            raise ValueError(
                f"'${{{m.group(1)}}}' is not a variable reference (write ${{NAME}} or ${{NAME:-default}})"
            )
        name, default = body.group(1), body.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            raise ValueError(
                f"environment variable {name} is not set (set it, or write ${{{name}:-default}})"
            )
        return value

    return _ENV.sub(repl, text)
