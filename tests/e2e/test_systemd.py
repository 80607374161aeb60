"""watchd as a systemd service, without a systemd manager: unit files checked by systemd-analyze,
sd_notify received on a real AF_UNIX datagram socket, live config reloads, journald logging."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.notify import NotifySocket
from helpers.procs import WATCHD, Recorder, Watchd, wait_for

from watchd.systemd import unit_file

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- unit files


def _strip_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# watchd as")
                   and not line.startswith("# (pipx") and not line.startswith("# this unit"))  # fmt: skip


@pytest.mark.parametrize(("name", "template"), [("watchd.service", False), ("watchd@.service", True)])
def test_repository_units_match_what_watchd_prints(name: str, template: bool) -> None:
    shipped = (REPO / "systemd" / name).read_text()
    assert _strip_comments(shipped) == unit_file(template, "%h/.local/bin/watchd")


def _verify(unit: Path, home: Path, runtime: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime), XDG_CONFIG_HOME=str(home / ".config")
    )
    return subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def fake_home(tmp_path: Path) -> tuple[Path, Path]:
    """A home with ~/.local/bin/watchd (as pipx makes it) and a private XDG_RUNTIME_DIR."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (.ci/run installs it)")
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "watchd").symlink_to(WATCHD)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    return home, runtime


@pytest.mark.parametrize("unit", ["watchd.service", "watchd@dev.service"])
def test_shipped_units_pass_systemd_analyze_verify(
    unit: str, fake_home: tuple[Path, Path], tmp_path: Path
) -> None:
    units = tmp_path / "units"
    shutil.copytree(REPO / "systemd", units)
    r = _verify(units / unit, *fake_home)
    assert (r.returncode, r.stderr) == (0, "")


@pytest.mark.parametrize(("flag", "unit"), [([], "watchd.service"), (["watchd@"], "watchd@dev.service")])
def test_printed_units_pass_systemd_analyze_verify(
    flag: list[str], unit: str, fake_home: tuple[Path, Path], tmp_path: Path
) -> None:
    printed = subprocess.run(
        [WATCHD, "--print-unit", *flag], capture_output=True, text=True, check=True
    ).stdout
    assert f"ExecStart={sys.executable} -m watchd --config %E/watchd/" in printed
    assert "\nRestartPreventExitStatus=2\n" in printed  # a config error at start is not restarted
    units = tmp_path / "units"
    units.mkdir()
    (units / unit.replace("dev", "")).write_text(printed)
    r = _verify(units / unit, *fake_home)
    assert (r.returncode, r.stderr) == (0, "")


@pytest.mark.parametrize(
    ("key", "typo", "reported"),
    [
        ("RestartSec=", "RestartSecs=", "RestartSecs"),
        (
            "RestartPreventExitStatus=2",
            "RestartPreventExitStatus=two",
            "Failed to parse value, ignoring: two",
        ),
    ],
)
def test_verify_catches_a_broken_unit(
    key: str, typo: str, reported: str, fake_home: tuple[Path, Path], tmp_path: Path
) -> None:
    """The verification above can fail: a typo'd key or value is reported on stderr."""
    unit = unit_file(False, "%h/.local/bin/watchd")
    assert key in unit
    broken = tmp_path / "broken.service"
    broken.write_text(unit.replace(key, typo))
    r = _verify(broken, *fake_home)
    assert reported in r.stderr


# ----------------------------------------------------------------------------- sd_notify


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def write_config(path: Path, watches: dict[str, dict[str, str]]) -> None:
    lines = ["watches:"]
    for name, keys in watches.items():
        lines.append(f"  {name}:")
        lines += [f"    {k}: {v}" for k, v in keys.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)  # an atomic save, as editors do


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("a", "b", "c"):
        out[name] = tmp_path / name
        out[name].mkdir()
    return out


