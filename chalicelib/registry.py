"""Resources with namespaces: uploads, versions, reads, lists, changes, deletes.

Every function takes the caller (None for anonymous) and applies DESIGN.md's access matrix:
push only into your own namespace; read your own resources and others' public ones; another
user's private resource answers 404 exactly like a missing one.

Writes that race are conditional. A version is committed by one transaction that bumps the
head's version counter (on the condition that it still holds the value read), puts the
immutable version item and marks the upload completed: racing pushes both succeed with
distinct versions, and `latest` is always the highest committed one that is not quarantined.

Integrity (DESIGN.md): `complete` never reads an array's bytes. S3 has already refused any
body whose length or SHA-256 differs from what its URL signed, so `complete` only compares
what S3 stored (a single object's SHA-256, a multipart object's composite of the part
checksums) with what was declared, and commits the version as `pending`. The whole-object
SHA-256 is checked afterwards on the event path (chalicelib/integrity.py), which marks the
version `verified` or quarantines it. Executor packages are small (capped at
NSHUB_MAX_EXECUTOR_BYTES, 100 MiB) and must be validated before they are visible, so their
`complete` still reads them once: bounded work, and they are `verified` when committed.
"""
from __future__ import annotations

import base64
import json
import random
import re
import time
import uuid
from dataclasses import replace
from typing import Any, Callable

from chalicelib import blobs, keys
from chalicelib.auth import Caller
from chalicelib.config import get_settings
from chalicelib.errors import (
    ChecksumMismatch,
    Conflict,
    Forbidden,
    InvalidRequest,
    LegacyReadOnly,
    NotFound,
    SizeMismatch,
    TagProtected,
    TooLarge,
    Unauthorized,
)
from chalicelib.names import check_name, check_namespace, check_tag
from chalicelib.store import resources as stored
from chalicelib.store.records import ConditionFailed, Head, Upload, UploadNotPending, Version
from chalicelib.times import from_now_iso, iso, now_iso

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_METADATA_BYTES = 16 * 1024
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 50
VISIBILITIES = ("public", "private")
# `latest` is no tag: it always names the newest committed version (DESIGN.md). Data written
# before this rule may hold it in a head's tags or protected tags: every read ignores it.
LATEST = "latest"
# Racing commits of one name: each round one wins and the others read the head again; a
# jittered, growing pause spreads them out so dozens of pushes at once all land.
COMMIT_ATTEMPTS = 40
COMMIT_BACKOFF_SECONDS = 0.02
COMMIT_BACKOFF_MAX_SECONDS = 0.5


def _version_check(kind: str) -> Callable[[Any, Upload], dict | None] | None:
    """Extra work a kind does on verified bytes before its version becomes visible: an
    executor's package is validated; what the check returns is stored with the version."""
    if kind == "executor":
        from chalicelib.executors import check_package

        return check_package
    return None


# ---------------------------------------------------------------- access


def require_caller(caller: Caller | None) -> Caller:
    if caller is None:
        raise Unauthorized("sign in first: run `nshub login` or send a bearer token")
    return caller


def require_owner_namespace(caller: Caller | None, ns: str) -> Caller:
    caller = require_caller(caller).require_write()
    if ns == keys.LEGACY_NS:
        raise LegacyReadOnly("legacy resources cannot be updated: push 'your-namespace/NAME'")
    if caller.namespace != ns:
        raise Forbidden(f"you can only push into your own namespace '{caller.namespace}'")
    return caller


def owner_of(head: Head) -> str:
    return head.owner or head.namespace or ""


def can_read(caller: Caller | None, head: Head) -> bool:
    return head.visibility == "public" or (caller is not None and caller.namespace == owner_of(head))


def not_found(kind: str, ns: str | None, name: str) -> NotFound:
    full = f"{ns}/{name}" if ns and ns != keys.LEGACY_NS else name
    return NotFound(f"{kind} '{full}' does not exist or is private: check the name and your login")


