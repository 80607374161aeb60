"""watchd.config: YAML and command-line options -> frozen dataclasses, with exact error messages.

Unit tests: `parse_config` gets the text, a fake base directory and a fake environment, so
nothing touches the filesystem (only the `load_config` tests use tmp_path).
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pytest

from watchd import platform
from watchd.config import config_from_options, load_config, parse_config
from watchd.errors import ConfigError
from watchd.model import (
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_CONFIRM_TIMEOUT,
    DEFAULT_DEBOUNCE,
    DEFAULT_MAX_DELAY,
    DEFAULT_PIDFILE_WAIT,
    DEFAULT_POLL_INTERVAL,
    Body,
    CheckSettings,
    CommandSettings,
    Config,
    ListenEnv,
    OnBusy,
    OnExit,
    PidfileSettings,
    Poll,
    PostSettings,
    PythonCheckSettings,
    RunSettings,
    Stop,
    Watch,
)
from watchd.platform import darwin
from watchd.values import expand_env, parse_duration, parse_listen, parse_signal

BASE = Path("/srv/app")
ENV = {"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/dev", "EMPTY": ""}


def there(path: Path) -> bool:
    """The disk of these tables: every directory exists but those named missing."""
    return "missing" not in str(path)


def parse(text: str, env: dict[str, str] | None = None) -> Config:
    return parse_config(text, source="dev.yaml", base_dir=BASE, env=ENV if env is None else env, is_dir=there)


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return str(info.value)


def one_watch(text: str, env: dict[str, str] | None = None) -> Watch:
    (watch,) = parse(text, env).watches
    return watch


# Building blocks for the tables: the lines that follow them start at line 5 (W: line 4).
W = "watches:\n  api:\n    paths: [src]\n"  # a watch without its action; lines 1-3
P = W + "    pidfile: app.pid\n"  # a signal watch; the next key is on line 5, column 5
C = W + "    command: make\n"  # a command watch


# --------------------------------------------------------------------------- a valid config

EXAMPLE = """\
defaults:
  debounce: 50ms
watches:
  api:
    paths: [src, templates]
    patterns: ["*.py", "*.html"]
    ignore: ["tests/**"]
    signal: HUP
    pidfile: ${XDG_RUNTIME_DIR}/gunicorn.pid
  styles:
    paths: [assets]
    patterns: ["*.scss"]
    command: make css
    timeout: 60s
    on_busy: queue
"""


def test_example_config_parses_into_frozen_dataclasses() -> None:
    config = parse(EXAMPLE)

    assert config == Config(
        watches=(
            Watch(
                name="api",
                paths=(Path("/srv/app/src"), Path("/srv/app/templates")),
                action=PidfileSettings(
                    pidfile=Path("/run/user/1000/gunicorn.pid"),
                    signal=int(signal.SIGHUP),
                    expect=None,
                    pidfile_wait=DEFAULT_PIDFILE_WAIT,
                ),
                patterns=("*.py", "*.html"),
                ignore=("tests/**",),
                ignore_defaults=True,
                ignore_directories=False,
                debounce=0.05,
                max_delay=DEFAULT_MAX_DELAY,
                poll=Poll.AUTO,
                poll_interval=DEFAULT_POLL_INTERVAL,
            ),
            Watch(
                name="styles",
                paths=(Path("/srv/app/assets"),),
                action=CommandSettings(command="make css", cwd=BASE, timeout=60.0, on_busy=OnBusy.QUEUE),
                patterns=("*.scss",),
                debounce=0.05,
            ),
        ),
        source=None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.watches[0].name = "other"  # type: ignore[misc]
    assert not hasattr(config.watches[0], "__dict__")  # slotted


def test_defaults_apply_when_nothing_is_set() -> None:
    watch = one_watch("watches:\n  w:\n    paths: .\n    pidfile: run/app.pid\n")

    assert watch == Watch(
        name="w",
        paths=(BASE,),
        action=PidfileSettings(pidfile=Path("/srv/app/run/app.pid")),
        patterns=(),
        ignore=(),
        ignore_defaults=True,
        ignore_directories=False,
        debounce=DEFAULT_DEBOUNCE,
        max_delay=DEFAULT_MAX_DELAY,
        poll=Poll.AUTO,
        poll_interval=DEFAULT_POLL_INTERVAL,
    )
    assert watch.action == PidfileSettings(
        pidfile=Path("/srv/app/run/app.pid"), signal=1, expect=None, pidfile_wait=DEFAULT_PIDFILE_WAIT
    )


def test_every_key_set() -> None:
    text = """\
defaults:
  poll: true
  poll_interval: 500ms
watches:
  web:
    paths: [/abs/dir, ~/proj, "${NOPE:-fallback}/x", "../shared/./lib"]
    patterns: "*.py"
    ignore: [build/, "*.tmp"]
    ignore_defaults: false
    ignore_directories: yes
    debounce: 1.5s
    max_delay: 2m
    pidfile: ~/run/web.pid
    signal: SIGUSR2
    expect: gunicorn
    pidfile_wait: 250ms
  job:
    paths: [src]
    command: [pytest, -x, "${HOME}", "$$HOME"]
    cwd: sub
    timeout: 1h
    on_busy: Restart
"""
    web, job = parse(text).watches

    assert web == Watch(
        name="web",
        paths=(
            Path("/abs/dir"),
            Path("/home/dev/proj"),
            Path("/srv/app/fallback/x"),
            Path("/srv/shared/lib"),
        ),
        action=PidfileSettings(
            pidfile=Path("/home/dev/run/web.pid"),
            signal=int(signal.SIGUSR2),
            expect="gunicorn",
            pidfile_wait=0.25,
        ),
        patterns=("*.py",),
        ignore=("build/", "*.tmp"),
        ignore_defaults=False,
        ignore_directories=True,
        debounce=1.5,
        max_delay=120.0,
        poll=Poll.ALWAYS,
        poll_interval=0.5,
    )
    # A list-form command stays a tuple and is not env-expanded (no shell: it means what it says).
    assert job.action == CommandSettings(
        command=("pytest", "-x", "${HOME}", "$$HOME"),
        cwd=Path("/srv/app/sub"),
        timeout=3600.0,
        on_busy=OnBusy.RESTART,
    )
    assert job.poll is Poll.ALWAYS and job.poll_interval == 0.5


def test_string_command_is_left_to_the_shell() -> None:
    watch = one_watch("watches:\n  w:\n    paths: .\n    command: echo ${NOT_SET} $$WATCHD_PATH\n")

    assert watch.action == CommandSettings(command="echo ${NOT_SET} $$WATCHD_PATH", cwd=BASE)


def test_env_expansion_in_paths() -> None:
    text = """\
watches:
  w:
    paths: ["${NOPE:-/opt/default}", "${EMPTY:-/opt/empty}", "$${literal}", "a${HOME}b"]
    pidfile: "${XDG_RUNTIME_DIR}/app.pid"
"""
    watch = one_watch(text)

    assert watch.paths == (
        Path("/opt/default"),
        Path("/opt/empty"),
        Path("/srv/app/${literal}"),
        Path("/srv/app/a/home/devb"),
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("1", 1),
        ("HUP", 1),
        ("SIGHUP", 1),
        ("hup", 1),
        ("USR1", int(signal.SIGUSR1)),
        ("'15'", 15),
        ("sigterm", int(signal.SIGTERM)),
        ("010", 10),  # as written; YAML 1.1 would read octal 8 (SIGFPE)
    ],
)
def test_signal_forms(written: str, expected: int) -> None:
    watch = one_watch(f"watches:\n  w:\n    paths: .\n    pidfile: p\n    signal: {written}\n")

    assert isinstance(watch.action, PidfileSettings)
    assert watch.action.signal == expected


@pytest.mark.parametrize(
    ("written", "expected"), [("queue", OnBusy.QUEUE), ("ignore", OnBusy.IGNORE), ("RESTART", OnBusy.RESTART)]
)
def test_on_busy_values(written: str, expected: OnBusy) -> None:
    watch = one_watch(f"watches:\n  w:\n    paths: .\n    command: make\n    on_busy: {written}\n")

    assert isinstance(watch.action, CommandSettings)
    assert watch.action.on_busy is expected


def test_merge_keys_are_overridden_by_the_watchs_own_keys() -> None:
    text = """\
