"""Domain errors with stable codes: the one place that knows codes and statuses.

The service raises these; app.py turns any of them into a response with the status, a
`{"Code", "Message"}` body and an `X-Error-Code` header (see DESIGN.md). Messages say what
went wrong and what to do, in one line.
"""
from __future__ import annotations


class NshubError(Exception):
    status = 500
    code = "InternalError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}  # extra response headers

    def to_body(self) -> dict[str, str]:
        return {"Code": self.code, "Message": self.message}


class InvalidName(NshubError):
    status, code = 400, "InvalidName"


class InvalidRequest(NshubError):
    status, code = 400, "InvalidRequest"


class ChecksumMismatch(NshubError):
    status, code = 400, "ChecksumMismatch"


class SizeMismatch(NshubError):
    status, code = 400, "SizeMismatch"


class InvalidPackage(NshubError):
    status, code = 400, "InvalidPackage"


class Unauthorized(NshubError):
    status, code = 401, "Unauthorized"


class Forbidden(NshubError):
    status, code = 403, "Forbidden"


class InsufficientScope(NshubError):
    """A personal access token without the scope the operation needs (read-only writing)."""
    status, code = 403, "InsufficientScope"


class NotFound(NshubError):
    status, code = 404, "NotFound"


class RpcMethodNotFound(NotFound):
    """A Hubble method (/v2/rpc/METHOD) nshub does not serve: its own status in the envelope."""


class NotVisible(NotFound):
    """A resource that does not exist or that this caller may not see (the same answer)."""

    def __init__(self, message: str, kind: str, namespace: str | None, name: str):
        super().__init__(message)
        self.kind, self.namespace, self.name = kind, namespace, name


class MethodNotAllowed(NshubError):
    status, code = 405, "MethodNotAllowed"


class Conflict(NshubError):
    status, code = 409, "Conflict"


class LegacyReadOnly(NshubError):
    status, code = 409, "LegacyReadOnly"


class TagProtected(NshubError):
    status, code = 409, "TagProtected"


class TooLarge(NshubError):
    status, code = 413, "TooLarge"


class UnsupportedMediaType(NshubError):
    status, code = 415, "UnsupportedMediaType"


class TooManyRequests(NshubError):
    status, code = 429, "TooManyRequests"

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        if retry_after is not None:
            self.headers["Retry-After"] = str(max(1, int(retry_after)))


# Also the body of API Gateway's answer to an unknown route (infra/functions.yaml), which
# cannot say more than this.
UNKNOWN_ROUTE_MESSAGE = "no such route: check the method and the path (see the HTTP API in the README)"

