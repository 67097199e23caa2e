# The task runner README and CI use. Everything runs from the project's own virtualenv, .venv.
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install, so `make venv` is instant until pyproject.toml changes.
STAMP := $(VENV)/.installed

# Locked dependencies (pinned, with hashes): what the image installs, and what .venv installs.
BASE_LOCK := requirements/base.txt
DEV_LOCK := requirements/dev.txt

.PHONY: venv lock run test lint docs bench image

venv: $(STAMP)

# Dependencies from the lock file only (pip refuses anything unpinned or with another hash), then
# Boochat itself, editable, adding nothing.
$(STAMP): pyproject.toml $(DEV_LOCK)
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Refreshes the lock files after a change to pyproject.toml's dependencies. Pins that still fit are
# kept; ARGS=--upgrade moves every pin to the newest release (ARGS='--upgrade-package NAME' one).
# The dev lock (dev and local extras) is constrained by the base lock, so both agree.
LOCK_COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(ARGS) pyproject.toml
lock: venv
	$(LOCK_COMPILE) -o $(BASE_LOCK)
	$(LOCK_COMPILE) --extra dev --extra local -c $(BASE_LOCK) -o $(DEV_LOCK)
	$(MAKE) venv

# The whole stack in the foreground, with nothing needed beforehand: RabbitMQ made sure of as for
# make test (unless BOOCHAT_AMQP_URL names another broker), then boochat up, which starts the Mongo
# stand-in and keeps its data in ./data (BOOCHAT_DATA_DIR). Dev login only when asked for:
# BOOCHAT_DEV_LOGIN=true make run. ARGS passes options, e.g. make run ARGS=--scale=messaging=2
run: venv
	$(if $(BOOCHAT_AMQP_URL),,deploy/ensure-rabbitmq.sh)
	$(BIN)/boochat up $(ARGS)

# ARGS passes options to pytest, e.g. make test ARGS='-k supervisor -x'
test: venv
	deploy/ensure-rabbitmq.sh
	deploy/ensure-chromium.sh
	$(BIN)/pytest $(ARGS)

# ruff over everything; mypy --strict over the product code (its settings and files: pyproject.toml).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every worker's AsyncAPI document, generated from its code into docs/asyncapi/ (a test fails when
# a committed one is stale).
docs: venv
	$(BIN)/python docs/asyncapi/generate.py

# Boochat beside python-socketio and Synapse under the same load, on demand (not in CI): a table on
# stdout and bench/results/<time>.json. ARGS passes options, e.g. make bench ARGS='--only boochat'.
bench: venv
	deploy/ensure-rabbitmq.sh
	$(BIN)/python -m bench.run $(ARGS)

# The one image every service runs (compose.yaml builds it too).
image:
	docker build -f deploy/Dockerfile -t boochat:latest .
