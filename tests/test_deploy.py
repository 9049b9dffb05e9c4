"""The packaged stack deploys as is: every function setting comes from the stack, no name is
tied to a stage or a stack name, the expanded template lints clean, the alarms, log groups and
data safety settings are there, and `make deploy` hands CloudFormation the packaged template
with the capabilities it needs. Built offline (tests/stack.py), once for the module."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.config import STACK_SETTINGS
from tests.stack import (copy_project, expand, make, of_type, package, seed_dependency_cache,
                         walk)

STAGE = "qa7"  # a stage no file mentions: whatever works here works for any name


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("project"))
    seed_dependency_cache(project)
    return project


@pytest.fixture(scope="module")
def packaged(project) -> dict:
    return package(project, STAGE)


@pytest.fixture(scope="module")
def expanded(packaged) -> dict:
    return expand(packaged, {"Stage": STAGE, "AlarmEmail": "ops@example.com"})


def functions(template: dict) -> dict[str, dict]:
    return of_type(template, "AWS::Serverless::Function")


# ---------------------------------------------------------------- settings and names
PLACEHOLDERS = re.compile(
    r"REPLACE_AT_DEPLOY|replaced-by|set-at-package-time|123456789012|000000000000"
    rf"|nshub-(dev|prod|{STAGE})\b|us-east-1|arn:aws:", re.IGNORECASE)


def test_packaged_template_has_no_yaml_aliases(project, packaged):
    text = (project / "build" / "package" / "sam.yaml").read_text()
    assert not re.search(r"[&*]id\d+", text)  # CloudFormation reads no anchors


def test_no_placeholder_account_region_or_stage_anywhere(packaged):
    found = [(path, value) for path, value in walk(packaged)
             if isinstance(value, str) and PLACEHOLDERS.search(value)
             and not path.endswith("/Tags/aws-chalice")]  # Chalice's own version tag
    assert found == []


# The user pool invokes PreSignUp, so PreSignUp cannot refer to the pool (a cycle): it gets
# every setting but the pool's, and needs none of them (it reads the table only).
POOL_SETTINGS = {"NSHUB_USER_POOL_ID", "NSHUB_CLIENT_ID", "NSHUB_ISSUER", "NSHUB_JWKS_URL"}


def test_every_function_gets_every_setting_from_the_stack(packaged, expanded):
    assert {"APIHandler", "OnBlobEvent", "OnTableChange", "OnImageBuildState", "Reconcile",
            "PreSignUp"} <= set(functions(packaged))
    lambdas = of_type(expanded, "AWS::Lambda::Function")  # SAM Globals applied
    assert set(lambdas) == set(functions(packaged))
    for name, fn in lambdas.items():
        env = fn["Properties"]["Environment"]["Variables"]
        wanted = set(STACK_SETTINGS) - (POOL_SETTINGS if name == "PreSignUp" else set())
        assert wanted <= set(env), (name, wanted - set(env))
        for setting in wanted:
            value = env[setting]
            assert isinstance(value, dict) and len(value) == 1, (name, setting, value)
            (kind, _), = value.items()
            assert kind in ("Ref", "Fn::GetAtt", "Fn::Sub"), (name, setting, value)
    assert not POOL_SETTINGS & set(lambdas["PreSignUp"]["Properties"]["Environment"]["Variables"])


NAME_PROPERTIES = ("TableName", "BucketName", "QueueName", "RoleName", "FunctionName",
                   "LogGroupName", "UserPoolName", "ClientName", "TopicName", "AlarmName", "Name")


def test_every_name_carries_the_stage_and_none_the_stack_name(packaged, expanded):
    named = 0
    for template in (packaged, expanded):
        for logical, res in template["Resources"].items():
            for prop in NAME_PROPERTIES:
                value = res.get("Properties", {}).get(prop)
                if value is None or not isinstance(value, (str, dict)) or (
                        isinstance(value, dict) and {"Ref", "Fn::GetAtt"} & set(value)):
                    continue  # absent, or another resource's name: not a name given here
                named += 1
                assert isinstance(value, dict) and "Fn::Sub" in value, (logical, prop, value)
                text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value[
                    "Fn::Sub"][0]
                assert "${Stage}" in text and "AWS::StackName" not in text, (logical, prop)
    assert named > 20
    # Every function has an explicit, stage-bound name (its log group is named after it).
    for name, fn in functions(packaged).items():
        assert "${Stage}" in fn["Properties"]["FunctionName"]["Fn::Sub"], name


def test_stage_accepts_any_lowercase_name(packaged):
    pattern = re.compile(packaged["Parameters"]["Stage"]["AllowedPattern"])
    for good in ("prod", "staging", "qa7", "eu-prod-2"):
        assert pattern.fullmatch(good)
    for bad in ("", "Prod", "7up", "a" * 21, "my_stage"):  # names S3 or IAM would refuse
        assert not pattern.fullmatch(bad)
    assert "AllowedValues" not in packaged["Parameters"]["Stage"]


# ---------------------------------------------------------------- the whole template
def test_expanded_template_lints_clean(expanded, tmp_path):
    path = tmp_path / "expanded.json"
    path.write_text(json.dumps(expanded))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_event_sources_point_at_this_stacks_resources(expanded):
    mappings = of_type(expanded, "AWS::Lambda::EventSourceMapping")
    by_function = {m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
                   for m in mappings.values()}
    sqs = by_function["OnBlobEvent"]
    assert sqs["EventSourceArn"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}  # a real dependency
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    stream = by_function["OnTableChange"]
    assert stream["EventSourceArn"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    rules = [r["Properties"] for r in of_type(expanded, "AWS::Events::Rule").values()
             if "EventPattern" in r["Properties"]]
    (build_rule,) = rules
    assert build_rule["EventPattern"]["detail"]["project-name"] == [
        {"Ref": "ExecutorImageBuild"}]


def test_each_function_has_its_own_role_and_log_group(expanded):
    lambdas = of_type(expanded, "AWS::Lambda::Function")
    roles = [fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in lambdas.values()]
    assert len(set(roles)) == len(lambdas)
    groups = {g["Properties"]["LogGroupName"]["Fn::Sub"]: g["Properties"]
              for g in of_type(expanded, "AWS::Logs::LogGroup").values()}
    for name, fn in lambdas.items():
        group = groups["/aws/lambda/" + fn["Properties"]["FunctionName"]["Fn::Sub"]]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        role = expanded["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
        assert not any("logs:CreateLogGroup" in json.dumps(s) for s in statements), name
        assert all("*" not in json.dumps(s.get("Resource", "")).replace("/*", "")
                   for s in statements), (name, statements)  # no wildcard account or region
    for group in groups.values():
        assert "RetentionInDays" in group


def test_api_access_logs(expanded):
    (stage,) = of_type(expanded, "AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "$context.requestId" in setting["Format"] and "$context.status" in setting["Format"]
    assert expanded["Resources"]["ApiGatewayAccount"]["Condition"] == "ManagesApiGatewayAccount"


def alarm_metrics(alarm: dict) -> list[tuple[str, str, dict]]:
    """(namespace, metric, dimensions) of every metric an alarm watches."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"],
                 {d["Name"]: d["Value"] for d in props.get("Dimensions", [])})]
    return [(m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"],
             {d["Name"]: d["Value"] for d in m["MetricStat"]["Metric"].get("Dimensions", [])})
            for m in props["Metrics"] if "MetricStat" in m]


