"""What watchd's import hook (watch_imports) costs an app: Django's import with and without it.

    .venv/bin/python bench/imports.py [--runs N] [--record]

Run by hand, not by CI. Each run starts the venv's interpreter on
`import django; from django.core.handlers.wsgi import WSGIHandler; import django.contrib.admin`
(about 400 modules) and measures launch -> exit (wall clock), alternating two rows, N runs each
(default 30), after 3 warm-up runs of each; median and p90 (nearest rank):
- plain: the interpreter as it is
- hook: what watchd gives an app with watch_imports: the hook's directory first on PYTHONPATH and
  WATCHD_IMPORTS_FD, a pipe this script drains (as watchd's reader does), counting the files reported

The goal, against the plain column of the same run: the hook adds under 5% to the median. A second
row times `python -c pass` both ways: the hook's fixed cost.
PYTHONDONTWRITEBYTECODE is removed from the children's environment (as in run.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import CHILD_ENV, nearest_rank, record  # noqa: E402

from watchd.actions.imports import HOOK_DIR  # noqa: E402

DJANGO = "import django; from django.core.handlers.wsgi import WSGIHandler; import django.contrib.admin"


def once(code: str, hook: bool) -> tuple[float, int]:
    """Launch -> exit in ms, and the files the hook reported (0 without it)."""
    env = dict(CHILD_ENV)
    env.pop("PYTHONPATH", None)
    fds: tuple[int, ...] = ()
    r = w = -1
    if hook:
        r, w = os.pipe()
        env.update(PYTHONPATH=HOOK_DIR, WATCHD_IMPORTS_FD=f"{w}:{os.fstat(w).st_ino}")
        fds = (w,)
    reported = [0]

    def drain() -> None:
        while data := os.read(r, 65536):
            reported[0] += data.count(b"\0")

    reader = threading.Thread(target=drain) if hook else None
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, pass_fds=fds)
    if hook:
        os.close(w)
        assert reader is not None
        reader.start()
    proc.wait()
    took = (time.monotonic() - t0) * 1000
    if reader is not None:
        reader.join()
        os.close(r)
    return took, max(0, reported[0] - 1)  # less the hello


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    rows = []
    for label, code in (("import django (+ admin, wsgi)", DJANGO), ("python -c pass", "pass")):
        times: dict[bool, list[float]] = {False: [], True: []}
        files = 0
        for i in range(args.runs + 3):
            for hook in (False, True):
                took, n = once(code, hook)
                if i >= 3:
                    times[hook].append(took)
                    files = max(files, n)
        plain, hooked = statistics.median(times[False]), statistics.median(times[True])
        rows.append(
            f"| {label} | {plain:.1f} / {nearest_rank(times[False], 90):.1f} "
            f"| {hooked:.1f} / {nearest_rank(times[True], 90):.1f} | {hooked / plain:.3f}x | {files} |"
        )
    out = "\n".join(
        [
            "| code | plain: median / p90 (ms) | with the hook: median / p90 (ms) | ratio | files reported |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(out)
    if args.record:
        record("imports.py", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
