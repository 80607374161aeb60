"""The installed `watchd` running commands: hostile file names, process groups, busy policies."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from helpers.hostile import HOSTILE_NAMES, create_hostile_files, pwned_files
from helpers.procs import WATCHD, Watchd, pid_alive, wait_for


def test_hostile_file_names_reach_the_command_exactly(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # the command copies the NUL-separated list and the other variables; names never touch its text
    cmd = (
        'cp "$WATCHD_CHANGED_FILE" list.bin; printf %s "$WATCHD_PATH" > path.bin; '
        'printf %s "$WATCHD_CHANGED" > changed.txt; printf %s "$WATCHD_COUNT" > count.txt'
    )
    w = start_watchd(["--command", cmd, "--cwd", str(out), "--debounce", "300ms", str(src)])
    paths = create_hostile_files(src)
    assert wait_for((out / "count.txt").exists, timeout=10), w.log()
    assert w.wait_log("exit 0")
    listed = (out / "list.bin").read_bytes()
    assert listed.endswith(b"\0")
    got = listed.split(b"\0")[:-1]
    assert sorted(got) == sorted(paths)  # every name once, byte for byte
    assert (out / "count.txt").read_text() == str(len(HOSTILE_NAMES))
    assert (out / "path.bin").read_bytes() in got
    assert pwned_files(tmp_path) == []
    # the log line stays one line even for a name with a newline
    for line in w.log().splitlines():
        assert line[:2].isdigit() or line == "", f"stray log line: {line!r}"


def test_watchmedo_command_line_works_with_only_the_name_changed(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    out = tmp_path / "seen"
    w = start_watchd(
        [
            "--patterns=*.py;*.html",
            "--ignore-patterns=*.tmp",
            "--recursive",
            "--ignore-directories",
            f'--command=echo "${{watch_event_type}} ${{watch_src_path}}" >> {out}',
            str(src),
        ]
    )
    (src / "page.html").write_text("<p>")
    assert wait_for(lambda: out.exists() and out.read_text().strip() != "")
    event, path = out.read_text().strip().split(" ", 1)
    assert event in ("created", "modified")
    assert path == str(src / "page.html")
    assert w.alive()


def test_sigterm_stops_a_running_command_group(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    pids = tmp_path / "pids"
    # a command with a child of its own: both must die with the process group
    cmd = f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    w = start_watchd(["--command", cmd, str(src)])
    (src / "a.py").write_text("")
    assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    children = [int(p) for p in pids.read_text().split()]
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=10) == 0
    assert wait_for(lambda: not any(pid_alive(p) for p in children), timeout=5)


def test_timeout_kills_the_process_group(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    pids = tmp_path / "pids"
    cmd = f"trap '' TERM; sleep 60 & echo $! >> {pids}; wait; sleep 60"  # ignores TERM: needs KILL
    w = start_watchd(["--command", cmd, "--timeout", "300ms", "--stop-timeout", "500ms", str(src)])
    (src / "a.py").write_text("")
    assert w.wait_log("timed out after 300ms", timeout=5), w.log()
    child = int(pids.read_text().split()[0])
    assert wait_for(lambda: not pid_alive(child), timeout=2)
    assert w.alive()


def test_failing_command_is_a_warning_and_daemon_goes_on(src: Path, start_watchd: type[Watchd]) -> None:
    w = start_watchd(["--command", "exit 3", str(src)])
    (src / "a.py").write_text("")
    assert w.wait_log("exit 3 in")
    assert "WARNING" in w.log()
    (src / "b.py").write_text("")
    assert w.wait_log("exit 3 in", count=2)
    assert w.alive()


def test_on_busy_queue_runs_once_more_with_everything(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    runs = tmp_path / "runs"
    gate = tmp_path / "gate"
    cmd = f'echo "$WATCHD_COUNT" >> {runs}; while [ ! -e {gate} ]; do sleep 0.02; done'
    w = start_watchd(["-v", "--command", cmd, "--on-busy", "queue", str(src)])
    (src / "first.py").write_text("")
    assert wait_for(runs.exists)
    for i in range(3):  # three batches while busy
        (src / f"busy{i}.py").write_text("")
        time.sleep(0.1)
    # all three are queued behind the running command (however late their events came), then it ends
    assert w.wait_log("and 2 more changed will run after it", timeout=10), w.log()
    gate.touch()
    assert wait_for(lambda: len(runs.read_text().split()) == 2)
    assert w.wait_log("exit 0", count=2)
    assert runs.read_text().split() == ["1", "3"]  # one follow-up run with all three


def test_on_busy_ignore_drops_changes(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    runs = tmp_path / "runs"
    gate = tmp_path / "gate"
    cmd = f'echo "$WATCHD_PATH" >> {runs}; while [ ! -e {gate} ]; do sleep 0.02; done'
    w = start_watchd(["--command", cmd, "--on-busy", "ignore", str(src)])
    (src / "first.py").write_text("")
    assert wait_for(runs.exists)
    (src / "dropped.py").write_text("")
    assert w.wait_log("still running; ignoring")
    gate.touch()
    assert w.wait_log("exit 0")
    (src / "after.py").write_text("")
    assert w.wait_log("exit 0", count=2)
    assert [Path(p).name for p in runs.read_text().split()] == ["first.py", "after.py"]


def test_on_busy_restart_stops_and_reruns(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    runs = tmp_path / "runs"
    cmd = f'echo "$$ $WATCHD_COUNT" >> {runs}; sleep 60'
    w = start_watchd(["--command", cmd, "--on-busy", "restart", str(src)])
    (src / "first.py").write_text("")
    assert wait_for(lambda: runs.exists() and runs.read_text().endswith("\n"))  # created before written
    first_pid = int(runs.read_text().split()[0])
    (src / "second.py").write_text("")
    assert wait_for(lambda: len(runs.read_text().splitlines()) == 2)
    assert not pid_alive(first_pid)
    second = runs.read_text().splitlines()[1].split()
    assert second[1] == "2"  # the interrupted run's change is carried over
    assert w.wait_log("restarting the running command")


def test_command_stdin_is_dev_null(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    out = tmp_path / "stdin.txt"
    w = start_watchd(["--command", f"cat > {out}; readlink /proc/self/fd/0 >> {out}", str(src)])
    (src / "a.py").write_text("")
    assert w.wait_log("exit 0")
    assert out.read_text() == "/dev/null\n"  # cat got EOF at once: nothing read, nothing hung


def test_an_env_file_edit_reruns_the_command_with_its_new_values_and_no_value_is_logged(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    """The env file lies outside the watched path and matches no pattern: its edit still counts,
    and the run reads it afresh. Neither its values nor -E's reach the log or --validate."""
    import subprocess  # noqa: PLC0415

    env_file = tmp_path / "app.env"
    env_file.write_text("TOKEN=tok-first-9f2\n")
    out = tmp_path / "out"
    args = ["-p", "*.py", "--env-file", str(env_file), "-E", "MODE=mode-7c1", "--cwd", str(tmp_path)]
    command = 'printf "%s %s\\n" "$TOKEN" "$MODE" >> out'
    w = start_watchd([*args, "-c", command, str(src)])
    (src / "app.py").write_text("x = 1\n")
    assert wait_for(lambda: out.exists() and "tok-first-9f2 mode-7c1\n" in out.read_text(), timeout=10), (
        w.log()
    )
    env_file.write_text("TOKEN=tok-second-4e8\n")
    assert wait_for(lambda: "tok-second-4e8 mode-7c1\n" in out.read_text(), timeout=10), w.log()
    assert w.wait_log("app.env changed")
    validate = subprocess.run(
        [WATCHD, "--validate", *args, "-c", command, str(src)], capture_output=True, text=True, check=True
    )
    assert "env:       MODE=***" in validate.stdout
    for secret in ("tok-first-9f2", "tok-second-4e8", "mode-7c1"):
        assert secret not in w.log()
        assert secret not in validate.stdout + validate.stderr
