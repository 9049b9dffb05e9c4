"""The Jina Hubble API subset that unmodified Jina clients speak (shared/HUBBLE.md).

docarray 0.21 (`DocumentArray.push/pull`), docarray 0.30-0.38 (`jac://`), jina-hubble-sdk's
`hubble.Client` and jina 3 (`jina hub push/pull`, `jinaai://` executors) all call
`{JINA_HUBBLE_REGISTRY}/v2/rpc/{method}`. This module is an adapter, not a second registry:
every method translates to the registry, legacy and executor calls the /v1 routes make, so
what an old client pushes is an ordinary version (same access matrix, integrity, events,
cleanup) that `nshub`, the console and /v1 see.

Names: artifacts are `namespace/name` (a leading `jac://` is dropped); a bare name on a
download is a legacy array. Executors are `namespace/Name`, or a bare legacy name with its
secret. Old clients send an array's or executor's bytes in the request, so those bodies are
capped (`NSHUB_HUBBLE_MAX_BODY_BYTES`); the adapter PUTs them to the upload's presigned
URLs itself. Downloads are presigned S3 URLs, uncapped.

Answers use Hubble's envelope: `{"code": 200, "status": 20000, "data", "meta"}`, errors
`{"code": <http status>, "status": <Hubble code>, "message", "readableMessage", "data": null}`
with codes from the clients' own table (hubble/excepts.py), so users see the message.
"""
from __future__ import annotations

import hashlib
import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from chalicelib.auth import Caller
from chalicelib.errors import InvalidRequest, LegacyReadOnly, NshubError, TooLarge, Unauthorized
from chalicelib.forms import Field, read_fields

ARRAY, EXECUTOR = "array", "executor"
OK_STATUS = 20000
JAC_PREFIX = "jac://"

# Hubble status codes (the clients' table in hubble/excepts.py); only these may be sent.
PARAM_VALIDATION = 40001
AUTHENTICATION_REQUIRED = 40103  # the only one hubble.login_required catches
OPERATION_NOT_ALLOWED = 40301
RPC_METHOD_NOT_FOUND = 40402
ENTITY_NOT_FOUND = 40403
ID_CONFLICT = 40901
FILE_TOO_LARGE = 41301
SERVER_INTERNAL = 50001
UNKNOWN = -1

_STATUS_BY_HTTP = {400: PARAM_VALIDATION, 401: AUTHENTICATION_REQUIRED,
                   403: OPERATION_NOT_ALLOWED, 404: ENTITY_NOT_FOUND, 409: ID_CONFLICT,
                   413: FILE_TOO_LARGE, 500: SERVER_INTERNAL}


class RpcMethodNotFound(NshubError):
    status, code = 404, "NotFound"


@dataclass(frozen=True)
class RpcRequest:
    """One call as the route saw it: the method name, the caller, and the raw body."""

    method: str
    caller: Caller | None
    content_type: str = ""
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, Field]:
        found = read_fields(self.content_type, self.body)
        for name, value in self.query.items():
            found.setdefault(name, Field(value))
        return found


@dataclass(frozen=True)
class Lines:
    """A streamed answer (executor.push): one JSON object per line."""

    messages: list[dict]

    def body(self) -> str:
        return "\n".join(json.dumps(m, separators=(",", ":")) for m in self.messages) + "\n"


# ---------------------------------------------------------------- envelope


def success(data: Any, meta: Any = None) -> dict[str, Any]:
    return {"code": 200, "status": OK_STATUS, "data": data, "meta": meta}


def error_body(exc: NshubError) -> tuple[dict[str, Any], int]:
    status = exc.status if isinstance(exc.status, int) else 500
    hubble_status = (RPC_METHOD_NOT_FOUND if isinstance(exc, RpcMethodNotFound)
                     else OPERATION_NOT_ALLOWED if isinstance(exc, LegacyReadOnly)
                     else _STATUS_BY_HTTP.get(status, UNKNOWN))
    body = {"code": status, "status": hubble_status, "message": exc.message,
            "readableMessage": exc.message, "data": None}
    return body, status


def internal_error_body() -> tuple[dict[str, Any], int]:
    message = "something broke on our side: try again, and report it if it keeps happening"
    return {"code": 500, "status": SERVER_INTERNAL, "message": message,
            "readableMessage": message, "data": None}, 500


def call(request: RpcRequest) -> dict[str, Any] | Lines:
    handler = METHODS.get(request.method)
    if handler is None:
        raise RpcMethodNotFound(f"nshub does not serve the Hubble method '{request.method}'")
    return handler(request)


