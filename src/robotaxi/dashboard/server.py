"""Serving the replay page on a local port with the standard library's HTTP server.

The page is self-contained, so the server has one document to send; it binds to 127.0.0.1 by default because a
run's data is not meant for the network at large.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .replay_data import DashboardError

logger = logging.getLogger(__name__)


class ReplayServer(ThreadingHTTPServer):
    """A threading HTTP server that answers ``GET /`` with :attr:`page` (settable after the port is bound)."""

    daemon_threads = True
    page: bytes = b""

    def set_page(self, page: str) -> None:
        """The HTML document to serve."""
        self.page = page.encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    server: ReplayServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] not in ("/", "/index.html"):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.server.page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(self.server.page)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def make_server(page: str = "", *, host: str = "127.0.0.1", port: int = 8765) -> ReplayServer:
    """An HTTP server, bound but not yet serving, that answers ``GET /`` with ``page``.

    Raises
    ------
    DashboardError
        If the port is out of range or cannot be bound (in use, not permitted).
    """
    if not 0 <= port <= 65_535:
        raise DashboardError(f"--port: {port} is not a TCP port (0..65535; 0 picks a free one)")
    try:
        server = ReplayServer((host, port), _Handler)
    except OSError as e:
        raise DashboardError(f"cannot listen on {host}:{port}: {e.strerror or e}", hint="try another --port") from e
    server.set_page(page)
    return server
