"""The post action: save -> the reload request arriving at a server, against the shell way.

    .venv/bin/python bench/post.py [--saves N] [--record]

Run by hand, not by CI. A small HTTP server in this script (127.0.0.1, an ephemeral port) takes
time.monotonic() when a POST arrives; the script takes it just before each save of a watched
`app.yaml` (an atomic save: app.yaml.tmp, then rename), N saves (default 20) per row after 2
warm-up saves, 0.5 s apart; median and p95 (nearest rank). Rows, each run alone:
- watchd: `watchd --post URL --debounce 50ms DIR/app.yaml`
- watchd-1ms: the same with `--debounce 1ms`: the action's own cost, without the quiet period
- watchd-curl: `watchd --command 'curl -sf -X POST URL' --debounce 50ms DIR/app.yaml` (a process per reload)
- inotifywait-curl (the reference, configmap-reload's job done in shell): `inotifywait -m -q -e
  close_write,moved_to --format %f DIR | while read -r f; do [ "$f" = app.yaml ] && curl -sf -X POST
  URL; done` (no debounce: a request per event that names app.yaml)

Also: requests per save (a tool that reloads twice for one save shows 2.00), and watchd's RSS.
The goal, against the reference of the same run: watchd-1ms within 1.5x (watchd with its default
50 ms quiet period is that plus 50 ms: the price of one request for an editor's several writes), one
request per save.
PYTHONDONTWRITEBYTECODE is removed from the children's environment (as in run.py).
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

from run import interrupt, nearest_rank, record, spawn, status_kib, stop  # noqa: E402

WARMUP = 2
SETTLE_S = 0.5
ARRIVAL_TIMEOUT_S = 10.0


class Arrivals:
    """The monotonic times at which POSTs arrived."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Condition()

    def add(self, when: float) -> None:
        with self.lock:
            self.times.append(when)
            self.lock.notify_all()

    def wait_beyond(self, count: int, timeout: float) -> float | None:
        """The first arrival after the first `count`, or None after `timeout`."""
        with self.lock:
            if self.lock.wait_for(lambda: len(self.times) > count, timeout):
                return self.times[count]
        return None


def serve(arrivals: Arrivals) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrivals.add(time.monotonic())
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def save(path: Path, n: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"version: {n}\n")
    os.replace(tmp, path)


def argv_for(row: str, url: str, config: Path) -> list[str]:
    curl = f"curl -sf -X POST {url}"
    if row in ("watchd", "watchd-1ms"):
        debounce = "1ms" if row == "watchd-1ms" else "50ms"
        return [str(BIN / "watchd"), "--post", url, "--debounce", debounce, str(config)]
    if row == "watchd-curl":
        return [str(BIN / "watchd"), "--command", curl, "--debounce", "50ms", str(config)]
    events = f"inotifywait -m -q -e close_write,moved_to --format %f {config.parent}"
    return ["/bin/sh", "-c", f'{events} | while read -r f; do [ "$f" = app.yaml ] && {curl} >/dev/null; done']


def run_row(row: str, work: Path, saves: int) -> str:
    arrivals = Arrivals()
    httpd = serve(arrivals)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/-/reload"
    config = work / row / "app.yaml"
    config.parent.mkdir()
    config.write_text("version: 0\n")
    proc = spawn(argv_for(row, url, config), work / f"{row}.log")
    try:
        time.sleep(1.0)  # every tool has set up its watch well before this
        latencies: list[float] = []
        for n in range(1, saves + WARMUP + 1):
            before = len(arrivals.times)
            t0 = time.monotonic()
            save(config, n)
            arrived = arrivals.wait_beyond(before, ARRIVAL_TIMEOUT_S)
            if arrived is None:
                return f"| {row} | failed: save {n} not posted within {ARRIVAL_TIMEOUT_S:.0f} s | | | |"
            if n > WARMUP:
                latencies.append((arrived - t0) * 1000)
            time.sleep(SETTLE_S)
        per_save = len(arrivals.times) / (saves + WARMUP)
        rss = f"{status_kib(proc.pid, 'VmRSS') / 1024:.1f} MiB" if row != "inotifywait-curl" else "-"
        return (
            f"| {row} | {statistics.median(latencies):.1f} / {nearest_rank(latencies, 95):.1f} ms "
            f"| {{ratio}} | {per_save:.2f} | {rss} |"
        )
    finally:
        stop(proc)
        httpd.shutdown()
        httpd.server_close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--saves", type=int, default=20)
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    missing = [tool for tool in ("curl", "inotifywait") if shutil.which(tool) is None]
    if missing:
        print(f"needs {' and '.join(missing)} (apt-get install curl inotify-tools)", file=sys.stderr)
        return 2
    rows = ["watchd", "watchd-1ms", "watchd-curl", "inotifywait-curl"]
    with tempfile.TemporaryDirectory(prefix="watchd-bench-post-") as tmp:
        results = {row: run_row(row, Path(tmp), args.saves) for row in rows}
    ref = results["inotifywait-curl"]
    ref_median = float(ref.split("|")[2].split("/")[0]) if "failed" not in ref else None
    lines = [
        "| row | save -> request arriving, median / p95 | median / reference's | requests per save | RSS |",
        "|---|---|---|---|---|",
    ]
    for row, line in results.items():
        ratio = "-"
        if row == "inotifywait-curl":
            ratio = "1.00x (reference)"
        elif "{ratio}" in line and ref_median:
            ratio = f"{float(line.split('|')[2].split('/')[0]) / ref_median:.2f}x"
        lines.append(line.replace("{ratio}", ratio))
    out = "\n".join(lines)
    print(out)
    if args.record:
        record("post.py", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
