"""Typed exceptions of the client: the server's `X-Error-Code` mapped back to classes.

Every error carries `code` (the server's stable code), `message` (one line: what happened and
what to do), `status` (the HTTP status, or None for failures found by the client) and `hint`
(what the CLI prints under the error).
"""
from __future__ import annotations

from typing import Any


class NshubError(Exception):
    code = "Error"
    hint: str | None = None

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status


class InvalidName(NshubError, ValueError):
    code = "InvalidName"
    hint = "names are `namespace/name` (or a bare `name` for a legacy array)"


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
    hint = "you can only change resources in your own namespace"


class NotFound(NshubError):
    code = "NotFound"
    hint = "check the name; private resources of others are invisible"


class Conflict(NshubError):
    code = "Conflict"
    hint = "someone changed it at the same time: try again"


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


class NotLoggedIn(Unauthorized):
    code = "NotLoggedIn"
    hint = "run `nshub login USERNAME` (or set NSHUB_TOKEN)"


class IntegrityError(NshubError):
    code = "IntegrityError"
    hint = "the download was corrupted on the way: pull again"


class ServerUnreachable(NshubError):
    code = "ServerUnreachable"
    hint = "is the server running? check NSHUB_ENDPOINT or --endpoint"


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
        NotFound,
        Conflict,
        LegacyReadOnly,
        TagProtected,
        TooLarge,
        TooManyRequests,
    )
}


def error_from_response(status: int, headers: Any, body: Any) -> NshubError:
    """Build the typed exception of an API error response.

    `headers` is a mapping (case-insensitive in practice), `body` the parsed JSON or None.
    The `X-Error-Code` header wins over the body's `Code`; unknown codes become NshubError.
    """
    payload = body if isinstance(body, dict) else {}
    code = headers.get("X-Error-Code") or payload.get("Code") or None
    message = payload.get("Message") or payload.get("message")
    if not message:
        message = (
            f"the server failed with HTTP {status}: this is a bug in nshub"
            if status >= 500
            else f"the server answered HTTP {status}"
        )
    cls = SERVER_ERRORS.get(code or "", NshubError)
    return cls(str(message), code=code or ("InternalError" if status >= 500 else f"HTTP{status}"),
               status=status)
