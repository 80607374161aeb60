"""watchd benchmark: prints a table of the numbers that matter to a daemon people run all day.

    .venv/bin/python bench/bench.py [--quick]

Measures the installed `watchd` as a subprocess against a signal-recording process:
- ready time and resident memory on a 10,000-directory tree;
- CPU used while idle;
- latency from a save to the HUP arriving (median and p90 over 20 saves);
- a burst of 5,000 file writes: how many actions, and how long after the last write;
- the matcher's cost per event (in-process).
Everything runs in a temporary directory and every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.procs import Recorder, Watchd, wait_for

from watchd.matching import Matcher

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def make_tree(root: Path, dirs: int) -> None:
    per = int(dirs**0.5)
    for i in range(per):
        for j in range(dirs // per):
            d = root / f"d{i:03d}" / f"e{j:03d}"
            d.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text("x = 0\n")


def bench_tree(tmp: Path, dirs: int, rows: list[tuple[str, str]]) -> None:
    tree = tmp / "tree"
    make_tree(tree, dirs)
    rec = Recorder(tmp, "tree-server")
    try:
        t0 = time.monotonic()
        w = Watchd(["-p", "*.py", "--pidfile", str(rec.pidfile), str(tree)], tmp / "tree.log")
        ready = time.monotonic() - t0
        try:
            rows.append(
                (f"start on {dirs:,} directories: ready after", f"{ready:.2f} s (incl. interpreter start)")
            )
            rows.append(("resident memory when ready", f"{rss_mib(w.proc.pid):.1f} MiB"))
            before = cpu_seconds(w.proc.pid)
            time.sleep(3)
            rows.append(("CPU while idle (3 s)", f"{(cpu_seconds(w.proc.pid) - before) * 1000:.0f} ms"))
            (tree / "d001" / "e001" / "deep.py").write_text("x")
            ok = wait_for(lambda: len(rec.names()) == 1, timeout=10)
            rows.append(("change deep in the tree reaches the server", "yes" if ok else "NO"))
        finally:
            w.stop()
    finally:
        rec.stop()


def bench_latency(tmp: Path, saves: int, rows: list[tuple[str, str]]) -> None:
    src = tmp / "lat"
    src.mkdir()
    rec = Recorder(tmp, "lat-server")
    w = Watchd(["-p", "*.py", "--pidfile", str(rec.pidfile), str(src)], tmp / "lat.log")
    try:
        samples = []
        for i in range(saves):
            t = time.time()
            (src / "app.py").write_text(f"x = {i}\n")
            if not wait_for(lambda i=i: len(rec.signals()) == i + 1, timeout=5):
                break
            samples.append((rec.signals()[-1][1] - t) * 1000)
        if samples:
            q = statistics.quantiles(samples, n=10)
            rows.append(
                (
                    f"save -> HUP received (debounce 50ms, {len(samples)} saves)",
                    f"median {statistics.median(samples):.0f} ms, p90 {q[-1]:.0f} ms",
                )
            )
    finally:
        w.stop()
        rec.stop()


def bench_burst(tmp: Path, files: int, rows: list[tuple[str, str]]) -> None:
    src = tmp / "burst"
    src.mkdir()
    rec = Recorder(tmp, "burst-server")
    w = Watchd(["-p", "*.py", "--pidfile", str(rec.pidfile), str(src)], tmp / "burst.log")
    try:
        t0 = time.time()
        for i in range(files):
            (src / f"m{i}.py").write_text("x")
        last = time.time()
        wait_for(lambda: len(rec.names()) >= 1, timeout=20)
        time.sleep(2.5)  # a benchmark, not a test: give a (wrong) second action time to show up
        sig = rec.signals()
        rows.append((f"burst of {files:,} writes ({last - t0:.2f} s): actions", str(len(sig))))
        if sig:
            rows.append(("  first action after the last write", f"{(sig[0][1] - last) * 1000:.0f} ms"))
    finally:
        w.stop()
        rec.stop()


def bench_matcher(rows: list[tuple[str, str]]) -> None:
    m = Matcher(["*.py", "*.html"], ["tests/**"])
    paths = [f"pkg{i % 50}/sub{i % 7}/module_{i}.py" for i in range(50_000)]
    paths += [f"node_modules/x{i}/index.js" for i in range(25_000)]
    paths += [f"pkg/.module_{i}.py.swp" for i in range(25_000)]
    t0 = time.perf_counter()
    hits = sum(1 for p in paths if m.matches(p))
    took = time.perf_counter() - t0
    rows.append(
        ("matcher: cost per event (100k mixed paths)", f"{took / len(paths) * 1e6:.2f} us ({hits:,} matched)")
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller tree and fewer saves")
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="watchd-bench-") as d:
        tmp = Path(d)
        bench_tree(tmp, 1_000 if args.quick else 10_000, rows)
        bench_latency(tmp, 5 if args.quick else 20, rows)
        bench_burst(tmp, 5_000, rows)
    bench_matcher(rows)
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  result")
    print(f"{'-' * width}  {'-' * 30}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
