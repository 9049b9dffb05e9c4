"""The local event pump: what Lambda's event source mappings do, for `chalice local`.

`chalice local` runs routes only. The pump feeds the same handlers Lambda would call:

- SQS (S3 ObjectCreated notifications): receive up to 10 messages, build a Lambda SQS event,
  call the handler, honour a partial-batch response (`batchItemFailures`), delete what
  succeeded. Failed messages become visible again after the queue's visibility timeout (or
  `failed_visibility_timeout`, if set), and the queue's redrive policy moves them to the
  dead-letter queue after maxReceiveCount receives (moto does this on receive; verified).
- DynamoDB stream: read every shard with get_records, build Lambda-shaped records
  (eventSourceARN, awsRegion, base64 binary, epoch ApproximateCreationDateTime) and call the
  handler. A failing batch is retried from the failed record (`batchItemFailures` with
  sequence numbers, or the whole batch when the handler raises) up to `max_stream_retries`
  times, then skipped, as a Lambda mapping with MaximumRetryAttempts would.

    pump = EventPump(env, on_sqs=app.on_blob_event, on_stream=app.on_table_change)
    pump.run_once()                  # deliver what is there now; returns records delivered
    pump.run_forever(stop_event)     # until stop_event is set
"""
from __future__ import annotations

import base64
import datetime as _dt
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("devstack.pump")

Handler = Callable[[dict, Any], Any]


class FakeLambdaContext:
    """Enough of the Lambda context object for Chalice and Powertools."""

    def __init__(self, function_name: str = "nshub-dev", memory_limit_in_mb: int = 512,
                 timeout_seconds: int = 60, region: str = "us-east-1",
                 account: str = "123456789012") -> None:
        import time

        self._time = time
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        )
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"devstack/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._time.monotonic()) * 1000))


def _failed_ids(result: Any) -> set[str] | None:
    """The itemIdentifiers of a partial batch response, or None if it is not one."""
    if isinstance(result, dict) and "batchItemFailures" in result:
        return {
            str(item.get("itemIdentifier"))
            for item in result.get("batchItemFailures") or []
            if isinstance(item, dict)
        }
    return None


def _lambda_message_attributes(attrs: dict) -> dict:
    out = {}
    for name, value in (attrs or {}).items():
        out[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": (
                base64.b64encode(value["BinaryValue"]).decode()
                if value.get("BinaryValue") is not None else None
            ),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [
                base64.b64encode(b).decode() for b in value.get("BinaryListValues", [])
            ],
            "dataType": value.get("DataType"),
        }
    return out


