"""Reading a watch key's value, with where it came from: the readers the schema's keys name.

A `Reader` knows the source (a config file, or the command line), the directory relative paths
resolve from and the environment ${VAR} expands from; each method turns one `Val` into a model
value or raises a ConfigError that points at it (file:line:column and key path, or the flag).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from watchd import platform
from watchd.environment import dotenv_problem
from watchd.errors import ConfigError
from watchd.matching import check_pattern
from watchd.model import (
    PYTHON_CHECK,
    Body,
    ListenAddress,
    ListenEnv,
    OnBusy,
    OnExit,
    Poll,
    Preload,
    PythonCheckSettings,
)
from watchd.values import expand_env, parse_duration, parse_listen, parse_signal, url_problem
from watchd.yamltree import Val

log = logging.getLogger("watchd.config")

E = TypeVar("E", bound=StrEnum)

_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.(service|scope)$")
_BARE_VAR = re.compile(r"(?<!\$)\$[A-Za-z_]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP method or header name (RFC 9110)

KIND_WORDS = {
    "str": "a string",
    "int": "a number",
    "float": "a number",
    "bool": "true/false",
    "null": "nothing",
    "seq": "a list",
    "map": "a mapping",
}


class Reader:
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

    def error(self, v: Val | None, key: str, message: str) -> ConfigError:
        line = v.line if v is not None else None
        col = v.column if v is not None else None
        # a command-line override of a config file's value: the flag is where the fix goes
        source = "watchd" if key.startswith("--") else self.source
        return ConfigError(message, source=source, line=line, column=col, key=key)

    def key_error(self, v: Val, key: str, message: str) -> ConfigError:
        """An error about a key itself (unknown, misplaced): points at the key, not its value."""
        return ConfigError(message, source=self.source, line=v.key_line, column=v.key_column, key=key)

    def check_keys(
        self, m: Val, allowed: frozenset[str], prefix: str, what: str, shown: frozenset[str] | None = None
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

    def string(self, v: Val, key: str, *, expand: bool = True, strict: bool = False) -> str:
        """A text value. `strict`: a number or true/false is refused (`paths: 5` is a slip, not a
        directory named "5"); elsewhere (a port, a signal number) it is taken as written."""
        if v.kind in ("null", "seq", "map") or v.raw is None:
            raise self.error(v, key, f"expected a string, got {KIND_WORDS[v.kind]}")
        if strict and v.kind != "str":
            raise self.error(
                v,
                key,
                f"expected a string, got {KIND_WORDS[v.kind]} {v.raw} "
                f"(quote it if you mean the text: '{v.raw}')",
            )
        text = v.raw if v.kind != "str" else str(v.value)
        if expand:
            try:
                text = expand_env(text, self.env)
            except ValueError as exc:
                raise self.error(v, key, str(exc)) from None
        return text

    def strings(self, v: Val, key: str) -> tuple[str, ...]:
        """A list of strings; a single string is a list of one."""
        if v.kind == "seq":
            assert isinstance(v.value, list)
            return tuple(self.string(item, f"{key}[{i}]", strict=True) for i, item in enumerate(v.value))
        if v.kind in ("null", "map"):
            raise self.error(v, key, f"expected a list of strings, got {KIND_WORDS[v.kind]}")
        return (self.string(v, key, strict=True),)

    def boolean(self, v: Val, key: str) -> bool:
        if v.kind != "bool":
            got = repr(v.raw) if v.raw is not None else KIND_WORDS[v.kind]
            raise self.error(v, key, f"expected true or false, got {got}")
        return bool(v.value)

    def duration(self, v: Val, key: str) -> float:
        if v.kind in ("null", "seq", "map", "bool"):
            raise self.error(v, key, f"expected a duration like 250ms or 2s, got {KIND_WORDS[v.kind]}")
        text = self.string(v, key)  # numbers as written, so "50" gets the no-unit message
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise self.error(v, key, str(exc)) from None

    def duration_or_off(self, v: Val, key: str) -> float | None:
        """A duration, or off (also YAML's false): None."""
        if v.kind == "bool":
            if v.value is False:
                return None
            raise self.error(v, key, "expected a duration like 30s, or off")
        if v.kind == "str" and self.string(v, key).strip().lower() == "off":
            return None
        return self.duration(v, key)

    def signal(self, v: Val, key: str) -> int:
        # The number as written: YAML 1.1 reads "010" as octal 8, and nobody means SIGFPE.
        raw = self.string(v, key)
        try:
            return parse_signal(raw)
        except ValueError as exc:
            raise self.error(v, key, str(exc)) from None

    def _choice(self, v: Val, key: str, choices: type[E], tail: str = "") -> E:
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

    def poll(self, v: Val, key: str) -> Poll:
        """true, false or auto."""
        if v.kind == "bool":
            return Poll.ALWAYS if v.value else Poll.NEVER
        text = self.string(v, key)
        if text.strip().lower() != Poll.AUTO:
            raise self.error(v, key, f"expected true, false or auto, got {text!r}")
        return Poll.AUTO

    def on_busy(self, v: Val, key: str) -> OnBusy:
        return self._choice(v, key, OnBusy)

    def on_exit(self, v: Val, key: str) -> OnExit:
        return self._choice(v, key, OnExit)

    def preload(self, v: Val, key: str) -> Preload:
        return self._choice(v, key, Preload)

    def body(self, v: Val, key: str) -> Body:
        return self._choice(v, key, Body, ", or leave it out for an empty body")

    def url(self, v: Val, key: str) -> str:
        text = self.string(v, key, strict=True).strip()
        why = url_problem(text)
        if why is not None:
            raise self.error(v, key, why)
        return text

    def method(self, v: Val, key: str) -> str:
        text = self.string(v, key, strict=True).strip().upper()
        if not _TOKEN.fullmatch(text):
            raise self.error(v, key, f"{text!r} is not an HTTP method (write POST, PUT or GET)")
        return text

    def tries(self, v: Val, key: str) -> int:
        text = self.string(v, key)
        if not text.isdigit() or int(text) < 1:
            raise self.error(v, key, f"expected a number of tries, 1 or more, got {text!r}")
        return int(text)

    def headers(self, v: Val, key: str) -> tuple[tuple[str, str], ...]:
        """A mapping of header names to values (the one-liner: `--header 'Name: value'`, repeated)."""
        pairs: list[tuple[Val, str, str]] = []
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
                v, key, f"expected a mapping of header names to values, got {KIND_WORDS[v.kind]}"
            )
        for item, name, value in pairs:
            if not _TOKEN.fullmatch(name):
                raise self.error(item, key, f"{name!r} is not a header name (letters, digits and -)")
            if "\r" in value or "\n" in value:
                raise self.error(item, key, f"the value of {name} holds a line break (remove it)")
        return tuple((name, value) for _, name, value in pairs)

    def listen_env(self, v: Val, key: str) -> ListenEnv:
        return self._choice(v, key, ListenEnv, ", or leave it out: LISTEN_FDS is always set")

    def listen(self, v: Val, key: str) -> ListenAddress:
        text = self.string(v, key)
        try:
            address = parse_listen(text)
        except ValueError as exc:
            raise self.error(v, key, str(exc)) from None
        return replace(address, where=str(self.error(v, key, "")).removesuffix(": "))

    def unit(self, v: Val, key: str) -> str:
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

    def patterns(self, v: Val, key: str) -> tuple[str, ...]:
        """A list of gitignore-style patterns; one git cannot read (`[abc`, `#x`) is refused."""
        patterns = self.strings(v, key)
        for i, pattern in enumerate(patterns):
            problem = check_pattern(pattern)
            if problem:
                raise self.error(*list_item(self, v, key, i), problem)
        return patterns

    def paths(self, v: Val, key: str) -> tuple[Path, ...]:
        """The paths to watch, each resolved from the base directory."""
        if not self.strings(v, key):
            raise self.error(v, key, "empty list (name at least one directory or file)")
        return tuple(self.path(p, f"{key}[{i}]") for i, p in enumerate(items(v)))

    def expect(self, v: Val, key: str) -> str | None:
        return self.string(v, key) or None

    def process(self, v: Val, key: str) -> str:
        """The name of the process to signal: its executable's name, or the start of its command
        line, words separated by spaces."""
        text = " ".join(self.string(v, key, strict=True).split())
        if not text:
            raise self.error(
                v, key, "empty (write the process's name, e.g. gunicorn, or its command line's start)"
            )
        return text

    def user(self, v: Val, key: str) -> int:
        """A user name (looked up now: a slip is said at start) or a numeric UID (taken as written:
        a container's /etc/passwd may not list the app's user)."""
        import pwd  # noqa: PLC0415 (only for this key)

        text = self.string(v, key).strip()
        if text.isdigit():
            return int(text)
        try:
            return pwd.getpwnam(text).pw_uid
        except KeyError:
            raise self.error(v, key, f"no user {text!r} here (write a user name or a numeric UID)") from None

    def check(self, v: Val, key: str) -> str | tuple[str, ...] | PythonCheckSettings:
        """`python` (the built-in check), or a command."""
        if v.kind == "str" and v.value == PYTHON_CHECK:
            return PythonCheckSettings()
        return read_command(self, v, key)

    def variables(self, v: Val, key: str) -> tuple[tuple[str, str], ...]:
        """Variables: a mapping of names to values (the command line: `-E NAME=value`, repeated)."""
        pairs: list[tuple[Val, str, str]] = []
        if v.kind == "map":
            assert isinstance(v.value, dict)
            for name, item in v.value.items():
                if item.kind in ("seq", "map", "null"):
                    raise self.error(item, f"{key}.{name}", f"expected a value, got {KIND_WORDS[item.kind]}")
                pairs.append((item, name, self.string(item, f"{key}.{name}")))
        elif v.kind == "seq":
            assert isinstance(v.value, list)
            for i, item in enumerate(v.value):
                name, sep, value = self.string(*list_item(self, v, key, i)).partition("=")
                if not sep:
                    # the text is not repeated: it may be a secret written without its name
                    raise self.error(*list_item(self, v, key, i), "expected NAME=value (no '=' in it)")
                pairs.append((item, name, value))
        else:
            raise self.error(
                v, key, f"expected a mapping of variable names to values, got {KIND_WORDS[v.kind]}"
            )
        for item, name, _ in pairs:
            if not _ENV_NAME.fullmatch(name):
                raise self.error(item, key, f"{name!r} is not a variable name (letters, digits and _)")
        return tuple((name, value) for _, name, value in pairs)

    def env_file(self, v: Val, key: str) -> Path:
        """A dotenv file that exists and parses: said now, not at the first run."""
        path = self.path(v, key)
        try:
            problem = dotenv_problem(path)
        except OSError as exc:
            raise self.error(
                v, key, f"cannot read {path}: {exc.strerror} (create it, or correct the path)"
            ) from None
        if problem is not None:
            raise self.error(v, key, f"{path}:{problem}")
        return path

    def command(self, v: Val, key: str) -> str | tuple[str, ...]:
        return read_command(self, v, key)

    def path(self, v: Val, key: str) -> Path:
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


def read_command(ctx: Reader, cv: Val, ckey: str) -> str | tuple[str, ...]:
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


def items(v: Val) -> list[Val]:
    """The items of a list value; a single value is a list of one."""
    if v.kind == "seq":
        assert isinstance(v.value, list)
        return v.value
    return [v]


def list_item(ctx: Reader, v: Val, key: str, i: int) -> tuple[Val, str]:
    """Item `i` of a list value (a single value is a list of one) and how errors name it:
    `patterns[1]` in a file, the flag alone on the command line."""
    if v.kind == "seq" and isinstance(v.value, list):
        item = v.value[i]
        assert isinstance(item, Val)
        return item, key if ctx.cli else f"{key}[{i}]"
    return v, key
