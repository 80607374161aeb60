"""Operating a running watchd (issue 23): the control socket and its subcommands (`watchd status`,
`trigger`, `pause`, `resume`, SIGUSR1), one watchd per config, peer credentials; /metrics (parsed
with prometheus_client's own parser, scraped by Debian's real Prometheus) and /healthz."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.http import ReloadServer, serving
from helpers.procs import WATCHD, Recorder, Watchd, pid_alive, stop_process, wait_for
from helpers.servers import free_port
from prometheus_client.parser import text_string_to_metric_families

from watchd.control import default_path

PROMETHEUS = shutil.which("prometheus")


def watchd_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WATCHD, *args], capture_output=True, text=True, timeout=30, cwd=cwd, check=False)


def status(config: Path) -> dict[str, dict[str, object]]:
    """`watchd status --config FILE --json`, parsed: the watches by name."""
    done = watchd_cli("status", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["ok"] is True
    return {w["name"]: w for w in answer["watches"]}


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def metrics_url(w: Watchd) -> str:
    assert w.wait_log("metrics: http://"), w.log()  # logged just after the ready line
    (line,) = [line for line in w.log().splitlines() if "metrics: http://" in line]
    return line.split("metrics: ", 1)[1].split("/metrics", 1)[0]


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed with prometheus_client's parser: (sample name, sorted labels) -> value."""
    code, text = get(f"{base}/metrics")
    assert code == 200
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x = 1\n")
    return tmp_path


def command_config(project: Path, command: str, extra: str = "") -> Path:
    config = project / "watchd.yaml"
    config.write_text(
        textwrap.dedent(f"""\
            {extra}
            watches:
              cmd:
                paths: [src]
                debounce: 50ms
                command: {json.dumps(command)}
            """)
    )
    return config


# ------------------------------------------------------------------------- status, each action kind


def test_status_during_a_run_of_each_action_kind(project: Path, start_watchd: type[Watchd]) -> None:
    recorder = Recorder(project)
    app = project / "app.py"
    app.write_text("import time\nwhile True:\n    time.sleep(1)\n")
    started = project / "started"
    release = project / "release"
    try:
        with serving(ReloadServer()) as server:
            config = project / "watchd.yaml"
            config.write_text(
                textwrap.dedent(f"""\
                    watches:
                      sig:
                        paths: [src]
                        pidfile: {recorder.pidfile}
                        confirm: false
                      cmd:
                        paths: [src]
                        command: "touch {started}; while [ ! -e {release} ]; do sleep 0.02; done"
                      app:
                        paths: [src]
                        run: [{json.dumps(sys.executable)}, {json.dumps(str(app))}]
                      hook:
                        paths: [src]
                        post: {server.url()}
                    """)
            )
            w = start_watchd(["--config", str(config)], cwd=project)
            assert wait_for(lambda: status(config)["app"]["app"] is not None)
            done = watchd_cli("trigger", "--all", "--config", str(config))
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "triggered: sig, cmd, app, hook"
            assert wait_for(started.exists)
            # during the command's run: the JSON parsed and checked, and the table
            during = status(config)
            assert during["cmd"]["busy"] is True
            assert during["cmd"]["state"] == "watching"
            assert during["cmd"]["action"] == "command"
            assert during["cmd"]["roots"] == [str(project / "src")]
            assert during["cmd"]["directories"] == 1
            text = watchd_cli("status", "--config", str(config))
            assert text.returncode == 0, text.stderr
            table = text.stdout.splitlines()
            assert table[0].startswith(f"watchd 0.1.0, pid {w.proc.pid}, up ")
            assert table[1].split() == [
                "WATCH", "STATE", "DIRS", "LAST", "CHANGE", "LAST", "ACTION",
                "BATCHES", "OK", "FAILED", "REFUSED", "CHECK",
            ]  # fmt: skip
            (cmd_row,) = [line for line in table if line.startswith("cmd ")]
            assert "watching, acting" in cmd_row
            release.touch()
            assert wait_for(lambda: status(config)["cmd"]["last_action"] is not None)
            after = status(config)
            for name, kind in (("sig", "pidfile"), ("cmd", "command"), ("app", "run"), ("hook", "post")):
                watch = after[name]
                assert watch["action"] == kind
                assert watch["state"] == "watching"
                assert watch["problem"] is None
                last = watch["last_action"]
                assert isinstance(last, dict), name
                assert last["result"] == "ok", (name, last)
                assert last["trigger"] == "manual"
                assert isinstance(last["duration"], float) and last["duration"] >= 0
                counters = watch["counters"]
                assert isinstance(counters, dict)
                assert counters["actions"]["ok"] == 1, name  # type: ignore[index]
                assert counters["batches"] == 0  # a trigger is no batch of changes
            assert after["sig"]["last_action"]["what"] == f"sent HUP to sigrecorder.py (pid {recorder.pid})"  # type: ignore[index]
            assert recorder.names() == ["SIGHUP"]
            assert server.count() == 1
            app_facts = after["app"]["app"]
            assert isinstance(app_facts, dict)
            assert pid_alive(app_facts["pid"])
            assert app_facts["crash_looping"] is False
            assert after["hook"]["last_action"]["what"] == f"POST {server.url()}: 200 OK"  # type: ignore[index]
            table = watchd_cli("status", "--config", str(config)).stdout
            assert f"app: pid {app_facts['pid']}, up " in table
    finally:
        recorder.stop()


