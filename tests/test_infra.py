"""infra/template.yaml is the one source of truth: cfn-lint passes, and the local stack that
devstack/bootstrap.py provisions on moto matches what the template declares (expected values
are read from the template, never restated here). Also: the event pump against moto."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from chalicelib import keys
from devstack.bootstrap import TEMPLATE_PATH, load_template, one_resource, provision
from devstack.pump import EventPump, FakeLambdaContext
from tests.backend import client

REPO = Path(__file__).resolve().parent.parent


def props(template: dict, type_name: str) -> dict:
    return one_resource(template, type_name)[1]["Properties"]


def by_name(items: list[dict], key: str) -> dict:
    return {item[key]: item for item in items}


# ---------------------------------------------------------------- the template itself
def test_cfn_lint_passes():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE_PATH)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_short_tags_become_intrinsic_dicts():
    template = load_template()
    table = props(template, "AWS::DynamoDB::Table")
    assert table["TableName"] == {"Fn::Sub": "nshub-${Stage}"}
    client_props = props(template, "AWS::Cognito::UserPoolClient")
    assert client_props["UserPoolId"] == {"Ref": "UserPool"}
    queue = template["Resources"]["EventsQueue"]
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]
    }


def test_template_declares_what_the_design_requires():
    t = load_template()
    table = props(t, "AWS::DynamoDB::Table")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    bucket = props(t, "AWS::S3::Bucket")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    outputs = set(t["Outputs"])
    assert {"TableName", "TableStreamArn", "BucketName", "EventsQueueUrl", "EventsQueueArn",
            "EventsDeadLetterQueueUrl", "UserPoolId", "UserPoolClientId", "CodeBuildProject",
            "EcrPullRoleArn"} <= outputs


# ---------------------------------------------------------------- the provisioned stack
def test_table_matches_template(aws_env):
    t = props(load_template(), "AWS::DynamoDB::Table")
    ddb = client(aws_env, "dynamodb")
    desc = ddb.describe_table(TableName=aws_env["NSHUB_TABLE"])["Table"]
    assert desc["KeySchema"] == t["KeySchema"]
    assert by_name(desc["AttributeDefinitions"], "AttributeName") == by_name(
        t["AttributeDefinitions"], "AttributeName")
    assert desc["BillingModeSummary"]["BillingMode"] == t["BillingMode"]
    got = by_name(desc.get("GlobalSecondaryIndexes", []), "IndexName")
    want = by_name(t["GlobalSecondaryIndexes"], "IndexName")
    assert set(got) == set(want)
    for name, gsi in want.items():
        assert got[name]["KeySchema"] == gsi["KeySchema"]
        assert got[name]["Projection"]["ProjectionType"] == gsi["Projection"]["ProjectionType"]
    assert desc["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": t["StreamSpecification"]["StreamViewType"],
    }
    assert desc["LatestStreamArn"] == aws_env["NSHUB_TABLE_STREAM_ARN"]
    ttl = ddb.describe_time_to_live(TableName=aws_env["NSHUB_TABLE"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED",
                   "AttributeName": t["TimeToLiveSpecification"]["AttributeName"]}


def test_bucket_matches_template(aws_env):
    t = props(load_template(), "AWS::S3::Bucket")
    s3 = client(aws_env, "s3")
    bucket = aws_env["NSHUB_BUCKET"]

    notif = s3.get_bucket_notification_configuration(Bucket=bucket)
    queues = notif["QueueConfigurations"]
    want = t["NotificationConfiguration"]["QueueConfigurations"]
    assert len(queues) == len(want)
    queue_arn = client(aws_env, "sqs").get_queue_attributes(
        QueueUrl=aws_env["NSHUB_EVENTS_QUEUE_URL"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    for got, w in zip(queues, want):
        assert got["QueueArn"] == queue_arn
        assert got["Events"] == [w["Event"]]
        assert got["Filter"]["Key"]["FilterRules"] == [
            {"Name": r["Name"], "Value": r["Value"]} for r in w["Filter"]["S3Key"]["Rules"]
        ]

    cors = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    want_cors = t["CorsConfiguration"]["CorsRules"]
    assert len(cors) == len(want_cors)
    for got, w in zip(cors, want_cors):
        assert sorted(got["AllowedMethods"]) == sorted(w["AllowedMethods"])
        assert got["AllowedOrigins"] == w["AllowedOrigins"]
        assert got["AllowedHeaders"] == w["AllowedHeaders"]
        assert got["ExposeHeaders"] == w["ExposedHeaders"]

    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    want_rules = t["LifecycleConfiguration"]["Rules"]
    assert [r["ID"] for r in rules] == [r["Id"] for r in want_rules]
    for got, w in zip(rules, want_rules):
        assert got["Status"] == w["Status"]
        if "AbortIncompleteMultipartUpload" in w:
            assert got["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == (
                w["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        if "NoncurrentVersionExpirationInDays" in w:
            assert got["NoncurrentVersionExpiration"]["NoncurrentDays"] == (
                w["NoncurrentVersionExpirationInDays"])
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == (
        t["VersioningConfiguration"]["Status"])

    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert pab == t["PublicAccessBlockConfiguration"]
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    want_alg = t["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == want_alg


def test_queues_match_template(aws_env):
    template = load_template()
    main = template["Resources"]["EventsQueue"]["Properties"]
    dlq = template["Resources"]["EventsDeadLetterQueue"]["Properties"]
    sqs = client(aws_env, "sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=aws_env["NSHUB_EVENTS_QUEUE_URL"],
                                     AttributeNames=["All"])["Attributes"]
    dlq_attrs = sqs.get_queue_attributes(QueueUrl=aws_env["NSHUB_EVENTS_DLQ_URL"],
                                         AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq_attrs["QueueArn"],
                       "maxReceiveCount": main["RedrivePolicy"]["maxReceiveCount"]}
    assert int(attrs["VisibilityTimeout"]) == main["VisibilityTimeout"]
    assert int(dlq_attrs["MessageRetentionPeriod"]) == dlq["MessageRetentionPeriod"]
    policy = json.loads(attrs["Policy"])["Statement"][0]
    assert policy["Principal"] == {"Service": "s3.amazonaws.com"}
    assert policy["Condition"]["ArnLike"]["aws:SourceArn"] == (
        f"arn:aws:s3:::{aws_env['NSHUB_BUCKET']}")
    # A fresh stack starts with an empty queue (the s3:TestEvent is dropped).
    assert attrs["ApproximateNumberOfMessages"] == "0"


def test_cognito_matches_template(aws_env):
    template = load_template()
    pool_t = props(template, "AWS::Cognito::UserPool")
    client_t = props(template, "AWS::Cognito::UserPoolClient")
    idp = client(aws_env, "cognito-idp")
    pool = idp.describe_user_pool(UserPoolId=aws_env["NSHUB_USER_POOL_ID"])["UserPool"]
    policy = pool["Policies"]["PasswordPolicy"]
    for key, value in pool_t["Policies"]["PasswordPolicy"].items():
        assert policy[key] == value, key
    assert pool["UsernameConfiguration"] == pool_t["UsernameConfiguration"]
    assert pool["AutoVerifiedAttributes"] == pool_t["AutoVerifiedAttributes"]
    app_client = idp.describe_user_pool_client(
        UserPoolId=aws_env["NSHUB_USER_POOL_ID"], ClientId=aws_env["NSHUB_CLIENT_ID"]
    )["UserPoolClient"]
    assert sorted(app_client["ExplicitAuthFlows"]) == sorted(client_t["ExplicitAuthFlows"])
    assert "ClientSecret" not in app_client
    assert aws_env["NSHUB_ISSUER"].endswith("/" + aws_env["NSHUB_USER_POOL_ID"])
    jwks = requests.get(aws_env["NSHUB_JWKS_URL"], timeout=10)
    assert jwks.status_code == 200 and jwks.json()["keys"]


def test_image_build_resources(aws_env):
    template = load_template()
    project_t = props(template, "AWS::CodeBuild::Project")
    cb = client(aws_env, "codebuild")
    project = cb.batch_get_projects(names=[aws_env["NSHUB_CODEBUILD_PROJECT"]])["projects"][0]
    assert project["environment"]["image"] == project_t["Environment"]["Image"]
    assert project["environment"]["privilegedMode"] is True
    assert "docker build" in project["source"]["buildspec"]
    iam = client(aws_env, "iam")
    role = iam.get_role(RoleName=aws_env["NSHUB_ECR_PULL_ROLE_ARN"].rsplit("/", 1)[1])["Role"]
    assert role["Arn"] == aws_env["NSHUB_ECR_PULL_ROLE_ARN"]
    creds = client(aws_env, "sts").assume_role(RoleArn=role["Arn"], RoleSessionName="nshub-test")
    assert creds["Credentials"]["AccessKeyId"]


def test_provision_is_idempotent(aws_env):
    again = provision(aws_env["AWS_ENDPOINT_URL"], region=aws_env["AWS_REGION"], stage="dev")
    assert again == aws_env


def test_change_the_template_and_the_stack_follows(moto_server, tmp_path):
    """A modified template (new TTL attribute, extra GSI, other maxReceiveCount) is what moto
    gets: nothing about the stack is restated in the bootstrap."""
    text = TEMPLATE_PATH.read_text()
    text = text.replace("AttributeName: expires_at", "AttributeName: ttl_at")
    text = text.replace("maxReceiveCount: 5", "maxReceiveCount: 2")
    text = text.replace(
        "        - AttributeName: gsi1sk\n          AttributeType: S\n",
        "        - AttributeName: gsi1sk\n          AttributeType: S\n"
        "        - AttributeName: gsi2pk\n          AttributeType: S\n",
    )
    text = text.replace(
        "      StreamSpecification:",
        "        - IndexName: gsi2\n"
        "          KeySchema:\n"
        "            - AttributeName: gsi2pk\n              KeyType: HASH\n"
        "          Projection:\n            ProjectionType: KEYS_ONLY\n"
        "      StreamSpecification:",
    )
    path = tmp_path / "template.yaml"
    path.write_text(text)
    # The edit is a valid template with the intended changes.
    table = props(load_template(path), "AWS::DynamoDB::Table")
    assert [g["IndexName"] for g in table["GlobalSecondaryIndexes"]] == ["gsi1", "gsi2"]

    requests.post(f"{moto_server}/moto-api/reset", timeout=30).raise_for_status()
    try:
        env = provision(moto_server, stage="dev", template_path=path)
        ddb = client(env, "dynamodb")
        desc = ddb.describe_table(TableName=env["NSHUB_TABLE"])["Table"]
        assert {g["IndexName"] for g in desc["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2"}
        ttl = ddb.describe_time_to_live(TableName=env["NSHUB_TABLE"])["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "ttl_at"
        attrs = client(env, "sqs").get_queue_attributes(
            QueueUrl=env["NSHUB_EVENTS_QUEUE_URL"], AttributeNames=["RedrivePolicy"])
        assert json.loads(attrs["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 2
    finally:
        requests.post(f"{moto_server}/moto-api/reset", timeout=30).raise_for_status()


def test_load_template_rejects_nothing_safe_loader_would_not():
    # The loader is a SafeLoader: arbitrary Python tags are still refused.
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.load("!!python/object/apply:os.system ['true']",
                  Loader=__import__("devstack.bootstrap", fromlist=["CfnLoader"]).CfnLoader)


# ---------------------------------------------------------------- the event pump on moto
class Recorder:
    def __init__(self, fail_bodies: tuple[str, ...] = (), raise_times: int = 0):
        self.events: list[dict] = []
        self.contexts: list = []
        self.fail_bodies = fail_bodies
        self.raise_times = raise_times

    def sqs(self, event, context):
        self.events.append(event)
        self.contexts.append(context)
        return {"batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"]
            if any(b in r["body"] for b in self.fail_bodies)
        ]}

    def stream(self, event, context):
        self.events.append(event)
        self.contexts.append(context)
        if self.raise_times > 0:
            self.raise_times -= 1
            raise RuntimeError("transient")

    @property
    def records(self) -> list[dict]:
        return [r for e in self.events for r in e["Records"]]


def test_pump_delivers_s3_notifications_as_lambda_sqs_events(aws_env):
    rec = Recorder()
    pump = EventPump(aws_env, rec.sqs, None)
    s3 = client(aws_env, "s3")
    s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key="blobs/arrays/alice/fashion mnist/u1",
                  Body=b"abc")
    s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key="elsewhere/x", Body=b"abc")  # filtered
    assert pump.drain() == 1
    (record,) = rec.records
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":nshub-dev-blob-events")
    assert record["awsRegion"] == aws_env["AWS_REGION"]
    assert {"messageId", "receiptHandle", "body", "attributes", "messageAttributes",
            "md5OfBody"} <= set(record)
    s3_event = json.loads(record["body"])["Records"][0]
    assert s3_event["eventName"].startswith("ObjectCreated:")
    assert s3_event["s3"]["object"]["key"] == "blobs%2Farrays%2Falice%2Ffashion+mnist%2Fu1"
    ctx = rec.contexts[0]
    assert isinstance(ctx, FakeLambdaContext)
    assert ctx.aws_request_id and ctx.function_name and ctx.invoked_function_arn
    assert 0 < ctx.get_remaining_time_in_millis() <= 60_000
    # Delivered and deleted: nothing comes back.
    assert pump.drain() == 0


def test_pump_partial_batch_failures_end_in_the_dead_letter_queue(aws_env):
    max_receive = load_template()["Resources"]["EventsQueue"]["Properties"][
        "RedrivePolicy"]["maxReceiveCount"]
    rec = Recorder(fail_bodies=("poison",))
    pump = EventPump(aws_env, rec.sqs, None, failed_visibility_timeout=0)
    sqs = client(aws_env, "sqs")
    sqs.send_message(QueueUrl=aws_env["NSHUB_EVENTS_QUEUE_URL"], MessageBody="good")
    sqs.send_message(QueueUrl=aws_env["NSHUB_EVENTS_QUEUE_URL"], MessageBody="poison")
    pump.drain()
    bodies = [r["body"] for r in rec.records]
    assert bodies.count("good") == 1
    assert bodies.count("poison") == max_receive
    dead = sqs.receive_message(QueueUrl=aws_env["NSHUB_EVENTS_DLQ_URL"],
                               MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]


def test_pump_delivers_stream_records_shaped_like_lambda(aws_env):
    rec = Recorder(raise_times=1)
    pump = EventPump(aws_env, None, rec.stream)
    ddb = client(aws_env, "dynamodb")
    table = aws_env["NSHUB_TABLE"]
    key = {"pk": {"S": keys.resource_pk("alice", "x")}, "sk": {"S": keys.head_sk("array")}}
    ddb.put_item(TableName=table, Item={**key, "blob": {"B": b"\x00\x01"}, "n": {"N": "1"}})
    ddb.delete_item(TableName=table, Key=key)
    pump.drain()
    # The first delivery raised: the same records came again (at-least-once).
    assert len(rec.events) == 2
    assert rec.events[0] == rec.events[1]
    insert, remove = rec.events[1]["Records"]
    assert (insert["eventName"], remove["eventName"]) == ("INSERT", "REMOVE")
    for r in (insert, remove):
        assert r["eventSource"] == "aws:dynamodb"
        assert r["eventSourceARN"] == aws_env["NSHUB_TABLE_STREAM_ARN"]
        assert r["awsRegion"] == aws_env["AWS_REGION"]
        assert r["dynamodb"]["Keys"] == key
        assert isinstance(r["dynamodb"]["ApproximateCreationDateTime"], int)
        assert r["dynamodb"]["SequenceNumber"]
    assert insert["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}  # base64, as in Lambda
    assert remove["dynamodb"]["OldImage"]["n"] == {"N": "1"}
    json.dumps(rec.events)  # the event is plain JSON, as Lambda delivers it
    assert pump.drain() == 0


def test_pump_follows_a_recreated_table(aws_env, moto_server):
    rec = Recorder()
    pump = EventPump(aws_env, None, rec.stream)
    assert pump.drain() == 0
    requests.post(f"{moto_server}/moto-api/reset", timeout=30).raise_for_status()
    env = provision(moto_server, stage="dev")
    client(env, "dynamodb").put_item(
        TableName=env["NSHUB_TABLE"], Item={"pk": {"S": keys.resource_pk("a", "b")}, "sk": {"S": "x"}})
    assert pump.drain() == 1
    assert rec.records[0]["eventSourceARN"] == env["NSHUB_TABLE_STREAM_ARN"]