watches:
  api: &server
    paths: [src]
    pidfile: api.pid
    debounce: 1s
  admin:
    <<: *server
    pidfile: admin.pid
"""
    api, admin = parse(text).watches

    assert admin == dataclasses.replace(
        api, name="admin", action=PidfileSettings(pidfile=Path("/srv/app/admin.pid"))
    )


def test_a_watch_setting_overrides_defaults() -> None:
    text = "defaults:\n  debounce: 1s\n  max_delay: 5s\n" + P + "    debounce: 2s\n"
    watch = one_watch(text)

    assert (watch.debounce, watch.max_delay) == (2.0, 5.0)  # max_delay still from defaults


def test_check_string_is_left_to_the_shell() -> None:
    watch = one_watch(P + "    check: python3 -m compileall -q ${NOT_SET} $$WATCHD_PATH\n")

    assert watch.check == CheckSettings(
        command="python3 -m compileall -q ${NOT_SET} $$WATCHD_PATH", cwd=BASE, timeout=DEFAULT_CHECK_TIMEOUT
    )
    assert watch.action == PidfileSettings(pidfile=Path("/srv/app/app.pid"))


def test_check_list_is_a_tuple_not_env_expanded() -> None:
    watch = one_watch(C + '    check: [python3, -m, compileall, "${HOME}"]\n    check_timeout: 2m\n')

    assert watch.check == CheckSettings(
        command=("python3", "-m", "compileall", "${HOME}"), cwd=BASE, timeout=120.0
    )


def test_cwd_on_a_pidfile_watch_is_the_checks_cwd() -> None:
    watch = one_watch(P + "    cwd: sub\n    check: make lint\n    check_timeout: 500ms\n")

    assert watch.check == CheckSettings(command="make lint", cwd=Path("/srv/app/sub"), timeout=0.5)


def test_cwd_on_a_command_watch_is_shared_by_the_check() -> None:
    watch = one_watch(C + "    cwd: ${HOME}/proj\n    check: make lint\n")

    assert watch.action == CommandSettings(command="make", cwd=Path("/home/dev/proj"))
    assert watch.check == CheckSettings(command="make lint", cwd=Path("/home/dev/proj"))


def test_no_check_by_default() -> None:
    assert one_watch(P).check is None
    assert one_watch(C + "    cwd: sub\n").check is None


def test_confirm_settings() -> None:
    watch = one_watch(P + "    confirm: false\n    confirm_timeout: 30s\n")

    assert watch.action == PidfileSettings(
        pidfile=Path("/srv/app/app.pid"), confirm=False, confirm_timeout=30.0
    )
    assert one_watch(P).action == PidfileSettings(
        pidfile=Path("/srv/app/app.pid"), confirm=True, confirm_timeout=DEFAULT_CONFIRM_TIMEOUT
    )


def test_check_in_defaults_applies_to_every_watch() -> None:
    text = """\
defaults:
  check: python3 -m compileall -q .
  check_timeout: 5s
  confirm: false
watches:
  api:
    paths: [src]
    pidfile: api.pid
  css:
    paths: [styles]
    command: make css
    cwd: styles
    check_timeout: 1m