# ------------------------------------------------------------------------- trigger, SIGUSR1, pause


def test_trigger_and_sigusr1_each_give_exactly_one_action(project: Path, start_watchd: type[Watchd]) -> None:
    out = project / "out"
    config = command_config(project, f'echo "$WATCHD_TRIGGER $WATCHD_COUNT" >> {out}')
    w = start_watchd(["--config", str(config)], cwd=project)
    done = watchd_cli("trigger", "cmd", "--config", str(config))
    assert (done.returncode, done.stdout) == (0, "triggered: cmd\n"), done.stderr
    assert wait_for(lambda: len(lines(out)) >= 1)
    w.signal(signal.SIGUSR1)
    assert wait_for(lambda: len(lines(out)) >= 2)
    # a sentinel change: the action after it is the third, so nothing came in between
    (project / "src" / "app.py").write_text("x = 2\n")
    assert wait_for(lambda: len(lines(out)) >= 3)
    assert lines(out) == ["manual 0", "manual 0", "change 1"]
    assert w.log().count("SIGUSR1: acting now") == 1
    counters = status(config)["cmd"]["counters"]
    assert isinstance(counters, dict)
    assert counters["actions"]["ok"] == 3  # type: ignore[index]


def test_pause_then_50_saves_then_resume_is_one_action_naming_50_changes(
    project: Path, start_watchd: type[Watchd]
) -> None:
    out = project / "out"
    config = command_config(project, f'echo "$WATCHD_COUNT" >> {out}')
    start_watchd(["--config", str(config)], cwd=project)
    done = watchd_cli("pause", "--all", "--config", str(config))
    assert (done.returncode, done.stdout) == (0, "paused: cmd\n"), done.stderr
    for i in range(50):
        (project / "src" / f"m{i}.py").write_text(f"v = {i}\n")
    assert wait_for(lambda: status(config)["cmd"]["held"] == 50, timeout=10)
    paused = status(config)["cmd"]
    assert paused["state"] == "paused"
    assert paused["last_action"] is None  # held, not acted on
    assert "paused (50 held)" in watchd_cli("status", "--config", str(config)).stdout
    done = watchd_cli("resume", "cmd", "--config", str(config))
    assert (done.returncode, done.stdout) == (0, "resumed: cmd\n"), done.stderr
    assert wait_for(lambda: len(lines(out)) >= 1)
    (project / "src" / "app.py").write_text("x = 3\n")  # the sentinel
    assert wait_for(lambda: len(lines(out)) >= 2)
    assert lines(out) == ["50", "1"]
    assert status(config)["cmd"]["state"] == "watching"


def test_pause_for_resumes_by_itself(project: Path, start_watchd: type[Watchd]) -> None:
    out = project / "out"
    config = command_config(project, f'echo "$WATCHD_COUNT" >> {out}')
    w = start_watchd(["--config", str(config)], cwd=project)
    # held during a pause for an hour (however late the change's event comes), then the pause
    # cut to a second: it ends by itself
    assert watchd_cli("pause", "cmd", "--for", "1h", "--config", str(config)).returncode == 0
    (project / "src" / "app.py").write_text("x = 4\n")
    assert wait_for(lambda: status(config)["cmd"]["held"] == 1)
    assert watchd_cli("pause", "cmd", "--for", "1s", "--config", str(config)).returncode == 0
    assert wait_for(lambda: lines(out) == ["1"], timeout=10)
    assert "cmd: the pause's time is up; acting once on src/app.py changed" in w.log()


