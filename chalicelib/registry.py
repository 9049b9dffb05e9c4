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
import datetime as dt
import json
import random
import re
import time
import uuid
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
from chalicelib.models import Item, items
from chalicelib.names import check_name, check_namespace, check_tag

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


def _version_check(kind: str) -> Callable[[Any, Item], dict | None] | None:
    """Extra work a kind does on verified bytes before its version becomes visible: an
    executor's package is validated; what the check returns is stored with the version."""
    if kind == "executor":
        from chalicelib.executors import check_package

        return check_package
    return None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


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


def owner_of(head: Item) -> str:
    return head.owner or head.namespace or ""


def can_read(caller: Caller | None, head: Item) -> bool:
    return head.visibility == "public" or (caller is not None and caller.namespace == owner_of(head))


def not_found(kind: str, ns: str | None, name: str) -> NotFound:
    full = f"{ns}/{name}" if ns and ns != keys.LEGACY_NS else name
    return NotFound(f"{kind} '{full}' does not exist or is private: check the name and your login")


def _readable_head(caller: Caller | None, kind: str, ns: str, name: str) -> Item:
    check_namespace(ns)
    head = _get(keys.resource_pk(ns, name), keys.head_sk(kind))
    if head is None or not can_read(caller, head):
        raise not_found(kind, ns, name)
    return head


def legacy_read_only(name: str) -> LegacyReadOnly:
    return LegacyReadOnly(
        f"'{name}' is a legacy resource and cannot be changed: push 'your-namespace/{name}' instead"
    )


def _owned_head(caller: Caller | None, kind: str, ns: str, name: str) -> Item:
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


def _get(pk: str, sk: str, consistent: bool = False) -> Item | None:
    try:
        return items().get(pk, sk, consistent_read=consistent)
    except Item.DoesNotExist:
        return None


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


def stored_tags(head: Item) -> dict[str, int]:
    """A head's tags -> versions, without `latest` (which is never stored any more)."""
    return {t: int(v) for t, v in (head.tags or {}).items() if t != LATEST}


def protected_tags_of(head: Item) -> set[str]:
    return set(head.protected_tags or ()) - {LATEST}


def newest_version(head: Item) -> int | None:
    """The version `latest` names: the head's current one."""
    version = (head.current or {}).get("version")
    return int(version) if version is not None else None


def tags_of(head: Item, version: int) -> list[str]:
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


def _info(kind: str, head: Item, current: dict, metadata: Any) -> dict[str, Any]:
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


def _image_ref(head: Item, current: dict) -> str | None:
    registry = get_settings().ecr_registry
    if not registry:
        return None
    return f"{registry}/{keys.image_repository(head.namespace, head.name)}:v{current['version']}"


def _image_status(head: Item, current: dict) -> str:
    """The version item's build status; the head's copy for the latest version (the head's
    `current` is a JSON copy made at commit, the build status arrives later)."""
    status = current.get("image_status")
    if status is None and head.counter is not None and int(head.counter) == current["version"]:
        status = head.image_status
    return status or "pending"


def _version_record(item: Item) -> dict[str, Any]:
    return {
        "version": int(item.version), "size": int(item.size), "sha256": item.sha256,
        "blob_key": item.blob_key, "created_at": item.created_at, "metadata": item.metadata,
        "upload_id": item.upload_id, "package": item.package,
        "image_status": item.image_status, "integrity": item.integrity,
        "integrity_reason": item.integrity_reason,
    }


def _with_download(info: dict, blob_key: str) -> dict:
    settings = get_settings()
    info["download_url"] = blobs.presign_get(blob_key)
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=settings.url_expires_seconds)
    info["download_expires_at"] = expires.isoformat(timespec="seconds").replace("+00:00", "Z")
    return info


# ---------------------------------------------------------------- reads


def get_resource(
    caller: Caller | None, kind: str, ns: str, name: str,
    version: int | None = None, tag: str | None = None, download: bool = True,
) -> dict[str, Any]:
    check_name(name)
    head = _readable_head(caller, kind, ns, name)
    current = dict(head.current or {})
    metadata = head.metadata
    if tag is not None and check_tag(tag) != LATEST:  # `latest` is the head's current version
        version = stored_tags(head).get(tag)
        if version is None:
            raise NotFound(f"{kind} '{ns}/{name}' has no tag '{tag}': see `nshub hub info`")
    if version is not None and version != current.get("version"):
        item = _get(keys.resource_pk(ns, name), keys.version_sk(kind, head.generation, version))
        if item is None:
            raise NotFound(f"{kind} '{ns}/{name}' has no version {version}: see its versions")
        current, metadata = _version_record(item), item.metadata
    quarantined = current.get("integrity") == "quarantined"
    if quarantined and not _is_owner(caller, head):
        if version is None:
            raise not_found(kind, ns, name)
        raise NotFound(f"{kind} '{ns}/{name}' has no version {version}: see its versions")
    info = _info(kind, head, current, metadata)
    if quarantined:  # the owner sees why; nobody downloads bytes that are not the declared ones
        return info
    return _with_download(info, current["blob_key"]) if download else info


