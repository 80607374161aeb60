"""The post action against a real server that reloads over HTTP: Prometheus (Debian's package),
started on 127.0.0.1 with --web.enable-lifecycle and its config in a temporary directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.procs import Watchd, stop_process, wait_for
from helpers.servers import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="Debian's prometheus package is not installed (.ci/run installs it)"
)

CONFIG = "global:\n  scrape_interval: {interval}\n  evaluation_interval: 15s\nscrape_configs: []\n"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except OSError:
        return 0, b""


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(its base URL, its config file), once it answers /-/ready."""
    assert PROMETHEUS is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(interval="15s"))
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            f"--storage.tsdb.path={tmp_path / 'data'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_for(lambda: get(f"{base}/-/ready")[0] == 200, timeout=30)
        assert ready, (tmp_path / "prometheus.log").read_text()
        yield base, config
    finally:
        stop_process(proc)
        log.close()


def loaded_interval(base: str) -> str | None:
    status, body = get(f"{base}/api/v1/status/config")
    if status != 200:
        return None
    yaml_text = json.loads(body)["data"]["yaml"]
    for line in yaml_text.splitlines():
        if line.strip().startswith("scrape_interval:"):
            return line.split(":", 1)[1].strip()
    return None


def test_a_changed_config_is_reloaded_and_a_broken_one_is_reported(
    prometheus: tuple[str, Path], tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    base, config = prometheus
    assert loaded_interval(base) == "15s"
    watchd_yaml = tmp_path / "watchd.yaml"
    watchd_yaml.write_text(f"watches:\n  prometheus:\n    paths: [{config}]\n    post: {base}/-/reload\n")
    w = start_watchd(["--config", str(watchd_yaml)], cwd=tmp_path)

    config.write_text(CONFIG.format(interval="7s"))
    assert wait_for(lambda: loaded_interval(base) == "7s", timeout=10), w.log()
    assert w.wait_log(f"prometheus: prometheus.yml changed; POST {base}/-/reload: 200 OK in "), w.log()

    config.write_text("global:\n  scrape_interval: [not a duration\n")  # broken: Prometheus answers 500
    assert w.wait_log(f"POST {base}/-/reload failed after 3 tries", timeout=15), w.log()
    (line,) = [x for x in w.log().splitlines() if "failed after" in x]
    assert ": 500 Internal Server Error: failed to reload config" in line, line
    assert loaded_interval(base) == "7s"  # Prometheus keeps the config it had
    assert w.alive()

    config.write_text(CONFIG.format(interval="9s"))  # and watchd goes on
    assert wait_for(lambda: loaded_interval(base) == "9s", timeout=10), w.log()
    assert w.wait_log(": 200 OK in ", count=2), w.log()
