# make demo: run the app against an embedded Azurite.  make test: the test suite.  Both install .venv/bin/apim-inventory.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast bench lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e . --no-deps  # the apim-inventory command, from this work tree
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.installed node_modules/.installed
	$(PY) -m devtools.demo

test: $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest

test-fast: $(VENV)/.installed  # the unit tests that are not slow: in memory, no Azurite, no subprocess (seconds)
	$(PY) -m pytest -m "unit and not slow" -q

bench: $(VENV)/.installed node_modules/.installed
	$(PY) -m pip install --quiet azure-mgmt-apimanagement==5.0.0  # measured by bench.import_cost only: not a runtime dependency
	$(PY) -m bench.bench
	$(PY) -m bench.sweep_cost
	$(PY) -m bench.query_cost
	$(PY) -m bench.sync_cost
	$(PY) -m bench.import_cost
	$(PY) -m bench.ops_cost

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache *.egg-info
