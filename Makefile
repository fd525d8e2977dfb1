# Provenance Ledger — the commands a person types.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# The main job: the ledger server on $(DEMO)/ledger.db. The first run creates a CI key, the ledger
# and two tokens, then seeds it through the real HTTP path (`attest … --ledger URL`: build link,
# SLSA provenance, test result, a scan with two CVEs, a second build, an OpenVEX fix) and verifies
# one attestation; later runs reuse it all. Prints the address and tokens; Ctrl-C stops.
# The steps live in ledger/_internal/demo.py.
PORT ?= 8080
run: $(STAMP)
	$(PY) -m ledger._internal.demo --dir $(DEMO) --port $(PORT)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff format --check ledger attest verify tests bench
	$(VENV)/bin/ruff check ledger attest verify tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
