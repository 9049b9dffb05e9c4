"""Pushes: start an upload, refresh its part URLs, abort it, complete it, commit its version.

The upload record comes first: no object or multipart upload at a key ever exists without a
record that claims it. A version is committed by one transaction that bumps the head's
version counter (on the condition that it still holds the value read), puts the immutable
version item and marks the upload completed: racing pushes all land with distinct
versions, and `latest` is always the highest committed one that is not quarantined. A push
of the bytes the newest version already holds makes no version (an unchanged re-push).

Integrity (DESIGN.md): `complete` never reads an array's bytes. S3 has already refused any
body whose length or SHA-256 differs from what its URL signed, so `complete` only compares
what S3 stored (a single object's SHA-256, a multipart object's composite of the part
checksums) with what was declared, and commits the version as `pending`. The whole-object
SHA-256 is checked afterwards on the event path (chalicelib/integrity.py), which marks the
version `verified` or quarantines it. A kind checked at complete (executor packages: small,
capped at NSHUB_MAX_EXECUTOR_BYTES, and validated before they are visible) is read once
there: bounded work, and its versions are `verified` when committed.
"""
from __future__ import annotations

import random
import re
import time
import uuid
from typing import Any

from chalicelib import blobs, keys
from chalicelib.access import Who, require_pusher
from chalicelib.checks import (
    check_int,
    check_metadata,
    check_part_sha256,
    check_parts,
    check_sha256,
    check_tags,
    check_visibility,
)
from chalicelib.config import get_settings
from chalicelib.errors import ChecksumMismatch, Conflict, InvalidRequest, NotFound, SizeMismatch, TooLarge
from chalicelib.heads import head_changes, new_generation, next_head
from chalicelib.info import resource_info
from chalicelib.kinds import policy
from chalicelib.names import check_name
from chalicelib.store import resources as stored
from chalicelib.store.records import ConditionFailed, Head, Upload, UploadNotPending, Version
from chalicelib.tags import refuse_protected_moves, stored_tags
from chalicelib.times import iso, now_iso

# Racing commits of one name: each round one wins and the others read the head again; a
# jittered, growing pause spreads them out so dozens of pushes at once all land.
COMMIT_ATTEMPTS = 40
COMMIT_BACKOFF_SECONDS = 0.02
COMMIT_BACKOFF_MAX_SECONDS = 0.5


def start_upload(who: Who, kind: str, ns: str, name: str, body: dict) -> dict[str, Any]:
    """Register a pending upload and hand out the URLs its bytes go to."""
    check_name(name)
    pusher = require_pusher(who, kind, ns, name)
    kind_policy = policy(kind)
    settings = get_settings()
    size = check_int(body.get("size"), "size")
    sha256 = check_sha256(body.get("sha256"))
    limit = kind_policy.max_bytes(settings)
    if size > limit:
        raise TooLarge(f"{size} bytes is over the {limit} byte limit for a {kind}")
    request = {
        "visibility": check_visibility(body.get("visibility")),
        "metadata": check_metadata(body.get("metadata")),
    }
    if kind_policy.tagged:  # the tags need the head: the unchanged check reads it too
        request["tags"] = check_tags(body.get("tags"), "tags")
        request["protected_tags"] = check_tags(body.get("protected_tags"), "protected_tags")
        request["tags"] = sorted(set(request["tags"]) | set(request["protected_tags"]))
        head = stored.read_head(keys.resource_pk(ns, name), kind)
        if head is not None and _same_bytes(head, size, sha256):
            return _keep_unchanged(kind, ns, name, head, request)
        if head is not None:
            refuse_protected_moves(head, request["tags"], ns, name)

    requested = body.get("part_size")
    if requested is not None:
        requested = check_int(requested, "part_size", 1)
    part_size, count = blobs.plan_parts(size, requested)
    part_sha256 = check_part_sha256(body.get("part_sha256"), count) if count > 1 else None
    if count > 1 and part_sha256 is None and not kind_policy.checks_at_complete:
        # Without them S3 cannot check the parts, and `complete` could not check the object
        # without reading it back (as it does for a kind it checks at complete).
        raise InvalidRequest(
            f"a {size}-byte upload is sent in parts: declare part_size and part_sha256 (the "
            f"sha256 of each part); `pip install -U nshub` does it for you"
        )
    upload_id = uuid.uuid4().hex
    key = keys.blob_key(kind, ns, name, upload_id)
    expires_at = int(time.time()) + settings.upload_ttl_seconds
    # The record comes first: no object or multipart upload at this key ever exists without
    # a record that claims it, so cleanup cannot mistake a starting upload for an orphan.
    upload = Upload.new(
        kind, ns, name, upload_id, owner=pusher, size=size, sha256=sha256,
        blob_key=key, part_size=part_size, part_count=count, request=request,
        part_sha256=part_sha256, created_at=now_iso(), expires_at=expires_at,
    )
    if kind_policy.tagged:  # the head was read above
        stored.put_upload(upload)
    else:
        unchanged = _save_unless_unchanged(upload, kind, ns, name, request)
        if unchanged is not None:
            return unchanged
    if count == 1:
        parts = [blobs.presign_single_put(key, size, sha256)]
    else:
        try:
            s3_upload_id = blobs.start_multipart(key, part_checksums=part_sha256 is not None)
            stored.set_multipart_id(upload, s3_upload_id)
        except Exception:
            stored.delete_upload(upload)
            raise
        first = list(range(1, min(count, blobs.PART_URL_BATCH) + 1))
        parts = blobs.presign_part_urls(key, s3_upload_id, size, part_size, first,
                                        part_sha256=part_sha256)
    return {
        "upload_id": upload_id,
        "part_size": part_size,
        "parts_total": count,
        "expires_at": iso(expires_at),
        "urls_expire_at": iso(int(time.time()) + settings.url_expires_seconds),
        "parts": parts,
    }


