"""YAML (or command-line) configuration -> frozen dataclasses.

This is the only module that sees raw configuration. Everything downstream gets a `Config`
made of frozen, slotted dataclasses, with every default defined once, here.

Every error is a `ConfigError` pointing at ``file:line:column`` and the key path, and says
what to write instead. PyYAML's silent "last duplicate key wins" is rejected, as are unknown
keys (with the closest valid key suggested).
"""

from __future__ import annotations

import logging
import os
import re
import signal as _signal
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar
from urllib.parse import urlsplit

from watchd import platform
from watchd.errors import ConfigError
from watchd.logtext import format_duration
from watchd.matching import check_pattern
from watchd.model import (
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_CONFIRM_TIMEOUT,
    DEFAULT_DEBOUNCE,
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_MAX_DELAY,
    DEFAULT_PIDFILE_WAIT,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SIGNAL,
    DEFAULT_STOP_SIGNAL,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_TRIES,
    PYTHON_CHECK,
    ActionSettings,
    Body,
    CheckSettings,
    CommandSettings,
    Config,
    ListenAddress,
    ListenEnv,
    OnBusy,
    OnExit,
    PidfileSettings,
    PostSettings,
    PythonCheckSettings,
    RunSettings,
    Stop,
    Watch,
)

if TYPE_CHECKING:
    import yaml

log = logging.getLogger(__name__)

# PyYAML is imported where a config file is parsed: a command-line watch never needs it, and
# it is ~10 ms of a one-liner's start.

# --------------------------------------------------------------------------- values

MAX_CONFIG_BYTES = 1024 * 1024  # a config is a page of YAML; a 50 MB one took 6 min and 3.2 GB to parse
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
_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.(service|scope)$")
_BARE_VAR = re.compile(r"(?<!\$)\$[A-Za-z_]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP method or header name (RFC 9110)


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


# --------------------------------------------------------------------------- raw tree


@dataclass(frozen=True, slots=True)
class _Val:
    """A configuration value with where it came from (line/column are 1-based; None on the CLI)."""

    value: object  # str | int | float | bool | None | list[_Val] | dict[str, _Val]
    kind: str  # "str" | "int" | "float" | "bool" | "null" | "seq" | "map" | "other"
    line: int | None = None
    column: int | None = None
    raw: str | None = None  # the scalar as written
    key_line: int | None = field(default=None, compare=False)
    key_column: int | None = field(default=None, compare=False)
    explicit: bool = field(default=True, compare=False)  # False: merged in with <<


# The tags plain YAML resolves by itself; any other (!!python/tuple, !custom) was written on purpose.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}"
    for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "merge")
)
_TAG_KINDS = {
    "tag:yaml.org,2002:str": "str",
    "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:null": "null",
}


def _from_yaml(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    source: str,
    path: str = "",
    _seen: dict[int, _Val] | None = None,
    _open: set[int] | None = None,
) -> _Val:
    """Convert a composed node, keeping positions. Aliases share one `_Val` (no blow-up)."""
    import yaml  # noqa: PLC0415 (lazy, see the module's imports)

    seen = {} if _seen is None else _seen
    open_ = set() if _open is None else _open
    if id(node) in seen:
        return seen[id(node)]
    line, col = node.start_mark.line + 1, node.start_mark.column + 1

    def check_cycle(child: yaml.Node, key: str, at: tuple[int, int]) -> None:
        # The alias's own position is gone after composing: point at its key (or its list).
        if id(child) in open_:
            raise ConfigError(
                "an alias refers to the anchor that contains it (remove the *alias)",
                source=source,
                line=at[0],
                column=at[1],
                key=key,
            )

    if node.tag not in _PLAIN_TAGS:
        raise ConfigError(
            f"YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')!r} is not allowed (remove it: "
            "watchd reads plain YAML values)",
            source=source,
            line=line,
            column=col,
            key=path or None,
        )
    open_.add(id(node))
    result: _Val
    if isinstance(node, yaml.MappingNode):
        explicit = {id(k) for k, _ in node.value}
        try:
            loader.flatten_mapping(node)  # YAML merge keys (<<: *base)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or node.start_mark
            raise ConfigError(
                f"bad merge key: {exc.problem} (write <<: *anchor or <<: [*one, *two])",
                source=source,
                line=mark.line + 1,
                column=mark.column + 1,
                key=path or None,
            ) from None
        out: dict[str, _Val] = {}
        for key_node, value_node in node.value:
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "keys must be plain names, not a list or mapping (write name: value)",
                    source=source,
                    line=kline,
                    column=kcol,
                    key=path or None,
                )
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            # Keys merged in with << are overridden by the mapping's own keys, as YAML says;
            # only a key written twice in the mapping itself is an error.
            if key in out and id(key_node) in explicit and out[key].explicit:
                raise ConfigError(
                    f"duplicate key (first defined on line {out[key].key_line}; keep only one)",
                    source=source,
                    line=kline,
                    column=kcol,
                    key=child,
                )
            check_cycle(value_node, child, (kline, kcol))
            v = _from_yaml(loader, value_node, source, child, seen, open_)
            out[key] = _Val(v.value, v.kind, v.line, v.column, v.raw, kline, kcol, id(key_node) in explicit)
        result = _Val(out, "map", line, col)
    elif isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            check_cycle(item, f"{path}[{i}]", (line, col))
            items.append(_from_yaml(loader, item, source, f"{path}[{i}]", seen, open_))
        result = _Val(items, "seq", line, col)
    else:
        assert isinstance(node, yaml.ScalarNode)
        kind = _TAG_KINDS.get(node.tag, "other")
        try:
            value = loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            value, kind = node.value, "str"  # e.g. "!!int abc": keep the text as written
        if kind == "other":
            value, kind = str(node.value), "str"  # timestamps etc.: keep the text as written
        result = _Val(value, kind, line, col, str(node.value))
    open_.discard(id(node))
    seen[id(node)] = result
    return result


