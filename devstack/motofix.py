"""Make moto's DynamoDB as atomic as the real one.

DynamoDB applies each write (and each transaction) atomically, so a conditional write that
races another one fails its condition. moto's server handles requests on threads and checks
conditions without a lock, so two racing conditional writes can both succeed there. The
registry relies on the real guarantee (version numbers of racing pushes), so every process
that serves moto (tests, the dev stack, the benchmarks) calls `make_dynamodb_atomic()` first.
"""
from __future__ import annotations

import functools
import threading

_LOCK = threading.RLock()
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def make_dynamodb_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_nshub_atomic", False):
            continue

        def locked(*args, __method=method, **kwargs):
            with _LOCK:
                return __method(*args, **kwargs)

        locked = functools.wraps(method)(locked)
        locked._nshub_atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)
