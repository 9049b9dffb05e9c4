"""Resources in the table: heads, versions and uploads, read and written as records.

Every write that could race is conditional (STYLE.md 5): a head changes only while it is the
generation (and, where it matters, the version counter or the latest version) that was read;
a version is committed by one transaction with its head and its upload; an upload record is
deleted only while it is in the state it was seen in. A write whose condition no longer
holds raises ConditionFailed (or UploadNotPending), for the service to read again.
"""
from __future__ import annotations

from typing import Any, Iterator

from chalicelib import keys
from chalicelib.store import table
from chalicelib.store.records import (
    ConditionFailed,
    Head,
    Page,
    Upload,
    UploadNotPending,
    Version,
)

# ---------------------------------------------------------------- reads


def read_head(pk: str, kind: str, consistent: bool = False) -> Head | None:
    item = table.get(pk, keys.head_sk(kind), consistent)
    return Head.from_item(item) if item is not None else None


def read_version(pk: str, sk: str, consistent: bool = False) -> Version | None:
    item = table.get(pk, sk, consistent)
    return Version.from_item(item) if item is not None else None


def read_upload(pk: str, sk: str) -> Upload | None:
    item = table.get(pk, sk, consistent=True)
    return Upload.from_item(item) if item is not None else None


def head_and_upload(pk: str, kind: str, upload_id: str) -> tuple[Head | None, Upload | None]:
    """A resource's head and one of its uploads: one consistent BatchGetItem."""
    head_sk, upload_sk = keys.head_sk(kind), keys.upload_sk(kind, upload_id)
    found = {item.sk: item for item in
             table.items().batch_get([(pk, head_sk), (pk, upload_sk)], consistent_read=True)}
    head, upload = found.get(head_sk), found.get(upload_sk)
    return (Head.from_item(head) if head is not None else None,
            Upload.from_item(upload) if upload is not None else None)


def list_heads(kind: str, ns: str, public_only: bool, limit: int,
               start: dict | None) -> Page:
    """One page of a namespace's heads of `kind` (from the listing index: one Query)."""
    model = table.items()
    condition = model.gsi1sk.startswith(keys.list_gsi_visibility_prefix("public")) \
        if public_only else None
    result = model.list_index.query(keys.list_gsi_pk(kind, ns), condition, limit=limit,
                                    page_size=limit, last_evaluated_key=start)
    heads = [Head.from_item(item) for item in result]
    return Page(heads, result.last_evaluated_key)


def list_versions(pk: str, kind: str, generation: str, limit: int,
                  start: dict | None) -> Page:
    """One page of a generation's versions, newest first."""
    model = table.items()
    result = model.query(pk, model.sk.startswith(keys.version_prefix(kind, generation)),
                         scan_index_forward=False, limit=limit, page_size=limit,
                         last_evaluated_key=start)
    versions = [Version.from_item(item) for item in result]
    return Page(versions, result.last_evaluated_key)


def versions_of(pk: str, kind: str, generation: str,
                newest_first: bool = False) -> Iterator[Version]:
    """Every version item of a generation (consistent reads, all pages)."""
    model = table.items()
    for item in model.query(pk, model.sk.startswith(keys.version_prefix(kind, generation)),
                            scan_index_forward=not newest_first, consistent_read=True):
        yield Version.from_item(item)


def uploads_of(pk: str, kind: str) -> Iterator[Upload]:
    """Every upload record of a resource's kind (consistent reads, all pages)."""
    model = table.items()
    for item in model.query(pk, model.sk.startswith(keys.upload_prefix(kind)),
                            consistent_read=True):
        yield Upload.from_item(item)


def from_stream_image(raw: dict) -> Head | Version | Upload | None:
    """The record a table stream image holds (DynamoDB JSON), None for other items."""
    item = table.from_image(raw)
    what = keys.parse_sk(item.sk)["type"]
    convert = {"head": Head, "version": Version, "upload": Upload}.get(what)
    return convert.from_item(item) if convert is not None else None


# ---------------------------------------------------------------- uploads


def _item(record: Any) -> Any:
    return table.items()(**record.attributes())


def put_upload(upload: Upload) -> None:
    """A new upload record (its id is new: never overwrites one)."""
    model = table.items()
    _item(upload).save(condition=model.pk.does_not_exist())


def put_upload_unless_current(upload: Upload) -> bool:
    """A new upload record, in one transaction with a check that the head's latest version
    does not already hold the upload's bytes. False when the transaction did not happen: the
    head may hold them (or another write raced this one): read the head."""
    from pynamodb.exceptions import TransactWriteError

    model = table.items()
    try:
        with table.transaction() as tx:
            tx.condition_check(model, upload.pk, keys.head_sk(upload.kind), condition=(
                model.current_sha256.does_not_exist() | (model.current_sha256 != upload.sha256)
                | (model.current_size != upload.size)))
            tx.save(_item(upload), condition=model.pk.does_not_exist())
    except TransactWriteError as exc:
        reasons = table.cancellation_reasons(exc)
        if reasons and (reasons[0] == "ConditionalCheckFailed" or "TransactionConflict" in reasons):
            return False
        raise
    return True


