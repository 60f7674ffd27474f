"""(C) the Quix Streams and (E) the Pathway peers: own virtualenvs, run as subprocesses.

Quix Streams lives in var/bench-venv (see bench/requirements-peer.txt for why not in .venv),
Pathway in var/bench-venv-pathway (bench/requirements-pathway.txt: apart from Quix Streams so
that the smoke test, which runs C but not E, never installs Pathway's 1.6 GB). Each venv is
created on first use and rebuilt when its requirements file changes, under a file lock so that
two benchmark runs (say the smoke test and a manual run) do not build it at once. The Kafka
Streams peer (bench/kstreams_peer.py) shares the build lock and the result reader.

    python -m bench.peer [--pathway]   # only create or refresh var/bench-venv (or the Pathway one)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.settings import PROJECT_ROOT

REQUIREMENTS = PROJECT_ROOT / "bench" / "requirements-peer.txt"
VENV = PROJECT_ROOT / "var" / "bench-venv"
PATHWAY_REQUIREMENTS = PROJECT_ROOT / "bench" / "requirements-pathway.txt"
PATHWAY_VENV = PROJECT_ROOT / "var" / "bench-venv-pathway"
Counts = dict[tuple[str, str, str, int], int]


@dataclass(frozen=True)
class Drain:
    """What every peer is asked: count `count` responses of `topic` in the same windows."""

    bootstrap: str
    topic: str
    count: int
    windows: tuple[str, ...]  # "name:width_seconds", from stream/kpi/windows.py
    grace_seconds: float
    timeout: float
    workdir: Path


def build_once(folder: Path, digest: str, build: Callable[[], None], stamp: str) -> None:
    """Run `build` into `folder` unless it was built from `digest`.

    Under a file lock, so that two benchmark runs (the smoke test and a manual run) never build
    the same folder at once; the stamp is written only after a build that succeeded.
    """
    stamp_file = folder / stamp
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.exists() and stamp_file.read_text() == digest:
            return
        shutil.rmtree(folder, ignore_errors=True)
        build()
        stamp_file.write_text(digest)


def venv_python(venv: Path, requirements: Path) -> Path:
    """The interpreter of `venv`, (re)built when `requirements` changed."""
    python = venv / "bin" / "python"

    def build() -> None:
        # The base interpreter, not .venv's: the peer must not see the project's packages.
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(requirements)], check=True)

    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    build_once(venv, digest, build, stamp=".requirements-sha256")
    return python


def peer_python() -> Path:
    """The Quix Streams venv's interpreter, (re)built when bench/requirements-peer.txt changed."""
    return venv_python(VENV, REQUIREMENTS)


def pathway_python() -> Path:
    """The Pathway venv's interpreter, (re)built when bench/requirements-pathway.txt changed."""
    return venv_python(PATHWAY_VENV, PATHWAY_REQUIREMENTS)


def run_peer(drain: Drain, *, group: str) -> tuple[dict[str, Any], Counts]:
    """Drain with bench/quix_peer.py in the peer venv; its result and its counts."""
    python = peer_python()
    workdir = drain.workdir
    output = workdir / "quix-result.json"
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        str(python), str(PROJECT_ROOT / "bench" / "quix_peer.py"), "--bootstrap", drain.bootstrap,
        "--topic", drain.topic, "--events", str(drain.count), "--group", group,
        "--state-dir", str(workdir / "quix-state"), "--output", str(output),
        "--grace-seconds", str(drain.grace_seconds), "--windows", *drain.windows,
    ]  # fmt: skip
    return run_counting(
        command, output, workdir / "quix.log", "the Quix Streams peer", drain.timeout
    )


def run_pathway(drain: Drain, *, group: str, threads: int) -> tuple[dict[str, Any], Counts]:
    """Drain with bench/pathway_peer.py in the Pathway venv, `threads` engine threads."""
    python = pathway_python()
    stem = drain.workdir / f"pathway-{threads}"
    output = stem.with_suffix(".json")
    drain.workdir.mkdir(parents=True, exist_ok=True)
    command = [
        str(python), str(PROJECT_ROOT / "bench" / "pathway_peer.py"), "--bootstrap",
        drain.bootstrap, "--topic", drain.topic, "--events", str(drain.count), "--group", group,
        "--output", str(output), "--out-dir", str(stem.with_suffix(".sinks")),
        "--grace-seconds", str(drain.grace_seconds), "--windows", *drain.windows,
    ]  # fmt: skip
    env = {**os.environ, "PATHWAY_THREADS": str(threads)}
    log = stem.with_suffix(".log")
    return run_counting(command, output, log, "the Pathway peer", drain.timeout, env=env)


def run_counting(
    command: list[str], output: Path, log: Path, what: str, timeout: float,
    env: dict[str, str] | None = None,
) -> tuple[dict[str, Any], Counts]:  # fmt: skip
    """Run a peer that writes JSON with `counts` rows [channel, queue, window, bucket, n]."""
    with log.open("wb") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, env=env
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise RuntimeError(f"{what} failed:\n" + "\n".join(tail))
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
    print(pathway_python() if "--pathway" in sys.argv[1:] else peer_python())
