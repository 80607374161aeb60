"""poll: auto on a real FUSE mount whose type is a network filesystem's (bindfs, mounted with
subtype sshfs in a private mount namespace): a change made beside the mount -- as the host of a VM or
another machine would make it -- raises no event through it, and only polling sees it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from helpers.procs import Watchd, wait_for

pytestmark = [
    pytest.mark.linux_only("a FUSE mount in a private mount namespace (unshare, bindfs)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root (in a private mount namespace)"),
    pytest.mark.skipif(
        shutil.which("bindfs") is None or not os.path.exists("/dev/fuse"),
        reason="needs bindfs and /dev/fuse (.ci/run installs bindfs)",
    ),
]

# Runs in a new mount namespace: mount `host` at `mnt` as fuse.sshfs (bindfs in the foreground, its
# PID written down), wait for the mount, then exec watchd (the rest of the arguments).
MOUNT_THEN_EXEC = """
bindfs -f -o subtype=sshfs "$1" "$2" & echo $! > "$3"
i=0
until grep -q " $2 .* - fuse.sshfs " /proc/self/mountinfo; do
    i=$((i + 1)); [ "$i" -lt 200 ] || exit 3; sleep 0.05
done
shift 3
exec "$@"
"""


@pytest.fixture
def share(tmp_path: Path) -> tuple[Path, Path, Path]:
    host, mnt = tmp_path / "host", tmp_path / "mnt"
    host.mkdir()
    mnt.mkdir()
    bindfs_pid = tmp_path / "bindfs.pid"
    yield host, mnt, bindfs_pid
    if bindfs_pid.exists():  # watchd is gone by now; the FUSE daemon it ran beside goes too
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(bindfs_pid.read_text()), signal.SIGTERM)


def start(start_watchd: type[Watchd], share: tuple[Path, Path, Path], args: list[str]) -> Watchd:
    """watchd with `args`, in a mount namespace where the share is mounted."""
    host, mnt, bindfs_pid = share
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_THEN_EXEC, "sh"]
    return start_watchd(args, prefix=[*prefix, str(host), str(mnt), str(bindfs_pid)])


def test_poll_auto_polls_a_root_on_a_network_filesystem_and_sees_a_change_made_beside_it(
    tmp_path: Path, share: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    host, mnt, _ = share
    out = tmp_path / "out"
    command = f'printf "%s\\n" "$WATCHD_CHANGED" >> {out}'
    # poll: auto, the default
    w = start(start_watchd, share, ["--poll-interval", "200ms", "-p", "*.py", "-c", command, str(mnt)])
    assert f"{mnt} is on fuse.sshfs, where changes made by other machines" in w.log()
    assert "polling it every 0.2s (poll: false keeps native events)" in w.log()
    (host / "app.py").write_text("x = 1\n")  # beside the mount: no event comes through it
    assert wait_for(lambda: out.exists() and f"{mnt}/app.py" in out.read_text(), timeout=10), w.log()


def test_poll_false_keeps_native_events_with_a_warning_and_misses_the_change_made_beside_it(
    tmp_path: Path, share: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    host, mnt, _ = share
    out = tmp_path / "out"
    config = tmp_path / "w.yaml"
    config.write_text(
        f"watches:\n  w:\n    paths: [{mnt}]\n    patterns: ['*.py']\n    poll: false\n"
        f"    command: printf '%s\\n' \"$WATCHD_CHANGED\" >> {out}\n"
    )
    w = start(start_watchd, share, ["--config", str(config)])
    assert f"{mnt} is on fuse.sshfs: changes made by other machines" in w.log()
    (host / "beside.py").write_text("x = 1\n")  # unseen: native events only
    # through the mount (in watchd's mount namespace, where it is mounted): seen
    script = 'printf "sentinel = 1\\n" > "$1"'
    subprocess.run(
        ["nsenter", "-t", str(w.proc.pid), "-m", "sh", "-c", script, "sh", str(mnt / "sentinel.py")],
        check=True,
    )
    assert wait_for(lambda: out.exists() and "sentinel.py" in out.read_text(), timeout=10), w.log()
    assert out.read_text().splitlines() == [f"{mnt}/sentinel.py"]
