"""Matcher: gitignore semantics for include/ignore patterns, and the built-in ignores."""

from __future__ import annotations

import pytest

from watchd.matching import BUILTIN_IGNORES, Matcher, check_pattern

# (patterns, path, expected) for include patterns, built-in ignores on.
INCLUDE_CASES = [
    # a pattern without a slash matches at any depth
    (["*.py"], "app.py", True),
    (["*.py"], "src/app.py", True),
    (["*.py"], "src/pkg/deep/app.py", True),
    (["*.py"], "app.pyx", False),
    (["*.py"], "app.js", False),
    (["*.py"], "py", False),
    # a slash anchors the pattern at the root
    (["src/*.py"], "src/app.py", True),
    (["src/*.py"], "lib/src/app.py", False),
    (["src/*.py"], "src/pkg/app.py", False),
    (["/app.py"], "app.py", True),
    (["/app.py"], "src/app.py", False),
    # ** spans directories, including none
    (["src/**/*.py"], "src/app.py", True),
    (["src/**/*.py"], "src/a/b/c/app.py", True),
    (["src/**/*.py"], "lib/app.py", False),
    (["**/templates/*.html"], "templates/x.html", True),
    (["**/templates/*.html"], "a/b/templates/x.html", True),
    (["**/templates/*.html"], "a/b/templates/sub/x.html", False),
    # ! negates an earlier pattern; the last matching one wins
    (["*.py", "!test_*.py"], "app.py", True),
    (["*.py", "!test_*.py"], "test_app.py", False),
    (["*.py", "!test_*.py"], "pkg/test_app.py", False),
    (["*.py", "!test_*.py", "test_keep.py"], "test_keep.py", True),
    # several patterns: any of them
    (["*.py", "*.html"], "t/index.html", True),
    (["*.py", "*.html"], "t/style.css", False),
    # ? is one character, [..] a class
    (["?.py"], "a.py", True),
    (["?.py"], "ab.py", False),
    (["[ab].py"], "b.py", True),
    (["[ab].py"], "c.py", False),
    # a directory pattern in the include list selects everything below
    (["conf/"], "conf/app.ini", True),
    (["conf/"], "other/app.ini", False),
    # no patterns: every file
    ([], "anything.bin", True),
    ([], "deep/er/file", True),
]


@pytest.mark.parametrize(("patterns", "path", "expected"), INCLUDE_CASES)
def test_include_patterns(patterns: list[str], path: str, expected: bool) -> None:
    assert Matcher(patterns).matches(path) is expected


# (ignore, path, expected match) with include "every file" and no built-ins.
IGNORE_CASES = [
    # dir/ ignores everything below it, at any depth
    (["build/"], "build/app.py", False),
    (["build/"], "build/a/b/c.py", False),
    (["build/"], "src/build/app.py", False),
    (["build/"], "buildx/app.py", True),
    (["build/"], "build", True),  # a file named build is not the directory
    # anchored directory
    (["/build/"], "build/app.py", False),
    (["/build/"], "src/build/app.py", True),
    # user ignores with **
    (["tests/**"], "tests/test_app.py", False),
    (["tests/**"], "tests/unit/test_app.py", False),
    (["tests/**"], "src/tests/test_app.py", True),  # contains a slash: anchored
    (["tests/**"], "tests_app.py", True),
    (["**/fixtures/**"], "a/fixtures/b/c.json", False),
    (["**/fixtures/**"], "a/fixturesx/c.json", True),
    # file patterns and negation in ignores
    (["*.log"], "logs/x.log", False),
    (["*.log", "!keep.log"], "logs/keep.log", True),
    (["*.log", "!keep.log"], "logs/other.log", False),
]


@pytest.mark.parametrize(("ignore", "path", "expected"), IGNORE_CASES)
def test_ignore_patterns(ignore: list[str], path: str, expected: bool) -> None:
    assert Matcher(ignore=ignore, ignore_defaults=False).matches(path) is expected


def test_ignore_wins_over_include() -> None:
    m = Matcher(["*.py"], ["generated/"])
    assert m.matches("src/app.py")
    assert not m.matches("generated/app.py")
    assert not m.matches("src/generated/app.py")


