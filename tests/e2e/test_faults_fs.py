"""Filesystem faults watchdog leaves silent, made loud and survivable: queue overflow, the watch
limit, roots renamed / deleted / re-created / swapped by symlink (the Kubernetes ConfigMap way)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from helpers.procs import WATCHD, Watchd, stop_process, wait_for


class Runs:
    """A command watch's record: one line per run with its event type and every path it got."""

    def __init__(self, directory: Path, name: str) -> None:
        self.file = directory / f"{name}.runs"
        # the NUL-separated list, turned into one line of '|'-separated paths per run
        self.command = (
            f'printf "%s " "$watch_event_type" >> {self.file}; '
            f'tr "\\0" "|" < "$WATCHD_CHANGED_FILE" >> {self.file}; echo >> {self.file}'
        )

    def lines(self) -> list[str]:
        return self.file.read_text().splitlines() if self.file.exists() else []

    def paths(self) -> list[str]:
        return [p for line in self.lines() for p in line.split(" ", 1)[1].split("|") if p]


def write_config(path: Path, watches: dict[str, tuple[Path, str, str]]) -> None:
    lines = ["watches:"]
    for name, (root, command, extra) in watches.items():
        lines += [f"  {name}:", f"    paths: ['{root}']", f"    command: '{command}'", "    debounce: 100ms"]
        if extra:
            lines.append(f"    {extra}")
    path.write_text("\n".join(lines) + "\n")


def _queued_events_limit() -> int:
    return int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())


