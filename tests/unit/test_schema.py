"""The schema walked key by key: for every watch key, the config file's spelling and the command
line's build the same watch, a bad value gets the same message from both, and the README's key
table is the schema's. A key added to the schema without a sample here fails the first test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from watchd import cli
from watchd.config import parse_config
from watchd.errors import ConfigError
from watchd.model import Watch
from watchd.schema import KEYS, Form, default, flags, help_text, readme_table, shown

README = Path(__file__).resolve().parents[2] / "README.md"

# The watch a key is tried on, by its first action: (YAML lines, command-line arguments).
BASES = {
    "pidfile": (["pidfile: app.pid"], ["--pidfile", "app.pid"]),
    "process": (["process: gunicorn"], ["--process", "gunicorn"]),
    "command": (["command: make"], ["-c", "make"]),
    "run": (["run: sleep 1000"], ["--run", "sleep 1000"]),  # not a Python app: no default check
    "post": (["post: http://127.0.0.1:9/-/reload"], ["--post", "http://127.0.0.1:9/-/reload"]),
}

# A value other than the default, in both spellings (with the keys it needs).
SAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "paths": (["paths: [src, lib]"], ["src", "lib"]),
    "patterns": (['patterns: ["*.py", "!setup.py"]'], ["-p", "*.py", "-p", "!setup.py"]),
    "ignore": (['ignore: ["build/"]'], ["-i", "build/"]),
    "ignore_defaults": (["ignore_defaults: false"], ["--no-default-ignores"]),
    "ignore_directories": (["ignore_directories: true"], ["--ignore-directories"]),
    "gitignore": (["gitignore: true"], ["--gitignore"]),
    "content": (["content: true"], ["--content"]),
    "debounce": (["debounce: 200ms"], ["--debounce", "200ms"]),
    "max_delay": (["max_delay: 5s"], ["--max-delay", "5s"]),
    "poll": (["poll: true"], ["--poll"]),
    "poll_interval": (["poll_interval: 500ms"], ["--poll-interval", "500ms"]),
    "cwd": (["cwd: sub"], ["--cwd", "sub"]),
    "check": (["check: make lint"], ["--check", "make lint"]),
    "check_timeout": (
        ["check: make lint", "check_timeout: 2m"],
        ["--check", "make lint", "--check-timeout", "2m"],
    ),
    "env": (["env: {MODE: dev, EMPTY: ''}"], ["-E", "MODE=dev", "-E", "EMPTY="]),
    "env_file": (["env_file: app.env"], ["--env-file", "app.env"]),
    "pidfile": (["pidfile: run/app.pid"], ["--pidfile", "run/app.pid"]),
    "process": (["process: gunicorn -c api.py"], ["--process", "gunicorn -c api.py"]),
    "signal": (["signal: USR2"], ["--signal", "USR2"]),
    "expect": (["expect: gunicorn"], ["--expect", "gunicorn"]),
    "unit": (["unit: gunicorn.service"], ["--unit", "gunicorn.service"]),
    "process_user": (["process_user: 65532"], ["--process-user", "65532"]),
    "pidfile_wait": (["pidfile_wait: 5s"], ["--pidfile-wait", "5s"]),
    "confirm": (["confirm: false"], ["--no-confirm"]),
    "confirm_timeout": (["confirm_timeout: 30s"], ["--confirm-timeout", "30s"]),
    "command": (["command: make css"], ["-c", "make css"]),
    "timeout": (["timeout: 60s"], ["--timeout", "60s"]),
    "on_busy": (["on_busy: restart"], ["--on-busy", "restart"]),
    "run_at_start": (["run_at_start: true"], ["--run-at-start"]),
    "run": (["run: sleep 2000"], ["--run", "sleep 2000"]),
    "on_exit": (["on_exit: restart"], ["--on-exit", "restart"]),
    "reload": (["reload: HUP"], ["--reload-signal", "HUP"]),
    "restart_patterns": (
        ["reload: HUP", "restart_patterns: [requirements.txt, gunicorn.conf.py]"],
        [
            "--reload-signal",
            "HUP",
            "--restart-pattern",
            "requirements.txt",
            "--restart-pattern",
            "gunicorn.conf.py",
        ],
    ),
    "listen": (["listen: 127.0.0.1:8000"], ["--listen", "127.0.0.1:8000"]),
    "listen_env": (
        ["listen: 8000", "listen_env: werkzeug"],
        ["--listen", "8000", "--listen-env", "werkzeug"],
    ),
    "ready_timeout": (["listen: 8000", "ready_timeout: 2m"], ["--listen", "8000", "--ready-timeout", "2m"]),
    "watch_imports": (["watch_imports: true"], ["--watch-imports"]),
    "preload": (["preload: off"], ["--no-preload"]),
    "stop_signal": (["stop_signal: INT"], ["--stop-signal", "INT"]),
    "stop_timeout": (["stop_timeout: 10s"], ["--stop-timeout", "10s"]),
    "clear": (["clear: true"], ["--clear"]),
    "prefix": (["prefix: false"], ["--no-prefix"]),
    "post": (["post: https://example.test/reload"], ["--post", "https://example.test/reload"]),
    "method": (["method: PUT"], ["--method", "PUT"]),
    "headers": (['headers: {Authorization: "Bearer x"}'], ["--header", "Authorization: Bearer x"]),
    "http_timeout": (["http_timeout: 10s"], ["--http-timeout", "10s"]),
    "tries": (["tries: 5"], ["--tries", "5"]),
    "body": (["body: changes"], ["--body", "changes"]),
}

# A bad value in both spellings. None: the command line cannot spell a bad one (a switch takes no
# value; PATH is refused before the config is read if it does not exist; any text is an --expect).
BAD: dict[str, tuple[list[str], list[str]] | None] = {
    "paths": None,
    "patterns": (['patterns: ["[abc"]'], ["-p", "[abc"]),
    "ignore": (['ignore: ["#notes"]'], ["-i", "#notes"]),
    "ignore_defaults": None,
    "ignore_directories": None,
    "gitignore": None,
    "content": None,
    "debounce": (["debounce: -1s"], ["--debounce", "-1s"]),
    "max_delay": (["max_delay: 0s"], ["--max-delay", "0s"]),
    "poll": None,
    "poll_interval": (["poll_interval: 50"], ["--poll-interval", "50"]),
    "cwd": (["cwd: no-such-dir"], ["--cwd", "no-such-dir"]),
    "check": (['check: ""'], ["--check", ""]),
    "check_timeout": (
        ["check: make lint", "check_timeout: 0s"],
        ["--check", "make lint", "--check-timeout", "0s"],
    ),
    "env": (['env: {"BAD NAME": x}'], ["-E", "BAD NAME=x"]),
    "env_file": (["env_file: broken.env"], ["--env-file", "broken.env"]),
    "pidfile": (['pidfile: ""'], ["--pidfile", ""]),
    "process": (['process: " "'], ["--process", " "]),
    "signal": (["signal: HUPP"], ["--signal", "HUPP"]),
    "expect": None,
    "unit": (["unit: gunicorn"], ["--unit", "gunicorn"]),
    "process_user": (["process_user: no-such-user-x9"], ["--process-user", "no-such-user-x9"]),
    "pidfile_wait": (["pidfile_wait: 25h"], ["--pidfile-wait", "25h"]),
    "confirm": None,
    "confirm_timeout": (["confirm_timeout: 0s"], ["--confirm-timeout", "0s"]),
    "command": (['command: " "'], ["-c", " "]),
    "timeout": (["timeout: 0s"], ["--timeout", "0s"]),
    "on_busy": (["on_busy: later"], ["--on-busy", "later"]),
    "run_at_start": None,
    "run": (['run: ""'], ["--run", ""]),
    "on_exit": (["on_exit: never"], ["--on-exit", "never"]),
    "reload": (["reload: HUPP"], ["--reload-signal", "HUPP"]),
    "restart_patterns": (
        ["reload: HUP", 'restart_patterns: ["[abc"]'],
        ["--reload-signal", "HUP", "--restart-pattern", "[abc"],
    ),
    "listen": (["listen: nowhere"], ["--listen", "nowhere"]),
    "listen_env": (["listen: 8000", "listen_env: flask"], ["--listen", "8000", "--listen-env", "flask"]),
    "ready_timeout": (["listen: 8000", "ready_timeout: 0s"], ["--listen", "8000", "--ready-timeout", "0s"]),
    "watch_imports": None,
    "preload": (["preload: sometimes"], ["--preload", "sometimes"]),
    "stop_signal": (["stop_signal: 99"], ["--stop-signal", "99"]),
    "stop_timeout": (["stop_timeout: -1s"], ["--stop-timeout", "-1s"]),
    "clear": None,
    "prefix": None,
    "post": (["post: ftp://example.test/"], ["--post", "ftp://example.test/"]),
    "method": (['method: "P OST"'], ["--method", "P OST"]),
    "headers": (['headers: {"Bad Name": x}'], ["--header", "Bad Name: x"]),
    "http_timeout": (["http_timeout: -1s"], ["--http-timeout", "-1s"]),  # argparse took -1s for an option
    "tries": (["tries: 0"], ["--tries", "0"]),
    "body": (["body: everything"], ["--body", "everything"]),
}


SPELLED_FIXES = {"give --no-confirm": "set confirm: false"}


def test_every_key_has_a_sample_and_a_bad_value() -> None:
    assert SAMPLES.keys() == KEYS.keys()
    assert BAD.keys() == KEYS.keys()
    for key, bad in BAD.items():
        assert (
            bad is not None or KEYS[key].form in (Form.SWITCH, Form.OFF, Form.POSITIONAL) or key == "expect"
        )


def _kind(key: str) -> str:
    """A command watch for the keys every action takes (cwd and check show there), else the
    key's own action."""
    return "command" if "command" in KEYS[key].actions else next(k for k in BASES if k in KEYS[key].actions)


