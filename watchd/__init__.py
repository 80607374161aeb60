"""watchd: a file-watcher daemon that reloads servers and runs commands on change."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("watchd")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