def test_alarms_cover_what_can_go_wrong(expanded):
    alarms = of_type(expanded, "AWS::CloudWatch::Alarm")
    watched = [m for a in alarms.values() for m in alarm_metrics(a)]
    lambdas = set(of_type(expanded, "AWS::Lambda::Function"))
    for metric in ("Errors", "Throttles"):
        covered = {d["FunctionName"]["Ref"] for ns, name, d in watched
                   if (ns, name) == ("AWS/Lambda", metric)}
        assert covered == lambdas, metric  # a new function needs its line in the alarm
    assert ("AWS/Lambda", "IteratorAge", {"FunctionName": {"Ref": "OnTableChange"}}) in watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}}) in watched
    api = {"ApiName": {"Fn::Sub": "nshub-${Stage}"}}
    assert ("AWS/ApiGateway", "5XXError", api) in watched
    assert ("AWS/ApiGateway", "Latency", api) in watched
    assert any(a["Properties"].get("ExtendedStatistic") == "p99" for a in alarms.values())
    assert ("AWS/CodeBuild", "FailedBuilds", {"ProjectName": {"Ref": "ExecutorImageBuild"}}) in watched
    assert ("nshub-${Stage}", "VersionsQuarantined") in {
        (ns["Fn::Sub"] if isinstance(ns, dict) else ns, name) for ns, name, _ in watched}
    for logical, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical
    # The app writes its metrics where the alarm looks.
    env = expanded["Resources"]["OnBlobEvent"]["Properties"]["Environment"]["Variables"]
    assert env["NSHUB_METRICS_NAMESPACE"] == {"Fn::Sub": "nshub-${Stage}"}
    assert expanded["Resources"]["AlarmTopicEmail"]["Properties"]["Endpoint"] == {
        "Ref": "AlarmEmail"}


