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
- `reconcile`: the hourly sweep (and `nshub-admin reconcile [--dry-run]`) comparing the
  bucket and its in-progress multipart uploads with the table.

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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import unquote_plus

from chalicelib import blobs, keys
from chalicelib.config import get_aws, get_settings
from chalicelib.observability import logger, metrics
from chalicelib.store import reconciler
from chalicelib.store import resources as stored
from chalicelib.store.records import Head, Upload, Version
from chalicelib.times import now_iso, parse

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


def _count(name: str, value: float, unit: str = "Count") -> None:
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
    _count("BytesReclaimed", size or 0, "Bytes")
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
        _count("IntegrityErrors", 1)
    if claim.claimed:
        return claim.state
    size = blobs.object_size(key)
    if size is None:
        return "gone"  # deleted already (a late or repeated event)
    _count("OrphansFound", 1)
    if not is_orphan(claim, now, settings.orphan_grace_seconds):
        return "young"  # the reconciler takes it once it is older than the grace period
    if reclaim(key, claim, size):
        _count("OrphansDeleted", 1)
        logger.info("deleted orphan object", extra={"key": key, "reason": claim.state})
        return "deleted"
    return "kept"


def handle_blob_events(records: Iterable[dict],
                       remaining_seconds: Callable[[], float] | None = None) -> dict:
    """A Lambda SQS batch of S3 notifications and verification requests -> a partial batch
    response. A verification that the function's remaining time could not finish is left
    for a later delivery (reported as failed, so SQS hands it out again)."""
    from chalicelib import integrity

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
    _count("BytesReclaimed", size, "Bytes")
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
        _count("BytesReclaimed", v.size, "Bytes")
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
    _count("BlobsDeleted", deleted)
    if kind == "executor":
        from chalicelib.executors import forget_images

        forget_images(pk)
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
    _count("BlobsDeleted", deleted)
    if kind == "executor" and expired:
        from chalicelib.executors import forget_images

        forget_images(pk, expired)
    if expired:
        logger.info("retention dropped versions", extra={"pk": pk, "versions": expired})
    return "retained"


# ---------------------------------------------------------------- the reconciler


@dataclass
class ReconcileReport:
    dry_run: bool
    grace_seconds: int
    objects_scanned: int = 0
    multipart_scanned: int = 0
    orphans: list[dict] = field(default_factory=list)
    orphan_multipart: list[dict] = field(default_factory=list)
    deleted: int = 0
    aborted: int = 0
    bytes_reclaimed: int = 0
    complete: bool = True
    resumed_from: dict | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "grace_seconds": self.grace_seconds,
            "objects_scanned": self.objects_scanned, "multipart_scanned": self.multipart_scanned,
            "orphans_found": len(self.orphans) + len(self.orphan_multipart),
            "orphans": self.orphans, "orphan_multipart_uploads": self.orphan_multipart,
            "deleted": self.deleted, "aborted": self.aborted,
            "bytes_reclaimed": self.bytes_reclaimed, "complete": self.complete,
            "resumed_from": self.resumed_from,
        }


def judge_multipart(key: str, s3_upload_id: str, initiated: float, now: float,
                    grace: int) -> str | None:
    """Why an in-progress multipart upload is an orphan, or None when it must stay.

    The rule: it is an orphan when the upload record of its key does not claim it (no record;
    a record naming another UploadId; a completed record, whose bytes are already whole; a
    pending record expired for longer than the grace period). S3's `Initiated` is only a lower
    bound that can keep an upload (one younger than the grace period stays, which covers the
    moment between CreateMultipartUpload and the record's write), never a reason to abort:
    moto reports a fixed 2010 date.
    """
    if now - initiated < grace:
        return None
    ref = keys.parse_blob_key(key)
    if ref is None:
        return "foreign"
    upload = stored.read_upload(ref.pk, ref.upload_sk)
    if upload is None:
        return "unclaimed"
    if upload.s3_upload_id is not None and upload.s3_upload_id != s3_upload_id:
        return "not-the-record's"  # (a record without one is still starting: it claims)
    if upload.state == "completed":
        return "completed"
    expires = upload.expires_at
    if expires is not None and now - float(expires) >= grace:
        return "expired"
    return None


class _Budget:
    """When a run stops: after a time budget (the scheduled run: well inside Lambda's
    timeout) and/or a number of listed items (tests, and operators who want small steps)."""

    def __init__(self, seconds: float | None, items: int | None) -> None:
        self.deadline = time.monotonic() + seconds if seconds else None
        self.items_left = items

    def spent(self) -> bool:
        if self.items_left is not None and self.items_left <= 0:
            return True
        return self.deadline is not None and time.monotonic() > self.deadline

    def take(self) -> None:
        if self.items_left is not None:
            self.items_left -= 1


