# The one front door. `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system

.PHONY: bootstrap run test unit lint typecheck stack-up stack-down stack-status bench bench-e2e chaos soak reliability-docs clean-stack

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check uv==0.13.8

## bootstrap: install the locked Python environment (uv sync --frozen), the mermaid parser (npm ci) and
## build the search node (Maven; again only when ops/search changed)
bootstrap: $(UV) ops/mermaid/node_modules/.package-lock.json
	$(UV) sync --frozen --python python3.11
	$(VENV)/bin/shopstream stack install search

ops/mermaid/node_modules/.package-lock.json: ops/mermaid/package-lock.json
	npm ci --prefix ops/mermaid --silent --no-audit --no-fund

## run: bootstrap, bring the stack up, apply the topology, load the demo catalog, start every process of the Procfile
run: bootstrap
	$(VENV)/bin/shopstream stack up
	$(VENV)/bin/shopstream run --demo

## test: bootstrap, bring the stack up if needed, run the whole test suite (its whole-system test loads through vegeta)
test: bootstrap $(TOOLS)/bin/vegeta
	$(VENV)/bin/shopstream stack up
	$(VENV)/bin/pytest

unit: bootstrap
	$(VENV)/bin/pytest -m "not stack"

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: bootstrap
	$(VENV)/bin/mypy

stack-up: bootstrap
	$(VENV)/bin/shopstream stack up
stack-down:
	$(VENV)/bin/shopstream stack down
stack-status:
	$(VENV)/bin/shopstream stack status

$(TOOLS)/bin/vegeta:
	GOBIN=$(abspath $(TOOLS))/bin go install github.com/tsenart/vegeta/v12@v12.13.0

## bench-e2e: the whole system as `make run` starts it (started here), orders through the front door at several rates
bench-e2e: bootstrap $(TOOLS)/bin/vegeta
	$(VENV)/bin/python -m bench.e2e --start --flows-burst 20000 --rates 25,50,75,100,150 --seconds 60

## chaos: each fault in turn under a steady load, on a stack of its own (started and stopped here); docs/reliability.md
chaos: bootstrap $(TOOLS)/bin/vegeta
	$(VENV)/bin/shopstream stack up
	$(VENV)/bin/python -m bench.chaos --update-docs

## soak: 30 minutes at a modest rate on the shared stack: memory of every process, lag, verify; docs/reliability.md
soak: bootstrap $(TOOLS)/bin/vegeta
	$(VENV)/bin/shopstream stack up
	$(VENV)/bin/python -m bench.soak --minutes 30 --update-docs

## reliability-docs: docs/reliability.md from the last chaos and soak results (bench/results/)
reliability-docs: bootstrap
	$(VENV)/bin/python -m bench.reliability

bench: bootstrap $(TOOLS)/bin/vegeta
	$(VENV)/bin/shopstream stack up
	$(VENV)/bin/shopstream db migrate
	$(VENV)/bin/python -m bench.broker
	$(VENV)/bin/python -m bench.broker_floor
	$(VENV)/bin/python -m bench.flows
	$(VENV)/bin/python -m bench.sinks
	$(VENV)/bin/python -m bench.ingress
	$(VENV)/bin/python -m bench.search
	$(VENV)/bin/python -m bench.search_relevance
