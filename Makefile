# The two commands of the README:
#   make run    the sample bot on the local WhatsApp sandbox (or real WhatsApp with a .env)
#   make test   the whole suite: ruff, mypy, pytest (unit, end to end, browser)
# Both set everything up on a fresh machine: a Python 3.10 virtualenv with the locked packages.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
export RASA_TELEMETRY_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install system-deps test lint typecheck pytest run train lock bench clean

install: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	@py310=$$(scripts/find-python310) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
		rm -rf $(VENV); echo "creating $(VENV) with $$py310"; "$$py310" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade "pip>=23,<26"
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/rasa telemetry disable >/dev/null 2>&1 || true
	@touch $(STAMP)

lock:
	uv pip compile pyproject.toml --extra flask --extra django --extra dev \
		--python-version 3.10 --python "$$(scripts/find-python310)" --no-python-downloads \
		--generate-hashes --no-header --no-annotate --quiet -o requirements/lock.txt

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

system-deps:
	@scripts/system-deps

pytest: install system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

train: install
	$(BIN)/rasa train --quiet

run: install
	$(PY) -m devtools.run

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) models/ .mypy_cache .pytest_cache .ruff_cache