"""
    api, css = parse(text).watches

    assert api.check == CheckSettings(command="python3 -m compileall -q .", cwd=BASE, timeout=5.0)
    assert css.check == CheckSettings(
        command="python3 -m compileall -q .", cwd=Path("/srv/app/styles"), timeout=60.0
    )
    # a signal key in defaults applies to the signal watches only
    assert api.action == PidfileSettings(pidfile=Path("/srv/app/api.pid"), confirm=False)
    assert css.action == CommandSettings(command="make css", cwd=Path("/srv/app/styles"))


def test_check_timeout_in_defaults_without_a_check_is_fine() -> None:
    watch = one_watch("defaults:\n  check_timeout: 5s\n" + P)

    assert watch.check is None


def test_check_python_is_the_built_in_check() -> None:
    assert one_watch(P + "    check: python\n").check == PythonCheckSettings()
    assert one_watch(C + "    check: python\n").check == PythonCheckSettings()
    # spelled as a command it is a command (an interpreter reading its stdin)
    assert one_watch(P + "    check: [python]\n").check == CheckSettings(command=("python",), cwd=BASE)
    assert one_watch(P + "    check: python -m compileall -q .\n").check == CheckSettings(
        command="python -m compileall -q .", cwd=BASE
    )
    # in defaults, with a check_timeout meant for the watches that override it with a command
    text = "defaults:\n  check: python\n  check_timeout: 5s\n" + P
    assert one_watch(text).check == PythonCheckSettings()
    assert (
        cli_error(pidfile="x.pid", check="python", check_timeout="5s")
        == "watchd: --check-timeout: only applies to a command check, not to python (remove it)"
    )


def test_clear_is_for_commands_and_apps() -> None:
    assert one_watch(C + "    clear: true\n").action == CommandSettings(command="make", cwd=BASE, clear=True)
    run = one_watch(W + "    run: [python3, app.py]\n    clear: true\n").action
    assert isinstance(run, RunSettings) and run.clear
    assert "clear" in error_of(P + "    clear: true\n")  # a signal has no screen to clear


# --------------------------------------------------------------------------- error table


ERRORS = [
    # YAML itself
    pytest.param(
        "watches:\n  api:\n    paths: [src\n    pidfile: x\n",
        "dev.yaml:4:12: YAML syntax error: expected ',' or ']', but got ':' "
        "(in a flow sequence started on line 3: check indentation, colons and quoting)",
        id="yaml-unclosed-list",
    ),
    pytest.param(
        W + '    pidfile: "app.pid\n',
        "dev.yaml:5:1: YAML syntax error: found unexpected end of stream "
        "(in a quoted scalar started on line 4: check indentation, colons and quoting)",
        id="yaml-unclosed-quote",
    ),
    pytest.param(
        "watches:\n\tapi: {}\n",
        "dev.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token "
        "(indent with spaces, not tabs)",
        id="yaml-tab",
    ),
    pytest.param(
        W + "    pidfile: a\x07b\n",
        "dev.yaml:4:15: YAML syntax error: control character #x0007 is not allowed "
        '(remove it, or write it as an escape in a "double-quoted" string)',
        id="yaml-control-character",
    ),
    pytest.param(
        P + "---\nwatches: {}\n",
        "dev.yaml:5:1: YAML syntax error: more than one document (remove the second '---' and what follows)",
        id="yaml-two-documents",
    ),
    pytest.param(
        W + "    pidfile: *nope\n",
        "dev.yaml:4:14: YAML error: found undefined alias 'nope' (check anchors and aliases)",
        id="yaml-undefined-alias",
    ),
    pytest.param(
        "watches:\n  api: &a\n    paths: [src]\n    pidfile: p\n    x: *a\n",
        "dev.yaml:5:5: watches.api.x: an alias refers to the anchor that contains it (remove the *alias)",
        id="yaml-recursive-alias",
    ),
    pytest.param(
        W + "    <<: 5\n",
        "dev.yaml:4:9: watches.api: bad merge key: expected a mapping or list of mappings for merging, "
        "but found scalar (write <<: *anchor or <<: [*one, *two])",
        id="yaml-bad-merge",
    ),
    pytest.param(
        "watches:\n  ? [a, b]\n  : {}\n",
        "dev.yaml:2:5: watches: keys must be plain names, not a list or mapping (write name: value)",
        id="yaml-complex-key",
    ),
    # duplicate keys: PyYAML would silently keep the last one
    pytest.param(
        "watches:\n  a: {paths: [s], pidfile: p}\nwatches:\n  b: {paths: [s], pidfile: p}\n",
        "dev.yaml:3:1: watches: duplicate key (first defined on line 1; keep only one)",
        id="duplicate-top-level",
    ),
    pytest.param(
        P + "    paths: [other]\n",
        "dev.yaml:5:5: watches.api.paths: duplicate key (first defined on line 3; keep only one)",
        id="duplicate-in-watch",
    ),
    pytest.param(
        P + "  api:\n    paths: [x]\n    pidfile: p\n",
        "dev.yaml:5:3: watches.api: duplicate key (first defined on line 2; keep only one)",
        id="duplicate-watch-name",
    ),
    # the shape of the file
    pytest.param("", "dev.yaml:1:1: empty config (define watches: with at least one watch)", id="empty-file"),
    pytest.param(
        "# only a comment\n",
        "dev.yaml:1:1: empty config (define watches: with at least one watch)",
        id="comment-only-file",
    ),
    pytest.param(
        "- api\n- web\n",
        "dev.yaml:1:1: expected a mapping with a 'watches' key at the top level, got a list",
        id="top-level-list",
    ),
    pytest.param(
        "defaults:\n  debounce: 1s\n",
        "dev.yaml:1:1: no 'watches' (add watches: with at least one named watch)",
        id="missing-watches",
    ),
    pytest.param(
        "watches: {}\n",
        "dev.yaml:1:10: watches: empty (define at least one named watch under it)",
        id="empty-watches",
    ),
    pytest.param(
        "watches:\n",
        "dev.yaml:1:9: watches: empty (define at least one named watch under it)",
        id="null-watches",
    ),
    pytest.param(
        "watches: [api]\n",
        "dev.yaml:1:10: watches: expected a mapping of named watches, got a list",
        id="watches-as-list",
    ),
    pytest.param(
        "defaults: [1s]\n" + W,
        "dev.yaml:1:11: defaults: expected a mapping of keys, got a list",
        id="defaults-as-list",
    ),
    pytest.param(
        "watches:\n  api: make css\n",
        "dev.yaml:2:8: watches.api: expected a mapping of keys (paths, patterns, ...), got a string",
        id="watch-not-a-mapping",
    ),
    pytest.param(
        "watches:\n  my api:\n    paths: [src]\n    pidfile: p\n",
        "dev.yaml:2:3: watches.my api: bad watch name 'my api' (use letters, digits, '_', '-', '.' or '@')",
        id="bad-watch-name",
    ),
    # unknown keys
    pytest.param(
        "watchs:\n  api: {paths: [s], pidfile: p}\n",
        "dev.yaml:1:1: watchs: unknown key in the top level (did you mean 'watches'?)",
        id="unknown-top-level-close",
    ),
    pytest.param(
        "version: 2\n" + P,
        "dev.yaml:1:1: version: unknown key in the top level "
        "(valid keys: control, defaults, interactive, log_format, metrics, watches)",
        id="unknown-top-level",
    ),
    pytest.param(
        W + "    patern: ['*.py']\n    pidfile: p\n",
        "dev.yaml:4:5: watches.api.patern: unknown key in watch 'api' (did you mean 'patterns'?)",
        id="unknown-key-suggestion",
    ),
    pytest.param(
        P + "    frobnicate: 1\n",
        # a signal watch: the keys of the signal action only (the others would be errors too)
        "dev.yaml:5:5: watches.api.frobnicate: unknown key in watch 'api' (valid keys: check, "
        "check_timeout, confirm, confirm_timeout, content, cwd, debounce, env, env_file, expect, "
        "gitignore, ignore, ignore_defaults, ignore_directories, max_delay, paths, patterns, pidfile, "
        "pidfile_wait, poll, poll_interval, signal, unit)",
        id="unknown-key-no-close-match",
    ),
    pytest.param(
        "defaults:\n  debounse: 1s\n" + P,
        "dev.yaml:2:3: defaults.debounse: unknown key in defaults (did you mean 'debounce'?)",
        id="unknown-key-in-defaults",
    ),
    pytest.param(
        "defaults:\n  pidfile: app.pid\n" + P,
        "dev.yaml:2:3: defaults.pidfile: an action cannot be a default "
        "(give each watch its own pidfile or command)",
        id="action-in-defaults",
    ),
    # wrong types
    pytest.param(
        "watches:\n  api:\n    paths: {src: 1}\n    pidfile: p\n",
        "dev.yaml:3:12: watches.api.paths: expected a list of strings, got a mapping",
        id="paths-mapping",
    ),
    pytest.param(
        "watches:\n  api:\n    paths: [[src]]\n    pidfile: p\n",
        "dev.yaml:3:13: watches.api.paths[0]: expected a string, got a list",
        id="paths-nested-list",
    ),
    pytest.param(
        "watches:\n  api:\n    paths: []\n    pidfile: p\n",
        "dev.yaml:3:12: watches.api.paths: empty list (name at least one directory or file)",
        id="paths-empty-list",
    ),
    pytest.param(
        "watches:\n  api:\n    paths: ['']\n    pidfile: p\n",
        "dev.yaml:3:13: watches.api.paths[0]: empty path (write a directory or file name)",
        id="paths-empty-string",
    ),
    pytest.param(
        "watches:\n  api:\n    pidfile: p\n",
        "dev.yaml:3:5: watches.api: no 'paths' (add paths: [DIR, ...] listing what to watch)",
        id="paths-missing",
    ),
    pytest.param(
        P + "    debounce: [1s]\n",
        "dev.yaml:5:15: watches.api.debounce: expected a duration like 250ms or 2s, got a list",
        id="debounce-list",
    ),
    pytest.param(
        P + "    poll: often\n",
        "dev.yaml:5:11: watches.api.poll: expected true, false or auto, got 'often'",
        id="poll-string",
    ),
    pytest.param(
        P + "    ignore_defaults: maybe\n",
        "dev.yaml:5:22: watches.api.ignore_defaults: expected true or false, got 'maybe'",
        id="ignore-defaults-maybe",
    ),
    pytest.param(
        W + "    command: {make: css}\n",
        "dev.yaml:4:14: watches.api.command: expected a string, got a mapping",
        id="command-mapping",
    ),
    # actions
    pytest.param(
        W,
        "dev.yaml:3:5: watches.api: no action (add 'pidfile: FILE' (or 'process: NAME') to signal a server, "
        "'command: CMD' to run a command, 'run: CMD' to run an app and restart it, or 'post: URL' to send "
        "a request)",
        id="no-action",
    ),
    pytest.param(
        P + "    command: make\n",
        "dev.yaml:3:5: watches.api: both 'pidfile' and 'command' given "
        "(a watch has exactly one action: remove one)",
        id="both-actions",
    ),
    pytest.param(
        C + "    signal: HUP\n",
        "dev.yaml:5:5: watches.api.signal: only applies to watches with 'pidfile' or 'process' (remove it)",
        id="signal-key-on-command-watch",
    ),
    pytest.param(
        P + "    on_busy: queue\n",
        "dev.yaml:5:5: watches.api.on_busy: only applies to watches with 'command' (remove it)",
        id="command-key-on-pidfile-watch",
    ),
    pytest.param(
        W + "    command: '  '\n",
        "dev.yaml:4:14: watches.api.command: empty command (write a shell command, e.g. make css)",
        id="empty-command",
    ),
    pytest.param(
        W + "    command: []\n",
        "dev.yaml:4:14: watches.api.command: empty command (write the program and its arguments)",
        id="empty-command-list",
    ),
    pytest.param(
        C + "    on_busy: wait\n",
        "dev.yaml:5:14: watches.api.on_busy: unknown value 'wait' (use queue, ignore or restart)",
        id="bad-on-busy",
    ),
    pytest.param(
        C + "    timeout: 0s\n",
        "dev.yaml:5:14: watches.api.timeout: must be longer than 0s (or leave it out for no timeout)",
        id="zero-timeout",
    ),
    # the check gate and reload confirmation
    pytest.param(
        P + "    check_timeout: 5s\n",
        "dev.yaml:5:5: watches.api.check_timeout: only applies to watches with 'check' (remove it)",
        id="check-timeout-without-check",
    ),
    pytest.param(
        P + "    check: python\n    check_timeout: 5s\n",
        "dev.yaml:6:5: watches.api.check_timeout: only applies to a command check, not to python (remove it)",
        id="check-timeout-with-check-python",
    ),
    pytest.param(
        P + "    check: make\n    check_timeout: 0s\n",
        "dev.yaml:6:20: watches.api.check_timeout: must be longer than 0s (e.g. 60s)",
        id="zero-check-timeout",
    ),
    pytest.param(
        "defaults:\n  check_timeout: 0s\n" + P + "    check: make\n",
        "dev.yaml:2:18: defaults.check_timeout: must be longer than 0s (e.g. 60s)",
        id="zero-check-timeout-in-defaults",
    ),
    pytest.param(
        P + "    check: '  '\n",
        "dev.yaml:5:12: watches.api.check: empty command (write a shell command, e.g. make css)",
        id="empty-check",
    ),
    pytest.param(
        P + "    check: []\n",
        "dev.yaml:5:12: watches.api.check: empty command (write the program and its arguments)",
        id="empty-check-list",
    ),
    pytest.param(
        P + "    check: ['', x]\n",
        "dev.yaml:5:12: watches.api.check: empty command (write the program and its arguments)",
        id="empty-check-program",
    ),
    pytest.param(
        "defaults:\n  check: ''\n" + P,
        "dev.yaml:2:10: defaults.check: empty command (write a shell command, e.g. make css)",
        id="empty-check-in-defaults",
    ),
    pytest.param(
        P + "    check: {make: lint}\n",
        "dev.yaml:5:12: watches.api.check: expected a string, got a mapping",
        id="check-mapping",
    ),
    pytest.param(
        C + "    confirm: false\n",
        "dev.yaml:5:5: watches.api.confirm: only applies to watches with 'pidfile', 'process' or 'run' "
        "(remove it)",
        id="confirm-on-command-watch",
    ),
    pytest.param(
        C + "    confirm_timeout: 5s\n",
        "dev.yaml:5:5: watches.api.confirm_timeout: only applies to watches with 'pidfile', 'process' or "
        "'run' (remove it)",
        id="confirm-timeout-on-command-watch",
    ),
    pytest.param(
        P + "    confirm_timeout: 0s\n",
        "dev.yaml:5:22: watches.api.confirm_timeout: must be longer than 0s "
        "(e.g. 10s), or set confirm: false",
        id="zero-confirm-timeout",
    ),
    pytest.param(
        P + "    confirm: never\n",
        "dev.yaml:5:14: watches.api.confirm: expected true or false, got 'never'",
        id="confirm-not-a-bool",
    ),
    # signals
    pytest.param(
        P + "    signal: HUPP\n",
        "dev.yaml:5:13: watches.api.signal: unknown signal 'HUPP' (use a name like HUP, USR1 or a number)",
        id="unknown-signal",
    ),
    pytest.param(
        P + "    signal: 0\n",
        "dev.yaml:5:13: watches.api.signal: signal number 0 is out of range "
        f"(use 1 to {signal.NSIG - 1}, or a name like HUP)",
        id="signal-zero",
    ),
    pytest.param(
        P + "    signal: 99\n",
        "dev.yaml:5:13: watches.api.signal: signal number 99 is out of range "
        f"(use 1 to {signal.NSIG - 1}, or a name like HUP)",
        id="signal-too-big",
    ),
    pytest.param(
        P + "    signal: -1\n",
        "dev.yaml:5:13: watches.api.signal: signal number -1 is out of range "
        f"(use 1 to {signal.NSIG - 1}, or a name like HUP)",
        id="signal-negative",
    ),
    # durations
    pytest.param(
        P + "    debounce: 50\n",
        "dev.yaml:5:15: watches.api.debounce: duration '50' has no unit (write 50ms or 50s)",
        id="duration-no-unit",
    ),
    pytest.param(
        C + "    stop_timeout: 3000000h\n",
        "dev.yaml:5:19: watches.api.stop_timeout: duration '3000000h' is too long (at most 24h)",
        id="duration-too-long",
    ),
    pytest.param(
        C + "    timeout: 100000\n",
        "dev.yaml:5:14: watches.api.timeout: duration '100000' has no unit (write 100000ms)",
        id="duration-no-unit-suggests-only-what-fits",
    ),
    pytest.param(
        C + "    cwd: missing/build\n",
        "dev.yaml:5:10: watches.api.cwd: no directory /srv/app/missing/build "
        "(create it, or correct the path)",
        id="cwd-missing",
    ),
    pytest.param(
        W + "    patterns: ['*.py', '[abc']\n    pidfile: app.pid\n",
        "dev.yaml:4:24: watches.api.patterns[1]: invalid pattern '[abc': a '[' without its ']' "
        "(close the set, as in '*.[ch]', or write '\\[' for a literal [)",
        id="pattern-unclosed-bracket",
    ),
    pytest.param(
        P + "    ignore: '#notes'\n",
        "dev.yaml:5:13: watches.api.ignore: '#notes' is a comment in gitignore syntax "
        "(write '\\#notes' for a name starting with #)",
        id="pattern-a-comment",
    ),
    pytest.param(
        P + "    debounce: -5ms\n",
        "dev.yaml:5:15: watches.api.debounce: duration '-5ms' is negative (write a duration like 2s)",
        id="duration-negative",
    ),
    pytest.param(
        P + "    debounce: -5\n",
        "dev.yaml:5:15: watches.api.debounce: duration '-5' is negative (write a duration like 2s)",
        id="duration-negative-no-unit",
    ),
    pytest.param(
        P + "    debounce: soon\n",
        "dev.yaml:5:15: watches.api.debounce: invalid duration 'soon' "
        "(write a number with a unit: 250ms, 1.5s, 2m)",
        id="duration-garbage",
    ),
    pytest.param(
        P + "    debounce: .inf\n",
        "dev.yaml:5:15: watches.api.debounce: invalid duration '.inf' "
        "(write a number with a unit: 250ms, 1.5s, 2m)",
        id="duration-infinity",
    ),
    pytest.param(
        P + "    debounce:\n",
        "dev.yaml:5:14: watches.api.debounce: expected a duration like 250ms or 2s, got nothing",
        id="duration-null",
    ),
    pytest.param(
        P + "    debounce: 3s\n    max_delay: 1s\n",
        "dev.yaml:6:16: watches.api.max_delay: max_delay 1s is shorter than debounce 3s (make it 3s or more)",
        id="max-delay-shorter-than-debounce",
    ),
    pytest.param(
        P + "    debounce: 3s\n",
        "dev.yaml:5:15: watches.api.debounce: debounce 3s is longer than the default max_delay 2s "
        "(add max_delay: 3s or more, or shorten debounce)",
        id="debounce-longer-than-default-max-delay",
    ),
    pytest.param(
        "defaults:\n  max_delay: 1s\n" + P + "    debounce: 3s\n",
        "dev.yaml:7:15: watches.api.debounce: debounce 3s is longer than defaults.max_delay 1s "
        "(add max_delay: 3s or more, or shorten debounce)",
        id="debounce-longer-than-defaults-max-delay",
    ),
    pytest.param(
        P + "    max_delay: 0s\n",
        "dev.yaml:5:16: watches.api.max_delay: must be longer than 0s "
        "(the longest a batch may wait, e.g. 2s)",
        id="max-delay-zero",
    ),
    pytest.param(
        P + "    poll_interval: 0ms\n",
        "dev.yaml:5:20: watches.api.poll_interval: must be longer than 0s (e.g. 1s)",
        id="poll-interval-zero",
    ),
    # environment variables
    pytest.param(
        W + "    pidfile: ${RUN_DIR}/app.pid\n",
        "dev.yaml:4:14: watches.api.pidfile: environment variable RUN_DIR is not set "
        "(set it, or write ${RUN_DIR:-default})",
        id="env-unset",
    ),
    pytest.param(
        W + "    pidfile: ${1X}\n",
        "dev.yaml:4:14: watches.api.pidfile: '${1X}' is not a variable reference "
        "(write ${NAME} or ${NAME:-default})",
        id="env-bad-name",
    ),
    pytest.param(
        W + "    pidfile: ${RUN:/tmp}\n",
        "dev.yaml:4:14: watches.api.pidfile: '${RUN:/tmp}' is not a variable reference "
        "(write ${NAME} or ${NAME:-default})",
        id="env-default-without-dash",
    ),
    pytest.param(
        W + "    pidfile: ${HOME/app.pid\n",
        "dev.yaml:4:14: watches.api.pidfile: unclosed '${' (write ${NAME}, or $${ for a literal ${)",
        id="env-unclosed",
    ),
    # patterns
    pytest.param(
        W + "    patterns: ['*.py', '']\n    pidfile: p\n",
        "dev.yaml:4:24: watches.api.patterns[1]: empty pattern (write a glob like *.py, or remove it)",
        id="empty-pattern",
    ),
    pytest.param(
        W + "    ignore: ' '\n    pidfile: p\n",
        "dev.yaml:4:13: watches.api.ignore: empty pattern (write a glob like *.py, or remove it)",
        id="empty-ignore-pattern",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors(text: str, message: str) -> None:
    assert error_of(text) == message


def test_a_file_system_path_as_a_pattern_is_warned_about_with_the_pattern_meant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk = {"/", "/srv", "/srv/app", "/srv/app/src", "/usr", "/usr/lib", "/srv/app/build"}
    text = W.replace("[src]", "[.]") + "    patterns: ['/srv/app/src/*.py', '/build/', '/usr/lib/*.py']\n"
    parse_config(
        text + "    pidfile: a\n", source="dev.yaml", base_dir=BASE, env=ENV, is_dir=lambda p: str(p) in disk
    )
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "dev.yaml:4:16: watches.api.patterns[0]: '/srv/app/src/*.py' is a file system path, but patterns "
        "are relative to each watched path (a leading / anchors one there), so it matches nothing: "
        "write '/src/*.py', which matches it under /srv/app",
        "dev.yaml:4:48: watches.api.patterns[2]: '/usr/lib/*.py' is a file system path, but patterns "
        "are relative to each watched path (a leading / anchors one there), so it matches nothing: "
        "write it relative to the watched path, or watch its directory",
    ]  # not /build/: it is build/ at the top of the watched path, as meant


def test_errors_are_one_line_with_a_position() -> None:
    for param in ERRORS:
        text = param.values[0]
        assert isinstance(text, str)
        with pytest.raises(ConfigError) as info:
            parse(text)
        err = info.value
        assert "\n" not in str(err), param.id
        assert (err.source, isinstance(err.line, int), isinstance(err.column, int)) == (
            "dev.yaml",
            True,
            True,
        ), param.id


def test_unset_variable_with_default_is_fine() -> None:
    watch = one_watch(W + "    pidfile: ${RUN_DIR:-/run}/app.pid\n", env={})

    assert watch.action == PidfileSettings(pidfile=Path("/run/app.pid"))


def test_double_dollar_is_a_literal() -> None:
    watch = one_watch(W + "    pidfile: $${RUN_DIR}/app.pid\n", env={})

    assert watch.action == PidfileSettings(pidfile=Path("/srv/app/${RUN_DIR}/app.pid"))


def test_error_in_defaults_points_at_defaults() -> None:
    text = "defaults:\n  debounce: 50\n" + P

    assert error_of(text) == "dev.yaml:2:13: defaults.debounce: duration '50' has no unit (write 50ms or 50s)"


# --------------------------------------------------------------------------- value parsers


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("0s", 0.0),
        (".5s", 0.5),
        ("3.s", 3.0),
        (" 10 ms ", 0.01),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("50", "duration '50' has no unit (write 50ms or 50s)"),
        ("1.5", "duration '1.5' has no unit (write 1.5ms or 1.5s)"),
        ("-1s", "duration '-1s' is negative (write a duration like 2s)"),
        ("-1", "duration '-1' is negative (write a duration like 2s)"),
        ("", "invalid duration '' (write a number with a unit: 250ms, 1.5s, 2m)"),
        ("5 sec", "invalid duration '5 sec' (write a number with a unit: 250ms, 1.5s, 2m)"),
        ("1e3ms", "invalid duration '1e3ms' (write a number with a unit: 250ms, 1.5s, 2m)"),
        ("1h30m", "invalid duration '1h30m' (write a number with a unit: 250ms, 1.5s, 2m)"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (1, 1),
        ("1", 1),
        ("HUP", 1),
        ("SIGHUP", 1),
        ("hup", 1),
        ("SigHup", 1),
        (" USR1 ", int(signal.SIGUSR1)),
        ("usr2", int(signal.SIGUSR2)),
        ("TERM", int(signal.SIGTERM)),
        (signal.NSIG - 1, signal.NSIG - 1),
    ],
)
def test_parse_signal(value: str | int, number: int) -> None:
    assert parse_signal(value) == number


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("HUPP", "unknown signal 'HUPP' (use a name like HUP, USR1 or a number)"),
        ("", "unknown signal '' (use a name like HUP, USR1 or a number)"),
        ("SIG", "unknown signal 'SIG' (use a name like HUP, USR1 or a number)"),
        ("1.0", "unknown signal '1.0' (use a name like HUP, USR1 or a number)"),
        (0, f"signal number 0 is out of range (use 1 to {signal.NSIG - 1}, or a name like HUP)"),
        (-9, f"signal number -9 is out of range (use 1 to {signal.NSIG - 1}, or a name like HUP)"),
        (
            signal.NSIG,
            f"signal number {signal.NSIG} is out of range (use 1 to {signal.NSIG - 1}, or a name like HUP)",
        ),
    ],
)
def test_parse_signal_errors(value: str | int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_signal(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("plain", "plain"),
        ("${HOME}", "/home/dev"),
        ("${HOME}/${XDG_RUNTIME_DIR}", "/home/dev//run/user/1000"),
        ("${NOPE:-fallback}", "fallback"),
        ("${NOPE:-}", ""),
        ("${EMPTY}", ""),  # set but empty is set, as in the shell
        ("${EMPTY:-used when empty}", "used when empty"),
        ("${HOME:-unused}", "/home/dev"),
        ("${NOPE:-a:b/c}", "a:b/c"),
        ("$${HOME}", "${HOME}"),
        ("$$${HOME}", "$${HOME}"),
        ("$HOME", "$HOME"),  # only the braced form is expanded
        ("cost: $5", "cost: $5"),
    ],
)
def test_expand_env(text: str, expanded: str) -> None:
    assert expand_env(text, ENV) == expanded


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${NOPE}", "environment variable NOPE is not set (set it, or write ${NOPE:-default})"),
        ("${}", "'${}' is not a variable reference (write ${NAME} or ${NAME:-default})"),
        ("${A B}", "'${A B}' is not a variable reference (write ${NAME} or ${NAME:-default})"),
        ("${A-x}", "'${A-x}' is not a variable reference (write ${NAME} or ${NAME:-default})"),
        ("${A:x}", "'${A:x}' is not a variable reference (write ${NAME} or ${NAME:-default})"),
        ("${HOME", "unclosed '${' (write ${NAME}, or $${ for a literal ${)"),
    ],
)
def test_expand_env_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        expand_env(text, ENV)
    assert str(info.value) == message


# --------------------------------------------------------------------------- load_config


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: config file not found (check the path given to --config)"


def test_load_config_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a config file (pass a .yaml file)"


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    path.write_bytes(b"watches:\n  api: \xff\n")

    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: not UTF-8 text at byte 16 (save the file as UTF-8)"


def test_load_config_resolves_paths_against_the_files_directory(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    path = conf_dir / "dev.yaml"
    path.write_text("watches:\n  api:\n    paths: [src, ../shared]\n    command: make\n", encoding="utf-8")

    config = load_config(path, env={})

    assert config.source == path
    (watch,) = config.watches
    assert watch.paths == (conf_dir / "src", tmp_path / "shared")
    assert watch.action == CommandSettings(command="make", cwd=conf_dir)


def test_load_config_errors_name_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text(
        "watches:\n  api:\n    paths: [src]\n    command: make\n    signal: HUP\n", encoding="utf-8"
    )

    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert (
        str(info.value)
        == f"{path}:5:5: watches.api.signal: only applies to watches with 'pidfile' or 'process' (remove it)"
    )


# --------------------------------------------------------------------------- command line


def cli_error(**options: object) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_options({"paths": ["."], **options}, base_dir=BASE, is_dir=there)
    return str(info.value)


def test_options_build_the_same_watch_as_yaml() -> None:
    options: dict[str, object] = {
        "paths": ["src", "templates"],
        "patterns": ["*.py", "*.html"],
        "ignore": ["tests/**"],
        "ignore_defaults": None,  # unset options are None and left out
        "debounce": "50ms",
        "max_delay": None,
        "pidfile": "/run/user/1000/gunicorn.pid",
        "signal": "HUP",
        "command": None,
        "on_busy": None,
    }
    (from_cli,) = config_from_options(options, name="api", base_dir=BASE, is_dir=there).watches

    assert from_cli == parse(EXAMPLE).watches[0]


def test_options_command_watch() -> None:
    (watch,) = config_from_options(
        {"paths": ["assets"], "command": "make css", "timeout": "60s", "on_busy": "restart", "poll": True},
        name="watchd",
        base_dir=BASE,
        is_dir=there,
    ).watches

    assert watch == Watch(
        name="watchd",
        paths=(Path("/srv/app/assets"),),
        action=CommandSettings(command="make css", cwd=BASE, timeout=60.0, on_busy=OnBusy.RESTART),
        poll=Poll.ALWAYS,
    )


def test_options_check_and_confirm() -> None:
    (watch,) = config_from_options(
        {
            "paths": ["."],
            "pidfile": "app.pid",
            "confirm": False,
            "confirm_timeout": "30s",
            "check": "make lint ${HOME}",
            "check_timeout": "5s",
            "cwd": "sub",
        },
        base_dir=BASE,
        is_dir=there,
    ).watches

    assert watch.action == PidfileSettings(
        pidfile=Path("/srv/app/app.pid"), confirm=False, confirm_timeout=30.0
    )
    assert watch.check == CheckSettings(command="make lint ${HOME}", cwd=Path("/srv/app/sub"), timeout=5.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"pidfile": "p", "debounce": "50"},
            "watchd: --debounce: duration '50' has no unit (write 50ms or 50s)",
        ),
        (
            {"pidfile": "p", "debounce": "3s"},
            "watchd: --debounce: debounce 3s is longer than the default max_delay 2s "
            "(add --max-delay 3s or more, or shorten debounce)",
        ),
        (
            {"pidfile": "p", "debounce": "3s", "max_delay": "1s"},
            "watchd: --max-delay: max_delay 1s is shorter than debounce 3s (make it 3s or more)",
        ),
        (
            {"pidfile": "p", "signal": "HUPP"},
            "watchd: --signal: unknown signal 'HUPP' (use a name like HUP, USR1 or a number)",
        ),
        ({"pidfile": ""}, "watchd: --pidfile: empty path (write a directory or file name)"),
        (
            {"pidfile": "p", "command": "make"},
            "watchd: both --pidfile and --command given (a watch has exactly one action: remove one)",
        ),
        (
            {},
            "watchd: no action (give --pidfile FILE (or --process NAME) to signal a server, --command CMD to "
            "run a command, --run CMD (or -- PROGRAM ARGS) to run an app and restart it, or --post URL to "
            "send a request)",
        ),
        (
            {"command": "make", "signal": "HUP"},
            "watchd: --signal: only applies to watches with --pidfile or --process (remove it)",
        ),
        (
            {"pidfile": "p", "on_busy": "queue"},
            "watchd: --on-busy: only applies to watches with --command (remove it)",
        ),
        (
            {"command": "make", "on_busy": "wait"},
            "watchd: --on-busy: unknown value 'wait' (use queue, ignore or restart)",
        ),
        (
            {"command": "make", "patterns": ["*.py", ""]},
            "watchd: --pattern: empty pattern (write a glob like *.py, or remove it)",
        ),
        ({"command": " "}, "watchd: --command: empty command (write a shell command, e.g. make css)"),
        (
            {"pidfile": "p", "check_timeout": "5s"},
            "watchd: --check-timeout: only applies to watches with --check (remove it)",
        ),
        (
            {"pidfile": "p", "check": "make", "check_timeout": "0s"},
            "watchd: --check-timeout: must be longer than 0s (e.g. 60s)",
        ),
        (
            {"pidfile": "p", "check": " "},
            "watchd: --check: empty command (write a shell command, e.g. make css)",
        ),
        (
            {"command": "make", "confirm": False},
            "watchd: --no-confirm: only applies to watches with --pidfile, --process or --run (remove it)",
        ),
        (
            {"command": "make", "confirm_timeout": "5s"},
            "watchd: --confirm-timeout: only applies to watches with --pidfile, --process or --run "
            "(remove it)",
        ),
        (
            {"pidfile": "p", "confirm_timeout": "0s"},
            "watchd: --confirm-timeout: must be longer than 0s (e.g. 10s), or give --no-confirm",
        ),
        ({"paths": [""], "command": "make"}, "watchd: PATH[0]: empty path (write a directory or file name)"),
    ],
)
def test_option_errors_name_the_flag(options: dict[str, object], message: str) -> None:
    assert cli_error(**options) == message


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        (
            "  signal: HUPP\n",
            "dev.yaml:2:11: defaults.signal: unknown signal 'HUPP' (use a name like HUP, USR1 or a number)",
        ),
        ("  timeout: 5\n", "dev.yaml:2:12: defaults.timeout: duration '5' has no unit (write 5ms or 5s)"),
        (
            "  on_busy: later\n",
            "dev.yaml:2:12: defaults.on_busy: unknown value 'later' (use queue, ignore or restart)",
        ),
        ("  confirm: maybe\n", "dev.yaml:2:12: defaults.confirm: expected true or false, got 'maybe'"),
    ],
)
def test_defaults_are_checked_even_where_no_watch_uses_them(defaults: str, message: str) -> None:
    """Every watch here runs a command, so signal/confirm/... defaults apply to none of them."""
    text = "defaults:\n" + defaults + "watches:\n  w:\n    paths: [src]\n    command: make\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="dev.yaml", base_dir=Path("/srv/app"), env={})
    assert str(err.value) == message


# --------------------------------------------------------------------------- the run action

R = W + "    run: flask --app app run --no-reload\n"  # a run watch; the next key is on line 5


def test_run_watch_defaults() -> None:
    watch = one_watch(R)
    assert watch.action == RunSettings(command="flask --app app run --no-reload", cwd=BASE)
    assert watch.action.stop == Stop(signal=signal.SIGTERM, timeout=5.0)
    assert watch.action.on_exit is OnExit.WAIT
    assert watch.action.listen is None


def test_run_watch_with_every_key() -> None:
    watch = one_watch(
        W
        + "    run: [uvicorn, app:app, --fd, '3']\n"
        + "    stop_signal: int\n"
        + "    stop_timeout: 2s\n"
        + "    listen: '[::1]:8000'\n"
        + "    on_exit: Restart\n"
        + "    cwd: web\n"
        + "    check: python3 -m compileall -q .\n"
    )
    action = watch.action
    assert isinstance(action, RunSettings)
    assert action.command == ("uvicorn", "app:app", "--fd", "3")
    assert action.stop == Stop(signal=signal.SIGINT, timeout=2.0)
    assert action.listen == parse_listen("[::1]:8000")
    assert action.listen is not None and action.listen.where == "dev.yaml:7:13: watches.api.listen"
    assert action.on_exit is OnExit.RESTART
    assert action.cwd == BASE / "web"
    assert watch.check == CheckSettings("python3 -m compileall -q .", BASE / "web")


def test_listen_env_werkzeug() -> None:
    action = one_watch(R + "    listen: 8000\n    listen_env: werkzeug\n").action
    assert isinstance(action, RunSettings)
    assert action.listen_env is ListenEnv.WERKZEUG


def test_stop_keys_apply_to_commands_too_and_come_from_defaults() -> None:
    text = (
        "defaults:\n  stop_signal: INT\n  stop_timeout: 1s\n"
        "watches:\n"
        "  css:\n    paths: [assets]\n    command: make css\n"
        "  web:\n    paths: [src]\n    run: python app.py\n    stop_timeout: 10s\n"
        "  api:\n    paths: [src]\n    pidfile: app.pid\n"  # the defaults do not apply to it
    )
    css, web, api = parse(text).watches
    assert isinstance(css.action, CommandSettings)
    assert css.action.stop == Stop(signal.SIGINT, 1.0)
    assert isinstance(web.action, RunSettings)
    assert web.action.stop == Stop(signal.SIGINT, 10.0)
    assert isinstance(api.action, PidfileSettings)


RUN_ERRORS = [
    pytest.param(
        P + "    run: python app.py\n",
        "dev.yaml:3:5: watches.api: both 'pidfile' and 'run' given (a watch has exactly "
        "one action: remove one)",
        id="run-with-pidfile",
    ),
    pytest.param(
        C + "    run: python app.py\n",
        "dev.yaml:3:5: watches.api: both 'command' and 'run' given (a watch has exactly "
        "one action: remove one)",
        id="run-with-command",
    ),
    pytest.param(
        R + "    stop_signal: TERMM\n",
        "dev.yaml:5:18: watches.api.stop_signal: unknown signal 'TERMM' (use a name like "
        "HUP, USR1 or a number)",
        id="unknown-stop-signal",
    ),
    pytest.param(
        R + "    stop_timeout: 5\n",
        "dev.yaml:5:19: watches.api.stop_timeout: duration '5' has no unit (write 5ms or 5s)",
        id="stop-timeout-no-unit",
    ),
    pytest.param(
        R + "    stop_timeout: 0s\n",
        "dev.yaml:5:19: watches.api.stop_timeout: must be longer than 0s (how long to "
        "wait before KILL, e.g. 5s)",
        id="zero-stop-timeout",
    ),
    pytest.param(
        R + "    on_exit: restrat\n",
        "dev.yaml:5:14: watches.api.on_exit: unknown value 'restrat' (did you mean 'restart'? "
        "use wait, restart or stop)",
        id="on-exit-typo",
    ),
    pytest.param(
        R + "    on_exit: never\n",
        "dev.yaml:5:14: watches.api.on_exit: unknown value 'never' (use wait, restart or stop)",
        id="on-exit-unknown",
    ),
    pytest.param(
        R + "    listen: localhost\n",
        "dev.yaml:5:13: watches.api.listen: cannot read address 'localhost' "
        "(write HOST:PORT like 127.0.0.1:8000, [::1]:8000, or unix:/path)",
        id="listen-unparsable",
    ),
    pytest.param(
        R + "    listen: 127.0.0.1:99999\n",
        "dev.yaml:5:13: watches.api.listen: port 99999 is out of range (use 1 to 65535, "
        "or 0 for any free port)",
        id="listen-port-range",
    ),
    pytest.param(
        R + "    listen: [8000]\n",
        "dev.yaml:5:13: watches.api.listen: expected a string, got a list",
        id="listen-list",
    ),
    pytest.param(
        R + "    listen_env: werkzeug\n",
        "dev.yaml:5:17: watches.api.listen_env: needs 'listen' too (the socket it describes: add it)",
        id="listen-env-without-listen",
    ),
    pytest.param(
        R + "    listen: 8000\n    listen_env: flask\n",
        "dev.yaml:6:17: watches.api.listen_env: unknown value 'flask' "
        "(use werkzeug, or leave it out: LISTEN_FDS is always set)",
        id="listen-env-unknown",
    ),
    pytest.param(
        C + "    listen: 8000\n",
        "dev.yaml:5:5: watches.api.listen: only applies to watches with 'run' (remove it)",
        id="listen-on-command-watch",
    ),
    pytest.param(
        P + "    on_exit: stop\n",
        "dev.yaml:5:5: watches.api.on_exit: only applies to watches with 'run' (remove it)",
        id="on-exit-on-pidfile-watch",
    ),
    pytest.param(
        P + "    stop_signal: INT\n",
        "dev.yaml:5:5: watches.api.stop_signal: only applies to watches with 'command' or 'run' (remove it)",
        id="stop-signal-on-pidfile-watch",
    ),
    pytest.param(
        R + "    on_busy: restart\n",
        "dev.yaml:5:5: watches.api.on_busy: only applies to watches with 'command' (remove it)",
        id="on-busy-on-run-watch",
    ),
    pytest.param(
        R + "    signal: HUP\n",
        "dev.yaml:5:5: watches.api.signal: only applies to watches with 'pidfile' or 'process' (remove it)",
        id="signal-on-run-watch",
    ),
    pytest.param(
        W + "    run: ''\n",
        "dev.yaml:4:10: watches.api.run: empty command (write a shell command, e.g. make css)",
        id="empty-run",
    ),
    pytest.param(
        W + "    run: []\n",
        "dev.yaml:4:10: watches.api.run: empty command (write the program and its arguments)",
        id="empty-run-list",
    ),
    pytest.param(
        "defaults:\n  run: python app.py\n" + W,
        "dev.yaml:2:3: defaults.run: an action cannot be a default (give each watch its "
        "own pidfile or command)",
        id="run-as-default",
    ),
    pytest.param(
        "defaults:\n  on_exit: later\n" + C,
        "dev.yaml:2:12: defaults.on_exit: unknown value 'later' (use wait, restart or stop)",
        id="bad-default-on-exit-used-by-no-watch",
    ),
    pytest.param(
        "defaults:\n  listen: 8000\n" + C,
        "dev.yaml:2:3: defaults.listen: an address cannot be a default (give each run watch its own listen)",
        id="listen-as-default",
    ),
    pytest.param(
        "watches:\n  a:\n    paths: [src]\n    run: a\n    listen: 8000\n"
        "  b:\n    paths: [src]\n    run: b\n    listen: 127.0.0.1:8000\n",
        "dev.yaml:9:13: watches.b.listen: 127.0.0.1:8000 is watch 'a''s address too (give each app its own)",
        id="two-apps-one-address",
    ),
]


@pytest.mark.parametrize(("text", "message"), RUN_ERRORS)
def test_run_errors(text: str, message: str) -> None:
    assert error_of(text) == message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"pidfile": "p", "run": "python app.py"},
            "watchd: both --pidfile and --run given (a watch has exactly one action: remove one)",
        ),
        (
            {"run": "python app.py", "stop_signal": "TERMM"},
            "watchd: --stop-signal: unknown signal 'TERMM' (use a name like HUP, USR1 or a number)",
        ),
        (
            {"run": "python app.py", "on_exit": "stpo"},
            "watchd: --on-exit: unknown value 'stpo' (did you mean 'stop'? use wait, restart or stop)",
        ),
        (
            {"run": "python app.py", "listen": "::1"},
            "watchd: --listen: cannot read address '::1' "
            "(write HOST:PORT like 127.0.0.1:8000, [::1]:8000, or unix:/path)",
        ),
        (
            {"pidfile": "p", "stop_timeout": "1s"},
            "watchd: --stop-timeout: only applies to watches with --command or --run (remove it)",
        ),
        (
            {"command": "make", "listen": "8000"},
            "watchd: --listen: only applies to watches with --run (remove it)",
        ),
        (
            {"run": ("",)},
            "watchd: --run: empty command (write the program and its arguments)",
        ),
    ],
)
def test_run_option_errors_name_the_flag(options: dict[str, object], message: str) -> None:
    assert cli_error(**options) == message


def test_run_from_the_command_line() -> None:
    (watch,) = config_from_options(
        {"paths": ["src"], "run": ("python", "app.py"), "stop_signal": "int", "on_exit": "stop"},
        base_dir=BASE,
        is_dir=there,
    ).watches
    assert watch.action == RunSettings(
        command=("python", "app.py"), cwd=BASE, stop=Stop(signal.SIGINT), on_exit=OnExit.STOP
    )


# --------------------------------------------------------------------------- refused input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            W.replace("[src]", "5") + "    command: make\n",
            "dev.yaml:3:12: watches.api.paths: expected a string, got a number 5 (quote it "
            "if you mean the text: '5')",
            id="paths-number",
        ),
        pytest.param(
            W.replace("[src]", "true") + "    command: make\n",
            "dev.yaml:3:12: watches.api.paths: expected a string, got true/false true "
            "(quote it if you mean the text: 'true')",
            id="paths-bool",
        ),
        pytest.param(
            W.replace("[src]", "[src, 7]") + "    command: make\n",
            "dev.yaml:3:18: watches.api.paths[1]: expected a string, got a number 7 (quote "
            "it if you mean the text: '7')",
            id="paths-item-number",
        ),
        pytest.param(
            W.replace("[src]", "!!python/tuple [a, b]") + "    command: make\n",
            "dev.yaml:3:12: watches.api.paths: YAML tag '!!python/tuple' is not allowed "
            "(remove it: watchd reads plain YAML values)",
            id="python-tag",
        ),
        pytest.param(
            W + "    command: !shell make\n",
            "dev.yaml:4:14: watches.api.command: YAML tag '!shell' is not allowed (remove "
            "it: watchd reads plain YAML values)",
            id="custom-tag",
        ),
        pytest.param(
            "watches:\n  api:\n    paths: [${APP_DIR}/src]\n    command: make\n",
            "dev.yaml:3:14: YAML syntax error: expected ',' or ']', but got '{' "
            '(quote values that contain ${...}, e.g. ["${APP_DIR}/src"]: in YAML { starts a mapping)',
            id="unquoted-env-in-flow",
        ),
    ],
)
def test_refused_input(text: str, message: str) -> None:
    assert error_of(text, ENV) == message


def test_numbers_stay_fine_where_they_mean_numbers() -> None:
    watch = one_watch(W + "    run: app\n    listen: 8000\n    stop_signal: 15\n")
    assert isinstance(watch.action, RunSettings)
    assert watch.action.listen == parse_listen("8000")


def test_a_bare_dollar_name_in_a_path_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    watch = one_watch(W.replace("[src]", "[$APP_DIR/src]") + "    command: make\n")
    assert watch.paths == (BASE / "$APP_DIR" / "src",)  # as written
    assert "'$APP_DIR/src' has a $NAME without braces: it stays as written (write ${NAME}" in caplog.text


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "too-big"])
def test_unreadable_kinds_of_config_are_refused_before_parsing(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "fifo.yaml"
        os.mkfifo(path)
        expected = "is not a regular file (a FIFO, device or socket): pass a .yaml file"
    elif kind == "device":
        path = Path("/dev/zero")
        expected = "is not a regular file (a FIFO, device or socket): pass a .yaml file"
    elif kind == "directory":
        path = tmp_path
        expected = "is a directory, not a config file (pass a .yaml file)"
    else:
        path = tmp_path / "big.yaml"
        path.write_text("# " + "x" * (1024 * 1024) + "\n")
        expected = "is 1,048,579 bytes: a config is at most 1,048,576 (is this the right file?)"
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: {expected}"


@pytest.mark.linux_only("unit: (systemd cgroups; elsewhere it is a config error naming Linux)")
def test_unit_for_the_signal_action() -> None:
    action = one_watch(P + "    unit: gunicorn.service\n").action
    assert isinstance(action, PidfileSettings)
    assert action.unit == "gunicorn.service"
    assert "(in unit gunicorn.service)" in action.describe()


@pytest.mark.linux_only("unit: (systemd cgroups; elsewhere it is a config error naming Linux)")
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "    unit: gunicorn\n",
            "dev.yaml:5:11: watches.api.unit: 'gunicorn' is not a systemd unit name "
            "(write the service's full name, e.g. gunicorn.service)",
        ),
        (
            "    unit: 5\n",
            "dev.yaml:5:11: watches.api.unit: expected a string, got a number 5 "
            "(quote it if you mean the text: '5')",
        ),
    ],
)
def test_unit_errors(extra: str, message: str) -> None:
    assert error_of(P + extra) == message


@pytest.mark.parametrize("value", ["gunicorn.service", "gunicorn"])
def test_unit_elsewhere_than_linux_is_an_error_naming_linux(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """It checks the target's systemd cgroup, which only Linux has: said at start (and by
    --validate), from the platform's name alone (nothing read from the disk)."""
    monkeypatch.setattr(platform, "current", darwin)
    assert error_of(P + f"    unit: {value}\n") == (
        "dev.yaml:5:11: watches.api.unit: only works on Linux (systemd cgroups); remove it"
    )


