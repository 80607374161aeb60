"""The fork server's inputs, without processes: the app's entry read from its command, the cache's
place and contents, and the module names the server gives the preloaded files."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from watchd import platform
from watchd.actions.preload import (
    NotPython,
    Unsupported,
    cache_dir,
    cache_file,
    python_entry,
    read_cache,
    write_cache,
)
from watchd.hook._watchd_forkserver import module_name

PY = sys.executable


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script(bin_dir / "flask", f"#!{PY}\nfrom flask.cli import main\nmain()\n")
    script(bin_dir / "envpy", "#!/usr/bin/env python3\nprint(1)\n")
    script(bin_dir / "npm", "#!/bin/sh\nexit 0\n")
    script(bin_dir / "unbuffered", f"#!{PY} -u\nprint(1)\n")
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_a_script_runs_from_its_directory_with_its_arguments(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "app.py").write_text("")
    (tmp_path / "app.py").symlink_to(tmp_path / "real" / "app.py")
    entry = python_entry((PY, "-u", "app.py", "--port", "1"), tmp_path, env)
    assert (entry.kind, entry.target, entry.args, entry.options) == (
        "script",
        "app.py",
        ("--port", "1"),
        ("-u",),
    )
    assert entry.path0 == str(tmp_path / "real")  # as python: the script's directory, symlinks resolved
    assert entry.argv == ["app.py", "--port", "1"]
    assert entry.orig_argv == [PY, "-u", "app.py", "--port", "1"]


def test_a_module_runs_from_the_cwd(tmp_path: Path, env: dict[str, str]) -> None:
    entry = python_entry(f"{PY} -X dev -m pkg serve", tmp_path, env)
    assert (entry.kind, entry.target, entry.args, entry.options) == (
        "module",
        "pkg",
        ("serve",),
        ("-X", "dev"),
    )
    assert entry.path0 == str(tmp_path.resolve())
    assert entry.argv == ["-m", "serve"]


def test_a_console_script_runs_its_file_with_its_interpreter(tmp_path: Path, env: dict[str, str]) -> None:
    entry = python_entry(("flask", "--app", "app", "run"), tmp_path, env)
    flask = str(Path(env["PATH"].split(os.pathsep)[0]) / "flask")
    assert (entry.interpreter, entry.kind, entry.target) == (PY, "script", flask)  # as PATH found it
    assert entry.args == ("--app", "app", "run")
    assert python_entry(("unbuffered",), tmp_path, env).options == ("-u",)
    assert python_entry(("envpy",), tmp_path, env).interpreter.endswith("python3")


def test_manage_py_run_by_its_own_line(tmp_path: Path, env: dict[str, str]) -> None:
    script(tmp_path / "manage.py", "#!/usr/bin/env python3\n")
    entry = python_entry("./manage.py runserver --noreload", tmp_path, env)
    assert (entry.kind, entry.target, entry.args) == ("script", "./manage.py", ("runserver", "--noreload"))


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("npm run dev", "is run by /bin/sh"),
        ("no-such-program", "not found"),
        (("sh", "-c", "exec python app.py"), "sh is not a script"),
    ],
)
def test_what_is_not_python(
    tmp_path: Path, env: dict[str, str], command: str | tuple[str, ...], why: str
) -> None:
    with pytest.raises(NotPython, match=why):
        python_entry(command, tmp_path, env)


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (f"{PY} app.py | tee log", "a shell command line"),
        (f"PORT=1 {PY} app.py", "variable assignments"),
        ((PY, "-c", "print(1)"), "python -c"),
        (f"{PY} -I app.py", "python -I"),
        (f"{PY} -x app.py", "python option -x"),
        (f"{PY}", "an interactive interpreter"),
        (f"{PY} missing.py", "missing.py is not a file"),
    ],
)
def test_what_the_fork_server_cannot_start(
    tmp_path: Path, env: dict[str, str], command: str | tuple[str, ...], why: str
) -> None:
    (tmp_path / "app.py").write_text("")
    with pytest.raises(Unsupported, match=why):
        python_entry(command, tmp_path, env)


def test_the_cache_directory_follows_xdg_and_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "watchd"
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = "Library/Caches" if platform.current.NAME == "darwin" else ".cache"
    assert cache_dir({}) == tmp_path / expected / "watchd"
    assert (
        cache_dir({"XDG_CACHE_HOME": "relative"}) == tmp_path / expected / "watchd"
    )  # not absolute: ignored


def test_one_cache_file_per_app_and_what_it_keeps(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    a = cache_file("web", ("python", "app.py"), Path("/srv/a"), env)
    assert a == cache_file("web", ("python", "app.py"), Path("/srv/a"), env)
    assert len({a, cache_file("api", ("python", "app.py"), Path("/srv/a"), env)}) == 2
    assert len({a, cache_file("web", ("python", "app.py"), Path("/srv/b"), env)}) == 2
    assert read_cache(a) == ([], {})  # none yet
    write_cache(a, ["/lib/x.py"], {"/lib/y.py": "its import failed"})
    assert read_cache(a) == (["/lib/x.py"], {"/lib/y.py": "its import failed"})
    a.write_text("{not json")
    assert read_cache(a) == ([], {})


def test_module_names_from_the_path() -> None:
    roots = ["/app", "/usr/lib/python3.11", "/venv/site-packages"]
    suffixes = [".cpython-311-x86_64-linux-gnu.so", ".abi3.so", ".so", ".pyc", ".py"]
    assert module_name("/usr/lib/python3.11/json/decoder.py", roots, suffixes) == "json.decoder"
    assert module_name("/venv/site-packages/flask/__init__.py", roots, suffixes) == "flask"
    ext = "/venv/site-packages/markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so"
    assert module_name(ext, roots, suffixes) == "markupsafe._speedups"
    assert module_name("/venv/site-packages/flask/__main__.py", roots, suffixes) is None  # runs the app
    assert module_name("/venv/bin/flask", roots, suffixes) is None
    assert module_name("/venv/site-packages/my-dist/x.py", roots, suffixes) is None
    assert module_name("/elsewhere/x.py", roots, suffixes) is None
