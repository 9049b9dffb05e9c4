"""Hubble's executor methods, as jina 3 (`jina hub push/pull`, `Executor.from_hub`,
`Flow(uses="jinaai://ns/Name")`) calls them: push (a streamed answer), the legacy
`--force-update NAME --secret S` update, and getPackage. Executors are `namespace/Name`, or a
bare legacy name with its secret."""
from __future__ import annotations

import hashlib
from typing import Any

from chalicelib.errors import InvalidRequest, Unauthorized
from chalicelib.forms import Field
from chalicelib.hubble.envelope import Lines, RpcRequest, success
from chalicelib.hubble.inputs import flag, signed_in, split_name, text
from chalicelib.hubble.uploads import check_body_size, push_bytes
from chalicelib.keys import EXECUTOR


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


def _push_fields(fields: dict[str, Field]) -> tuple[bytes, dict[str, Any], list[str]]:
    """(the package, the push's body, the tags it names) of an executor.push form."""
    upload = fields.get("file")
    if upload is None or not isinstance(upload.value, bytes) or not upload.value:
        raise InvalidRequest("the request needs the executor package in a 'file' field")
    data = upload.value
    md5 = text(fields, "md5sum")
    if md5 is not None and md5.lower() != hashlib.md5(data).hexdigest():  # noqa: S324
        raise InvalidRequest("the package does not match its md5sum: push again")
    tags = [t.strip() for t in (text(fields, "tags") or "").split(",") if t.strip()]
    body: dict[str, Any] = {}
    if tags:
        body["tags"] = tags
    protected = [t.strip() for t in (text(fields, "immutableTags") or "").split(",")
                 if t.strip()]
    if protected:
        body["protected_tags"] = protected
    if flag(fields, "public"):
        body["visibility"] = "public"
    elif flag(fields, "private"):
        body["visibility"] = "private"
    return data, body, tags + [t for t in protected if t not in tags]


def _push_lines(payload: dict[str, Any], message: str) -> Lines:
    return Lines([
        {"type": "progress", "subject": "upload", "message": "package received",
         "payload": ""},
        {"type": "complete", "subject": "push", "message": message, "payload": payload},
    ])


def push_executor(request: RpcRequest) -> Lines:
    from chalicelib import access, uploads

    who = signed_in(request)
    fields = request.fields()
    name = text(fields, "id", required=True)
    ns, name = split_name(name, "executor")
    ns = ns or who.namespace
    access.require_owner_namespace(who, ns)
    check_body_size(request, f"the executor package of '{ns}/{name}'",
                     f"nshub hub push FOLDER` (as `{ns}/{name}`)")
    data, body, tags = _push_fields(fields)
    info = push_bytes(
        lambda b: uploads.start_upload(who, EXECUTOR, ns, name, b),
        lambda upload_id, b: uploads.complete_upload(who, EXECUTOR, ns, name, upload_id, b),
        data, body)
    return _push_lines(_executor_payload(info, tags), f"pushed {ns}/{name} v{info['version']}")


def update_legacy_executor(request: RpcRequest) -> Lines:
    """`jina hub push --force-update NAME --secret S`: a legacy executor, by its secret."""
    from chalicelib import legacy_executors

    fields = request.fields()
    name = text(fields, "id", required=True)
    secret = text(fields, "secret")
    if secret is None and request.caller is None:
        raise Unauthorized("send the executor's --secret, or sign in as its owner")
    check_body_size(request, f"the executor package of '{name}'",
                     "nshub hub push FOLDER` (as `OWNER/NAME`)")
    data, body, tags = _push_fields(fields)
    info = push_bytes(
        lambda b: legacy_executors.start_legacy_upload(request.caller, name, secret, b),
        lambda upload_id, b: legacy_executors.complete_legacy_upload(request.caller, name,
                                                                     secret, upload_id, b),
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
    from chalicelib import legacy_executors, resources
    from chalicelib.info import downloadable

    fields = request.fields()
    ns, name = split_name(text(fields, "id", required=True), "executor")
    tag = text(fields, "tag")
    if tag == "latest":
        tag = None  # no tag and `latest` are the same thing
    if ns is None:
        info = downloadable(legacy_executors.get_legacy_executor(
            request.caller, name, text(fields, "secret"), tag=tag))
    else:
        info = downloadable(resources.get_resource(request.caller, EXECUTOR, ns, name, tag=tag))
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
