"""(D) the Kafka Streams peer: a Java 17 app built with Maven, run as a subprocess per thread count.

Its sources are bench/kstreams/ (pom.xml pins Kafka Streams 4.1.1, the broker's release); the
jar and its runtime classpath are built into var/bench-kstreams on first use and rebuilt when
the pom or a Java source changes (same lock as the Quix Streams venv, bench/peer.py). The app
writes its final counts as JSON, read back here for bench/run.py to compare with A's.

    python -m bench.kstreams_peer    # only build or refresh var/bench-kstreams
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from typing import Any

from bench.peer import Counts, Drain, build_once, run_counting
from stream.settings import PROJECT_ROOT

SOURCES = PROJECT_ROOT / "bench" / "kstreams"
BUILD = PROJECT_ROOT / "var" / "bench-kstreams"
MAIN_CLASS = "cx.bench.kstreams.WindowedCounts"
# Heap for the record cache and the clients; RocksDB's memory is off-heap.
JVM_FLAGS = ["-Xms256m", "-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]


def sources_digest() -> str:
    digest = hashlib.sha256()
    for path in [SOURCES / "pom.xml", *sorted((SOURCES / "src").rglob("*.java"))]:
        digest.update(str(path.relative_to(SOURCES)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def peer_classpath() -> str:
    """The peer's `java -cp` value, building it with Maven when its sources changed."""
    target = BUILD / "target"

    def build() -> None:
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is needed to build bench/kstreams (scripts/setup.sh)")
        command = ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(SOURCES / "pom.xml"),
                   "package", f"-Dkstreams.out={target}"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mvn could not build bench/kstreams:\n{done.stdout[-3000:]}")

    build_once(BUILD, sources_digest(), build, stamp=".sources-sha256")
    return f"{target / 'bench-kstreams.jar'}:{target / 'lib'}/*"


def run_kstreams(drain: Drain, *, app_id: str, threads: int) -> tuple[dict[str, Any], Counts]:
    """Drain with the Kafka Streams app (`app_id`, `threads` stream threads)."""
    classpath = peer_classpath()
    drain.workdir.mkdir(parents=True, exist_ok=True)
    stem = drain.workdir / f"kstreams-{threads}"
    output = stem.with_suffix(".json")
    windows = (arg for window in drain.windows for arg in ("--window", window))
    command = [
        "java", *JVM_FLAGS, "-cp", classpath, MAIN_CLASS, "--bootstrap", drain.bootstrap,
        "--topic", drain.topic, "--events", str(drain.count), "--application-id", app_id,
        "--threads", str(threads), "--state-dir", str(stem.with_suffix(".state")),
        "--output", str(output), "--grace-seconds", str(drain.grace_seconds),
        "--timeout-seconds", str(drain.timeout), *windows,
    ]  # fmt: skip
    # The subprocess gets a little longer than the app's own deadline, which reports better.
    log = stem.with_suffix(".log")
    return run_counting(command, output, log, "the Kafka Streams peer", drain.timeout + 90)


if __name__ == "__main__":
    print(peer_classpath())
