"""Where builds run. One small interface (``base``), one implementation per place:
``local`` (repo2docker subprocesses) and ``kubernetes`` (a Job per build)."""

from .base import DurableExecutor, Executor, Note

__all__ = ["DurableExecutor", "Executor", "Note"]
