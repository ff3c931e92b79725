# Pulse — the two commands of the README:
#   make up     create .venv, install Pulse, start it on embedded defaults (Ctrl-C stops it)
#   make test   create .venv, install Pulse with test extras, run the whole test suite
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
# the console's chart library: from the npm lock file into the package's static dir (docs/console.md)
VENDOR := pulse/serve/console/static/vendor

.PHONY: up test test-fast lint-imports bench install openapi routes clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE $(VENDOR)/
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/pulse up

# Two workers (pytest-xdist) for everything but the Ray end-to-end tests, which then run on their own:
# one Ray cluster at a time (xdist 3.8's `loadgroup` cannot group them under pytest 9: two workers
# once ran crash tests on two clusters at the same time). Both parts run; either failing fails.
TEST_WORKERS ?= 2

test: $(STAMP)
	rc=0; \
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) -m "not ray" || rc=$$?; \
	$(VENV)/bin/python -m pytest -q -m ray || rc=$$?; \
	exit $$rc

# The layer order of docs/architecture.md (a later upward import fails CI).
lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

# Everything but the Ray end-to-end tests (a few minutes; `make test` is about 14 min in CI).
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

bench: $(STAMP)
	bash benchmarks/run_all.sh

openapi: $(STAMP)
	$(VENV)/bin/pulse openapi > openapi.json

routes: openapi
	python3 ../shared/tools/seed_routes.py --openapi openapi.json | tail -n 1

clean:
	rm -rf $(VENV) .pytest_cache openapi.json node_modules $(VENDOR)
