"""What came of an action: a few words for people and a result for machines.

An action's `execute` returns an `Outcome` (a `str`: the words `watchd status` and systemd's
STATUS line show) whose `result` is one of `Result`; a plain string is a success. The worker
counts it in the watch's tally (`watchd.stats`), and `log` is the `extra` of the action's own log
line, so the JSON log says the same result (see `watchd.logformat`).
"""

from __future__ import annotations

from enum import StrEnum


class Result(StrEnum):
    """How an action ended; the `result` label of watchd_actions_total."""

    OK = "ok"
    FAILED = "failed"  # it ran and failed (exit status, HTTP error, could not start)
    REFUSED = "refused"  # not done because the target could not be trusted (pidfile checks)
    CHECK_FAILED = "check_failed"  # the check gate failed: the action was skipped
    TIMEOUT = "timeout"  # the command ran past its timeout and was stopped
    STOPPED = "stopped"  # cut short by watchd itself (on_busy: restart, shutdown)


# the log line's event for each result: refusals and failed checks are events of their own
_EVENTS = {Result.REFUSED: "refused", Result.CHECK_FAILED: "check_failed"}


def event_of(result: Result) -> str:
    return _EVENTS.get(result, "action")


class Outcome(str):
    """An action's outcome: the words, and `result`."""

    __slots__ = ("result",)
    result: Result

    def __new__(cls, text: str, result: Result = Result.OK) -> Outcome:
        self = super().__new__(cls, text)
        self.result = result
        return self

    @property
    def log(self) -> dict[str, object]:
        """The `extra` of the action's log line: its event and result for the JSON log."""
        return {"watchd": {"event": event_of(self.result), "result": self.result.value}}


def result_of(outcome: str) -> Result:
    """The result of what `execute` returned: a plain string is a success."""
    return outcome.result if isinstance(outcome, Outcome) else Result.OK
