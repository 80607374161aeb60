"""Soak test: the installed watchd with 3 command watches under random churn for N minutes.

    .venv/bin/python bench/soak.py [--minutes 10] [--seed N]

Run by hand, not by CI. watchd runs a generated config (3 watches on 3 directories, debounce
50ms, each command appending "$WATCHD_WATCH $WATCHD_COUNT" to that watch's log). Every 0.2-2 s
(longer than debounce + the action, so each burst is one batch) a random watch directory gets a
burst of 1-20 distinct files, new or rewritten. At the end watchd is stopped with SIGTERM.

Checks (exit status 1 if any fails):
- every watch: actions >= bursts (none missed) and actions <= 1.2 x bursts + 2 (not wildly more);
- every watch: the WATCHD_COUNTs add up to the files written (no path lost or invented);
- open fds and threads at the end equal those at the start; RSS grew by at most max(5 MiB, 25%);
- watchd exits 0 on SIGTERM, and its log has no ERROR or Traceback.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.procs import Watchd, wait_for

WATCHES = ("alpha", "beta", "gamma")
DEBOUNCE_MS = 50


@dataclass
class Snapshot:
    rss_mib: float
    fds: int
    threads: int


def snapshot(pid: int) -> Snapshot:
    rss, threads = 0.0, 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return Snapshot(rss, len(os.listdir(f"/proc/{pid}/fd")), threads)


def write_config(tmp: Path) -> Path:
    lines = [f"defaults:\n  debounce: {DEBOUNCE_MS}ms\nwatches:"]
    for name in WATCHES:
        (tmp / "dirs" / name).mkdir(parents=True)
        log = tmp / "logs" / f"{name}.log"
        lines.append(
            f"  {name}:\n"
            f"    paths: [{tmp / 'dirs' / name}]\n"
            f'    patterns: ["*.txt"]\n'
            f"    command: 'echo \"$WATCHD_WATCH $WATCHD_COUNT\" >> {log}'\n"
        )
    (tmp / "logs").mkdir()
    config = tmp / "soak.yaml"
    config.write_text("\n".join(lines))
    return config


def actions(tmp: Path, name: str) -> list[tuple[str, int]]:
    try:
        text = (tmp / "logs" / f"{name}.log").read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        watch, _, count = line.partition(" ")
        out.append((watch, int(count)))
    return out


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to churn (default 10)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)  # noqa: S311
    rng = random.Random(seed)  # noqa: S311 (churn, not secrets)
    signal.signal(signal.SIGTERM, _interrupt)

    bursts = dict.fromkeys(WATCHES, 0)
    written = dict.fromkeys(WATCHES, 0)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="watchd-soak-") as d:
        tmp = Path(d)
        config = write_config(tmp)
        w = Watchd(["--config", str(config)], tmp / "watchd.log")
        code: int | None = None
        try:
            pid = w.proc.pid
            time.sleep(0.5)
            start = snapshot(pid)
            peak = start.rss_mib
            print(f"seed {seed}; churning for {args.minutes:g} min (watchd pid {pid})", flush=True)
            t0 = time.monotonic()
            end = t0 + args.minutes * 60
            next_report = t0 + 60
            while time.monotonic() < end:
                name = rng.choice(WATCHES)
                files = rng.sample(range(100), rng.randint(1, 20))
                for k in files:
                    (tmp / "dirs" / name / f"f{k:02d}.txt").write_text(f"{rng.random()}\n")
                bursts[name] += 1
                written[name] += len(files)
                time.sleep(rng.uniform(0.2, 2.0))
                if not w.alive():
                    failures.append(f"watchd died (exit {w.proc.returncode})")
                    break
                peak = max(peak, snapshot(pid).rss_mib)
                if time.monotonic() >= next_report:
                    next_report += 60
                    s = snapshot(pid)
                    done = sum(len(actions(tmp, x)) for x in WATCHES)
                    print(
                        f"  {(time.monotonic() - t0) / 60:.0f} min: {sum(bursts.values())} bursts, "
                        f"{done} actions, RSS {s.rss_mib:.1f} MiB, {s.fds} fds, {s.threads} threads",
                        flush=True,
                    )
            # the last burst's action
            wait_for(lambda: all(len(actions(tmp, n)) >= bursts[n] for n in WATCHES), timeout=5)
            time.sleep(1.0)
            final = snapshot(pid) if w.alive() else Snapshot(float("nan"), -1, -1)
        finally:
            code = w.stop()
        log = w.log()
        got = {n: actions(tmp, n) for n in WATCHES}

    rows = [("watch", "bursts", "actions", "files written", "sum of WATCHD_COUNT", "ok")]
    for n in WATCHES:
        acts = len(got[n])
        counted = sum(c for _, c in got[n])
        wrong_name = [x for x, _ in got[n] if x != n]
        ok = bursts[n] <= acts <= 1.2 * bursts[n] + 2 and counted == written[n] and not wrong_name
        if not ok:
            failures.append(
                f"{n}: {bursts[n]} bursts -> {acts} actions, {written[n]} files -> counts add up to {counted}"
                + (f", actions named {sorted(set(wrong_name))}" if wrong_name else "")
            )
        rows.append((n, str(bursts[n]), str(acts), str(written[n]), str(counted), "yes" if ok else "NO"))
    grow = final.rss_mib - start.rss_mib
    rss_ok = grow <= max(5.0, 0.25 * start.rss_mib)
    res_rows = [
        ("RSS (MiB)", f"{start.rss_mib:.1f}", f"{final.rss_mib:.1f} (peak {peak:.1f})", rss_ok),
        ("open fds", str(start.fds), str(final.fds), final.fds == start.fds),
        ("threads", str(start.threads), str(final.threads), final.threads == start.threads),
    ]
    for what, a, b, ok in res_rows:
        if not ok:
            failures.append(f"{what}: {a} at start, {b} at end")
    if code != 0:
        failures.append(f"watchd exited {code} on SIGTERM (expected 0)")
    bad_lines = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    if bad_lines:
        failures.append(f"{len(bad_lines)} ERROR/Traceback lines in the log, first: {bad_lines[0]}")
    warnings = sum(1 for line in log.splitlines() if " WARNING " in line)

    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for r in rows[1:]:
        print("| " + " | ".join(r) + " |")
    print()
    print("| resource | start | end | ok |")
    print("|---|---|---|---|")
    for what, a, b, ok in res_rows:
        print(f"| {what} | {a} | {b} | {'yes' if ok else 'NO'} |")
    print()
    print(f"watchd exit status on SIGTERM: {code}; log: {warnings} warnings, {len(bad_lines)} errors")
    if failures:
        print("\nFAILED:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
