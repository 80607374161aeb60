"""`reload: HUP` on a run watch: a real gunicorn that the installed watchd runs is reloaded by
signal -- master PID kept, the new workers confirmed, no request failed while a client polled --
and a file `restart_patterns` matches restarts it instead (a new master)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers.procs import WATCHD, Watchd, wait_for, wait_workers_settled
from helpers.servers import BIN, Poller, free_port, http_get, write_app


@pytest.fixture
def masters() -> Iterator[list[psutil.Process]]:
    """The gunicorn masters a test saw; watchd stops them, and any left (watchd killed hard) are
    killed here, by their own process (psutil refuses a PID reused since)."""
    seen: list[psutil.Process] = []
    yield seen
    for p in seen:
        if p.is_running():
            p.kill()


def config(tmp_path: Path, port: int, preload: str) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    write_app(app, "v1")
    (app / "gunicorn.conf.py").write_text("workers = 2\ngraceful_timeout = 5\n")
    (app / "requirements.txt").write_text("flask\n")
    argv = [
        str(BIN / "gunicorn"),
        "-c", "gunicorn.conf.py",
        "--no-control-socket",
        "--bind", f"127.0.0.1:{port}",
        "app:app",
    ]  # fmt: skip
    cfg = tmp_path / "watchd.yaml"
    cfg.write_text(
        "watches:\n"
        "  web:\n"
        "    paths: [app]\n"
        '    patterns: ["*.py"]\n'
        f"    run: {json.dumps(argv)}\n"
        "    cwd: app\n"
        "    reload: HUP\n"
        "    restart_patterns: [requirements.txt, gunicorn.conf.py]\n"
        "    confirm_timeout: 20s\n"
        "    check: python\n"
        "    stop_timeout: 10s\n"
        f"    preload: {preload}\n"
    )
    return cfg


def started_pid(w: Watchd, nth: int = 1) -> int:
    """The PID of the app's `nth` start, as watchd's log says."""
    assert w.wait_log("(pid ", timeout=10), w.log()
    pids = re.findall(r"(?:web: started .*? \(pid|; restarted .*?, new pid) (\d+)", w.log())
    assert len(pids) >= nth, w.log()
    return int(pids[nth - 1])


def status(cfg: Path) -> dict[str, object]:
    done = subprocess.run(
        [WATCHD, "status", "--config", str(cfg), "--json"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    data = json.loads(done.stdout)
    (watch,) = data["watches"]
    assert isinstance(watch, dict)
    return watch


@pytest.mark.parametrize("preload", ["auto", "off"])  # a restart warm (from the fork server) or cold
def test_gunicorn_run_by_watchd_reloads_by_hup_and_restarts_for_restart_patterns(
    preload: str, tmp_path: Path, start_watchd: type[Watchd], masters: list[psutil.Process]
) -> None:
    port = free_port()
    cfg = config(tmp_path, port, preload)
    w = start_watchd(["--config", str(cfg)], cwd=tmp_path)
    master = started_pid(w)
    masters.append(psutil.Process(master))
    assert wait_for(lambda: http_get(port, timeout=2) == "v1", timeout=20), w.log()
    assert wait_workers_settled(master, 2, timeout=15), w.log()

    # a change to the code: HUP, the master kept, its workers replaced, no request lost
    poller = Poller(lambda: http_get(port, timeout=5))
    try:
        assert wait_for(lambda: poller.ok > 5)
        write_app(tmp_path / "app", "v2")
        assert w.wait_log("web: app/app.py changed; sent HUP to gunicorn ", timeout=10), w.log()
        assert wait_for(lambda: http_get(port) == "v2", timeout=10), w.log()
        assert w.wait_log(f"web: gunicorn (pid {master}) reloaded: 2 new workers in ", timeout=20), w.log()
        assert wait_for(lambda: poller.ok > 5 + 5)
    finally:
        poller.stop()
    assert poller.failed == [], f"{len(poller.failed)} failed of {poller.ok + len(poller.failed)}"
    assert f"sent HUP to gunicorn (pid {master}) to reload it; waiting for its 2 workers" in w.log()
    assert "restarted" not in w.log()
    assert psutil.Process(master).is_running()
    watch = status(cfg)
    counters = watch["counters"]
    assert isinstance(counters, dict)
    assert counters["confirmations"] == {"confirmed": 1, "not_confirmed": 0}
    assert counters["actions"]["ok"] == 1
    app = watch["app"]
    assert isinstance(app, dict) and app["pid"] == master

    # a file a reload does not re-read: a restart, a new master; it counts though patterns is *.py
    (tmp_path / "app" / "requirements.txt").write_text("flask\nrequests\n")
    assert w.wait_log("web: app/requirements.txt matches restart_patterns: restarting the app", timeout=10), (
        w.log()
    )
    assert w.wait_log("web: app/requirements.txt changed; restarted gunicorn -c ", timeout=20), w.log()
    new = started_pid(w, 2)
    masters.append(psutil.Process(new))
    assert new != master
    assert f"pid {master} stopped" in w.log()
    assert wait_for(lambda: not psutil.pid_exists(master) or not masters[0].is_running(), timeout=10)
    assert wait_for(lambda: http_get(port, timeout=2) == "v2", timeout=20), w.log()
    assert status(cfg)["counters"]["actions"]["ok"] == 2  # type: ignore[index]

    # the next code change reloads the new master
    assert wait_workers_settled(new, 2, timeout=15), w.log()
    write_app(tmp_path / "app", "v3")
    assert w.wait_log(f"(pid {new}) reloaded: 2 new workers in ", timeout=20), w.log()
    assert wait_for(lambda: http_get(port) == "v3", timeout=10), w.log()

    # the check gate: a save that does not compile is neither a reload nor a restart
    (tmp_path / "app" / "app.py").write_text("def broken(:\n")
    assert w.wait_log("check python failed (SyntaxError in app/app.py", timeout=10), w.log()
    assert "not reloaded (HUP) or restarted" in w.log()
    assert w.log().count("sent HUP to gunicorn") == 2
    assert http_get(port) == "v3"
