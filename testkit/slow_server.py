"""An HTTP server that takes its time: a stand-in for a hub API (or anything reached
over HTTP) that is up but answers slowly, or not at all, as a hub at the start of a
class does. It accepts every connection and reads the request; it answers 200 with
``body`` after ``delay`` seconds, or never while ``delay`` is None. Counts requests.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class SlowServer:
    host: str = "127.0.0.1"
    delay: float | None = None
    body: bytes = b"{}"
    requests: int = 0
    paths: list[str] = field(default_factory=list)
    _socket: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self._socket is not None
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SlowServer:
        self._socket = socket.create_server((self.host, 0))
        self._socket.settimeout(0.2)
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        if self._socket is not None:
            self._socket.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(0.2)
            request = b""
            while b"\r\n\r\n" not in request and not self._stop.is_set():
                try:
                    chunk = connection.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                request += chunk
            if self._stop.is_set():
                return
            self.requests += 1
            self.paths.append(request.split(b" ", 2)[1].decode(errors="replace"))
            # hold the connection open, answering after the delay (or never)
            if self._stop.wait(self.delay):
                return
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
            )
            with contextlib.suppress(OSError):  # the client may have given up
                connection.sendall(head.encode() + self.body)
