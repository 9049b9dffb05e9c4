"""Provision a local (moto) stack from infra/template.yaml: one source of truth.

moto's CloudFormation silently drops resource types, so this does not deploy the template: it
reads the definitions it needs (table keys, indexes, stream, TTL; bucket CORS, lifecycle,
notification; queues and redrive; Cognito policies and client flows; the CodeBuild project and
IAM roles) and makes the equivalent boto3 calls. Change the template and the local stack
follows.

    env = provision("http://127.0.0.1:5000")      # -> the environment the app reads
    seed_users(env, {"alice": "Secret123", "bob": "Secret456"})
"""
from __future__ import annotations

import functools
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"
PARTITION = "aws"


# ------------------------------------------------------------------ template loading
class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation short tags (!Ref, !Sub, !GetAtt, ...)."""


def _cfn_constructor(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_constructor)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def load_template(path: str | os.PathLike | None = None) -> dict:
    """The template as plain data; short tags become {"Ref": ...} / {"Fn::Sub": ...} dicts."""
    import copy

    p = Path(path) if path else TEMPLATE_PATH
    # A copy: a caller that merges into what it got must not change every later provision.
    return copy.deepcopy(_load_cached(str(p), p.stat().st_mtime))


def resources_of_type(template: dict, type_name: str) -> dict[str, dict]:
    return {
        logical: res
        for logical, res in template.get("Resources", {}).items()
        if res.get("Type") == type_name
    }


def one_resource(template: dict, type_name: str) -> tuple[str, dict]:
    found = resources_of_type(template, type_name)
    if len(found) != 1:
        raise ValueError(f"template must declare exactly one {type_name}, found {sorted(found)}")
    return next(iter(found.items()))


# ------------------------------------------------------------------ intrinsic resolution
class Resolver:
    """Resolves Ref / Fn::Sub / Fn::GetAtt / Fn::Join / Fn::If for the resources we create."""

    _SUB = re.compile(r"\$\{([^}!]+)\}")

    def __init__(self, params: dict[str, str]) -> None:
        self.params = dict(params)
        self.refs: dict[str, str] = {}
        self.atts: dict[tuple[str, str], str] = {}
        self.conditions: dict[str, bool] = {}

    def ref(self, name: str) -> str:
        if name in self.params:
            return self.params[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"cannot resolve Ref {name!r} (not created yet?)")

    def getatt(self, logical: str, attr: str) -> str:
        try:
            return self.atts[(logical, attr)]
        except KeyError:
            raise KeyError(f"cannot resolve Fn::GetAtt {logical}.{attr}") from None

    def _sub_var(self, var: str, local: dict[str, Any]) -> str:
        var = var.strip()
        if var in local:
            return str(self(local[var]))
        if "." in var and not var.startswith("AWS::"):
            logical, attr = var.split(".", 1)
            return self.getatt(logical, attr)
        return self.ref(var)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(logical, attr)
            if key == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return self._SUB.sub(lambda m: self._sub_var(m.group(1), local), text)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self(items))
            if key == "Fn::If":
                cond, yes, no = arg
                return self(yes if self.conditions.get(cond, False) else no)
            if key == "Fn::Select":
                index, items = arg
                return self(items)[int(self(index))]
        return {k: self(v) for k, v in value.items()}


# ------------------------------------------------------------------ clients
_clients_lock = threading.Lock()
_clients: dict[tuple[str, str, str], Any] = {}


def _client(service: str, endpoint_url: str, region: str) -> Any:
    key = (service, endpoint_url, region)
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(
                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing",
                aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
                region_name=region,
            )
            cfg = Config(retries={"max_attempts": 3, "mode": "standard"})
            if service == "s3":
                cfg = cfg.merge(Config(signature_version="s3v4", s3={"addressing_style": "path"}))
            found = session.client(service, endpoint_url=endpoint_url, region_name=region, config=cfg)
            _clients[key] = found
        return found


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


# ------------------------------------------------------------------ resources
def _table(props: dict, r: Resolver, ddb: Any) -> tuple[str, str]:
    name = r(props["TableName"])
    args: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = [
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection",
                                                   "ProvisionedThroughput")}
            for gsi in props["GlobalSecondaryIndexes"]
        ]
    if props.get("LocalSecondaryIndexes"):
        args["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
    stream = props.get("StreamSpecification")
    if stream:
        args["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    if args["BillingMode"] == "PROVISIONED":
        args["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    try:
        desc = ddb.create_table(**args)["TableDescription"]
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) != "ResourceInUseException":
            raise
        desc = ddb.describe_table(TableName=name)["Table"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled", True):
        try:
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        except Exception as exc:  # noqa: BLE001 - already enabled on a re-run
            if _error_code(exc) != "ValidationException":
                raise
    return name, desc.get("LatestStreamArn", "")


def _queue(props: dict, r: Resolver, sqs: Any, region: str, account: str) -> tuple[str, str]:
    name = r(props["QueueName"])
    attrs: dict[str, str] = {}
    for cfn_key, api_key in (
        ("VisibilityTimeout", "VisibilityTimeout"),
        ("MessageRetentionPeriod", "MessageRetentionPeriod"),
        ("DelaySeconds", "DelaySeconds"),
        ("MaximumMessageSize", "MaximumMessageSize"),
        ("ReceiveMessageWaitTimeSeconds", "ReceiveMessageWaitTimeSeconds"),
    ):
        if cfn_key in props:
            attrs[api_key] = str(r(props[cfn_key]))
    if "RedrivePolicy" in props:
        redrive = r(props["RedrivePolicy"])
        attrs["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                "maxReceiveCount": int(redrive["maxReceiveCount"]),
            }
        )
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    except Exception as exc:  # noqa: BLE001 - exists with other attributes: update them
        if _error_code(exc) not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
    arn = f"arn:{PARTITION}:sqs:{region}:{account}:{name}"
    return url, arn


def _queue_policies(template: dict, r: Resolver, sqs: Any) -> None:
    for _, res in resources_of_type(template, "AWS::SQS::QueuePolicy").items():
        props = res["Properties"]
        policy = json.dumps(r(props["PolicyDocument"]))
        for url in r(props["Queues"]):
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})


def _notification(props: dict, r: Resolver) -> dict:
    notif = props.get("NotificationConfiguration") or {}
    out: dict[str, list] = {}
    for cfn_key, api_key, target_key, arn_key in (
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
    ):
        for conf in notif.get(cfn_key, []):
            item: dict[str, Any] = {arn_key: r(conf[target_key]), "Events": [conf["Event"]]}
            rules = conf.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            if rules:
                item["Filter"] = {
                    "Key": {"FilterRules": [{"Name": x["Name"], "Value": r(x["Value"])}
                                            for x in rules]}
                }
            out.setdefault(api_key, []).append(item)
    return out


def _lifecycle_rule(rule: dict) -> dict:
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule.get("Status", "Enabled")}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])
        }
    return out


def _sse_rule(rule: dict) -> dict:
    out: dict[str, Any] = {}
    default = rule.get("ServerSideEncryptionByDefault")
    if default:
        out["ApplyServerSideEncryptionByDefault"] = {
            k: v for k, v in default.items() if k in ("SSEAlgorithm", "KMSMasterKeyID")
        }
    if "BucketKeyEnabled" in rule:
        out["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
    return out


def _cors_rule(rule: dict) -> dict:
    mapping = {
        "AllowedMethods": "AllowedMethods",
        "AllowedOrigins": "AllowedOrigins",
        "AllowedHeaders": "AllowedHeaders",
        "ExposedHeaders": "ExposeHeaders",
        "MaxAge": "MaxAgeSeconds",
        "Id": "ID",
    }
    return {api: rule[cfn] for cfn, api in mapping.items() if cfn in rule}


def _bucket(props: dict, r: Resolver, s3: Any, sqs: Any, region: str, queue_url_by_arn: dict) -> str:
    name = r(props["BucketName"])
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
            )
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    versioning = props.get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(Bucket=name,
                                 VersioningConfiguration={"Status": versioning["Status"]})
    pab = props.get("PublicAccessBlockConfiguration")
    if pab:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=pab)
    enc = props.get("BucketEncryption")
    if enc:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [_sse_rule(x) for x in enc["ServerSideEncryptionConfiguration"]]
            },
        )
    cors = props.get("CorsConfiguration")
    if cors:
        s3.put_bucket_cors(
            Bucket=name,
            CORSConfiguration={"CORSRules": [_cors_rule(x) for x in cors["CorsRules"]]},
        )
    life = props.get("LifecycleConfiguration")
    if life:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={"Rules": [_lifecycle_rule(x) for x in life["Rules"]]},
        )
    notification = _notification(props, r)
    if notification:
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration=notification
        )
        # S3 (and moto) sends an s3:TestEvent when notifications are configured; drop it so a
        # fresh stack starts with empty queues (handlers still ignore TestEvents in prod).
        for conf in notification.get("QueueConfigurations", []):
            url = queue_url_by_arn.get(conf["QueueArn"])
            if url:
                _drop_test_events(sqs, url)
    return name


def _drop_test_events(sqs: Any, url: str) -> None:
    resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                               VisibilityTimeout=0)
    for msg in resp.get("Messages", []):
        if '"s3:TestEvent"' in msg.get("Body", ""):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])


def _user_pool(props: dict, r: Resolver, idp: Any) -> str:
    name = r(props["UserPoolName"])
    for pool in idp.list_user_pools(MaxResults=60).get("UserPools", []):
        if pool["Name"] == name:
            return pool["Id"]
    args: dict[str, Any] = {"PoolName": name}
    for key in ("Policies", "UsernameConfiguration", "AutoVerifiedAttributes",
                "UsernameAttributes", "AliasAttributes", "MfaConfiguration",
                "AccountRecoverySetting"):
        if key in props:
            args[key] = r(props[key])
    if "Schema" in props:
        args["Schema"] = r(props["Schema"])
    return idp.create_user_pool(**args)["UserPool"]["Id"]


def _user_pool_client(props: dict, r: Resolver, idp: Any, pool_id: str) -> str:
    name = r(props["ClientName"])
    for client in idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60).get(
        "UserPoolClients", []
    ):
        if client["ClientName"] == name:
            return client["ClientId"]
    args: dict[str, Any] = {"UserPoolId": pool_id, "ClientName": name}
    for key in ("GenerateSecret", "ExplicitAuthFlows", "PreventUserExistenceErrors",
                "IdTokenValidity", "AccessTokenValidity", "RefreshTokenValidity",
                "TokenValidityUnits", "EnableTokenRevocation", "ReadAttributes",
                "WriteAttributes", "SupportedIdentityProviders"):
        if key in props:
            args[key] = r(props[key])
    return idp.create_user_pool_client(**args)["UserPoolClient"]["ClientId"]


def _role(logical: str, props: dict, r: Resolver, iam: Any, stage: str) -> str:
    name = r(props["RoleName"]) if "RoleName" in props else f"nshub-{stage}-{logical}"
    try:
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(r(props["AssumeRolePolicyDocument"])),
            Description=r(props.get("Description", "")),
        )["Role"]["Arn"]
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) != "EntityAlreadyExists":
            raise
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    for pol in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=pol["PolicyName"],
            PolicyDocument=json.dumps(r(pol["PolicyDocument"])),
        )
    return arn


def _codebuild(props: dict, r: Resolver, cb: Any) -> str:
    name = r(props["Name"])
    env = r(props["Environment"])
    src = r(props["Source"])
    args = {
        "name": name,
        "source": {
            "type": src["Type"],
            # moto insists on a location even for NO_SOURCE (AWS forbids one there).
            "location": src.get("Location") or "NO_SOURCE",
            **({"buildspec": src["BuildSpec"]} if "BuildSpec" in src else {}),
        },
        "artifacts": {"type": r(props["Artifacts"])["Type"]},
        "environment": {
            "type": env["Type"],
            "image": env["Image"],
            "computeType": env["ComputeType"],
            "privilegedMode": bool(env.get("PrivilegedMode", False)),
            "environmentVariables": [
                {"name": v["Name"], "value": str(v["Value"]), "type": v.get("Type", "PLAINTEXT")}
                for v in env.get("EnvironmentVariables", [])
            ],
        },
        "serviceRole": r(props["ServiceRole"]),
    }
    if "TimeoutInMinutes" in props:
        args["timeoutInMinutes"] = int(props["TimeoutInMinutes"])
    try:
        cb.create_project(**args)
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) not in ("ResourceAlreadyExistsException",):
            raise
    return name


# ------------------------------------------------------------------ public API
def provision(endpoint_url: str, region: str = "us-east-1", stage: str = "dev", *,
              template_path: str | os.PathLike | None = None) -> dict[str, str]:
    """Create the stack the template declares on a moto server; return the app's environment.

    Safe to call right after `POST {endpoint}/moto-api/reset`, and again on a live stack.
    `template_path` defaults to infra/template.yaml (tests pass a modified copy).
    """
    endpoint_url = endpoint_url.rstrip("/")
    template = load_template(template_path)
    c = functools.partial(_client, endpoint_url=endpoint_url, region=region)
    try:
        account = c("sts").get_caller_identity()["Account"]
    except Exception:  # noqa: BLE001 - moto's default account
        account = "123456789012"
    params = {
        p: str(spec.get("Default", "")) for p, spec in template.get("Parameters", {}).items()
    }
    params.update(
        {
            "Stage": stage,
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": PARTITION,
            "AWS::StackName": f"nshub-{stage}",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }
    )
    r = Resolver(params)

    # Queues: dead-letter queues (no redrive) first, so redrive targets resolve.
    queues = resources_of_type(template, "AWS::SQS::Queue")
    order = sorted(queues, key=lambda k: "RedrivePolicy" in queues[k]["Properties"])
    sqs = c("sqs")
    queue_url_by_arn: dict[str, str] = {}
    for logical in order:
        url, arn = _queue(queues[logical]["Properties"], r, sqs, region, account)
        r.refs[logical] = url
        r.atts[(logical, "Arn")] = arn
        r.atts[(logical, "QueueName")] = arn.rsplit(":", 1)[1]
        r.atts[(logical, "QueueUrl")] = url
        queue_url_by_arn[arn] = url

    # Table.
    table_logical, table_res = one_resource(template, "AWS::DynamoDB::Table")
    table_name, stream_arn = _table(table_res["Properties"], r, c("dynamodb"))
    r.refs[table_logical] = table_name
    r.atts[(table_logical, "Arn")] = f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{table_name}"
    r.atts[(table_logical, "StreamArn")] = stream_arn

    # Bucket (name first, so the queue policy's !Sub of the bucket name resolves).
    bucket_logical, bucket_res = one_resource(template, "AWS::S3::Bucket")
    bucket_name = r(bucket_res["Properties"]["BucketName"])
    r.refs[bucket_logical] = bucket_name
    r.atts[(bucket_logical, "Arn")] = f"arn:{PARTITION}:s3:::{bucket_name}"
    _queue_policies(template, r, sqs)
    _bucket(bucket_res["Properties"], r, c("s3"), sqs, region, queue_url_by_arn)

    # Cognito.
    pool_logical, pool_res = one_resource(template, "AWS::Cognito::UserPool")
    idp = c("cognito-idp")
    pool_id = _user_pool(pool_res["Properties"], r, idp)
    r.refs[pool_logical] = pool_id
    r.atts[(pool_logical, "Arn")] = (
        f"arn:{PARTITION}:cognito-idp:{region}:{account}:userpool/{pool_id}"
    )
    client_logical, client_res = one_resource(template, "AWS::Cognito::UserPoolClient")
    client_id = _user_pool_client(client_res["Properties"], r, idp, pool_id)
    r.refs[client_logical] = client_id

    # Log groups are names only (moto logs are not needed locally).
    for logical, res in resources_of_type(template, "AWS::Logs::LogGroup").items():
        lg = r(res["Properties"]["LogGroupName"])
        r.refs[logical] = lg
        r.atts[(logical, "Arn")] = f"arn:{PARTITION}:logs:{region}:{account}:log-group:{lg}"

    # IAM roles, then the CodeBuild project that uses one.
    iam = c("iam")
    role_arns: dict[str, str] = {}
    for logical, res in resources_of_type(template, "AWS::IAM::Role").items():
        arn = _role(logical, res["Properties"], r, iam, stage)
        role_arns[logical] = arn
        r.refs[logical] = arn.rsplit("/", 1)[1]
        r.atts[(logical, "Arn")] = arn
    project = ""
    for logical, res in resources_of_type(template, "AWS::CodeBuild::Project").items():
        project = _codebuild(res["Properties"], r, c("codebuild"))
        r.refs[logical] = project

    return {
        "NSHUB_STAGE": stage,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
        "NSHUB_TABLE": table_name,
        "NSHUB_TABLE_STREAM_ARN": stream_arn,
        "NSHUB_BUCKET": bucket_name,
        "NSHUB_EVENTS_QUEUE_URL": r.ref(_logical_with_redrive(queues)),
        "NSHUB_EVENTS_DLQ_URL": r.ref(_logical_dlq(queues)),
        "NSHUB_USER_POOL_ID": pool_id,
        "NSHUB_CLIENT_ID": client_id,
        "NSHUB_ISSUER": f"https://cognito-idp.{region}.amazonaws.com/{pool_id}",
        "NSHUB_JWKS_URL": f"{endpoint_url}/{pool_id}/.well-known/jwks.json",
        "NSHUB_CODEBUILD_PROJECT": project,
        "NSHUB_ECR_REGISTRY": f"{account}.dkr.ecr.{region}.amazonaws.com",
        "NSHUB_ECR_PULL_ROLE_ARN": role_arns.get("EcrPullRole", ""),
    }


def _logical_with_redrive(queues: dict[str, dict]) -> str:
    found = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
    if len(found) != 1:
        raise ValueError(f"expected one queue with a RedrivePolicy, found {found}")
    return found[0]


def _logical_dlq(queues: dict[str, dict]) -> str:
    main = queues[_logical_with_redrive(queues)]["Properties"]["RedrivePolicy"]
    target = main["deadLetterTargetArn"]
    logical = target["Fn::GetAtt"][0] if isinstance(target, dict) else None
    if logical not in queues:
        raise ValueError("the events queue's dead-letter target must be a queue of the template")
    return logical


def seed_users(env: dict, users: dict[str, str]) -> None:
    """Create confirmed Cognito users (permanent passwords, verified email) in env's pool."""
    endpoint = env["AWS_ENDPOINT_URL"]
    region = env.get("AWS_REGION", "us-east-1")
    idp = _client("cognito-idp", endpoint, region)
    pool_id = env["NSHUB_USER_POOL_ID"]
    for username, password in users.items():
        try:
            idp.admin_create_user(
                UserPoolId=pool_id,
                Username=username,
                UserAttributes=[
                    {"Name": "email", "Value": f"{username}@example.com"},
                    {"Name": "email_verified", "Value": "true"},
                ],
                MessageAction="SUPPRESS",
            )
        except Exception as exc:  # noqa: BLE001
            if _error_code(exc) != "UsernameExistsException":
                raise
        idp.admin_set_user_password(
            UserPoolId=pool_id, Username=username, Password=password, Permanent=True
        )
