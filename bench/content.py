"""`content: true`: what remembering every file's bytes costs, and which saves it turns into no action.

    .venv/bin/python bench/content.py [--quick] [--record]

Run by hand, not by CI. A git repository of 100,000 small .py files (1,000 directories of 100;
`--quick`: 10,000) is built under a temporary directory. Two rows, each a fresh watchd on it with
`-p '*.py' --debounce 1s -c 'echo >> actions'`, the second with `--content`:

- ready: launch -> the "ready" log line
- remembered: launch -> content's start-up walk done (its -v line), the digests of every file
- RSS: resident memory once that walk is done (the row without --content: once ready)
- touch 1,000: actions after `touch` of 1,000 files (os.utime)
- checkout 300: actions after `git checkout other; git checkout main`, a branch that differs in 300
  files and back: every file ends as it was (the round trip fits in one batch with a 1 s debounce)
- edit 1: actions after one real edit (the control: both rows act once)
- CPU/file: watchd's CPU time for 1,000 edits that do change the files (each its own content),
  divided by 1,000, in microseconds: the cost of judging a changed file

The row without --content is the reference, measured in the same run. PYTHONDONTWRITEBYTECODE is
removed from watchd's environment (as in run.py).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

from gitignore import settled_cpu  # noqa: E402
from run import interrupt, print_table, ratio, spawn, status_kib, stop  # noqa: E402


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=b@example.test", "-c", "user.name=b", *args],
        check=True,
        capture_output=True,
    )


def make_repo(top: Path, files: int) -> list[Path]:
    made = []
    for i in range(files):
        d = top / f"pkg{i // 100 // 50}" / f"mod{i // 100}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        p = d / f"m{i % 100}.py"
        p.write_text(f"# module {i}\nVALUE = {i}\n\n\ndef f():\n    return VALUE\n")
        made.append(p)
    git(top, "init", "-q", "-b", "main")
    git(top, "add", ".")
    git(top, "commit", "-qm", "start")
    git(top, "checkout", "-qb", "other")
    for p in made[1:301]:
        p.write_text(p.read_text() + "# on the other branch\n")
    git(top, "commit", "-qam", "other")
    git(top, "checkout", "-q", "main")
    return made


def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.005)


def actions_after(out: Path, log: Path, marker: str, op: object) -> int:
    """Run `op`, then a sentinel edit; the actions op caused (the sentinel's own is not counted)."""
    before = len(out.read_text().splitlines()) if out.exists() else 0
    op()  # type: ignore[operator]
    time.sleep(1.5)  # op's batch closes (1 s debounce) before the sentinel's begins
    sentinel = log.parent / "repo" / "pkg0" / "mod0" / f"sentinel_{marker}.py"
    sentinel.write_text(f"VALUE = '{marker}'\n")
    wait_for(lambda: out.exists() and sentinel.name in out.read_text(), 30)
    lines = out.read_text().splitlines()
    return len(lines) - before - 1


def measure(repo: Path, files: list[Path], content: bool, work: Path) -> dict[str, float]:
    out = work / "actions"
    out.unlink(missing_ok=True)
    log = work / "watchd.log"
    log.write_bytes(b"")
    command = f'printf "%s %s\\n" "$WATCHD_COUNT" "$WATCHD_PATH" >> {out}'
    argv = [str(BIN / "watchd"), "-v", "-p", "*.py", "--debounce", "1s", "-c", command, str(repo)]
    if content:
        argv.insert(1, "--content")
    t0 = time.monotonic()
    proc = spawn(argv, log)
    try:
        wait_for(lambda: b"ready" in log.read_bytes(), 120)
        row: dict[str, float] = {"ready": (time.monotonic() - t0) * 1000}
        if content:
            wait_for(lambda: b"remembered in" in log.read_bytes(), 300)
            row["remembered"] = (time.monotonic() - t0) * 1000
            m = re.search(rb"content: ([\d,]+) files remembered in (\d+) ms", log.read_bytes())
            assert m is not None and int(m[1].replace(b",", b"")) >= len(files), m  # and earlier sentinels
        row["rss"] = status_kib(proc.pid, "VmRSS") / 1024
        tag = "c" if content else "p"  # each row's sentinels are new files
        row["touch"] = actions_after(out, log, f"{tag}t", lambda: [os.utime(f) for f in files[1:1001]])

        def checkout() -> None:
            git(repo, "checkout", "-q", "other")
            git(repo, "checkout", "-q", "main")

        row["checkout"] = actions_after(out, log, f"{tag}c", checkout)
        row["edit"] = actions_after(
            out, log, f"{tag}e", lambda: files[5000 % len(files)].write_text(f"VALUE = '{tag}'\n")
        )
        base = settled_cpu(proc.pid)
        for i, f in enumerate(files[2000:3000]):
            f.write_text(f"VALUE = {i} * 2\n")
        row["cpu_per_file"] = (settled_cpu(proc.pid) - base) * 1000 / 1000  # ms -> µs per file
        git(repo, "checkout", "--", ".")
        return row
    finally:
        stop(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10,000 files instead of 100,000")
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    n = 10_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(prefix="watchd-bench-content-") as tmp:
        work = Path(tmp)
        files = make_repo(work / "repo", n)
        rows = {
            "watchd": measure(work / "repo", files, False, work),
            "watchd --content": measure(work / "repo", files, True, work),
        }

    def cells(r: dict[str, float], ref: dict[str, float]) -> list[str]:
        return [
            ratio(r["ready"], ref["ready"]),
            f"{r['remembered']:.0f}" if "remembered" in r else "-",
            ratio(r["rss"], ref["rss"], 1),
            f"{r['touch']:.0f}",
            f"{r['checkout']:.0f}",
            f"{r['edit']:.0f}",
            ratio(r["cpu_per_file"], max(ref["cpu_per_file"], 1)),
        ]

    head = "ready (ms) | remembered (ms) | RSS (MiB) | touch 1,000 | checkout 300 | edit 1 | CPU/file (µs)"
    intro = [f"{n:,} .py files, 1 s debounce.", ""]
    print_table("content.py", rows, head, cells, intro=intro, record_it=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
