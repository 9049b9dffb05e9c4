"""The Jina Hubble API subset that unmodified Jina clients speak (shared/HUBBLE.md).

docarray 0.21 (`DocumentArray.push/pull`), docarray 0.30-0.38 (`jac://`), jina-hubble-sdk's
`hubble.Client` and jina 3 (`jina hub push/pull`, `jinaai://` executors) all call
`{JINA_HUBBLE_REGISTRY}/v2/rpc/{method}`. This package is an adapter, not a second registry:
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

    envelope.py   the call (RpcRequest), the answers (success, Lines, error bodies), the codes
    inputs.py     the caller, text and flag fields, `ns/name` names
    uploads.py    the cap on bytes sent through the API; their push through presigned URLs
    users.py      user.identity.whoami, dockerRegistry.*, user.pat.*
    artifacts.py  artifact.* (DocumentArrays)
    executors.py  executor.push, executor.update, executor.getPackage
"""
from __future__ import annotations

from typing import Any, Callable

from chalicelib.errors import RpcMethodNotFound
from chalicelib.hubble import artifacts, executors, users
from chalicelib.hubble.envelope import (
    Lines,
    RpcRequest,
    error_body,
    internal_error_body,
)

__all__ = ["Lines", "RpcRequest", "call", "error_body", "internal_error_body"]

METHODS: dict[str, Callable[[RpcRequest], dict[str, Any] | Lines]] = {
    "user.identity.whoami": users.whoami,
    "dockerRegistry.listInternalRegistries": users.list_internal_registries,
    "user.pat.create": users.create_pat,
    "user.pat.list": users.list_pats,
    "user.pat.delete": users.delete_pat,
    "artifact.upload": artifacts.upload_artifact,
    "artifact.getDownloadUrl": artifacts.download_url,
    "artifact.getDetail": artifacts.artifact_detail,
    "artifact.delete": artifacts.delete_artifact,
    "artifact.list": artifacts.list_artifacts,
    "executor.push": executors.push_executor,
    "executor.update": executors.update_legacy_executor,
    "executor.getPackage": executors.get_package,
}


def call(request: RpcRequest) -> dict[str, Any] | Lines:
    handler = METHODS.get(request.method)
    if handler is None:
        raise RpcMethodNotFound(f"nshub does not serve the Hubble method '{request.method}'")
    return handler(request)
