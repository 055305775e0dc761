# The same commands everywhere: README, CI and developers use these targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TIER   := tests/timescale/node_modules/.installed
AXE    := tests/browser/node_modules/.installed

.PHONY: demo test lint typecheck pytest bench clean

## demo: run the whole platform locally (embedded PostgreSQL and broker)
demo: $(STAMP)
	$(BIN)/cityops demo

## test: lint, type-check and run every test against real services
test: lint typecheck pytest

pytest: $(STAMP) $(TIER) $(AXE)
	@scripts/system-deps.sh
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: the storage write-path benchmark (more in README)
bench: $(STAMP)
	$(BIN)/cityops bench write

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CityOps needs Python 3.11 or newer: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# npm ci into a folder of tests/, or say what is skipped when there is no npm:
# $(call npm_ci,<folder>,<what it installs>,<what is skipped without it>)
define npm_ci
	@scripts/system-deps.sh  # node and npm, before npm ci
	@if command -v npm >/dev/null 2>&1; then \
		echo "installing $(2) ..."; \
		npm ci --prefix $(1) --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "npm not found: $(3) will be skipped"; \
	fi
endef

$(TIER): tests/timescale/package.json tests/timescale/package-lock.json
	$(call npm_ci,tests/timescale,PGlite with TimescaleDB for the conformance tier,the TimescaleDB conformance tier)

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	$(call npm_ci,tests/browser,axe-core for the pages' accessibility tests,the pages' accessibility tests)

clean:
	rm -rf $(VENV) tests/timescale/node_modules tests/browser/node_modules .mypy_cache .ruff_cache .pytest_cache
