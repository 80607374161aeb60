"""`gitignore: true`: watchd ignores what git ignores, checked against `git check-ignore` itself
on real repositories, and the watcher follows the rules as they change."""

from __future__ import annotations

import logging
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.changes import Collector, sentinel
from helpers.procs import wait_for

from watchd.changes import Change, ChangeKind
from watchd.gitignore import Repository
from watchd.matching import Matcher
from watchd.watching import Subscription, Watcher


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No system or user git configuration: git and watchd see only what a test writes."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False, timeout=30)


def make_repo(top: Path, files: dict[str, str]) -> Path:
    """A repository at `top` holding `files` (a name ending in '/' is a directory)."""
    top.mkdir(parents=True, exist_ok=True)
    assert git(top, "init", "-q", ".").returncode == 0
    for name, text in files.items():
        path = top / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return top


def entries(top: Path) -> list[tuple[str, bool]]:
    """Every file and directory below `top` but the repositories' .git, as (relative path, is_dir)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in dirnames + sorted(filenames):
            path = os.path.join(dirpath, name)
            found.append((os.path.relpath(path, top), os.path.isdir(path)))
    return found


def git_ignored(top: Path, paths: list[str]) -> set[str]:
    """The paths git check-ignore says are ignored (nothing is tracked, so it judges them all)."""
    done = git(top, "check-ignore", "--stdin", "-z", stdin=b"".join(os.fsencode(p) + b"\0" for p in paths))
    assert done.returncode in (0, 1), done.stderr.decode()
    return {os.fsdecode(p) for p in done.stdout.split(b"\0") if p}


def watchd_ignored(top: Path, found: list[tuple[str, bool]]) -> set[str]:
    repo = Repository(str(top))
    return {rel for rel, is_dir in found if repo.ignored(str(top / rel), is_dir=is_dir)}


# Each case: the repository's files (ignore files and the tree) and exactly what git ignores in it.
CASES = {
    "nested .gitignore files: the deepest decides": (
        {
            ".gitignore": "*.log\n",
            "sub/.gitignore": "!keep.log\n",
            "a.log": "",
            "sub/keep.log": "",
            "sub/b.log": "",
            "sub/deeper/keep.log": "",
            "other/keep.log": "",
        },
        {"a.log", "sub/b.log", "other/keep.log"},
    ),
    "negation: re-included, but never inside an ignored directory": (
        {
            ".gitignore": "build/\n!build/keep.txt\nlogs/*\n!logs/keep.txt\n*.bak\n!important.bak\n",
            "build/keep.txt": "",
            "build/out.o": "",
            "logs/a.txt": "",
            "logs/keep.txt": "",
            "x.bak": "",
            "important.bak": "",
        },
        {"build", "build/keep.txt", "build/out.o", "logs/a.txt", "x.bak"},
    ),
    "directory-only patterns": (
        {
            ".gitignore": "cache/\ntmp\n",
            "cache/c.txt": "",
            "other/cache": "",  # a file named cache
            "tmp": "",  # a file named tmp
            "deep/tmp/t.txt": "",  # a directory named tmp
        },
        {"cache", "cache/c.txt", "tmp", "deep/tmp", "deep/tmp/t.txt"},
    ),
    "anchored patterns and **": (
        {
            ".gitignore": "/top.txt\ndoc/*.html\n**/gen/*.py\na/**/z.txt\nlib/**\n!lib/keep.py\n",
            "top.txt": "",
            "sub/top.txt": "",
            "doc/a.html": "",
            "doc/x/b.html": "",
            "sub/doc/a.html": "",
            "p/q/gen/x.py": "",
            "gen/y.py": "",
            "a/z.txt": "",
            "a/b/c/z.txt": "",
            "lib/m.py": "",
            "lib/keep.py": "",
            "lib/deep/n.py": "",
        },
        {
            "top.txt",
            "doc/a.html",
            "p/q/gen/x.py",
            "gen/y.py",
            "a/z.txt",
            "a/b/c/z.txt",
            "lib/m.py",
            "lib/deep",
            "lib/deep/n.py",
        },
    ),
    "everything but a whitelist": (
        {
            ".gitignore": "/*\n!/src/\n!/README.md\n/src/*\n!/src/app/\n",
            "README.md": "",
            "notes.txt": "",
            "data/d.csv": "",
            "src/app/main.py": "",
            "src/scratch.py": "",
        },
        {"notes.txt", "data", "data/d.csv", "src/scratch.py"},
    ),
    "escapes, spaces, classes and comments": (
        {
            ".gitignore": "# a comment\n\\#hash\n\\!bang\ntrail\\ \nfile[AB]\nq?\nsp ace.txt   \n",
            "#hash": "",
            "!bang": "",
            "trail ": "",
            "trail": "",
            "fileA": "",
            "fileC": "",
            "q1": "",
            "q12": "",
            "sp ace.txt": "",
            "# a comment": "",
        },
        {"#hash", "!bang", "trail ", "fileA", "q1", "sp ace.txt"},
    ),
}


@pytest.mark.parametrize("files, expected", list(CASES.values()), ids=list(CASES))
def test_watchd_ignores_exactly_what_git_does(
    tmp_path: Path, files: dict[str, str], expected: set[str]
) -> None:
    top = make_repo(tmp_path / "repo", files)
    found = [(rel, is_dir) for rel, is_dir in entries(top) if os.path.basename(rel) != ".gitignore"]
    by_git = git_ignored(top, [rel for rel, _ in found])
    assert by_git == expected  # the case says what git does ...
    assert watchd_ignored(top, found) == by_git  # ... and watchd does the same


def test_info_exclude_and_the_global_excludes_file_come_after_every_gitignore(tmp_path: Path) -> None:
    top = make_repo(
        tmp_path / "repo",
        {
            ".gitignore": "!important.secret\n",
            "a.secret": "",
            "important.secret": "",
            "b.swp2": "",
            "c.txt": "",
        },
    )
    (top / ".git" / "info").mkdir(exist_ok=True)
    (top / ".git" / "info" / "exclude").write_text("*.secret\n")
    excludes = tmp_path / "global-ignore"
    excludes.write_text("*.swp2\n!c.txt\n")
    assert git(top, "config", "core.excludesFile", str(excludes)).returncode == 0
    found = entries(top)
    by_git = git_ignored(top, [rel for rel, _ in found])
    assert by_git == {"a.secret", "b.swp2"}
    assert watchd_ignored(top, found) == by_git
    repo = Repository(str(top))
    assert repo.why(str(top / "a.secret")) == "ignored by '*.secret' in .git/info/exclude"
    assert repo.why(str(top / "b.swp2")) == f"ignored by '*.swp2' in {excludes}"


def test_the_default_global_excludes_file_is_used_when_none_is_configured(tmp_path: Path) -> None:
    top = make_repo(tmp_path / "repo", {"x.orig": "", "y.txt": ""})
    default = Path(os.environ["XDG_CONFIG_HOME"]) / "git" / "ignore"
    default.parent.mkdir(parents=True)
    default.write_text("*.orig\n")
    found = entries(top)
    assert git_ignored(top, [rel for rel, _ in found]) == {"x.orig"}
    assert watchd_ignored(top, found) == {"x.orig"}
    assert Repository(str(top)).why(str(top / "x.orig")) == "ignored by '*.orig' in ~/.config/git/ignore"


def test_a_nested_repository_has_its_own_rules(tmp_path: Path) -> None:
    top = make_repo(tmp_path / "outer", {".gitignore": "*.py\n", "a.py": "", "b.txt": ""})
    inner = make_repo(
        top / "vendor" / "lib", {".gitignore": "*.txt\n", "v.py": "", "v.txt": "", "d/w.txt": ""}
    )
    repo = Repository(str(top))
    assert repo.ignored(str(top / "a.py"))
    inner_found = entries(inner)
    by_git = git_ignored(inner, [rel for rel, _ in inner_found])
    assert by_git == {"v.txt", "d/w.txt"}  # the outer *.py does not reach into it
    assert {rel for rel, is_dir in inner_found if repo.ignored(str(inner / rel), is_dir=is_dir)} == by_git


def test_random_repositories_agree_with_git(tmp_path: Path) -> None:
    """Random trees and ignore files drawn from the patterns whose semantics differ most."""
    patterns = [
        "a", "a/", "/a", "!a", "!a/", "*.py", "!*.py", "**/b", "a/**", "!a/**", "a/**/b", "*", "!*/",
        "**", "!**/", "/*", "b/", "!b", "?", "[ab]", "a/*", "!d.log", "*.log", "x/", "!/x", "**/x/",
        "*/b", "ab", "a*", "!ab",
    ]  # fmt: skip
    names = ["a", "b", "ab", "c.py", "d.log", "x"]
    rng = random.Random(12)  # noqa: S311 (a reproducible draw, not a secret)
    disagreements = []
    for i in range(40):
        top = make_repo(tmp_path / f"r{i}", {})
        dirs = [""]
        for _ in range(10):
            d = os.path.join(rng.choice(dirs), rng.choice(["a", "b", "ab", "x"]))
            if d not in dirs and not (top / d).is_file():
                (top / d).mkdir(parents=True, exist_ok=True)
                dirs.append(d)
        for _ in range(16):
            f = top / rng.choice(dirs) / rng.choice(names)
            if not f.exists():
                f.write_text("")
        for d in rng.sample(dirs, min(len(dirs), 3)):
            lines = [rng.choice(patterns) for _ in range(rng.randint(1, 4))]
            (top / d / ".gitignore").write_text("\n".join(lines) + "\n")
        found = entries(top)
        by_git = git_ignored(top, [rel for rel, _ in found])
        mine = watchd_ignored(top, found)
        if mine != by_git:
            disagreements.append((i, sorted(mine ^ by_git)))
    assert disagreements == []


# --------------------------------------------------------------------------- the watcher


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {".gitignore": "*.log\nbuild/\n", "app.py": "", "build/out.py": "", "logs/": ""},
    )


def watching(root: Path, *, native: bool | None = None, gitignore: bool = True) -> tuple[Watcher, Collector]:
    sink = Collector()
    sub = Subscription(0, "t", str(root), Matcher(), gitignore=gitignore)
    w = Watcher([sub], sink, native=native)  # None: the platform's backend (inotify on Linux)
    w.start()
    return w, sink


@pytest.fixture(params=["inotify", "watchdog"])
def watch(repo: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Watcher, Collector]]:
    w, sink = watching(repo, native=request.param == "inotify")
    yield w, sink
    w.stop()


def test_what_git_ignores_does_not_count(repo: Path, watch: tuple[Watcher, Collector]) -> None:
    _, sink = watch
    (repo / "logs" / "a.log").write_text("x")
    (repo / "build" / "out.py").write_text("x")
    (repo / "build" / "new").mkdir()
    (repo / "build" / "new" / "n.py").write_text("x")
    assert changed(repo, sink) == set()
    (repo / "app.py").write_text("x")
    assert changed(repo, sink) == {"app.py"}


def test_it_is_off_unless_asked_for(repo: Path) -> None:
    w, sink = watching(repo, gitignore=False)
    try:
        (repo / "logs" / "a.log").write_text("x")
        assert sink.expect().path == str(repo / "logs" / "a.log")
    finally:
        w.stop()


@pytest.mark.linux_only("inotify's pruning of ignored trees (no watch on them)")
def test_directories_git_ignores_cost_no_watch(repo: Path) -> None:
    for n in range(5):
        (repo / "build" / f"d{n}").mkdir()
    plain, _ = watching(repo, native=True, gitignore=False)
    honouring, _ = watching(repo, native=True)
    try:
        # repo, logs, build and its 5 directories; the same without build's 6
        assert plain.count_directories() == 8
        assert honouring.count_directories() == 2
    finally:
        plain.stop()
        honouring.stop()


def changed(root: Path, sink: Collector) -> set[str]:
    """The paths (relative to `root`) of the changes that arrived, up to a sentinel's."""
    return {os.path.relpath(c.dest or c.path, root) for c in sentinel(root, sink, ".marker")}


