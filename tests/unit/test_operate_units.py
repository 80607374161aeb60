"""The pieces behind `watchd status`, /metrics and the JSON log, without processes: the per-watch
tally, the structured fields of log records, watchd's own (top-level) settings and their table."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest

from watchd import logformat
from watchd.changes import Batch, Change, ChangeKind
from watchd.config import parse_config, with_settings
from watchd.errors import ConfigError
from watchd.model import Config, LogFormat
from watchd.outcome import Outcome, Result, result_of
from watchd.schema import readme_settings_table
from watchd.stats import CRASH_LOOP, DURATION_BUCKETS, Tally

README = Path(__file__).resolve().parents[2] / "README.md"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_tally_counts_results_durations_and_changes() -> None:
    tally = Tally(Clock())
    tally.changed()
    tally.changed(rescan=True)
    tally.batched(Batch("w", (Change(ChangeKind.MODIFIED, "/a"), Change(ChangeKind.CREATED, "/b")), 1.0, 2.0))
    tally.acted("sent HUP", 0.003, "change")  # a plain string is a success
    tally.acted(Outcome("HUP not sent: no process", Result.REFUSED), 0.02, "manual")
    tally.confirmed(True)
    c = tally.counts()
    assert (c.events, c.overflows, c.batches) == (2, 1, 1)
    assert c.actions == {
        "ok": 1, "failed": 0, "refused": 1, "check_failed": 0, "timeout": 0, "stopped": 0,
    }  # fmt: skip
    assert c.confirmations == {"confirmed": 1, "not_confirmed": 0}
    assert c.last_change is not None and (c.last_change.first, c.last_change.count) == ("/a", 2)
    assert c.last_action is not None
    assert (c.last_action.what, c.last_action.result, c.last_action.trigger) == (
        "HUP not sent: no process",
        "refused",
        "manual",
    )
    assert len(c.duration_buckets) == len(DURATION_BUCKETS) + 1
    assert c.duration_buckets[0] == 1  # 3 ms <= 5 ms
    assert c.duration_buckets[DURATION_BUCKETS.index(0.025)] == 1
    assert c.duration_sum == pytest.approx(0.023)


def test_an_app_that_keeps_exiting_is_crash_looping_until_it_stays_up() -> None:
    clock = Clock()
    tally = Tally(clock)
    tally.app_started(10, 0, 10.0)
    assert tally.counts().app is not None and not tally.counts().app.crash_looping  # type: ignore[union-attr]
    for streak in range(1, CRASH_LOOP + 1):
        tally.app_exited("exit 1", streak, restarting=True)
    app = tally.counts().app
    assert app is not None and app.crash_looping and app.pid is None and app.last_exit == "exit 1"
    assert tally.counts().restarts == CRASH_LOOP
    tally.app_started(11, CRASH_LOOP, 10.0)  # the backoff's restart: still looping while young
    assert tally.counts().app.crash_looping  # type: ignore[union-attr]
    clock.now += 10.0  # up as long as the backoff's reset
    assert not tally.counts().app.crash_looping  # type: ignore[union-attr]
    tally.app_started(12, 0, 10.0)  # a change restarted it
    assert not tally.counts().app.crash_looping  # type: ignore[union-attr]


def test_an_outcome_is_a_string_with_a_result() -> None:
    refused = Outcome("HUP not sent", Result.REFUSED)
    assert refused == "HUP not sent" and result_of(refused) is Result.REFUSED
    assert result_of("ran make: exit 0") is Result.OK
    assert refused.log == {"watchd": {"event": "refused", "result": "refused"}}
    assert Outcome("check failed", Result.CHECK_FAILED).log["watchd"] == {
        "event": "check_failed",
        "result": "check_failed",
    }
    assert Outcome("ran", Result.TIMEOUT).log["watchd"] == {"event": "action", "result": "timeout"}


def record(msg: str, *args: object, extra: dict[str, object] | None = None) -> logging.LogRecord:
    r = logging.LogRecord("watchd.test", logging.INFO, __file__, 1, msg, args, None)
    for k, v in (extra or {}).items():
        setattr(r, k, v)
    return r


def test_a_records_watch_comes_from_its_extra_its_thread_or_its_first_word() -> None:
    logformat.set_watches(frozenset({"api"}))
    assert logformat.structured(record("%s: saved", "api")) == {"event": "log", "watch": "api"}
    # a first word that is no watch's name (SIGHUP: reloading ...) is not a watch
    assert logformat.structured(record("%s: reloading %s", "SIGHUP", "x.yaml")) == {"event": "log"}
    extra = logformat.fields("pause", watch="web")
    assert logformat.structured(record("%s: paused", "api", extra=extra)) == {
        "event": "pause",
        "watch": "web",
    }
    seen: dict[str, object] = {}

    def worker() -> None:
        logformat.bind_thread("job")
        batch = Batch(
            "job", (Change(ChangeKind.MODIFIED, "/src/a.py"), Change(ChangeKind.CREATED, "/src/b")), 0, 0
        )
        with logformat.acting(batch, 0.0):
            seen.update(
                logformat.structured(record("ran", extra={"watchd": {"event": "action", "result": "ok"}}))
            )

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["watch"] == "job" and seen["paths"] == 2 and seen["first_path"] == "/src/a.py"
    assert seen["result"] == "ok" and isinstance(seen["duration"], float)


def test_a_json_line_is_one_object_and_keeps_undecodable_bytes() -> None:
    logformat.set_watches(frozenset({"api"}))
    path = "/srv/caf\udce9.py"  # the bytes b"caf\xe9.py", as os.fsdecode gives them
    line = logformat.JsonFormatter().format(
        record("%s: %s changed", "api", path, extra=logformat.fields("change", first_path=path, paths=1))
    )
    assert "\n" not in line
    doc = json.loads(line)
    assert (doc["level"], doc["watch"], doc["event"], doc["paths"]) == ("info", "api", "change", 1)
    assert doc["message"] == f"api: {path} changed"
    assert doc["time"].endswith("Z") and "T" in doc["time"]
    assert os.fsencode(doc["first_path"]) == b"/srv/caf\xe9.py"
    assert logformat.formatter(LogFormat.JSON, journald=True).format(record("x")).startswith("<6>{")


def parse(text: str) -> Config:
    return parse_config(text, source="dev.yaml", base_dir=Path("/srv"), env={}, is_dir=lambda p: True)


WATCH = "watches:\n  w:\n    paths: [src]\n    command: make\n"


def test_watchds_own_settings_are_read_at_the_top_level() -> None:
    config = parse("metrics: '[::1]:9385'\nlog_format: json\ncontrol: run/w.sock\n" + WATCH)
    assert config.metrics is not None and (config.metrics.host, config.metrics.port) == ("::1", 9385)
    assert config.log_format is LogFormat.JSON
    assert config.control == Path("/srv/run/w.sock")
    assert parse("control: false\n" + WATCH).control is False
    assert parse(WATCH).control is None and parse(WATCH).metrics is None
    assert parse("interactive: true\n" + WATCH).interactive is True
    assert parse(WATCH).interactive is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "metrics: unix:/run/m.sock\n",
            "dev.yaml:1:10: metrics: metrics are served over TCP: write HOST:PORT, e.g. 127.0.0.1:9385",
        ),
        ("log_format: xml\n", "dev.yaml:1:13: log_format: unknown value 'xml' (use human or json)"),
        ("control: true\n", "dev.yaml:1:10: control: write a socket path, or false for no control socket"),
        ("interactive: yes please\n", "dev.yaml:1:14: interactive: expected true or false, got 'yes please'"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text + WATCH)
    assert str(info.value) == message


def test_a_setting_on_the_command_line_wins_and_its_errors_name_the_flag() -> None:
    config = with_settings(parse("log_format: json\n" + WATCH), {"log_format": "human", "metrics": "9385"})
    assert config.log_format is LogFormat.HUMAN
    assert config.metrics is not None and (config.metrics.host, config.metrics.port) == ("127.0.0.1", 9385)
    assert with_settings(parse(WATCH), {"control": "off"}).control is False
    assert with_settings(parse(WATCH), {"interactive": True}).interactive is True
    with pytest.raises(ConfigError) as info:
        with_settings(parse(WATCH), {"log_format": "xml"})
    assert str(info.value) == "watchd: --log-format: unknown value 'xml' (use human or json)"


def test_the_readme_settings_table_is_the_schema() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("| key | flag | type | default | example | meaning |")
    end = text.index("<!-- end of the settings table -->", start)
    assert text[start:end] == readme_settings_table(), "run python -m watchd.schema and paste its tables"
