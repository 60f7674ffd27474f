"""Real Prometheus and Alertmanager processes on 127.0.0.1, from Debian's `prometheus` and
`prometheus-alertmanager` packages (scripts/setup.sh installs them).

`Servers` starts them with a given configuration and stops them all: the demo's monitoring half
(stream/demo.py) and the monitoring tests (tests/monitoring/servers.py) both use it. The demo's
own configuration is built here too, from the project's files, never from hand-made copies:
monitoring/prometheus.yml pointed at the demo's worker and Alertmanager, the rules generated
from monitoring/config.yml (with shorter `for:` durations, said once on the screen), and
monitoring/alertmanager.yml's routing tree and inhibit rules with receivers that send nothing.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.settings import PROJECT_ROOT

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
PACKAGES = {PROMETHEUS: "prometheus", ALERTMANAGER: "prometheus-alertmanager"}
MONITORING = PROJECT_ROOT / "monitoring"
HOME = PROJECT_ROOT / "var" / "monitoring"
# The demo's copy of the alert rules: the KPI alerts hold for this long instead of config.yml's
# `for:` (15m), so that the degraded queue's alerts fire within the demo's first minutes.
DEMO_FOR = "1m"


class MissingBinary(RuntimeError):
    """A server's binary is not installed."""


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MissingBinary(
            f"{name} is missing: run scripts/setup.sh (Debian package {PACKAGES.get(name, name)})"
        )
    return found


def missing_binaries() -> list[str]:
    return [name for name in (PROMETHEUS, ALERTMANAGER) if shutil.which(name) is None]


def free_port(preferred: int = 0) -> int:
    """`preferred` when nothing listens on it on 127.0.0.1 (0: any free port)."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


@dataclass
class Servers:
    """Starts servers with their configuration, data and logs under `home`; `stop` ends them."""

    home: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    stopped: bool = False  # once stopped, nothing more starts (a start-up in another thread)

    def _run(self, args: list[str]) -> None:
        if self.stopped:
            raise OSError("stopped: not starting more servers")
        self.home.mkdir(parents=True, exist_ok=True)
        name = Path(args[0]).name
        self.names.append(name)
        with (self.home / f"{name}.log").open("ab") as log:
            self.processes.append(
                subprocess.Popen(
                    args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            )

    def _config(self, name: str, config: dict[str, Any]) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / name
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    def prometheus(self, config: dict[str, Any], port: int = 0, **flags: str) -> str:
        """Start Prometheus with `config` on `port` (0: a free one); its base URL."""
        args = [binary(PROMETHEUS)]  # before anything is written: a missing binary leaves none
        port = free_port(port)
        args += [
            f"--config.file={self._config('prometheus.yml', config)}",
            f"--storage.tsdb.path={self.home / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *(f"--{key}={value}" for key, value in flags.items()),
        ]
        self._run(args)
        return f"http://127.0.0.1:{port}"

    def alertmanager(self, config: dict[str, Any], port: int = 0) -> str:
        """Start Alertmanager with `config` on `port` (0: a free one); its base URL."""
        args = [binary(ALERTMANAGER)]
        port = free_port(port)
        args += [
            f"--config.file={self._config('alertmanager.yml', config)}",
            f"--storage.path={self.home / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port: one instance, nothing else bound
        ]
        self._run(args)
        return f"http://127.0.0.1:{port}"

    def exited(self) -> list[str]:
        """The servers that have stopped on their own, with their exit codes."""
        return [
            f"{name} (exit {p.returncode})"
            for p, name in zip(self.processes, self.names, strict=True)
            if p.poll() is not None
        ]

    def stop(self) -> list[int]:
        """Stop every server started here; the pids of those that were still running."""
        self.stopped = True
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return [p.pid for p in running]


def ready(base: str, timeout: float = 2.0) -> bool:
    """True once the server at `base` answers 200 on /-/ready."""
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def wait_ready(servers: Servers, bases: list[str], timeout: float = 60.0) -> None:
    """Return once every server answers /-/ready; OSError when one exits or time runs out."""
    deadline = time.monotonic() + timeout
    waiting = list(bases)
    while waiting:
        if servers.exited():
            raise OSError(f"{', '.join(servers.exited())}; see the logs in {servers.home}")
        waiting = [base for base in waiting if not ready(base)]
        if waiting and time.monotonic() > deadline:
            raise OSError(f"{', '.join(waiting)} not ready after {timeout:.0f} s")
        if waiting:
            time.sleep(0.5)


# --- the demo's configuration -------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def demo_rule_files(home: Path) -> list[Path]:
    """The recording and alert rules generated from monitoring/config.yml, the KPI alerts'
    `for:` set to DEMO_FOR, written under `home`."""
    from monitoring import generate
    from monitoring.config import load

    config = load().override(
        {"nps": {"for": DEMO_FOR}, "csat": {"for": DEMO_FOR}, "nps_drop": {"for": DEMO_FOR}}
    )
    note = f"# The demo's copy (stream/promstack.py): the KPI alerts' `for:` is {DEMO_FOR} here.\n"
    files = {
        home / "rules" / "cx.rules.yml": generate.rules_file(config),
        home / "rules" / "cx.alerts.yml": note + generate.alerts_file(config),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


def prometheus_config(
    rule_files: list[Path], worker_port: int, alertmanager: str
) -> dict[str, Any]:
    """monitoring/prometheus.yml (its intervals too) for one local worker and Alertmanager."""
    config: dict[str, Any] = load_yaml(MONITORING / "prometheus.yml")
    config["rule_files"] = [str(path) for path in rule_files]
    target = alertmanager.removeprefix("http://")
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [target]}]}]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{worker_port}"]}]
    return config


def alertmanager_config() -> dict[str, Any]:
    """monitoring/alertmanager.yml's routing tree and inhibit rules; its receivers keep their
    names but send nothing (their placeholders would only log errors): the alerts show in
    Alertmanager's UI."""
    config: dict[str, Any] = load_yaml(MONITORING / "alertmanager.yml")
    config["global"] = {"resolve_timeout": config.get("global", {}).get("resolve_timeout", "5m")}
    config["receivers"] = [{"name": receiver["name"]} for receiver in config["receivers"]]
    return config