def _lambda_attr_value(value: Any) -> Any:
    """boto3 gives bytes for B/BS; Lambda's JSON event carries base64 strings."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "B" and isinstance(v, (bytes, bytearray)):
                out[k] = base64.b64encode(v).decode()
            elif k == "BS":
                out[k] = [base64.b64encode(b).decode() if isinstance(b, (bytes, bytearray))
                          else b for b in v]
            else:
                out[k] = _lambda_attr_value(v)
        return out
    if isinstance(value, list):
        return [_lambda_attr_value(v) for v in value]
    return value


def _lambda_stream_record(raw: dict, stream_arn: str, region: str) -> dict:
    rec = dict(raw)
    ddb = dict(rec.get("dynamodb", {}))
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, _dt.datetime):
        ddb["ApproximateCreationDateTime"] = int(created.timestamp())
    for image in ("Keys", "NewImage", "OldImage"):
        if image in ddb:
            ddb[image] = _lambda_attr_value(ddb[image])
    rec["dynamodb"] = ddb
    rec.setdefault("eventSource", "aws:dynamodb")
    rec.setdefault("eventVersion", "1.1")
    rec["awsRegion"] = rec.get("awsRegion") or region
    rec["eventSourceARN"] = stream_arn
    return rec


@dataclass
class _Shard:
    shard_id: str
    start: str  # where reading begins before any record was read: TRIM_HORIZON or LATEST
    last_seq: str | None = None  # the last record read: every read resumes after it
    iterator: str | None = None  # followed only until the first record (LATEST)
    pending: list[dict] = field(default_factory=list)  # raw records not yet delivered
    attempts: int = 0
    closed: bool = False


class EventPump:
    """Feeds SQS messages and DynamoDB stream records to Lambda-style handlers."""

    def __init__(
        self,
        env: dict,
        on_sqs: Handler | None,
        on_stream: Handler | None,
        *,
        wait_seconds: int = 1,
        stream_start: str = "TRIM_HORIZON",
        stream_batch_size: int = 100,
        max_stream_retries: int = 3,
        failed_visibility_timeout: int | None = None,
        function_name: str = "nshub-dev",
    ) -> None:
        self.env = dict(env)
        self.on_sqs = on_sqs
        self.on_stream = on_stream
        self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.endpoint_url = env.get("AWS_ENDPOINT_URL") or None
        self.queue_url = env.get("NSHUB_EVENTS_QUEUE_URL", "")
        self.table = env.get("NSHUB_TABLE", "")
        self.wait_seconds = wait_seconds
        self.stream_start = stream_start
        self.stream_batch_size = stream_batch_size
        self.max_stream_retries = max_stream_retries
        self.failed_visibility_timeout = failed_visibility_timeout
        self.function_name = function_name
        self._queue_arn: str | None = None
        self._stream_arn: str | None = None
        self._shards: dict[str, _Shard] = {}
        self._stale = False  # describe the stream again before the next read
        self._failing: str | None = None  # the failure last logged, until reads work again
        self._clients: dict[str, Any] = {}
        self.delivered = 0
        self.errors = 0

    # ---------------------------------------------------------------- plumbing
    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import os

            import boto3

            session = boto3.session.Session(
                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing",
                region_name=self.region,
            )
            from botocore.config import Config

            self._clients[service] = session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
        return self._clients[service]

    def _context(self) -> FakeLambdaContext:
        return FakeLambdaContext(function_name=self.function_name, region=self.region)

    # ---------------------------------------------------------------- SQS
    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            attrs = self._client("sqs").get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]
            self._queue_arn = attrs["QueueArn"]
        return self._queue_arn

    def poll_sqs(self, wait_seconds: int | None = None) -> int:
        """One receive (long-poll up to wait_seconds) and one handler call. Returns records."""
        if not self.on_sqs or not self.queue_url:
            return 0
        sqs = self._client("sqs")
        resp = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            return 0
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": _lambda_message_attributes(m.get("MessageAttributes", {})),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": self.queue_arn,
                "awsRegion": self.region,
            }
            for m in messages
        ]
        try:
            result = self.on_sqs({"Records": records}, self._context())
            failed = _failed_ids(result) or set()
        except Exception:  # noqa: BLE001 - a raising handler fails the whole batch
            log.exception("SQS handler failed; %d message(s) will be retried", len(records))
            self.errors += 1
            failed = {r["messageId"] for r in records}
        ok = [r for r in records if r["messageId"] not in failed]
        if ok:
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                         for i, r in enumerate(ok)],
            )
        if failed and self.failed_visibility_timeout is not None:
            for r in records:
                if r["messageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=r["receiptHandle"],
                        VisibilityTimeout=self.failed_visibility_timeout,
                    )
        self.delivered += len(records)
        return len(records)

    # ---------------------------------------------------------------- DynamoDB stream
    # Every read takes a fresh iterator after the last record read, instead of following
    # NextShardIterator: an iterator can outlive the shard object it points to (moto swaps
    # the table and its shard when it rolls a transaction back; real iterators expire after
    # 15 minutes), and then it reads nothing, silently, for good.

    def _current_stream_arn(self) -> str:
        table = self._client("dynamodb").describe_table(TableName=self.table)["Table"]
        return table.get("LatestStreamArn", "")

    def _refresh_shards(self, arn: str) -> None:
        """Describe the stream again; shards already known keep their position."""
        if arn != self._stream_arn:  # first call, or the table was recreated (moto reset)
            if self._stream_arn:
                log.warning("the table stream changed (%s -> %s): reading the new one from "
                            "its start", self._stream_arn, arn or "none")
            self._stream_arn = arn
            self._shards = {}
        self._stale = False
        if not arn:
            return
        desc = self._client("dynamodbstreams").describe_stream(
            StreamArn=arn)["StreamDescription"]
        for shard in desc.get("Shards", []):
            sid = shard["ShardId"]
            if sid not in self._shards:
                # Shards born after start (children) are read from their beginning.
                start = "LATEST" if not self._shards and self.stream_start == "LATEST" else \
                    "TRIM_HORIZON"
                self._shards[sid] = _Shard(sid, start)

    def poll_stream(self) -> int:
        """Read every shard once and deliver what it holds. Returns records delivered."""
        if not self.on_stream or not self.table:
            return 0
        try:
            return self._poll_stream_once()
        except Exception:  # noqa: BLE001 - an iterator or a shard went away: describe again
            self._stale = True
        try:
            return self._poll_stream_once()
        except Exception as exc:  # noqa: BLE001 - still failing: say so loudly, retry later
            self._stream_failed(exc)
            return 0

    def _poll_stream_once(self) -> int:
        arn = self._current_stream_arn()  # every round: the table may have been recreated
        if self._stale or arn != self._stream_arn or not any(
            not s.closed for s in self._shards.values()
        ):
            self._refresh_shards(arn)
        delivered = 0
        for shard in list(self._shards.values()):
            if not shard.pending and not shard.closed:
                self._read(shard)
            if shard.pending:
                delivered += self._deliver_stream(shard)
        if self._failing:
            log.warning("event pump: reading the table stream of %s again", self.table)
            self._failing = None
        return delivered

    def _read(self, shard: _Shard) -> None:
        streams = self._client("dynamodbstreams")
        iterator = shard.iterator
        if shard.last_seq is not None or iterator is None or shard.start != "LATEST":
            position = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                         "SequenceNumber": shard.last_seq} if shard.last_seq is not None
                        else {"ShardIteratorType": shard.start})
            iterator = streams.get_shard_iterator(
                StreamArn=self._stream_arn, ShardId=shard.shard_id, **position)["ShardIterator"]
        resp = streams.get_records(ShardIterator=iterator, Limit=self.stream_batch_size)
        shard.pending = resp.get("Records", [])
        shard.iterator = resp.get("NextShardIterator")
        if shard.pending:
            shard.last_seq = shard.pending[-1]["dynamodb"]["SequenceNumber"]
        elif shard.iterator is None:
            shard.closed = True

    def _stream_failed(self, exc: Exception) -> None:
        """Describe the stream again next round, keeping every shard's position."""
        self._stale = True
        self.errors += 1
        reason = f"{type(exc).__name__}: {exc}"
        if reason != self._failing:  # once per kind of failure, not once a second
            log.error("event pump: cannot read the table stream of %s (%s): deletes, retention, "
                      "executor image builds and expired-upload cleanup wait until it can; "
                      "retrying", self.table, reason)
            self._failing = reason

    def _deliver_stream(self, shard: _Shard) -> int:
        batch = shard.pending
        records = [_lambda_stream_record(r, self._stream_arn or "", self.region) for r in batch]
        try:
            result = self.on_stream({"Records": records}, self._context())
            failed = _failed_ids(result)
        except Exception:  # noqa: BLE001 - a raising handler fails the whole batch
            log.exception("stream handler failed on %d record(s)", len(records))
            self.errors += 1
            failed = {records[0]["dynamodb"].get("SequenceNumber", "")}
        self.delivered += len(records)
        if not failed:
            shard.pending, shard.attempts = [], 0
            return len(records)
        # Lambda resumes from the lowest failed sequence number.
        seqs = [r["dynamodb"].get("SequenceNumber", "") for r in records]
        first = min((seqs.index(f) for f in failed if f in seqs), default=0)
        shard.attempts += 1
        if shard.attempts > self.max_stream_retries:
            log.error("dropping %d stream record(s) after %d attempts",
                      len(batch) - first, shard.attempts)
            shard.pending, shard.attempts = [], 0
        else:
            shard.pending = batch[first:]
        return len(records)

    # ---------------------------------------------------------------- loop
    def run_once(self, wait_seconds: int | None = 0) -> int:
        """Deliver what is waiting now (SQS polled without waiting by default)."""
        return self.poll_stream() + self.poll_sqs(wait_seconds)

    def drain(self, max_rounds: int = 50) -> int:
        """run_once until a round delivers nothing (stream retries count as deliveries)."""
        total = 0
        for _ in range(max_rounds):
            n = self.run_once()
            total += n
            if n == 0:
                break
        return total

    def run_forever(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            try:
                n = self.poll_stream()
                # Long-poll SQS briefly; skip the wait when the stream was busy.
                n += self.poll_sqs(0 if n else self.wait_seconds)
            except Exception:  # noqa: BLE001 - keep pumping; moto may be restarting
                log.exception("event pump round failed")
                self.errors += 1
                n = 0
                stop_event.wait(1.0)
            if n == 0 and (self.wait_seconds == 0 or not (self.on_sqs and self.queue_url)):
                # Nothing long-polled for us: pace the loop without busy-waiting.
                stop_event.wait(max(0.2, float(self.wait_seconds)))
