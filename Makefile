# Two commands on a fresh machine: `make demo` and `make test`. Both install everything first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= test,pii,judge,drift,train,web,integrations,persona
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
JARS := .alignloop/kafka/libs/.resolved

.PHONY: install demo test test-fast bench clean-state promtool compose-plugin chromium postgresql

install: $(STAMP) $(JARS) promtool chromium postgresql

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-*; touch $@

$(JARS): deploy/kafka/pom.xml
	@rm -rf .alignloop/kafka/libs
	$(BIN)/python -c "from pathlib import Path; from connectors.broker import LocalBroker; LocalBroker(Path('.alignloop')).resolve_jars()"
	@touch $@

# promtool (alert-rule unit tests) comes from Debian's prometheus package.
promtool:
	@command -v promtool >/dev/null || { $$(command -v sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$(command -v sudo) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# The labeling UI's browser test drives Debian's chromium (Playwright's own browser download is unavailable);
# its store test starts a real PostgreSQL server from Debian's package (issue 16).
chromium:
	@test -x /usr/bin/chromium || { $$(command -v sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$(command -v sudo) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

postgresql:
	@test -x /usr/lib/postgresql/15/bin/initdb || { $$(command -v sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$(command -v sudo) apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null; }

demo: install
	$(BIN)/alignloop demo

test: install
	$(BIN)/lint-imports --no-cache && $(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/alignloop bench pipeline

clean-state:
	-$(BIN)/alignloop broker stop
	rm -rf .alignloop

# Optional: the docker compose v2 plugin, built from the Go module proxy, so `docker compose config` can validate
# docker-compose.yml (tests/unit/test_compose.py uses it when present). Needs Go; takes a few minutes.
compose-plugin:
	GOFLAGS=-mod=mod GOBIN=$$HOME/.cache/alignloop-go go install github.com/docker/compose/v2/cmd@v2.29.7
	mkdir -p $$HOME/.docker/cli-plugins
	cp $$HOME/.cache/alignloop-go/cmd $$HOME/.docker/cli-plugins/docker-compose