def cli_value(value: object) -> _Val:
    """Wrap a command-line value (no position) for the shared validators."""
    if isinstance(value, _Val):
        return value
    if isinstance(value, bool):
        return _Val(value, "bool")
    if isinstance(value, list | tuple):
        return _Val([cli_value(v) for v in value], "seq")
    if value is None:
        return _Val(None, "null")
    return _Val(str(value), "str", raw=str(value))


# --------------------------------------------------------------------------- building

# The keys that name a watch's action: a watch has exactly one.
ACTION_KINDS = ("pidfile", "command", "run", "post")
TOP_KEYS = frozenset({"defaults", "watches"})
_WATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


_KIND_WORDS = {
    "str": "a string",
    "int": "a number",
    "float": "a number",
    "bool": "true/false",
    "null": "nothing",
    "seq": "a list",
    "map": "a mapping",
}


class _Ctx:
    """Where values come from, so errors can say so; and how to resolve them."""

    def __init__(
        self,
        source: str,
        base_dir: Path,
        env: Mapping[str, str],
        key_name: Callable[[str, str], str] | None = None,
        is_dir: Callable[[Path], bool] = os.path.isdir,
    ) -> None:
        self.source = source
        self.base_dir = base_dir
        self.env = env
        self.is_dir = is_dir  # the one question asked of the disk (a cwd exists); injectable
        self._key_name = key_name
        self.cli = key_name is not None

    def option(self, key: str) -> str:
        """How the user writes `key` where this value came from: 'pidfile' or --pidfile."""
        return self.key("", key) if self.cli else repr(key)

    def key(self, prefix: str, key: str) -> str:
        if self._key_name is not None:
            return self._key_name(prefix, key)
        return f"{prefix}.{key}" if prefix else key

    def error(self, v: _Val | None, key: str, message: str) -> ConfigError:
        line = v.line if v is not None else None
        col = v.column if v is not None else None
        # a command-line override of a config file's value: the flag is where the fix goes
        source = "watchd" if key.startswith("--") else self.source
        return ConfigError(message, source=source, line=line, column=col, key=key)

    def key_error(self, v: _Val, key: str, message: str) -> ConfigError:
        """An error about a key itself (unknown, misplaced): points at the key, not its value."""
        return ConfigError(message, source=self.source, line=v.key_line, column=v.key_column, key=key)

    def check_keys(
        self, m: _Val, allowed: frozenset[str], prefix: str, what: str, shown: frozenset[str] | None = None
    ) -> None:
        """Refuse a key not in `allowed`: suggest a close one, else list `shown` (default: all)."""
        assert isinstance(m.value, dict)
        for key, v in m.value.items():
            if key in allowed:
                continue
            import difflib  # noqa: PLC0415 (only for an error message)

            close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
            listed = ", ".join(sorted(allowed if shown is None else shown))
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {listed}"
            raise self.key_error(v, self.key(prefix, key), f"unknown key in {what} ({hint})")

    # typed getters ------------------------------------------------------------------

    def string(self, v: _Val, key: str, *, expand: bool = True, strict: bool = False) -> str:
        """A text value. `strict`: a number or true/false is refused (`paths: 5` is a slip, not a
        directory named "5"); elsewhere (a port, a signal number) it is taken as written."""
        if v.kind in ("null", "seq", "map") or v.raw is None:
            raise self.error(v, key, f"expected a string, got {_KIND_WORDS[v.kind]}")
        if strict and v.kind != "str":
            raise self.error(
                v,
                key,
                f"expected a string, got {_KIND_WORDS[v.kind]} {v.raw} "
                f"(quote it if you mean the text: '{v.raw}')",
            )
        text = v.raw if v.kind != "str" else str(v.value)
        if expand:
            try:
                text = expand_env(text, self.env)
            except ValueError as exc:
                raise self.error(v, key, str(exc)) from None
        return text

    def strings(self, v: _Val, key: str) -> tuple[str, ...]:
        """A list of strings; a single string is a list of one."""
        if v.kind == "seq":
            assert isinstance(v.value, list)
            return tuple(self.string(item, f"{key}[{i}]", strict=True) for i, item in enumerate(v.value))
        if v.kind in ("null", "map"):
            raise self.error(v, key, f"expected a list of strings, got {_KIND_WORDS[v.kind]}")
        return (self.string(v, key, strict=True),)

    def boolean(self, v: _Val, key: str) -> bool:
        if v.kind != "bool":
            got = repr(v.raw) if v.raw is not None else _KIND_WORDS[v.kind]
            raise self.error(v, key, f"expected true or false, got {got}")
        return bool(v.value)

    def duration(self, v: _Val, key: str) -> float:
        if v.kind in ("null", "seq", "map", "bool"):
            raise self.error(v, key, f"expected a duration like 250ms or 2s, got {_KIND_WORDS[v.kind]}")
        text = self.string(v, key)  # numbers as written, so "50" gets the no-unit message
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise self.error(v, key, str(exc)) from None

    def signal(self, v: _Val, key: str) -> int:
        # The number as written: YAML 1.1 reads "010" as octal 8, and nobody means SIGFPE.
        raw = self.string(v, key)
        try:
            return parse_signal(raw)
        except ValueError as exc:
            raise self.error(v, key, str(exc)) from None

    def _choice(self, v: _Val, key: str, choices: type[E], tail: str = "") -> E:
        text = self.string(v, key)
        word = text.strip().lower()
        try:
            return choices(word)
        except ValueError:
            names = [c.value for c in choices]
            import difflib  # noqa: PLC0415 (only for an error message)

            close = difflib.get_close_matches(word, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
            raise self.error(v, key, f"unknown value {text!r} ({hint}use {listed}{tail})") from None

    def on_busy(self, v: _Val, key: str) -> OnBusy:
        return self._choice(v, key, OnBusy)

    def on_exit(self, v: _Val, key: str) -> OnExit:
        return self._choice(v, key, OnExit)

    def body(self, v: _Val, key: str) -> Body:
        return self._choice(v, key, Body, ", or leave it out for an empty body")

    def url(self, v: _Val, key: str) -> str:
        text = self.string(v, key, strict=True).strip()
        why = url_problem(text)
        if why is not None:
            raise self.error(v, key, why)
        return text

    def method(self, v: _Val, key: str) -> str:
        text = self.string(v, key, strict=True).strip().upper()
        if not _TOKEN.fullmatch(text):
            raise self.error(v, key, f"{text!r} is not an HTTP method (write POST, PUT or GET)")
        return text

    def tries(self, v: _Val, key: str) -> int:
        text = self.string(v, key)
        if not text.isdigit() or int(text) < 1:
            raise self.error(v, key, f"expected a number of tries, 1 or more, got {text!r}")
        return int(text)

    def headers(self, v: _Val, key: str) -> tuple[tuple[str, str], ...]:
        """A mapping of header names to values (the one-liner: `--header 'Name: value'`, repeated)."""
        pairs: list[tuple[_Val, str, str]] = []
        if v.kind == "map":
            assert isinstance(v.value, dict)
            pairs = [(item, name, self.string(item, f"{key}.{name}")) for name, item in v.value.items()]
        elif v.kind == "seq":
            assert isinstance(v.value, list)
            for i, item in enumerate(v.value):
                name, sep, value = self.string(item, f"{key}[{i}]").partition(":")
                if not sep:
                    raise self.error(item, f"{key}[{i}]", "expected 'Name: value'")
                pairs.append((item, name.strip(), value.strip()))
        else:
            raise self.error(
                v, key, f"expected a mapping of header names to values, got {_KIND_WORDS[v.kind]}"
            )
        for item, name, value in pairs:
            if not _TOKEN.fullmatch(name):
                raise self.error(item, key, f"{name!r} is not a header name (letters, digits and -)")
            if "\r" in value or "\n" in value:
                raise self.error(item, key, f"the value of {name} holds a line break (remove it)")
        return tuple((name, value) for _, name, value in pairs)

    def listen_env(self, v: _Val, key: str) -> ListenEnv:
        return self._choice(v, key, ListenEnv, ", or leave it out: LISTEN_FDS is always set")

    def listen(self, v: _Val, key: str) -> ListenAddress:
        text = self.string(v, key)
        try:
            address = parse_listen(text)
        except ValueError as exc:
            raise self.error(v, key, str(exc)) from None
        return replace(address, where=str(self.error(v, key, "")).removesuffix(": "))

    def unit(self, v: _Val, key: str) -> str:
        # Said here, not at the first signal: the check reads the target's systemd cgroup,
        # which only Linux has; --validate on a Mac should say so too.
        if platform.current.NAME != "linux":
            raise self.error(v, key, "only works on Linux (systemd cgroups); remove it")
        text = self.string(v, key, strict=True).strip()
        if not _UNIT.match(text):
            raise self.error(
                v,
                key,
                f"{text!r} is not a systemd unit name (write the service's full name, e.g. gunicorn.service)",
            )
        return text

    def command(self, v: _Val, key: str) -> str | tuple[str, ...]:
        return _command(self, v, key)

    def path(self, v: _Val, key: str) -> Path:
        text = self.string(v, key, strict=True)
        if v.raw is not None and _BARE_VAR.search(v.raw):
            log.warning(
                "%s",
                self.error(
                    v,
                    key,
                    f"{v.raw!r} has a $NAME without braces: it stays as written "
                    "(write ${NAME} to use the environment variable)",
                ),
            )
        if not text:
            raise self.error(v, key, "empty path (write a directory or file name)")
        home = self.env.get("HOME")
        if home and (text == "~" or text.startswith("~/")):
            text = home + text[1:]  # the same environment as ${VAR}, not always os.environ
        p = Path(os.path.expanduser(text))
        if not p.is_absolute():
            p = self.base_dir / p
        return Path(os.path.normpath(p))


ALL_ACTIONS = frozenset(ACTION_KINDS)


@dataclass(frozen=True, slots=True)
class _Key:
    """One config key: how to read it, which actions it applies to, and its one-liner flag."""

    convert: Callable[[_Ctx, _Val, str], object]
    actions: frozenset[str] = ALL_ACTIONS  # the action kinds it applies to
    flag: str | None = None  # the one-liner's option, when not --the-key-with-dashes


def _on(*kinds: str) -> frozenset[str]:
    return frozenset(kinds)


# Every watch key, once: the file parser, the defaults check, the one-liner's flags and the
# overrides of a config file all read this table, so none of them can skip a validation.
KEYS: dict[str, _Key] = {
    "paths": _Key(_Ctx.strings, flag="PATH"),
    "patterns": _Key(_Ctx.strings, flag="--pattern"),
    "ignore": _Key(_Ctx.strings, flag="--ignore"),
    "ignore_defaults": _Key(_Ctx.boolean, flag="--no-default-ignores"),
    "ignore_directories": _Key(_Ctx.boolean),
    "gitignore": _Key(_Ctx.boolean),
    "debounce": _Key(_Ctx.duration),
    "max_delay": _Key(_Ctx.duration),
    "poll": _Key(_Ctx.boolean),
    "poll_interval": _Key(_Ctx.duration),
    "cwd": _Key(_Ctx.path),
    "check": _Key(_Ctx.command),
    "check_timeout": _Key(_Ctx.duration),
    # the signal action
    "pidfile": _Key(_Ctx.path, _on("pidfile")),
    "signal": _Key(_Ctx.signal, _on("pidfile")),
    "expect": _Key(_Ctx.string, _on("pidfile")),
    "pidfile_wait": _Key(_Ctx.duration, _on("pidfile")),
    "confirm": _Key(_Ctx.boolean, _on("pidfile"), flag="--no-confirm"),
    "confirm_timeout": _Key(_Ctx.duration, _on("pidfile")),
    "unit": _Key(_Ctx.unit, _on("pidfile")),
    # the command action
    "command": _Key(_Ctx.command, _on("command")),
    "timeout": _Key(_Ctx.duration, _on("command")),
    "on_busy": _Key(_Ctx.on_busy, _on("command")),
    # the run action
    "run": _Key(_Ctx.command, _on("run")),
    "on_exit": _Key(_Ctx.on_exit, _on("run")),
    "listen": _Key(_Ctx.listen, _on("run")),
    "listen_env": _Key(_Ctx.listen_env, _on("run")),
    "watch_imports": _Key(_Ctx.boolean, _on("run")),
    # stopping a process group: command and run
    "stop_signal": _Key(_Ctx.signal, _on("command", "run")),
    "stop_timeout": _Key(_Ctx.duration, _on("command", "run")),
    "clear": _Key(_Ctx.boolean, _on("command", "run")),
    # the post action
    "post": _Key(_Ctx.url, _on("post")),
    "method": _Key(_Ctx.method, _on("post")),
    "headers": _Key(_Ctx.headers, _on("post"), flag="--header"),
    "http_timeout": _Key(_Ctx.duration, _on("post")),
    "tries": _Key(_Ctx.tries, _on("post")),
    "body": _Key(_Ctx.body, _on("post")),
}
WATCH_KEYS = frozenset(KEYS)
DEFAULTS_KEYS = WATCH_KEYS - ALL_ACTIONS
# Beside --config, a one-liner option overrides its key in every watch of the file it applies
# to (--debounce 1s, -p '*.py', --timeout 5m ...); what makes a watch -- PATH, its action, the
# address its app listens on (one per app) -- belongs in the file.
OVERRIDE_KEYS = WATCH_KEYS - ALL_ACTIONS - {"paths", "listen"}


def cli_flag(key: str) -> str:
    """The one-liner option for a config key: --pidfile, --no-confirm, PATH."""
    spec = KEYS.get(key)
    return spec.flag if spec is not None and spec.flag else f"--{key.replace('_', '-')}"


def _items(v: _Val) -> list[_Val]:
    """The items of a list value; a single value is a list of one."""
    if v.kind == "seq":
        assert isinstance(v.value, list)
        return v.value
    return [v]


def _list_item(ctx: _Ctx, v: _Val, key: str, i: int) -> tuple[_Val, str]:
    """Item `i` of a list value (a single value is a list of one) and how errors name it:
    `patterns[1]` in a file, the flag alone on the command line."""
    if v.kind == "seq" and isinstance(v.value, list):
        item = v.value[i]
        assert isinstance(item, _Val)
        return item, key if ctx.cli else f"{key}[{i}]"
    return v, key


def _validate_patterns(ctx: _Ctx, v: _Val, key: str, patterns: Sequence[str]) -> None:
    for i, pattern in enumerate(patterns):
        problem = check_pattern(pattern)
        if problem:
            raise ctx.error(*_list_item(ctx, v, key, i), problem)


def _warn_absolute_patterns(
    ctx: _Ctx, v: _Val, key: str, patterns: Sequence[str], paths: Sequence[Path]
) -> None:
    """Warn about a pattern written as a file system path (`/home/me/app/src/*.py`): patterns are
    relative to each watched path, where a leading / anchors them, so it matches nothing."""
    for i, pattern in enumerate(patterns):
        bare = pattern.removeprefix("!")
        if not bare.startswith("/") or bare.count("/") < 2:
            continue
        first = "/" + bare.split("/")[1]
        if not ctx.is_dir(Path(first)) or any(ctx.is_dir(p / first[1:]) for p in paths):
            continue  # `/build/`: anchored to the watched path, as meant
        inside = [p for p in paths if bare.startswith(f"{p}/")]
        if inside:
            rel = bare[len(str(inside[0])) :]
            better = f"{pattern[: len(pattern) - len(bare)]}{rel}"
            fix = f"write {better!r}, which matches it under {inside[0]}"
        else:
            fix = "write it relative to the watched path, or watch its directory"
        log.warning(
            "%s",
            ctx.error(
                *_list_item(ctx, v, key, i),
                f"{pattern!r} is a file system path, but patterns are relative to each watched path "
                f"(a leading / anchors one there), so it matches nothing: {fix}",
            ),
        )


def _build_watch(
    ctx: _Ctx,
    name: str,
    wv: _Val,
    defaults: _Val | None,
    prefix: str,
    *,
    overrides: Mapping[str, _Val] | None = None,
) -> Watch:
    """One watch from its own keys, the file's `defaults:` and command-line `overrides`
    (which win over both: `watchd --config dev.yaml --debounce 1s`)."""
    assert isinstance(wv.value, dict)
    own: dict[str, _Val] = wv.value
    inherited: dict[str, _Val] = defaults.value if defaults is not None else {}  # type: ignore[assignment]
    forced: Mapping[str, _Val] = overrides or {}
    kinds_given = [k for k in ACTION_KINDS if k in wv.value]
    # the keys of this watch's action, when it has one: the others would be an error anyway
    shown = frozenset(k for k in WATCH_KEYS if kinds_given[0] in KEYS[k].actions) if kinds_given else None
    ctx.check_keys(wv, WATCH_KEYS, prefix, f"watch {name!r}", shown)

    def get(key: str) -> tuple[_Val, str] | None:
        if key in forced:
            return forced[key], cli_flag(key)
        if key in own:
            return own[key], ctx.key(prefix, key)
        if key in inherited:
            return inherited[key], ctx.key("defaults", key)
        return None

    def opt(key: str, conv: Callable[[_Ctx, _Val, str], T], default: T) -> T:
        got = get(key)
        return default if got is None else conv(ctx, *got)

    def positive(key: str, message: str) -> None:
        got = get(key)
        assert got is not None
        raise ctx.error(got[0], got[1], message)

    got_paths = get("paths")
    if got_paths is None:
        raise ctx.error(wv, prefix, "no 'paths' (add paths: [DIR, ...] listing what to watch)")
    paths = ctx.strings(*got_paths)
    if not paths:
        raise ctx.error(got_paths[0], got_paths[1], "empty list (name at least one directory or file)")
    path_vals = _items(got_paths[0])
    resolved_paths = tuple(ctx.path(p, f"{got_paths[1]}[{i}]") for i, p in enumerate(path_vals))

    patterns: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    for key in ("patterns", "ignore"):
        got = get(key)
        if got is not None:
            values = ctx.strings(*got)
            _validate_patterns(ctx, got[0], got[1], values)
            _warn_absolute_patterns(ctx, got[0], got[1], values, resolved_paths)
            if key == "patterns":
                patterns = values
            else:
                ignore = values

    debounce = opt("debounce", _Ctx.duration, DEFAULT_DEBOUNCE)
    max_delay = opt("max_delay", _Ctx.duration, DEFAULT_MAX_DELAY)
    if max_delay <= 0:
        positive("max_delay", "must be longer than 0s (the longest a batch may wait, e.g. 2s)")
    if max_delay < debounce:
        _timing_conflict(
            ctx,
            name,
            debounce=debounce,
            max_delay=max_delay,
            get=get,
            own=own,
            inherited=inherited,
            forced=forced,
        )
    poll_interval = opt("poll_interval", _Ctx.duration, DEFAULT_POLL_INTERVAL)
    if poll_interval <= 0:
        positive("poll_interval", "must be longer than 0s (e.g. 1s)")

    kinds = [k for k in ACTION_KINDS if k in own]
    if len(kinds) > 1:
        both = " and ".join(ctx.option(k) for k in kinds)
        raise ctx.error(wv, prefix, f"both {both} given (a watch has exactly one action: remove one)")
    if not kinds:
        if ctx.cli:
            hint = (
                "give --pidfile FILE to signal a server, --command CMD to run a command, "
                "--run CMD (or -- PROGRAM ARGS) to run an app and restart it, or --post URL to send a request"
            )
        else:
            hint = (
                "add 'pidfile: FILE' to signal a server, 'command: CMD' to run a command, "
                "'run: CMD' to run an app and restart it, or 'post: URL' to send a request"
            )
        raise ctx.error(wv, prefix, f"no action ({hint})")
    kind = kinds[0]
    for key, v in own.items():
        applies = KEYS[key].actions
        if kind not in applies:
            need = " or ".join(ctx.option(k) for k in ACTION_KINDS if k in applies)
            raise ctx.key_error(v, ctx.key(prefix, key), f"only applies to watches with {need} (remove it)")

    cwd = opt("cwd", _Ctx.path, ctx.base_dir)
    if (got_cwd := get("cwd")) is not None and not ctx.is_dir(cwd):
        # found now, not as an error at every change (the command, app or check runs there)
        raise ctx.error(got_cwd[0], got_cwd[1], f"no directory {cwd} (create it, or correct the path)")
    stop = Stop()
    if kind in KEYS["stop_timeout"].actions:
        stop_timeout = opt("stop_timeout", _Ctx.duration, DEFAULT_STOP_TIMEOUT)
        if stop_timeout <= 0:
            positive("stop_timeout", "must be longer than 0s (how long to wait before KILL, e.g. 5s)")
        stop = Stop(opt("stop_signal", _Ctx.signal, DEFAULT_STOP_SIGNAL), stop_timeout)

    action: ActionSettings
    if kind == "pidfile":
        confirm_timeout = opt("confirm_timeout", _Ctx.duration, DEFAULT_CONFIRM_TIMEOUT)
        if confirm_timeout <= 0:
            off = "give --no-confirm" if ctx.cli else "set confirm: false"
            positive("confirm_timeout", f"must be longer than 0s (e.g. 10s), or {off}")
        action = PidfileSettings(
            pidfile=ctx.path(own["pidfile"], ctx.key(prefix, "pidfile")),
            signal=opt("signal", _Ctx.signal, DEFAULT_SIGNAL),
            expect=opt("expect", _Ctx.string, None) or None,
            pidfile_wait=opt("pidfile_wait", _Ctx.duration, DEFAULT_PIDFILE_WAIT),
            confirm=opt("confirm", _Ctx.boolean, True),
            confirm_timeout=confirm_timeout,
            unit=opt("unit", _Ctx.unit, None),
        )
    elif kind == "command":
        timeout = opt("timeout", _Ctx.duration, None)
        if timeout is not None and timeout <= 0:
            positive("timeout", "must be longer than 0s (or leave it out for no timeout)")
        action = CommandSettings(
            command=_command(ctx, own["command"], ctx.key(prefix, "command")),
            cwd=cwd,
            timeout=timeout,
            on_busy=opt("on_busy", _Ctx.on_busy, OnBusy.QUEUE),
            stop=stop,
            clear=opt("clear", _Ctx.boolean, False),
        )
    elif kind == "post":
        http_timeout = opt("http_timeout", _Ctx.duration, DEFAULT_HTTP_TIMEOUT)
        if http_timeout <= 0:
            positive("http_timeout", "must be longer than 0s (e.g. 5s)")
        action = PostSettings(
            url=ctx.url(own["post"], ctx.key(prefix, "post")),
            method=opt("method", _Ctx.method, "POST"),
            headers=opt("headers", _Ctx.headers, ()),
            timeout=http_timeout,
            tries=opt("tries", _Ctx.tries, DEFAULT_TRIES),
            body=opt("body", _Ctx.body, None),
        )
    else:
        listen = opt("listen", _Ctx.listen, None)
        listen_env = opt("listen_env", _Ctx.listen_env, None)
        if listen_env is not None and listen is None:
            got = get("listen_env")
            assert got is not None
            raise ctx.error(
                got[0], got[1], f"needs {ctx.option('listen')} too (the socket it describes: add it)"
            )
        action = RunSettings(
            command=_command(ctx, own["run"], ctx.key(prefix, "run")),
            cwd=cwd,
            stop=stop,
            on_exit=opt("on_exit", _Ctx.on_exit, OnExit.WAIT),
            listen=listen,
            listen_env=listen_env,
            clear=opt("clear", _Ctx.boolean, False),
            watch_imports=opt("watch_imports", _Ctx.boolean, False),
        )

    check: CheckSettings | PythonCheckSettings | None = None
    got = get("check")
    if got is not None and got[0].kind == "str" and got[0].value == PYTHON_CHECK:
        if "check_timeout" in own:
            raise ctx.key_error(
                own["check_timeout"],
                ctx.key(prefix, "check_timeout"),
                "only applies to a command check, not to python (remove it)",
            )
        check = PythonCheckSettings()
    elif got is not None:
        check_timeout = opt("check_timeout", _Ctx.duration, DEFAULT_CHECK_TIMEOUT)
        if check_timeout <= 0:
            positive("check_timeout", "must be longer than 0s (e.g. 60s)")
        check = CheckSettings(_command(ctx, *got), cwd, check_timeout)
    elif "check_timeout" in own:
        v = own["check_timeout"]
        raise ctx.key_error(
            v,
            ctx.key(prefix, "check_timeout"),
            f"only applies to watches with {ctx.option('check')} (remove it)",
        )

    return Watch(
        name=name,
        paths=resolved_paths,
        action=action,
        patterns=patterns,
        ignore=ignore,
        ignore_defaults=opt("ignore_defaults", _Ctx.boolean, True),
        ignore_directories=opt("ignore_directories", _Ctx.boolean, False),
        gitignore=opt("gitignore", _Ctx.boolean, False),
        debounce=debounce,
        max_delay=max_delay,
        poll=opt("poll", _Ctx.boolean, False),
        poll_interval=poll_interval,
        check=check,
    )


def _timing_conflict(
    ctx: _Ctx,
    name: str,
    *,
    debounce: float,
    max_delay: float,
    get: Callable[[str], tuple[_Val, str] | None],
    own: Mapping[str, _Val],
    inherited: Mapping[str, _Val],
    forced: Mapping[str, _Val],
) -> NoReturn:
    """max_delay < debounce: point at what the user set last (a flag, the watch, defaults)."""
    d, md = format_duration(debounce), format_duration(max_delay)
    if "debounce" in forced or "max_delay" in forced:
        key = "max_delay" if "max_delay" in forced else "debounce"
        got = get(key)
        assert got is not None
        where = f" for watch {name!r}" if ctx.source != "watchd" else ""
        raise ctx.error(
            got[0],
            got[1],
            f"max delay {md} is shorter than debounce {d}{where} (raise --max-delay)",
        )
    if "max_delay" in own or ("debounce" not in own and "max_delay" in inherited):
        got = get("max_delay")
        message = f"max_delay {md} is shorter than debounce {d} (make it {d} or more)"
    else:
        got = get("debounce")
        which = "defaults.max_delay" if "max_delay" in inherited else "the default max_delay"
        setting = f"--max-delay {d}" if ctx.cli else f"max_delay: {d}"
        message = f"debounce {d} is longer than {which} {md} (add {setting} or more, or shorten debounce)"
    assert got is not None
    raise ctx.error(got[0], got[1], message)


def _check_defaults(ctx: _Ctx, defaults: _Val) -> None:
    """Validate every default's value now, even one that applies to no watch of this file:
    `defaults: {signal: HUPP}` is a mistake whether or not a watch uses it yet."""
    assert isinstance(defaults.value, dict)
    for key, v in defaults.value.items():
        KEYS[key].convert(ctx, v, f"defaults.{key}")


def _command(ctx: _Ctx, cv: _Val, ckey: str) -> str | tuple[str, ...]:
    """A command: a string (run with /bin/sh -c) or a list of arguments (run without a shell).

    The shell expands ${VAR} in a string command at run time (that is how $WATCHD_PATH works),
    so watchd leaves commands as written.
    """
    if cv.kind == "seq":
        assert isinstance(cv.value, list)
        command = tuple(
            ctx.string(a, f"{ckey}[{i}]", expand=False, strict=True) for i, a in enumerate(cv.value)
        )
        if not command or not command[0]:
            raise ctx.error(cv, ckey, "empty command (write the program and its arguments)")
        return command
    text = ctx.string(cv, ckey, expand=False, strict=True)
    if not text.strip():
        raise ctx.error(cv, ckey, "empty command (write a shell command, e.g. make css)")
    return text


def _compose(text: str, source: str) -> yaml.Node | None:
    """The YAML text as one node tree, or None if it is empty; syntax errors as ConfigError."""
    import yaml  # noqa: PLC0415 (lazy, see the module's imports)
    from yaml.composer import ComposerError  # noqa: PLC0415
    from yaml.reader import ReaderError  # noqa: PLC0415

    def error(message: str, mark: yaml.Mark | None) -> ConfigError:
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        return ConfigError(message, source=source, line=line, column=column)

    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters already
        return loader.get_single_node()
    except ReaderError as exc:
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise ConfigError(
            f"YAML syntax error: control character #x{exc.character:04x} is not allowed "
            '(remove it, or write it as an escape in a "double-quoted" string)',
            source=source,
            line=line,
            column=column,
        ) from None
    except ComposerError as exc:
        if exc.problem == "but found another document":
            raise error(
                "YAML syntax error: more than one document (remove the second '---' and what follows)",
                exc.problem_mark,
            ) from None
        raise error(f"YAML error: {exc.problem} (check anchors and aliases)", exc.problem_mark) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        hint = (
            "indent with spaces, not tabs" if "'\\t'" in problem else "check indentation, colons and quoting"
        )
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and "${" in lines[mark.line]:
            hint = 'quote values that contain ${...}, e.g. ["${APP_DIR}/src"]: in YAML { starts a mapping'
        if exc.context and exc.context.startswith("while ") and exc.context_mark is not None:
            started = exc.context.split(" ", 2)[-1]  # "while parsing a flow sequence" -> "a flow ..."
            if exc.context_mark.line != (mark.line if mark else None):
                hint = f"in {started} started on line {exc.context_mark.line + 1}: {hint}"
        raise error(f"YAML syntax error: {problem} ({hint})", mark) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"YAML error: {exc} (check the file's encoding and syntax)", source=source
        ) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply (flatten the structure)", source=source) from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_config(
    text: str,
    *,
    source: str,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    is_dir: Callable[[Path], bool] = os.path.isdir,
) -> Config:
    """Parse YAML text. `source` names the file in errors; relative paths resolve from `base_dir`.

    `overrides` are command-line values (keys as in YAML, None for unset) that replace the
    matching key of every watch; only OVERRIDE_KEYS may be given. They are validated like the
    file's own values, and errors name the flag.
    """
    import yaml  # noqa: PLC0415 (lazy, see the module's imports)

    ctx = _Ctx(source, base_dir, os.environ if env is None else env, is_dir=is_dir)
    node = _compose(text, source)
    if node is None:
        raise ConfigError(
            "empty config (define watches: with at least one watch)", source=source, line=1, column=1
        )
    top = _from_yaml(yaml.SafeLoader(""), node, source)
    if top.kind != "map":
        raise ctx.error(
            top, "", f"expected a mapping with a 'watches' key at the top level, got {_KIND_WORDS[top.kind]}"
        )
    ctx.check_keys(top, TOP_KEYS, "", "the top level")
    assert isinstance(top.value, dict)
    forced = {k: cli_value(v) for k, v in (overrides or {}).items() if v is not None}
    assert forced.keys() <= OVERRIDE_KEYS, f"not overridable: {sorted(forced.keys() - OVERRIDE_KEYS)}"
    defaults = top.value.get("defaults")
    if defaults is not None:
        if defaults.kind == "null":
            defaults = None
        elif defaults.kind != "map":
            raise ctx.error(
                defaults, "defaults", f"expected a mapping of keys, got {_KIND_WORDS[defaults.kind]}"
            )
        else:
            assert isinstance(defaults.value, dict)
            if "listen" in defaults.value:
                v = defaults.value["listen"]
                raise ctx.key_error(
                    v,
                    "defaults.listen",
                    "an address cannot be a default (give each run watch its own listen)",
                )
            for key in sorted(ALL_ACTIONS & defaults.value.keys()):
                v = defaults.value[key]
                raise ConfigError(
                    "an action cannot be a default (give each watch its own pidfile or command)",
                    source=source,
                    line=v.key_line,
                    column=v.key_column,
                    key=f"defaults.{key}",
                )
            ctx.check_keys(defaults, DEFAULTS_KEYS, "defaults", "defaults")
            _check_defaults(ctx, defaults)
    watches_v = top.value.get("watches")
    if watches_v is None:
        raise ctx.error(top, "", "no 'watches' (add watches: with at least one named watch)")
    if watches_v.kind == "null" or (watches_v.kind == "map" and not watches_v.value):
        raise ctx.error(watches_v, "watches", "empty (define at least one named watch under it)")
    if watches_v.kind != "map":
        raise ctx.error(
            watches_v, "watches", f"expected a mapping of named watches, got {_KIND_WORDS[watches_v.kind]}"
        )
    assert isinstance(watches_v.value, dict)
    watches: list[Watch] = []
    for name, wv in watches_v.value.items():
        prefix = f"watches.{name}"
        if not _WATCH_NAME.match(name):
            raise ConfigError(
                f"bad watch name {name!r} (use letters, digits, '_', '-', '.' or '@')",
                source=source,
                line=wv.key_line,
                column=wv.key_column,
                key=prefix,
            )
        if wv.kind != "map":
            raise ctx.error(
                wv, prefix, f"expected a mapping of keys (paths, patterns, ...), got {_KIND_WORDS[wv.kind]}"
            )
        watch = _build_watch(ctx, name, wv, defaults, prefix, overrides=forced)
        if isinstance(watch.action, RunSettings) and watch.action.listen is not None:
            address = watch.action.listen
            other = next(
                (
                    w
                    for w in watches
                    if isinstance(w.action, RunSettings)
                    and w.action.listen
                    and w.action.listen.describe() == address.describe()
                ),
                None,
            )
            if other is not None:
                assert isinstance(wv.value, dict)
                raise ctx.error(
                    wv.value["listen"],
                    f"{prefix}.listen",
                    f"{address.describe()} is watch {other.name!r}'s address too (give each app its own)",
                )
        watches.append(watch)
    for key in sorted(forced):
        if not any(w.action.kind in KEYS[key].actions for w in watches):
            need = " or ".join(k for k in ACTION_KINDS if k in KEYS[key].actions)
            raise ConfigError(
                f"applies to watches with {need}, and {source} has none (leave it out)",
                source="watchd",
                key=cli_flag(key),
            )
    return Config(watches=tuple(watches))