def _same_bytes(head: Head, size: int, sha256: str) -> bool:
    return head.current_sha256 == sha256 and head.current_size == size


def _save_unless_unchanged(upload: Upload, kind: str, ns: str, name: str,
                           request: dict) -> dict | None:
    """Save a new upload record, in one transaction with a check that the head's newest
    version does not already hold these bytes (one call either way). Returns the unchanged
    answer instead when it does."""
    for _ in range(COMMIT_ATTEMPTS):
        if stored.put_upload_unless_current(upload):
            return None
        head = stored.read_head(upload.pk, kind, consistent=True)
        if head is not None and _same_bytes(head, upload.size, upload.sha256):
            return _keep_unchanged(kind, ns, name, head, request)
    raise Conflict(f"too many pushes to '{ns}/{name}' at once: try again")


def _keep_unchanged(kind: str, ns: str, name: str, head: Head, request: dict) -> dict:
    """A re-push of the newest version's bytes: nothing is uploaded and no version is made.
    What the push asked for besides bytes (visibility, metadata, an executor's new tags)
    applies to that version, as a PATCH would."""
    current = dict(head.current)
    changes: dict[str, Any] = {}
    if request.get("visibility") and request["visibility"] != head.visibility:
        changes["visibility"] = request["visibility"]
    if request.get("metadata") is not None and request["metadata"] != head.metadata:
        changes["metadata"] = request["metadata"]
    if policy(kind).tagged:
        moving = [t for t in request.get("tags", []) if stored_tags(head).get(t) != current["version"]]
        refuse_protected_moves(head, moving, ns, name)
        tags = {**stored_tags(head), **{t: current["version"] for t in moving}}
        protected = head.protected_tags | set(request.get("protected_tags", []))
        if moving:
            changes["tags"] = tags
        if protected != head.protected_tags:
            changes["protected_tags"] = protected
    if changes:
        changes["updated_at"] = now_iso()
        try:
            head = stored.update_head(head, changes, unchanged=("counter", "generation"))
        except ConditionFailed:
            raise Conflict(f"'{ns}/{name}' changed while you pushed: push again") from None
    return {**resource_info(kind, head, current, head.metadata), "unchanged": True}