def _readable_head(caller: Caller | None, kind: str, ns: str, name: str) -> Head:
    check_namespace(ns)
    head = stored.read_head(keys.resource_pk(ns, name), kind)
    if head is None or not can_read(caller, head):
        raise not_found(kind, ns, name)
    return head


def legacy_read_only(name: str) -> LegacyReadOnly:
    return LegacyReadOnly(
        f"'{name}' is a legacy resource and cannot be changed: push 'your-namespace/{name}' instead"
    )


def _owned_head(caller: Caller | None, kind: str, ns: str, name: str) -> Head:
    """The head a caller may change: 401 anonymous, 403 a read-only token, 409 legacy
    (read-only for everyone, and whether it exists is not told), 404 invisible, 403 visible
    but not theirs (the message never names the owner)."""
    caller = require_caller(caller).require_write()
    if ns == keys.LEGACY_NS:
        raise legacy_read_only(name)
    head = _readable_head(caller, kind, ns, name)
    if owner_of(head) != caller.namespace:
        raise Forbidden(f"this {kind} is not yours: you can only change {kind}s in your own "
                        f"namespace '{caller.namespace}'")
    return head


# ---------------------------------------------------------------- input


def _check_visibility(value: Any) -> str | None:
    if value is None:
        return None
    if value not in VISIBILITIES:
        raise InvalidRequest("visibility must be 'public' or 'private'")
    return value


def _check_metadata(value: Any) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be a JSON object")
    if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_METADATA_BYTES:
        raise InvalidRequest("metadata is larger than 16 KiB: keep it small, put data in the array")
    return value