def _is_owner(caller: Caller | None, head: Item) -> bool:
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
    if lek and not owner and not lek["gsi1sk"]["S"].startswith("public#"):
        raise InvalidRequest("the cursor is not valid for this listing: start again without it")
    model = items()
    condition = None if owner else model.gsi1sk.startswith("public#")
    result = model.list_index.query(
        gsi_pk, condition, limit=_limit(limit),
        page_size=_limit(limit), last_evaluated_key=lek,
    )
    found = [_info(kind, head, head.current, head.metadata) for head in result
             if owner or (head.current or {}).get("integrity") != "quarantined"]
    return {"items": found, "next_cursor": _encode_cursor(result.last_evaluated_key, scope)}


def list_versions(caller: Caller | None, kind: str, ns: str, name: str, limit: Any = None,
                  cursor: str | None = None) -> dict[str, Any]:
    check_name(name)
    head = _readable_head(caller, kind, ns, name)
    prefix = keys.version_prefix(kind, head.generation)
    scope = f"{prefix}{ns}#{name.lower()}"
    lek = _decode_cursor(cursor, scope, {"pk": keys.resource_pk(ns, name), "sk": None})
    model = items()
    result = model.query(
        keys.resource_pk(ns, name), model.sk.startswith(prefix), scan_index_forward=False,
        limit=_limit(limit), page_size=_limit(limit), last_evaluated_key=lek,
    )
    found = []
    owner = _is_owner(caller, head)
    for item in result:
        if item.integrity == "quarantined" and not owner:
            continue
        record = _version_record(item)
        info = _info(kind, head, record, item.metadata)
        info["created_at"] = item.created_at
        found.append(info)
    return {"items": found, "next_cursor": _encode_cursor(result.last_evaluated_key, scope)}


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
        head = _get(keys.resource_pk(ns, name), keys.head_sk(kind))
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
    model = items()
    # The record comes first: no object or multipart upload at this key ever exists without
    # a record that claims it, so cleanup cannot mistake a starting upload for an orphan.
    upload = model(
        keys.resource_pk(ns, name), keys.upload_sk(kind, upload_id),
        kind=kind, namespace=ns, name=name, owner=owner_ns or ns, upload_id=upload_id,
        size=size, sha256=sha256, blob_key=key, part_size=part_size, part_count=count,
        state="pending", request=request, part_sha256=part_sha256, created_at=now_iso(),
        expires_at=expires_at,
    )
    if kind == "executor":
        upload.save(model.pk.does_not_exist())
    else:
        unchanged = _save_unless_unchanged(upload, kind, ns, name, request)
        if unchanged is not None:
            return unchanged
    if count == 1:
        parts = [blobs.presign_single_put(key, size, sha256)]
    else:
        try:
            s3_upload_id = blobs.start_multipart(key, part_checksums=part_sha256 is not None)
            upload.update([model.s3_upload_id.set(s3_upload_id)],
                          condition=model.state == "pending")
        except Exception:
            upload.delete()
            raise
        first = list(range(1, min(count, blobs.PART_URL_BATCH) + 1))
        parts = blobs.presign_part_urls(key, s3_upload_id, size, part_size, first,
                                        part_sha256=part_sha256)
    return {
        "upload_id": upload_id,
        "part_size": part_size,
        "parts_total": count,
        "expires_at": _iso(expires_at),
        "urls_expire_at": _iso(int(time.time()) + settings.url_expires_seconds),
        "parts": parts,
    }


def _same_bytes(head: Item, size: int, sha256: str) -> bool:
    return head.current_sha256 == sha256 and head.current_size is not None \
        and int(head.current_size) == size


