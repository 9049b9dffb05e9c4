"""Resources that predate namespaces.

Legacy arrays live in the reserved namespace `legacy` (no user can own it), keep their bare
name, and can be pulled but never updated. Operators bring them in with
`nshub-admin import-legacy`.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from chalicelib import blobs, keys
from chalicelib.auth import Caller
from chalicelib.config import get_aws, get_settings
from chalicelib.errors import Conflict, LegacyReadOnly
from chalicelib.heads import new_generation, next_head
from chalicelib.names import check_name, check_new_username
from chalicelib.resources import get_resource
from chalicelib.store import resources as stored
from chalicelib.store.records import ConditionFailed, Upload, UploadNotPending, Version
from chalicelib.times import now_iso

ARRAY = keys.ARRAY


def get_array(caller: Caller | None, name: str) -> dict[str, Any]:
    return get_resource(caller, ARRAY, keys.LEGACY_NS, name)


def refuse_array_push(name: str) -> None:
    check_name(name)
    raise LegacyReadOnly(
        f"'{name}' is a legacy array and cannot be updated: push 'your-namespace/{name}' instead"
    )


def import_array(name: str, owner: str, path: Path, public: bool = False) -> dict[str, Any]:
    """Register a pre-namespace array under its bare name, committed like any push (an upload
    record first, then the bytes, then the version with its head in one transaction).
    Running it twice is harmless."""
    check_name(name)
    check_new_username(owner)  # an account's namespace: never a reserved word
    size, sha256 = blobs.file_digest(path)
    ns = keys.LEGACY_NS
    head = stored.read_head(keys.resource_pk(ns, name), ARRAY, consistent=True)
    if head is not None:
        if head.current.get("sha256") == sha256 and head.owner == owner:
            return {"imported": False, "name": name, "sha256": sha256, "size": size}
        raise Conflict(f"legacy array '{name}' already exists with other content or owner")

    # A fresh key per import: a re-import after a delete never shares bytes with the old
    # generation's cleanup; the record comes first, so bytes of a crashed import are claimed
    # by a pending upload that expires like any other.
    settings = get_settings()
    upload_id = uuid.uuid4().hex
    stamp = now_iso()
    request = {"visibility": "public" if public else "private", "metadata": {}}
    upload = Upload.new(ARRAY, ns, name, upload_id, owner=owner, size=size, sha256=sha256,
                        blob_key=keys.blob_key(ARRAY, ns, name, upload_id), part_size=size,
                        part_count=1, request=request, created_at=stamp,
                        expires_at=int(time.time()) + settings.upload_ttl_seconds)
    stored.put_upload(upload)
    get_aws().s3.upload_file(str(path), settings.bucket_name, upload.blob_key)
    version = Version.new(ARRAY, ns, name, new_generation(), 1, size=size,
                          sha256=sha256, blob_key=upload.blob_key, created_at=stamp,
                          metadata={}, upload_id=upload_id)
    new_head = next_head(None, version, upload, stamp, legacy=True)
    try:
        stored.commit_version(None, new_head, version, upload, {})
    except (ConditionFailed, UploadNotPending):
        raise Conflict(f"legacy array '{name}' was imported concurrently: run again") from None
    return {"imported": True, "name": name, "sha256": sha256, "size": size}
