"""Run mode end to end: the installed watchd runs real apps, restarts them, stops them.

Apps are small scripts written by the tests, serving HTTP on 127.0.0.1 (an ephemeral port, or
the socket watchd holds with `--listen`); every wait is bounded.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.apps import plain_app, save
from helpers.changes import write_sentinel
from helpers.notify import NotifySocket
from helpers.procs import Watchd, pid_alive, stop_process, wait_for, zombie_children
from helpers.servers import Poller, free_port, http_get, listening_port

PY = sys.executable


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    return d


def env_with(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env.update(extra)
    return env


def pids_in(log: str, what: str = "new pid") -> list[int]:
    return [int(m) for m in re.findall(rf"{what} (\d+)", log)]


def test_edit_restarts_the_app_and_the_new_code_answers(app_dir: Path, start_watchd: type[Watchd]) -> None:
    port = free_port()
    plain_app(app_dir, "v1")
    w = start_watchd(["-p", "*.py", "--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    first = int(re.findall(r"started \S+ app.py \(pid (\d+)\)", w.log())[0])
    for i in (2, 3):
        plain_app(app_dir, f"v{i}")
        assert wait_for(lambda i=i: http_get(port, 1) == f"v{i}", timeout=3), w.log()
    assert w.wait_log("restarted", count=2)
    # one restart per save: a change after them is the third restart, alone in its batch
    write_sentinel(app_dir / "sentinel.py")
    assert w.wait_log("sentinel.py changed; restarted", timeout=10), w.log()
    assert w.log().count("restarted") == 3, w.log()
    assert not pid_alive(first)
    line = next(line for line in w.log().splitlines() if "restarted" in line)
    assert re.search(
        rf"run: app.py changed; restarted \S+ app.py: pid {first} stopped \(exit 0\) in \d\.\d\d s, "
        r"new pid \d+$",
        line,
    ), line


def test_a_200_file_burst_is_one_restart(app_dir: Path, start_watchd: type[Watchd]) -> None:
    port = free_port()
    plain_app(app_dir, "v1")
    (app_dir / "pkg").mkdir()
    w = start_watchd(["-p", "*.py", "--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    for i in range(200):
        (app_dir / "pkg" / f"m{i}.py").write_text(f"X = {i}\n")
    plain_app(app_dir, "v2")
    assert wait_for(lambda: http_get(port, 1) == "v2", timeout=5), w.log()
    assert w.wait_log("restarted")
    # the burst was one batch: a change after it is the second restart, alone in its batch
    write_sentinel(app_dir / "sentinel.py")
    assert w.wait_log("sentinel.py changed; restarted", timeout=10), w.log()
    assert w.log().count("restarted") == 2, w.log()
    assert "and 200 more changed; restarted" in w.log() or "and 199 more changed" in w.log(), w.log()


def test_a_syntax_error_at_start_does_not_end_watchd_and_a_fix_starts_the_app(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    port = free_port()
    plain_app(app_dir, "v1", broken=True)
    # --no-check: the Python app's default check would keep a broken save from restarting it
    w = start_watchd(
        ["-p", "*.py", "--no-check", "--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port))
    )
    assert w.wait_log("exited: exit 1 after", timeout=10), w.log()
    assert w.wait_log("waiting for a change to start it again")
    assert "SyntaxError" in w.log()  # the app's own traceback, on watchd's output
    assert w.alive()
    plain_app(app_dir, "v2")
    assert wait_for(lambda: http_get(port, 1) == "v2", timeout=5), w.log()
    assert w.wait_log("app.py changed; started"), w.log()  # logged once the start is done
    # and once more: a broken save while it runs, then the fix
    plain_app(app_dir, "v3", broken=True)
    assert w.wait_log("exited: exit 1 after", count=2, timeout=5), w.log()
    plain_app(app_dir, "v4")
    assert wait_for(lambda: http_get(port, 1) == "v4", timeout=5), w.log()


def test_a_python_app_is_checked_by_default_so_a_broken_save_keeps_it_serving(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    """The new user's 49 refused requests: without a check a save that does not compile takes
    the app down until the next save. `watchd -- python app.py` checks it first, by default."""
    port = free_port()
    plain_app(app_dir, "v1")
    w = start_watchd(["--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    pid = re.findall(r"started .* \(pid (\d+)\)", w.log())[-1]
    plain_app(app_dir, "v2", broken=True)
    assert w.wait_log("app.py changed; check python failed (SyntaxError in app.py"), w.log()
    assert http_get(port, 1) == "v1"  # the running app was never stopped
    assert f"pid {pid} stopped" not in w.log()
    plain_app(app_dir, "v3")
    assert wait_for(lambda: http_get(port, 1) == "v3", timeout=10), w.log()


def test_launch_and_restart_environment(app_dir: Path, start_watchd: type[Watchd]) -> None:
    script = app_dir / "env.py"
    out = app_dir / "seen"
    save(
        script,
        textwrap.dedent(f"""\
        import os, time
        with open({str(out)!r}, "a") as f:
            keys = ("WATCHD_WATCH", "WATCHD_COUNT", "WATCHD_PATH", "WATCHD_RESTARTS")
            f.write(" ".join(k + "=" + os.environ[k] for k in keys) + "\\n")
        time.sleep(600)
        """),
    )
    w = start_watchd(["-p", "*.py", "--", PY, "env.py"], cwd=app_dir)
    assert wait_for(out.exists, timeout=10), w.log()
    (app_dir / "other.py").write_text("")
    assert wait_for(lambda: len(out.read_text().splitlines()) == 2, timeout=5), w.log()
    launch, restart = out.read_text().splitlines()
    assert launch == "WATCHD_WATCH=run WATCHD_COUNT=0 WATCHD_PATH= WATCHD_RESTARTS=0"
    assert restart == f"WATCHD_WATCH=run WATCHD_COUNT=1 WATCHD_PATH={app_dir / 'other.py'} WATCHD_RESTARTS=1"


# ----------------------------------------------------------------------------- stopping


def test_a_term_ignoring_app_is_killed_after_the_stop_timeout(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    ignoring = app_dir.parent / "ignoring-term"
    save(
        app_dir / "stubborn.py",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ignoring)!r}, 'w').close()\ntime.sleep(600)\n",
    )
    w = start_watchd(["-p", "*.py", "--stop-timeout", "300ms", "--", PY, "stubborn.py"], cwd=app_dir)
    # (a change before the app ignores TERM would stop it with TERM: wait until it does)
    assert wait_for(ignoring.exists, timeout=10), w.log()
    (app_dir / "x.py").write_text("")
    assert w.wait_log("restarted", timeout=5), w.log()
    line = next(line for line in w.log().splitlines() if "restarted" in line)
    assert "stopped (killed by SIGKILL, KILLed after the stop timeout) in 0.3" in line, line


def test_grandchildren_are_gone_after_each_restart_and_after_shutdown(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    pids = tmp_path / "pids"
    w = start_watchd(["-p", "*.py", "--run", f"sleep 1000 & echo $! >> {pids}; wait"], cwd=app_dir)
    assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 1, timeout=10), w.log()
    (app_dir / "a.py").write_text("")
    assert wait_for(lambda: len(pids.read_text().split()) == 2, timeout=5), w.log()
    first, second = (int(p) for p in pids.read_text().split())
    assert not pid_alive(first)
    assert pid_alive(second)
    assert w.stop() == 0
    assert wait_for(lambda: not pid_alive(second), timeout=2)


SLOWSTOP = """\
#!/bin/sh
# exits 0.3 s after TERM, leaving a mark: the grace period reached the script
trap 'sleep 0.3; echo "$$" >> {marks}; exit 0' TERM
echo "$$" >> {starts}
while :; do sleep 0.05; done
"""


@pytest.mark.parametrize("mode", ["run", "command"])
def test_a_string_command_gets_its_grace_period(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd], mode: str
) -> None:
    """sh -c leads the group and dies on TERM at once; the script it runs must still get its time."""
    marks, starts = tmp_path / "marks", tmp_path / "starts"
    script = app_dir / "slowstop.sh"
    script.write_text(SLOWSTOP.format(marks=marks, starts=starts))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    if mode == "run":
        args = ["-p", "*.py", "--run", "./slowstop.sh"]
    else:
        args = ["-p", "*.py", "-c", "./slowstop.sh", "--on-busy", "restart"]
    w = start_watchd(args, cwd=app_dir)
    if mode == "command":
        (app_dir / "a.py").write_text("")
    assert wait_for(lambda: starts.exists() and len(starts.read_text().split()) == 1, timeout=10), w.log()
    (app_dir / "b.py").write_text("")  # restart: TERM, and the trap's 0.3 s
    assert wait_for(lambda: starts.exists() and len(starts.read_text().split()) == 2, timeout=10), w.log()
    assert marks.read_text().split() == starts.read_text().split()[:1], w.log()
    assert "SIGKILL" not in w.log()


def test_the_port_is_free_before_the_next_app_starts(app_dir: Path, start_watchd: type[Watchd]) -> None:
    """An app binding its port itself (no SO_REUSEADDR) and slow to stop never sees EADDRINUSE."""
    port = free_port()
    failures = app_dir / "failures"
    save(
        app_dir / "binder.py",
        textwrap.dedent(f"""\
        import signal, socket, sys, time
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", {port}))
        except OSError as exc:
            open({str(failures)!r}, "a").write(str(exc) + "\\n")
            sys.exit(1)
        s.listen()
        def stop(*_):
            time.sleep(0.2)  # still holding the port for a while
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        print("bound", flush=True)
        while True:
            time.sleep(1)
        """),
    )
    w = start_watchd(["-p", "*.py", "--", PY, "binder.py"], cwd=app_dir)
    for i in range(1, 6):
        assert w.wait_log("bound", count=i, timeout=10), w.log()
        (app_dir / f"touch{i}.py").write_text("")
        assert w.wait_log("restarted", count=i, timeout=10), w.log()
    assert w.wait_log("bound", count=6, timeout=10), w.log()
    assert not failures.exists(), failures.read_text()


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_watchd_stops_the_app_on_its_way_out(
    app_dir: Path, start_watchd: type[Watchd], sig: int, status: int
) -> None:
    port = free_port()
    plain_app(app_dir, "v1")
    w = start_watchd(["-p", "*.py", "--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    app = int(re.findall(r"\(pid (\d+)\)", w.log())[0])
    w.signal(sig)
    assert w.wait(5) == status, w.log()
    assert not pid_alive(app)
    assert f"stopped {Path(PY).name} app.py (pid {app}): exit 0 in" in w.log()


# ----------------------------------------------------------------------------- on_exit


@pytest.mark.parametrize(("script", "status"), [("exit 7", 7), ("kill -KILL $$", 137), ("exit 0", 0)])
def test_on_exit_stop_ends_watchd_with_the_apps_status(
    app_dir: Path, start_watchd: type[Watchd], script: str, status: int
) -> None:
    w = start_watchd(["--on-exit", "stop", "--run", script], cwd=app_dir, wait_ready=False)
    assert w.wait(10) == status, w.log()


@pytest.mark.slow
def test_on_exit_restart_backs_off(tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]) -> None:
    runs = tmp_path / "runs"
    w = start_watchd(["--on-exit", "restart", "--run", f"date +%s.%N >> {runs}; exit 1"], cwd=app_dir)
    assert wait_for(lambda: runs.exists() and len(runs.read_text().split()) >= 4, timeout=10), w.log()
    times = [float(t) for t in runs.read_text().split()[:4]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.5, 1, 2 s: each gap at least its delay, and doubling
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95 and gaps[2] >= 1.95, gaps
    assert "starting it again in 0.5 s" in w.log()
    assert "starting it again in 2.0 s" in w.log()


def test_exit_status_3_restarts_at_once(tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]) -> None:
    runs = tmp_path / "runs"
    # the first run asks for a restart (Werkzeug's and Django's convention), the second one stays
    cmd = f'echo run >> {runs}; [ "$(wc -l < {runs})" -ge 2 ] && exec sleep 600; exit 3'
    w = start_watchd(["--run", cmd], cwd=app_dir)
    assert wait_for(lambda: runs.exists() and len(runs.read_text().split()) == 2, timeout=5), w.log()
    assert "restarting as asked (exit status 3)" in w.log()


# ----------------------------------------------------------------------------- listen


def test_listen_passes_the_socket_as_fd_3_with_the_activation_variables(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    seen = tmp_path / "seen"
    save(
        app_dir / "probe.py",
        textwrap.dedent(f"""\
        import os, socket, time
        s = socket.socket(fileno=3)
        keys = ("LISTEN_FDS", "LISTEN_FDNAMES")
        line = [os.environ[k] for k in keys] + [str(os.environ["LISTEN_PID"] == str(os.getpid()))]
        line += [str(s.getsockname()[0]), str(s.type == socket.SOCK_STREAM), str(os.isatty(0))]
        line += [os.readlink("/proc/self/fd/0")]
        open({str(seen)!r}, "a").write(" ".join(line) + "\\n")
        s.detach()
        time.sleep(600)
        """),
    )
    w = start_watchd(["-p", "*.py", "--listen", "127.0.0.1:0", "--", PY, "probe.py"], cwd=app_dir)
    assert wait_for(lambda: seen.exists() and seen.read_text().endswith("\n"), timeout=10), w.log()
    assert seen.read_text().split() == ["1", "run", "True", "127.0.0.1", "True", "False", "/dev/null"]
    assert re.search(r"listening on 127\.0\.0\.1:\d+ \(passed to the app as fd 3\)", w.log())


def test_listen_zero_failed_requests_through_ten_restarts(app_dir: Path, start_watchd: type[Watchd]) -> None:
    plain_app(app_dir, "v0")
    w = start_watchd(["-p", "*.py", "--listen", "127.0.0.1:0", "--", PY, "app.py"], cwd=app_dir)
    port = listening_port(w.log())
    assert wait_for(lambda: http_get(port, 1) == "v0", timeout=10), w.log()
    poller = Poller(lambda: http_get(port, 10))
    try:
        for i in range(1, 11):
            plain_app(app_dir, f"v{i}")
            assert wait_for(lambda i=i: f"v{i}" in poller.bodies, timeout=10), w.log()
    finally:
        poller.stop()
    assert w.wait_log("restarted", count=10)
    assert poller.failed == [], (poller.failed, poller.ok)
    assert poller.ok > 20


def test_a_changed_config_restarts_the_app_and_an_unchanged_one_keeps_it(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    port = free_port()
    plain_app(app_dir, "v1")
    config = tmp_path / "watchd.yaml"

    def write(stop_timeout: str, extra: str = "") -> None:
        save(
            config,
            f"watches:\n  web:\n    paths: [{app_dir}]\n    patterns: ['*.py']\n"
            f"    run: [{PY}, app.py]\n    cwd: {app_dir}\n    stop_timeout: {stop_timeout}\n{extra}",
        )

    write("5s")
    w = start_watchd(["--config", str(config)], env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    (first,) = [int(p) for p in re.findall(r"started \S+ app.py \(pid (\d+)\)", w.log())]
    w.signal(signal.SIGHUP)
    assert w.wait_log("1 unchanged, 0 changed", timeout=5), w.log()
    assert pid_alive(first)
    write("4s")  # saving the config reloads it: the watch changed, so its app restarts
    assert w.wait_log("0 unchanged, 1 changed", timeout=5), w.log()
    assert wait_for(lambda: not pid_alive(first), timeout=5)
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    save(config, f"watches:\n  other:\n    paths: [{tmp_path}]\n    command: 'true'\n")
    assert w.wait_log("1 added, 1 removed", timeout=5), w.log()
    assert wait_for(lambda: http_get(port, 0.5) is None, timeout=5)


def test_systemd_status_shows_the_apps_pid_and_restarts(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        save(app_dir / "idle.py", "import time\ntime.sleep(600)\n")
        w = start_watchd(
            ["-p", "*.py", "--", PY, "idle.py"], cwd=app_dir, env=env_with(NOTIFY_SOCKET=str(notify.path))
        )
        ready = notify.wait("READY", "1")
        (first,) = re.findall(r"\(pid (\d+)\)", w.log())
        assert f"run: pid {first}" in ready["STATUS"], ready
        (app_dir / "x.py").write_text("")
        assert w.wait_log("restarted")
        second = pids_in(w.log())[0]
        assert wait_for(lambda: any(f"pid {second}, 1 restart" in m["STATUS"] for m in notify.all("STATUS")))
    finally:
        notify.close()


@pytest.mark.parametrize(
    ("check", "failed"),
    [
        (f"{PY} -m py_compile app.py", "failed (exit 1 in"),
        ("python", "app.py changed; check python failed (SyntaxError in app.py, "),
    ],
    ids=["command", "python"],
)
def test_a_failing_check_keeps_the_old_app_serving(
    check: str, failed: str, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    port = free_port()
    plain_app(app_dir, "v1")
    w = start_watchd(
        ["-p", "*.py", "--check", check, "--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port))
    )
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    plain_app(app_dir, "v2", broken=True)
    assert w.wait_log(failed, timeout=5), w.log()
    assert "not restarted" in w.log()
    assert http_get(port, 1) == "v1"
    plain_app(app_dir, "v3")
    assert wait_for(lambda: http_get(port, 1) == "v3", timeout=5), w.log()


def _nobody_can_run_python() -> bool:
    import shutil  # noqa: PLC0415

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY, "-c", "import watchd"],
        capture_output=True,
        check=False,
        cwd="/",
    )
    return r.returncode == 0


@pytest.mark.root
@pytest.mark.skipif(not _nobody_can_run_python(), reason="needs root and setpriv to stop a group as nobody")
def test_a_group_that_cannot_be_signalled_is_a_failed_stop_not_a_failed_start(tmp_path: Path) -> None:
    """The stop path as `nobody` against a root-owned group: a real EPERM from killpg."""
    target = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        probe = textwrap.dedent(f"""\
            from watchd.actions.process import Child, StopDenied
            child = Child.__new__(Child)  # the stop path only needs the group's id
            child.pid = child.pgid = {target.pid}
            child._reaped = child._hold_leader = False
            try:
                child._signal_group(15)
            except StopDenied as exc:
                print("denied:", exc)
            """)
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY, "-c", probe],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            timeout=30,
        )
        assert r.stdout.startswith("denied: permission denied signalling process group"), (r.stdout, r.stderr)
        assert target.poll() is None  # nothing reached it
    finally:
        stop_process(target)


def test_a_one_liner_program_not_on_path_is_an_error_at_start(app_dir: Path) -> None:
    for program, said in [
        ("no-such-program-watchd-test", "program 'no-such-program-watchd-test' not found on PATH (/usr/bin"),
        ("./serve.py", f"no program './serve.py' (no such file in {app_dir})"),
    ]:
        r = subprocess.run(
            [str(Path(PY).parent / "watchd"), "-p", "*.py", "--", program],
            capture_output=True,
            text=True,
            cwd=app_dir,
            env=env_with(PATH="/usr/bin:/bin"),
            timeout=30,
            check=False,
        )
        assert (r.returncode, r.stdout, r.stderr.count("\n")) == (2, "", 1), r.stderr
        assert said in r.stderr


def test_run_config_with_a_missing_program_waits_for_a_change(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    """In a config file the program may be installed later (a venv being built): the start fails
    and watchd waits for a change, as for an app that exits at once."""
    cfg = app_dir / "watchd.yaml"
    cfg.write_text(
        "watches:\n  web:\n    paths: [.]\n    patterns: ['*.py']\n    run: [no-such-program-watchd-test]\n"
    )
    w = start_watchd(["--config", str(cfg)], cwd=app_dir)
    assert w.wait_log("could not start no-such-program-watchd-test: No such file or directory", timeout=5)
    assert w.alive()


def test_socket_in_use_by_another_process_is_a_one_line_error(app_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [str(Path(PY).parent / "watchd"), "--listen", f"127.0.0.1:{port}", "--", "true"],
            capture_output=True,
            text=True,
            cwd=app_dir,
            timeout=30,
            check=False,
        )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert f"127.0.0.1:{port} is already in use" in r.stderr


def test_watchd_leaves_no_zombie_children(app_dir: Path, start_watchd: type[Watchd]) -> None:
    """Exited apps are held unreaped only until their group is gone, then collected."""
    save(app_dir / "idle.py", "import sys, time\nif len(sys.argv) > 1: sys.exit(1)\ntime.sleep(600)\n")
    w = start_watchd(["-p", "*.py", "--", PY, "idle.py"], cwd=app_dir)
    for i in range(3):
        (app_dir / f"t{i}.py").write_text("")
        assert w.wait_log("restarted", count=i + 1, timeout=10), w.log()

    assert wait_for(lambda: zombie_children(w.proc.pid) == [], timeout=5), zombie_children(w.proc.pid)


def test_changes_during_a_restart_are_one_more_restart_never_lost(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    seen = tmp_path / "seen"
    save(
        app_dir / "slow.py",
        textwrap.dedent(f"""\
        import os, signal, sys, time
        def stop(*_):
            print("stopping slowly", flush=True)
            time.sleep(0.6)
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        with open({str(seen)!r}, "a") as f:  # after the handler: the test acts once it sees this
            f.write(os.environ["WATCHD_CHANGED"].replace("\\n", ",") + "\\n")
        while True:
            time.sleep(1)
        """),
    )
    w = start_watchd(["-p", "*.txt", "--", PY, "slow.py"], cwd=app_dir)
    assert wait_for(lambda: seen.exists() and seen.read_text().count("\n") == 1, timeout=10), w.log()
    (app_dir / "a.txt").write_text("")
    assert w.wait_log("stopping slowly", timeout=5), w.log()
    # while the old app takes its 0.6 s to stop, two more changes arrive
    (app_dir / "b.txt").write_text("")
    (app_dir / "c.txt").write_text("")
    assert w.wait_log("restarted", count=2, timeout=10), w.log()
    # the app started for a.txt is stopped again at once (it may not have got as far as writing);
    # the one running now was started with both later changes
    both = f"{app_dir / 'b.txt'},{app_dir / 'c.txt'}"
    assert wait_for(lambda: seen.read_text().splitlines()[-1] == both, timeout=10), seen.read_text()
    assert w.wait_log("b.txt and 1 more changed; restarted"), w.log()
    # no third restart was pending: a change after them is the third, alone in its batch
    write_sentinel(app_dir / "sentinel.txt")
    assert w.wait_log("sentinel.txt changed; restarted", timeout=10), w.log()
    assert w.log().count("restarted") == 3, w.log()
