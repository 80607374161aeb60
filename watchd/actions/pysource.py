"""Python source files: which ones a batch changed, compiling them in-process, their bytecode.

`check: python` compiles the batch's changed `.py` files with `compile()`, as the interpreter
does on import, and reports what it would print: no new process, no interpreter start (a
`python3 -m compileall` check costs ~100-200 ms before every reload; this costs ~1 ms per file).
It checks syntax with watchd's own Python. Bytecode: a `.pyc` is validated by its source's
size and whole-second mtime, so the timestamp-checked ones of changed sources are removed
before a new app or worker imports them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from watchd.changes import Batch, ChangeKind
from watchd.matching import Matcher
from watchd.paths import under
from watchd.watching import files_below

SUFFIX = ".py"
# compile() holds the GIL for the whole file (a 3.8 MB generated module: 3.8 s, with every other
# thread of watchd stopped): bigger files are not checked in-process (a command check can)
MAX_SOURCE = 1024 * 1024
_OPT_LEVEL = re.compile(r"\.opt-\d+$")  # app.cpython-311.opt-1.pyc: the optimization level
# compile() may warn (an invalid escape sequence): the interpreter would print that on import,
# watchd must not print it on its own stderr. warnings' filters are global: one check at a time.
_QUIET = threading.Lock()


@dataclass(frozen=True, slots=True)
class Failure:
    """A source that does not compile: its path and the lines the interpreter would print."""

    path: str
    error: str  # "SyntaxError"
    lines: tuple[str, ...]


class Sources:
    """The `.py` files a batch changed, for a watch with these roots and this matcher.

    A changed file counts if it still is a regular file; a directory that appeared, moved in or
    was rescanned (events were lost) brings every `.py` file below it that the watch counts.
    """

    def __init__(self, roots: tuple[Path, ...], matcher: Matcher) -> None:
        self.roots = tuple(str(r) for r in roots)
        self.matcher = matcher

    def of(self, batch: Batch) -> Iterator[str]:
        seen: set[str] = set()
        for c in batch.changes:
            if c.kind is ChangeKind.DELETED:
                continue
            path = c.dest or c.path
            # a directory moved in, or a whole tree whose events were lost: its files
            found = self._below(path) if c.is_dir else iter((path,) if path.endswith(SUFFIX) else ())
            for p in found:
                if p not in seen:
                    seen.add(p)
                    yield p

    def _below(self, top: str) -> Iterator[str]:
        for root in self.roots:
            if under(top, root) is not None:
                yield from (p for p in files_below(top, root, self.matcher) if p.endswith(SUFFIX))
                return


class Unreadable(Exception):
    """A source watchd may not read (its mode, an I/O error)."""


class TooBig(Exception):
    """A source over MAX_SOURCE: not compiled in-process."""


def read_source(path: str) -> bytes | None:
    """The file's bytes, or None if it is not a regular file (now): gone, a directory, a FIFO
    (never blocks). Unreadable when it cannot be read or is over MAX_SOURCE."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP, errno.ENXIO):
            return None
        raise Unreadable(exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > MAX_SOURCE:
            raise TooBig(f"{st.st_size / 1e6:.1f} MB")
        with open(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError as exc:
        raise Unreadable(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def compile_source(path: str, source: bytes) -> Failure | None:
    """None if `source` compiles, else what `python path` would print about it."""
    import warnings  # noqa: PLC0415 (only when a check runs)

    try:
        with _QUIET, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        # SyntaxError covers IndentationError and TabError; ValueError: null bytes (3.11);
        # RecursionError, MemoryError: nested too deep for the compiler
        error: Exception = exc
    else:
        return None
    text = "".join(traceback.format_exception_only(type(error), error)).splitlines()
    lines = [line for line in text if line.strip()]
    if not lines[0].lstrip().startswith("File "):  # no position: name the file anyway
        lines.insert(0, f'  File "{path}"')
    return Failure(path, type(error).__name__, tuple(lines))


@dataclass
class Compiled:
    """What compile_all found: files compiled, those that failed, those too big to compile."""

    count: int = 0
    failures: list[Failure] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, its size)


def compile_all(paths: Iterator[str], cancel: threading.Event) -> Compiled:
    """Compile each file. Stops early when `cancel` is set."""
    done = Compiled()
    for path in paths:
        if cancel.is_set():
            break
        try:
            source = read_source(path)
        except TooBig as exc:
            done.skipped.append((path, str(exc)))
            continue
        except Unreadable as exc:
            done.failures.append(Failure(path, "unreadable", (f'  File "{path}"', f"cannot read it: {exc}")))
            continue
        if source is None:
            continue
        done.count += 1
        failure = compile_source(path, source)
        if failure is not None:
            done.failures.append(failure)
    return done


def invalidate_bytecode(paths: tuple[str, ...] | list[str]) -> None:
    """Remove the cached bytecode of the changed .py files before the next app imports them.

    A .pyc is validated by its source's size and mtime in whole seconds: two saves of the same
    size within one second (v1 -> v2) would otherwise start the new app on the old code. Only
    the timestamp-checked files of the changed sources go; the app's next import rewrites them.
    Each `__pycache__` is read once, however many of its sources changed (a checkout of 5,000
    files costs one directory read per directory, not a glob per file).
    """
    stems: dict[str, set[str]] = {}
    for path in paths:
        if path.endswith(SUFFIX):
            directory, _, name = path.rpartition(os.sep)
            stems.setdefault(directory, set()).add(name[: -len(SUFFIX)])
    for directory, changed in stems.items():
        cache = os.path.join(directory, "__pycache__")
        try:
            with os.scandir(cache) as it:
                names = [e.name for e in it if e.name.endswith(".pyc")]
        except OSError:
            continue  # no bytecode cached here
        for name in names:
            # "app.cpython-311.pyc", "app.cpython-311.opt-1.pyc": the stem is up to the tag
            stem = _OPT_LEVEL.sub("", name[: -len(".pyc")]).rsplit(".", 1)[0]
            if stem in changed:
                pyc = os.path.join(cache, name)
                if _timestamp_checked(pyc):
                    with contextlib.suppress(OSError):
                        os.unlink(pyc)


def _timestamp_checked(pyc: str) -> bool:
    """Whether a .pyc is validated by mtime (PEP 552 flags 0), not by its source's hash."""
    try:
        with open(pyc, "rb") as f:
            header = f.read(8)
    except OSError:
        return False
    return len(header) == 8 and int.from_bytes(header[4:8], "little") == 0