def test_subcommands_say_what_is_wrong(project: Path, start_watchd: type[Watchd]) -> None:
    config = command_config(project, "true")
    start_watchd(["--config", str(config)], cwd=project)
    done = watchd_cli("trigger", "nope", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr == "watchd trigger: no watch 'nope' (watches: cmd)\n"
    done = watchd_cli("pause", "--config", str(config))
    assert done.returncode == 2
    assert "one of the arguments NAME --all is required" in done.stderr
    done = watchd_cli("pause", "cmd", "--for", "soon", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith("watchd pause: --for soon: ")
    done = watchd_cli("status", "--socket", str(project / "none.sock"))
    assert done.returncode == 1
    assert done.stderr == f"watchd status: no watchd is running there: no socket {project / 'none.sock'}\n"


def test_a_directory_named_like_a_subcommand_is_watched_as_a_path(
    project: Path, start_watchd: type[Watchd]
) -> None:
    (project / "status").mkdir()
    out = project / "out"
    w = start_watchd(["./status", "-c", f"echo ran >> {out}"], cwd=project)
    (project / "status" / "x.txt").write_text("x")
    assert wait_for(lambda: lines(out) == ["ran"])
    w.stop()
    done = watchd_cli("status", "-c", "make", cwd=project)
    assert done.returncode == 2
    assert "to watch the directory 'status', write it as ./status" in done.stderr


# ------------------------------------------------------------------------- one watchd per config


def test_a_second_watchd_on_the_same_config_is_refused(project: Path, start_watchd: type[Watchd]) -> None:
    out = project / "out"
    config = command_config(project, f"echo ran >> {out}")
    first = start_watchd(["--config", str(config)], cwd=project)
    done = watchd_cli("--config", str(config), cwd=project)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"watchd: another watchd (pid {first.proc.pid}) is already running this config: ")
    assert first.alive()
    # and nothing was doubled: one save, one action
    (project / "src" / "app.py").write_text("x = 5\n")
    assert wait_for(lambda: lines(out) == ["ran"])
    assert status(config)["cmd"]["counters"]["actions"]["ok"] == 1  # type: ignore[index]


def test_each_tests_watchds_have_their_sockets_in_its_own_runtime_directory(
    project: Path, start_watchd: type[Watchd]
) -> None:
    """The suite's set-up (tests/conftest.py): a test's own XDG_RUNTIME_DIR, also for a watchd
    started with an environment the test wrote out, so that tests running the same config (at
    once on two workers) never meet at one control socket."""
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    config = command_config(project, "true")
    start_watchd(["--config", str(config)], cwd=project, env={"PATH": os.environ["PATH"]})
    start_watchd(["-c", "true", "src"], cwd=project)
    assert default_path(config).parent == runtime / "watchd"
    assert wait_for(lambda: len(list((runtime / "watchd").glob("*.sock"))) == 2)


def ready_line(w: Watchd) -> str:
    (line,) = [line for line in w.log().splitlines() if "; ready" in line]
    return line


def test_the_ready_line_names_the_control_socket(project: Path, start_watchd: type[Watchd]) -> None:
    """A one-liner's user finds the socket on the line that says watchd is ready; without a
    socket the line ends at "ready"."""
    w = start_watchd(["-c", "true", "src"], cwd=project)
    (sock,) = (Path(os.environ["XDG_RUNTIME_DIR"]) / "watchd").glob("*.sock")
    assert ready_line(w).endswith(": 1 root, 1 directory; ready; control socket " + str(sock)), w.log()
    done = watchd_cli("status", "--socket", ready_line(w).rsplit(" ", 1)[1])
    assert done.returncode == 0, done.stderr
    w.stop()
    config = command_config(project, "true")
    w = start_watchd(["--config", str(config)], cwd=project)
    assert ready_line(w).endswith(f"; ready; control socket {default_path(config)}"), w.log()
    w.stop()
    w = start_watchd(["--config", str(config), "--control", "off"], cwd=project)
    assert ready_line(w).endswith(": 1 root, 1 directory; ready"), w.log()


def test_a_stale_socket_of_a_killed_watchd_is_taken_over(project: Path, start_watchd: type[Watchd]) -> None:
    config = command_config(project, "true")
    first = start_watchd(["--config", str(config)], cwd=project)
    sock = default_path(config)
    first.signal(signal.SIGKILL)
    first.wait()
    assert sock.exists()  # left behind
    second = start_watchd(["--config", str(config)], cwd=project)
    assert f"control: took over {sock}, left by a watchd that is gone" in second.log()
    assert status(config)["cmd"]["state"] == "watching"


# ------------------------------------------------------------------------- peer credentials

NOBODY = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
CONNECT = textwrap.dedent("""\
    import socket, sys
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
    except OSError as exc:
        print("connect:", exc.strerror)
        sys.exit(0)
    try:
        s.sendall(b'{"command": "status"}\\n')
    except BrokenPipeError:
        pass  # refused at once: the answer is there to read all the same
    print(s.makefile().readline().strip())
    """)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another user needs root (setpriv)")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_the_socket_refuses_another_user(
    project: Path, start_watchd: type[Watchd], request: pytest.FixtureRequest
) -> None:
    config = command_config(project, "true")
    w = start_watchd(["--config", str(config)], cwd=project)
    default = str(default_path(config))
    # the default place: its directory is 0700, nobody cannot even reach the socket
    as_nobody = subprocess.run(
        [*NOBODY, "/usr/bin/python3", "-c", CONNECT, default], capture_output=True, text=True, timeout=30
    )
    assert as_nobody.stdout.strip() == "connect: Permission denied", as_nobody.stderr
    w.stop()
    # a socket others can reach (a directory and a mode opened up by hand): the peer's
    # credentials still refuse it
    shared = Path(tempfile.mkdtemp(prefix="watchd-test-shared-"))  # (pytest's tmp_path is 0700)
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    shared.chmod(0o755)
    sock = shared / "w.sock"
    w = start_watchd(["--config", str(config), "--control", str(sock)], cwd=project)
    assert (sock.stat().st_mode & 0o777) == 0o600
    sock.chmod(0o666)
    as_nobody = subprocess.run(
        [*NOBODY, "/usr/bin/python3", "-c", CONNECT, str(sock)], capture_output=True, text=True, timeout=30
    )
    assert as_nobody.stdout.startswith("{"), (as_nobody.stdout, as_nobody.stderr)
    answer = json.loads(as_nobody.stdout)
    assert answer == {"ok": False, "error": "refused: uid 65534 is not watchd's user (uid 0) or root"}
    assert w.wait_log("control: refused a connection from uid 65534")
    done = watchd_cli("status", "--socket", str(sock), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True


# ------------------------------------------------------------------------- /metrics and /healthz


def test_metrics_parse_with_prometheus_clients_parser(project: Path, start_watchd: type[Watchd]) -> None:
    out = project / "out"
    config = command_config(project, f"echo ran >> {out}; exit $WATCHD_COUNT", extra="metrics: 127.0.0.1:0")
    w = start_watchd(["--config", str(config)], cwd=project)
    base = metrics_url(w)
    assert watchd_cli("trigger", "cmd", "--config", str(config)).returncode == 0  # exit 0: ok
    assert wait_for(lambda: len(lines(out)) == 1)
    (project / "src" / "app.py").write_text("x = 6\n")  # exit 1: failed
    assert wait_for(lambda: len(lines(out)) == 2)
    cmd = (("watch", "cmd"),)
    assert wait_for(lambda: samples(base)[("watchd_actions_total", (("result", "failed"), *cmd))] == 1)
    got = samples(base)
    assert got[("watchd_actions_total", (("result", "ok"), *cmd))] == 1
    assert got[("watchd_actions_total", (("result", "refused"), *cmd))] == 0
    assert got[("watchd_events_total", cmd)] >= 1
    assert got[("watchd_batches_total", cmd)] == 1
    assert got[("watchd_action_duration_seconds_count", cmd)] == 2
    assert got[("watchd_action_duration_seconds_bucket", (("le", "+Inf"), *cmd))] == 2
    assert got[("watchd_watched_directories", cmd)] == 1
    assert got[("watchd_paused", cmd)] == 0
    assert got[("watchd_healthy", cmd)] == 1
    assert got[("watchd_last_action_timestamp_seconds", cmd)] > 1e9
    assert got[("watchd_info", (("version", "0.1.0"),))] == 1
    assert got[("process_resident_memory_bytes", ())] > 0  # the client's process collector
    assert get(f"{base}/healthz") == (200, "ok: 1 watch\n")
    assert get(f"{base}/nope")[0] == 404


def test_healthz_is_503_while_the_watched_root_is_gone(project: Path, start_watchd: type[Watchd]) -> None:
    config = command_config(project, "true", extra="metrics: 127.0.0.1:0")
    base = metrics_url(start_watchd(["--config", str(config)], cwd=project))
    assert get(f"{base}/healthz")[0] == 200
    shutil.rmtree(project / "src")
    assert wait_for(lambda: get(f"{base}/healthz")[0] == 503)
    _, text = get(f"{base}/healthz")
    assert (
        text == f"unhealthy: cmd: {project / 'src'} is gone "
        "(deleted or unmounted; watched again when it is back)\n"
    )
    assert status(config)["cmd"]["state"] == "failed"
    assert samples(base)[("watchd_healthy", (("watch", "cmd"),))] == 0
    (project / "src").mkdir()
    assert wait_for(lambda: get(f"{base}/healthz")[0] == 200)
    assert status(config)["cmd"]["state"] == "watching"


def test_healthz_is_503_while_the_app_crash_loops(project: Path, start_watchd: type[Watchd]) -> None:
    (project / "src" / "app.py").write_text("import time\ntime.sleep(60)\n")
    config = project / "watchd.yaml"
    config.write_text(
        textwrap.dedent(f"""\
            metrics: 127.0.0.1:0
            watches:
              app:
                paths: [src]
                debounce: 50ms
                run: [{json.dumps(sys.executable)}, src/app.py]
                on_exit: restart
            """)
    )
    base = metrics_url(start_watchd(["--config", str(config)], cwd=project))
    assert get(f"{base}/healthz")[0] == 200
    # exits at once, and again after each backoff (0.5 s, 1 s ...): the third exit in a row is a crash loop
    (project / "src" / "app.py").write_text("raise SystemExit(1)\n")
    assert wait_for(lambda: get(f"{base}/healthz")[0] == 503, timeout=15)
    _, text = get(f"{base}/healthz")
    assert text.startswith("unhealthy: app: the app keeps exiting (")
    assert "last: exit 1)" in text
    app = status(config)["app"]["app"]
    assert isinstance(app, dict) and app["crash_looping"] is True
    assert samples(base)[("watchd_restarts_total", (("watch", "app"),))] >= 2
    # fixed: the change restarts it, and it stays up
    (project / "src" / "app.py").write_text("import time\ntime.sleep(60)\n")
    assert wait_for(lambda: get(f"{base}/healthz")[0] == 200, timeout=10)


# ------------------------------------------------------------------------- a real Prometheus


@pytest.fixture
def prometheus_scraping(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """Debian's Prometheus scraping watchd's metrics port every second: (its URL, the port)."""
    if PROMETHEUS is None:
        pytest.skip("Debian's prometheus package is not installed (.ci/run installs it)")
    target, port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        textwrap.dedent(f"""\
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: watchd
                static_configs:
                  - targets: ["127.0.0.1:{target}"]
            """)
    )
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: get(f"{base}/-/ready")[0] == 200, timeout=30), (
            tmp_path / "prometheus.log"
        ).read_text()
        yield base, target
    finally:
        stop_process(proc)
        log.close()