def _from_file(tmp_path: Path, key: str, lines: list[str]) -> Watch:
    base = BASES[_kind(key)][0]
    paths = [] if key == "paths" else ["paths: [src]"]
    own = [] if key in BASES else base  # an action's own key replaces the base action
    body = "".join(f"    {line}\n" for line in [*paths, *own, *lines])
    config = parse_config(f"watches:\n  w:\n{body}", source="dev.yaml", base_dir=tmp_path, env={})
    (watch,) = config.watches
    return watch


def _from_command_line(key: str, args: list[str]) -> Watch:
    base = BASES[_kind(key)][1]
    own = [] if key in BASES else base
    paths = [] if key == "paths" else ["src"]
    (watch,) = cli.load(cli.parse_args([*paths, *own, *args])).watches
    return dataclasses.replace(watch, name="w")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for d in ("src", "lib", "sub"):
        (tmp_path / d).mkdir()
    (tmp_path / "app.env").write_text("SECRET=x\n")
    (tmp_path / "broken.env").write_text("SECRET=x\nnot a line\n")
    monkeypatch.chdir(tmp_path)  # the command line's paths resolve from here, the file's from its directory
    monkeypatch.delenv("WATCHD_CHANGED_FILE", raising=False)
    return tmp_path


def _outcome(build: object) -> Watch | str:
    """The watch, or the error's message without where it was written."""
    try:
        return build()  # type: ignore[operator,no-any-return]
    except ConfigError as exc:
        return f"error: {exc.message}"


