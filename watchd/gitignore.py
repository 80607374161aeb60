"""Git's ignore rules, for watches with `gitignore: true`.

For a path in a work tree, git consults the `.gitignore` of the path's directory, then of each
directory above it up to the top of the repository (the deepest file with a matching pattern
decides, and within a file the last matching pattern, so `!keep.log` re-includes), then
`$GIT_DIR/info/exclude`, then `core.excludesFile` (by default `$XDG_CONFIG_HOME/git/ignore`).
A directory that is ignored is not entered: nothing below it can be re-included, and its own
`.gitignore` is not read. A repository nested in the tree (a directory with a `.git`) has its
own rules; the outer repository's do not reach into it.

The patterns themselves are pathspec's `GitIgnoreSpec` (git's wildmatch: `*` stays within a
directory, `**` spans them, a `/` anchors, a trailing `/` only matches directories); this
module adds the levels, their order and the rule about ignored directories, asking each
pattern about one path at a time as git does.

Unlike `matching`, this reads files: each ignore file once, and again when it changes. The
watcher sees `.gitignore` files inside its trees change (`changed()`); the others (those above
a watched directory, `info/exclude`, the global file) are looked at by `refresh()`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass

import pathspec

from watchd.matching import DIR_MARK, alternation, for_regex
from watchd.paths import under

log = logging.getLogger(__name__)

IGNORE_FILE = ".gitignore"
_MAX_RULES = 1 << 20  # bytes read of one ignore file: git's own limit is larger, but no real one is
_VERDICTS_MAX = 8192  # paths whose answer is remembered (then it starts over)

# (mtime_ns, size, inode) of an ignore file; None when there is none
_Signature = tuple[int, int, int] | None


_ANY_DEPTH = "^(?:.+/)?"  # how pathspec's regex of a pattern without a slash (`*.py`, `build/`) begins


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One pattern, asked only about a path itself: git asks about each directory on the way
    down (Repository._verdict), so a match through a parent directory is not this one's.

    A pattern without a slash but a trailing one is asked about the last name only, as git
    does: `*.py` is `[^/]*\\.py$` on `m0.py`, not a backtracking `(?:.+/)?` over the whole path.
    """

    itself: re.Pattern[str] | None  # matches a file or directory the pattern names
    slashed: re.Pattern[str] | None  # matches "dir/" for a directory only a `dir/` form names
    on_name: bool  # asked about the last name of the path, not the path
    ignores: bool  # False for a negation (`!pattern`): it re-includes
    text: str  # as written, for -v

    def hits(self, sub: str, name: str, is_dir: bool) -> bool:
        target = name if self.on_name else sub
        if self.itself is not None and self.itself.search(target) is not None:
            return True
        return is_dir and self.slashed is not None and self.slashed.search(target + "/") is not None


def _pattern(regex: re.Pattern[str], ignores: bool, text: str) -> _Pattern:
    """pathspec's regex (searched, as pathspec does) matches a path or anything below it,
    marking the slash after a directory with a named group; split it in the two questions."""
    body = regex.pattern
    bare = text.lstrip("!").rstrip().removesuffix("/")
    on_name = "/" not in bare and body.startswith(_ANY_DEPTH)
    if on_name:
        body = "^" + body[len(_ANY_DEPTH) :]
    if DIR_MARK not in body:  # `a/**` is `^a/`: everything below a, not a itself
        return _Pattern(_compiled(body), None, on_name, ignores, text)
    itself = body.replace(DIR_MARK, "(?!)")  # `a` matches a, not a/b (a/ is a's business)
    slashed = body.replace(DIR_MARK, r"/\Z")  # `a/` and `**/` match the directory a
    return _Pattern(_compiled(itself), _compiled(slashed), on_name, ignores, text)


