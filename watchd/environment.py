"""A watch's own environment variables: `env_file` (a dotenv file) and `env`, for its commands,
apps and checks.

The file is read at every run, so an edit takes effect with the next one (the daemon watches the
file, whatever the watch's patterns say). Values are never logged: they are often secrets.
python-dotenv reads the file, as the tools that share it (Flask, Django settings, docker compose's
`env_file`, most deploy tools) do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def dotenv_problem(path: Path) -> str | None:
    """`LINE: what is wrong` for the first line of `path` a dotenv reader cannot parse, or None.
    Raises OSError if the file cannot be read."""
    from dotenv.parser import parse_stream  # noqa: PLC0415 (only with an env_file)

    with open(path, encoding="utf-8") as f:
        try:
            for binding in parse_stream(f):
                if binding.error:
                    return (
                        f"{binding.original.line}: cannot read {binding.original.string.strip()!r} "
                        "(write NAME=value, quoting a value with spaces)"
                    )
        except UnicodeDecodeError as exc:
            return f"1: not UTF-8 text at byte {exc.start} (save the file as UTF-8)"
    return None


class WatchEnvironment:
    """The variables a watch adds to what its children get: the env file's, then `env`'s."""

    def __init__(self, name: str, env: tuple[tuple[str, str], ...], env_file: Path | None) -> None:
        self.name = name
        self.env = dict(env)
        self.env_file = env_file
        self._last: dict[str, str] = {}  # the file's values as last read: kept if it turns unreadable
        self._warned = False

    def __bool__(self) -> bool:
        return bool(self.env) or self.env_file is not None

    def values(self) -> Mapping[str, str]:
        """The variables for a run starting now (the file read afresh)."""
        out = dict(self._read_file()) if self.env_file is not None else {}
        out.update(self.env)
        return out

    def _read_file(self) -> dict[str, str]:
        from dotenv import dotenv_values  # noqa: PLC0415 (only with an env_file)

        assert self.env_file is not None
        try:
            problem = dotenv_problem(self.env_file)
            if problem is not None:
                raise ValueError(f"line {problem}")
            read = dotenv_values(self.env_file, interpolate=True)
        except (OSError, ValueError) as exc:
            if not self._warned:  # once, until it reads again
                why = exc.strerror if isinstance(exc, OSError) else str(exc)
                log.warning("%s: env_file %s: %s; using its last values", self.name, self.env_file, why)
                self._warned = True
            return self._last
        self._warned = False
        self._last = {k: v for k, v in read.items() if v is not None}
        return self._last