@pytest.mark.parametrize("native", [True, False], ids=["inotify", "watchdog"])
def test_a_changed_gitignore_takes_effect_at_once(repo: Path, native: bool) -> None:
    w, sink = watching(repo, native=native)
    try:
        (repo / ".gitignore").write_text("*.py\n")  # build/ is not ignored any more; *.py is
        (repo / "build" / "out.py").write_text("y")  # ignored, now by *.py
        (repo / "build" / "page.html").write_text("y")  # in a directory that had no watch
        (repo / "app.py").write_text("y")
        (repo / "logs" / "a.log").write_text("y")
        assert changed(repo, sink) == {".gitignore", "build/page.html", "logs/a.log"}
        if native:
            assert w.count_directories() == 3
    finally:
        w.stop()


@pytest.mark.linux_only(
    "it waits for the writer to close the file (IN_CLOSE_WRITE); FSEvents has no close event, so on "
    "macOS a .gitignore held open half-written is read as it is"
)
@pytest.mark.parametrize("native", [True, False], ids=["inotify", "watchdog"])
def test_a_gitignore_being_written_applies_once_its_writer_closes_it(repo: Path, native: bool) -> None:
    """An editor writes in place: truncate, then the new text. In between the file is empty and
    ignores nothing; rules read then let build/out.py count (seen under load in the test above)."""
    w, sink = watching(repo, native=native)
    try:
        with open(repo / ".gitignore", "w") as f:  # truncated: empty until written and closed
            assert changed(repo, sink) == {".gitignore"}  # the truncation was seen and handled
            (repo / "build" / "out.py").write_text("y")  # ignored before, and after, by *.py
            f.write("*.py\n")
        (repo / "logs" / "a.log").write_text("y")  # *.log is gone from the rules
        assert changed(repo, sink) == {".gitignore", "logs/a.log"}
    finally:
        w.stop()


