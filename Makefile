# The two commands of the README: `make run` (the main job) and `make test` (what CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STORE  ?= model-store

.PHONY: run test install sysdeps model lint format pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests need (promtool/prometheus for the monitoring tests).
sysdeps:
	@bash .ci/sysdeps.sh

# A promoted model, trained on synthetic data the first time.
model: install
	@test -s $(STORE)/CURRENT || $(BIN)/churn train --store $(STORE)

run: model
	$(BIN)/churn up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

pytest: install
	$(BIN)/pytest

test: sysdeps lint pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
