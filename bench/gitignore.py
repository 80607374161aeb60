"""`gitignore: true`: what honouring a repository's ignore files costs and saves.

    .venv/bin/python bench/gitignore.py [--quick] [--record]

Run by hand, not by CI. One git repository is built under a temporary directory: `src/` with
500 directories of 4 .py files each (2,000 files), and `build/` (git-ignored) with 10,000 directories
of 2 files each, plus a realistic `.gitignore` (40 lines of the usual Python and editor patterns)
and a nested one in `src/` (`--quick`: a tenth of each). Two rows, each a fresh watchd on the whole
repository, `--dry-run --command true` (changes are judged, batched and logged, nothing runs):
- watchd: `watchd --dry-run --command true REPO`
- watchd --gitignore: the same with `--gitignore`

Columns:
- ready: launch -> the "ready" log line, median of 5 launches (the tree walk that sets up the watches)
- watches: inotify watches held (/proc/PID/fdinfo)
- RSS: resident memory once ready
- CPU build/: watchd's CPU time (utime + stime) while 5,000 files are written in `build/` and it
  settles (until its CPU time stops growing for 1 s)
- CPU src/ first: the same for 2,000 writes of files in `src/`, which both rows count, each file
  written for the first time since watchd started (with --gitignore: each path's first answer is
  worked out, the rules of a directory the first time one of its files changes)
- CPU src/ again: the same 2,000 writes once more (answers remembered: the usual edit-save loop)

The goal is stated against the row without --gitignore, measured in the same run: start-up and CPU
for changes saved again within 1.2x, and what an ignored build costs (watches, CPU) a small fraction.
PYTHONDONTWRITEBYTECODE is removed from watchd's environment (as in run.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

from run import inotify_watches, interrupt, print_table, ratio, spawn, status_kib, stop  # noqa: E402

GITIGNORE = """\
__pycache__/
*.py[cod]
*$py.class
*.so
.Python
build/
develop-eggs/
dist/
downloads/
eggs/
.eggs/
lib64/
parts/
sdist/
var/
wheels/
*.egg-info/
.installed.cfg
*.egg
MANIFEST
*.manifest
*.spec
pip-log.txt
htmlcov/
.tox/
.nox/
.coverage
.coverage.*
.cache
nosetests.xml
coverage.xml
*.cover
.hypothesis/
.pytest_cache/
*.log
local_settings.py
instance/
.env
.venv
/site
"""


def make_repo(top: Path, scale: int) -> Path:
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    (top / ".gitignore").write_text(GITIGNORE)
    for i in range(500 // scale):
        d = top / "src" / f"pkg{i // 50}" / f"mod{i}"
        d.mkdir(parents=True)
        for j in range(4):
            (d / f"m{j}.py").write_text("x = 1\n")
    (top / "src" / ".gitignore").write_text("*.generated.py\n!keep.generated.py\n")
    for i in range(10_000 // scale):
        d = top / "build" / f"lib{i // 100}" / f"d{i}"
        d.mkdir(parents=True)
        for j in range(2):
            (d / f"o{j}.o").write_text("")
    return top


def cpu_ms(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def settled_cpu(pid: int) -> float:
    """watchd's CPU time once it has stopped growing for 1 s."""
    last, still = cpu_ms(pid), time.monotonic()
    while time.monotonic() - still < 1.0:
        time.sleep(0.1)
        now = cpu_ms(pid)
        if now != last:
            last, still = now, time.monotonic()
    return last


def launch(argv: list[str], log: Path) -> tuple[subprocess.Popen[bytes], float]:
    log.write_bytes(b"")
    t0 = time.monotonic()
    proc = spawn(argv, log)
    while b"ready" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() - t0 > 60:
            raise RuntimeError(f"watchd did not become ready: {log.read_text()}")
        time.sleep(0.002)
    return proc, (time.monotonic() - t0) * 1000


def measure(repo: Path, extra: list[str], work: Path, scale: int) -> dict[str, float]:
    argv = [str(BIN / "watchd"), "--dry-run", "--command", "true", *extra, str(repo)]
    readies = []
    for _ in range(5):
        proc, ready = launch(argv, work / "watchd.log")
        readies.append(ready)
        stop(proc)
    proc, _ = launch(argv, work / "watchd.log")
    try:
        row = {"ready": statistics.median(readies), "watches": inotify_watches(proc.pid)}
        row["rss"] = status_kib(proc.pid, "VmRSS") / 1024
        base = settled_cpu(proc.pid)
        for i in range(5_000 // scale):
            (repo / "build" / f"lib{i // 100}" / f"d{i}" / "o0.o").write_text(f"{i}\n")
        after_build = settled_cpu(proc.pid)
        cpu = after_build
        for key in ("cpu_src", "cpu_again"):
            for i in range(2_000 // scale):
                (repo / "src" / f"pkg{i // 4 // 50}" / f"mod{i // 4}" / f"m{i % 4}.py").write_text(
                    f"x = {i}\n"
                )
            now = settled_cpu(proc.pid)
            row[key], cpu = now - cpu, now
        row["cpu_build"] = after_build - base
    finally:
        stop(proc)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a tenth of the tree and of the writes")
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory(prefix="watchd-bench-gitignore-") as tmp:
        work = Path(tmp)
        repo = make_repo(work / "repo", scale)
        rows = {
            "watchd": measure(repo, [], work, scale),
            "watchd --gitignore": measure(repo, ["--gitignore"], work, scale),
        }

    def cells(r: dict[str, float], ref: dict[str, float]) -> list[str]:
        return [
            ratio(r["ready"], ref["ready"]),
            ratio(r["watches"], ref["watches"]),
            f"{r['rss']:.1f}",
            f"{r['cpu_build']:.0f}",
            ratio(r["cpu_src"], max(ref["cpu_src"], 1)),
            ratio(r["cpu_again"], max(ref["cpu_again"], 1)),
        ]

    head = "ready (ms) | watches | RSS (MiB) | CPU build/ (ms) | CPU src/ first (ms) | CPU src/ again (ms)"
    print_table("gitignore.py", rows, head, cells, record_it=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