def test_a_gitignore_saved_by_rename_or_deleted_takes_effect(repo: Path) -> None:
    w, sink = watching(repo)
    try:
        (repo / ".gitignore.swp").write_text("*.html\n")
        os.replace(repo / ".gitignore.swp", repo / ".gitignore")  # an editor's atomic save
        (repo / "logs" / "a.log").write_text("x")  # *.log is gone from the rules
        (repo / "x.html").write_text("x")
        assert changed(repo, sink) == {".gitignore", "logs/a.log"}
        (repo / ".gitignore").unlink()
        (repo / "x.html").write_text("y")
        assert changed(repo, sink) == {".gitignore", "x.html"}
    finally:
        w.stop()


def test_a_nested_gitignore_moved_away_with_its_directory_stops_applying(repo: Path, tmp_path: Path) -> None:
    (repo / "pkg").mkdir()
    (repo / "pkg" / ".gitignore").write_text("*.txt\n")
    w, sink = watching(repo)
    try:
        (repo / "pkg" / "a.txt").write_text("x")
        assert changed(repo, sink) == set()
        os.rename(repo / "pkg", tmp_path / "pkg-away")
        (repo / "pkg").mkdir()
        (repo / "pkg" / "a.txt").write_text("x")
        assert changed(repo, sink) == {"pkg", "pkg/a.txt"}  # the directory moved away, a.txt counts
    finally:
        w.stop()