def _save_unless_unchanged(upload: Item, kind: str, ns: str, name: str,
                           request: dict) -> dict | None:
    """Save a new upload record, in one transaction with a check that the head's newest
    version does not already hold these bytes (one call either way). Returns the unchanged
    answer instead when it does."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    model = items()
    pk, size, sha256 = keys.resource_pk(ns, name), int(upload.size), upload.sha256
    for _ in range(COMMIT_ATTEMPTS):
        try:
            with TransactWrite(connection=model._get_connection().connection) as tx:
                tx.condition_check(model, pk, keys.head_sk(kind), condition=(
                    model.current_sha256.does_not_exist() | (model.current_sha256 != sha256)
                    | (model.current_size != size)))
                tx.save(upload, condition=model.pk.does_not_exist())
            return None
        except TransactWriteError as exc:
            reasons = [getattr(r, "code", None) for r in (exc.cancellation_reasons or [])]
            if not reasons or reasons[0] != "ConditionalCheckFailed":
                if "TransactionConflict" in reasons:
                    continue
                raise
        head = _get(pk, keys.head_sk(kind), consistent=True)
        if head is not None and _same_bytes(head, size, sha256):
            return _keep_unchanged(kind, ns, name, head, request)
    raise Conflict(f"too many pushes to '{ns}/{name}' at once: try again")


def _keep_unchanged(kind: str, ns: str, name: str, head: Item, request: dict) -> dict:
    """A re-push of the newest version's bytes: nothing is uploaded and no version is made.
    What the push asked for besides bytes (visibility, metadata, an executor's new tags)
    applies to that version, as a PATCH would."""
    from pynamodb.exceptions import UpdateError

    model = items()
    current = dict(head.current or {})
    actions = []
    if request.get("visibility") and request["visibility"] != head.visibility:
        actions += [model.visibility.set(request["visibility"]),
                    model.gsi1sk.set(keys.list_gsi_sk(request["visibility"], head.name))]
    if request.get("metadata") is not None and request["metadata"] != head.metadata:
        actions.append(model.metadata.set(request["metadata"]))
    if kind == "executor":
        moving = [t for t in request.get("tags", []) if stored_tags(head).get(t) != current["version"]]
        _refuse_protected_moves(head, moving, ns, name)
        tags = {**stored_tags(head), **{t: current["version"] for t in moving}}
        protected = set(head.protected_tags or ()) | set(request.get("protected_tags", []))
        if moving:
            actions.append(model.tags.set(tags))
        if protected != set(head.protected_tags or ()):
            actions.append(model.protected_tags.set(protected))
    if actions:
        actions.append(model.updated_at.set(now_iso()))
        try:
            head.update(actions, condition=(model.counter == head.counter)
                        & (model.generation == head.generation))
        except UpdateError:
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
    count = int(upload.part_count)
    numbers = body.get("part_numbers")
    if numbers is None:
        numbers = list(range(1, min(count, blobs.PART_URL_BATCH) + 1))
    if not isinstance(numbers, list) or not numbers or any(
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= count for n in numbers):
        raise InvalidRequest(f"part_numbers must list part numbers between 1 and {count}")
    if len(set(numbers)) > blobs.PART_URL_BATCH:
        raise InvalidRequest(f"ask for at most {blobs.PART_URL_BATCH} part URLs at a time")
    if upload.s3_upload_id:
        parts = blobs.presign_part_urls(upload.blob_key, upload.s3_upload_id, int(upload.size),
                                        int(upload.part_size), sorted(set(numbers)),
                                        part_sha256=upload.part_sha256)
    else:
        parts = [blobs.presign_single_put(upload.blob_key, int(upload.size), upload.sha256)]
    expires = int(time.time()) + get_settings().url_expires_seconds
    return {"upload_id": upload_id, "parts": parts, "parts_total": count,
            "urls_expire_at": _iso(expires)}


def _check_part_sha256(value: Any, count: int) -> list[str] | None:
    """Optional per-part digests: signed into each part's URL, so S3 enforces every part."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != count or not all(
            isinstance(v, str) and SHA256_RE.match(v.lower()) for v in value):
        raise InvalidRequest(f"part_sha256 must list the sha256 (hex) of each of the {count} parts")
    return [v.lower() for v in value]


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _refuse_protected_moves(head: Item, tags: list[str], ns: str, name: str) -> None:
    protected = protected_tags_of(head)
    for tag in tags:
        if tag in protected and stored_tags(head).get(tag) is not None:
            raise TagProtected(
                f"tag '{tag}' of '{ns}/{name}' is protected and cannot move: push with another tag"
            )