def refresh_part_urls(who: Who, kind: str, ns: str, name: str, upload_id: str,
                      body: dict) -> dict[str, Any]:
    """Fresh presigned URLs for parts of a pending upload: URLs live at most 15 minutes, a
    large upload may take longer."""
    check_name(name)
    pusher = require_pusher(who, kind, ns, name)
    _, upload = _head_and_upload(pusher, kind, ns, name, upload_id)
    if upload.state != "pending":
        raise Conflict("this upload is already complete: nothing left to upload")
    count = upload.part_count
    numbers = body.get("part_numbers")
    if numbers is None:
        numbers = list(range(1, min(count, blobs.PART_URL_BATCH) + 1))
    if not isinstance(numbers, list) or not numbers or any(
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= count for n in numbers):
        raise InvalidRequest(f"part_numbers must list part numbers between 1 and {count}")
    if len(set(numbers)) > blobs.PART_URL_BATCH:
        raise InvalidRequest(f"ask for at most {blobs.PART_URL_BATCH} part URLs at a time")
    if upload.s3_upload_id:
        parts = blobs.presign_part_urls(upload.blob_key, upload.s3_upload_id, upload.size,
                                        upload.part_size, sorted(set(numbers)),
                                        part_sha256=upload.part_sha256)
    else:
        parts = [blobs.presign_single_put(upload.blob_key, upload.size, upload.sha256)]
    expires = int(time.time()) + get_settings().url_expires_seconds
    return {"upload_id": upload_id, "parts": parts, "parts_total": count,
            "urls_expire_at": iso(expires)}


def _head_and_upload(caller_ns: str, kind: str, ns: str, name: str,
                     upload_id: str) -> tuple[Head | None, Upload]:
    """The resource head (None before the first version) and a caller's live upload, in one
    consistent BatchGetItem."""
    unknown = NotFound("unknown upload id: start a new upload")
    if not re.fullmatch(r"[0-9a-f]{32}", upload_id or ""):
        raise unknown
    head, upload = stored.head_and_upload(keys.resource_pk(ns, name), kind, upload_id)
    if upload is None or upload.owner != caller_ns:
        raise unknown
    if upload.state == "pending" and (upload.expires_at or 0) < time.time():
        raise NotFound("this upload has expired: start a new upload")
    return head, upload


def abort_upload(who: Who, kind: str, ns: str, name: str, upload_id: str) -> None:
    check_name(name)
    pusher = require_pusher(who, kind, ns, name)
    _, upload = _head_and_upload(pusher, kind, ns, name, upload_id)
    if upload.state != "pending":
        raise Conflict("this upload is already complete: delete the resource instead")
    _discard_upload(upload)


def _discard_upload(upload: Upload) -> None:
    """Forget a pending upload and its bytes: nothing of it stays claimed. The record goes
    first, on the condition that it is still pending: a complete that committed meanwhile
    keeps its bytes."""
    if not stored.delete_upload_if(upload, "pending"):
        return  # completed meanwhile: the version owns the bytes now
    if upload.s3_upload_id:
        blobs.abort_multipart(upload.blob_key, upload.s3_upload_id)
    blobs.delete_object(upload.blob_key)


def complete_upload(who: Who, kind: str, ns: str, name: str, upload_id: str,
                    body: dict) -> dict[str, Any]:
    check_name(name)
    pusher = require_pusher(who, kind, ns, name)
    kind_policy = policy(kind)
    head, upload = _head_and_upload(pusher, kind, ns, name, upload_id)
    if upload.state == "completed":
        return _completed_info(kind, upload)
    parts = check_parts(body, upload.part_count)
    _check_stored(upload, parts)
    if not kind_policy.checks_at_complete:  # the whole-object sha256: on the event path
        return _commit_version(kind, ns, name, upload, None, head, integrity="pending")
    digest = blobs.digest_object(upload.blob_key, keep_copy=True)
    if digest is None:
        raise InvalidRequest("no bytes arrived for this upload: PUT every part, then complete")
    try:
        _refuse_unless(upload, digest.size == upload.size,
                       SizeMismatch(f"declared {upload.size} bytes but {digest.size} arrived: "
                                    f"push again"))
        _refuse_unless(upload, digest.sha256 == upload.sha256, ChecksumMismatch(
            "the bytes that arrived do not match the declared sha256: push again"))
        try:
            extra = kind_policy.check_package(digest.copy)
        except Exception:
            _discard_upload(upload)
            raise
    finally:
        digest.copy.close()
    return _commit_version(kind, ns, name, upload, extra, head, integrity="verified")


