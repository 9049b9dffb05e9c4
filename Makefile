# Two commands for a new machine: `make dev` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test test-bench-smoke bench lint package deploy teardown clean

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e '.[test]'
	touch $(STAMP)

dev: $(STAMP)
	$(PY) -m devstack

# LocalStack's S3, the reference of tests/test_storage_conformance.py: a virtualenv of its own
# under ~/.cache/nshub, made once (README, Integrity). The benchmark smoke test (up to 10 min)
# has its own target, which CI runs after this one (.ci/run).
test: $(STAMP)
	$(PY) -m devstack.localstack install
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not bench_smoke"

test-bench-smoke: $(STAMP)
	$(PY) -m pytest -q -m bench_smoke

bench: $(STAMP)
	$(PY) -m bench

# Deploying (README: "Deploying"): STAGE names every resource; STACK is the CloudFormation stack.
STAGE ?= prod
STACK ?= nshub-$(STAGE)
REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
ARTIFACTS_BUCKET ?=
PARAMETERS ?=
AWS ?= aws
package: $(STAMP)
	rm -rf build/chalice build/package
	AWS_DEFAULT_REGION=$(REGION) $(VENV)/bin/chalice package --stage $(STAGE) --template-format yaml build/chalice
	$(PY) infra/package.py build/chalice build/package

deploy: package
	@test -n "$(ARTIFACTS_BUCKET)" || { echo "ARTIFACTS_BUCKET is not set: name an S3 bucket of this account and region for the code (README: Deploying)"; exit 2; }
	$(AWS) cloudformation package --region $(REGION) --template-file build/package/sam.yaml \
		--s3-bucket $(ARTIFACTS_BUCKET) --s3-prefix $(STACK) --output-template-file build/package/packaged.yaml
	$(AWS) cloudformation deploy --region $(REGION) --stack-name $(STACK) \
		--template-file build/package/packaged.yaml \
		--capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND \
		--parameter-overrides Stage=$(STAGE) $(PARAMETERS) --no-fail-on-empty-changeset
	$(AWS) cloudformation describe-stacks --region $(REGION) --stack-name $(STACK) \
		--query "Stacks[0].Outputs[?OutputKey=='EndpointURL'].OutputValue" --output text

# Deletes the stack; the table, the bucket and the user pool are kept (README: "Tearing down").
teardown:
	$(AWS) cloudformation delete-stack --region $(REGION) --stack-name $(STACK)
	$(AWS) cloudformation wait stack-delete-complete --region $(REGION) --stack-name $(STACK)

lint: $(STAMP)
	$(VENV)/bin/cfn-lint infra/template.yaml

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build