def _head_and_upload(caller_ns: str, kind: str, ns: str, name: str,
                     upload_id: str) -> tuple[Item | None, Item]:
    """The resource head (None before the first version) and a caller's live upload, in one
    consistent BatchGetItem."""
    unknown = NotFound("unknown upload id: start a new upload")
    if not re.fullmatch(r"[0-9a-f]{32}", upload_id or ""):
        raise unknown
    pk = keys.resource_pk(ns, name)
    wanted = [(pk, keys.head_sk(kind)), (pk, keys.upload_sk(kind, upload_id))]
    found = {item.sk: item for item in items().batch_get(wanted, consistent_read=True)}
    upload = found.get(keys.upload_sk(kind, upload_id))
    if upload is None or upload.owner != caller_ns:
        raise unknown
    if upload.state == "pending" and (upload.expires_at or 0) < time.time():
        raise NotFound("this upload has expired: start a new upload")
    return found.get(keys.head_sk(kind)), upload


def abort_upload(caller: Caller | None, kind: str, ns: str, name: str, upload_id: str,
                 owner_ns: str | None = None) -> None:
    check_name(name)
    if owner_ns is None:
        caller = require_owner_namespace(caller, ns)
    _, upload = _head_and_upload(owner_ns or ns, kind, ns, name, upload_id)
    if upload.state != "pending":
        raise Conflict("this upload is already complete: delete the resource instead")
    _discard_upload(upload)


def _discard_upload(upload: Item) -> None:
    """Forget a pending upload and its bytes: nothing of it stays claimed. The record goes
    first, on the condition that it is still pending: a complete that committed meanwhile
    keeps its bytes."""
    from pynamodb.exceptions import DeleteError

    try:
        upload.delete(items().state == "pending")
    except DeleteError:
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
    parts = _check_parts(body, int(upload.part_count))
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


def _check_stored(upload: Item, parts: list[dict]) -> None:
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


def _refuse_unless(upload: Item, ok: bool, error: Exception) -> None:
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


def _completed_info(kind: str, ns: str, name: str, upload: Item) -> dict[str, Any]:
    head = _get(keys.resource_pk(ns, name), keys.head_sk(kind))
    item = None
    if head is not None and head.generation == upload.generation:
        item = _get(keys.resource_pk(ns, name), keys.version_sk(kind, upload.generation,
                                                                 int(upload.version)))
    if head is None or item is None:
        raise NotFound("this upload's version no longer exists: push again")
    return _info(kind, head, _version_record(item), item.metadata)