# ---------------------------------------------------------------- helpers


def _signed_in(request: RpcRequest) -> Caller:
    if request.caller is None:
        raise Unauthorized("sign in first: set JINA_AUTH_TOKEN to an nshub personal access "
                           "token (`nshub token create NAME --scope write`)")
    return request.caller


def _text(fields: dict[str, Field], name: str, required: bool = False) -> str | None:
    found = fields.get(name)
    value = found.text().strip() if found is not None else ""
    if not value:
        if required:
            raise InvalidRequest(f"the request needs a '{name}' field")
        return None
    return value


def _flag(fields: dict[str, Field], name: str) -> bool | None:
    value = _text(fields, name)
    if value is None:
        return None
    return value.lower() in ("true", "1", "yes")


def _check_body_size(request: RpcRequest, what: str, nshub_command: str) -> None:
    from chalicelib.config import get_settings

    limit = get_settings().hubble_max_body_bytes
    if len(request.body) > limit:
        raise TooLarge(
            f"{what} is {_mb(len(request.body))}, over the {_mb(limit)} that old Jina clients "
            f"can send through the API: push it with `{nshub_command}` (presigned uploads, no "
            "such limit), then pull it with your Jina client as usual"
        )


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def split_name(raw: str, what: str = "array") -> tuple[str | None, str]:
    """`ns/name` -> (ns, name); a bare `name` -> (None, name). `jac://` is dropped."""
    name = raw.strip()
    if name.startswith(JAC_PREFIX):
        name = name[len(JAC_PREFIX):]
    ns, sep, rest = name.partition("/")
    if not sep:
        return None, name
    if "/" in rest:
        raise InvalidRequest(f"invalid {what} name '{raw}': use 'username/name'")
    return ns.lower(), rest


def _push_bytes(start: Callable[[dict], dict], complete: Callable[[str, dict], dict],
                data: bytes, body: dict) -> dict:
    """One push through the same upload flow as any client: start, PUT the bytes to the
    presigned URLs (here, server-side), complete."""
    sha256 = hashlib.sha256(data).hexdigest()
    plan = start({**body, "size": len(data), "sha256": sha256})
    if plan.get("unchanged"):
        return plan
    parts = []
    for part in plan["parts"]:
        offset = (part["part_number"] - 1) * plan["part_size"]
        chunk = data[offset: offset + int(part["headers"]["Content-Length"])]
        # urllib would label the body a form otherwise (and a form is not what was signed)
        headers = {"Content-Type": "application/octet-stream", **part["headers"]}
        put = urllib.request.Request(part["url"], data=chunk, method="PUT", headers=headers)
        with urllib.request.urlopen(put, timeout=60) as resp:  # noqa: S310 - presigned
            parts.append({"part_number": part["part_number"], "etag": resp.headers["ETag"]})
    return complete(plan["upload_id"], {"parts": parts})


# ---------------------------------------------------------------- identity


def whoami(request: RpcRequest) -> dict[str, Any]:
    who = _signed_in(request)
    return success({"_id": who.username, "name": who.username, "nickname": who.username,
                    "namespace": who.namespace})


def list_internal_registries(request: RpcRequest) -> dict[str, Any]:
    # `jina auth login` asks for these; nshub's images have their own pull credentials.
    return success([])


# ---------------------------------------------------------------- personal access tokens
# Answered from nshub's token store. A token cannot create or revoke tokens (403): sign in
# (the console, `nshub login`) to manage them.


