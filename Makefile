# The two commands of the README:
#   make run    the sample bot on the local WhatsApp sandbox (or real WhatsApp with a .env)
#   make test   the whole suite: ruff, mypy, pytest (unit, end to end, browser), then the core,
#               Flask and DRF tests again on Python 3.12 without Rasa (pytest-core)
# Both set everything up on a fresh machine: a Python 3.10 virtualenv with the locked packages
# (.venv, requirements/lock.txt), and for make test a Python 3.12 one without Rasa (.venv-core,
# requirements/lock-core.txt). scripts/find-python finds each interpreter on PATH or in pyenv.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# The core without Rasa: Python 3.12, the core + Flask + Django + test tools only.
VENV_CORE := .venv-core
BIN_CORE := $(VENV_CORE)/bin
PY_CORE := $(BIN_CORE)/python
STAMP_CORE := $(VENV_CORE)/.installed
CORE_TESTS := tests/core tests/sync tests/adapters/flask tests/adapters/drf
UV ?= uv
LOCK_FLAGS := --no-python-downloads --generate-hashes --no-header --no-annotate --quiet $(LOCK_ARGS)
export RASA_TELEMETRY_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install install-core system-deps test lint typecheck pytest pytest-core run train lock bench clean

install: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	@py310=$$(scripts/find-python 3.10) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
		rm -rf $(VENV); echo "creating $(VENV) with $$py310"; "$$py310" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade "pip>=23,<26"
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/rasa telemetry disable >/dev/null 2>&1 || true
	@touch $(STAMP)

install-core: $(STAMP_CORE)

$(STAMP_CORE): requirements/lock-core.txt pyproject.toml
	@py312=$$(scripts/find-python 3.12) || exit 1; \
	if [ ! -x $(PY_CORE) ] || ! $(PY_CORE) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then \
		rm -rf $(VENV_CORE); echo "creating $(VENV_CORE) with $$py312"; "$$py312" -m venv $(VENV_CORE); fi
	$(PY_CORE) -m pip install --quiet --upgrade "pip>=23,<26"
	$(PY_CORE) -m pip install --quiet --require-hashes --no-deps -r requirements/lock-core.txt
	$(PY_CORE) -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(PY_CORE) -c 'import importlib.util as u, sys; bad = [m for m in ("rasa", "sanic", "tensorflow") if u.find_spec(m)]; sys.exit(f"error: $(VENV_CORE) must not have {bad}: rm -rf $(VENV_CORE)" if bad else 0)'
	@touch $(STAMP_CORE)

# Both hashed locks from pyproject.toml: .venv's (3.10, with Rasa) and .venv-core's (3.12, without).
# Pins already in a lock are kept; make lock LOCK_ARGS=--upgrade moves to the newest allowed.
lock:
	@command -v $(UV) >/dev/null 2>&1 || { echo "error: uv not found: pip install uv, or make lock UV=/path/to/uv" >&2; exit 1; }
	@py310=$$(scripts/find-python 3.10) && py312=$$(scripts/find-python 3.12) || exit 1; set -x; \
	$(UV) pip compile pyproject.toml requirements/build.in --extra rasa --extra flask --extra django --extra dev \
		--python-version 3.10 --python "$$py310" $(LOCK_FLAGS) -o requirements/lock.txt && \
	$(UV) pip compile pyproject.toml requirements/build.in --extra flask --extra django --extra test \
		--python-version 3.12 --python "$$py312" $(LOCK_FLAGS) -o requirements/lock-core.txt

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

system-deps:
	@scripts/system-deps

pytest: install system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The core, Flask and DRF tests on Python 3.12 with no Rasa installed: they must not need it.
pytest-core: install-core system-deps
	$(PY_CORE) -m pytest -p no:cacheprovider $(CORE_TESTS) $(PYTEST_CORE_ARGS)

test: lint typecheck pytest pytest-core

train: install
	$(BIN)/rasa train --quiet

run: install
	$(PY) -m devtools.run

# Every bench/bench_*.py in turn; their tables go to bench/results.md, the ratios to bench/results.png.
bench: install
	$(PY) bench/_report.py

clean:
	rm -rf $(VENV) $(VENV_CORE) models/ .mypy_cache .pytest_cache .ruff_cache
