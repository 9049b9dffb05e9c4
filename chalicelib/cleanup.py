"""Cleanup and integrity: nothing lost, nothing left behind.

Three ways bytes and records go away, all driven by what OUR records say (never by age alone):

- `handle_blob_events`: S3 ObjectCreated notifications (via SQS). Each object is judged by
  the record that should claim it; an object nothing claims is deleted once it is older than
  the grace period (its age from the event's eventTime, or from the expiry of the pending
  upload that once claimed it). The same queue carries the requests to verify a committed
  version's whole-object sha256 (chalicelib/integrity.py).
- `handle_table_changes`: the table stream. A removed head takes its generation with it
  (versions, upload records, bytes); a removed pending upload (TTL expiry, abort) takes its
  bytes and its multipart upload; a head whose counter grew drops versions beyond the
  retention count (tagged and current versions stay).
- `reconcile` (chalicelib/reconciler.py): the hourly sweep (and `nshub-admin reconcile
  [--dry-run]`) comparing the bucket and its in-progress multipart uploads with the table.

Which record claims an object (see chalicelib/keys.py): `blobs/{kind}/{ns}/{name}/{upload_id}`
is claimed by the upload item `{ns}#{name}` / `{kind}#U#{upload_id}`:

    upload item              claims its object when                    else the object is
    -----------------------  ----------------------------------------  ---------------------
    missing                  never                                     unclaimed
    pending                  until expires_at                          expired (from then)
    completed (gen G, v N)   the head has generation G and version     dead
                             item G/N exists

Every handler is idempotent: deletes of what is already gone are no-ops, records that could
have changed meanwhile are deleted on a condition, and each deletion re-reads the claim first.
Within one version, the version item goes first, the bytes next, the upload record last: a
crash at any point leaves the upload record that names the bytes, so a retry (or the
reconciler) finishes the job.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import unquote_plus

from chalicelib import blobs, integrity, keys
from chalicelib.config import get_settings
from chalicelib.kinds import policy
from chalicelib.observability import logger, metrics
from chalicelib.store import resources as stored
from chalicelib.store.records import Head, Upload, Version
from chalicelib.times import parse

CLAIMED = ("live", "pending")


# ---------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """What the table says about one S3 key.

    state: live | pending (claimed: keep) or expired | dead | unclaimed | foreign (not
    claimed). `since` is when the key stopped being wanted, as far as we know: the moment
    from which the grace period counts.
    """

    state: str
    since: float
    upload: Upload | None = None

    @property
    def claimed(self) -> bool:
        return self.state in CLAIMED


def _version_is_live(upload: Upload) -> bool:
    """A completed upload's version is live while its generation's head and its version item
    both exist (a deleted head kills the generation; retention deletes version items)."""
    kind = upload.kind
    if upload.generation is None or upload.version is None:
        return False
    head = stored.read_head(upload.pk, kind, consistent=True)
    if head is None or head.generation != upload.generation:
        return False
    return stored.read_version(upload.pk, keys.version_sk(kind, upload.generation, upload.version),
                               consistent=True) is not None


def judge(key: str, created: float, now: float | None = None) -> Claim:
    """Who claims the object at `key`, created at `created` (epoch seconds)."""
    now = time.time() if now is None else now
    ref = keys.parse_blob_key(key)
    if ref is None:
        return Claim("foreign", created)
    upload = stored.read_upload(ref.pk, ref.upload_sk)
    if upload is None or upload.blob_key != key:
        return Claim("unclaimed", created, None)
    if upload.state == "pending":
        expires = upload.expires_at
        if expires is None or now < float(expires):
            return Claim("pending", created, upload)
        return Claim("expired", float(expires), upload)
    if upload.state == "completed" and _version_is_live(upload):
        return Claim("live", created, upload)
    return Claim("dead", created, upload)


def is_orphan(claim: Claim, now: float, grace: int) -> bool:
    return not claim.claimed and now - claim.since >= grace


# ---------------------------------------------------------------- deleting


def count_metric(name: str, value: float, unit: str = "Count") -> None:
    if value:
        metrics.add_metric(name=name, unit=unit, value=value)


def _release_expired(upload: Upload) -> bool:
    """An expired pending upload: forget the record first (so a late complete fails its
    transaction instead of committing bytes we are deleting), then its multipart upload."""
    if not stored.delete_upload_if(upload, "pending"):
        fresh = stored.read_upload(upload.pk, upload.sk)
        if fresh is not None:
            return False  # completed meanwhile: its version keeps the bytes
    if upload.s3_upload_id:
        blobs.abort_multipart(upload.blob_key, upload.s3_upload_id)
    return True


def reclaim(key: str, claim: Claim, size: int | None = None) -> bool:
    """Delete an object that no record claims, and the dead records that still name it.
    Returns whether the bytes were deleted."""
    upload = claim.upload
    if claim.state == "expired" and upload is not None:
        if not _release_expired(upload):
            return False
    blobs.delete_object(key)
    if claim.state == "dead" and upload is not None:
        _drop_dead_records(upload)
    count_metric("BytesReclaimed", size or 0, "Bytes")
    return True


def _drop_dead_records(upload: Upload) -> None:
    """The version item (if its generation is dead) and the upload record of a dead claim."""
    kind = upload.kind
    head = stored.read_head(upload.pk, kind, consistent=True)
    if upload.generation and upload.version is not None and (
            head is None or head.generation != upload.generation):
        stored.delete_version(upload.pk, keys.version_sk(kind, upload.generation, upload.version))
    stored.delete_upload_if(upload, "completed")


# ---------------------------------------------------------------- S3 notifications


def _epoch(iso: str | None, default: float) -> float:
    if not iso:
        return default
    try:
        return parse(iso)
    except ValueError:
        return default


def s3_records(body: str) -> list[dict]:
    """The S3 records of one SQS message body ([] for S3's test event). Raises ValueError for
    a body that is not an S3 notification: such a message is poison and goes to the DLQ."""
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("the message is not an S3 notification")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise ValueError("the message is not an S3 notification (no Records)")
    return records


def handle_object_created(record: dict, now: float | None = None) -> str:
    """One S3 ObjectCreated record: keep what a record claims, delete an old orphan.
    Returns what happened (for logs and tests)."""
    now = time.time() if now is None else now
    settings = get_settings()
    if not str(record.get("eventName", "")).startswith("ObjectCreated"):
        return "ignored"
    s3 = record["s3"]
    bucket = s3["bucket"]["name"]
    if bucket != settings.bucket_name:
        logger.warning("event for another bucket", extra={"bucket": bucket})
        return "ignored"
    key = unquote_plus(s3["object"]["key"])
    size = s3["object"].get("size")
    claim = judge(key, _epoch(record.get("eventTime"), now), now)
    if claim.state == "live" and size is not None and claim.upload.size is not None \
            and int(size) != int(claim.upload.size):
        # Cannot happen with S3 checking the signed length and checksum; worth an alarm.
        logger.error("stored object differs from its record", extra={"key": key})
        count_metric("IntegrityErrors", 1)
    if claim.claimed:
        return claim.state
    size = blobs.object_size(key)
    if size is None:
        return "gone"  # deleted already (a late or repeated event)
    count_metric("OrphansFound", 1)
    if not is_orphan(claim, now, settings.orphan_grace_seconds):
        return "young"  # the reconciler takes it once it is older than the grace period
    if reclaim(key, claim, size):
        count_metric("OrphansDeleted", 1)
        logger.info("deleted orphan object", extra={"key": key, "reason": claim.state})
        return "deleted"
    return "kept"


def handle_blob_events(records: Iterable[dict],
                       remaining_seconds: Callable[[], float] | None = None) -> dict:
    """A Lambda SQS batch of S3 notifications and verification requests -> a partial batch
    response. A verification that the function's remaining time could not finish is left
    for a later delivery (reported as failed, so SQS hands it out again)."""
    failures = []
    for message in records:
        try:
            body = json.loads(message["body"])
            request = integrity.parse_request(body) if isinstance(body, dict) else None
            if request is None:
                for record in s3_records(message["body"]):
                    handle_object_created(record)
                continue
            pk, sk, size = request
            left = remaining_seconds() if remaining_seconds is not None else None
            if not integrity.affordable(size, left):
                failures.append({"itemIdentifier": message.get("messageId")})
                continue
            integrity.verify_version(pk, sk)
        except Exception:  # noqa: BLE001 - one bad message must not fail the batch
            logger.exception("blob event failed", extra={"message_id": message.get("messageId")})
            failures.append({"itemIdentifier": message.get("messageId")})
    return {"batchItemFailures": failures}


# ---------------------------------------------------------------- the table stream


def stream_image(record: dict, which: str) -> Head | Version | Upload | None:
    """The record a stream record carries (`OldImage` / `NewImage`), or None (none, or an
    item that is no head, version or upload)."""
    raw = (record.get("dynamodb") or {}).get(which)
    return stored.from_stream_image(raw) if raw else None


def handle_table_change(record: dict) -> str:
    """One stream record. Returns what happened (for logs and tests)."""
    event = record.get("eventName")
    old, new = stream_image(record, "OldImage"), stream_image(record, "NewImage")
    item = new or old
    if item is None:
        return "ignored"
    if isinstance(item, Head):
        if event == "REMOVE" and isinstance(old, Head) and old.generation:
            return drop_generation(old.pk, old.kind, old.generation)
        if event in ("INSERT", "MODIFY") and isinstance(new, Head):
            before = (old.counter or 0) if isinstance(old, Head) else 0
            if (new.counter or 0) > before:  # a push: retention may apply
                return apply_retention(new.pk, new.kind, new.generation)
        return "ignored"
    if isinstance(old, Upload) and event == "REMOVE" and old.state == "pending":
        return release_pending_upload(old)
    return "ignored"


def handle_table_changes(records: Iterable[dict],
                         also: Iterable[Callable[[dict], Any]] = ()) -> dict:
    """A Lambda DynamoDB stream batch -> a partial batch response (by sequence number).
    `also`: other idempotent per-record handlers of the same stream (executor image builds);
    a record fails if any of them raises, and is retried for all of them."""
    also = tuple(also)
    failures = []
    for record in records:
        try:
            handle_table_change(record)
            for handler in also:
                handler(record)
        except Exception:  # noqa: BLE001 - report it; the mapping retries from here
            seq = record.get("dynamodb", {}).get("SequenceNumber")
            logger.exception("table change failed", extra={"sequence_number": seq})
            failures.append({"itemIdentifier": seq})
            break  # stream order matters: everything after the failure is retried too
    return {"batchItemFailures": failures}


def release_pending_upload(upload: Upload) -> str:
    """A pending upload record went away (TTL expiry, abort, failed verification): abort its
    multipart upload and delete its bytes, unless a record claims the key again."""
    key = upload.blob_key
    if not key:
        return "ignored"
    claim = judge(key, time.time())
    if claim.claimed:
        return "kept"
    if claim.state == "expired" and claim.upload is not None and not _release_expired(claim.upload):
        return "kept"  # the record is still there and completed meanwhile
    if upload.s3_upload_id:
        blobs.abort_multipart(key, upload.s3_upload_id)
    size = blobs.object_size(key)
    if size is None:
        return "aborted"
    blobs.delete_object(key)
    if claim.state == "dead" and claim.upload is not None:
        _drop_dead_records(claim.upload)
    count_metric("BytesReclaimed", size, "Bytes")
    logger.info("deleted bytes of an expired upload", extra={"key": key})
    return "deleted"


@dataclass
class _Version:
    """One version of a generation, as its version item and/or its upload record know it."""

    number: int
    blob_key: str | None = None
    upload_id: str | None = None
    has_item: bool = False
    upload: Upload | None = None
    size: int = 0


def _generation_versions(pk: str, kind: str, generation: str) -> dict[int, _Version]:
    found: dict[int, _Version] = {}
    for item in stored.versions_of(pk, kind, generation):
        v = found.setdefault(item.version, _Version(item.version))
        v.has_item, v.blob_key, v.upload_id = True, item.blob_key, item.upload_id
        v.size = item.size
    for upload in stored.uploads_of(pk, kind):
        if upload.state != "completed" or upload.generation != generation:
            continue
        v = found.setdefault(upload.version, _Version(upload.version))
        v.upload, v.blob_key = upload, v.blob_key or upload.blob_key
        v.upload_id, v.size = upload.upload_id, v.size or upload.size
    return found


def _drop_version(pk: str, kind: str, generation: str, v: _Version) -> bool:
    """Version item, then bytes (unless a record claims them), then the upload record."""
    if v.has_item:
        stored.delete_version(pk, keys.version_sk(kind, generation, v.number))
    deleted = False
    if v.blob_key and not judge(v.blob_key, time.time()).claimed:
        blobs.delete_object(v.blob_key)
        count_metric("BytesReclaimed", v.size, "Bytes")
        deleted = True
    upload = v.upload
    if upload is None and v.upload_id:
        upload = stored.read_upload(pk, keys.upload_sk(kind, v.upload_id))
    if upload is not None and upload.state == "completed" and upload.generation == generation:
        stored.delete_upload_if(upload, "completed")
    return deleted


def drop_generation(pk: str, kind: str, generation: str) -> str:
    """A deleted head: every version of its generation goes, with its records and bytes. A
    re-push after the delete has a new generation and is not touched."""
    head = stored.read_head(pk, kind, consistent=True)
    if head is not None and head.generation == generation:
        return "ignored"  # the head is alive (a stale or synthetic event)
    versions = _generation_versions(pk, kind, generation)
    deleted = sum(_drop_version(pk, kind, generation, v) for v in versions.values())
    count_metric("BlobsDeleted", deleted)
    policy(kind).drop_versions(pk, None)
    logger.info("dropped a deleted generation", extra={
        "pk": pk, "generation": generation, "versions": len(versions)})
    return "dropped"


def select_expired(versions: Iterable[int], retention: int, keep: Iterable[int] = ()) -> list[int]:
    """The versions that retention removes: all but the newest `retention`, except `keep`
    (versions a tag points to, the current one)."""
    newest_first = sorted(set(versions), reverse=True)
    kept = set(newest_first[:max(1, retention)]) | set(keep)
    return sorted(v for v in newest_first if v not in kept)


def apply_retention(pk: str, kind: str, generation: str | None) -> str:
    """Drop versions of the head's generation beyond the newest `retention`, keeping tagged
    and current versions. Reads the head fresh: tags and counter may have moved on."""
    retention = get_settings().retention
    head = stored.read_head(pk, kind, consistent=True)
    if head is None or head.generation != generation or (head.counter or 0) <= retention:
        return "ignored"
    versions = _generation_versions(pk, kind, generation)
    keep = set(head.tags.values())
    keep.add(head.latest_version or head.counter)
    expired = select_expired(versions, retention, keep)
    deleted = sum(_drop_version(pk, kind, generation, versions[n]) for n in expired)
    count_metric("BlobsDeleted", deleted)
    if expired:
        policy(kind).drop_versions(pk, expired)
    if expired:
        logger.info("retention dropped versions", extra={"pk": pk, "versions": expired})
    return "retained"