def query(base: str, promql: str) -> list[dict[str, object]]:
    code, body = get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    if code != 200:
        return []
    answer = json.loads(body)
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


def test_prometheus_scrapes_the_reload_counter(
    project: Path, start_watchd: type[Watchd], prometheus_scraping: tuple[str, int]
) -> None:
    base, port = prometheus_scraping
    recorder = Recorder(project)
    try:
        config = project / "watchd.yaml"
        config.write_text(
            textwrap.dedent(f"""\
                metrics: 127.0.0.1:{port}
                watches:
                  api:
                    paths: [src]
                    debounce: 50ms
                    pidfile: {recorder.pidfile}
                    confirm: false
                """)
        )
        start_watchd(["--config", str(config)], cwd=project)
        for i in range(3):
            (project / "src" / "app.py").write_text(f"x = {i + 10}\n")
            assert wait_for(lambda i=i: len(recorder.names()) == i + 1)
        promql = 'watchd_actions_total{job="watchd", watch="api", result="ok"}'

        def three() -> bool:
            result = query(base, promql)
            return len(result) == 1 and result[0]["value"][1] == "3"  # type: ignore[index]

        assert wait_for(three, timeout=30), query(base, promql)
        up = query(base, 'up{job="watchd"}')
        assert up[0]["value"][1] == "1"  # type: ignore[index]
    finally:
        recorder.stop()


