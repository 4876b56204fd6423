# make demo: run the app against an embedded Azurite.  make test: the test suite.  Both install .venv/bin/apim-inventory.
# PYTHON picks the interpreter (make test PYTHON=python3.13). The version python3 runs installs into .venv, every
# other version into its own .venv-X.Y, so the versions never share packages. devtools/find-python resolves the name,
# also when it is a pyenv shim that refuses to run until its version is selected.
PYTHON ?= python3
FOUND := $(shell devtools/find-python '$(PYTHON)' 2>&1)
ifneq ($(.SHELLSTATUS),0)
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),default)),)
$(error $(FOUND))
endif
endif
PYTHON_EXE := $(word 1,$(FOUND))
PYTHON_VERSION := $(word 2,$(FOUND))
DEFAULT_VERSION := $(if $(filter python3,$(PYTHON)),$(PYTHON_VERSION),$(word 2,$(shell devtools/find-python python3 2>/dev/null)))
VENV := $(if $(filter $(DEFAULT_VERSION),$(PYTHON_VERSION)),.venv,.venv-$(PYTHON_VERSION))
PY := $(VENV)/bin/python
# checkov pins old versions of common packages: it gets a virtualenv of its own, built with python3.
CHECKOV_VENV := .venv-checkov
CHECKOV_PYTHON = $(word 1,$(shell devtools/find-python python3))

.PHONY: demo serve test test-fast bench lint clean
PORT ?= 7071
# The pages play sign-in locally with this role; SIGN_IN_AS= refuses them, as Azure does without App Service Authentication.
SIGN_IN_AS ?= Inventory.Read

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@[ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$(PYTHON_VERSION)" ] || rm -rf $(VENV)
	$(PYTHON_EXE) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e . --no-deps  # the apim-inventory command, from this work tree
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(CHECKOV_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.installed node_modules/.installed
	$(PY) -m devtools.demo

serve: $(VENV)/.installed node_modules/.installed  # the HTTP API on 127.0.0.1:$(PORT) over the demo's data, until Ctrl-C
	$(PY) -m devtools.serve --port $(PORT) $(if $(SIGN_IN_AS),--sign-in-as $(SIGN_IN_AS))

test: $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest

test-fast: $(VENV)/.installed  # the unit tests that are not slow: in memory, no Azurite, no subprocess (seconds)
	$(PY) -m pytest -m "unit and not slow" -q

bench: $(VENV)/.installed node_modules/.installed
	$(PY) -m pip install --quiet azure-mgmt-apimanagement==5.0.0  # measured by bench.import_cost only: not a runtime dependency
	$(PY) -m bench.bench
	$(PY) -m bench.sweep_cost
	$(PY) -m bench.query_cost
	$(PY) -m bench.access_cost
	$(PY) -m bench.scale_cost
	$(PY) -m bench.sync_cost
	$(PY) -m bench.sync_check_cost
	$(PY) -m bench.import_cost
	$(PY) -m bench.ops_cost
	$(PY) -m bench.contention_cost
	$(PY) -m bench.backfill_cost
	$(PY) -m pip install --quiet --upgrade --target .bench-packages orjson==3.13.0 msgspec==0.23.0  # candidate JSON parsers, for bench.usage_cost only: kept out of the virtualenv (azure-functions would decode events with orjson)
	$(PY) -m bench.usage_cost

lint: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yml

clean:
	rm -rf .venv .venv-* node_modules .pytest_cache .mypy_cache .ruff_cache *.egg-info .bench-packages .serve
