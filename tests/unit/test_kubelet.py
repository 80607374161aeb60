"""A ConfigMap / Secret volume's symlink swap, decided from a listing given as a table.

The kubelet's AtomicWriter writes the payload into a new timestamped directory, makes a symlink
`..data_tmp` to it, renames that over `..data`, makes the visible symlinks of new keys
(`app.yaml -> ..data/app.yaml`), removes those of keys gone, and removes the old timestamped
directory. `VolumeTable` below is such a directory as a table; each step changes it and gives the
event a watcher reports for it, and `volume_event` says what it means."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from watchd.paths import under
from watchd.watching import (
    KUBELET_DATA,
    VolumeStep,
    link_entries,
    relinked,
    volume_event,
    volume_files,
)

D = "/etc/config"


@dataclass(frozen=True)
class Link:
    target: str


DIR = object()  # a directory's entry in the table

Entry = bytes | Link | object  # a file's content, a symlink, or DIR


@dataclass
class VolumeTable:
    """A directory as a table: path relative to it -> content, Link or DIR. The digest of a file
    is its content (any digest that tells contents apart will do)."""

    tree: dict[str, Entry] = field(default_factory=dict)
    directory: str = D

    def _resolve(self, rel: str, *, last: bool = True, depth: int = 0) -> str | None:
        """`rel` with its links followed (the last component's too, if `last`); None if it
        leads out of the directory, or round in circles."""
        parts = rel.split("/")
        cur = ""
        for i, part in enumerate(parts):
            cur = os.path.normpath(os.path.join(cur, part))
            if cur == ".." or cur.startswith(("../", "/")):
                return None
            entry = self.tree.get(cur)
            if isinstance(entry, Link) and (last or i < len(parts) - 1):
                if depth >= 40:
                    return None
                target = entry.target
                followed = (
                    under(target, self.directory)
                    if target.startswith("/")
                    else os.path.normpath(os.path.join(os.path.dirname(cur), target))
                )
                resolved = self._resolve(followed, depth=depth + 1) if followed is not None else None
                if resolved is None:
                    return None
                cur = resolved
        return cur

    def _rel(self, path: str) -> str:
        rel = under(path, self.directory)
        assert rel, path
        return rel

    def names(self) -> list[str]:
        return [p for p in self.tree if "/" not in p]

    def readlink(self, path: str) -> str | None:
        rel = self._resolve(self._rel(path), last=False)
        entry = self.tree.get(rel) if rel is not None else None
        return entry.target if isinstance(entry, Link) else None

    def is_file(self, path: str) -> bool:
        rel = self._resolve(self._rel(path))
        return rel is not None and isinstance(self.tree.get(rel), bytes)

    def digest(self, path: str) -> bytes | None:
        rel = self._resolve(self._rel(path))
        content = self.tree.get(rel) if rel is not None else None
        return content if isinstance(content, bytes) else None


def volume(stamp: str, payload: dict[str, bytes]) -> VolumeTable:
    """A volume as the kubelet leaves it after writing `payload` in directory ..`stamp`."""
    table = VolumeTable()
    table.tree[f"..{stamp}"] = DIR
    for key, content in payload.items():
        table.tree[f"..{stamp}/{key}"] = content
        table.tree[key] = Link(f"..data/{key}")
    table.tree[KUBELET_DATA] = Link(f"..{stamp}")
    return table


# ------------------------------------------------------------------ AtomicWriter's steps
# each changes the table and returns the events a watcher reports for it, as (kind, src, dest)

Event = tuple[str, str, str | None]


def write_payload(table: VolumeTable, stamp: str, payload: dict[str, bytes]) -> list[Event]:
    table.tree[f"..{stamp}"] = DIR
    events: list[Event] = []
    for key, content in payload.items():
        table.tree[f"..{stamp}/{key}"] = content
        events.append(("created", f"{D}/..{stamp}/{key}", None))  # (a poll sees these; inotify prunes ..)
    return events


def link_tmp(table: VolumeTable, stamp: str) -> list[Event]:
    table.tree["..data_tmp"] = Link(f"..{stamp}")
    return [("created", f"{D}/..data_tmp", None)]


def swap(table: VolumeTable) -> list[Event]:
    table.tree[KUBELET_DATA] = table.tree.pop("..data_tmp")
    return [("moved", f"{D}/..data_tmp", f"{D}/{KUBELET_DATA}")]


def link_visible(table: VolumeTable, *keys: str) -> list[Event]:
    for key in keys:
        table.tree[key] = Link(f"..data/{key}")
    return [("created", f"{D}/{key}", None) for key in keys]


def unlink_visible(table: VolumeTable, *keys: str) -> list[Event]:
    for key in keys:
        del table.tree[key]
    return [("deleted", f"{D}/{key}", None) for key in keys]


def remove_old(table: VolumeTable, stamp: str) -> list[Event]:
    for path in [p for p in table.tree if p == f"..{stamp}" or p.startswith(f"..{stamp}/")]:
        del table.tree[path]
    return [("deleted", f"{D}/..{stamp}", None)]


Step = Callable[[], list[Event]]  # one of AtomicWriter's steps: changes the table, says what a watcher saw


def update(table: VolumeTable, old: str, new: str, payload: dict[str, bytes]) -> list[Step]:
    """AtomicWriter.Write, for a volume that has `old` as its data: every step, in order."""
    before = {k for k in table.names() if not k.startswith("..")}
    return [
        lambda: write_payload(table, new, payload),
        lambda: link_tmp(table, new),
        lambda: swap(table),
        lambda: link_visible(table, *sorted(payload.keys() - before)),
        lambda: unlink_visible(table, *sorted(before - payload.keys())),
        lambda: remove_old(table, old),
    ]


def run(table: VolumeTable, files: dict[str, bytes | None], steps: list[Step]) -> list[tuple[str, ...]]:
    """Each step, and then each of its events through volume_event: what is left to report as a
    change of its own ("pass", with its kind and name), and the visible files a swap changed
    ("modified", ...)."""
    out: list[tuple[str, ...]] = []
    for step in steps:
        for kind, src, dest in step():
            seen = volume_event(files, table, kind, src, dest)
            files = seen.volume
            if not seen.handled:
                out.append(("pass", kind, os.path.basename(src)))
            if seen.changed:
                out.append(("modified", *seen.changed))
    assert files == volume_files(table)  # what it knows is what is there
    return out


V1 = {"app.yaml": b"port: 1", "db.yaml": b"host: a"}


def test_the_listing_of_a_volume_and_of_any_other_directory() -> None:
    assert volume_files(volume("2026_01_01", V1)) == {"app.yaml": b"port: 1", "db.yaml": b"host: a"}
    assert volume_files(VolumeTable({"app.yaml": b"x"})) is None  # no ..data: not a volume
    assert volume_files(VolumeTable({KUBELET_DATA: DIR, "app.yaml": b"x"})) is None  # ..data not a link


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {"app.yaml": b"port: 2", "db.yaml": b"host: a"},
            [("modified", "app.yaml")],
            id="one key changed: that file is modified, once, at the swap",
        ),
        pytest.param(
            {"app.yaml": b"port: 2", "db.yaml": b"host: b"},
            [("modified", "app.yaml", "db.yaml")],
            id="two keys changed",
        ),
        pytest.param(
            dict(V1),
            [],
            id="the same content again: no change at all",
        ),
        pytest.param(
            {**V1, "cache.yaml": b"ttl: 5"},
            [("pass", "created", "cache.yaml")],
            id="a key added: its visible file is created, when its link is made",
        ),
        pytest.param(
            {"app.yaml": b"port: 1"},
            [("pass", "deleted", "db.yaml")],
            id="a key removed: its visible file is deleted, when its link goes",
        ),
    ],
)
def test_an_atomic_writer_update(payload: dict[str, bytes], expected: list[tuple[str, ...]]) -> None:
    table = volume("2026_01_01", V1)
    files = volume_files(table)
    assert files is not None
    assert run(table, files, update(table, "2026_01_01", "2026_01_02", payload)) == expected


def test_the_first_write_of_a_volume_watched_empty() -> None:
    """Watched while the kubelet writes it the first time: ..data appears (no old directory to
    remove), and then each visible file, which is a creation like any other."""
    table = VolumeTable({KUBELET_DATA: Link("..0")})  # (a volume known as such, with nothing yet)
    steps: list[Step] = [
        lambda: write_payload(table, "2026_01_01", V1),
        lambda: link_tmp(table, "2026_01_01"),
        lambda: swap(table),
        lambda: link_visible(table, "app.yaml", "db.yaml"),
    ]
    assert run(table, {}, steps) == [("pass", "created", "app.yaml"), ("pass", "created", "db.yaml")]


def test_two_updates_in_a_row_each_count_once() -> None:
    table = volume("2026_01_01", V1)
    files = volume_files(table)
    assert files is not None
    steps = update(table, "2026_01_01", "2026_01_02", {**V1, "app.yaml": b"port: 2"})
    steps += update(table, "2026_01_02", "2026_01_03", {**V1, "app.yaml": b"port: 3"})  # (the same keys)
    assert run(table, files, steps) == [("modified", "app.yaml"), ("modified", "app.yaml")]


@pytest.mark.parametrize(
    ("kind", "content", "handled", "known"),
    [
        ("modified", b"port: 1", True, b"port: 1"),  # its link leads to a new copy of the same content
        ("created", b"port: 1", True, b"port: 1"),
        ("deleted", b"port: 1", True, b"port: 1"),  # (polling: deleted and created again)
        ("modified", b"port: 2", False, b"port: 2"),  # new content: a change like any other
        ("deleted", b"port: 2", False, b"port: 1"),  # a deletion leaves what is known as it was
    ],
)
def test_a_poll_of_a_visible_file_counts_only_new_content(
    kind: str, content: bytes, handled: bool, known: bytes
) -> None:
    table = volume("2026_01_02", {"app.yaml": content})
    step = volume_event({"app.yaml": b"port: 1"}, table, kind, f"{D}/app.yaml", None)
    assert step == VolumeStep(handled, {"app.yaml": known})


def test_a_plain_file_of_a_volume_is_a_change_like_any_other() -> None:
    table = volume("2026_01_01", V1)
    table.tree["notes.txt"] = b"hi"
    step = volume_event({"app.yaml": b"port: 1"}, table, "modified", f"{D}/notes.txt", None)
    assert step == VolumeStep(False, {"app.yaml": b"port: 1"})


# ------------------------------------------------------------------ a single file reached through links


@pytest.mark.parametrize(
    ("tree", "name", "entries"),
    [
        (
            {"app.yaml": Link("..data/app.yaml"), KUBELET_DATA: Link("..1"), "..1/app.yaml": b""},
            "app.yaml",
            {"..data"},
        ),
        ({"app.yaml": b""}, "app.yaml", set()),  # not a link
        (
            {"app.yaml": Link("current.yaml"), "current.yaml": Link("..data/app.yaml")},
            "app.yaml",
            {"current.yaml", "..data"},
        ),
        ({"app.yaml": Link(f"{D}/..data/app.yaml")}, "app.yaml", {"..data"}),  # absolute, into the directory
        ({"app.yaml": Link("/srv/app.yaml")}, "app.yaml", set()),  # out of it
        ({"app.yaml": Link("../other/app.yaml")}, "app.yaml", set()),
        ({"a": Link("b"), "b": Link("a")}, "a", {"a", "b"}),  # a loop ends
    ],
)
def test_the_entries_a_file_is_reached_through(tree: dict[str, Entry], name: str, entries: set[str]) -> None:
    assert link_entries(VolumeTable(tree), name) == entries


def test_a_single_file_changes_with_its_links_only_if_its_content_did() -> None:
    table = volume("2026_01_01", V1)
    links = link_entries(table, "app.yaml")
    digest = table.digest(f"{D}/app.yaml")
    assert relinked(table, "app.yaml", links, digest, {"..data_tmp"}) is None  # not its links
    for step in update(table, "2026_01_01", "2026_01_02", {**V1, "db.yaml": b"host: b"}):
        step()
    assert relinked(table, "app.yaml", links, digest, {"..data_tmp", "..data"}) == (links, digest, False)
    for step in update(table, "2026_01_02", "2026_01_03", {**V1, "app.yaml": b"port: 9"}):
        step()
    assert relinked(table, "app.yaml", links, digest, {"..data"}) == (links, b"port: 9", True)
    assert relinked(table, "app.yaml", frozenset(), digest, {"..data"}) is None  # a plain file
