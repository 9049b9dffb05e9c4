"""The dev stack's event pump keeps reading the table stream whatever moto does to it.

moto rolls a failed transaction back by putting a copy of the whole table in place, stream
shard included: an iterator taken before then reads the old shard forever. The pump must
notice nothing and carry on from the last record it handled.
"""
from __future__ import annotations

import copy
import logging

import pytest
from botocore.exceptions import ClientError

from chalicelib import keys
from devstack.pump import EventPump
from tests.backend import blob_keys, client
from tests.helpers import push, random_bytes

# the items of a transaction that fails: written, then undone
PROBES = (keys.resource_pk("probe", "a"), keys.resource_pk("probe", "b"))


def fail_a_transaction(env: dict) -> None:
    with pytest.raises(ClientError) as caught:
        client(env, "dynamodb").transact_write_items(TransactItems=[
            {"Put": {"TableName": env["NSHUB_TABLE"],
                     "Item": {"pk": {"S": PROBES[0]}, "sk": {"S": "x"}}}},
            {"Put": {"TableName": env["NSHUB_TABLE"],
                     "Item": {"pk": {"S": PROBES[1]}, "sk": {"S": "x"}},
                     "ConditionExpression": "attribute_exists(pk)"}},
        ])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_a_delete_after_a_failed_transaction_still_removes_the_bytes(api, users, pump, aws_env):
    # Given an array whose push the pump has seen
    token = users["alice"]["id_token"]
    assert push(api, token, "alice/ds", random_bytes(1000)).status_code == 200
    pump.drain()
    assert len(blob_keys(aws_env, "blobs/array/alice/ds/")) == 1

    # When a transaction fails (moto swaps the table and its stream shard) and then alice
    # deletes the array
    fail_a_transaction(aws_env)
    assert api.delete("/v1/arrays/alice/ds", token=token).status_code == 204
    pump.drain()

    # Then the pump still got the delete: the bytes are gone
    assert blob_keys(aws_env, "blobs/array/alice/ds/") == set()


class Seen:
    """A stream handler that notes (sequence number, pk) of every record it gets."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []

    def __call__(self, event, context) -> None:
        self.records += [(int(r["dynamodb"]["SequenceNumber"]), r["dynamodb"]["Keys"]["pk"]["S"])
                         for r in event["Records"]]

    def pks(self) -> set[str]:
        return {pk for _, pk in self.records}


def test_a_failed_transaction_leaves_no_record_and_hides_none(api, users, aws_env):
    # Given a pump that has read the stream
    seen = Seen()
    pump = EventPump(aws_env, None, seen, wait_seconds=0)
    token = users["alice"]["id_token"]
    assert push(api, token, "alice/one", random_bytes(10)).status_code == 200
    pump.drain()

    # When transactions fail around another push
    fail_a_transaction(aws_env)
    assert push(api, token, "alice/two", random_bytes(10)).status_code == 200
    fail_a_transaction(aws_env)
    pump.drain()

    # Then the push's records came, once each and in order, and the undone writes' never
    assert keys.resource_pk("alice", "two") in seen.pks()
    assert not set(PROBES) & seen.pks()
    numbers = [n for n, _ in seen.records]
    assert numbers == sorted(set(numbers))


def test_the_pump_follows_a_stream_shard_that_was_replaced(api, users, aws_env):
    # Given a pump that has read the stream
    seen = Seen()
    pump = EventPump(aws_env, None, seen, wait_seconds=0)
    token = users["alice"]["id_token"]
    assert push(api, token, "alice/one", random_bytes(10)).status_code == 200
    pump.drain()
    read = len(seen.records)

    # When the table and its stream shard are swapped for copies (what moto itself does when
    # it rolls a transaction back: this test's moto runs in this process)
    from moto.dynamodb.models import dynamodb_backends

    tables = dynamodb_backends["123456789012"][aws_env["AWS_REGION"]].tables
    tables[aws_env["NSHUB_TABLE"]] = copy.deepcopy(tables[aws_env["NSHUB_TABLE"]])
    assert push(api, token, "alice/two", random_bytes(10)).status_code == 200
    pump.drain()

    # Then it reads on after the last record it had read: nothing twice, nothing missed
    assert {pk for _, pk in seen.records[read:]} == {keys.resource_pk("alice", "two")}
    numbers = [n for n, _ in seen.records]
    assert numbers == sorted(set(numbers))


def test_a_stream_it_cannot_read_is_logged_as_an_error(aws_env, caplog):
    # Given a pump pointed at a table that does not exist
    pump = EventPump({**aws_env, "NSHUB_TABLE": "no-such-table"}, None,
                     lambda event, context: None, wait_seconds=0)

    # When it polls
    with caplog.at_level(logging.WARNING, logger="devstack.pump"):
        assert pump.run_once() == 0

    # Then it says so loudly, naming what stops working
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, caplog.text
    assert "no-such-table" in errors[0].getMessage()
    assert "deletes" in errors[0].getMessage()
