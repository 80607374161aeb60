"""A stand-in for macOS's `_scproxy` (the system proxy settings, from SystemConfiguration), which
urllib.request imports when sys.platform is "darwin" (see sitecustomize.py). It answers as a Mac
with no system proxy configured; the environment's *_proxy variables still come first."""

from __future__ import annotations


def _get_proxy_settings() -> dict[str, object]:
    return {"exclude_simple": False, "exceptions": []}


def _get_proxies() -> dict[str, str]:
    return {}