# ------------------------------------------------------------------------- JSON logs


def events(w: Watchd) -> list[dict[str, object]]:
    """watchd's log, every line parsed as one JSON object (a line that is not fails the test)."""
    return [json.loads(line) for line in w.log().splitlines()]


def test_json_logs_parse_line_by_line_for_every_event_kind(project: Path, start_watchd: type[Watchd]) -> None:
    (project / "nobody.pid").write_text("999999999\n")  # no such process: refused
    app = project / "app.py"
    app.write_text("raise SystemExit(1)\n")
    config = project / "watchd.yaml"
    text = textwrap.dedent(f"""\
        log_format: json
        watches:
          cmd:
            paths: [src]
            debounce: 50ms
            command: "exit $WATCHD_COUNT"
          sig:
            paths: [src/never]
            pidfile: {project / "nobody.pid"}
            pidfile_wait: 10ms
          chk:
            paths: [src/never]
            check: "false"
            command: "true"
          app:
            paths: [src/never]
            run: [{json.dumps(sys.executable)}, {json.dumps(str(app))}]
            on_exit: restart
        """)
    config.write_text(text)
    w = start_watchd(["--config", str(config), "-v"], cwd=project, stdout=project / "stdout")
    assert wait_for(lambda: any(e["event"] == "restart" for e in events(w)))
    for name in ("cmd", "sig", "chk"):
        assert watchd_cli("trigger", name, "--config", str(config)).returncode == 0  # cmd: exit 0, ok
    odd = os.fsencode(project / "src") + b"/caf\xe9.py"  # not UTF-8
    with open(odd, "wb") as f:
        f.write(b"x = 1\n")  # exit 1: failed
    assert wait_for(lambda: sum(1 for e in events(w) if e["event"] == "action" and e["watch"] == "cmd") == 2)
    assert watchd_cli("pause", "cmd", "--config", str(config)).returncode == 0
    assert watchd_cli("resume", "cmd", "--config", str(config)).returncode == 0
    config.write_text(text.replace("debounce: 50ms", "debounce: 60ms"))
    assert wait_for(lambda: any(e["event"] == "reload" and e.get("result") == "ok" for e in events(w)))
    w.signal(signal.SIGTERM)
    assert w.wait() == 0
    logged = events(w)
    kinds = {str(e["event"]) for e in logged}
    assert kinds >= {
        "start", "change", "action", "refused", "check_failed", "restart", "trigger", "pause", "resume",
        "reload", "stop",
    }  # fmt: skip
    for e in logged:
        assert isinstance(e["time"], str) and e["time"].endswith("Z")
        assert e["level"] in ("debug", "info", "warning", "error")
        assert isinstance(e["message"], str)
    changes = [e for e in logged if e["event"] == "change" and e["first_path"] != str(config)]
    assert changes and {e["watch"] for e in changes} == {"cmd"}
    # the bytes, losslessly
    assert {os.fsencode(str(e["first_path"])) for e in changes} == {odd}, changes
    actions = [e for e in logged if e["event"] == "action" and e["watch"] == "cmd"]
    assert [(a["result"], a.get("trigger"), a["paths"]) for a in actions] == [
        ("ok", "manual", 0),
        ("failed", None, 1),
    ]
    assert os.fsencode(str(actions[1]["first_path"])) == odd
    assert all(isinstance(a["duration"], float) and a["duration"] >= 0 for a in actions)
    (refused,) = [e for e in logged if e["event"] == "refused"]
    assert (refused["watch"], refused["result"], refused["level"]) == ("sig", "refused", "error")
    (failed_check,) = [e for e in logged if e["event"] == "check_failed"]
    assert (failed_check["watch"], failed_check["result"]) == ("chk", "check_failed")
    restart = next(e for e in logged if e["event"] == "restart")
    assert restart["watch"] == "app" and isinstance(restart["delay"], float)
    (start,) = [e for e in logged if e["event"] == "start"]
    assert start["control"] == str(default_path(config))
    (trigger,) = [e for e in logged if e["event"] == "trigger" and e["watch"] == "sig"]
    assert trigger["message"] == "sig: watchd trigger: acting now"
