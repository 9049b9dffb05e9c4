"""What a commit makes of a resource's head: the first push creates it, a later one moves it
to the new version, with what the push asked for (visibility, metadata, tags). One builder
for both, and for the operator's legacy import."""
from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from chalicelib import keys
from chalicelib.kinds import policy
from chalicelib.store.records import Head, Upload, Version
from chalicelib.tags import protected_tags_of, stored_tags


def new_generation() -> str:
    return uuid.uuid4().hex[:12]


def head_changes(new_head: Head, request: dict) -> dict[str, Any]:
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
    kind_policy = policy(new_head.kind)
    if kind_policy.tagged:
        changes["tags"] = new_head.tags
        if new_head.protected_tags:
            changes["protected_tags"] = new_head.protected_tags
    if kind_policy.builds_images:
        changes.update(image_status=None, image_build_id=None, image_log_url=None)
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
    kind_policy = policy(kind)
    if kind_policy.tagged:
        tags = stored_tags(head)  # an old `latest` entry goes
        for tag in request.get("tags", []):
            tags[tag] = version.version
        new.tags = tags
        new.protected_tags = protected_tags_of(head) | set(request.get("protected_tags", []))
    if kind_policy.builds_images:
        new.image_status = new.image_build_id = new.image_log_url = None  # not built yet
    return new
