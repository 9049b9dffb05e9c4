"""Test helpers behind the HTTP surface: the stack's S3 bucket and table as a test reads them
(boto3's low-level clients, keys from chalicelib/keys.py, never the service's own data
access), and the real event handlers driven by the dev stack's EventPump.

    Recording        the app's handlers, keeping every event they got to deliver again
                     (the `recording` and `pump` fixtures of tests/conftest.py use it)
    blob_keys        the object keys under a prefix of the bucket
    table_items      every item of a partition, low-level ({"attr": {"S": ...}})
    get_item         one item, low-level, or None
    record           one item as plain values (`record.generation`), or None
    set_attributes   overwrite attributes of an item, given low-level
    ttl_remove_record  delete an item and build the stream record DynamoDB's TTL would send
"""
from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import boto3
from boto3.dynamodb.types import TypeDeserializer

from devstack.pump import EventPump

EVENTS = Path(__file__).resolve().parent / "events"


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def client(env, service: str):
    """A boto3 client of the test stack (`env`: aws_env, or os.environ after aws_env)."""
    return boto3.client(service, region_name=env["AWS_REGION"],
                        endpoint_url=env["AWS_ENDPOINT_URL"])


class Recording:
    """Wraps the real handlers: every event they got, to deliver again later."""

    def __init__(self):
        import app

        self.app = app
        self.sqs_events: list[dict] = []
        self.stream_events: list[dict] = []

    def on_sqs(self, event, context):
        self.sqs_events.append(copy.deepcopy(event))
        return self.app.on_blob_event(event, context)

    def on_stream(self, event, context):
        self.stream_events.append(copy.deepcopy(event))
        return self.app.on_table_change(event, context)

    def pump(self, env: dict) -> EventPump:
        """An EventPump that feeds this stack's queue and stream to the handlers at once."""
        return EventPump(env, self.on_sqs, self.on_stream, wait_seconds=0,
                         failed_visibility_timeout=0)


def blob_keys(env: dict, prefix: str = "blobs/") -> set[str]:
    s3 = client(env, "s3")
    found = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=env["NSHUB_BUCKET"],
                                                             Prefix=prefix):
        found |= {o["Key"] for o in page.get("Contents", [])}
    return found


def multipart_uploads(env: dict) -> set[tuple[str, str]]:
    resp = client(env, "s3").list_multipart_uploads(Bucket=env["NSHUB_BUCKET"])
    return {(u["Key"], u["UploadId"]) for u in resp.get("Uploads", [])}


def table_items(env: dict, pk: str) -> list[dict]:
    resp = client(env, "dynamodb").query(
        TableName=env["NSHUB_TABLE"], KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}}, ConsistentRead=True)
    return resp["Items"]


def item_key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def get_item(env, pk: str, sk: str) -> dict | None:
    return client(env, "dynamodb").get_item(TableName=env["NSHUB_TABLE"], Key=item_key(pk, sk),
                                            ConsistentRead=True).get("Item")


def record(env, pk: str, sk: str) -> SimpleNamespace | None:
    """One item as plain values (`record.generation`; numbers are Decimals, JSON attributes
    the text stored), or None."""
    item = get_item(env, pk, sk)
    if item is None:
        return None
    deserializer = TypeDeserializer()
    return SimpleNamespace(**{name: deserializer.deserialize(value)
                              for name, value in item.items()})


def set_attributes(env, pk: str, sk: str, **values: dict) -> None:
    """Overwrite attributes of an existing item, each given low-level (`{"S": "..."}`)."""
    names = {f"#a{i}": name for i, name in enumerate(values)}
    client(env, "dynamodb").update_item(
        TableName=env["NSHUB_TABLE"], Key=item_key(pk, sk),
        UpdateExpression="SET " + ", ".join(f"{n} = :{n[1:]}" for n in names),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":{n[1:]}": values[name] for n, name in names.items()},
        ConditionExpression="attribute_exists(pk)")


def ttl_remove_record(env: dict, pk: str, sk: str) -> dict:
    """Delete an item for real and build the stream record DynamoDB's TTL would have sent
    (moto never expires items)."""
    ddb = client(env, "dynamodb")
    key = item_key(pk, sk)
    item = ddb.get_item(TableName=env["NSHUB_TABLE"], Key=key, ConsistentRead=True)["Item"]
    ddb.delete_item(TableName=env["NSHUB_TABLE"], Key=key)
    record = load_event("ttl_remove_pending_upload.json")
    record["dynamodb"].update(Keys=key, OldImage=item,
                              ApproximateCreationDateTime=int(time.time()))
    record["eventID"] = uuid.uuid4().hex
    record["eventSourceARN"] = env["NSHUB_TABLE_STREAM_ARN"]
    record["awsRegion"] = env["AWS_REGION"]
    return record