def test_ready_only_once_watches_are_live(
    tmp_path: Path,
    notify: NotifySocket,
    recorder: Recorder,
    start_watchd: type[Watchd],
    dirs: dict[str, Path],
) -> None:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
    w = start_watchd(["--pidfile", str(recorder.pidfile), str(dirs["a"])], env=env, wait_ready=False)
    notify.wait("READY", "1")
    (dirs["a"] / "right-after-ready.py").write_text("")  # no delay: READY means watching
    assert wait_for(lambda: recorder.names() == ["SIGHUP"])
    ready = notify.wait("READY", "1")
    assert ready["STATUS"].startswith("1 watch, 1 root, 1 directory; last action: none yet")
    status = notify.wait("STATUS", count=2)  # updated after the action
    assert "last action: hup: sent HUP to sigrecorder.py" in status["STATUS"]
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=10) == 0
    notify.wait("STOPPING", "1")


def test_watchdog_pings_keep_coming(
    tmp_path: Path, notify: NotifySocket, start_watchd: type[Watchd], dirs: dict[str, Path]
) -> None:
    """WATCHDOG_USEC from the environment: the process pings, again and again. When (at half the
    interval) is tests/unit/test_watchdog_pings.py's, on an injected clock: the gaps measured here
    would be this machine's scheduling as much as watchd's."""
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="400000")
    start_watchd(["--command", "true", str(dirs["a"])], env=env, wait_ready=False)
    notify.wait("WATCHDOG", "1", count=6, timeout=10)


def test_watchdog_pid_for_another_process_is_ignored(
    tmp_path: Path, notify: NotifySocket, start_watchd: type[Watchd], dirs: dict[str, Path]
) -> None:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    w = start_watchd(["--command", "true", str(dirs["a"])], env=env, wait_ready=False)
    notify.wait("READY")
    (dirs["a"] / "x").write_text("")
    assert w.wait_log("ran true: exit 0")  # the first ping would go out as the loop starts
    assert notify.all("WATCHDOG") == []


def test_no_notify_socket_changes_nothing(start_watchd: type[Watchd], dirs: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    w = start_watchd(["--command", "true", str(dirs["a"])], env=env)
    (dirs["a"] / "x").write_text("")
    assert w.wait_log("ran true: exit 0")
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=5) == 0


def test_commands_do_not_inherit_the_notify_socket(
    notify: NotifySocket, start_watchd: type[Watchd], dirs: dict[str, Path]
) -> None:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
    cmd = 'printf "%s|%s" "${NOTIFY_SOCKET-unset}" "${WATCHDOG_USEC-unset}" > seen'
    w = start_watchd(["--command", cmd, "--cwd", str(dirs["b"]), str(dirs["a"])], env=env, wait_ready=False)
    notify.wait("READY")
    (dirs["a"] / "x").write_text("")
    assert w.wait_log("exit 0")
    assert (dirs["b"] / "seen").read_text() == "unset|unset"


