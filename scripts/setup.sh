#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine; safe to run again (it skips what is there).
#   - Python >= 3.11 virtualenv in .venv with the package and its test/dev extras
#   - Java 17+ and Maven (to resolve and run the real Kafka broker), docker-compose (to validate
#     docker-compose.yml), Prometheus/promtool and Alertmanager, from Debian's packages when missing
#   - the Kafka broker's jars (Maven Central), cached in var/kafka/lib
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python >= 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v promtool >/dev/null || missing+=(prometheus)
# The alerting end-to-end test (tests/monitoring/test_alertmanager_e2e.py) runs a real one.
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing tools: ${missing[*]} (install them with your package manager, then rerun)"
  fi
fi
# The Debian packages start services on :9090 and :9093; tests run their own servers.
for service in prometheus prometheus-alertmanager; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
done

stamp=.venv/.installed
if [[ ! -x .venv/bin/python || ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  say "creating .venv and installing the package with its dev extras"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

say "resolving the Kafka broker's jars (cached after the first run)"
.venv/bin/python -c 'from stream.localkafka import LocalBroker; LocalBroker().resolve()'
# The benchmark's peers (the Quix Streams venv in var/bench-venv, the Kafka Streams jar in
# var/bench-kstreams) are built by the benchmark on first use (bench/peer.py,
# bench/kstreams_peer.py), so neither `make run` nor a test that does not run the bench pays.
say "ready"
