"""Save -> new code answering: real gunicorn and uWSGI reloaded by watchd with the shipped configs.

    .venv/bin/python bench/reload.py [--saves 10]

For each server: start it (2 workers, 127.0.0.1, ephemeral port), run watchd with
config/<server>.yaml (check gate and confirmation on), then save the app N times; each time,
measure from the write to the first HTTP response carrying the new version (polled every 5 ms).
Prints a table of median / min / max.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.procs import Watchd, wait_for  # noqa: E402
from helpers.servers import BIN, Server, write_app  # noqa: E402


def measure(kind: str, saves: int, tmp: Path) -> list[float]:
    app = tmp / kind
    app.mkdir()
    write_app(app, "v0")
    server = Server(kind, app, tmp / f"{kind}.pid", tmp / f"{kind}.log")
    env = dict(os.environ, APP_DIR=str(app), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env[f"{kind.upper()}_PIDFILE"] = str(server.pidfile)
    w = Watchd(
        ["--config", str(ROOT / "config" / f"{kind}.yaml")], tmp / f"{kind}-watchd.log", cwd=app, env=env
    )
    samples = []
    try:
        for i in range(1, saves + 1):
            version = f"v{i}"
            t0 = time.monotonic()
            write_app(app, version)
            if not wait_for(lambda v=version: server.get() == v, timeout=15, interval=0.005):
                print(f"{kind}: save {i} not served in 15 s", file=sys.stderr)
                continue
            samples.append(time.monotonic() - t0)
            wait_for(lambda i=i: w.log().count("reloaded:") >= i, timeout=15)  # let the reload settle
    finally:
        w.stop()
        server.stop()
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--saves", type=int, default=10)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="watchd-reload-") as d:
        for kind in ("gunicorn", "uwsgi"):
            s = measure(kind, args.saves, Path(d))
            if s:
                rows.append((kind, len(s), statistics.median(s), min(s), max(s)))
    print("| server | saves | median save -> new code | min | max |")
    print("|---|---|---|---|---|")
    for kind, n, med, lo, hi in rows:
        print(f"| {kind} | {n} | {med * 1000:.0f} ms | {lo * 1000:.0f} ms | {hi * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
