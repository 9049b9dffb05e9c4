"""The reconciler: the hourly sweep (and `nshub-admin reconcile [--dry-run]`) comparing the
bucket and its in-progress multipart uploads with the table, by the same claims the event
handlers judge by (chalicelib/cleanup.py): what no record claims and is older than the grace
period goes. A scheduled run resumes where the last one stopped (a cursor in the table), so
a bucket of millions of objects is covered in successive runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from chalicelib import blobs, keys
from chalicelib.cleanup import count_metric, is_orphan, judge, reclaim
from chalicelib.config import get_aws, get_settings
from chalicelib.observability import logger
from chalicelib.store import reconciler as cursors
from chalicelib.store import resources as stored
from chalicelib.times import now_iso


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
    return cursors.read_cursor()


def _save_cursor(cursor: dict | None) -> None:
    if cursor is None:
        cursors.clear_cursor()
    else:
        cursors.save_cursor(cursor, now_iso())


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
    count_metric("OrphansFound", len(report.orphans) + len(report.orphan_multipart))
    count_metric("OrphansDeleted", report.deleted + report.aborted)
    count_metric("BytesReclaimed", report.bytes_reclaimed, "Bytes")
    summary = report.summary()
    logger.info("reconciled", extra={k: v for k, v in summary.items()
                                     if k not in ("orphans", "orphan_multipart_uploads")})
    return summary


def _upload_key(key: str) -> tuple[str, str]:
    ref = keys.parse_blob_key(key)
    assert ref is not None
    return ref.pk, ref.upload_sk
