# The two commands of the README: `make run` (the main job) and `make test` (what CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STORE  ?= model-store

.PHONY: run test install sysdeps model lint format pytest fuzz clean lock secrets soak mlserver-venv mutation

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

# The batch core's fuzz property for longer than CI runs it: `make fuzz MINUTES=30`.
MINUTES ?= 10
fuzz: install
	$(BIN)/pytest tests/unit/test_fuzz_batch.py -k fuzz_for_minutes --fuzz-minutes $(MINUTES) -s
# Mutation testing of the delivery core (docs/reliability.md#mutation-testing), long: `make mutation`,
# or some modules: `make mutation MUTATE="kafka_io/sink.py scorer/batch.py"`. Report: build/mutation/report.md
MUTATE ?=
mutation: install
	$(BIN)/python -m tests.mutation.run $(MUTATE)
# The long soak of docs/benchmarks.md: 10 minutes at 4,000 events/s beside each engine (~25 min).
soak: model
	$(BIN)/churn bench soak --minutes 10 --rate 4000 --engine both --store $(STORE) --write-docs docs/benchmarks.md

# MLServer, the peer of `churn bench api`, in an environment of its own: it pins versions this
# project does not use. uvloop < 0.22 (0.22+ crashes its workers with parallel_workers 1) and
# pandas < 3 (its pandas codec trips on pandas 3 string columns).
MLSERVER_PYTHON ?= python3.11
mlserver-venv:
	$(MLSERVER_PYTHON) -m venv .venv-mlserver
	.venv-mlserver/bin/pip install --quiet mlserver==1.7.1 mlserver-sklearn==1.7.1 \
		scikit-learn==1.9.1 "pandas<3" "uvloop<0.22"

# The images' lock files (hashes of every distribution; Python 3.11, any platform).
# Run after changing dependencies in pyproject.toml; tests/unit/test_packaging.py checks they agree.
LOCK_DIR := deploy/requirements
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--no-strip-extras --custom-compile-command "make lock"
lock: install
	$(UV_COMPILE) pyproject.toml -o $(LOCK_DIR)/serving.txt
	$(UV_COMPILE) pyproject.toml --extra training -o $(LOCK_DIR)/training.txt
	$(UV_COMPILE) $(LOCK_DIR)/build.in -o $(LOCK_DIR)/build.txt

# Secret files for `docker compose up` (random values; never committed, see docs/deploy.md).
secrets:
	@bash deploy/make_secrets.sh secrets

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
