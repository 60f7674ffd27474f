"""A small HTTP server on 127.0.0.1 that answers GET requests with fixed or computed bodies: a
stand-in for a worker's /healthz or /metrics, or Prometheus' API, in tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = tuple[int, object]  # (HTTP status, body): a str is sent as text, anything else as JSON


class FakeServer:
    """path -> Answer, or a callable giving one at each request (404 for other paths), whatever
    the query; every requested path and query is recorded in `queries`."""

    def __init__(self, answers: dict[str, Answer | Callable[[], Answer]]) -> None:
        self.answers = answers
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.queries.append(self.path)
                path = self.path.partition("?")[0]
                found = fake.answers.get(path, (404, {"error": "not found"}))
                status, body = found() if callable(found) else found
                text = isinstance(body, str)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