# Every built-in ignore, as a file event at the root.
BUILTIN_FILES = [
    ".git/config",
    ".git/objects/ab/cdef",
    ".hg/store/data",
    ".svn/entries",
    "__pycache__/app.cpython-312.pyc",
    "__pycache__/notes.txt",
    ".mypy_cache/3.12/app.meta.json",
    ".pytest_cache/v/cache/lastfailed",
    ".ruff_cache/CACHEDIR.TAG",
    ".tox/py312/log.txt",
    ".venv/lib/python3.12/site-packages/x.py",
    "venv/lib/python3.12/site-packages/x.py",
    "src/env/bin/activate",
    "node_modules/left-pad/index.js",
    "app.pyc",
    "app.pyo",
    ".x.py.swp",
    ".x.py.swx",
    ".x.py.swo",
    ".x.py.swpx",
    "4913",
    "x.py~",
    ".#x.py",
    "#x.py#",
    "x.py___jb_tmp___",
    "x.py___jb_old___",
    "upload.tmp",
    ".DS_Store",
]


@pytest.mark.parametrize("prefix", ["", "src/", "src/pkg/deep/"], ids=["top", "nested", "deep"])
@pytest.mark.parametrize("path", BUILTIN_FILES)
def test_builtin_ignores(prefix: str, path: str) -> None:
    rel = prefix + path
    assert Matcher().ignored(rel)
    assert not Matcher().matches(rel)
    # including the extension explicitly does not override the built-ins
    assert not Matcher(["*", "*.py", "*.pyc"]).matches(rel)


@pytest.mark.parametrize("prefix", ["", "src/", "src/pkg/deep/"], ids=["top", "nested", "deep"])
@pytest.mark.parametrize("path", BUILTIN_FILES)
def test_ignore_defaults_false_turns_builtins_off(prefix: str, path: str) -> None:
    rel = prefix + path
    m = Matcher(ignore_defaults=False)
    assert not m.ignored(rel)
    assert m.matches(rel)


@pytest.mark.parametrize(
    "name",
    [
        *(".git", ".hg", ".svn"),
        *("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".venv", "node_modules"),
    ],
)
@pytest.mark.parametrize("prefix", ["", "a/", "a/b/"])
def test_builtin_ignored_directory_events(prefix: str, name: str) -> None:
    assert not Matcher().matches(prefix + name, is_dir=True)
    assert Matcher(ignore_defaults=False).matches(prefix + name, is_dir=True)


# Near misses: names that look like built-ins but are ordinary files.
@pytest.mark.parametrize(
    "path",
    [
        "app.py",
        "src/app.py",
        "git/config",
        "my.git/config",
        "x.git",
        "venvs/lib/x.py",
        "myenv/lib/x.py",  # a venv named otherwise: found by its pyvenv.cfg (watching), not here
        "pycache/x.py",
        "x.py.swp",  # not hidden: not vim's swap name
        "49130",
        "x.py~old",
        "x#.py",
        "x.tmpl",
        "DS_Store",
        "x.py___jb_new___",
    ],
)
def test_not_builtin_ignored(path: str) -> None:
    assert not Matcher().ignored(path)
    assert Matcher().matches(path)


def test_builtin_ignores_are_all_covered() -> None:
    # every built-in pattern is exercised by at least one path above
    m_off = Matcher(ignore_defaults=False)
    for pattern in BUILTIN_IGNORES:
        one = Matcher(ignore=[pattern], ignore_defaults=False)
        hits = [p for p in BUILTIN_FILES if one.ignored(p)]
        assert hits, f"no test path for built-in ignore {pattern!r}"
    assert not any(m_off.ignored(p) for p in BUILTIN_FILES)


def test_user_ignores_add_to_builtins() -> None:
    m = Matcher(["*.py"], ["tests/**"])
    assert not m.matches("tests/test_x.py")
    assert not m.matches(".venv/x.py")
    assert m.matches("src/x.py")
    m_off = Matcher(["*.py"], ["tests/**"], ignore_defaults=False)
    assert not m_off.matches("tests/test_x.py")
    assert m_off.matches(".venv/x.py")


@pytest.mark.parametrize(
    ("patterns", "ignore", "path", "expected"),
    [
        # directory events count even if they do not match the file patterns
        (["*.py"], [], "src/pkg", True),
        (["*.py"], [], "templates", True),
        # unless the directory is ignored, or is inside an ignored one
        (["*.py"], ["build/"], "build", False),
        (["*.py"], ["build/"], "src/build", False),
        (["*.py"], ["build/"], "build/sub", False),
        (["*.py"], ["tests/**"], "tests/unit", False),
        (["*.py"], [], ".git", False),
        (["*.py"], [], "src/__pycache__", False),
        (["*.py"], [], "node_modules/pkg", False),
    ],
)
def test_directory_events(patterns: list[str], ignore: list[str], path: str, expected: bool) -> None:
    assert Matcher(patterns, ignore).matches(path, is_dir=True) is expected


def test_directory_only_pattern_needs_is_dir() -> None:
    m = Matcher(ignore=["build/"], ignore_defaults=False)
    assert m.ignored("build", is_dir=True)
    assert not m.ignored("build", is_dir=False)


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["*.py"], "my app.py", True),
        (["*.py"], "dir with space/my app.py", True),
        (["my app.py"], "my app.py", True),
        (["*.py"], "été/café.py", True),
        (["café/*.py"], "café/x.py", True),
        (["café/*.py"], "cafe/x.py", False),
        (["*.py"], "日本/テスト.py", True),
        (["*.py"], "emoji 🐍.py", True),
        (["*.py"], "line\nbreak.py", True),
        (["*.py"], "dir\nwith newline/app.py", True),
        (["*.py"], "app.py\n", False),  # its name ends in a newline, not .py
        (["*.py"], "app.py\nx", False),
        (["src/*.py"], "src\n/app.py", False),
        (["*.py"], "bad\udcffbyte.py", True),  # undecodable byte, as surrogateescape gives it
        (["*.py"], "bad.py\udcff", False),
    ],
)
def test_unusual_names(patterns: list[str], path: str, expected: bool) -> None:
    assert Matcher(patterns).matches(path) is expected


