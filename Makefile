# The two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv from the stock python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest rdk-test install clean template build sam-validate sam-build checkov audit fuzz-deep bench

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
	$(BIN)/ruff check src rules tests tools benchmarks
	$(BIN)/ruff format --check src rules tests tools benchmarks

RULE_MODULES := $(filter-out %_test.py,$(wildcard rules/*/*.py))

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --strict $(RULE_MODULES)
	$(BIN)/mypy --strict benchmarks

pytest: $(STAMP)
	$(BIN)/pytest -q

# rdk runs each rule's NAME_test.py the way `rdk test-local` does for rule authors.
rdk-test: $(STAMP)
	cd rules && ../$(BIN)/rdk test-local --all

# The SAM CLI lives in a venv of its own (its pins would fight the project's dev tools).
SAM_VENV  := .venv-sam
SAM       := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed
SAM_CLI_VERSION := 1.170.0
# `sam build` needs python3.12 (the Lambda runtime): on PATH, else a pyenv 3.12.
PY312_ENV := $(shell if python3.12 -c '' >/dev/null 2>&1; then echo PATH; \
	elif command -v pyenv >/dev/null 2>&1 && pyenv versions --bare | grep -q '^3\.12'; then \
	echo "PYENV_VERSION=$$(pyenv version-name):$$(pyenv versions --bare | grep '^3\.12' | tail -1)"; fi)

$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'
	touch $(SAM_STAMP)

sam-validate: $(SAM_STAMP)
	$(SAM) validate --lint

sam-build: $(SAM_STAMP)
	@if [ -z "$(PY312_ENV)" ]; then \
		echo "SKIPPED sam build: python3.12 not found (install it, or pyenv install 3.12)"; \
	elif [ "$(PY312_ENV)" = PATH ]; then $(SAM) build; \
	else env $(PY312_ENV) $(SAM) build; fi

# Security tools, also in a venv of their own.
TOOLS_VENV  := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'checkov>=3.2,<4' 'bandit>=1.7,<2'
	touch $(TOOLS_STAMP)

# checkov on the SAM template: no failed check; every skip is justified inline in template.yaml.
checkov: $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/checkov --skip-download --quiet --compact --framework cloudformation -f template.yaml \
		-f conformance-packs/secure-ml-environment.yaml -f org/member-execution-role.yaml \
		-f org/organization-rollout.yaml

# bandit on the shipped code (rules and engine; tests excluded): no finding; each nosec names its reason.
audit: $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/bandit -q -r src rules -x '*_test.py'

build: sam-validate sam-build

test: lint typecheck pytest rdk-test build checkov audit

clean:
	rm -rf $(VENV) $(SAM_VENV) $(TOOLS_VENV) .aws-sam build dist .pytest_cache .mypy_cache .ruff_cache

# `sam build` builds the layer through this target (BuildMethod: makefile; SAM sets ARTIFACTS_DIR).
# Lambda cannot write bytecode to /opt, so a layer without it compiles every module on every cold start.
# Ship bytecode that is valid whatever the zip does to file times (PEP 552 unchecked-hash pycs).
build-GuardrailsLayer:
	python3.12 -m pip install --no-compile --quiet --target "$(ARTIFACTS_DIR)/python" .
	python3.12 -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)/python"

# Copy remediations/*.yaml into template.yaml's generated AWS::SSM::Document block.
template: $(STAMP)
	$(BIN)/python tools/sync_template.py

# The deep fuzz profile (>= 10,000 examples per rule; long): not part of `make test`.
fuzz-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -q -p no:cacheprovider tests/test_fuzz_rules.py tests/test_fuzz_parameters.py

# Performance figures of issue 6 (cold start, API calls, sweeps against its own moto_server, CLI
# scale-out): prints a table with each target and writes benchmarks/results.json. Not part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