def load_config(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Read and parse a config file; relative paths in it resolve from its directory."""
    shown = os.fspath(path)
    try:
        st = os.stat(path)  # before opening: a FIFO would block, /dev/zero never end
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(
                "is not a regular file (a FIFO, device or socket): pass a .yaml file", source=shown
            )
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"is {st.st_size:,} bytes: a config is at most {MAX_CONFIG_BYTES:,} "
                "(is this the right file?)",
                source=shown,
            )
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"is larger than {MAX_CONFIG_BYTES:,} bytes (is this the right file?)", source=shown
            )
    except FileNotFoundError:
        raise ConfigError("config file not found (check the path given to --config)", source=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file (pass a .yaml file)", source=shown) from None
    except PermissionError:
        raise ConfigError(
            "permission denied reading the config (check its mode and owner)", source=shown
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text at byte {exc.start} (save the file as UTF-8)", source=shown
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror}", source=shown) from None
    absolute = Path(os.path.abspath(path))
    cfg = parse_config(text, source=shown, base_dir=absolute.parent, env=env, overrides=overrides)
    return Config(watches=cfg.watches, source=absolute)


def _cli_key_name(prefix: str, key: str) -> str:
    return cli_flag(key)


def config_from_options(
    options: Mapping[str, object],
    *,
    name: str = "cli",
    base_dir: Path | None = None,
    is_dir: Callable[[Path], bool] = os.path.isdir,
) -> Config:
    """Build a one-watch config from command-line values (keys as in YAML; unset ones left out).

    The same validators as the YAML path run, so both report the same problems; errors name
    the command-line flag instead of a file position.
    """
    ctx = _Ctx("watchd", base_dir or Path.cwd(), os.environ, _cli_key_name, is_dir)
    wv = _Val({k: cli_value(v) for k, v in options.items() if v is not None}, "map")
    return Config(watches=(_build_watch(ctx, name, wv, None, ""),))
