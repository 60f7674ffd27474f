"""Real Prometheus and Alertmanager processes on 127.0.0.1, and a webhook receiver, for tests.

The servers are the demo's (stream/promstack.py): the binaries come from Debian's prometheus and
prometheus-alertmanager packages (scripts/setup.sh installs them); a missing one fails the test
(MissingBinary), it is never skipped.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stream.promstack import Servers

__all__ = ["Notification", "Receiver", "Servers", "api", "get", "wait_for"]


@dataclass
class Notification:
    path: str
    received: float
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body["status"])

    @property
    def group(self) -> dict[str, str]:
        return dict(self.body["groupLabels"])

    def summary(self) -> str:
        alerts = [
            {"status": a["status"], "labels": a["labels"], "annotations": a["annotations"]}
            for a in self.body["alerts"]
        ]
        shown = {"receiver": self.body["receiver"], "status": self.status, "groupLabels":
                 self.group, "alerts": alerts}  # fmt: skip
        return f"POST {self.path}\n{json.dumps(shown, indent=2, sort_keys=True)}"


class Receiver:
    """An Alertmanager webhook receiver on 127.0.0.1 that keeps every notification."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.notifications.append(Notification(self.path, time.time(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def matching(self, **group: str) -> list[Notification]:
        with self._lock:
            return [
                n
                for n in self.notifications
                if all(n.group.get(key) == value for key, value in group.items())
            ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def get(base: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{base}{path}{query}", timeout=10) as reply:
        return json.load(reply)


def api(base: str, path: str, **params: str) -> Any:
    """Prometheus' HTTP API: the `data` of a successful answer."""
    body = get(base, f"/api/v1/{path}", **params)
    assert body["status"] == "success", body
    return body["data"]


async def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """The first truthy result of `check`, polled every second (connection errors retried)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, AssertionError, KeyError, IndexError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout:.0f}s: {what or check}")
        await asyncio.sleep(1)
