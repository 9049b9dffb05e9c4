"""A small IAM policy evaluator and the IAM view of botocore calls, for the least-privilege
check (tests/least_privilege.py); tested on its own in tests/test_iam_policy.py.

Evaluation follows AWS's rules for what our policies use: an explicit Deny wins, else any Allow
whose Action (or NotAction) and Resource (or NotResource) match allows, else it is denied.
Actions match case-insensitively, resources case-sensitively; `*` matches any run of
characters (also `/` and `:`), `?` any one. A statement with a Condition is refused: the
function roles need none, and an evaluator that ignored one would allow too much.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable
from urllib.parse import urlparse


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _any_match(globs: Any, value: str, ignore_case: bool) -> bool:
    return any(_pattern(g, ignore_case).match(value) for g in _listed(globs))


def statements(policy: dict) -> list[dict]:
    return _listed_statements(policy["Statement"])


def _listed_statements(value: Any) -> list[dict]:
    return [value] if isinstance(value, dict) else list(value)


def statement_applies(statement: dict, action: str, resource: str) -> bool:
    if "Condition" in statement:
        raise ValueError(f"statement {statement.get('Sid', '')!r} has a Condition: not supported")
    if "Action" in statement:
        if not _any_match(statement["Action"], action, True):
            return False
    elif _any_match(statement["NotAction"], action, True):
        return False
    if "Resource" in statement:
        return _any_match(statement["Resource"], resource, False)
    return not _any_match(statement["NotResource"], resource, False)


def allows(policies: Iterable[dict], action: str, resource: str) -> bool:
    """Whether the identity policies `policies` (together) allow `action` on `resource`."""
    allowed = False
    for policy in policies:
        for statement in statements(policy):
            if statement_applies(statement, action, resource):
                if statement["Effect"] == "Deny":
                    return False
                allowed = True
    return allowed


# ---------------------------------------------------------------- botocore calls -> IAM
def _s3_object(p: dict) -> str:
    return f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"


def _s3_bucket(p: dict) -> str:
    return f"arn:aws:s3:::{p['Bucket']}"


def _queue_arn(url: str, region: str) -> str:
    account, name = urlparse(url).path.strip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


S3_OBJECT_ACTIONS = {
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
    "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject", "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts", "GetObjectAttributes": "s3:GetObjectAttributes",
}
S3_BUCKET_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListObjectVersions": "s3:ListBucketVersions",
}
DYNAMODB_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
ECR_ACCOUNT_WIDE = {"GetAuthorizationToken"}


def required(service: str, operation: str, params: dict, region: str,
             account: str) -> list[tuple[str, str]]:
    """The (action, resource ARN) pairs IAM checks for one API call (empty: none needed).
    An operation not listed here raises, so new code cannot slip past the check."""
    if service == "s3":
        if operation in S3_OBJECT_ACTIONS:
            return [(S3_OBJECT_ACTIONS[operation], _s3_object(params))]
        if operation in S3_BUCKET_ACTIONS:
            return [(S3_BUCKET_ACTIONS[operation], _s3_bucket(params))]
        if operation == "DeleteObjects":
            return [("s3:DeleteObject", f"arn:aws:s3:::{params['Bucket']}/{o['Key']}")
                    for o in params["Delete"]["Objects"]]
        if operation == "CopyObject":
            src = params["CopySource"]
            source = (f"{src['Bucket']}/{src['Key']}" if isinstance(src, dict)
                      else src.lstrip("/").split("?")[0])
            return [("s3:PutObject", _s3_object(params)), ("s3:GetObject", f"arn:aws:s3:::{source}")]
    if service == "dynamodb":
        table = f"arn:aws:dynamodb:{region}:{account}:table/"
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table + name) for name in params["RequestItems"]]
        if operation in ("TransactWriteItems", "TransactGetItems"):
            out = []
            for item in params["TransactItems"]:
                (kind, body), = item.items()
                out.append((f"dynamodb:{DYNAMODB_TRANSACT[kind]}", table + body["TableName"]))
            return out
        if operation in ("Query", "Scan") and params.get("IndexName"):
            return [(f"dynamodb:{operation}",
                     f"{table}{params['TableName']}/index/{params['IndexName']}")]
        if "TableName" in params:
            return [(f"dynamodb:{operation}", table + params["TableName"])]
    if service == "cognito-idp" and "UserPoolId" in params:
        return [(f"cognito-idp:{operation}",
                 f"arn:aws:cognito-idp:{region}:{account}:userpool/{params['UserPoolId']}")]
    if service == "sts":
        if operation == "AssumeRole":
            return [("sts:AssumeRole", params["RoleArn"])]
        if operation == "GetCallerIdentity":
            return []
    if service == "ecr":
        if operation in ECR_ACCOUNT_WIDE:
            return [(f"ecr:{operation}", "*")]
        names = params.get("repositoryNames") or [params["repositoryName"]]
        return [(f"ecr:{operation}", f"arn:aws:ecr:{region}:{account}:repository/{n}")
                for n in names]
    if service == "codebuild":
        project = f"arn:aws:codebuild:{region}:{account}:project/"
        if "projectName" in params:
            return [(f"codebuild:{operation}", project + params["projectName"])]
        if operation in ("BatchGetBuilds", "StopBuild", "RetryBuild"):
            ids = params.get("ids") or [params["id"]]
            return [(f"codebuild:{operation}", project + i.split(":")[0]) for i in ids]
    if service == "sqs" and "QueueUrl" in params:
        return [(f"sqs:{operation}", _queue_arn(params["QueueUrl"], region))]
    raise KeyError(f"no IAM mapping for {service}:{operation}: add it to tests/iam_policy.py")
