"""A run watch's `reload` and `restart_patterns`, and the signal action's `process`, as config:
what they build, the rules that tie them to other keys, and which batches restart instead of
reloading."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchd.actions.reload import Reload
from watchd.changes import Batch, Change, ChangeKind
from watchd.config import config_from_options, parse_config
from watchd.errors import ConfigError
from watchd.model import ProcessSettings, RunSettings


def one(tmp_path: Path, body: str) -> object:
    text = "watches:\n  w:\n    paths: [src]\n" + "".join(f"    {line}\n" for line in body.splitlines())
    (watch,) = parse_config(text, source="dev.yaml", base_dir=tmp_path, env={}).watches
    return watch


def error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as exc:
        one(tmp_path, body)
    return str(exc.value)


def test_reload_and_restart_patterns_build_the_run_settings(tmp_path: Path) -> None:
    watch = one(
        tmp_path,
        'run: gunicorn app:app\nreload: HUP\nrestart_patterns: [requirements.txt]\npatterns: ["*.py"]',
    )
    action = watch.action  # type: ignore[attr-defined]
    assert isinstance(action, RunSettings)
    assert action.reload == 1 and action.restart_patterns == ("requirements.txt",)
    assert action.confirm and action.confirm_timeout == 10.0
    # they count whatever patterns says
    assert watch.counted_patterns == ("*.py", "requirements.txt")  # type: ignore[attr-defined]
    assert "reload it with HUP, restart it for requirements.txt" in action.describe()


@pytest.mark.parametrize(
    "key", ["restart_patterns: [requirements.txt]", "confirm: false", "confirm_timeout: 5s"]
)
def test_reload_keys_without_reload_are_an_error(tmp_path: Path, key: str) -> None:
    name = key.split(":", maxsplit=1)[0]
    assert error(tmp_path, f"run: gunicorn app:app\n{key}") == (
        f"dev.yaml:5:5: watches.w.{name}: only applies to a run watch with 'reload' (add it, or remove this)"
    )


def test_the_command_line_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        config_from_options({"paths": [str(tmp_path)], "run": "gunicorn app:app", "restart_patterns": ["x"]})
    assert str(exc.value) == (
        "watchd: --restart-pattern: only applies to a run watch with --reload-signal (add it, or remove this)"
    )


def test_pidfile_and_process_are_one_action(tmp_path: Path) -> None:
    assert error(tmp_path, "pidfile: app.pid\nprocess: gunicorn") == (
        "dev.yaml:3:5: watches.w: both 'pidfile' and 'process' given "
        "(a watch has exactly one action: remove one)"
    )
    assert error(tmp_path, "process: gunicorn\npidfile_wait: 1s") == (
        "dev.yaml:5:5: watches.w.pidfile_wait: only applies to watches with 'pidfile' (remove it)"
    )
    assert error(tmp_path, "pidfile: app.pid\nprocess_user: root") == (
        "dev.yaml:5:5: watches.w.process_user: only applies to watches with 'process' (remove it)"
    )


def test_process_settings(tmp_path: Path) -> None:
    watch = one(tmp_path, "process: '  gunicorn   -c api.py '\nprocess_user: root\nsignal: USR2\nexpect: api")
    action = watch.action  # type: ignore[attr-defined]
    assert action == ProcessSettings("gunicorn -c api.py", signal=12, expect="api", process_user=0)


def batch(*paths: str) -> Batch:
    return Batch("w", tuple(Change(ChangeKind.MODIFIED, p) for p in paths), 0.0, 0.0)


def test_which_batches_restart_instead_of_reloading(tmp_path: Path) -> None:
    action = RunSettings(
        "gunicorn app:app", tmp_path, reload=1, restart_patterns=("requirements.txt", "conf/*.py")
    )
    reload = Reload("w", action, (Path("/srv/app"), Path("/etc/gunicorn.conf.py")), None)
    assert reload.restarting(batch("/srv/app/app.py")) is None
    assert (
        reload.restarting(batch("/srv/app/app.py", "/srv/app/requirements.txt"))
        == "/srv/app/requirements.txt"
    )
    assert (
        reload.restarting(batch("/srv/app/lib/requirements.txt")) == "/srv/app/lib/requirements.txt"
    )  # any depth
    assert reload.restarting(batch("/srv/app/conf/gunicorn.py")) == "/srv/app/conf/gunicorn.py"
    assert reload.restarting(batch("/srv/app/lib/conf/gunicorn.py")) is None  # anchored, as patterns are
    assert reload.restarting(batch("/srv/other/requirements.txt")) is None  # not under a watched path
    assert reload.restarting(batch()) is None  # `watchd trigger`: a reload
    single = RunSettings("gunicorn app:app", tmp_path, reload=1, restart_patterns=("gunicorn.conf.py",))
    watched_file = Reload("w", single, (Path("/etc/gunicorn.conf.py"),), None)
    assert watched_file.restarting(batch("/etc/gunicorn.conf.py")) == "/etc/gunicorn.conf.py"


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (("/venv/bin/gunicorn", "-c", "gunicorn.conf.py", "app:app"), "gunicorn"),
        ("gunicorn app:app", "gunicorn"),
        ("exec uwsgi --ini app.ini", "uwsgi"),
        (("/usr/bin/python3", "app.py"), "app.py"),
        ("python -m http.server", "http.server"),
        ("echo 'unclosed", "echo"),
    ],
)
def test_the_app_is_named_for_its_program(tmp_path: Path, command: str | tuple[str, ...], name: str) -> None:
    """A warm start's process is watchd's fork server: log lines name the app from its command."""
    assert Reload("w", RunSettings(command, tmp_path, reload=1), (), None).program == name
