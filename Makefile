# The two commands of the README:
#   make run    the main job: local Kafka, a worker, traffic, /metrics
#   make test   every test (unit, integration on a real broker, monitoring), plus lint and types
.PHONY: setup run test lint unit schemas kafka-start kafka-stop clean

VENV_PY := .venv/bin/python

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV_PY) -m stream demo

test: setup lint
	$(VENV_PY) -m pytest -q -p no:cacheprovider

lint:
	.venv/bin/ruff check stream tests scripts bench
	.venv/bin/ruff format --check stream tests scripts bench
	.venv/bin/mypy

unit: setup
	$(VENV_PY) -m pytest -q tests/unit

schemas: setup
	$(VENV_PY) scripts/gen_schemas.py

kafka-start: setup
	$(VENV_PY) -m stream kafka start

kafka-stop:
	$(VENV_PY) -m stream kafka stop

clean:
	-$(VENV_PY) -m stream kafka stop
	rm -rf var .venv .pytest_cache .mypy_cache .ruff_cache
