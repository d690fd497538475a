# dialer-gateway — every target CI uses is called unchanged by .ci/run.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?=

.PHONY: run test test-fast lint typecheck bench bench-large check-all e2e-chroot redis-server promtool chromium clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3-venv missing: installing it"; apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

## run: start the gateway on its embedded default (memory store, demo campaign)
run: $(STAMP)
	$(PY) -m gateway serve $(if $(CONFIG),--config $(CONFIG),)

## redis-server: install Debian's redis-server when missing (tests start their own)
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

## promtool: Prometheus' rule checker for the alert-rule tests, extracted from Debian's
## `prometheus` package into the venv (no Prometheus server is installed or started)
PROMTOOL := $(VENV)/bin/promtool
$(PROMTOOL): | $(STAMP)
	@set -e; d=$$(mktemp -d); cd $$d; \
	  apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; \
	  dpkg-deb -x prometheus_*.deb pkg; install -m 0755 pkg/usr/bin/promtool $(CURDIR)/$(PROMTOOL); \
	  cd /; rm -rf $$d; echo "promtool installed in $(PROMTOOL)"
promtool: $(PROMTOOL)

## chromium: Debian's headless-capable browser for the report tests (tests/report/)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## e2e-chroot: build (once, cached outside the repo) the sid chroot with Asterisk
e2e-chroot:
	bash tests/e2e/build-asterisk-chroot.sh

## test: install what the tests need and run the whole suite
test: $(STAMP) redis-server e2e-chroot $(PROMTOOL) chromium
	DIALER_GATEWAY_REQUIRE_CHROMIUM=1 $(PY) -m pytest -q -p no:cacheprovider

## test-fast: the suite without the real-Asterisk tests
test-fast: $(STAMP) redis-server
	$(PY) -m pytest -q -p no:cacheprovider -m "not e2e"

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check-all: lint typecheck test

## bench: throughput / latency benchmarks (not part of make test)
bench: $(STAMP) redis-server
	$(PY) bench/run.py
	$(PY) bench/engine.py
	$(PY) bench/audit_record.py
	$(PY) bench/field.py --quick
	$(PY) bench/workers.py
	$(PY) bench/resp_client.py
	$(PY) bench/metrics_writes.py
	$(PY) bench/ami_proxy.py
	$(PY) bench/startup.py
	$(PY) bench/scrub_report.py
	$(PY) bench/lists.py --numbers 1000000
	$(PY) bench/consents.py --consents 1000000

## bench-large: the opposition-list benchmark at 10 million numbers (several minutes)
bench-large: $(STAMP) redis-server
	$(PY) bench/lists.py --numbers 10000000 --no-end-to-end
	$(PY) bench/lists.py --numbers 10000000 --end-to-end-only

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
