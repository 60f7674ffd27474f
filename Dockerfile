# The streaming KPI worker (`python -m stream worker`) as a container image.
#   docker build -t cx-stream .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -p 6066:6066 cx-stream
# docker-compose.yml runs it next to a single-node Apache Kafka.
#
# Configuration is the environment of the contract (README, "Configuration"): KAFKA_BOOTSTRAP_SERVERS,
# KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* / KAFKA_SSL_CAFILE, CX_TOPIC_PREFIX, CX_WEB_PORT,
# CX_PARTITIONS, CX_DATA_DIR. Faust's own variables (WEB_PORT, BROKER_URL, ...) are not used.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that a source change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The package itself (a regular, non-editable install), then the sources are not needed any more.
COPY . ./
RUN pip install --no-deps . \
    && cd / && rm -rf /src

# Unprivileged user; its home holds the worker's RocksDB state (CX_DATA_DIR), the place to mount a
# volume (a fresh named volume inherits the ownership below).
RUN groupadd --system --gid 10001 cx \
    && useradd --system --uid 10001 --gid cx --home-dir /var/lib/cx --create-home --shell /usr/sbin/nologin cx \
    && mkdir -p /var/lib/cx/worker \
    && chown -R cx:cx /var/lib/cx

ENV CX_DATA_DIR=/var/lib/cx/worker \
    CX_WEB_PORT=6066

USER cx
WORKDIR /var/lib/cx

# CX_WEB_PORT: /metrics, /kpi, /ingest, /healthz
EXPOSE 6066

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CX_WEB_PORT', '6066'), timeout=4)" || exit 1

CMD ["python", "-m", "stream", "worker", "-l", "info"]