@pytest.mark.linux_only("inotify's kernel queue overflow (IN_Q_OVERFLOW)")
def test_queue_overflow_is_reported_and_every_watch_acts_once(
    tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    ra, rb = Runs(tmp_path, "a"), Runs(tmp_path, "b")
    cfg = tmp_path / "watchd.yaml"
    write_config(cfg, {"a": (a, ra.command, ""), "b": (b, rb.command, "")})
    w = start_watchd(["--config", str(cfg)])
    n = _queued_events_limit() + 1000  # each new file is two events (create, close-write)
    os.kill(w.proc.pid, signal.SIGSTOP)  # watchd cannot read: the kernel queue overflows
    try:
        for i in range(n):
            (a / f"f{i}").touch()
    finally:
        os.kill(w.proc.pid, signal.SIGCONT)
    assert w.wait_log("inotify queue overflowed", timeout=10), w.log()
    # b saw no change of its own, but events were lost: it acts once, as a rescan
    assert wait_for(lambda: len(rb.lines()) == 1, timeout=10), w.log()
    assert rb.lines()[0].startswith("rescan ")
    assert wait_for(lambda: len(ra.lines()) >= 1, timeout=10)
    # afterwards, b is back to normal: its next change is an ordinary one, and nothing else was pending
    (b / "after").write_text("")
    assert wait_for(lambda: len(rb.lines()) == 2)
    assert rb.lines()[1].split(" ", 1)[0] in ("created", "modified")
    assert w.alive()


def _can_limit(what: str) -> bool:
    """Whether a user namespace of ours can lower /proc/sys/user/max_inotify_<what>."""
    if not shutil.which("unshare"):
        return False
    probe = f"echo 0 > /proc/sys/user/max_inotify_{what}"
    argv = ["unshare", "--user", "--map-root-user", "sh", "-c", probe]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


needs_userns = pytest.mark.skipif(
    not _can_limit("watches"),
    reason="needs unshare --user --map-root-user and a writable /proc/sys/user/max_inotify_watches",
)


def _start_limited(limit: int, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """watchd in its own user namespace whose inotify watch limit is `limit` (the machine's is untouched)."""
    script = f'echo {limit} > /proc/sys/user/max_inotify_watches && exec "$@"'
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "sh", "-c", script, "sh", WATCHD, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.linux_only("inotify's watch limit (fs.inotify.max_user_watches)")
@needs_userns
def test_watch_limit_at_start_falls_back_to_polling(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(30):
        (src / f"d{i}" / "deep").mkdir(parents=True)
    runs = Runs(tmp_path, "w")
    log = tmp_path / "watchd.log"
    proc = _start_limited(10, ["--command", runs.command, "--poll-interval", "200ms", str(src)], log)
    try:
        assert wait_for(lambda: "ready" in log.read_text(), timeout=10), log.read_text()
        text = log.read_text()
        assert "the inotify watch limit (fs.inotify.max_user_watches = 10) is reached" in text
        assert "sudo sysctl fs.inotify.max_user_watches=524288" in text
        assert "polling it every 0.2s instead" in text
        assert "degraded: 1 root polled" in text
        target = src / "d29" / "deep" / "x.py"
        target.write_text("")
        assert wait_for(lambda: str(target) in runs.paths(), timeout=10), log.read_text()
    finally:
        stop_process(proc)


@pytest.mark.linux_only("inotify's watch limit (fs.inotify.max_user_watches)")
@needs_userns
def test_watch_limit_reached_later_switches_that_root_to_polling(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    runs = Runs(tmp_path, "w")
    log = tmp_path / "watchd.log"
    proc = _start_limited(8, ["--command", runs.command, "--poll-interval", "200ms", str(src)], log)
    try:
        assert wait_for(lambda: "ready" in log.read_text(), timeout=10), log.read_text()
        assert "degraded" not in log.read_text()
        for i in range(20):  # more new directories than watches left
            (src / f"new{i}").mkdir()
        assert wait_for(
            lambda: "inotify watch limit reached while watching it" in log.read_text(), timeout=10
        )
        target = src / "new19" / "late.py"
        target.write_text("")
        assert wait_for(lambda: str(target) in runs.paths(), timeout=10), log.read_text()
        assert proc.poll() is None
    finally:
        stop_process(proc)


def test_renamed_root_reports_nothing_under_its_old_path(tmp_path: Path, start_watchd: type[Watchd]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    runs = Runs(tmp_path, "w")
    w = start_watchd(["--command", runs.command, "--debounce", "100ms", str(src)])
    os.rename(src, tmp_path / "src.old")
    (tmp_path / "src.old" / "stale.py").write_text("")  # at once: must never be reported as src/stale.py
    assert w.wait_log("was deleted or moved")
    src.mkdir()
    assert w.wait_log("appeared; watching it")
    (src / "fresh.py").write_text("")
    assert wait_for(lambda: str(src / "fresh.py") in runs.paths())
    assert str(src / "stale.py") not in runs.paths()
    assert all("src.old" not in p for p in runs.paths())


def test_root_deleted_and_recreated_repeatedly(tmp_path: Path, start_watchd: type[Watchd]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    runs = Runs(tmp_path, "w")
    w = start_watchd(["--command", runs.command, str(src)])
    for i in range(3):
        shutil.rmtree(src)
        src.mkdir()
        (src / f"round{i}.py").write_text("")  # the appearance scan or the new watch reports it
        assert wait_for(lambda i=i: str(src / f"round{i}.py") in runs.paths()), w.log()
    assert w.alive()


def test_root_symlink_swapped_atomically(tmp_path: Path, start_watchd: type[Watchd]) -> None:
    """`current -> releases/v1` swapped to v2 the atomic way (new link, rename over the old one)."""
    releases = tmp_path / "releases"
    (releases / "v1").mkdir(parents=True)
    (releases / "v2").mkdir()
    current = tmp_path / "current"
    current.symlink_to(releases / "v1")
    runs = Runs(tmp_path, "w")
    w = start_watchd(["--command", runs.command, "--debounce", "100ms", str(current)])
    (current / "before.py").write_text("")
    assert wait_for(lambda: str(current / "before.py") in runs.paths())
    (tmp_path / "current.tmp").symlink_to(releases / "v2")
    os.rename(tmp_path / "current.tmp", current)
    # at once, before watchd's periodic root check: the old release is no longer `current`
    (releases / "v1" / "stale.py").write_text("")
    assert w.wait_log("appeared; watching it"), w.log()
    (current / "after.py").write_text("")
    assert wait_for(lambda: str(current / "after.py") in runs.paths()), w.log()
    assert str(current / "stale.py") not in runs.paths()


def test_configmap_style_update_is_seen_every_time(tmp_path: Path, start_watchd: type[Watchd]) -> None:
    """Kubernetes updates a ConfigMap volume by writing a new timestamped directory and renaming
    a `..data` symlink over the old one; the visible files are symlinks through `..data`."""
    volume = tmp_path / "config"
    volume.mkdir()

    def publish(version: int) -> None:
        stamp = volume / f"..2026_11_21_{version:02d}"
        stamp.mkdir()
        (stamp / "app.yaml").write_text(f"version: {version}\n")
        tmp_link = volume / "..data_tmp"
        tmp_link.symlink_to(stamp.name)
        os.rename(tmp_link, volume / "..data")
        for old in volume.glob("..2026_11_21_*"):
            if old != stamp:
                shutil.rmtree(old)

    publish(1)
    (volume / "app.yaml").symlink_to("..data/app.yaml")
    runs = Runs(tmp_path, "w")
    w = start_watchd(["--command", runs.command, "--pattern", "*.yaml", "--debounce", "200ms", str(volume)])
    for version in (2, 3):
        publish(version)
        assert wait_for(lambda v=version: len(runs.lines()) == v - 1), w.log()
        assert (volume / "app.yaml").read_text() == f"version: {version}\n"
    assert w.alive()


def _configmap(volume: Path) -> Callable[[str, str], None]:
    """A ConfigMap-style volume: `publish(name, text)` writes a new timestamped directory and
    swaps the `..data` symlink over to it; `volume/name -> ..data/name` stays the same symlink."""
    volume.mkdir()
    generation = [0]

    def publish(name: str, text: str) -> None:
        generation[0] += 1
        stamp = volume / f"..2026_11_30_{generation[0]:02d}"
        stamp.mkdir()
        (stamp / name).write_text(text)
        tmp_link = volume / "..data_tmp"
        tmp_link.symlink_to(stamp.name)
        os.rename(tmp_link, volume / "..data")
        for old in volume.glob("..2026_11_30_*"):
            if old != stamp:
                shutil.rmtree(old)
        if not (volume / name).is_symlink():
            (volume / name).symlink_to(f"..data/{name}")

    return publish


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "poll"])
def test_a_single_file_behind_a_configmap_symlink_swap_is_seen(
    tmp_path: Path, start_watchd: type[Watchd], poll: bool
) -> None:
    """A watch on the file itself (its parent directory is watched for it): the swap renames
    `..data`, and no event ever names `app.yaml`."""
    volume = tmp_path / "config"
    publish = _configmap(volume)
    publish("app.yaml", "version: 1\n")
    runs = Runs(tmp_path, "w")
    extra = ["--poll", "--poll-interval", "100ms"] if poll else []
    w = start_watchd(["--command", runs.command, *extra, str(volume / "app.yaml")])
    for version in (2, 3):
        publish("app.yaml", f"version: {version}\n")
        assert wait_for(lambda v=version: len(runs.lines()) == v - 1, timeout=10), w.log()
    assert set(runs.paths()) == {str(volume / "app.yaml")}


def test_watchd_reloads_its_own_config_behind_a_configmap_symlink_swap(
    tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    volume = tmp_path / "config"
    src = tmp_path / "src"
    src.mkdir()
    publish = _configmap(volume)
    watch = f"    paths: [{src}]\n    command: 'true'\n"
    publish("watchd.yaml", f"watches:\n  a:\n{watch}")
    w = start_watchd(["--config", str(volume / "watchd.yaml")])
    publish("watchd.yaml", f"watches:\n  a:\n{watch}  b:\n{watch}")
    assert w.wait_log("config reloaded: 1 unchanged, 0 changed, 1 added", timeout=10), w.log()


@pytest.mark.linux_only("inotify's instance limit (fs.inotify.max_user_instances)")
@pytest.mark.skipif(
    not _can_limit("instances"), reason="needs a writable /proc/sys/user/max_inotify_instances"
)
def test_no_inotify_instance_for_a_root_that_appears_later_polls_it(tmp_path: Path) -> None:
    """No instance at start (the root is missing), none to be had when it appears (nor for the
    config file's own watch): each is polled, with the sysctl named; nothing escapes as a traceback."""
    later = tmp_path / "later"
    runs = Runs(tmp_path, "w")
    config = tmp_path / "watchd.yaml"
    config.write_text(
        f"watches:\n  w:\n    paths: [{later}]\n    command: {json.dumps(runs.command)}\n"
        "    poll_interval: 100ms\n"
    )
    log = tmp_path / "watchd.log"
    script = 'echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"'
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "unshare",
                "--user",
                "--map-root-user",
                "sh",
                "-c",
                script,
                "sh",
                WATCHD,
                "--config",
                str(config),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for(lambda: "ready" in log.read_text(), timeout=10), log.read_text()
        later.mkdir()
        (later / "a.py").write_text("")
        assert wait_for(lambda: str(later / "a.py") in runs.paths(), timeout=10), log.read_text()
        text = log.read_text()
        assert "fs.inotify.max_user_instances" in text and "polling it every" in text
        assert "Traceback" not in text
        assert proc.poll() is None
    finally:
        stop_process(proc)


def test_two_thousand_open_descriptors_before_start(tmp_path: Path) -> None:
    """Descriptors numbered 1024 and up (an inherited pile of them): select() could not wait on them."""
    src = tmp_path / "src"
    src.mkdir()
    runs = Runs(tmp_path, "w")
    log = tmp_path / "watchd.log"
    wrapper = (
        "import os, resource, sys\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))\n"
        "fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(2000)]\n"
        "for fd in fds:\n"
        "    os.set_inheritable(fd, True)\n"
        "os.execv(sys.argv[1], sys.argv[1:])\n"
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", wrapper, WATCHD, "--command", runs.command, str(src)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for(lambda: "ready" in log.read_text(), timeout=10), log.read_text()
        assert psutil.Process(proc.pid).num_fds() >= 2003  # 0-2 and 2000 more: its own are above 1024
        (src / "a.py").write_text("")
        assert wait_for(lambda: str(src / "a.py") in runs.paths(), timeout=10), log.read_text()
        assert proc.poll() is None
    finally:
        stop_process(proc)
