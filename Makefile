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

# The main job (for now): a sample pipeline attests its steps with `attest` (build as an in-toto
# link, SLSA provenance, a test result), the attestations go into a ledger in an embedded SQLite
# file, a proof is printed, the full integrity check runs, and one attestation is verified.
BIN := $(abspath $(VENV))/bin
run: $(STAMP)
	rm -rf $(DEMO) && mkdir -p $(DEMO)/src $(DEMO)/dist $(DEMO)/attestations
	printf 'print("hello from the demo app")\n' > $(DEMO)/src/app.py
	$(BIN)/attest keygen --type ed25519 -o $(DEMO)/ci-key
	cd $(DEMO) && $(BIN)/attest run --step build --key ci-key -m 'src/*' -p 'dist/*' \
		-o attestations/1-build.link.json -- $(BIN)/python -m zipfile -c dist/app.zip src/app.py
	cd $(DEMO) && $(BIN)/attest provenance --subject 'dist/*' --deps python-env --key ci-key \
		-o attestations/2-provenance.json
	cd $(DEMO) && $(BIN)/attest test-result --step unit --result PASSED --subject dist/app.zip \
		--passed test_hello --key ci-key -o attestations/3-test.json
	$(BIN)/ledger init --origin demo.example/ledger --db sqlite:///$(DEMO)/ledger.db
	$(BIN)/ledger signers add --name demo-ci --key $(DEMO)/ci-key.pub --db sqlite:///$(DEMO)/ledger.db
	$(BIN)/ledger append --db sqlite:///$(DEMO)/ledger.db $(DEMO)/attestations/*.json
	$(BIN)/ledger proof --db sqlite:///$(DEMO)/ledger.db --index 2
	$(BIN)/ledger checkpoint --db sqlite:///$(DEMO)/ledger.db
	$(BIN)/ledger check --db sqlite:///$(DEMO)/ledger.db
	cd $(DEMO) && $(BIN)/attest verify attestations/2-provenance.json --key ci-key.pub --subject dist/app.zip

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
