"""The command line in-process: `main([...])` returns the exit status; output through capsys."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from watchd import __version__, cli
from watchd.cli import main
from watchd.matching import Matcher, from_watchmedo

CONFIG = """\
watches:
  api:
    paths: [src]
    patterns: ["*.py", "!test_*.py"]
    ignore: ["tests/**"]
    pidfile: run/api.pid
    signal: USR1
    expect: gunicorn
  css:
    paths: [styles]
    command: make css
    debounce: 200ms
"""


pytestmark = pytest.mark.usefixtures("restore_watchd_logging")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--version")
    assert status == 0
    assert out.strip() == f"watchd {__version__}"
    assert err == ""


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--help")
    assert status == 0
    assert out.startswith("usage: watchd")
    for flag in ("--config", "--validate", "--pidfile", "--command", "--on-busy", "--patterns"):
        assert flag in out
    assert err == ""


def test_no_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("watchd: nothing to do: give --config FILE, or an action: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "watchd: unrecognized arguments: --bogus"),
        (
            ["--on-busy", "later", "-c", "true"],
            "watchd: --on-busy: unknown value 'later' (use queue, ignore or restart)",
        ),
        (["--pidfile"], "watchd: argument --pidfile: expected one argument"),
        (["-c", "true", "--debounce", "50"], "watchd: --debounce: duration '50' has no unit"),
        (["--pidfile", "x.pid", "--signal", "HUPP"], "watchd: --signal: unknown signal 'HUPP'"),
        (["-c", ""], "watchd: --command: empty command"),
        (["--pidfile", "x.pid", "-c", "true"], "watchd: both --pidfile and --command given"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.startswith(message), err
    assert not err.startswith("watchd: watchd:"), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    status, out, err = run(capsys, "--config", str(missing))
    assert status == 2
    assert out == ""
    assert err == f"watchd: {missing}: config file not found (check the path given to --config)\n"


def test_invalid_config_reports_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("watches:\n  api:\n    paths: [src]\n    pidfile: x.pid\n    signal: HUPP\n")
    status, out, err = run(capsys, "--config", str(cfg))
    assert status == 2
    assert out == ""
    assert err.startswith(f"watchd: {cfg}:5:")
    assert "watches.api.signal" in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--pidfile", "x.pid"], "--pidfile"),
        (["--command", "true"], "--command"),
        (["--post", "http://127.0.0.1:9090/-/reload"], "--post"),
        (["src"], "PATH arguments"),
    ],
)
def test_config_cannot_be_combined_with_one_liner_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], flag: str
) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, out, err = run(capsys, "--config", str(cfg), *extra)
    assert status == 2
    assert out == ""
    assert err.startswith(f"watchd: {flag} cannot be combined with --config")
    assert err.count("\n") == 1


def test_validate_config_prints_the_watches(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, out, err = run(capsys, "--config", str(cfg), "--validate")
    assert status == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"{cfg}: OK, 2 watches"
    assert "api:" in lines
    assert "css:" in lines
    assert f"  paths:     {tmp_path / 'src'}" in lines
    assert f"  paths:     {tmp_path / 'styles'} (does not exist yet: watched when it appears)" in lines
    assert "  patterns:  *.py, !test_*.py" in lines
    assert "  ignore:    tests/** + built-in ignores" in lines
    assert (
        f"  action:    send USR1 to the PID in {tmp_path / 'run' / 'api.pid'} "
        "(command line must contain 'gunicorn')"
    ) in lines
    assert "  timing:    debounce 200ms, max delay 2s" in lines
    assert f"  action:    run sh -c 'make css' in {tmp_path}, on busy: queue" in lines


def test_validate_with_overrides(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, out, _ = run(capsys, "--config", str(cfg), "--validate", "--debounce", "1s", "-p", "*.txt")
    assert status == 0
    assert out.count("  timing:    debounce 1s, max delay 2s") == 2
    assert out.count("  patterns:  *.txt") == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--debounce", "5s"],
            "watchd: --debounce: max delay 2s is shorter than debounce 5s for watch 'api' "
            "(raise --max-delay)\n",
        ),
        (
            ["--max-delay", "10ms"],
            "watchd: --max-delay: max delay 10ms is shorter than debounce 50ms for watch 'api' "
            "(raise --max-delay)\n",
        ),
    ],
)
def test_config_overrides_are_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, out, err = run(capsys, "--config", str(cfg), "--validate", *extra)
    assert status == 2
    assert out == ""
    assert err == message


def test_validate_one_liner(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    status, out, err = run(
        capsys, "src", "-p", "*.py", "--pidfile", "run/api.pid", "--signal", "usr2", "--validate"
    )
    assert status == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "command line: OK, 1 watch"
    assert f"  paths:     {tmp_path / 'src'}" in lines
    assert "  patterns:  *.py" in lines
    assert "  ignore:    built-in ignores" in lines
    assert f"  action:    send USR2 to the PID in {tmp_path / 'run' / 'api.pid'}" in lines


def test_watchmedo_spellings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(
        capsys,
        "--patterns=*.py;*.html",
        "--ignore-patterns=*.tmp",
        "-R",
        "--ignore-directories",
        "--command=echo hi",
        "--validate",
    )
    assert status == 0, err
    assert err == ""
    lines = out.splitlines()
    assert f"  paths:     {tmp_path}" in lines
    assert "  patterns:  *.py, *.html" in lines
    assert "  ignore:    *.tmp + built-in ignores + directory events" in lines
    assert f"  action:    run sh -c 'echo hi' in {tmp_path}, on busy: queue" in lines


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--no-default-ignores", "-c", "true"], "  ignore:    nothing"),
        (["-i", "a;b", "-i", "c", "-c", "true"], "  ignore:    a, b, c + built-in ignores"),
        (["-W", "-c", "true"], "on busy: ignore"),
        (["-w", "-c", "true"], "on busy: queue"),
        (["--on-busy", "restart", "-c", "true"], "on busy: restart"),
        (["--poll", "-c", "true"], "polling every 1s"),
        (["--debug-force-polling", "--poll-interval", "250ms", "-c", "true"], "polling every 250ms"),
        (["--debounce", "10ms", "--max-delay", "5s", "-c", "true"], "debounce 10ms, max delay 5s"),
        (["--timeout", "30s", "-c", "true"], "timeout 30s"),
    ],
)
def test_one_liner_options(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    line: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv, "--validate")
    assert status == 0, err
    assert line in out


def test_validate_shows_the_check_and_confirm_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "w.yaml"
    (tmp_path / "app").mkdir()
    cfg.write_text(
        "watches:\n"
        "  api:\n"
        "    paths: [src]\n"
        "    pidfile: api.pid\n"
        "    cwd: app\n"
        "    check: python3 -m compileall -q .\n"
        "    check_timeout: 2m\n"
        "    confirm_timeout: 30s\n"
        "  css:\n"
        "    paths: [styles]\n"
        "    command: make css\n"
        "    check: [stylelint, styles]\n"
    )
    status, out, err = run(capsys, "--config", str(cfg), "--validate")
    assert status == 0, err
    assert err == ""
    lines = out.splitlines()
    assert f"  check:     sh -c 'python3 -m compileall -q .' in {tmp_path / 'app'}, timeout 2m" in lines
    assert "  confirm:   workers replaced within 30s" in lines
    assert f"  check:     stylelint styles in {tmp_path}, timeout 1m" in lines
    assert out.count("  confirm:") == 1  # a command watch has nothing to confirm
    # the check comes before the action it gates
    assert lines.index(f"  action:    send HUP to the PID in {tmp_path / 'api.pid'}") == (
        lines.index(f"  check:     sh -c 'python3 -m compileall -q .' in {tmp_path / 'app'}, timeout 2m") + 1
    )


def test_validate_shows_the_python_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, str(tmp_path), "--pidfile", "x.pid", "--check", "python", "--validate")
    assert status == 0, err
    assert "  check:     python: compile the changed .py files in-process (watchd's Python syntax)" in out


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--pidfile", "x.pid"], "  confirm:   workers replaced within 10s"),
        (["--pidfile", "x.pid", "--confirm-timeout", "3s"], "  confirm:   workers replaced within 3s"),
        (["--pidfile", "x.pid", "--no-confirm"], "  confirm:   off"),
        (
            ["--pidfile", "x.pid", "--check", "make lint"],
            "  check:     sh -c 'make lint' in {cwd}, timeout 1m",
        ),
        (
            ["-c", "true", "--check", "make lint", "--check-timeout", "500ms", "--cwd", "sub"],
            "  check:     sh -c 'make lint' in {cwd}/sub, timeout 500ms",
        ),
    ],
)
def test_one_liner_check_and_confirm(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    line: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    status, out, err = run(capsys, *argv, "--validate")
    assert status == 0, err
    assert line.format(cwd=tmp_path) in out.splitlines()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--pidfile", "x.pid", "--check-timeout", "5s"],
            "watchd: --check-timeout: only applies to watches with --check (remove it)\n",
        ),
        (
            ["-c", "true", "--no-confirm"],
            "watchd: --no-confirm: only applies to watches with --pidfile, --process or --run (remove it)\n",
        ),
        (
            ["--pidfile", "x.pid", "--confirm-timeout", "0s"],
            "watchd: --confirm-timeout: must be longer than 0s (e.g. 10s), or give --no-confirm\n",
        ),
        (
            ["--pidfile", "x.pid", "--check", "true", "--check-timeout", "0s"],
            "watchd: --check-timeout: must be longer than 0s (e.g. 60s)\n",
        ),
    ],
)
def test_check_and_confirm_usage_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err == message


@pytest.mark.parametrize(
    ("flag", "api", "css"),
    [
        (["--signal", "USR2"], "  action:    send USR2 to the PID in", "  action:    run sh -c 'make css'"),
        (["--on-busy", "restart"], "  action:    send USR1", "on busy: restart"),
        (["--check", "true"], "  check:     sh -c 'true'", "  check:     sh -c 'true'"),
        (["--no-confirm"], "  confirm:   off", "  action:    run sh -c 'make css'"),
        (["--confirm-timeout", "5s"], "  confirm:   workers replaced within 5s", "  action:    run"),
        (["--timeout", "1m"], "  action:    send USR1", ", timeout 1m, on busy: queue"),
    ],
)
def test_one_liner_options_beside_config_override_every_watch_they_apply_to(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: list[str], api: str, css: str
) -> None:
    """One rule: an option that sets a watch key overrides it in each watch of the file that
    takes it (--signal: the signal watch; --timeout: the command watch), and says so."""
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, out, err = run(capsys, "--config", str(cfg), *flag, "--validate")
    assert status == 0, err
    api_part, css_part = out.split("\ncss:\n")
    assert api in api_part
    assert css in css_part
    assert f"{cfg}: {flag[0]} overrides every watch of the file that takes it" in err


def test_an_override_no_watch_of_the_file_takes_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, out, err = run(capsys, "--config", str(cfg), "--on-exit", "stop")
    assert (status, out) == (2, "")
    assert err == f"watchd: --on-exit: applies to watches with run, and {cfg} has none (leave it out)\n"


# --------------------------------------------------------------------------- run mode


@pytest.mark.parametrize(
    ("argv", "action"),
    [
        (["-p", "*.py", "--validate", "--", "python", "app.py"], "run and restart python app.py in {cwd}"),
        (
            ["--validate", "--", "python", "-c", "print('a b')"],
            "run and restart python -c \"print('a b')\"",
        ),
        (
            ["--run", "flask run --no-reload", "--validate"],
            "run and restart sh -c 'flask run --no-reload' in {cwd}",
        ),
        (["-r", "-c", "python app.py", "--validate"], "run and restart sh -c 'python app.py' in {cwd}"),
        (["--restart", "--validate", "--", "python", "app.py"], "run and restart python app.py in {cwd}"),
    ],
)
def test_run_one_liners(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    action: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "command line: OK, 1 watch"
    assert f"  paths:     {tmp_path}" in lines
    (shown,) = [line for line in lines if line.startswith("  action:")]
    assert shown.startswith("  action:    " + action.format(cwd=tmp_path).split(" in ")[0])
    assert "  stop:      TERM, KILL after 5s" in lines
    assert "  on exit:   wait" in lines


def test_validate_shows_a_run_watch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(
        capsys,
        "-p",
        "*.py",
        "--stop-signal",
        "int",
        "--stop-timeout",
        "2s",
        "--listen",
        "127.0.0.1:8000",
        "--listen-env",
        "werkzeug",
        "--on-exit",
        "restart",
        "--validate",
        "--",
        "flask",
        "--app",
        "app",
        "run",
        "--no-reload",
    )
    assert status == 0, err
    lines = out.splitlines()
    assert f"  action:    run and restart flask --app app run --no-reload in {tmp_path}" in lines
    assert "  stop:      INT, KILL after 2s" in lines
    assert "  listen:    127.0.0.1:8000 (fd 3, LISTEN_FDS, werkzeug variables)" in lines
    assert "  on exit:   restart" in lines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["-p", "*.py", "--"],
            "watchd: nothing after -- (write the program to run: watchd -p '*.py' -- python app.py)",
        ),
        (["--run", "a", "--", "b"], "watchd: both --run and a program after -- given (keep one)"),
        (["-c", "a", "--", "b"], "watchd: both --command and a program after -- given (keep one)"),
        (
            ["-r", "--pidfile", "x.pid"],
            "watchd: --restart runs a command as an app: give -c CMD or -- PROGRAM, not --pidfile",
        ),
        (["-r"], "watchd: --restart needs something to run: -c CMD, --run CMD or -- PROGRAM ARGS"),
        (
            ["-p", "*.py"],
            "watchd: nothing to do: give --config FILE, or an action: --pidfile FILE, --process NAME, "
            "--command CMD, --run CMD, -- PROGRAM ARGS or --post URL",
        ),
        (
            ["--listen", "8000", "-c", "make"],
            "watchd: --listen: only applies to watches with --run (remove it)",
        ),
        (
            ["--on-exit", "stop", "--pidfile", "x"],
            "watchd: --on-exit: only applies to watches with --run (remove it)",
        ),
        (
            ["--listen-env", "werkzeug", "--", "flask"],
            "watchd: --listen-env: needs --listen too (the socket it describes: add it)",
        ),
    ],
)
def test_run_usage_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err in (message + "\n", message + " (see watchd --help)\n")


@pytest.mark.parametrize(
    "extra",
    [["--", "python", "app.py"], ["-r"], ["--run", "x"], ["--listen", "8000"]],
)
def test_run_options_cannot_be_combined_with_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str]
) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, out, err = run(capsys, "--config", str(cfg), *extra)
    assert (status, out) == (2, "")
    assert "cannot be combined with --config (put it in the config file instead)" in err
    assert err.count("\n") == 1


def test_listen_address_in_use_is_a_one_line_error_and_nothing_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = tmp_path / "started"
        status, out, err = run(capsys, "--listen", f"127.0.0.1:{port}", "--", "touch", str(started))
    assert (status, out) == (2, "")
    assert err == (
        f"watchd: --listen: 127.0.0.1:{port} is already in use (stop what listens there, "
        "or choose another port)\n"
    )
    assert not started.exists()


def test_listen_address_in_use_names_the_config_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "w.yaml"
        cfg.write_text(f"watches:\n  web:\n    paths: [.]\n    run: 'true'\n    listen: 127.0.0.1:{port}\n")
        status, _, err = run(capsys, "--config", str(cfg))
    assert status == 2
    assert err == (
        f"watchd: {cfg}:5:13: watches.web.listen: 127.0.0.1:{port} is already in use "
        "(stop what listens there, or choose another port)\n"
    )


def test_print_unit_for_a_config_leaves_room_for_its_stop_timeouts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text("watches:\n  web:\n    paths: [.]\n    run: python app.py\n    stop_timeout: 30s\n")
    status, out, err = run(capsys, "--config", str(cfg), "--print-unit")
    assert status == 0, err
    assert "TimeoutStopSec=35s" in out.splitlines()
    assert f" --config {cfg}" in out
    status, out, _ = run(capsys, "--print-unit")
    assert "TimeoutStopSec=10s" in out.splitlines()


# --------------------------------------------------------------------------- input that must be refused


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["-p", "*.py", "-c", "echo", "hi"],
            "watchd: PATH 'hi' does not exist (to give a command arguments, quote it: -c 'echo hi'; "
            "a path that appears later belongs in a config file) (see watchd --help)",
        ),
        (
            ["--debounce", "-1s", "-c", "true"],
            "watchd: --debounce: duration '-1s' is negative (write a duration like 2s)",
        ),
        (
            ["--stop-timeout", "-.5s", "-c", "true"],
            "watchd: --stop-timeout: duration '-.5s' is negative (write a duration like 2s)",
        ),
        (
            ["-v", "-q", "-c", "true"],
            "watchd: -v and -q contradict each other (keep one) (see watchd --help)",
        ),
        (
            ["-w", "-W", "-c", "true"],
            "watchd: -w and -W contradict each other (keep one) (see watchd --help)",
        ),
        (
            ["--on-busy", "restart", "-w", "-c", "true"],
            "watchd: --on-busy and -w contradict each other (keep one) (see watchd --help)",
        ),
        (
            ["-p", "", "-c", "true"],
            "watchd: -p '': empty pattern (write a glob like *.py, or leave the option out) "
            "(see watchd --help)",
        ),
        (
            ["--patterns", "*.py;", "-c", "true"],
            "watchd: --patterns '*.py;': empty pattern (write a glob like *.py, or leave the option out) "
            "(see watchd --help)",
        ),
        (
            ["--print-unit", "-p", "*.py"],
            "watchd: --print-unit takes no other options but --config FILE (the unit runs that config; "
            "put the watch in it) (see watchd --help)",
        ),
    ],
)
def test_contradictions_and_empties_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv)
    assert (status, out, err) == (2, "", message + "\n")


def test_overrides_of_a_config_file_are_validated(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, _, err = run(capsys, "--config", str(cfg), "--poll", "--poll-interval", "0s", "--validate")
    assert (status, err) == (2, "watchd: --poll-interval: must be longer than 0s (e.g. 1s)\n")


@pytest.mark.parametrize(
    ("watchmedo", "ignored", "kept"),
    [
        (
            "*/tests/*",
            ["tests/t1.py", "src/tests/t0.py", "src/pkg/sub/tests/t2.py", "src/tests/unit/t3.py"],
            ["src/a.py"],
        ),
        ("*.pyc", ["a.pyc", "deep/er/b.pyc"], ["a.py"]),
        ("build/*", ["build/x.py", "src/build/y.py"], ["builder/x.py"]),
    ],
)
def test_watchmedo_ignore_patterns_keep_watchmedo_meaning(
    watchmedo: str, ignored: list[str], kept: list[str]
) -> None:
    """watchmedo matches --ignore-patterns against the whole path: `*/tests/*` is tests/ anywhere."""
    matcher = Matcher(["*.py", "*.pyc"], [from_watchmedo(watchmedo)], ignore_defaults=False)
    assert [p for p in ignored if matcher.matches(p)] == []
    assert [p for p in kept if not matcher.matches(p)] == []


def test_print_unit_with_a_config_runs_that_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "w.yaml"
    cfg.write_text(CONFIG)
    status, out, _ = run(capsys, "--print-unit", "--config", str(cfg))
    assert status == 0
    assert f"--config {cfg}" in next(line for line in out.splitlines() if line.startswith("ExecStart="))


# --------------------------------------------------------------------------- --example

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "watchd" / "examples"


def test_example_lists_the_shipped_configs(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--example")
    assert status == 0, err
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith("watchd ")]
    assert names == ["dev", "django", "flask", "gunicorn", "prometheus", "uwsgi"]
    assert "gunicorn   Reload gunicorn gracefully whenever the app's Python code changes." in out


@pytest.mark.parametrize("name", ["dev", "django", "flask", "gunicorn", "prometheus", "uwsgi"])
def test_example_prints_the_same_file_as_the_repositorys_config(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--example", name)
    assert status == 0, err
    assert out == (EXAMPLES_DIR / f"{name}.yaml").read_text()
    # one source: config/NAME.yaml, which the README runs, is that very file
    assert (EXAMPLES_DIR.parent.parent / "config" / f"{name}.yaml").samefile(EXAMPLES_DIR / f"{name}.yaml")


def test_an_unknown_example_is_one_line_naming_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--example", "nginx")
    assert (status, out) == (2, "")
    assert err == "watchd: no example 'nginx' (examples: dev, django, flask, gunicorn, prometheus, uwsgi)\n"


@pytest.mark.parametrize(
    ("argv", "watching"),
    [
        (["--", "python", "app.py"], True),  # a Python app and nothing else: its imports are watched
        (["--", "python3.12", "-m", "mypkg"], True),
        (["--", ".venv/bin/python", "app.py"], True),
        (["--run", "python3 manage.py runserver --noreload"], True),
        (["--", "pythonista", "app.py"], False),  # not an interpreter's name
        (["--", "./serve", "app"], True),  # a script whose #! line names Python (flask, uvicorn, ...)
        (["--", "./serve.sh"], False),
        (["--", "node", "app.js"], False),
        (["-p", "*.py", "--", "python", "app.py"], False),  # patterns given: only what they say
        (["--", "python", "app.py", "."], True),  # (after --, "." is the app's argument)
        (["--no-watch-imports", "--", "python", "app.py"], False),
        (["--watch-imports", "-p", "*.py", "--", "node", "app.js"], True),  # asked for: on
    ],
)
def test_watch_imports_is_on_by_default_for_a_python_app_without_paths_or_patterns(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    watching: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "serve").write_text("#!/usr/bin/env python3\nimport app\n")
    (tmp_path / "serve.sh").write_text("#!/bin/sh\nexec python3 app.py\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    # the programs named must exist (watchd refuses one it cannot find): stand-ins that do
    stand_ins = [tmp_path / "bin" / n for n in ("python", "python3", "python3.12", "pythonista", "node")]
    for script in [tmp_path / "serve", tmp_path / "serve.sh", tmp_path / ".venv/bin/python", *stand_ins]:
        if not script.exists():
            script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    status, out, err = run(capsys, "--validate", *argv)
    assert status == 0, err
    (shown,) = [line for line in out.splitlines() if line.startswith("  action:")]
    assert (", watching the files it imports" in shown) is watching
    if watching and "--watch-imports" not in argv:  # the default: the project's .py files too, not all
        assert "  patterns:  *.py" in out.splitlines()


def test_watch_imports_in_a_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(
        "watches:\n  app:\n    paths: [.]\n    watch_imports: true\n    run: python app.py\n"
    )
    status, out, err = run(capsys, "--config", str(tmp_path / "w.yaml"), "--validate")
    assert status == 0, err
    assert ", watching the files it imports" in out
    (tmp_path / "w.yaml").write_text(
        "watches:\n  t:\n    paths: [.]\n    watch_imports: true\n    command: make\n"
    )
    status, out, err = run(capsys, "--config", str(tmp_path / "w.yaml"), "--validate")
    assert status == 2
    assert "watches.t.watch_imports" in err and "run" in err


def test_post_one_liner(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [
        "--validate",
        "--post",
        "http://127.0.0.1:9090/-/reload",
        "--header",
        "X-A: 1",
        "--header",
        "X-B: two",
    ]
    status, out, err = run(
        capsys, *argv, "--method", "put", "--tries", "2", "--body", "changes", "-p", "*.yml"
    )
    assert status == 0, err
    assert "post:" in out.splitlines()  # the watch is named for what it does
    shown = "PUT http://127.0.0.1:9090/-/reload with X-A, X-B, the changes as JSON, timeout 5s, 2 tries"
    assert f"  action:    {shown}" in out
    status, out, err = run(capsys, "--post", "http://127.0.0.1:9090/-/reload", "--header", "no colon")
    assert (status, err) == (2, "watchd: --header[0]: expected 'Name: value'\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--cwd", "/nonexistent", "-c", "true"],
            "watchd: --cwd: no directory /nonexistent (create it, or correct the path)",
        ),
        (
            ["-p", "[abc", "-c", "true"],
            "watchd: --pattern: invalid pattern '[abc': a '[' without its ']' (close the set, as in "
            "'*.[ch]', or write '\\[' for a literal [)",
        ),
        (
            ["--stop-timeout", "3000000h", "-c", "true"],
            "watchd: --stop-timeout: duration '3000000h' is too long (at most 24h)",
        ),
        (
            ["--http-timeout", "-1s", "--post", "http://127.0.0.1:9/"],
            "watchd: --http-timeout: duration '-1s' is negative (write a duration like 2s)",
        ),
        (["-e", "py,", "-c", "true"], "watchd: -e 'py,': empty extension (write extensions like py,html)"),
        (
            ["--check", "true", "--no-check", "--", "python3", "app.py"],
            "watchd: --check and --no-check contradict each other (keep one)",
        ),
    ],
)
def test_errors_found_at_start(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    for validate in ([], ["--validate"]):  # the same at start as in --validate: nothing starts
        status, out, err = run(capsys, *validate, *argv)
        assert (status, out) == (2, "")
        assert err in (message + "\n", message + " (see watchd --help)\n")


def test_exts_are_watchexecs_spelling_of_patterns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "-e", "py,.html", "--exts", "css", "-c", "true", "--validate")
    assert status == 0, err
    assert "  patterns:  *.py, *.html, *.css" in out.splitlines()


@pytest.mark.parametrize(
    ("argv", "check"),
    [
        (["--", "python3", "app.py"], "  check:     python: compile the changed .py files in-process"),
        (["-p", "*.html", "--", "python3", "app.py"], "  check:     python: compile the changed .py files"),
        (["--no-check", "--", "python3", "app.py"], None),
        (["--check", "make lint", "--", "python3", "app.py"], "  check:     sh -c 'make lint'"),
        (["--", "sh", "-c", "true"], None),  # not a Python app
        (["-c", "python3 build.py"], None),  # a command, not an app
    ],
)
def test_a_python_app_gets_check_python_by_default(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    check: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "--validate", *argv)
    assert status == 0, err
    shown = [line for line in out.splitlines() if line.startswith("  check:")]
    if check is None:
        assert shown == []
    else:
        assert len(shown) == 1
        assert shown[0].startswith(check)


def test_interactive_and_run_at_start_flags() -> None:
    args = cli.parse_args(["-I", "--run-at-start", "--no-prefix", "-c", "make", "."])
    assert args.interactive is True and args.run_at_start is True and args.prefix is False
    args = cli.parse_args(["--interactive", "-c", "make", "."])
    assert args.interactive is True and args.run_at_start is None


def test_help_says_a_command_does_not_run_at_start_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--run-at-start also run the command once at start" in text
    assert "by default, as watchmedo, it runs only on a change" in text
    assert "-I, --interactive" in text