def create_pat(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import tokens

    fields = request.fields()
    body: dict[str, Any] = {"name": _text(fields, "name"), "scopes": ["read", "write"]}
    days = _text(fields, "expirationDays")
    if days is not None:
        if not days.isdigit():
            raise InvalidRequest("expirationDays must be a whole number of days")
        body["expires_in_days"] = int(days)
    return success(tokens.create_token(_signed_in(request), body))


def list_pats(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import tokens

    found = tokens.list_tokens(_signed_in(request))["items"]
    return success({"personal_access_tokens": found})


def delete_pat(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import tokens

    name = _text(request.fields(), "name", required=True)
    tokens.revoke_token(_signed_in(request), name=name)
    return success({"name": name, "deleted": True})


# ---------------------------------------------------------------- artifacts (arrays)


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
    raw = _text(fields, "name") or _text(fields, "id")
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
    from chalicelib.registry import MAX_METADATA_BYTES

    raw = _text(fields, "metaData")
    try:
        sent = json.loads(raw) if raw else {}
    except ValueError:
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
    from chalicelib import registry

    who = _signed_in(request)
    fields = request.fields()
    ns, name = _array_name(fields)
    if ns is None:
        raise InvalidRequest(f"'{name}' has no namespace: push '{who.namespace}/{name}' "
                             "(new arrays live in your namespace)")
    registry.require_owner_namespace(who, ns)
    _check_body_size(request, f"the array '{ns}/{name}'",
                     f"nshub push FILE {ns}/{name}` after `docs.save_binary(FILE, "
                     "protocol='protobuf', compress='gzip')")
    upload = fields.get("file")
    if upload is None or not isinstance(upload.value, bytes) or not upload.value:
        raise InvalidRequest("the request needs the array's bytes in a 'file' field")
    data = upload.value
    public = _flag(fields, "public")
    body: dict[str, Any] = {"metadata": _upload_metadata(fields, data)}
    if public is not None:
        body["visibility"] = "public" if public else "private"
    info = _push_bytes(
        lambda b: registry.start_upload(who, ARRAY, ns, name, b),
        lambda upload_id, b: registry.complete_upload(who, ARRAY, ns, name, upload_id, b),
        data, body)
    return success(_artifact(info))


def _readable_array(caller: Caller | None, ns: str | None, name: str) -> dict[str, Any]:
    from chalicelib import legacy, registry

    if ns is None:
        return legacy.get_array(caller, name)
    return registry.get_resource(caller, ARRAY, ns, name)


def download_url(request: RpcRequest) -> dict[str, Any]:
    ns, name = _array_name(request.fields())
    info = _readable_array(request.caller, ns, name)
    return success({"download": info["download_url"], "size": info["size"],
                    "sha256": info["sha256"], "expiresAt": info["download_expires_at"]})


def artifact_detail(request: RpcRequest) -> dict[str, Any]:
    ns, name = _array_name(request.fields())
    return success(_artifact(_readable_array(request.caller, ns, name)))


def delete_artifact(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import registry

    who = _signed_in(request)
    ns, name = _array_name(request.fields())
    if ns is None:
        raise LegacyReadOnly(f"'{name}' is a legacy array and cannot be deleted: "
                             "only 'username/name' arrays can")
    registry.delete_resource(who, ARRAY, ns, name)
    return success({"name": f"{ns}/{name}", "deleted": True})


def list_artifacts(request: RpcRequest) -> dict[str, Any]:
    """The caller's arrays, as docarray's cloud_list and JACDocStore.list want them."""
    from chalicelib import registry

    who = _signed_in(request)
    fields = request.fields()
    found: list[dict] = []
    cursor = None
    while True:
        page = registry.list_resources(who, ARRAY, who.namespace, registry.MAX_LIST_LIMIT,
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
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise InvalidRequest(f"{name} must be a positive integer")
    return value


# ---------------------------------------------------------------- executors


def _commit(info: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    # The id changes with every version: jina re-downloads a package when it changes.
    # `latest` is derived (always the newest version): name it only when there is no other
    # tag, since jina takes tags[0] for its `jinaai://ns/Name:tag` usage line.
    named = [t for t in tags if t != "latest"]
    return {"id": f"v{info['version']}-{info['sha256'][:12]}", "tags": named or ["latest"]}


def _executor_id(info: dict[str, Any]) -> str:
    # jina makes folders and file names of it: no '/' (a namespace never holds a '.')
    return f"{info['namespace']}.{info['name']}"


def _executor_payload(info: dict[str, Any], first_tags: list[str]) -> dict[str, Any]:
    tags = first_tags + [t for t in info.get("tags") or [] if t not in first_tags]
    return {"id": _executor_id(info), "name": info["name"],
            "visibility": info["visibility"], "owner": {"name": info["namespace"]},
            "commit": _commit(info, tags)}


def _push_fields(request: RpcRequest) -> tuple[dict[str, Field], bytes, dict[str, Any],
                                               list[str]]:
    fields = request.fields()
    upload = fields.get("file")
    if upload is None or not isinstance(upload.value, bytes) or not upload.value:
        raise InvalidRequest("the request needs the executor package in a 'file' field")
    data = upload.value
    md5 = _text(fields, "md5sum")
    if md5 is not None and md5.lower() != hashlib.md5(data).hexdigest():  # noqa: S324
        raise InvalidRequest("the package does not match its md5sum: push again")
    tags = [t.strip() for t in (_text(fields, "tags") or "").split(",") if t.strip()]
    body: dict[str, Any] = {}
    if tags:
        body["tags"] = tags
    protected = [t.strip() for t in (_text(fields, "immutableTags") or "").split(",")
                 if t.strip()]
    if protected:
        body["protected_tags"] = protected
    if _flag(fields, "public"):
        body["visibility"] = "public"
    elif _flag(fields, "private"):
        body["visibility"] = "private"
    return fields, data, body, tags + [t for t in protected if t not in tags]


def _push_lines(payload: dict[str, Any], message: str) -> Lines:
    return Lines([
        {"type": "progress", "subject": "upload", "message": "package received",
         "payload": ""},
        {"type": "complete", "subject": "push", "message": message, "payload": payload},
    ])


def push_executor(request: RpcRequest) -> Lines:
    from chalicelib import registry

    who = _signed_in(request)
    fields = request.fields()
    name = _text(fields, "id", required=True)
    ns, name = split_name(name, "executor")
    ns = ns or who.namespace
    registry.require_owner_namespace(who, ns)
    _check_body_size(request, f"the executor package of '{ns}/{name}'",
                     f"nshub hub push FOLDER` (as `{ns}/{name}`)")
    _, data, body, tags = _push_fields(request)
    info = _push_bytes(
        lambda b: registry.start_upload(who, EXECUTOR, ns, name, b),
        lambda upload_id, b: registry.complete_upload(who, EXECUTOR, ns, name, upload_id, b),
        data, body)
    return _push_lines(_executor_payload(info, tags), f"pushed {ns}/{name} v{info['version']}")


def update_legacy_executor(request: RpcRequest) -> Lines:
    """`jina hub push --force-update NAME --secret S`: a legacy executor, by its secret."""
    from chalicelib import executors

    fields = request.fields()
    name = _text(fields, "id", required=True)
    secret = _text(fields, "secret")
    if secret is None and request.caller is None:
        raise Unauthorized("send the executor's --secret, or sign in as its owner")
    _check_body_size(request, f"the executor package of '{name}'",
                     "nshub hub push FOLDER` (as `OWNER/NAME`)")
    _, data, body, tags = _push_fields(request)
    info = _push_bytes(
        lambda b: executors.start_legacy_upload(request.caller, name, secret, b),
        lambda upload_id, b: executors.complete_legacy_upload(request.caller, name, secret,
                                                              upload_id, b),
        data, body)
    payload = _executor_payload(info, tags)
    if secret is not None:
        # jina then prints the usage it was pushed with, `jinahub://Name:secret`
        payload["secret"] = secret
        del payload["owner"]
    return _push_lines(payload, f"pushed {name} v{info['version']}")


def get_package(request: RpcRequest) -> dict[str, Any]:
    """What `jina hub pull`, Executor.from_hub and Flow(uses=...) fetch: the package URL and
    its md5, for `jinaai://ns/Name[:tag]` (id `ns/Name`) or `jinahub://Name[:secret]` (id
    `Name`, with its secret)."""
    from chalicelib import executors, registry

    fields = request.fields()
    ns, name = split_name(_text(fields, "id", required=True), "executor")
    tag = _text(fields, "tag")
    if tag == "latest":
        tag = None  # no tag and `latest` are the same thing
    if ns is None:
        info = executors.get_legacy_executor(request.caller, name, _text(fields, "secret"),
                                             tag=tag)
    else:
        info = registry.get_resource(request.caller, EXECUTOR, ns, name, tag=tag)
    tags = [tag] if tag else list(info.get("tags") or [])
    containers = [info["image"]] if info.get("image") and info.get("image_status") == "ready" \
        else []
    return success({
        "id": _executor_id(info), "name": info["name"],
        "visibility": info["visibility"], "owner": {"name": info["namespace"]},
        "commit": _commit(info, tags),
        "package": {"download": info["download_url"], "md5": info.get("md5"),
                    "sha256": info["sha256"], "size": info["size"],
                    "containers": containers},
    })


# ---------------------------------------------------------------- the method table

METHODS: dict[str, Callable[[RpcRequest], dict[str, Any] | Lines]] = {
    "user.identity.whoami": whoami,
    "dockerRegistry.listInternalRegistries": list_internal_registries,
    "user.pat.create": create_pat,
    "user.pat.list": list_pats,
    "user.pat.delete": delete_pat,
    "artifact.upload": upload_artifact,
    "artifact.getDownloadUrl": download_url,
    "artifact.getDetail": artifact_detail,
    "artifact.delete": delete_artifact,
    "artifact.list": list_artifacts,
    "executor.push": push_executor,
    "executor.update": update_legacy_executor,
    "executor.getPackage": get_package,
}