@pytest.mark.parametrize(
    "path",
    [
        "we\nird/.git/config",
        "we\nird/node_modules/x.js",
        ".git/obj\nect",
        "a\nb/x.pyc",
        "dir with space/__pycache__/x.pyc",
        "été/.x.py.swp",
    ],
)
def test_builtin_ignores_with_unusual_names(path: str) -> None:
    assert not Matcher().matches(path)


@pytest.mark.parametrize(
    ("ignore", "path"),
    [(["build/"], "x\ny/build/app.py"), (["build/"], "build/a\nb.py"), (["tests/**"], "tests/a\nb/c.py")],
)
def test_user_ignores_with_newlines(ignore: list[str], path: str) -> None:
    assert not Matcher(ignore=ignore, ignore_defaults=False).matches(path)


@pytest.mark.parametrize("path", ["", "../outside.py", "../a/b.py"])
def test_outside_the_root_never_matches(path: str) -> None:
    assert not Matcher().matches(path)
    assert not Matcher(ignore_defaults=False).matches(path)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("*.py", None),
        ("src/**/*.py", None),
        ("!test_*.py", None),
        ("build/", None),
        (r"\#*#", None),
        ("", "empty pattern (write a glob like *.py, or remove it)"),
        ("   ", "empty pattern (write a glob like *.py, or remove it)"),
        ("\t", "empty pattern (write a glob like *.py, or remove it)"),
    ],
)
def test_check_pattern(pattern: str, problem: str | None) -> None:
    assert check_pattern(pattern) == problem


@pytest.mark.parametrize("pattern", ["!", "\\", "src/\\"])
def test_check_pattern_rejects_what_pathspec_rejects(pattern: str) -> None:
    problem = check_pattern(pattern)
    assert problem is not None
    assert problem.startswith(f"invalid pattern {pattern!r}: ")


@pytest.mark.parametrize(
    ("ignore", "directory", "counts"),
    [
        ("tests/**", "tests", False),  # everything inside is ignored: removing the directory is no change
        ("tests/", "tests", False),
        ("tests/**/*.py", "tests", True),  # only some contents ignored
        ("build/**", "src", True),
    ],
)
def test_deleting_a_directory_whose_contents_are_all_ignored(
    ignore: str, directory: str, counts: bool
) -> None:
    assert Matcher(["*.py"], [ignore]).matches(directory, is_dir=True) is counts


@pytest.mark.parametrize(
    ("ignore", "rel"),
    [
        ([], "node_modules"),
        ([], "src/.git"),
        ([], "src/app"),
        (["build/"], "pkg/build"),
        (["build/"], "pkg/builder"),
        (["docs/_build"], "docs/_build"),  # a slash in the pattern: not decided by name
        (["docs/_build"], "other/_build"),
        (["cache*", "!cache_keep"], "x/cache_keep"),  # negation: not decided by name
        (["tests/**"], "tests"),
    ],
)
def test_prunes_agrees_with_ignored(ignore: list[str], rel: str) -> None:
    m = Matcher(["*.py"], ignore)
    assert m.prunes(rel) is m.ignored(rel, is_dir=True)
    assert m.prunes(rel) is m.ignored(rel, is_dir=True)  # and again, from the cache


# --------------------------------------------------------------------------- the fast path