def stack_notice(stack: Stack) -> str:
    """Where to look, and the one line that says how the demo's rules differ."""
    from monitoring.config import load

    shipped = load().nps.for_
    return (
        f"Prometheus: {stack.prometheus}/graph  Alertmanager: {stack.alertmanager}\n"
        f"alert rules: monitoring/config.yml's, with for: {DEMO_FOR} (not {shipped}) in this demo"
    )


@dataclass
class Stack:
    """The demo's running Prometheus and Alertmanager."""

    servers: Servers
    prometheus: str
    alertmanager: str


def start_stack(
    servers: Servers,
    worker_port: int,
    prometheus_port: int = 9090,
    alertmanager_port: int = 9095,  # docker-compose.yml's; 9093 is the local broker's controller
) -> Stack:
    """Alertmanager, then Prometheus scraping the worker on `worker_port`, each on its usual
    port when free (else any), configuration and data under `servers.home`; ready when this
    returns. MissingBinary when a binary is not installed; OSError when a server does not come
    up; ImportError when the monitoring package or its dependencies cannot be imported. The
    caller stops `servers`, whatever happened."""
    missing = missing_binaries()
    if missing:
        raise MissingBinary(f"{', '.join(missing)} missing (scripts/setup.sh)")
    rules = demo_rule_files(servers.home)
    alertmanager = servers.alertmanager(alertmanager_config(), alertmanager_port)
    prometheus = servers.prometheus(
        prometheus_config(rules, worker_port, alertmanager),
        prometheus_port,
        **{"storage.tsdb.retention.time": "8d"},
    )
    wait_ready(servers, [alertmanager, prometheus])
    return Stack(servers, prometheus, alertmanager)
