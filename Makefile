# The two commands: `make up` (install what is missing, then run the hotline) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOTLINE := $(BIN)/hotline

.PHONY: up install test lint format deps-debian deps-test asterisk clean

up: install
	$(HOTLINE) up

install: deps-debian $(VENV)/.installed asterisk

deps-debian:
	@scripts/install-debian-deps.sh

deps-test:
	@HOTLINE_WITH_BROWSER=1 scripts/install-debian-deps.sh

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[sim,speech,test]'
	@touch $@

asterisk: $(VENV)/.installed
	$(HOTLINE) asterisk install

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install deps-test lint
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