def _check_stored(upload: Upload, parts: list[dict]) -> None:
    """What S3 stored, checked without reading it: a single object's length and SHA-256 (one
    HEAD); a multipart object's composite checksum, which S3 computes from the checksums of
    the parts it holds (each checked against its body and signed length at upload), against
    the one the declared part digests give. A mismatch discards the upload."""
    if upload.s3_upload_id:
        composite = blobs.complete_multipart(upload.blob_key, upload.s3_upload_id, parts,
                                             upload.part_sha256)
        if not upload.part_sha256:
            return  # an upload started without part digests (executors): read at complete
        if composite is None:  # completed by an earlier attempt of this request
            stored = blobs.stored_checksum(upload.blob_key)
            composite = stored.checksum_sha256 if stored is not None else None
        _refuse_unless(upload, composite == blobs.composite_sha256(upload.part_sha256),
                       ChecksumMismatch("the parts S3 holds are not the ones declared in "
                                        "part_sha256: push again"))
        return
    stored = blobs.stored_checksum(upload.blob_key)
    if stored is None:
        raise InvalidRequest("no bytes arrived for this upload: PUT every part, then complete")
    _refuse_unless(upload, stored.size == upload.size, SizeMismatch(
        f"declared {upload.size} bytes but {stored.size} arrived: push again"))
    _refuse_unless(upload, stored.checksum_sha256 == blobs.hex_to_b64(upload.sha256),
                   ChecksumMismatch("the bytes that arrived do not match the declared sha256: "
                                    "push again"))


def _refuse_unless(upload: Upload, ok: bool, error: Exception) -> None:
    if not ok:
        _discard_upload(upload)
        raise error


def _completed_info(kind: str, upload: Upload) -> dict[str, Any]:
    head = stored.read_head(upload.pk, kind)
    version = None
    if head is not None and head.generation == upload.generation:
        version = stored.read_version(upload.pk, keys.version_sk(kind, upload.generation,
                                                                  int(upload.version)))
    if head is None or version is None:
        raise NotFound("this upload's version no longer exists: push again")
    return resource_info(kind, head, version.summary(), version.metadata)


def _commit_version(kind: str, ns: str, name: str, upload: Upload, extra: dict | None,
                    head: Head | None, integrity: str) -> dict:
    """Commit with optimistic concurrency: the first attempt uses the head read with the
    upload; a failed condition (another push, a delete) reads it again."""
    request = upload.request
    for attempt in range(COMMIT_ATTEMPTS):
        if attempt:
            _pause_before_retry(attempt)
            head = stored.read_head(upload.pk, kind, consistent=True)
        if head is not None and policy(kind).tagged:
            refuse_protected_moves(head, request.get("tags", []), ns, name)
        stamp = now_iso()
        generation = head.generation if head is not None else new_generation()
        version = Version.new(
            kind, ns, name, generation, (head.counter or 0) + 1 if head is not None else 1,
            size=upload.size, sha256=upload.sha256, blob_key=upload.blob_key, created_at=stamp,
            metadata=request.get("metadata"), upload_id=upload.upload_id, package=extra,
            integrity=integrity,
        )
        new_head = next_head(head, version, upload, stamp)
        try:
            stored.commit_version(head, new_head, version, upload,
                                  head_changes(new_head, request))
        except UploadNotPending:
            fresh = stored.read_upload(upload.pk, upload.sk)
            if fresh is not None and fresh.state == "completed":
                return _completed_info(kind, fresh)
            raise NotFound("this upload was aborted or expired: start a new upload") from None
        except ConditionFailed:
            continue  # another push or a delete got there first: read again and retry
        return resource_info(kind, new_head, new_head.current, new_head.metadata)
    raise Conflict(f"too many pushes to '{ns}/{name}' at once: try again")


def _pause_before_retry(attempt: int) -> None:
    """Full jitter: a random pause up to a bound that doubles with each failed attempt."""
    bound = min(COMMIT_BACKOFF_MAX_SECONDS, COMMIT_BACKOFF_SECONDS * 2 ** min(attempt, 10))
    time.sleep(random.uniform(0, bound))  # noqa: S311 - jitter, not a secret