def _check_tags(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 50:
        raise InvalidRequest(f"{field} must be a list of at most 50 tags")
    tags = sorted({check_tag(t) for t in value})
    if LATEST in tags:
        raise InvalidRequest(f"'{LATEST}' always names the newest version: nobody sets, moves "
                             f"or protects it, leave it out of {field}")
    return tags


def stored_tags(head: Head) -> dict[str, int]:
    """A head's tags -> versions, without `latest` (which is never stored any more)."""
    return {t: v for t, v in head.tags.items() if t != LATEST}


def protected_tags_of(head: Head) -> set[str]:
    return head.protected_tags - {LATEST}


def newest_version(head: Head) -> int | None:
    """The version `latest` names: the head's current one."""
    return head.latest_version


def tags_of(head: Head, version: int) -> list[str]:
    """The tags that name `version`, `latest` included when it is the newest."""
    tags = {t for t, v in stored_tags(head).items() if v == version}
    if version == newest_version(head):
        tags.add(LATEST)
    return sorted(tags)


def _check_int(value: Any, field: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"{field} must be an integer >= {minimum}")
    return value


# ---------------------------------------------------------------- serialization


def _info(kind: str, head: Head, current: dict, metadata: Any) -> dict[str, Any]:
    legacy = bool(head.legacy)
    ns = owner_of(head) if legacy else head.namespace
    info = {
        "kind": kind,
        "namespace": ns,
        "name": head.name,
        "full_name": head.name if legacy and kind == "array" else f"{ns}/{head.name}",
        "visibility": head.visibility,
        "version": current["version"],
        "size": current["size"],
        "sha256": current["sha256"],
        "created_at": head.created_at,
        "updated_at": head.updated_at,
        "metadata": metadata if metadata is not None else {},
        "integrity": current.get("integrity") or "verified",
    }
    if info["integrity"] == "quarantined":
        info["quarantine_reason"] = current.get("integrity_reason")
    if kind == "executor":
        info["tags"] = tags_of(head, int(current["version"]))
        info["protected_tags"] = sorted(protected_tags_of(head))
        info["image"] = _image_ref(head, current)
        info["image_status"] = _image_status(head, current)
        info["md5"] = (current.get("package") or {}).get("md5")
    if legacy:
        info["legacy"] = True
    return info


def _image_ref(head: Head, current: dict) -> str | None:
    registry = get_settings().ecr_registry
    if not registry:
        return None
    return f"{registry}/{keys.image_repository(head.namespace, head.name)}:v{current['version']}"


def _image_status(head: Head, current: dict) -> str:
    """The version item's build status; the head's copy for the latest version (the head's
    `current` is a JSON copy made at commit, the build status arrives later)."""
    status = current.get("image_status")
    if status is None and head.counter is not None and int(head.counter) == current["version"]:
        status = head.image_status
    return status or "pending"


def _with_download(info: dict, blob_key: str) -> dict:
    info["download_url"] = blobs.presign_get(blob_key)
    info["download_expires_at"] = from_now_iso(get_settings().url_expires_seconds)
    return info


# ---------------------------------------------------------------- reads


def get_resource(
    caller: Caller | None, kind: str, ns: str, name: str,
    version: int | None = None, tag: str | None = None, download: bool = True,
) -> dict[str, Any]:
    check_name(name)
    head = _readable_head(caller, kind, ns, name)
    current = dict(head.current)
    metadata = head.metadata
    if tag is not None and check_tag(tag) != LATEST:  # `latest` is the head's current version
        version = stored_tags(head).get(tag)
        if version is None:
            raise NotFound(f"{kind} '{ns}/{name}' has no tag '{tag}': see `nshub hub info`")
    if version is not None and version != current.get("version"):
        found = stored.read_version(keys.resource_pk(ns, name),
                                    keys.version_sk(kind, head.generation, version))
        if found is None:
            raise NotFound(f"{kind} '{ns}/{name}' has no version {version}: see its versions")
        current, metadata = found.summary(), found.metadata
    quarantined = current.get("integrity") == "quarantined"
    if quarantined and not _is_owner(caller, head):
        if version is None:
            raise not_found(kind, ns, name)
        raise NotFound(f"{kind} '{ns}/{name}' has no version {version}: see its versions")
    info = _info(kind, head, current, metadata)
    if quarantined:  # the owner sees why; nobody downloads bytes that are not the declared ones
        return info
    return _with_download(info, current["blob_key"]) if download else info


def _is_owner(caller: Caller | None, head: Head) -> bool:
    return caller is not None and caller.namespace == owner_of(head)


def _encode_cursor(lek: dict | None, scope: str) -> str | None:
    if not lek:
        return None
    raw = json.dumps({"s": scope, "k": lek}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None, scope: str, fields: dict[str, str | None]) -> dict | None:
    """The start key a cursor carries, if it belongs to this listing: the same scope, exactly
    the key attributes of the index (`fields`: name -> the value it must have, or None)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        lek = data["k"]
        ok = data["s"] == scope and isinstance(lek, dict) and set(lek) == set(fields)
        for attr, expected in fields.items():
            value = lek[attr]["S"]
            ok = ok and isinstance(value, str) and 0 < len(value) <= 1024 and \
                (expected is None or value == expected)
    except (ValueError, KeyError, TypeError, RecursionError):
        ok = False
    if not ok:
        raise InvalidRequest("the cursor is not valid for this listing: start again without it")
    return lek


def _limit(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_LIST_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest("limit must be an integer between 1 and 100") from None
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest("limit must be an integer between 1 and 100")
    return limit


def list_resources(caller: Caller | None, kind: str, ns: str, limit: Any = None,
                   cursor: str | None = None) -> dict[str, Any]:
    check_namespace(ns)
    owner = caller is not None and caller.namespace == ns
    scope = f"{kind}#{ns}#{'all' if owner else 'public'}"
    gsi_pk = keys.list_gsi_pk(kind, ns)
    lek = _decode_cursor(cursor, scope, {"pk": None, "sk": None, "gsi1pk": gsi_pk,
                                         "gsi1sk": None})
    if lek and not owner and \
            not lek["gsi1sk"]["S"].startswith(keys.list_gsi_visibility_prefix("public")):
        raise InvalidRequest("the cursor is not valid for this listing: start again without it")
    page = stored.list_heads(kind, ns, not owner, _limit(limit), lek)
    found = [_info(kind, head, head.current, head.metadata) for head in page.records
             if owner or head.current.get("integrity") != "quarantined"]
    return {"items": found, "next_cursor": _encode_cursor(page.last_key, scope)}


def list_versions(caller: Caller | None, kind: str, ns: str, name: str, limit: Any = None,
                  cursor: str | None = None) -> dict[str, Any]:
    check_name(name)
    head = _readable_head(caller, kind, ns, name)
    prefix = keys.version_prefix(kind, head.generation)
    scope = f"{prefix}{ns}#{name.lower()}"
    lek = _decode_cursor(cursor, scope, {"pk": keys.resource_pk(ns, name), "sk": None})
    page = stored.list_versions(keys.resource_pk(ns, name), kind, head.generation,
                                _limit(limit), lek)
    found = []
    owner = _is_owner(caller, head)
    for version in page.records:
        if version.integrity == "quarantined" and not owner:
            continue
        info = _info(kind, head, version.summary(), version.metadata)
        info["created_at"] = version.created_at
        found.append(info)
    return {"items": found, "next_cursor": _encode_cursor(page.last_key, scope)}


# ---------------------------------------------------------------- uploads


def start_upload(caller: Caller | None, kind: str, ns: str, name: str, body: dict,
                 owner_ns: str | None = None) -> dict[str, Any]:
    """Register a pending upload and hand out the URLs its bytes go to.

    `owner_ns` lets a legacy executor push (authorized by its secret) write into its owner's
    namespace; otherwise the caller must own `ns`.
    """
    check_name(name)
    if owner_ns is None:
        caller = require_owner_namespace(caller, ns)
    settings = get_settings()
    size = _check_int(body.get("size"), "size")
    sha256 = body.get("sha256")
    if not isinstance(sha256, str) or not SHA256_RE.match(sha256.lower()):
        raise InvalidRequest("sha256 must be the 64 hex digits of the content's SHA-256")
    sha256 = sha256.lower()
    limit = settings.max_executor_bytes if kind == "executor" else settings.max_upload_bytes
    if size > limit:
        raise TooLarge(f"{size} bytes is over the {limit} byte limit for a {kind}")
    request = {
        "visibility": _check_visibility(body.get("visibility")),
        "metadata": _check_metadata(body.get("metadata")),
    }
    if kind == "executor":
        request["tags"] = _check_tags(body.get("tags"), "tags")
        request["protected_tags"] = _check_tags(body.get("protected_tags"), "protected_tags")
        request["tags"] = sorted(set(request["tags"]) | set(request["protected_tags"]))
        head = stored.read_head(keys.resource_pk(ns, name), kind)
        if head is not None and _same_bytes(head, size, sha256):
            return _keep_unchanged(kind, ns, name, head, request)
        if head is not None:
            _refuse_protected_moves(head, request["tags"], ns, name)

    requested = body.get("part_size")
    if requested is not None:
        requested = _check_int(requested, "part_size", 1)
    part_size, count = blobs.plan_parts(size, requested)
    part_sha256 = _check_part_sha256(body.get("part_sha256"), count) if count > 1 else None
    if count > 1 and part_sha256 is None and kind != "executor":
        # Without them S3 cannot check the parts, and `complete` could not check the object
        # without reading it back. (Executor packages are read and validated at complete.)
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
        kind, ns, name, upload_id, owner=owner_ns or ns, size=size, sha256=sha256,
        blob_key=key, part_size=part_size, part_count=count, request=request,
        part_sha256=part_sha256, created_at=now_iso(), expires_at=expires_at,
    )
    if kind == "executor":
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
    if kind == "executor":
        moving = [t for t in request.get("tags", []) if stored_tags(head).get(t) != current["version"]]
        _refuse_protected_moves(head, moving, ns, name)
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
    return {**_info(kind, head, current, head.metadata), "unchanged": True}


def refresh_part_urls(caller: Caller | None, kind: str, ns: str, name: str, upload_id: str,
                      body: dict, owner_ns: str | None = None) -> dict[str, Any]:
    """Fresh presigned URLs for parts of a pending upload: URLs live at most 15 minutes, a
    large upload may take longer."""
    check_name(name)
    if owner_ns is None:
        require_owner_namespace(caller, ns)
    _, upload = _head_and_upload(owner_ns or ns, kind, ns, name, upload_id)
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


def _check_part_sha256(value: Any, count: int) -> list[str] | None:
    """Optional per-part digests: signed into each part's URL, so S3 enforces every part."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != count or not all(
            isinstance(v, str) and SHA256_RE.match(v.lower()) for v in value):
        raise InvalidRequest(f"part_sha256 must list the sha256 (hex) of each of the {count} parts")
    return [v.lower() for v in value]


