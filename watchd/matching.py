"""Which paths count: include patterns and ignores, with gitignore semantics.

Pure and fast (it runs for every raw event, before batching): no filesystem access.
Uses `pathspec`'s GitIgnoreSpec, a well-kept implementation of git's own rules
(``*.py`` at any depth, ``/`` anchors, ``**`` spans directories, ``!`` negates, ``dir/``
only matches directories), which watchdog's helpers no longer provide (``full_match`` since 7.0).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pathspec

# Ignored by every watch unless `ignore_defaults: false`.
BUILTIN_IGNORES: tuple[str, ...] = (
    # version control
    ".git/",
    ".hg/",
    ".svn/",
    # caches and environments
    "__pycache__/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".tox/",
    ".venv/",
    "venv/",
    "env/",  # (and any directory holding a pyvenv.cfg: watching finds those, this module reads no disk)
    "node_modules/",
    # compiled Python
    "*.pyc",
    "*.pyo",
    # editors: vim swap files and its write probe, backups, emacs locks and autosaves, JetBrains safe-write
    ".*.sw?",
    ".*.sw??",
    "4913",
    "*~",
    ".#*",
    r"\#*#",
    "*___jb_tmp___",
    "*___jb_old___",
    # misc
    "*.tmp",
    ".DS_Store",
)


def check_pattern(pattern: str) -> str | None:
    """Why `pattern` is unusable, or None if it is fine. pathspec drops a pattern it cannot
    read (as git does) without a word: here that is an error, not a pattern matching nothing."""
    if not pattern.strip():
        return "empty pattern (write a glob like *.py, or remove it)"
    try:
        spec = pathspec.GitIgnoreSpec.from_lines([pattern])
    except (ValueError, TypeError) as exc:
        return f"invalid pattern {pattern!r}: {exc}"
    if all(getattr(p, "include", None) is None for p in spec.patterns):
        if pattern.startswith("#"):
            return (
                f"{pattern!r} is a comment in gitignore syntax "
                f"(write '\\{pattern}' for a name starting with #)"
            )
        if "[" in pattern:
            return (
                f"invalid pattern {pattern!r}: a '[' without its ']' (close the set, as in '*.[ch]', "
                "or write '\\[' for a literal [)"
            )
        return f"invalid pattern {pattern!r} (it can match nothing: write a glob like *.py)"
    return None


def from_watchmedo(pattern: str) -> str:
    """A watchmedo `--patterns` / `--ignore-patterns` glob as the gitignore pattern that selects
    the same files under a watched root.

    watchmedo matches its globs against the whole path, so `*/tests/*` ignores `tests/` at any
    depth, and `src/*.py` is any `src/` directory's `.py` files. In gitignore terms: a leading
    `*/` spans any number of directories (`**/`), a pattern with a `/` matches at any depth,
    and a trailing `/*` (everything in the directory) also covers its subdirectories.
    """
    if pattern.startswith("/"):
        return pattern
    body = pattern
    spans = False
    while body.startswith("*/"):
        body, spans = body[2:], True
    if spans or "/" in body.rstrip("/"):
        body = "**/" + body
    if body.endswith("/*"):
        body = body[:-1] + "**"
    return body


IGNORED, OTHER, MATCH = 0, 1, 2  # Matcher.judge's answers


class Matcher:
    """Decides whether a path relative to a watched root is relevant to a watch.

    `patterns` select files (empty: every file); `ignore` and the built-in ignores exclude
    files and whole directories. Directory events (delete, move away) count unless the
    directory is ignored: files inside a moved directory produce no events of their own.
    """

    __slots__ = (
        "_by_name",
        "_ignore",
        "_ignore_re",
        "_include",
        "_include_re",
        "_judged",
        "_names_only",
        "defaults",
    )

    def __init__(
        self, patterns: Iterable[str] = (), ignore: Iterable[str] = (), *, ignore_defaults: bool = True
    ):
        patterns = list(patterns)
        self.defaults = ignore_defaults  # the built-in ignores apply (virtual environments too)
        ignores = (list(BUILTIN_IGNORES) if ignore_defaults else []) + list(ignore)
        self._include = pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None
        self._ignore = pathspec.GitIgnoreSpec.from_lines(ignores) if ignores else None
        # With no slash inside any ignore pattern and no negation, whether a directory whose
        # parents are not ignored is ignored depends on its name alone: `prunes` caches by name.
        self._names_only = all("/" not in p.rstrip("/") and not p.startswith("!") for p in ignores)
        self._by_name: dict[str, bool] = {}
        # the same answers, in one regex search each (see _combined), and remembered per path:
        # a file written is 3-8 events (create, modify..., close), each asking the same question
        self._include_re = _combined(self._include)
        self._ignore_re = _combined(self._ignore)
        self._judged: dict[tuple[str, bool], int] = {}

    def prunes(self, rel: str) -> bool:
        """`ignored(rel, is_dir=True)` for a directory none of whose parents is ignored.

        This is the question asked for every directory of a tree being watched, so its answer
        is cached by directory name when the ignore patterns allow it (they usually do).
        """
        if not self._names_only:
            return self.ignored(rel, is_dir=True)
        name = rel.rpartition("/")[2]
        hit = self._by_name.get(name)
        if hit is None:
            if len(self._by_name) >= 4096:
                self._by_name.clear()
            hit = self._by_name[name] = self.ignored(name, is_dir=True)
        return hit

    def ignored(self, rel: str, *, is_dir: bool = False) -> bool:
        """True if the path, or a directory it is in, is ignored."""
        if self._ignore is None:
            return False
        rel = for_regex(rel)
        if is_dir:
            rel += "/"
        if self._ignore_re is not None:
            return self._ignore_re.search(rel) is not None
        return bool(self._ignore.match_file(rel))

    def matches(self, rel: str, *, is_dir: bool = False) -> bool:
        """True if a change at `rel` (relative to the root, '/'-separated) should trigger."""
        return self.judge(rel, is_dir=is_dir) == MATCH

    def judge(self, rel: str, *, is_dir: bool = False) -> int:
        """MATCH if a change at `rel` should trigger; OTHER if it does not match the patterns but
        is not ignored either (it keeps an open batch open); IGNORED otherwise."""
        key = (rel, is_dir)
        verdict = self._judged.get(key)
        if verdict is None:
            if len(self._judged) >= _JUDGED_MAX:
                self._judged.clear()
            verdict = self._judged[key] = self._judge(rel, is_dir)
        return verdict

    def explain(self, rel: str, *, is_dir: bool = False) -> str:
        """Why a change at `rel` counts or not, for -v: the pattern that decided it."""
        verdict = self.judge(rel, is_dir=is_dir)
        if verdict == IGNORED:
            if not rel or rel.startswith("../"):
                return "outside the watched paths"
            target = for_regex(rel) + ("/" if is_dir else "")
            hit = _deciding(self._ignore, target) or _deciding(self._ignore, for_regex(rel) + "/_")
            if hit is None:
                return "ignored"
            return f"ignored by {hit!r}" + (", built-in" if hit in BUILTIN_IGNORES else "")
        if self._include is None:
            return "no patterns: every file counts"
        if verdict == MATCH:
            if is_dir:
                return "a directory (its files are judged one by one)"
            return f"matches {_deciding(self._include, for_regex(rel))!r}"
        shown = ", ".join(repr(p.pattern) for p in self._include.patterns if getattr(p, "include", None))
        return f"matches none of {shown}"

    def _judge(self, rel: str, is_dir: bool) -> int:
        if not rel or rel.startswith("../"):
            return IGNORED
        if self.ignored(rel, is_dir=is_dir):
            return IGNORED
        if is_dir and self.ignored(rel + "/_"):
            return IGNORED  # `tests/**` ignores everything in tests/, so tests/ going away is no change
        if is_dir or self._include is None:
            return MATCH
        if self._include_re is not None:
            return MATCH if self._include_re.search(for_regex(rel)) is not None else OTHER
        return MATCH if self._include.match_file(for_regex(rel)) else OTHER


_JUDGED_MAX = 8192  # paths whose verdict a Matcher remembers (then it starts over)
DIR_MARK = "(?P<ps_d>/)"  # the one named group pathspec puts in a pattern's regex: never user text


def _combined(spec: pathspec.GitIgnoreSpec | None) -> re.Pattern[str] | None:
    """One regex that matches a path iff `spec` does, or None where that cannot be exact.

    Without negations (`!`), GitIgnoreSpec answers "does any pattern match": the alternation of
    the patterns' own regexes answers the same in one C-level search instead of a Python loop
    over the patterns. With a negation, the last matching pattern decides, and pathspec does it.
    Paths given to it never start with "/" or "./", so pathspec's normalization is a no-op for them.
    """
    if spec is None:
        return None
    regexes = []
    for pattern in spec.patterns:
        include = getattr(pattern, "include", None)
        if include is None:
            continue  # a comment or blank line
        regex = getattr(pattern, "regex", None)
        if include is not True or not isinstance(regex, re.Pattern) or not isinstance(regex.pattern, str):
            return None
        if regex.flags != re.UNICODE:
            return None
        regexes.append(regex)
    return alternation(regexes)


def alternation(regexes: Iterable[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One regex that matches where any of pathspec's pattern regexes does (None for none, or
    if they cannot be joined). Their directory mark is made anonymous, as a group name may not
    repeat; a bracket expression never holds "/", so the mark cannot be user text.

    The anchored ones (nearly all: pathspec starts them with "^") become one `^(?:a|b|...)`,
    the others (`**`'s forms) are alternatives of their own."""
    anchored: list[str] = []
    others: list[str] = []
    for r in regexes:
        body = r.pattern.replace(DIR_MARK, "(?:/)")
        if body.startswith("^"):
            anchored.append(f"(?:{body[1:]})")
        else:
            others.append(f"(?:{body})")
    parts = ([f"^(?:{'|'.join(anchored)})"] if anchored else []) + others
    if not parts:
        return None
    try:
        return re.compile("|".join(parts))
    except re.error:  # a group name pathspec did not use before: let it answer
        return None


def _deciding(spec: pathspec.GitIgnoreSpec | None, path: str) -> str | None:
    """The pattern that decides `path` in `spec` (the last one that matches), as written."""
    if spec is None:
        return None
    found: str | None = None
    for pattern in spec.patterns:
        regex = getattr(pattern, "regex", None)
        if getattr(pattern, "include", None) is not None and regex is not None and regex.search(path):
            found = str(getattr(pattern, "pattern", "?"))
    return found


def for_regex(rel: str) -> str:
    """`rel` with newlines as NUL, which no path contains and every glob treats alike.

    pathspec's regexes use `.` (which skips newlines) and `$` (which matches before a final
    one), so a directory named 'a\\nb' would escape '.git/' and '*.py', and 'x.py\\n' would match.
    """
    return rel.replace("\n", "\0")
