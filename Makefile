# Two commands from a fresh clone: `make demo` and `make test`. Each creates or refreshes .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLIENTS := .venv-clients
OXEN_VENV := .venv-oxen

.PHONY: venv demo test test-fast bench clean

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
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(CLIENTS) $(OXEN_VENV) .polytune .pytest_cache
