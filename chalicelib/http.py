"""The HTTP edge: request bodies in, errors out. The one place errors become responses."""
from __future__ import annotations

import json
import math
from typing import Any

from chalicelib.errors import (
    UNKNOWN_ROUTE_MESSAGE,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    NshubError,
    UnsupportedMediaType,
)

JSON_HEADERS = {"Content-Type": "application/json"}


def json_body(raw: bytes | None, required: bool = True) -> dict[str, Any]:
    if not raw:
        if required:
            raise InvalidRequest("the request needs a JSON object body")
        return {}
    try:
        body = strict_json(raw)
    except NotStrictJson as exc:
        raise InvalidRequest(f"the body holds {exc}: send finite numbers") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("the body is not valid JSON: send a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def strict_json(raw: bytes | str) -> Any:
    """JSON as every parser but Python's reads it: no NaN or Infinity, no number that
    overflows a float (NotStrictJson); ValueError when it is not JSON at all."""
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)


class NotStrictJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    """Python's json reads NaN and Infinity, which no JSON parser elsewhere does."""
    raise NotStrictJson(f"{name}, which JSON does not allow")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 overflows to inf
        raise NotStrictJson(f"the number {text[:40]}, too large for a float")
    return value


# Request headers that carry credentials: an answer to them may hold private data (download
# URLs of private resources), so no cache keeps it, and no cache answers a caller with the
# answer made for another.
CREDENTIAL_HEADERS = ("authorization", "x-executor-secret")


def cache_headers(request_headers: Any) -> dict[str, str]:
    """What every answer says to caches: it varies with the credentials sent; an answer to
    a request that sent any is never stored."""
    headers = {"Vary": "Authorization, X-Executor-Secret"}
    if any(request_headers.get(name) for name in CREDENTIAL_HEADERS):
        headers["Cache-Control"] = "no-store"
    return headers


def error_response(exc: NshubError) -> tuple[dict[str, str], int, dict[str, str]]:
    return exc.to_body(), exc.status, {**JSON_HEADERS, **exc.headers, "X-Error-Code": exc.code}


def unknown_route() -> tuple[dict[str, str], int, dict[str, str]]:
    return error_response(NotFound(UNKNOWN_ROUTE_MESSAGE))


def chalice_refusal(status: int, method: str, allowed: str | None,
                    content_type: str | None) -> NshubError | None:
    """Chalice answers a known path with a method it lacks (405) or a body type a route does
    not take (415) before any view runs: the same refusals in the error contract."""
    if status == 405:
        return MethodNotAllowed(f"{method} is not allowed here: use {allowed or 'another method'}")
    if status == 415:
        return UnsupportedMediaType(
            f"a body of type {content_type or 'unknown'} is not accepted: send application/json")
    return None


def internal_error() -> tuple[dict[str, str], int, dict[str, str]]:
    body = {"Code": "InternalError", "Message": "something broke on our side: try again, and "
            "report it if it keeps happening"}
    return body, 500, {**JSON_HEADERS, "X-Error-Code": "InternalError"}