def set_multipart_id(upload: Upload, s3_upload_id: str) -> Upload:
    """Record the multipart upload of a pending upload."""
    model = table.items()
    model(upload.pk, upload.sk).update([model.s3_upload_id.set(s3_upload_id)],
                                       condition=model.state == "pending")
    upload.s3_upload_id = s3_upload_id
    return upload


def delete_upload(upload: Upload) -> None:
    table.items()(upload.pk, upload.sk).delete()


def delete_upload_if(upload: Upload, state: str) -> bool:
    """Delete an upload record only while it is still in `state` (and, when completed, still
    of the same generation): False when it changed meanwhile."""
    model = table.items()
    condition = model.state == state
    if state == "completed":
        condition &= model.generation == upload.generation
    return _delete(upload.pk, upload.sk, condition)


def _delete(pk: str, sk: str, condition: Any = None) -> bool:
    from pynamodb.exceptions import DeleteError

    try:
        table.items()(pk, sk).delete(condition=condition)
    except DeleteError as exc:
        if table.failed_condition(exc):
            return False
        raise
    return True


# ---------------------------------------------------------------- versions


def commit_version(previous: Head | None, head: Head, version: Version, upload: Upload,
                   changes: dict[str, Any]) -> None:
    """Make `version` visible: in one transaction, the head becomes `head` (the first push
    creates it; a later one writes only `changes`, on the condition that the counter and
    generation are still `previous`'s), the version item is put and the upload is marked
    completed (on the condition that it is still pending)."""
    from pynamodb.exceptions import TransactWriteError

    model = table.items()
    try:
        with table.transaction() as tx:
            if previous is None:
                tx.save(_item(head), condition=model.pk.does_not_exist())
            else:  # only what the push changes: a change made meanwhile is kept
                tx.update(model(head.pk, head.sk), actions=_actions(head, changes),
                          condition=_same(previous, ("counter", "generation")))
            tx.save(_item(version), condition=model.pk.does_not_exist())
            tx.update(model(upload.pk, upload.sk), actions=[
                model.state.set("completed"), model.version.set(version.version),
                model.generation.set(version.generation), model.expires_at.remove(),
            ], condition=model.state == "pending")
    except TransactWriteError as exc:
        reasons = table.cancellation_reasons(exc)
        if len(reasons) >= 3 and reasons[2] == "ConditionalCheckFailed":
            raise UploadNotPending() from None
        if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
            raise ConditionFailed() from None
        raise
    upload.state, upload.version, upload.generation = "completed", version.version, \
        version.generation


def delete_version(version_pk: str, version_sk: str) -> None:
    table.items()(version_pk, version_sk).delete()


def record_integrity(version: Version, reason: str | None) -> Version:
    """Move a version out of `pending`: verified, or quarantined for `reason`. Once: when it
    was moved already, the version as it is now."""
    from pynamodb.exceptions import UpdateError

    model = table.items()
    actions = [model.integrity.set("verified")] if reason is None else [
        model.integrity.set("quarantined"), model.integrity_reason.set(reason)]
    item = model(version.pk, version.sk)
    try:
        item.update(actions, condition=model.integrity == "pending")
    except UpdateError as exc:
        if not table.failed_condition(exc):
            raise  # throttled or unreachable: the event is handed out again, not dropped
        fresh = read_version(version.pk, version.sk, consistent=True)
        return fresh if fresh is not None else version
    return Version.from_item(item)


# ---------------------------------------------------------------- heads


def update_head(head: Head, changes: dict[str, Any],
                unchanged: tuple[str, ...] = ("generation",)) -> Head:
    """Write `changes` (Head field -> value; None removes it) to the head, on the condition
    that the fields named in `unchanged` still hold what `head` holds. Returns the head as it
    is afterwards; ConditionFailed when it changed meanwhile (or was deleted)."""
    from pynamodb.exceptions import UpdateError

    item = table.items()(head.pk, head.sk)
    try:
        item.update(_actions(head, changes), condition=_same(head, unchanged))
    except UpdateError as exc:
        if table.failed_condition(exc):
            raise ConditionFailed() from None
        raise
    return Head.from_item(item)


def delete_head(head: Head) -> bool:
    """Delete a head while it is still the generation read; False when it is not."""
    return _delete(head.pk, head.sk, table.items().generation == head.generation)


def _actions(head: Head, changes: dict[str, Any]) -> list:
    model = table.items()
    changes = dict(changes)
    if "visibility" in changes:  # the listing index follows
        changes["gsi1sk"] = keys.list_gsi_sk(changes["visibility"], head.name)
    actions = []
    for name, value in changes.items():
        attribute = getattr(model, name)
        if isinstance(value, (set, frozenset)) and not value:
            value = None  # DynamoDB holds no empty set
        actions.append(attribute.remove() if value is None else attribute.set(value))
    return actions


def _same(head: Head, fields: tuple[str, ...]) -> Any:
    model = table.items()
    condition = None
    for name in fields:
        holds = getattr(model, name) == getattr(head, name)
        condition = holds if condition is None else condition & holds
    return condition