STATEFUL = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Cognito::UserPool",
            "AWS::SQS::Queue", "AWS::Logs::LogGroup")


def test_data_safety(expanded):
    res = expanded["Resources"]
    for logical, r in res.items():
        if r["Type"] in STATEFUL:
            assert "DeletionPolicy" in r and "UpdateReplacePolicy" in r, logical
    for logical in ("Table", "Bucket", "UserPool"):
        assert res[logical]["DeletionPolicy"] == res[logical]["UpdateReplacePolicy"] == "Retain"
    table = res["Table"]["Properties"]
    assert table["DeletionProtectionEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert res["UserPool"]["Properties"]["DeletionProtection"] == "ACTIVE"
    bucket = res["Bucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert any("NoncurrentVersionExpirationInDays" in rule
               for rule in bucket["LifecycleConfiguration"]["Rules"])
    mail = res["UserPool"]["Properties"]["EmailConfiguration"]["Fn::If"]
    assert mail[0] == "SendsMailThroughSes"
    assert mail[1]["EmailSendingAccount"] == "DEVELOPER"
    assert mail[1]["SourceArn"] == {"Ref": "SesIdentityArn"}


def test_image_builds_pull_their_base_image_outside_docker_hub(expanded):
    project = of_type(expanded, "AWS::CodeBuild::Project")["ExecutorImageBuild"]["Properties"]
    env = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    assert env["BASE_IMAGE"] == {"Ref": "ExecutorBaseImage"}
    assert expanded["Parameters"]["ExecutorBaseImage"]["Default"].startswith("public.ecr.aws/")
    assert 'FROM $BASE_IMAGE' in project["Source"]["BuildSpec"]
    assert "jinaai/jina" not in project["Source"]["BuildSpec"]


def test_ecr_pull_role_trusts_only_the_api_role(expanded):
    trust = expanded["Resources"]["EcrPullRole"]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/nshub-${Stage}-api"}}}
    assert expanded["Resources"]["ApiRole"]["Properties"]["RoleName"] == {
        "Fn::Sub": "nshub-${Stage}-api"}


# ---------------------------------------------------------------- make deploy
FAKE_AWS = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_AWS_LOG"
case "$*" in *describe-stacks*) echo "https://abc.execute-api.eu-west-1.amazonaws.com/api/";; esac
"""


def test_make_deploy_runs_cloudformation_on_the_packaged_template(project, packaged, tmp_path):
    fake = tmp_path / "aws"
    fake.write_text(FAKE_AWS)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    result = make(project, "deploy", env={"FAKE_AWS_LOG": str(log)}, AWS=str(fake),
                  STAGE="staging", STACK="Team-NSHub-Staging", REGION="eu-west-1",
                  ARTIFACTS_BUCKET="my-artifacts", PARAMETERS="AlarmEmail=ops@example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 3
    assert calls[0].startswith("cloudformation package --region eu-west-1 "
                               "--template-file build/package/sam.yaml --s3-bucket my-artifacts")
    deploy = calls[1].split()
    assert deploy[:2] == ["cloudformation", "deploy"]
    assert deploy[deploy.index("--stack-name") + 1] == "Team-NSHub-Staging"
    assert deploy[deploy.index("--template-file") + 1] == "build/package/packaged.yaml"
    caps = deploy[deploy.index("--capabilities") + 1:deploy.index("--parameter-overrides")]
    assert set(caps) == {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert deploy[deploy.index("--parameter-overrides") + 1:][:2] == [
        "Stage=staging", "AlarmEmail=ops@example.com"]
    assert "execute-api" in result.stdout  # the endpoint is the last thing printed


def test_make_deploy_without_an_artifacts_bucket_says_what_to_do(project, packaged, tmp_path):
    result = make(project, "deploy", AWS=str(tmp_path / "never-called"), STAGE="staging")
    assert result.returncode != 0
    assert "ARTIFACTS_BUCKET is not set" in result.stdout + result.stderr


def test_config_json_needs_no_editing():
    config = json.loads((Path(__file__).resolve().parent.parent / ".chalice" / "config.json"
                         ).read_text())
    text = json.dumps(config)
    assert "REPLACE" not in text and "environment_variables" not in text
    assert config["manage_iam_role"] is False  # roles are infra/functions.yaml's
