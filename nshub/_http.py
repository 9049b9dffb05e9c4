"""HTTP plumbing shared by the client: sessions, retries with backoff, error mapping.

Retries follow huggingface_hub's `http_backoff`: exponential backoff with full jitter on
connection errors and on 429/500/502/503/504, honouring `Retry-After`. Only idempotent calls
are retried after a 5xx or a dropped connection; a 429 means the request was refused before
anything happened, so it is retried for every method. `Backoff` is the one count of failures
and waits: API calls and part PUTs (`request_with_retries`) and downloads (nshub/download.py)
all use it.
"""
from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
from requests.adapters import HTTPAdapter

from nshub import __version__, settings
from nshub.errors import NshubError, ServerUnreachable, StorageError, error_from_response

logger = logging.getLogger("nshub")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass(frozen=True)
class Retry:
    """How hard to try: `attempts` in all, waits of base*2^n (capped, jittered) in between."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before attempt number `attempt + 1` (`attempt` counts from 1)."""
        asked = parse_retry_after(retry_after)
        if asked is not None:
            return min(asked, self.max_retry_after)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class Backoff:
    """The consecutive failures of one operation, held against a `Retry`."""

    def __init__(self, retry: Retry):
        self.retry = retry
        self.failures = 0

    def failed(self, retry_after: str | None = None) -> float | None:
        """Count a failure: the seconds to wait before the next attempt, or None when the
        attempts are spent."""
        self.failures += 1
        if self.failures >= self.retry.attempts:
            return None
        return self.retry.delay(self.failures, retry_after)

    def progressed(self) -> None:
        """An attempt moved forward (a download received bytes): count from zero again."""
        self.failures = 0

    def sleep(self, seconds: float) -> None:
        self.retry.sleep(seconds)


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, pool_size))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"nshub/{__version__} {requests.utils.default_user_agent()}"
    return session


def request_with_retries(
    session: requests.Session,
    method: str,
    url: str,
    *,
    retry: Retry,
    idempotent: bool,
    body_factory: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send a request, retrying transient failures; returns the last response, good or bad.

    `body_factory`, when given, makes a fresh `data=` for each attempt (a streamed body can
    be read only once). Raises ServerUnreachable when the connection keeps failing.
    """
    backoff = Backoff(retry)
    while True:
        if body_factory is not None:
            kwargs["data"] = body_factory()
        try:
            response = session.request(method, url, **kwargs)
        except TRANSIENT_ERRORS as exc:
            _close_body(kwargs.get("data"))
            wait = backoff.failed() if idempotent else None
            if wait is None:
                raise ServerUnreachable(
                    f"cannot reach {_origin(url)}: {describe_error(exc)}", status=None
                ) from shown_cause(exc)
            logger.debug("%s %s failed (%s); retry %d in %.2fs", method, without_query(url),
                         describe_error(exc), backoff.failures, wait)
            backoff.sleep(wait)
            continue
        _close_body(kwargs.get("data"))
        retryable = response.status_code == 429 or (
            idempotent and response.status_code in RETRY_STATUSES
        )
        wait = backoff.failed(response.headers.get("Retry-After")) if retryable else None
        if wait is None:
            return response
        logger.debug("%s %s answered %d; retry %d in %.2fs", method, without_query(url),
                     response.status_code, backoff.failures, wait)
        response.close()
        backoff.sleep(wait)


def raise_for_api_error(response: requests.Response) -> None:
    """Turn an API error response into its typed exception (see nshub.errors)."""
    if response.ok:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    raise error_from_response(response.status_code, response.headers, body)


def raise_for_storage_error(response: requests.Response, what: str) -> None:
    """Presigned URLs answer with S3's XML errors: keep their code, say what failed."""
    if response.ok:
        return
    code = _xml_field(response.text, "Code") or f"HTTP{response.status_code}"
    detail = _xml_field(response.text, "Message") or response.reason or ""
    raise StorageError(
        f"{what} failed: the object store answered {response.status_code} {code}"
        + (f" ({without_query(detail)})" if detail else ""),
        status=response.status_code,
    )


def _close_body(body: Any) -> None:
    close = getattr(body, "close", None)
    if callable(close):
        close()


def _xml_field(text: str, tag: str) -> str | None:
    start = text.find(f"<{tag}>")
    end = text.find(f"</{tag}>")
    if start < 0 or end < start:
        return None
    return text[start + len(tag) + 2 : end].strip() or None


def _origin(url: str) -> str:
    parts = requests.utils.urlparse(url)
    return f"{parts.scheme}://{parts.netloc}"


# A query string inside a text: "?" right after a path, holding at least one "key=value".
_QUERY = re.compile(r"(?<=[^\s?])\?[^\s'\"<>()]*=[^\s'\"<>()]*")


def without_query(text: str) -> str:
    """`text` (a URL, or a message that may quote one) with the query string of every URL in
    it dropped: the query of a presigned URL is a credential (X-Amz-Signature,
    X-Amz-Security-Token), and requests' errors quote the URL they failed on."""
    return _QUERY.sub("", text)


def shown_cause(exc: BaseException | None) -> BaseException | None:
    """The cause to chain to an error raised for a transport error: none (its text quotes the
    presigned URL, query and all, and an uncaught error prints its chain), unless debugging."""
    return exc if settings.debug() else None


def describe_error(exc: BaseException) -> str:
    """One short line saying what a transport error was, fit to show (see `without_query`)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = without_query(text)
    return text if len(text) <= 160 else text[:157] + "..."


__all__ = [
    "Backoff",
    "NshubError",
    "Retry",
    "describe_error",
    "new_session",
    "raise_for_api_error",
    "raise_for_storage_error",
    "request_with_retries",
    "without_query",
]