def test_info_exclude_and_a_gitignore_above_the_root_are_followed(repo: Path) -> None:
    root = repo / "logs"
    w, sink = watching(root)
    try:
        (root / "a.log").write_text("x")
        (root / "a.txt").write_text("x")
        assert changed(root, sink) == {"a.txt"}  # *.log from the .gitignore above the root
        (repo / ".git" / "info").mkdir(exist_ok=True)
        (repo / ".git" / "info" / "exclude").write_text("*.txt\n")
        (repo / ".gitignore").write_text("")
        w.check_roots()  # the daemon calls it every few seconds
        (root / "a.txt").write_text("y")
        (root / "a.log").write_text("y")
        assert changed(root, sink) == {"a.log"}
    finally:
        w.stop()


@pytest.mark.parametrize("native", [True, False], ids=["inotify", "watchdog"])
def test_verbose_says_which_gitignore_line_decided(repo: Path, native: bool) -> None:
    """-v on watchdog's observers (macOS) too: its handler passed no explanation on."""
    sink = Collector()
    reasons: list[tuple[str, str | None]] = []
    w = Watcher([Subscription(0, "t", str(repo), Matcher(), gitignore=True)], sink, native=native)
    w.explain = lambda key, path, is_dir, why: reasons.append((path, why))
    w.start()
    try:
        (repo / "logs" / "a.log").write_text("x")
        assert wait_for(lambda: (str(repo / "logs" / "a.log"), "ignored by '*.log' in .gitignore") in reasons)
    finally:
        w.stop()


def test_a_root_outside_any_repository_or_ignored_as_a_whole_is_warned_about(
    tmp_path: Path, repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    caplog.set_level(logging.WARNING)
    for root in (plain, repo / "build"):
        w, sink = watching(root)
        (root / "f.py").write_text("x")
        if root == plain:
            assert sink.expect() == Change(ChangeKind.CREATED, str(plain / "f.py"))
        w.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert f"t: gitignore is on, but {plain} is not in a git repository: no .gitignore applies" in messages
    assert (
        f"t: {repo / 'build'} is itself ignored by git (ignored by 'build/' in .gitignore): "
        "with gitignore on, nothing under it counts"
    ) in messages