def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _any(regexes: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One regex that matches where one of `regexes` does (None for none)."""
    if not regexes:
        return None
    return alternation(regexes) or re.compile("")  # cannot be joined: every path asks every pattern


@dataclass(frozen=True, slots=True)
class _Rules:
    """One ignore file's patterns, last first (the last match decides)."""

    source: str  # as shown in -v: ".gitignore", "src/.gitignore", ".git/info/exclude", "~/.config/git/ignore"
    lines: tuple[str, ...]
    patterns: tuple[_Pattern, ...]
    # where at least one pattern might match (most paths ask no more): on the path, on its last
    # name, and for a directory on both with a slash
    maybe_path: re.Pattern[str] | None
    maybe_name: re.Pattern[str] | None
    maybe_dir_path: re.Pattern[str] | None
    maybe_dir_name: re.Pattern[str] | None

    def decide(self, sub: str, is_dir: bool) -> _Pattern | None:
        """The pattern that decides `sub` (relative to the file's base directory) here, or None
        if none matches it."""
        sub = for_regex(sub)
        name = sub.rpartition("/")[2]
        if not (
            _found(self.maybe_path, sub)
            or _found(self.maybe_name, name)
            or (
                is_dir and (_found(self.maybe_dir_path, sub + "/") or _found(self.maybe_dir_name, name + "/"))
            )
        ):
            return None
        for p in self.patterns:
            if p.hits(sub, name, is_dir):
                return p
        return None


def _found(regex: re.Pattern[str] | None, text: str) -> bool:
    return regex is not None and regex.search(text) is not None


_Hit = tuple[_Pattern, _Rules]  # the pattern that decides a path, and the file it is in


def _ignoring(hit: _Hit | None) -> _Hit | None:
    """`hit` if it ignores (a negation that decides means: not ignored)."""
    return hit if hit is not None and hit[0].ignores else None


def _parse(source: str, text: str) -> _Rules:
    text = text.removeprefix("\ufeff")
    # git drops a CR before each LF; pathspec strips unescaped trailing spaces, drops comments
    lines = tuple(line.removesuffix("\r") for line in text.split("\n"))
    patterns: list[_Pattern] = []
    for line in lines:
        try:
            spec = pathspec.GitIgnoreSpec.from_lines([line])
        except (ValueError, TypeError):
            continue  # git skips what it cannot parse, too
        for p in spec.patterns:
            include = getattr(p, "include", None)
            regex = getattr(p, "regex", None)
            if include is None or not isinstance(regex, re.Pattern) or not isinstance(regex.pattern, str):
                continue
            patterns.append(_pattern(regex, bool(include), line.strip()))
    patterns.reverse()

    def maybe(*, slashed: bool, on_name: bool) -> re.Pattern[str] | None:
        return _any(
            [r for p in patterns if p.on_name == on_name and (r := p.slashed if slashed else p.itself)]
        )

    return _Rules(
        source,
        lines,
        tuple(patterns),
        maybe(slashed=False, on_name=False),
        maybe(slashed=False, on_name=True),
        maybe(slashed=True, on_name=False),
        maybe(slashed=True, on_name=True),
    )


def _read(path: str) -> tuple[str | None, _Signature]:
    """The text of an ignore file and its signature; (None, None) when there is none."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(_MAX_RULES)
    except OSError:
        return None, None
    return data.decode("utf-8", "surrogateescape"), _signature_of(st)


def _signature(path: str) -> _Signature:
    try:
        return _signature_of(os.stat(path))
    except OSError:
        return None


def _signature_of(st: os.stat_result) -> _Signature:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def git_dir(top: str) -> str | None:
    """The git directory of the work tree at `top` (`.git`, or where a `.git` file points: a
    worktree or a submodule), or None if `top` is not the top of one."""
    dot_git = os.path.join(top, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, encoding="utf-8", errors="surrogateescape") as f:
            first = f.readline(4096).strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    return os.path.normpath(os.path.join(top, first.removeprefix("gitdir:").strip()))


def _common_dir(gdir: str) -> str:
    """Where `info/exclude` lives: a linked worktree's git directory names it in `commondir`."""
    try:
        with open(os.path.join(gdir, "commondir"), encoding="utf-8", errors="surrogateescape") as f:
            return os.path.normpath(os.path.join(gdir, f.readline().strip()))
    except OSError:
        return gdir


def find_top(path: str) -> str | None:
    """The top of the git work tree `path` is in (the nearest directory up with a `.git`), or None."""
    d = os.path.abspath(path)
    while True:
        if git_dir(d) is not None:
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def excludes_file(top: str) -> str:
    """`core.excludesFile` as git resolves it for this repository, or git's default."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "config", "--path", "--get", "core.excludesFile"],  # noqa: S607 (git from PATH, as a user runs it)
            cwd=top,
            capture_output=True,
            timeout=5,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        value = os.fsdecode(done.stdout).strip()
        if done.returncode == 0 and value:
            return os.path.join(top, os.path.expanduser(value))
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(xdg, "git", "ignore")


def _shown(path: str, top: str) -> str:
    """An ignore file as -v names it: relative to the top when inside, `~/...` under home."""
    if path.startswith(top + os.sep):
        return path[len(top) + 1 :]
    home = os.path.expanduser("~")
    if home != "/" and path.startswith(home + os.sep):
        return "~" + path[len(home) :]
    return path


class Repository:
    """Answers "does git ignore this path" for one work tree, and notices its rules changing.

    Called from the watcher's thread (for every event and every directory walked) and from the
    daemon's (refresh): one lock keeps the caches and the rules they came from together.
    """

    def __init__(self, top: str, *, global_excludes: str | None = None) -> None:
        self.top = top
        self._global = global_excludes if global_excludes is not None else excludes_file(top)
        self._lock = threading.Lock()
        self._files: dict[str, tuple[_Rules | None, _Signature]] = {}  # ignore file path -> rules
        self._outside: set[str] = set()  # ignore files no watched tree holds: refresh() stats them
        self._watched: list[str] = []  # directories (relative to the top) whose trees are watched
        self._nested: dict[str, bool] = {}  # directory -> is the top of a nested repository
        self._levels: dict[str, tuple[tuple[_Rules, str], ...]] = {}  # directory -> (rules, their base)
        self._verdicts: dict[tuple[str, bool], _Hit | None] = {}

    def rel(self, path: str) -> str | None:
        """`path` relative to the top, '' for the top, None outside the work tree."""
        return under(path, self.top)

    def watch(self, directory: str) -> None:
        """`directory`'s tree is watched: its .gitignore files reach changed(); those above it do not."""
        rel = self.rel(directory)
        if rel is not None:
            with self._lock:
                self._watched.append(rel)
                self._outside = {p for p in self._files if not self._inside_watched(p)}
                # read now the rules that apply at the top of the tree, not when its first event is
                # judged: that event may be the ignore file's own truncation, half-way through a save
                self._levels_for(rel)

    def ignored(self, path: str, *, is_dir: bool = False) -> bool:
        """True if git ignores `path` (absolute), or a directory it is in."""
        return self._deciding(path, is_dir) is not None

    def why(self, path: str, *, is_dir: bool = False) -> str | None:
        """For -v: "ignored by 'build/' in src/.gitignore", or None if git does not ignore it."""
        hit = self._deciding(path, is_dir)
        return None if hit is None else f"ignored by {hit[0].text!r} in {hit[1].source}"

    def changed(self, path: str) -> int | None:
        """A watcher saw `path` change: if it is an ignore file this repository reads and its
        rules are now different, take them and return when they changed (st_mtime_ns): watched
        trees need a rescan, and files changed since in directories ignored until now count."""
        if os.path.basename(path) != IGNORE_FILE or path not in self._files:
            return None
        with self._lock:
            return self._reload(path)

    def forget(self, directory: str) -> None:
        """`directory` was deleted or moved: what was read below it no longer holds (a move
        reports no event for the files inside it)."""
        rel = self.rel(directory)
        if rel is None:
            return
        inside = directory.rstrip(os.sep) + os.sep
        with self._lock:
            for path in [p for p in self._files if p.startswith(inside)]:
                del self._files[path]
                self._outside.discard(path)
            self._levels.clear()
            self._verdicts.clear()
            self._nested.clear()

    def refresh(self) -> int | None:
        """Re-read the ignore files no watched tree holds, if they changed; when rules did, the
        time they changed (as changed())."""
        with self._lock:
            stale = [p for p in self._outside if _signature(p) != self._files[p][1]]
            times = [t for t in [self._reload(p) for p in stale] if t is not None]
            return min(times) if times else None

    def _deciding(self, path: str, is_dir: bool) -> _Hit | None:
        rel = self.rel(path)
        if not rel:
            return None
        key = (rel, is_dir)
        try:
            return self._verdicts[key]  # one dict read is atomic: no lock for the usual case
        except KeyError:
            pass
        with self._lock:
            if len(self._verdicts) >= _VERDICTS_MAX:
                self._verdicts.clear()
            verdict = self._verdicts[key] = self._verdict(rel, is_dir)
            return verdict

    # ------------------------------------------------------------------ under the lock

    def _verdict(self, rel: str, is_dir: bool) -> _Hit | None:
        # each directory on the way down first: one that is ignored is not entered
        start = 0
        while True:
            slash = rel.find("/", start)
            if slash < 0:
                break
            parent = rel[:slash]
            key = (parent, True)
            if key in self._verdicts:
                hit = self._verdicts[key]
            else:
                hit = self._verdicts[key] = _ignoring(self._decide(parent, True))
            if hit is not None:
                return hit
            start = slash + 1
        return _ignoring(self._decide(rel, is_dir))

    def _decide(self, rel: str, is_dir: bool) -> _Hit | None:
        """The pattern (and its file) that decides `rel` itself, its parents aside."""
        for rules, base in self._levels_for(rel.rpartition("/")[0]):
            hit = rules.decide(rel[len(base) + 1 :] if base else rel, is_dir)
            if hit is not None:
                return hit, rules
        return None

    def _levels_for(self, directory: str) -> tuple[tuple[_Rules, str], ...]:
        """The ignore files that apply to the entries of `directory`, in the order git consults
        them, each with the directory its patterns are relative to: its own .gitignore, then
        its parent's levels, or at the top of a repository its info/exclude and the global file."""
        levels = self._levels.get(directory)
        if levels is not None:
            return levels
        own = self._rules(os.path.join(self.top, directory, IGNORE_FILE))
        found = [(own, directory)] if own is not None else []
        if directory == "" or self._is_nested_top(directory):
            gdir = git_dir(os.path.join(self.top, directory))
            if gdir is not None:
                exclude = self._rules(os.path.join(_common_dir(gdir), "info", "exclude"))
                if exclude is not None:
                    found.append((exclude, directory))
            excludes = self._rules(self._global)
            if excludes is not None:
                found.append((excludes, directory))
        else:
            found.extend(self._levels_for(directory.rpartition("/")[0]))
        levels = self._levels[directory] = tuple(found)
        return levels

    def _is_nested_top(self, d: str) -> bool:
        nested = self._nested.get(d)
        if nested is None:
            nested = self._nested[d] = os.path.lexists(os.path.join(self.top, d, ".git"))
        return nested

    def _rules(self, path: str) -> _Rules | None:
        """The rules of the ignore file at `path` (None if there is none), read once."""
        known = self._files.get(path)
        if known is None:
            known = self._files[path] = self._load(path)
            if not self._inside_watched(path):
                self._outside.add(path)
        return known[0]

    def _load(self, path: str) -> tuple[_Rules | None, _Signature]:
        text, sig = _read(path)
        return (None if text is None else _parse(_shown(path, self.top), text)), sig

    def _inside_watched(self, path: str) -> bool:
        """An ignore file inside a watched tree: the watcher reports its changes."""
        if os.path.basename(path) != IGNORE_FILE:
            return False
        rel = self.rel(os.path.dirname(path))
        if rel is None:
            return False
        return any(w in (rel, "") or rel.startswith(w + "/") for w in self._watched)

    def _reload(self, path: str) -> int | None:
        old = self._files.get(path, (None, None))[0]
        new = self._files[path] = self._load(path)
        if (old.lines if old else None) == (new[0].lines if new[0] else None):
            return None
        self._levels.clear()
        self._verdicts.clear()
        self._nested.clear()
        if new[1] is not None:
            return new[1][0]
        gone = _signature(os.path.dirname(path))  # deleting it changed its directory
        return gone[0] if gone is not None else time.time_ns()
