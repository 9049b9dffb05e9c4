"""The IAM evaluator and call mapping that the least-privilege check relies on
(tests/iam_policy.py), on their own."""
from __future__ import annotations

import pytest

from tests.iam_policy import allows, required

BUCKET = "arn:aws:s3:::nshub-dev-blobs-1-us-east-1"
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Blobs", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": f"{BUCKET}/blobs/*"},
    {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET},
    {"Sid": "Table", "Effect": "Allow", "Action": "dynamodb:Get?tem",
     "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/nshub-dev"},
]}


@pytest.mark.parametrize("action, resource, expected", [
    ("s3:GetObject", f"{BUCKET}/blobs/arrays/a/b/c", True),
    ("S3:getobject", f"{BUCKET}/blobs/x", True),  # actions are case-insensitive
    ("s3:GetObject", f"{BUCKET}/BLOBS/x", False),  # resources are not
    ("s3:GetObject", f"{BUCKET}/other/x", False),
    ("s3:GetObject", f"{BUCKET}-evil/blobs/x", False),
    ("s3:DeleteObject", f"{BUCKET}/blobs/x", False),  # not granted
    ("s3:ListBucket", BUCKET, True),
    ("s3:ListBucket", f"{BUCKET}/blobs/x", False),  # a bucket grant is not an object grant
    ("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/nshub-dev", True),
    ("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/nshub-dev2", False),
    ("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/nshub-dev/index/g", False),
    ("dynamodb:GetItemX", "arn:aws:dynamodb:us-east-1:123456789012:table/nshub-dev", False),
])
def test_allow_action_and_resource_with_wildcards(action, resource, expected):
    assert allows([POLICY], action, resource) is expected


def test_dots_and_brackets_in_a_resource_are_literal():
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                             "Resource": "arn:aws:s3:::a.b/[x]"}]}
    assert allows([policy], "s3:GetObject", "arn:aws:s3:::a.b/[x]")
    assert not allows([policy], "s3:GetObject", "arn:aws:s3:::aXb/[x]")


def test_explicit_deny_wins_and_nothing_is_allowed_by_default():
    deny = {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    assert not allows([POLICY, deny], "s3:GetObject", f"{BUCKET}/blobs/x")
    assert not allows([], "s3:GetObject", f"{BUCKET}/blobs/x")


def test_not_action_and_not_resource():
    policy = {"Statement": [{"Effect": "Allow", "NotAction": "s3:DeleteObject",
                             "NotResource": f"{BUCKET}/secret/*"}]}
    assert allows([policy], "s3:GetObject", f"{BUCKET}/blobs/x")
    assert not allows([policy], "s3:DeleteObject", f"{BUCKET}/blobs/x")
    assert not allows([policy], "s3:GetObject", f"{BUCKET}/secret/x")


def test_conditions_are_refused_rather_than_ignored():
    policy = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                             "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}
    with pytest.raises(ValueError, match="Condition"):
        allows([policy], "s3:GetObject", "x")


def test_calls_map_to_what_iam_checks():
    r = "us-east-1"
    assert required("s3", "UploadPart", {"Bucket": "b", "Key": "k/1"}, r, "1") == [
        ("s3:PutObject", "arn:aws:s3:::b/k/1")]
    assert required("s3", "HeadObject", {"Bucket": "b", "Key": "k"}, r, "1") == [
        ("s3:GetObject", "arn:aws:s3:::b/k")]
    assert required("s3", "ListObjectsV2", {"Bucket": "b"}, r, "1") == [
        ("s3:ListBucket", "arn:aws:s3:::b")]
    # A transaction needs the per-item actions (there is no dynamodb:TransactWriteItems).
    assert required("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "t"}},
        {"Update": {"TableName": "t"}}]}, r, "1") == [
        ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/t"),
        ("dynamodb:ConditionCheckItem", "arn:aws:dynamodb:us-east-1:1:table/t"),
        ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:1:table/t")]
    assert required("dynamodb", "Query", {"TableName": "t", "IndexName": "gsi1"}, r, "1") == [
        ("dynamodb:Query", "arn:aws:dynamodb:us-east-1:1:table/t/index/gsi1")]
    assert required("sqs", "SendMessage", {"QueueUrl": "http://h:1/1/q"}, r, "1") == [
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q")]
    assert required("codebuild", "BatchGetBuilds", {"ids": ["p:abc"]}, r, "1") == [
        ("codebuild:BatchGetBuilds", "arn:aws:codebuild:us-east-1:1:project/p")]
    assert required("ecr", "GetAuthorizationToken", {}, r, "1") == [
        ("ecr:GetAuthorizationToken", "*")]
    assert required("sts", "GetCallerIdentity", {}, r, "1") == []
    with pytest.raises(KeyError, match="no IAM mapping for lambda:Invoke"):
        required("lambda", "Invoke", {"FunctionName": "f"}, r, "1")
