"""deliver: one backend event -> the changes each watch of a root cares about, as a table.

Two watches share the tree root /srv/app: PY (`*.py`, ignoring build/) and DOCS (`*.md`, with
ignore_directories); a third, CONF, names the single file /srv/etc/app.yaml (a root that is not
recursive). The roots exist only here: nothing is read from disk."""

from __future__ import annotations

import pytest

from watchd.changes import Change, ChangeKind, Uncounted
from watchd.matching import Matcher
from watchd.watching import Root, Subscription, _Target, deliver

PY, DOCS, CONF = 1, 2, 3
C, M, D, MV = ChangeKind.CREATED, ChangeKind.MODIFIED, ChangeKind.DELETED, ChangeKind.MOVED
A, E = "/srv/app", "/srv/etc"


def tree_root() -> Root:
    root = Root(0, A, recursive=True, poll=False, poll_interval=0.0)
    py = Subscription(PY, "py", A, Matcher(["*.py"], ["build/"], ignore_defaults=False))
    docs = Subscription(DOCS, "docs", A, Matcher(["*.md"], ignore_defaults=False), ignore_directories=True)
    root.targets = [_Target(py, None), _Target(docs, None)]
    return root


def file_root() -> Root:
    root = Root(1, E, recursive=False, poll=False, poll_interval=0.0)
    conf = Subscription(CONF, "conf", f"{E}/app.yaml", Matcher(ignore_defaults=False))
    root.targets = [_Target(conf, "app.yaml")]
    return root


Out = tuple[int, Change | Uncounted]
Why = tuple[int, str, bool, str | None]

CASES: list[tuple[str, Root, tuple[str, str, str | None, bool], list[Out], list[Why]]] = [
    # name, root, (kind, src, dest, is_dir), what the sink gets, what -v's explain gets
    (
        "a file created: the watch it matches counts it; to the other it is uncounted (and why)",
        tree_root(),
        ("created", f"{A}/x.py", None, False),
        [(PY, Change(C, f"{A}/x.py")), (DOCS, Uncounted(f"{A}/x.py"))],
        [(DOCS, f"{A}/x.py", False, None)],
    ),
    (
        "a file that no pattern counts keeps both watches' batches open (uncounted)",
        tree_root(),
        ("modified", f"{A}/notes.txt", None, False),
        [(PY, Uncounted(f"{A}/notes.txt")), (DOCS, Uncounted(f"{A}/notes.txt"))],
        [(PY, f"{A}/notes.txt", False, None), (DOCS, f"{A}/notes.txt", False, None)],
    ),
    (
        "ignored by one watch (build/): nothing for it, not even uncounted",
        tree_root(),
        ("modified", f"{A}/build/x.py", None, False),
        [(DOCS, Uncounted(f"{A}/build/x.py"))],
        [(PY, f"{A}/build/x.py", False, None), (DOCS, f"{A}/build/x.py", False, None)],
    ),
    (
        "a directory created or modified is no change (its files are)",
        tree_root(),
        ("created", f"{A}/pkg", None, True),
        [],
        [],
    ),
    (
        "a file deleted",
        tree_root(),
        ("deleted", f"{A}/README.md", None, False),
        [(PY, Uncounted(f"{A}/README.md")), (DOCS, Change(D, f"{A}/README.md"))],
        [(PY, f"{A}/README.md", False, None)],
    ),
    (
        "a directory deleted counts, but not for a watch that ignores directories",
        tree_root(),
        ("deleted", f"{A}/pkg", None, True),
        [(PY, Change(D, f"{A}/pkg", None, True))],
        [(DOCS, f"{A}/pkg", True, None)],
    ),
    (
        "the root itself deleted: every tree watch that counts directories hears it",
        tree_root(),
        ("deleted", A, None, True),
        [(PY, Change(D, A, None, True))],
        [],
    ),
    (
        "moved, both sides counted: moved",
        tree_root(),
        ("moved", f"{A}/a.py", f"{A}/b.py", False),
        [(PY, Change(MV, f"{A}/a.py", f"{A}/b.py")), (DOCS, Uncounted(f"{A}/b.py"))],
        [],
    ),
    (
        "moved out of view (into an ignored directory): deleted",
        tree_root(),
        ("moved", f"{A}/a.py", f"{A}/build/a.py", False),
        [(PY, Change(D, f"{A}/a.py")), (DOCS, Uncounted(f"{A}/build/a.py"))],
        [],
    ),
    (
        "moved into view (an editor's temporary file saved over its name): created",
        tree_root(),
        ("moved", f"{A}/.a.py.swx", f"{A}/a.py", False),
        [(PY, Change(C, f"{A}/a.py")), (DOCS, Uncounted(f"{A}/a.py"))],
        [],
    ),
    (
        "a directory moved into view: no change of its own (its files report themselves)",
        tree_root(),
        ("moved", f"{A}/build/pkg", f"{A}/pkg", True),
        [],
        [],
    ),
    (
        "a single file's watch hears only its file",
        file_root(),
        ("modified", f"{E}/app.yaml", None, False),
        [(CONF, Change(M, f"{E}/app.yaml"))],
        [],
    ),
    (
        "... and nothing of its neighbours (not even -v)",
        file_root(),
        ("modified", f"{E}/other.yaml", None, False),
        [],
        [],
    ),
    (
        "... saved by a rename onto it: created",
        file_root(),
        ("moved", f"{E}/.app.yaml.tmp", f"{E}/app.yaml", False),
        [(CONF, Change(C, f"{E}/app.yaml"))],
        [],
    ),
    ("... its directory deleted is not its deletion", file_root(), ("deleted", E, None, True), [], []),
]


@pytest.mark.parametrize(
    ("root", "event", "sunk", "explained"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_deliver(
    root: Root, event: tuple[str, str, str | None, bool], sunk: list[Out], explained: list[Why]
) -> None:
    got: list[Out] = []
    why: list[Why] = []
    kind, src, dest, is_dir = event
    deliver(
        root,
        lambda key, change: got.append((key, change)),
        kind,
        src,
        dest,
        is_dir=is_dir,
        explain=lambda *args: why.append(args),
    )
    assert got == sunk
    assert why == explained
