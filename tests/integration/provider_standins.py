"""Stand-ins for the content providers' APIs under their real host names (issue 25).

The test machines reach no provider. ``ProviderStandIn`` is one HTTPS server that
answers for every provider host (``zenodo.org``, ``api.figshare.com``, ``doi.org``, a
Dataverse, ...) with what a test puts in it, usually the recorded shapes of
tests/data/providers/, and records every URL asked; its certificate names all those
hosts and is signed by a test CA (``testkit.certs.server_for_names``). ``ConnectProxy``
is the forward proxy clients are pointed at (httpx's ``proxy=``, ``HTTPS_PROXY`` for
repo2docker's ``requests``): it tunnels ``CONNECT <host>:443`` for the stand-in's hosts
to the stand-in and refuses everything else, so nothing leaves the machine and no
resolver or ``/etc/hosts`` is changed (the machine is shared).
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testkit.certs import make_ca, server_for_names
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "providers"
Answer = tuple[int, dict[str, str], bytes]
HOLD_SECONDS = 300


def recorded(name: str) -> Any:
    """A recorded answer of tests/data/providers/, parsed."""
    return json.loads((DATA / f"{name}.json").read_text())


class ProviderStandIn:
    """An HTTPS server answering ``GET https://<host><path>[?query]`` from ``routes``
    (the full URL as key), 404 otherwise, and a POST as the GET of its URL; ``asked``
    lists every URL, in order (a POST's as ``POST <url>``). A URL
    ``held`` is answered only once its event is set (at most ``HOLD_SECONDS`` later); a
    URL ``queued`` is answered from its list first (``first``)."""

    def __init__(self, directory: Path, hosts: list[str]) -> None:
        make_ca(directory / "ca", "provider stand-ins CA")
        self.ca = directory / "ca" / "ca.pem"
        chain = server_for_names(directory / "server", directory / "ca", hosts, "standin")
        self.hosts = frozenset(hosts)
        self.routes: dict[str, Answer] = {}
        self.asked: list[str] = []
        self.held: dict[str, threading.Event] = {}
        self.queued: dict[str, list[Answer]] = {}
        self.lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, directory / "server" / "standin-key.pem")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def json(self, url: str, body: Any, status: int = 200) -> None:
        self.routes[url] = (status, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def content(self, url: str, body: bytes, content_type: str = "application/zip") -> None:
        self.routes[url] = (200, {"Content-Type": content_type}, body)

    def hold(self, url: str) -> threading.Event:
        """Answer ``url`` only once the returned event is set."""
        self.held[url] = threading.Event()
        return self.held[url]

    def redirect(self, url: str, to: str) -> None:
        self.routes[url] = (302, {"Location": to}, b"")

    def first(self, url: str, *answers: Answer) -> None:
        """Answer ``url``'s next requests with ``answers``, one each, in order; then
        from ``routes`` again."""
        self.queued[url] = list(answers)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = f"https://{self.headers.get('Host', '')}{self.path}"
                standin.asked.append(url if self.command == "GET" else f"{self.command} {url}")
                gate = standin.held.get(url)
                if gate is not None:
                    gate.wait(HOLD_SECONDS)
                with standin.lock:
                    queued = standin.queued.get(url)
                    answer = queued.pop(0) if queued else None
                status, headers, body = answer or standin.routes.get(
                    url, (404, {"Content-Type": "application/json"}, b'{"message": "not found"}')
                )
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # a POST (Software Heritage's vault) is answered as a GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class ConnectProxy:
    """A forward proxy on ``listen`` (the cluster test's: the node's address, which pods
    reach) that tunnels ``CONNECT host:443`` for ``hosts`` to ``127.0.0.1:target_port``,
    forwards plain-HTTP requests for a URL ``http://<origin>/...`` to that origin when
    ``origins`` holds it (``host:port``; as an egress proxy forwards ``GET http://...``,
    one request per connection), and answers 403 to anything else; ``refused`` lists
    what it refused (``host:port`` or the request line), ``tunnelled`` each tunnel as
    (client address, ``host:port``), ``forwarded`` each forwarded request as (client
    address, request line)."""

    hosts: frozenset[str]
    target_port: int
    listen: str = "127.0.0.1"
    origins: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.refused: list[str] = []
        self.tunnelled: list[tuple[str, str]] = []
        self.forwarded: list[tuple[str, str]] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self.server = socketserver.ThreadingTCPServer((self.listen, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.listen}:{self.port}"

    def _handle(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        target = rest.split(" ", 1)[0]
        if method != "CONNECT" and target.startswith("http://"):
            origin = target.removeprefix("http://").split("/", 1)[0]
            if origin in self.origins:
                self._forward(client, head, origin)
                return
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or port != "443" or host not in self.hosts:
            self.refused.append(target if method == "CONNECT" else f"{method} {target}")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.tunnelled.append((str(client.getpeername()[0]), target))
        with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _relay(client, upstream)

    def _forward(self, client: socket.socket, head: bytes, origin: str) -> None:
        """Send the request in ``head`` (and whatever follows it) to ``origin`` in origin
        form, with ``Connection: close``, and relay the answer."""
        line, _, rest = head.partition(b"\r\n")
        method, url, version = line.decode("latin-1").split(" ", 2)
        path = "/" + url.removeprefix("http://").partition("/")[2]
        self.forwarded.append((str(client.getpeername()[0]), f"{method} {url}"))
        headers = [
            h
            for h in rest.split(b"\r\n")
            if not h.lower().startswith((b"connection:", b"proxy-connection:", b"keep-alive:"))
        ]
        request = f"{method} {path} {version}\r\n".encode("latin-1")
        request += b"Connection: close\r\n" + b"\r\n".join(headers)
        host, _, port = origin.rpartition(":")
        with socket.create_connection((host, int(port))) as upstream:
            upstream.sendall(request)
            _relay(client, upstream)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _relay(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {one: other, other: one}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)
