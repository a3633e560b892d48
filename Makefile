# The two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv from the stock python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest rdk-test install clean template

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The demo landscape has findings on purpose: exit code 1 (findings) is the expected outcome here.
demo: $(STAMP)
	@$(BIN)/ml-guardrails demo || [ $$? -eq 1 ]

lint: $(STAMP)
	$(BIN)/ruff check src rules tests tools
	$(BIN)/ruff format --check src rules tests tools

RULE_MODULES := $(filter-out %_test.py,$(wildcard rules/*/*.py))

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --strict $(RULE_MODULES)

pytest: $(STAMP)
	$(BIN)/pytest -q

# rdk runs each rule's NAME_test.py the way `rdk test-local` does for rule authors.
rdk-test: $(STAMP)
	cd rules && ../$(BIN)/rdk test-local --all

test: lint typecheck pytest rdk-test

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache

# `sam build` builds the layer through this target (BuildMethod: makefile; SAM sets ARTIFACTS_DIR).
build-GuardrailsLayer:
	python3.12 -m pip install --no-compile --quiet --target "$(ARTIFACTS_DIR)/python" .

# Copy remediations/*.yaml into template.yaml's generated AWS::SSM::Document block.
template: $(STAMP)
	$(BIN)/python tools/sync_template.py
