"""Typed exceptions of the client: the server's `X-Error-Code` mapped back to classes.

Every error carries `code` (the server's stable code), `message` (one line: what happened and
what to do), `status` (the HTTP status, or None for failures found by the client) and `hint`
(what the CLI prints under the error, when there is more to say than the server's message,
which already says what to do).
"""
from __future__ import annotations

from typing import Any


class NshubError(Exception):
    code = "Error"
    hint: str | None = None

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 hint: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        if hint is not None:  # this failure's own hint, when the class's does not fit
            self.hint = hint


class InvalidName(NshubError, ValueError):
    code = "InvalidName"  # the message says what is wrong and the rule; forms add a hint


ARRAY_FORM_HINT = "arrays are `namespace/name`, where the namespace is a (lowercase) username"


class InvalidRequest(NshubError):
    code = "InvalidRequest"


class ChecksumMismatch(NshubError):
    code = "ChecksumMismatch"
    hint = "the file changed while it was pushed: push it again"


class SizeMismatch(NshubError):
    code = "SizeMismatch"
    hint = "the file changed while it was pushed: push it again"


class InvalidPackage(NshubError):
    code = "InvalidPackage"


class Unauthorized(NshubError):
    code = "Unauthorized"
    hint = "run `nshub login USERNAME` (or set NSHUB_TOKEN)"


class Forbidden(NshubError):
    code = "Forbidden"


class InsufficientScope(Forbidden):
    code = "InsufficientScope"
    hint = ("this token is read-only: use one made with `nshub token create NAME --scope write`,"
            " or your own login")


class NotFound(NshubError):
    code = "NotFound"
    hint = "check the name; private resources of others are invisible"


class InvalidEndpoint(NshubError):
    code = "InvalidEndpoint"
    hint = "set NSHUB_ENDPOINT (or --endpoint) to the API root, e.g. http://127.0.0.1:8000"


class Conflict(NshubError):
    code = "Conflict"


class LegacyReadOnly(NshubError):
    code = "LegacyReadOnly"
    hint = "legacy arrays can be pulled, not pushed: push `namespace/name` instead"


class TagProtected(NshubError):
    code = "TagProtected"


class TooLarge(NshubError):
    code = "TooLarge"


class TooManyRequests(NshubError):
    code = "TooManyRequests"
    hint = "slow down and try again in a moment"


# Failures the client finds on its own.


# The hint under a 401 of a personal access token (the server's message names its problem:
# unknown, expired or revoked), by where the client found the token.
TOKEN_HINTS = {
    "argument": "make a new token with `nshub token create NAME` and pass that one",
    "NSHUB_TOKEN": "NSHUB_TOKEN holds this token: make a new one with `nshub token create NAME`"
                   " and set NSHUB_TOKEN to it",
    "login": "the token stored by `nshub login --token` is refused: store a new one (`nshub "
             "token create NAME`, then `nshub login --token`) or `nshub login USERNAME`",
}


class NotLoggedIn(Unauthorized):
    code = "NotLoggedIn"
    hint = "run `nshub login USERNAME` (or set NSHUB_TOKEN)"


class IntegrityError(NshubError):
    code = "IntegrityError"
    hint = "the download was corrupted on the way: pull again"


class ServerUnreachable(NshubError):
    code = "ServerUnreachable"
    hint = "is the server running? check NSHUB_ENDPOINT or --endpoint"


class UnexpectedResponse(NshubError):
    """The server answered, but not what the API promises (a proxy's page, a missing field)."""

    code = "UnexpectedResponse"
    hint = "check that NSHUB_ENDPOINT (or --endpoint) is the nshub API; if it is, please report it"


class StorageError(NshubError):
    """The object store (a presigned URL) refused a transfer."""

    code = "StorageError"
    hint = "try again; if it keeps failing, the server may be misconfigured"


SERVER_ERRORS: dict[str, type[NshubError]] = {
    cls.code: cls
    for cls in (
        InvalidName,
        InvalidRequest,
        ChecksumMismatch,
        SizeMismatch,
        InvalidPackage,
        Unauthorized,
        Forbidden,
        InsufficientScope,
        NotFound,
        Conflict,
        LegacyReadOnly,
        TagProtected,
        TooLarge,
        TooManyRequests,
    )
}


# Answers without a code (API Gateway throttling, a proxy) still get the right class.
_BY_STATUS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 413: "TooLarge",
              429: "TooManyRequests"}


def error_from_response(status: int, headers: Any, body: Any) -> NshubError:
    """Build the typed exception of an API error response.

    `headers` is a mapping (case-insensitive in practice), `body` the parsed JSON or None.
    The `X-Error-Code` header wins over the body's `Code`; unknown codes become NshubError.
    """
    payload = body if isinstance(body, dict) else {}
    code = headers.get("X-Error-Code") or payload.get("Code") or _BY_STATUS.get(status)
    message = payload.get("Message") or payload.get("message")
    if status in (502, 503, 504):
        code = code or "ServiceUnavailable"
        message = message or f"the server is unavailable (HTTP {status}): try again later"
    elif status >= 500:
        code = code or "InternalError"
        message = message or f"the server failed (HTTP {status}): this is a bug in nshub"
    code = code or f"HTTP{status}"
    message = message or f"the server answered HTTP {status}"
    cls = SERVER_ERRORS.get(code, NshubError)
    return cls(str(message), code=code, status=status)
