"""The two kinds of failure watchd distinguishes: fatal config errors and per-action errors."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad configuration: fatal at start-up, rejected (old config kept) on reload.

    Rendered as one line, ``file:line:col: key.path: what is wrong (what to write instead)``,
    so editors and terminals can jump to the spot.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.key = key

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class ActionError(Exception):
    """An action could not be carried out this time (stale pidfile, command failed to start...).

    Logged as a warning or error; the daemon keeps running and tries again on the next change.
    """
