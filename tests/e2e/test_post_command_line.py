"""The post action from the installed command: hostile file names reach the server only inside
the JSON body, a failing check sends nothing, a dry run sends nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers.hostile import HOSTILE_NAMES, create_hostile_files, pwned_files
from helpers.http import ReloadServer, serving
from helpers.procs import Watchd, wait_for


def test_hostile_names_travel_in_the_json_body_only(tmp_path: Path, start_watchd: type[Watchd]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with serving(ReloadServer()) as server:
        w = start_watchd(["--post", server.url(), "--body", "changes", "--debounce", "300ms", str(src)])
        paths = create_hostile_files(src)
        assert wait_for(lambda: server.count() >= 1, timeout=10), w.log()
        assert w.wait_log("200 OK"), w.log()
        requests = list(server.requests)
    assert {r.path for r in requests} == {"/-/reload"}  # nothing of the names in the URL
    sent = {os.fsencode(p) for r in requests for p in json.loads(r.body)["paths"]}
    assert sent == set(paths)  # every name, byte for byte (undecodable bytes as \udcXX escapes)
    assert len(HOSTILE_NAMES) == len(paths)
    assert pwned_files(tmp_path) == []


def test_a_failing_check_sends_nothing_and_a_dry_run_neither(
    tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with serving(ReloadServer()) as server:
        gated = start_watchd(["--post", server.url(), "--check", "exit 1", str(src)])
        dry = start_watchd(["--post", server.url(), "--dry-run", str(src)])
        (src / "app.yml").write_text("x: 1\n")
        assert gated.wait_log("request not sent"), gated.log()
        assert dry.wait_log(f"would send POST {server.url()} [dry run]"), dry.log()
        assert server.count() == 0
