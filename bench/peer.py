"""(C) the Quix Streams peer: its own virtualenv, run as a subprocess, counts compared with A's.

Quix Streams lives in var/bench-venv (see bench/requirements-peer.txt for why not in .venv).
The venv is created on first use and rebuilt when the requirements file changes, under a file
lock so that two benchmark runs (say the smoke test and a manual run) do not build it at once.

    python -m bench.peer    # only create or refresh var/bench-venv
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from stream.settings import PROJECT_ROOT

REQUIREMENTS = PROJECT_ROOT / "bench" / "requirements-peer.txt"
VENV = PROJECT_ROOT / "var" / "bench-venv"
Counts = dict[tuple[str, str, str, int], int]


def peer_python() -> Path:
    """The peer venv's interpreter, (re)built when bench/requirements-peer.txt changed."""
    python = VENV / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".requirements-sha256"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with (VENV.parent / "bench-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == digest:
            return python
        shutil.rmtree(VENV, ignore_errors=True)
        # The base interpreter, not .venv's: the peer must not see the project's packages.
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(digest)
    return python


def run_peer(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    group: str,
    workdir: Path,
    windows: list[str],
    grace_seconds: float,
    timeout: float,
) -> tuple[dict[str, Any], Counts]:
    """Drain `topic` with bench/quix_peer.py in the peer venv; its result and its counts."""
    python = peer_python()
    output = workdir / "quix-result.json"
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        str(python), str(PROJECT_ROOT / "bench" / "quix_peer.py"), "--bootstrap", bootstrap,
        "--topic", topic, "--events", str(count), "--group", group,
        "--state-dir", str(workdir / "quix-state"), "--output", str(output),
        "--grace-seconds", str(grace_seconds), "--windows", *windows,
    ]  # fmt: skip
    with (workdir / "quix.log").open("wb") as log:
        done = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    if done.returncode != 0:
        tail = (workdir / "quix.log").read_text(errors="replace").splitlines()[-30:]
        raise RuntimeError("the Quix Streams peer failed:\n" + "\n".join(tail))
    result = json.loads(output.read_text())
    counts = {(c, q, w, int(b)): int(n) for c, q, w, b, n in result.pop("counts")}
    return result, counts


def compare(a: Counts, c: Counts) -> dict[str, Any]:
    """Whether C counted exactly what A counted, per (channel, queue, window, bucket)."""
    differ = [key for key in a.keys() | c.keys() if a.get(key, 0) != c.get(key, 0)]
    return {
        "counts_equal_A": not differ,
        "buckets": len(c),
        "buckets_differing": len(differ),
        "examples_differing": [[*key, a.get(key, 0), c.get(key, 0)] for key in sorted(differ)[:5]],
    }


if __name__ == "__main__":
    print(peer_python())
