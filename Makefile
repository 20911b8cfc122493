# The two commands of the README are `make demo` and `make test`; each does its own set-up.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install services browser observability demo test stress lint audit format unit integration clean

install: $(INSTALLED)

# Re-installs only when pyproject.toml changes; safe to run again and again.
$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

services:
	@scripts/ensure-services.sh

# Debian's Chromium, for the browser test of the admin page (installed once, with apt-get).
browser:
	@scripts/ensure-browser.sh

# Debian's prometheus and prometheus-alertmanager: promtool and amtool check docker/, and the live
# scrape test runs a real Prometheus (installed once, with apt-get; their services are not started).
observability:
	@scripts/ensure-observability.sh

demo: install services
	$(BIN)/payments demo

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/bandit --quiet --recursive src --severity-level high
	@scripts/scan-secrets.sh

# Known vulnerabilities in the installed dependencies (needs PyPI's vulnerability API; CI runs it).
audit: install
	$(BIN)/pip-audit --skip-editable --progress-spinner off

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

# Lint, then the whole suite under coverage (line and branch), failing under the floor in pyproject.toml.
test: install services browser observability lint
	@rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest
	@$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

# The long forms of the stress and chaos tests (issue 13: 20,000 webhooks, 50,000 queued messages, a
# three times larger flood under each fault, ...): about 20 minutes, where make test spends about 5.
stress: install services
	$(BIN)/pytest -m slow tests/stress tests/chaos

unit: install
	$(BIN)/pytest tests/unit

integration: install services browser observability
	$(BIN)/pytest tests/integration tests/e2e

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .pytest_cache .ruff_cache