def _refuse_protected_moves(head: Head, tags: list[str], ns: str, name: str) -> None:
    protected = protected_tags_of(head)
    for tag in tags:
        if tag in protected and stored_tags(head).get(tag) is not None:
            raise TagProtected(
                f"tag '{tag}' of '{ns}/{name}' is protected and cannot move: push with another tag"
            )


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


def abort_upload(caller: Caller | None, kind: str, ns: str, name: str, upload_id: str,
                 owner_ns: str | None = None) -> None:
    check_name(name)
    if owner_ns is None:
        caller = require_owner_namespace(caller, ns)
    _, upload = _head_and_upload(owner_ns or ns, kind, ns, name, upload_id)
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


def complete_upload(caller: Caller | None, kind: str, ns: str, name: str, upload_id: str,
                    body: dict, owner_ns: str | None = None) -> dict[str, Any]:
    check_name(name)
    if owner_ns is None:
        caller = require_owner_namespace(caller, ns)
    head, upload = _head_and_upload(owner_ns or ns, kind, ns, name, upload_id)
    if upload.state == "completed":
        return _completed_info(kind, ns, name, upload)
    parts = _check_parts(body, upload.part_count)
    _check_stored(upload, parts)
    check = _version_check(kind)
    if check is None:  # the whole-object sha256 is checked on the event path
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
            extra = check(digest.copy, upload)
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


