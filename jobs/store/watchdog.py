"""A thread that makes a PostgreSQL call still waiting past its deadline fail, by shutting
down its connection's socket: a server that accepts connections but does not answer
(stopped, or a network that drops packets) must not hold a caller until TCP gives up
(``jobs.store.postgres``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

WATCHDOG_TICK = 0.1
"""Seconds between two looks at the deadlines."""


class Watchdog:
    """Shuts down the socket of a connection whose call passed its deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[int, tuple[psycopg.Connection[Any], float]] = {}
        self.fired: set[int] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="postgres-watchdog", daemon=True)
        self._thread.start()

    @contextmanager
    def watch(self, conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
        key = id(conn)
        with self._lock:
            self._deadlines[key] = (conn, time.monotonic() + seconds)
        try:
            yield
        finally:
            with self._lock:
                self._deadlines.pop(key, None)

    def took(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether the watchdog shut ``conn``'s socket down (once: it forgets it)."""
        with self._lock:
            if id(conn) in self.fired:
                self.fired.discard(id(conn))
                return True
            return False

    def _run(self) -> None:
        while not self._stopping.wait(WATCHDOG_TICK):
            now = time.monotonic()
            with self._lock:
                late = [(k, c) for k, (c, at) in self._deadlines.items() if at < now]
                for key, _ in late:
                    del self._deadlines[key]
                    self.fired.add(key)
            for _, conn in late:
                shut_down(conn)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def shut_down(conn: psycopg.Connection[Any]) -> None:
    """Make a call waiting on ``conn`` fail now: its socket is shut down (a copy of
    the descriptor, so libpq's own stays valid until it closes it)."""
    try:
        fd = os.dup(conn.pgconn.socket)
    except (OSError, psycopg.Error):
        return
    with socket.socket(fileno=fd) as sock, suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
