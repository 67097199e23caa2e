# The task runner README and CI use. Everything runs from the project's own virtualenv, .venv.
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install, so `make venv` is instant until pyproject.toml changes.
STAMP := $(VENV)/.installed

.PHONY: venv run test lint docs image

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole stack in the foreground; ARGS passes options, e.g. make run ARGS=--scale=messaging=2
run: venv
	$(BIN)/boochat up $(ARGS)

# ARGS passes options to pytest, e.g. make test ARGS='-k supervisor -x'
test: venv
	deploy/ensure-rabbitmq.sh
	$(BIN)/pytest $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every worker's AsyncAPI document, generated from its code into docs/asyncapi/ (a test fails when
# a committed one is stale).
docs: venv
	$(BIN)/python docs/asyncapi/generate.py

# The one image every service runs (compose.yaml builds it too).
image:
	docker build -f deploy/Dockerfile -t boochat:latest .
