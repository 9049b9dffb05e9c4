# Two commands for a new machine: `make dev` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test bench lint package clean

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e '.[test]'
	touch $(STAMP)

dev: $(STAMP)
	$(PY) -m devstack

# LocalStack's S3, the reference of tests/test_storage_conformance.py: a virtualenv of its own
# under ~/.cache/nshub, made once (README, Integrity).
test: $(STAMP)
	$(PY) -m devstack.localstack install
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) -m bench

STAGE ?= prod
package: $(STAMP)
	mkdir -p build
	$(PY) infra/package.py build/merged-template.yaml
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage $(STAGE) --merge-template build/merged-template.yaml build/package

lint: $(STAMP)
	$(VENV)/bin/cfn-lint infra/template.yaml

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build
