"""A scripted HTTP server on 127.0.0.1 for download tests: each path answers as told, every
request is recorded (with headers), and a route can trickle its body a byte at a time."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["LoopbackServer", "Route", "loopback_server"]


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "image/png"})
    body: bytes = b""
    trickle_seconds: float = 0.0  # > 0: send one byte, then wait this long, and so on


@dataclass
class LoopbackServer:
    port: int
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]]  # (path, lower-case headers)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def loopback_server(routes: dict[str, Route] | None = None) -> Iterator[LoopbackServer]:
    server_state = LoopbackServer(port=0, routes=dict(routes or {}), requests=[])
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server_state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = server_state.routes.get(self.path.split("?")[0], Route(status=404))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if not route.trickle_seconds:
                self.wfile.write(route.body)
                return
            for byte in route.body:
                if stop.is_set():
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(route.trickle_seconds)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
