"""watchd as a Kubernetes sidecar: a ConfigMap volume updated exactly as the kubelet's atomic
writer does it, with both reload actions (an HTTP request, a signal to a pidfile's process)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers.changes import write_sentinel
from helpers.http import ReloadServer, serving
from helpers.procs import Recorder, Watchd, wait_for


def kubelet_update(volume: Path, payload: dict[str, str], *, remove_old: bool = True) -> Path | None:
    """One update of a ConfigMap volume, in the steps of the kubelet's AtomicWriter.Write; returns
    the old timestamped directory when `remove_old` is False (the caller removes it later)."""
    data = volume / "..data"
    old = volume / os.readlink(data) if data.is_symlink() else None
    # (5) a new timestamped directory, named as Go's os.MkdirTemp(dir, "..2006_01_02_15_04_05.")
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    ts_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=volume))
    # (6) the payload, written then chmod-ed
    for name, text in payload.items():
        (ts_dir / name).write_text(text)
        os.chmod(ts_dir / name, 0o644)
    os.chmod(ts_dir, 0o755)  # noqa: S103 (as the kubelet leaves it)
    # (7) ..data_tmp -> the new directory, (8) renamed over ..data
    tmp_link = volume / "..data_tmp"
    tmp_link.symlink_to(ts_dir.name)
    os.rename(tmp_link, data)
    # (9) the user-visible symlinks that do not exist yet
    for name in payload:
        if not (volume / name).is_symlink():
            (volume / name).symlink_to(f"..data/{name}")
    # (10) user-visible paths no longer in the payload
    for entry in volume.iterdir():
        if not entry.name.startswith("..") and entry.name not in payload:
            entry.unlink()
    # (11) the old timestamped directory
    if old is not None and remove_old:
        shutil.rmtree(old)
        return None
    return old


@contextmanager
def reload_counter(kind: str, tmp_path: Path) -> Iterator[tuple[str, Callable[[], int]]]:
    """(the watch's action lines, how many reloads the target has seen)."""
    if kind == "post":
        with serving(ReloadServer()) as server:
            yield f"    post: {server.url()}\n", server.count
    else:
        rec = Recorder(tmp_path)
        try:
            yield f"    pidfile: {rec.pidfile}\n", lambda: len(rec.signals())
        finally:
            rec.stop()


@pytest.mark.parametrize("watched", ["file", "directory", "directory-polled"])
@pytest.mark.parametrize("kind", ["post", "signal"])
def test_one_reload_per_kubelet_update_and_none_for_the_old_directory(
    kind: str, watched: str, tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    """Watching the file (`paths: [/etc/app/app.yaml]`) or the whole volume with a pattern
    (`paths: [/etc/app]`, `patterns: [app.yaml]`): the same reloads, named for the visible file."""
    volume = tmp_path / "etc-app"
    volume.mkdir()
    kubelet_update(volume, {"app.yaml": "version: 0\n", "other.yaml": "x: 1\n"})
    with reload_counter(kind, tmp_path) as (action, reloads):
        config = tmp_path / "watchd.yaml"
        # (`sentinel`, beside the volume's entries, ends the test: see below)
        if watched == "file":
            where = f"[{volume / 'app.yaml'}, {volume / 'sentinel'}]"
        else:
            where = f"[{volume}]\n    patterns: [app.yaml, sentinel]"
        if watched.endswith("polled"):
            where += "\n    poll: true\n    poll_interval: 100ms"
        config.write_text(f"watches:\n  app:\n    paths: {where}\n{action}")
        w = start_watchd(["--config", str(config)], cwd=tmp_path)
        for version in (1, 2, 3):
            kubelet_update(volume, {"app.yaml": f"version: {version}\n", "other.yaml": "x: 1\n"})
            assert wait_for(lambda v=version: reloads() == v, timeout=10), w.log()
        # the old directory removed long after the swap (a slow kubelet): not a change of app.yaml
        old = kubelet_update(volume, {"app.yaml": "version: 4\n", "other.yaml": "x: 1\n"}, remove_old=False)
        assert wait_for(lambda: reloads() == 4, timeout=10), w.log()
        assert old is not None
        shutil.rmtree(old)
        # an update of another key of the ConfigMap: app.yaml's content is the same
        kubelet_update(volume, {"app.yaml": "version: 4\n", "other.yaml": "x: 2\n"})
        # events come in order (one inotify queue, or one poll's scan): a wrong change of app.yaml
        # would be a reload before the sentinel's, or in its batch
        write_sentinel(volume / "sentinel")
        assert w.wait_log("app: etc-app/sentinel changed; ", timeout=10), w.log()
        assert wait_for(lambda: reloads() >= 5, timeout=10), w.log()
        assert reloads() == 5, w.log()
        assert (volume / "app.yaml").read_text() == "version: 4\n"
        assert w.alive()
        changed = [line for line in w.log().splitlines() if " changed; " in line]
        assert len(changed) == 5, w.log()
        assert all("app: etc-app/app.yaml changed; " in line for line in changed[:4]), w.log()