def test_sighup_reloads_keeps_unchanged_watches_and_survives_a_bad_config(
    tmp_path: Path, notify: NotifySocket, start_watchd: type[Watchd], dirs: dict[str, Path]
) -> None:
    cfg = tmp_path / "watchd.yaml"
    out = tmp_path / "out"
    out.mkdir()

    def watch(name: str, debounce: str = "50ms") -> dict[str, str]:
        return {
            "paths": f"[{dirs[name]}]",
            "command": f"'echo $WATCHD_PATH >> {out / name}'",
            "debounce": debounce,
        }

    def runs(name: str) -> list[str]:
        p = out / name
        return p.read_text().split() if p.exists() else []

    write_config(cfg, {"a": watch("a"), "b": watch("b")})
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
    w = start_watchd(["--config", str(cfg)], env=env, wait_ready=False)
    notify.wait("READY", "1")

    # saving the config reloads it: a unchanged, b changed, c added; a change to a in flight is not lost
    (dirs["a"] / "in-flight").write_text("")
    write_config(cfg, {"a": watch("a"), "b": watch("b", "80ms"), "c": watch("c")})
    assert w.wait_log("config file changed: reloading")
    assert w.wait_log("config reloaded: 1 unchanged, 1 changed, 1 added, 0 removed")
    reloading = notify.wait("RELOADING", "1")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    notify.wait("READY", "1", count=2)
    assert wait_for(lambda: runs("a") == [str(dirs["a"] / "in-flight")])
    (dirs["c"] / "new").write_text("")
    assert wait_for(lambda: runs("c") == [str(dirs["c"] / "new")])

    # SIGHUP re-reads it too (here: nothing changed)
    w.signal(signal.SIGHUP)
    assert w.wait_log("SIGHUP: reloading")
    assert w.wait_log("config reloaded: 3 unchanged, 0 changed, 0 added, 0 removed")
    notify.wait("RELOADING", "1", count=2)
    notify.wait("READY", "1", count=3)

    # an invalid config: the old watches keep working, STATUS says why
    cfg.write_text("watches:\n  a:\n    paths: [x]\n    command: true\n    debounce: 5\n")
    assert w.wait_log("config not reloaded, still running the previous one")
    ready = notify.wait("READY", "1", count=4)
    assert "config error, running the previous config" in ready["STATUS"]
    assert "debounce: duration '5' has no unit" in ready["STATUS"]
    (dirs["b"] / "still").write_text("")
    assert wait_for(lambda: runs("b") == [str(dirs["b"] / "still")])
    assert w.alive()

    # valid again: b removed; a waits longer now, so a (wrongly) surviving b would act first
    write_config(cfg, {"a": watch("a", "300ms"), "c": watch("c")})
    assert w.wait_log("config reloaded: 1 unchanged, 1 changed, 0 added, 1 removed")
    ready = notify.wait("READY", "1", count=5)
    assert "config error" not in ready["STATUS"]
    (dirs["b"] / "after-removal").write_text("")
    (dirs["a"] / "sentinel").write_text("")
    assert wait_for(lambda: len(runs("a")) == 2)
    assert runs("b") == [str(dirs["b"] / "still")]  # b stopped with the reload


def test_sighup_without_a_config_file_is_harmless(start_watchd: type[Watchd], dirs: dict[str, Path]) -> None:
    w = start_watchd(["--command", "true", str(dirs["a"])])
    w.signal(signal.SIGHUP)
    assert w.wait_log("nothing to reload")
    assert w.alive()


def test_journald_logging_has_priorities_and_no_timestamps(tmp_path: Path, dirs: dict[str, Path]) -> None:
    log = tmp_path / "journal.log"
    with open(log, "wb") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        proc = subprocess.Popen([WATCHD, "--command", "exit 3", str(dirs["a"])], stdout=f, stderr=f, env=env,
                                start_new_session=True)  # fmt: skip
    try:
        assert wait_for(lambda: "ready" in log.read_text())
        (dirs["a"] / "x").write_text("")
        assert wait_for(lambda: "exit 3" in log.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
    lines = log.read_text().splitlines()
    assert lines[0].startswith("<6>watching 1 watch")
    assert any(line.startswith("<4>command: ") and "exit 3" in line for line in lines)
    assert all(line.startswith("<") for line in lines)


def test_status_counts_stay_the_same_over_a_reload_that_changes_nothing(
    tmp_path: Path, notify: NotifySocket, start_watchd: type[Watchd], dirs: dict[str, Path]
) -> None:
    """watchd's own watch on its config file is not one of the user's roots."""
    for sub in ("x", "y", "z"):
        (dirs["a"] / sub).mkdir()
    cfg = tmp_path / "watchd.yaml"
    write_config(cfg, {"w": {"paths": f"[{dirs['a']}]", "command": "'true'"}})
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
    w = start_watchd(["--config", str(cfg)], env=env, wait_ready=False)
    first = notify.wait("READY", "1")["STATUS"]
    assert first.startswith("1 watch, 1 root, 4 directories;"), first
    w.signal(signal.SIGHUP)
    assert w.wait_log("config reloaded: 1 unchanged")
    second = notify.wait("READY", "1", count=2)["STATUS"]
    assert second.startswith("1 watch, 1 root, 4 directories;"), second
