# The two commands of the README:
#   make run    the main job: local Kafka, a worker, traffic, /metrics
#   make test   every test (unit, integration on a real broker, monitoring), plus lint and types
.PHONY: setup run test lint unit schemas monitoring kafka-start kafka-stop clean bench-scale

VENV_PY := .venv/bin/python

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV_PY) -m stream demo

test: setup lint
	$(VENV_PY) -m pytest -q -p no:cacheprovider --durations=25

lint:
	.venv/bin/ruff check stream tests scripts bench monitoring
	.venv/bin/ruff format --check stream tests scripts bench monitoring
	.venv/bin/mypy
	.venv/bin/mypy -p monitoring

unit: setup
	$(VENV_PY) -m pytest -q tests/unit

schemas: setup
	$(VENV_PY) scripts/gen_schemas.py

# Rules, alerts, their promtool tests, the dashboard and the runbook table from
# monitoring/config.yml (the thresholds); tests/monitoring fails when they drift.
monitoring: setup
	$(VENV_PY) -m monitoring.generate

# Scale-out: 1, 2 and 4 workers, uniform then skewed traffic, on a broker of its own (bench/scale.py);
# options through ARGS, e.g. make bench-scale ARGS="--responses 5000 --workers 4".
bench-scale: setup
	$(VENV_PY) -m bench.scale $(ARGS)

kafka-start: setup
	$(VENV_PY) -m stream kafka start

kafka-stop:
	$(VENV_PY) -m stream kafka stop

clean:
	-$(VENV_PY) -m stream kafka stop
	rm -rf var .venv .pytest_cache .mypy_cache .ruff_cache
