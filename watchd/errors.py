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


class WatchFailed(Exception):
    """A watch could not be set up or its action started, for a reason no action foresaw (a bug,
    a platform without a call it needed). The message is one line naming the watch: fatal at
    start (exit 2, nothing left running), the reload rejected or the watch marked failed on a
    reload; never a traceback (that is for -v)."""


def one_line(exc: BaseException) -> str:
    """An unexpected exception as `Type: message` on one line (a path in it may hold a newline)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if text.isprintable() else repr(text)[1:-1]
