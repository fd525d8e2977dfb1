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

# The main job (for now): a ledger in an embedded SQLite file, a few signed sample attestations
# appended, a proof printed, and the full integrity check.
run: $(STAMP)
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(PY) -m ledger._internal.sample $(DEMO)/attestations 5
	$(VENV)/bin/ledger init --origin demo.example/ledger --db sqlite:///$(DEMO)/ledger.db
	$(VENV)/bin/ledger append --db sqlite:///$(DEMO)/ledger.db $(DEMO)/attestations/*.json
	$(VENV)/bin/ledger proof --db sqlite:///$(DEMO)/ledger.db --index 2
	$(VENV)/bin/ledger checkpoint --db sqlite:///$(DEMO)/ledger.db
	$(VENV)/bin/ledger check --db sqlite:///$(DEMO)/ledger.db

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
