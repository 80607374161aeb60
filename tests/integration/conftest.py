"""Fixtures for the integration tests."""

from __future__ import annotations

from types import ModuleType

import pytest

import watchd.platform
from watchd.platform import darwin, linux


@pytest.fixture(params=[linux, darwin], ids=["linux", "darwin"])
def side(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Each side of the platform seam in turn as `watchd.platform.current`, for in-process tests:
    the Darwin side's process identity (psutil) runs here, on Linux, against the same real
    processes as the Linux side's (/proc, pidfd). Code reads `platform.current` at each call, so
    everything the test drives uses that side. (Not for tests that start watchd: a process of its
    own picks its side by sys.platform.)"""
    monkeypatch.setattr(watchd.platform, "current", request.param)
    module: ModuleType = request.param
    return module
