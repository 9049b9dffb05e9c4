"""Hubble's artifact methods: DocumentArrays as docarray 0.21 (`DocumentArray.push/pull`,
`cloud_list`, `cloud_delete`), docarray 0.30-0.38 (`jac://`) and hubble.Client see them.
Artifacts are `namespace/name` arrays; a bare name on a download is a legacy array."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.auth import Caller
from chalicelib.errors import InvalidRequest, LegacyReadOnly
from chalicelib.forms import Field
from chalicelib.hubble.envelope import RpcRequest, success
from chalicelib.hubble.inputs import flag, signed_in, split_name, text
from chalicelib.hubble.uploads import check_body_size, push_bytes
from chalicelib.keys import ARRAY


def _artifact(info: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(info.get("metadata") or {})
    summary = metadata.get("summary")
    if not isinstance(summary, list):
        summary = []
    if not any(isinstance(s, dict) and s.get("name") == "Length" for s in summary):
        # docarray 0.38 lists need a Length entry: nshub's own pushes record num_docs.
        summary = [*summary, {"name": "Length", "value": metadata.get("num_docs")}]
    metadata["summary"] = summary
    return {
        "_id": info["full_name"], "id": info["full_name"], "name": info["full_name"],
        "type": "documentArray", "visibility": info["visibility"], "metaData": metadata,
        "size": info["size"], "sha256": info["sha256"], "version": info["version"],
        "createdAt": info["created_at"], "updatedAt": info["updated_at"],
    }


def _array_name(fields: dict[str, Field]) -> tuple[str | None, str]:
    raw = text(fields, "name") or text(fields, "id")
    if raw is None:
        raise InvalidRequest("the request needs the array's 'name' (username/name)")
    return split_name(raw)


def _stream_format(data: bytes) -> str:
    """What docarray wrote: its streaming format starts with a version byte (1: docarray
    0.x, 2: docarray >= 0.30); both clients compress each document with gzip."""
    version = data[:1]
    if version == b"\x02":
        return "docarray-protobuf-gzip"  # the format nshub.docarray reads
    if version == b"\x01":
        return "docarray-v1-protobuf-gzip"
    return "unknown"


def _upload_metadata(fields: dict[str, Field], data: bytes) -> dict[str, Any]:
    """The client's metaData, kept small: the summary's name/value pairs (no descriptions),
    the stream format, the length and type docarray reported."""
    from chalicelib.checks import MAX_METADATA_BYTES
    from chalicelib.http import NotStrictJson, strict_json

    raw = text(fields, "metaData")
    try:
        sent = strict_json(raw) if raw else {}
    except NotStrictJson as exc:
        raise InvalidRequest(f"metaData holds {exc}: send finite numbers") from None
    except (ValueError, RecursionError):
        raise InvalidRequest("metaData must be a JSON object") from None
    if not isinstance(sent, dict):
        raise InvalidRequest("metaData must be a JSON object")
    entries = sent.get("summary")
    summary = [{"name": s["name"], "value": s.get("value")}
               for s in (entries if isinstance(entries, list) else [])
               if isinstance(s, dict) and isinstance(s.get("name"), str)]
    values = {s["name"]: s["value"] for s in summary}
    metadata: dict[str, Any] = {"format": _stream_format(data), "summary": summary}
    if isinstance(values.get("Length"), int):
        metadata["num_docs"] = values["Length"]
    if isinstance(values.get("Type"), str):
        metadata["schema"] = values["Type"]
    version = sent.get("version")
    if isinstance(version, dict) and isinstance(version.get("docarray"), str):
        metadata["pushed_with"] = f"docarray {version['docarray']}"
    if len(json.dumps(metadata, separators=(",", ":"))) > MAX_METADATA_BYTES // 2:
        metadata["summary"] = [s for s in summary if s["name"] in ("Type", "Length")]
    return metadata


def upload_artifact(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import access, uploads

    who = signed_in(request)
    fields = request.fields()
    ns, name = _array_name(fields)
    if ns is None:  # a bare name is a legacy array's, and those are read-only
        raise LegacyReadOnly(f"'{name}' has no namespace and legacy arrays cannot be updated: "
                             f"push '{who.namespace}/{name}' (new arrays live in your namespace)")
    access.require_owner_namespace(who, ns)
    check_body_size(request, f"the array '{ns}/{name}'",
                     f"nshub push FILE {ns}/{name}` after `docs.save_binary(FILE, "
                     "protocol='protobuf', compress='gzip')")
    upload = fields.get("file")
    if upload is None or not isinstance(upload.value, bytes) or not upload.value:
        raise InvalidRequest("the request needs the array's bytes in a 'file' field")
    data = upload.value
    public = flag(fields, "public")
    body: dict[str, Any] = {"metadata": _upload_metadata(fields, data)}
    if public is not None:
        body["visibility"] = "public" if public else "private"
    info = push_bytes(
        lambda b: uploads.start_upload(who, ARRAY, ns, name, b),
        lambda upload_id, b: uploads.complete_upload(who, ARRAY, ns, name, upload_id, b),
        data, body)
    return success(_artifact(info))


def _readable_array(caller: Caller | None, ns: str | None, name: str) -> dict[str, Any]:
    from chalicelib import legacy, resources

    if ns is None:
        return legacy.get_array(caller, name)
    return resources.get_resource(caller, ARRAY, ns, name)


def download_url(request: RpcRequest) -> dict[str, Any]:
    from chalicelib.info import downloadable

    ns, name = _array_name(request.fields())
    info = downloadable(_readable_array(request.caller, ns, name))
    return success({"download": info["download_url"], "size": info["size"],
                    "sha256": info["sha256"], "expiresAt": info["download_expires_at"]})


def artifact_detail(request: RpcRequest) -> dict[str, Any]:
    ns, name = _array_name(request.fields())
    return success(_artifact(_readable_array(request.caller, ns, name)))


def delete_artifact(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import resources

    who = signed_in(request)
    ns, name = _array_name(request.fields())
    if ns is None:
        raise LegacyReadOnly(f"'{name}' is a legacy array and cannot be deleted: "
                             "only 'username/name' arrays can")
    resources.delete_resource(who, ARRAY, ns, name)
    return success({"name": f"{ns}/{name}", "deleted": True})


def list_artifacts(request: RpcRequest) -> dict[str, Any]:
    """The caller's arrays, as docarray's cloud_list and JACDocStore.list want them."""
    from chalicelib import checks, resources

    who = signed_in(request)
    fields = request.fields()
    found: list[dict] = []
    cursor = None
    while True:
        page = resources.list_resources(who, ARRAY, who.namespace, checks.MAX_LIST_LIMIT,
                                        cursor)
        found += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    sort = fields.get("sort")
    order = sort.value.get("createdAt") if sort and isinstance(sort.value, dict) else None
    found.sort(key=lambda i: i["created_at"], reverse=order == -1)
    size = _page_number(fields, "pageSize", len(found) or 1)
    index = _page_number(fields, "pageIndex", 1)
    chunk = found[(index - 1) * size: index * size]
    return success([_artifact(i) for i in chunk],
                   {"total": len(found), "pageIndex": index, "pageSize": size})


def _page_number(fields: dict[str, Field], name: str, default: int) -> int:
    found = fields.get(name)
    if found is None:
        return default
    try:
        value = int(found.value if not isinstance(found.value, bytes) else found.text())
    except (TypeError, ValueError, OverflowError):
        value = 0
    if value < 1:
        raise InvalidRequest(f"{name} must be a positive integer")
    return value