def _check_parts(body: dict, expected: int) -> list[dict]:
    parts = body.get("parts")
    if not isinstance(parts, list) or len(parts) != expected:
        raise InvalidRequest(f"parts must list all {expected} parts as {{part_number, etag}}")
    seen = set()
    out = []
    for p in parts:
        if not isinstance(p, dict) or not isinstance(p.get("etag"), str):
            raise InvalidRequest("each part needs a part_number and the etag S3 returned")
        number = _check_int(p.get("part_number"), "part_number", 1)
        if number > expected or number in seen:
            raise InvalidRequest(f"part numbers must be 1..{expected}, each once")
        seen.add(number)
        out.append({"part_number": number, "etag": p["etag"]})
    return sorted(out, key=lambda p: p["part_number"])


def _completed_info(kind: str, ns: str, name: str, upload: Upload) -> dict[str, Any]:
    head = stored.read_head(upload.pk, kind)
    version = None
    if head is not None and head.generation == upload.generation:
        version = stored.read_version(upload.pk, keys.version_sk(kind, upload.generation,
                                                                  int(upload.version)))
    if head is None or version is None:
        raise NotFound("this upload's version no longer exists: push again")
    return _info(kind, head, version.summary(), version.metadata)


def _commit_version(kind: str, ns: str, name: str, upload: Upload, extra: dict | None,
                    head: Head | None, integrity: str) -> dict:
    """Commit with optimistic concurrency: the first attempt uses the head read with the
    upload; a failed condition (another push, a delete) reads it again."""
    request = upload.request
    for attempt in range(COMMIT_ATTEMPTS):
        if attempt:
            _pause_before_retry(attempt)
            head = stored.read_head(upload.pk, kind, consistent=True)
        if head is not None and kind == "executor":
            _refuse_protected_moves(head, request.get("tags", []), ns, name)
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
                                  _head_changes(new_head, request))
        except UploadNotPending:
            fresh = stored.read_upload(upload.pk, upload.sk)
            if fresh is not None and fresh.state == "completed":
                return _completed_info(kind, ns, name, fresh)
            raise NotFound("this upload was aborted or expired: start a new upload") from None
        except ConditionFailed:
            continue  # another push or a delete got there first: read again and retry
        return _info(kind, new_head, new_head.current, new_head.metadata)
    raise Conflict(f"too many pushes to '{ns}/{name}' at once: try again")