def test_unit_only_applies_to_the_signal_action() -> None:
    assert error_of(C + "    unit: app.service\n") == (
        "dev.yaml:5:5: watches.api.unit: only applies to watches with 'pidfile' or 'process' (remove it)"
    )


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("make css", "make css"),
        (("/srv/app/.venv/bin/python3", "app.py"), "python3 app.py"),
        (("bin/run", "x"), "bin/run x"),  # relative: as written
        ("echo a\necho b", "echo a\\necho b"),
        ("x" * 100, "x" * 57 + "..."),
    ],
)
def test_commands_in_log_lines_are_short_and_one_line(command: str | tuple[str, ...], shown: str) -> None:
    from watchd.logtext import command_for_log  # noqa: PLC0415

    assert command_for_log(command) == shown


# --------------------------------------------------------------------------- the post action

PO = W + "    post: http://127.0.0.1:9090/-/reload\n"  # a post watch; the next key is on line 5


def test_a_post_watch_with_every_key() -> None:
    w = one_watch(
        PO
        + "    method: put\n    headers:\n      Authorization: Bearer ${TOKEN}\n      X-Reason: config\n"
        + "    http_timeout: 2s\n    tries: 5\n    body: changes\n",
        env={"TOKEN": "t0k"},
    )
    assert w.action == PostSettings(
        url="http://127.0.0.1:9090/-/reload",
        method="PUT",
        headers=(("Authorization", "Bearer t0k"), ("X-Reason", "config")),
        timeout=2.0,
        tries=5,
        body=Body.CHANGES,
    )
    assert w.action.describe() == (
        "PUT http://127.0.0.1:9090/-/reload with Authorization, X-Reason, the changes as JSON, "
        "timeout 2s, 5 tries"
    )


