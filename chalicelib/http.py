"""The HTTP edge: request bodies in, errors out. The one place errors become responses."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import InvalidRequest, NshubError

JSON_HEADERS = {"Content-Type": "application/json"}


def json_body(raw: bytes | None, required: bool = True) -> dict[str, Any]:
    if not raw:
        if required:
            raise InvalidRequest("the request needs a JSON object body")
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("the body is not valid JSON: send a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def error_response(exc: NshubError) -> tuple[dict[str, str], int, dict[str, str]]:
    return exc.to_body(), exc.status, {**JSON_HEADERS, "X-Error-Code": exc.code}


def internal_error() -> tuple[dict[str, str], int, dict[str, str]]:
    body = {"Code": "InternalError", "Message": "something broke on our side: try again, and "
            "report it if it keeps happening"}
    return body, 500, {**JSON_HEADERS, "X-Error-Code": "InternalError"}