def _pause_before_retry(attempt: int) -> None:
    """Full jitter: a random pause up to a bound that doubles with each failed attempt."""
    bound = min(COMMIT_BACKOFF_MAX_SECONDS, COMMIT_BACKOFF_SECONDS * 2 ** min(attempt, 10))
    time.sleep(random.uniform(0, bound))  # noqa: S311 - jitter, not a secret


def new_generation() -> str:
    return uuid.uuid4().hex[:12]


def _head_changes(new_head: Head, request: dict) -> dict[str, Any]:
    """What a later push writes to the head: only what the push changes, so a change made
    meanwhile (a PATCH) is kept."""
    changes: dict[str, Any] = {
        "counter": new_head.counter, "current": new_head.current,
        "current_size": new_head.current_size, "current_sha256": new_head.current_sha256,
        "updated_at": new_head.updated_at}
    if request.get("visibility"):
        changes["visibility"] = new_head.visibility
    if request.get("metadata") is not None:
        changes["metadata"] = new_head.metadata
    if new_head.kind == "executor":
        changes.update(tags=new_head.tags, image_status=None, image_build_id=None,
                       image_log_url=None)
        if new_head.protected_tags:
            changes["protected_tags"] = new_head.protected_tags
    return changes


def next_head(head: Head | None, version: Version, upload: Upload, stamp: str,
              legacy: bool = False) -> Head:
    """The head once `upload` is committed as `version`: the first push's (head None) or a
    later one's, with what the push asked for (visibility, metadata, tags)."""
    kind, ns, request = version.kind, version.namespace, upload.request
    visibility = request.get("visibility") or (head.visibility if head else "private")
    metadata = request.get("metadata")
    if metadata is None:
        metadata = head.metadata if head is not None else {}
    if head is None:
        head = Head(version.pk, keys.head_sk(kind), kind, ns, upload.name, version.generation,
                    created_at=stamp, legacy=legacy)  # the first spelling stays
    new = replace(
        head, visibility=visibility, metadata=metadata, updated_at=stamp,
        owner=upload.owner if upload.owner != ns else head.owner, counter=version.version,
        current=version.summary(), current_size=version.size, current_sha256=version.sha256,
    )
    if kind == "executor":
        tags = stored_tags(head)  # an old `latest` entry goes
        for tag in request.get("tags", []):
            tags[tag] = version.version
        new.tags = tags
        new.protected_tags = protected_tags_of(head) | set(request.get("protected_tags", []))
        new.image_status = new.image_build_id = new.image_log_url = None  # not built yet
    return new


# ---------------------------------------------------------------- changes


def update_resource(caller: Caller | None, kind: str, ns: str, name: str, body: dict) -> dict:
    check_name(name)
    visibility = _check_visibility(body.get("visibility"))
    metadata = _check_metadata(body.get("metadata"))
    unknown = set(body) - {"visibility", "metadata"}
    if unknown:
        raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}: only visibility and metadata")
    if visibility is None and metadata is None:
        raise InvalidRequest("nothing to change: send visibility and/or metadata")
    head = _owned_head(caller, kind, ns, name)
    changes: dict[str, Any] = {"updated_at": now_iso()}
    if visibility is not None:
        changes["visibility"] = visibility
    if metadata is not None:
        changes["metadata"] = metadata
    try:
        head = stored.update_head(head, changes)
    except ConditionFailed:
        raise not_found(kind, ns, name) from None
    return _info(kind, head, head.current, head.metadata)


def delete_resource(caller: Caller | None, kind: str, ns: str, name: str) -> None:
    """Delete the head now; its versions and bytes go asynchronously (the table stream)."""
    check_name(name)
    head = _owned_head(caller, kind, ns, name)
    if not stored.delete_head(head):
        raise not_found(kind, ns, name)
