"""A `python -m stream worker` subprocess with its own topics, state dir and web port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from stream.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Worker:
    bootstrap: str
    prefix: str
    data_dir: Path
    app_id: str
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    cwd: Path = PROJECT_ROOT  # the checkout whose `stream` package runs (bench/cores.py)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("WEB_PORT", "BROKER_URL")}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            CX_TOPIC_PREFIX=self.prefix,
            CX_APP_ID=self.app_id,
            CX_DATA_DIR=str(self.data_dir),
            CX_WEB_PORT=str(self.web_port),
            **self.extra_env,
        )
        return env

    def start(self, wait_for_partitions: int = 1, timeout: float = 90.0) -> Worker:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-{self.web_port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream", "worker", "-l", "info"],
            cwd=self.cwd,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.wait_assigned(wait_for_partitions, timeout)
        return self

    def health(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as reply:
                return dict(json.load(reply))
        except OSError:
            return None

    def readiness(self) -> dict[str, object]:
        """/healthz's body, ready or not (503 also says why), or the error reaching it."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as reply:
                return dict(json.load(reply))
        except urllib.error.HTTPError as error:
            try:
                return dict(json.load(error))
            except ValueError:
                return {"error": f"HTTP {error.code}"}
        except OSError as error:
            return {"error": type(error).__name__}

    def wait_assigned(self, partitions: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_tail()}")
            health = self.health()
            if health is not None and len(health.get("assigned", [])) >= partitions:  # type: ignore[arg-type]
                return
            time.sleep(0.3)
        raise TimeoutError(f"worker not assigned within {timeout}s:\n{self.log_tail()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): no heartbeat, no fetch, no work until `resume`."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a process frozen by `pause` (SIGCONT; harmless on a running one)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()  # a stopped process would not act on SIGTERM
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