@pytest.mark.parametrize("key", list(KEYS))
def test_the_file_and_the_command_line_build_the_same_watch(project: Path, key: str) -> None:
    yaml_lines, args = SAMPLES[key]
    from_file = _outcome(lambda: _from_file(project, key, yaml_lines))
    from_cli = _outcome(lambda: _from_command_line(key, args))
    assert from_file == from_cli
    if isinstance(from_file, Watch) and key not in BASES and key != "paths":
        assert from_file != _from_file(project, key, [])  # the key took effect: not the default


@pytest.mark.parametrize("key", [k for k, bad in BAD.items() if bad is not None])
def test_a_bad_value_gets_the_same_message_from_the_file_and_the_command_line(
    project: Path, key: str
) -> None:
    bad = BAD[key]
    assert bad is not None
    yaml_lines, args = bad
    from_file = _outcome(lambda: _from_file(project, key, yaml_lines))
    from_cli = _outcome(lambda: _from_command_line(key, args))
    assert isinstance(from_file, str), f"{key}: the file's bad value was taken"
    assert isinstance(from_cli, str), f"{key}: the command line's bad value was taken"
    # the same words, but a fix is written in the syntax the user wrote the value in
    for cli_fix, file_fix in SPELLED_FIXES.items():
        from_cli = from_cli.replace(cli_fix, file_fix)
    assert from_file == from_cli


def test_the_readme_key_table_is_the_schema() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("| key | type | default | example | meaning |")
    end = text.index("<!-- end of the key table -->", start)
    assert text[start:end] == readme_table(), "run python -m watchd.schema and paste its table in the README"
    for key in KEYS:
        row = next(line for line in readme_table().splitlines() if line.startswith(f"| `{key}` |"))
        assert f"| {shown(key)} |" in row


@pytest.mark.parametrize("key", list(KEYS))
def test_each_default_comes_from_the_model(key: str) -> None:
    value = default(key)  # a KeyError here: the schema names a field the model does not have
    if not KEYS[key].shown_default:
        assert value is not dataclasses.MISSING
        if shown(key) != "none" and KEYS[key].form not in (Form.SWITCH, Form.OFF):
            assert f"(default {shown(key).strip('`')})" in help_text(key)  # --help says it


def test_every_duration_option_takes_a_negative_value_as_its_value() -> None:
    for key, spec in KEYS.items():
        if spec.metavar == "DUR":
            for flag in flags(key):
                assert flag in cli._DURATION_OPTIONS
