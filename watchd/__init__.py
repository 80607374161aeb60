"""watchd: a file-watcher daemon that reloads servers and runs commands on change."""

# The single source of the version (pyproject.toml reads it). Not importlib.metadata: that
# costs a long-running daemon ~4.7 MiB of resident memory for one string.
__version__ = "0.1.0"

__all__ = ["__version__"]