def test_a_post_watch_has_defaults_and_hides_a_password() -> None:
    w = one_watch(W + "    post: https://ops:secret@example.org/reload\n")
    assert isinstance(w.action, PostSettings)
    assert (w.action.method, w.action.timeout, w.action.tries, w.action.body) == ("POST", 5.0, 3, None)
    assert w.action.describe() == "POST https://ops:***@example.org/reload, timeout 5s, 3 tries"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            W + "    post: ftp://h/x\n",
            "dev.yaml:4:11: watches.api.post: 'ftp://h/x': only http:// and https:// URLs can be posted to "
            "(write it like http://127.0.0.1:9090/-/reload)",
        ),
        (
            W + "    post: http:///x\n",
            "dev.yaml:4:11: watches.api.post: 'http:///x' has no host (write it like http://127.0.0.1:9090/-/reload)",
        ),
        (
            PO + "    method: 'GE T'\n",
            "dev.yaml:5:13: watches.api.method: 'GE T' is not an HTTP method (write POST, PUT or GET)",
        ),
        (
            PO + "    tries: 0\n",
            "dev.yaml:5:12: watches.api.tries: expected a number of tries, 1 or more, got '0'",
        ),
        (
            PO + "    http_timeout: 0s\n",
            "dev.yaml:5:19: watches.api.http_timeout: must be longer than 0s (e.g. 5s)",
        ),
        (
            PO + "    body: paths\n",
            "dev.yaml:5:11: watches.api.body: unknown value 'paths' (use changes, or leave it out for an "
            "empty body)",
        ),
        (
            PO + "    headers:\n      'Bad Name': x\n",
            "dev.yaml:6:19: watches.api.headers: 'Bad Name' is not a header name (letters, digits and -)",
        ),
        (
            PO + "    headers: [X-A]\n",
            "dev.yaml:5:15: watches.api.headers[0]: expected 'Name: value'",
        ),
        (
            PO + "    signal: HUP\n",
            "dev.yaml:5:5: watches.api.signal: only applies to watches with 'pidfile' or 'process' "
            "(remove it)",
        ),
        (
            P + "    post: http://h/x\n",
            "dev.yaml:3:5: watches.api: both 'pidfile' and 'post' given (a watch has exactly one action: "
            "remove one)",
        ),
    ],
)
def test_post_errors(text: str, message: str) -> None:
    assert error_of(text) == message
