"""The HTTP surface: turns requests into calls on ``jobs`` and results into responses."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("binderhub-service")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