def load_cursor() -> dict:
    """Where the last resumable run stopped ({} when it finished its pass)."""
    return reconciler.read_cursor()


def _save_cursor(cursor: dict | None) -> None:
    if cursor is None:
        reconciler.clear_cursor()
    else:
        reconciler.save_cursor(cursor, now_iso())


def reconcile(dry_run: bool = False, time_budget_seconds: float | None = None,
              now: float | None = None, resume: bool = False,
              max_items: int | None = None) -> dict[str, Any]:
    """Compare the bucket and its multipart uploads with the table; delete (or, in a dry run,
    only list) what no record claims and is older than the grace period.

    A run stops when its budget is spent (`time_budget_seconds`, `max_items` listed objects
    and uploads). With `resume` (the scheduled run) it starts where the last resumable run
    stopped and saves where it stops, so a bucket of millions of objects is covered in
    successive runs instead of restarting from the first key every time; a finished pass
    clears the cursor and the next run starts over."""
    settings = get_settings()
    now = time.time() if now is None else now
    grace = settings.orphan_grace_seconds
    report = ReconcileReport(dry_run=dry_run, grace_seconds=grace)
    budget = _Budget(time_budget_seconds, max_items)
    cursor = load_cursor() if resume else {}
    report.resumed_from = cursor or None
    stopped_at: dict | None = None
    s3 = get_aws().s3

    if cursor.get("phase", "objects") == "objects":
        listing = {"Bucket": settings.bucket_name, "Prefix": keys.BLOB_PREFIX}
        if cursor.get("after"):
            listing["StartAfter"] = cursor["after"]
        last = cursor.get("after")
        for page in s3.get_paginator("list_objects_v2").paginate(**listing):
            for obj in page.get("Contents", []):
                if budget.spent():
                    stopped_at = {"phase": "objects", "after": last}
                    break
                budget.take()
                report.objects_scanned += 1
                key, size = obj["Key"], int(obj.get("Size", 0))
                last = key
                claim = judge(key, obj["LastModified"].timestamp(), now)
                if not is_orphan(claim, now, grace):
                    continue
                report.orphans.append({"key": key, "size": size, "reason": claim.state})
                if not dry_run and reclaim(key, claim, size):
                    report.deleted += 1
                    report.bytes_reclaimed += size
            if stopped_at:
                break
        cursor = {}

    if stopped_at is None:
        listing = {"Bucket": settings.bucket_name, "Prefix": keys.BLOB_PREFIX}
        last_mp = (cursor.get("key_marker"), cursor.get("upload_id_marker"))
        if last_mp[0]:
            listing.update(KeyMarker=last_mp[0], UploadIdMarker=last_mp[1] or "")
        for page in s3.get_paginator("list_multipart_uploads").paginate(**listing):
            for mp in page.get("Uploads", []):
                if budget.spent():
                    stopped_at = {"phase": "multipart", "key_marker": last_mp[0],
                                  "upload_id_marker": last_mp[1]}
                    break
                budget.take()
                report.multipart_scanned += 1
                key, upload_id = mp["Key"], mp["UploadId"]
                last_mp = (key, upload_id)
                reason = judge_multipart(key, upload_id, mp["Initiated"].timestamp(), now, grace)
                if reason is None:
                    continue
                report.orphan_multipart.append({"key": key, "upload_id": upload_id,
                                                "reason": reason})
                if not dry_run:
                    if reason == "expired":
                        upload = stored.read_upload(*_upload_key(key))
                        if upload is not None and upload.state == "pending":
                            stored.delete_upload_if(upload, "pending")
                    blobs.abort_multipart(key, upload_id)
                    report.aborted += 1
            if stopped_at:
                break

    report.complete = stopped_at is None
    if resume and not dry_run:
        _save_cursor(stopped_at)
    _count("OrphansFound", len(report.orphans) + len(report.orphan_multipart))
    _count("OrphansDeleted", report.deleted + report.aborted)
    _count("BytesReclaimed", report.bytes_reclaimed, "Bytes")
    summary = report.summary()
    logger.info("reconciled", extra={k: v for k, v in summary.items()
                                     if k not in ("orphans", "orphan_multipart_uploads")})
    return summary


def _upload_key(key: str) -> tuple[str, str]:
    ref = keys.parse_blob_key(key)
    assert ref is not None
    return ref.pk, ref.upload_sk
