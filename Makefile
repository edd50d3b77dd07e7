# Two commands from a fresh clone: `make demo` and `make test`. Each creates or refreshes .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLIENTS := .venv-clients
OXEN_VENV := .venv-oxen

.PHONY: venv demo lint format test test-fast bench bench-smoke clean browser sandbox

# torch first, alone and pinned: anything that depends on torch installed before it would pull
# a multi-GB CUDA build on a CPU machine. Client SDKs whose pins clash with the service's stay
# out of .venv: seekrai (wants typer<0.13) in a folder the tests add to sys.path; oxenai (pulls
# polars, maturin, pytest and ruff) in a venv of its own that tests run as a subprocess.
$(STAMP): pyproject.toml requirements.txt requirements-clients.txt Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q -e ".[test]"
	rm -rf $(CLIENTS)
	$(BIN)/pip install -q --no-deps --target $(CLIENTS) -r requirements-clients.txt
	test -x $(OXEN_VENV)/bin/python || $(PY) -m venv $(OXEN_VENV)
	$(OXEN_VENV)/bin/pip install -q "oxenai==0.65.1"
	$(MAKE) --no-print-directory browser
	$(MAKE) --no-print-directory sandbox
	touch $(STAMP)

# The dashboard's browser test (tests/dashboard/) drives Debian's headless chromium through its
# chromedriver. Installed here when missing and we are root; otherwise a note, and that test
# skips naming the packages.
browser:
	@if [ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y --no-install-recommends chromium chromium-driver \
		|| { apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; } \
		|| echo "note: could not install chromium and chromium-driver; the dashboard's browser test skips."; \
	else echo "note: the dashboard's browser test needs Debian's packages chromium and chromium-driver" \
		"(sudo apt-get install -y --no-install-recommends chromium chromium-driver); it skips without them."; fi

# python graders run inside bubblewrap, with a seccomp filter written by libseccomp's own
# Python bindings (docs/graders.md). Installed here when missing and we are root; otherwise a
# note: without bwrap the server refuses python graders (and their tests skip).
sandbox:
	@if [ -x /usr/bin/bwrap ] && /usr/bin/python3 -c "import seccomp" 2>/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y --no-install-recommends bubblewrap python3-seccomp \
		|| { apt-get update && apt-get install -y --no-install-recommends bubblewrap python3-seccomp; } \
		|| echo "note: could not install bubblewrap and python3-seccomp; python graders will be refused."; \
	else echo "note: python graders need Debian's packages bubblewrap and python3-seccomp" \
		"(sudo apt-get install -y --no-install-recommends bubblewrap python3-seccomp); without bwrap they are refused."; fi

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The habits that keep the layers: ruff (lint and format), the import contracts (pyproject.toml's
# [tool.importlinter]: docs/architecture.md lists them), mypy on domain/, services/, store/.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# ruff's formatter, settings in pyproject.toml's [tool.ruff.format]; `make lint` checks it.
format: $(STAMP)
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest -q -m "not bench" --durations=15

# Every bench/ script at its smallest setting (tests/bench): minutes, so apart from `make test`;
# CI runs it after the suite.
bench-smoke: $(STAMP)
	$(BIN)/python -m pytest -q -m bench tests/bench

# Unit and in-process tests (the real app through httpx's ASGI transport, SQLite): no server
# process, no Ray, no workers, no training (markers live/trains/slow, set in tests/conftest.py).
test-fast: lint
	$(BIN)/python -m pytest -q -m "not live and not slow and not trains"

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(CLIENTS) $(OXEN_VENV) .polytune .pytest_cache test-artifacts