# Patterns and paths for checking the one-regex fast path against pathspec's own answer.
FAST_PATTERNS = [
    "*.py", "src/*.py", "/app.py", "src/**/*.py", "**/templates/*.html", "docs/", "build", "*.sw?",
    "a?c", "[ab]*.txt", r"\#*#", "*~", "x/**", "**/cache/**", "dir/sub/", "*.min.*", "(?P<x>).py",
    "we ird.py", "\\!bang", "a/**/b", "tests/", "a\\\\/", "x[(?P<a>]",
]  # fmt: skip
FAST_PATHS = [
    "app.py", "src/app.py", "src/pkg/app.py", "lib/src/app.py", "docs/index.md", "docs", "a/docs/x",
    "build", "build/out.o", "a/build", ".x.swp", "#auto#", "notes~", "x/y/z", "x", "cache/a",
    "deep/cache/a/b", "dir/sub/f", "dir/sub", "abc", "a.txt", "b1.txt", "c.txt", "app.min.js",
    "(?P<x>).py", "we ird.py", "!bang", "a/b", "a/x/y/b", "a\nb.py", "x.py\n", "tests/t.py",
    "t/tests/u.py", "tests", "node_modules/a.py", ".git/HEAD", "src/__pycache__/a.cpython-311.pyc",
    "a\\/x", "a\\", "xP", "xa", "x:", "x(",
]  # fmt: skip


def reference(patterns: list[str], ignore: list[str], rel: str, *, is_dir: bool) -> int:
    """Matcher.judge's rules, answered by pathspec pattern by pattern (no fast path, no cache)."""
    import pathspec  # noqa: PLC0415

    from watchd.matching import IGNORED, MATCH, OTHER  # noqa: PLC0415

    ign = pathspec.GitIgnoreSpec.from_lines(list(BUILTIN_IGNORES) + ignore)
    inc = pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None
    nul = rel.replace("\n", "\0")
    if ign.match_file(nul + "/" if is_dir else nul) or (is_dir and ign.match_file(nul + "/_")):
        return IGNORED
    if is_dir or inc is None:
        return MATCH
    return MATCH if inc.match_file(nul) else OTHER


@pytest.mark.parametrize("pattern", FAST_PATTERNS)
def test_the_fast_path_answers_as_pathspec_does(pattern: str) -> None:
    for patterns, ignore in (([pattern], []), (["*.py", pattern], ["*.txt"]), (["*"], [pattern])):
        m = Matcher(patterns, ignore)
        assert m._include_re is not None and m._ignore_re is not None  # the fast path is taken
        for rel in FAST_PATHS:
            for is_dir in (False, True):
                want = reference(patterns, ignore, rel, is_dir=is_dir)
                assert m.judge(rel, is_dir=is_dir) == want, (patterns, ignore, rel, is_dir)
                assert m.judge(rel, is_dir=is_dir) == want  # and the remembered answer


def test_a_negation_keeps_pathspecs_order_rules() -> None:
    m = Matcher(["*.py", "!skip.py"], ["build/", "!build/keep/"])
    assert m._include_re is None and m._ignore_re is None  # no fast path: order matters
    assert m.matches("a.py") and not m.matches("skip.py")
    for rel in ("build/x.py", "build/keep/x.py", "build/keep/skip.py"):
        assert m.judge(rel) == reference(["*.py", "!skip.py"], ["build/", "!build/keep/"], rel, is_dir=False)


def test_two_directory_patterns_ending_in_an_escaped_backslash() -> None:
    """Each regex then ends in an escaped backslash before pathspec's directory mark; the
    mark must still be made anonymous in both (a repeated group name is a re.error)."""
    m = Matcher(["*"], ["a\\\\/", "b\\\\/"])
    assert m._ignore_re is not None
    assert m.judge("a\\/x.py") == reference(["*"], ["a\\\\/", "b\\\\/"], "a\\/x.py", is_dir=False)


@pytest.mark.parametrize(
    ("patterns", "ignore", "rel", "why"),
    [
        (["*.py"], [], "src/a.py", "matches '*.py'"),
        (["*.py", "*.html"], [], "t/x.html", "matches '*.html'"),
        (["*.py"], [], "notes.txt", "matches none of '*.py'"),
        (["*.py"], ["tests/"], "tests/t.py", "ignored by 'tests/'"),
        (["*.py"], [], ".git/HEAD", "ignored by '.git/', built-in"),
        (["*.py"], [], "a.pyc", "ignored by '*.pyc', built-in"),
        ([], [], "anything", "no patterns: every file counts"),
    ],
)
def test_explain_names_the_pattern_that_decided(
    patterns: list[str], ignore: list[str], rel: str, why: str
) -> None:
    assert Matcher(patterns, ignore).explain(rel) == why
