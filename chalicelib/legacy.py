"""Resources that predate namespaces.

Legacy arrays live in the reserved namespace `legacy` (no user can own it), keep their bare
name, and can be pulled but never updated. Operators bring them in with
`nshub-admin import-legacy`.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from chalicelib import blobs, keys, registry
from chalicelib.auth import Caller
from chalicelib.config import get_aws, get_settings
from chalicelib.errors import Conflict, LegacyReadOnly
from chalicelib.models import items
from chalicelib.names import check_name, check_namespace

ARRAY = "array"


def get_array(caller: Caller | None, name: str) -> dict[str, Any]:
    return registry.get_resource(caller, ARRAY, keys.LEGACY_NS, name)


def refuse_array_push(name: str) -> None:
    check_name(name)
    raise LegacyReadOnly(
        f"'{name}' is a legacy array and cannot be updated: push 'your-namespace/{name}' instead"
    )


def import_array(name: str, owner: str, path: Path, public: bool = False) -> dict[str, Any]:
    """Register a pre-namespace array under its bare name. Running it twice is harmless."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    check_name(name)
    check_namespace(owner)
    size, sha256 = blobs.file_digest(path)
    ns, pk = keys.LEGACY_NS, keys.resource_pk(keys.LEGACY_NS, name)
    model = items()
    try:
        head = model.get(pk, keys.head_sk(ARRAY), consistent_read=True)
    except model.DoesNotExist:
        head = None
    if head is not None:
        if head.current and head.current.get("sha256") == sha256 and head.owner == owner:
            return {"imported": False, "name": name, "sha256": sha256, "size": size}
        raise Conflict(f"legacy array '{name}' already exists with other content or owner")

    # A fresh key per import: a re-import after a delete never shares bytes with the old
    # generation's cleanup (a crash before the records are written leaves an orphan that
    # the reconciler removes).
    upload_id = uuid.uuid4().hex
    blob_key = keys.blob_key(ARRAY, ns, name, upload_id)
    get_aws().s3.upload_file(str(path), get_settings().bucket_name, blob_key)
    stamp = registry.now_iso()
    generation = uuid.uuid4().hex[:12]
    visibility = "public" if public else "private"
    record = {"version": 1, "size": size, "sha256": sha256, "blob_key": blob_key,
              "created_at": stamp, "metadata": {}, "upload_id": upload_id, "package": None}
    common = dict(kind=ARRAY, namespace=ns, name=name, owner=owner, created_at=stamp)
    new_head = model(pk, keys.head_sk(ARRAY), **common, updated_at=stamp, visibility=visibility,
                     generation=generation, counter=1, current=record, metadata={}, legacy=1,
                     gsi1pk=keys.list_gsi_pk(ARRAY, ns),
                     gsi1sk=keys.list_gsi_sk(visibility, name))
    version = model(pk, keys.version_sk(ARRAY, generation, 1), **common, version=1, size=size,
                    sha256=sha256, blob_key=blob_key, metadata={}, upload_id=upload_id)
    upload = model(pk, keys.upload_sk(ARRAY, upload_id), **common, upload_id=upload_id,
                   size=size, sha256=sha256, blob_key=blob_key, state="completed", version=1,
                   generation=generation, part_count=1, part_size=size)
    try:
        with TransactWrite(connection=model._get_connection().connection) as tx:
            tx.save(new_head, condition=model.pk.does_not_exist())
            tx.save(version, condition=model.pk.does_not_exist())
            tx.save(upload)
    except TransactWriteError:
        raise Conflict(f"legacy array '{name}' was imported concurrently: run again") from None
    return {"imported": True, "name": name, "sha256": sha256, "size": size}
