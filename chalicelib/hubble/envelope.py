"""Hubble's envelope (shared/HUBBLE.md): the call as the route saw it, the answers, and the
status codes the clients know (their table in hubble/excepts.py; only those may be sent).

Success: `{"code": 200, "status": 20000, "data", "meta"}`; an error: `{"code": <http status>,
"status": <Hubble code>, "message", "readableMessage", "data": null}`, so users see the message.
A streamed answer (executor.push) is `Lines`, one JSON object per line.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalicelib.auth import Caller
from chalicelib.errors import LegacyReadOnly, NshubError, RpcMethodNotFound
from chalicelib.forms import Field, read_fields

OK_STATUS = 20000

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
