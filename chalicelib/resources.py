"""Reads, listings and changes of resources: get a version's info (with a download URL),
list a namespace's resources or a resource's versions (a page at a time, with an opaque
cursor), change visibility or metadata, delete.

Access is decided by chalicelib/access.py: another user's private resource answers 404
exactly like a missing one. A change is conditional on the generation read, so it never
lands on a resource deleted and pushed again meanwhile.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from chalicelib import keys
from chalicelib.access import Who, is_owner, not_found, owned_head, readable_head
from chalicelib.auth import Caller
from chalicelib.checks import check_metadata, check_visibility, list_limit
from chalicelib.errors import InvalidRequest, NotFound
from chalicelib.info import resource_info, with_download
from chalicelib.names import check_name, check_namespace, check_tag
from chalicelib.store import resources as stored
from chalicelib.store.records import ConditionFailed
from chalicelib.tags import LATEST, stored_tags
from chalicelib.times import now_iso


def get_resource(
    caller: Who, kind: str, ns: str, name: str,
    version: int | None = None, tag: str | None = None, download: bool = True,
) -> dict[str, Any]:
    check_name(name)
    head = readable_head(caller, kind, ns, name)
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
    if quarantined and not is_owner(caller, head):
        if version is None:
            raise not_found(kind, ns, name)
        raise NotFound(f"{kind} '{ns}/{name}' has no version {version}: see its versions")
    info = resource_info(kind, head, current, metadata)
    if quarantined:  # the owner sees why; nobody downloads bytes that are not the declared ones
        return info
    return with_download(info, current["blob_key"]) if download else info


def _encode_cursor(lek: dict | None, scope: str) -> str | None:
    if not lek:
        return None
    raw = json.dumps({"s": scope, "k": lek}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None, scope: str, fields: dict[str, str],
                   exact: tuple[str, ...]) -> dict | None:
    """The start key a cursor carries, if it belongs to this listing: the same scope, exactly
    the key attributes of the index (`fields`: name -> what its value starts with, or is for
    the names in `exact`), each a string (anything else would be DynamoDB's
    ValidationException: a 500)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        lek = data["k"]
        ok = data["s"] == scope and isinstance(lek, dict) and set(lek) == set(fields)
        for attr, prefix in fields.items():
            ok = ok and isinstance(lek[attr], dict) and set(lek[attr]) == {"S"}
            value = lek[attr]["S"]
            ok = ok and isinstance(value, str) and 0 < len(value) <= 1024 and \
                (value == prefix if attr in exact else value.startswith(prefix))
    except (ValueError, KeyError, TypeError, RecursionError):
        ok = False
    if not ok:
        raise InvalidRequest("the cursor is not valid for this listing: start again without it")
    return lek


def list_resources(caller: Caller | None, kind: str, ns: str, limit: Any = None,
                   cursor: str | None = None) -> dict[str, Any]:
    check_namespace(ns)
    owner = caller is not None and caller.namespace == ns
    scope = f"{kind}#{ns}#{'all' if owner else 'public'}"
    gsi_pk = keys.list_gsi_pk(kind, ns)
    start_key = {"pk": keys.resource_pk(ns, ""), "sk": keys.head_sk(kind), "gsi1pk": gsi_pk,
                 "gsi1sk": "" if owner else keys.list_gsi_visibility_prefix("public")}
    lek = _decode_cursor(cursor, scope, start_key, ("sk", "gsi1pk"))
    page = stored.list_heads(kind, ns, not owner, list_limit(limit), lek)
    found = [resource_info(kind, head, head.current, head.metadata) for head in page.records
             if owner or head.current.get("integrity") != "quarantined"]
    return {"items": found, "next_cursor": _encode_cursor(page.last_key, scope)}


def list_versions(caller: Caller | None, kind: str, ns: str, name: str, limit: Any = None,
                  cursor: str | None = None) -> dict[str, Any]:
    check_name(name)
    head = readable_head(caller, kind, ns, name)
    prefix = keys.version_prefix(kind, head.generation)
    scope = f"{prefix}{ns}#{name.lower()}"
    pk = keys.resource_pk(ns, name)
    lek = _decode_cursor(cursor, scope, {"pk": pk, "sk": prefix}, ("pk",))
    page = stored.list_versions(pk, kind, head.generation,
                                list_limit(limit), lek)
    found = []
    owner = is_owner(caller, head)
    for version in page.records:
        if version.integrity == "quarantined" and not owner:
            continue
        info = resource_info(kind, head, version.summary(), version.metadata)
        info["created_at"] = version.created_at
        found.append(info)
    return {"items": found, "next_cursor": _encode_cursor(page.last_key, scope)}


def update_resource(caller: Caller | None, kind: str, ns: str, name: str, body: dict) -> dict:
    check_name(name)
    visibility = check_visibility(body.get("visibility"))
    metadata = check_metadata(body.get("metadata"))
    unknown = set(body) - {"visibility", "metadata"}
    if unknown:
        raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}: only visibility and metadata")
    if visibility is None and metadata is None:
        raise InvalidRequest("nothing to change: send visibility and/or metadata")
    head = owned_head(caller, kind, ns, name)
    changes: dict[str, Any] = {"updated_at": now_iso()}
    if visibility is not None:
        changes["visibility"] = visibility
    if metadata is not None:
        changes["metadata"] = metadata
    try:
        head = stored.update_head(head, changes)
    except ConditionFailed:
        raise not_found(kind, ns, name) from None
    return resource_info(kind, head, head.current, head.metadata)


def delete_resource(caller: Caller | None, kind: str, ns: str, name: str) -> None:
    """Delete the head now; its versions and bytes go asynchronously (the table stream)."""
    check_name(name)
    head = owned_head(caller, kind, ns, name)
    if not stored.delete_head(head):
        raise not_found(kind, ns, name)