def _commit_version(kind: str, ns: str, name: str, upload: Item, extra: dict | None,
                    head: Item | None, integrity: str) -> dict:
    """Commit with optimistic concurrency: the first attempt uses the head read with the
    upload; a failed condition (another push, a delete) reads it again."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    model = items()
    pk = keys.resource_pk(ns, name)
    request = upload.request or {}
    for attempt in range(COMMIT_ATTEMPTS):
        if attempt:
            _pause_before_retry(attempt)
            head = _get(pk, keys.head_sk(kind), consistent=True)
        if head is not None and kind == "executor":
            _refuse_protected_moves(head, request.get("tags", []), ns, name)
        stamp = now_iso()
        generation = head.generation if head is not None else uuid.uuid4().hex[:12]
        version = (int(head.counter) if head is not None else 0) + 1
        record = {
            "version": version, "size": int(upload.size), "sha256": upload.sha256,
            "blob_key": upload.blob_key, "created_at": stamp, "metadata": request.get("metadata"),
            "upload_id": upload.upload_id, "package": extra, "integrity": integrity,
        }
        new_head = _next_head(kind, ns, name, head, generation, record, request, upload, stamp)
        version_item = model(
            pk, keys.version_sk(kind, generation, version), kind=kind, namespace=ns, name=name,
            version=version, size=record["size"], sha256=record["sha256"],
            blob_key=record["blob_key"], created_at=stamp, metadata=record["metadata"],
            upload_id=upload.upload_id, package=extra, integrity=integrity,
        )
        head_condition = (model.pk.does_not_exist() if head is None else
                          (model.counter == head.counter) & (model.generation == generation))
        try:
            with TransactWrite(connection=model._get_connection().connection) as tx:
                if head is None:
                    tx.save(new_head, condition=head_condition)
                else:  # only what the push changes: a PATCH made meanwhile is kept
                    tx.update(head, actions=_head_changes(new_head, request),
                              condition=head_condition)
                tx.save(version_item, condition=model.pk.does_not_exist())
                tx.update(upload, actions=[
                    model.state.set("completed"), model.version.set(version),
                    model.generation.set(generation), model.expires_at.remove(),
                ], condition=model.state == "pending")
        except TransactWriteError as exc:
            reasons = [getattr(r, "code", None) for r in (exc.cancellation_reasons or [])]
            if len(reasons) >= 3 and reasons[2] == "ConditionalCheckFailed":
                fresh = _get(pk, upload.sk, consistent=True)
                if fresh is not None and fresh.state == "completed":
                    return _completed_info(kind, ns, name, fresh)
                raise NotFound("this upload was aborted or expired: start a new upload") from None
            if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
                continue  # another push or a delete got there first: read again and retry
            raise
        return _info(kind, new_head, record, new_head.metadata)
    raise Conflict(f"too many pushes to '{ns}/{name}' at once: try again")


def _pause_before_retry(attempt: int) -> None:
    """Full jitter: a random pause up to a bound that doubles with each failed attempt."""
    bound = min(COMMIT_BACKOFF_MAX_SECONDS, COMMIT_BACKOFF_SECONDS * 2 ** min(attempt, 10))
    time.sleep(random.uniform(0, bound))  # noqa: S311 - jitter, not a secret


def _head_changes(new_head: Item, request: dict) -> list:
    model = items()
    actions = [model.counter.set(new_head.counter), model.current.set(new_head.current),
               model.current_size.set(new_head.current_size),
               model.current_sha256.set(new_head.current_sha256),
               model.updated_at.set(new_head.updated_at)]
    if request.get("visibility"):
        actions += [model.visibility.set(new_head.visibility), model.gsi1sk.set(new_head.gsi1sk)]
    if request.get("metadata") is not None:
        actions.append(model.metadata.set(new_head.metadata))
    if new_head.kind == "executor":
        actions += [model.tags.set(new_head.tags), model.image_status.remove(),
                    model.image_build_id.remove(), model.image_log_url.remove()]
        if new_head.protected_tags:
            actions.append(model.protected_tags.set(new_head.protected_tags))
    return actions


def _next_head(kind: str, ns: str, name: str, head: Item | None, generation: str,
               record: dict, request: dict, upload: Item, stamp: str) -> Item:
    model = items()
    visibility = request.get("visibility") or (head.visibility if head else "private")
    metadata = request.get("metadata")
    if metadata is None:
        metadata = head.metadata if head is not None else {}
    tags = stored_tags(head) if head is not None else {}  # an old `latest` entry goes
    protected = protected_tags_of(head) if head is not None else set()
    for tag in request.get("tags", []):
        tags[tag] = record["version"]
    protected |= set(request.get("protected_tags", []))
    copy_from = head.attribute_values if head is not None else {}
    new = model(pk=keys.resource_pk(ns, name), sk=keys.head_sk(kind))
    for attr, value in copy_from.items():
        if attr not in ("pk", "sk"):
            setattr(new, attr, value)
    new.kind = kind
    new.namespace = ns
    new.name = head.name if head is not None else upload.name  # the first spelling
    new.owner = upload.owner if upload.owner != ns else (head.owner if head else None)
    new.generation = generation
    new.created_at = head.created_at if head is not None else stamp
    new.updated_at = stamp
    new.visibility = visibility
    new.gsi1pk = keys.list_gsi_pk(kind, ns)
    new.gsi1sk = keys.list_gsi_sk(visibility, new.name)
    new.counter = record["version"]
    new.current = record
    new.current_size = record["size"]
    new.current_sha256 = record["sha256"]
    new.metadata = metadata
    if kind == "executor":
        new.tags = tags
        new.protected_tags = protected or None
        new.image_status = None  # the new version's image is not built yet
        new.image_build_id = None
        new.image_log_url = None
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
    model = items()
    actions = [model.updated_at.set(now_iso())]
    if visibility is not None:
        actions += [model.visibility.set(visibility),
                    model.gsi1sk.set(keys.list_gsi_sk(visibility, head.name))]
    if metadata is not None:
        actions.append(model.metadata.set(metadata))
    from pynamodb.exceptions import UpdateError

    try:
        head.update(actions, condition=model.generation == head.generation)
    except UpdateError:
        raise not_found(kind, ns, name) from None
    return _info(kind, head, head.current, head.metadata)


def delete_resource(caller: Caller | None, kind: str, ns: str, name: str) -> None:
    """Delete the head now; its versions and bytes go asynchronously (the table stream)."""
    check_name(name)
    head = _owned_head(caller, kind, ns, name)
    from pynamodb.exceptions import DeleteError

    try:
        head.delete(items().generation == head.generation)
    except DeleteError:
        raise not_found(kind, ns, name) from None
