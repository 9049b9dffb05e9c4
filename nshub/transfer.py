"""Moving bytes to and from presigned URLs, in bounded memory.

Uploads: the file is hashed by streaming it, then each part is PUT from a `FileSlice` (a
lazily read window of the file with a known length), in parallel, each part retried with
backoff on its own. Downloads: the body is streamed to a file in CHUNK_SIZE pieces, hashed on
the way; a dropped connection resumes with `Range: bytes=N-`; an expired URL is replaced by a
fresh one; the caller verifies size and sha256 before the file is renamed into place.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import IO, Any, Callable, Iterator

import requests
import urllib3

from nshub import settings
from nshub._http import (
    RETRY_STATUSES,
    TRANSIENT_ERRORS,
    Retry,
    raise_for_storage_error,
    request_with_retries,
)
from nshub.errors import IntegrityError, InvalidRequest, ServerUnreachable, StorageError

Opener = Callable[[], IO[bytes]]


def path_opener(path: Any) -> Opener:
    return lambda: open(path, "rb")


def bytes_opener(data: bytes | bytearray | memoryview) -> Opener:
    return lambda: io.BytesIO(data)  # shares the buffer, no copy


def hash_source(opener: Opener) -> tuple[int, str]:
    """(size, sha256 hex) of everything `opener` yields, read CHUNK_SIZE at a time."""
    digest = hashlib.sha256()
    size = 0
    with opener() as fh:
        while chunk := fh.read(settings.CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def source_size(opener: Opener) -> int:
    with opener() as fh:
        return fh.seek(0, io.SEEK_END)


def hash_source_parts(opener: Opener, part_size: int) -> tuple[int, str, list[str]]:
    """(size, sha256, [sha256 of each part_size piece]) in one streaming pass.

    The two digests run side by side: hashlib releases the GIL on large buffers, so the whole
    file's digest is computed on a second thread while this one computes the part's."""
    whole, part = hashlib.sha256(), hashlib.sha256()
    parts: list[str] = []
    size = in_part = 0
    with opener() as fh, ThreadPoolExecutor(max_workers=1) as pool:
        while chunk := fh.read(min(settings.CHUNK_SIZE, part_size - in_part)):
            pending = pool.submit(whole.update, chunk)
            part.update(chunk)
            pending.result()
            size += len(chunk)
            in_part += len(chunk)
            if in_part == part_size:
                parts.append(part.hexdigest())
                part, in_part = hashlib.sha256(), 0
    if in_part or not parts:
        parts.append(part.hexdigest())
    return size, whole.hexdigest(), parts


class _Cancelled(Exception):
    """Another part failed: stop sending this one."""


class FileSlice:
    """`length` bytes of a source from `offset`, read lazily.

    requests streams it (it has `read` and `__iter__`) with `Content-Length: len(slice)`, so a
    part never sits whole in memory.
    """

    def __init__(
        self,
        opener: Opener,
        offset: int,
        length: int,
        on_read: Callable[[int], None] | None = None,
        cancelled: threading.Event | None = None,
    ):
        self._fh = opener()
        self._fh.seek(offset)
        self._length = length
        self._remaining = length
        self._on_read = on_read
        self._cancelled = cancelled

    def __len__(self) -> int:
        return self._length

    def read(self, size: int | None = -1) -> bytes:
        if self._cancelled is not None and self._cancelled.is_set():
            raise _Cancelled()
        if self._remaining <= 0:
            return b""
        if size is None or size < 0 or size > self._remaining:
            size = self._remaining
        data = self._fh.read(size)
        if not data:
            raise IntegrityError("the file got shorter while it was being pushed: push it again")
        self._remaining -= len(data)
        if self._on_read is not None:
            self._on_read(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(settings.CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        self._fh.close()


def part_ranges(total: int, part_size: int, size: int) -> list[tuple[int, int, int]]:
    """(part_number, offset, length) per part: part i covers [(i-1)*part_size, min(i*part_size,
    size)); a single part is the whole file."""
    if total == 1:
        return [(1, 0, size)]
    ranges = []
    for number in range(1, total + 1):
        offset = (number - 1) * part_size
        length = min(part_size, size - offset)
        if length <= 0:
            raise InvalidRequest(
                f"the server planned part {number} beyond the end of a {size}-byte file"
            )
        ranges.append((number, offset, length))
    return ranges


class PartURLs:
    """The part URLs of an upload: the plan's first batch, then the next batch asked for
    (`fetch(part_numbers)`) when a worker reaches a part without one."""

    def __init__(self, plan: dict, total: int, fetch: Callable[[list[int]], list[dict]] | None,
                 batch: int):
        self._known = {int(p["part_number"]): p for p in plan["parts"]}
        self._total, self._fetch, self._batch = total, fetch, max(1, batch)
        self._lock = threading.Lock()

    def get(self, number: int) -> dict:
        with self._lock:
            if number not in self._known:
                if self._fetch is None:
                    raise InvalidRequest(f"the server handed out no URL for part {number}")
                wanted = [n for n in range(number, min(self._total, number + self._batch - 1) + 1)
                          if n not in self._known]
                self._known.update({int(p["part_number"]): p for p in self._fetch(wanted)})
            return self._known.pop(number)  # a URL is used once: memory stays one batch


def upload_parts(
    session: requests.Session,
    plan: dict,
    size: int,
    opener: Opener,
    *,
    retry: Retry,
    workers: int,
    on_progress: Callable[[int], None],
    renew: Callable[[int], dict] | None = None,
    more: Callable[[list[int]], list[dict]] | None = None,
) -> list[dict]:
    """PUT every part of an upload plan; returns `[{part_number, etag}]` in order.

    The plan carries the first batch of part URLs and `parts_total`; `more(part_numbers)`
    fetches further batches as the workers get there. Presigned URLs live at most 15
    minutes: a part refused with 403 gets a fresh URL from `renew(part_number)` once, then is
    sent again."""
    total = int(plan.get("parts_total") or len(plan["parts"]))
    ranges = part_ranges(total, int(plan.get("part_size") or size or 1), size)
    urls = PartURLs(plan, total, more, batch=max(len(plan["parts"]), 1))
    cancelled = threading.Event()
    lock = threading.Lock()

    def progress(n: int) -> None:
        with lock:
            on_progress(n)

    def put(part: dict, offset: int, length: int) -> dict:
        number = int(part["part_number"])
        headers = {str(k): str(v) for k, v in (part.get("headers") or {}).items()}
        signed_length = _header(headers, "Content-Length")
        if signed_length is not None and int(signed_length) != length:
            raise InvalidRequest(
                f"the server expects {signed_length} bytes for part {number}, the file has {length}"
            )
        sent = [0]

        def body() -> Any:
            # A retried part starts over: take back what the failed attempt counted.
            if sent[0]:
                progress(-sent[0])
                sent[0] = 0
            if length == 0:
                return b""  # requests would send an empty stream chunked

            def counted(n: int) -> None:
                sent[0] += n
                progress(n)

            return FileSlice(opener, offset, length, counted, cancelled)

        response = request_with_retries(
            session,
            "PUT",
            part["url"],
            retry=retry,
            idempotent=True,
            body_factory=body,
            headers=headers,
            timeout=settings.TRANSFER_TIMEOUT,
        )
        with response:
            raise_for_storage_error(response, f"upload of part {number}")
            etag = response.headers.get("ETag")
        if not etag:
            raise StorageError(f"the object store returned no ETag for part {number}")
        return {"part_number": number, "etag": etag}

    def put_renewing(number: int, offset: int, length: int) -> dict:
        if cancelled.is_set():
            raise _Cancelled()
        try:
            return put(urls.get(number), offset, length)
        except StorageError as exc:
            if renew is None or getattr(exc, "status", None) != 403:
                raise
        return put(renew(number), offset, length)

    if len(ranges) == 1:
        return [put_renewing(*ranges[0])]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ranges)))) as pool:
        futures = [pool.submit(put_renewing, *r) for r in ranges]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            return [f.result() for f in futures]
        except BaseException:
            cancelled.set()
            for future in futures:
                future.cancel()
            raise


def download(
    session: requests.Session,
    sink: IO[bytes],
    *,
    url: str,
    refresh_url: Callable[[], str],
    size: int,
    offset: int,
    digest: Any,
    retry: Retry,
    on_progress: Callable[[int], None],
    what: str,
) -> Any:
    """Append bytes [offset, size) of the object at `url` to `sink`; returns the running digest.

    `sink` already holds bytes [0, offset) and `digest` has hashed them. A dropped connection
    resumes from where it stopped; an expired URL (403) is replaced via `refresh_url()`; a
    server that ignores `Range` makes the download start over.
    """
    failures = 0
    refreshes = 0

    def restart() -> None:
        nonlocal offset, digest
        sink.seek(0)
        sink.truncate(0)
        on_progress(-offset)
        offset = 0
        digest = hashlib.sha256()

    def transient(exc: Exception | None, retry_after: str | None = None) -> None:
        nonlocal failures
        failures += 1
        if failures >= retry.attempts:
            raise ServerUnreachable(f"{what} keeps failing: {exc or 'the connection dropped'}") from exc
        retry.sleep(retry.delay(failures, retry_after))

    while offset < size:
        # identity: the bytes hashed must be the stored bytes, not a decoded form of them
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = session.get(
                url, headers=headers, stream=True, timeout=settings.TRANSFER_TIMEOUT
            )
        except TRANSIENT_ERRORS as exc:
            transient(exc)
            continue
        with response:
            status = response.status_code
            if status in (401, 403) and refreshes < 3:
                refreshes += 1  # the presigned URL expired while we were resuming
                url = refresh_url()
                continue
            if status in RETRY_STATUSES:
                transient(None, response.headers.get("Retry-After"))
                continue
            if status == 416:
                restart()  # what we hold is longer than the object: start over
                continue
            raise_for_storage_error(response, what)
            if offset and (status != 206 or not _range_starts_at(response, offset)):
                restart()  # the server sent the whole object: take it from the top
            progressed = False
            try:
                for chunk in _body_chunks(response):
                    if offset + len(chunk) > size:
                        raise IntegrityError(
                            f"{what} sent more than the {size} bytes the registry declared"
                        )
                    sink.write(chunk)
                    digest.update(chunk)
                    offset += len(chunk)
                    on_progress(len(chunk))
                    progressed = True
            except TRANSIENT_ERRORS as exc:
                if progressed:
                    failures = 0  # only consecutive failures without progress count
                transient(exc)
                continue
            if offset < size:
                if progressed:
                    failures = 0
                transient(None)
    return digest


def _body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The raw body as it arrives, so that bytes received before a drop are kept.

    `iter_content` fills each chunk before yielding it and loses the partial one when the
    connection breaks; `read1` hands over whatever one socket read returned.
    """
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 < 2.1: resuming loses at most one chunk
        yield from (c for c in response.iter_content(settings.CHUNK_SIZE) if c)
        return
    while True:
        try:
            chunk = read1(settings.CHUNK_SIZE, decode_content=False)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from exc
        if not chunk:
            return
        yield chunk


def _range_starts_at(response: requests.Response, offset: int) -> bool:
    content_range = response.headers.get("Content-Range", "")  # "bytes 10-99/100"
    try:
        return int(content_range.split()[1].split("-")[0]) == offset
    except (IndexError, ValueError):
        return False


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def verify_download(got_size: int, digest: Any, info: dict, what: str) -> None:
    """Refuse a download whose size or sha256 is not what the registry declared."""
    size = int(info["size"])
    if got_size != size:
        raise IntegrityError(f"{what}: got {got_size} bytes, the registry declared {size}")
    expected = info.get("sha256")
    if not isinstance(expected, str) or not expected:
        raise IntegrityError(f"{what}: the registry gave no sha256 to check the download against")
    if digest.hexdigest() != expected.lower():
        raise IntegrityError(
            f"{what}: the sha256 of the download ({digest.hexdigest()[:12]}...) does not match "
            f"the registry's ({expected[:12]}...)"
        )



# ---------------------------------------------------------------- parallel ranged downloads


class RangesIgnored(Exception):
    """The store answered a ranged GET with the whole object: download in one stream."""


class RangedDownload:
    """Download an object into a file as parallel ranged GETs, each written in place.

    The file is sized first; `workers` threads each GET one `range_size` window at a time
    and write its bytes at their offset as they arrive (one CHUNK_SIZE buffer per thread), so
    memory does not grow with the object. The caller's thread hashes the file in order, each
    range as soon as it and all before it are complete (read back from the page cache), so
    the digest is ready when the last range lands. Progress is kept in `<file>.ranges`
    (which ranges are complete, for which sha256): an interrupted pull resumes with the
    ranges it lacks, and hashes the ones it kept from the file.
    """

    def __init__(self, session: requests.Session, path: Any, *, url: str,
                 refresh_url: Callable[[], str], size: int, sha256: str, retry: Retry,
                 workers: int, range_size: int, on_progress: Callable[[int], None], what: str):
        import os
        from pathlib import Path

        self.session, self.path, self.url = session, Path(path), url
        self.refresh_url, self.size, self.sha256 = refresh_url, size, sha256
        self.retry, self.workers, self.range_size = retry, max(1, workers), range_size
        self.on_progress, self.what = on_progress, what
        self.state_path = self.path.with_name(self.path.name + ".ranges")
        self.count = -(-size // range_size)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._done: set[int] = set()
        self._failed: BaseException | None = None
        self._os = os

    # -- state

    def _load_state(self) -> None:
        import json

        try:
            state = json.loads(self.state_path.read_text())
            ok = state.get("sha256") == self.sha256 and state.get("size") == self.size \
                and state.get("range_size") == self.range_size \
                and self.path.exists() and self.path.stat().st_size == self.size
        except (OSError, ValueError, AttributeError):
            ok = False
        if ok:
            self._done = {int(i) for i in state.get("done", []) if 0 <= int(i) < self.count}
        else:
            self._done = set()
            with open(self.path, "wb") as fh:
                fh.truncate(self.size)

    def _save_state(self) -> None:
        import json

        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"sha256": self.sha256, "size": self.size,
                                   "range_size": self.range_size, "done": sorted(self._done)}))
        self._os.replace(tmp, self.state_path)

    def forget(self) -> None:
        self.state_path.unlink(missing_ok=True)

    # -- work

    def run(self) -> Any:
        """Download what is missing; returns the sha256 digest of the whole file."""
        self._load_state()
        kept = sum(self._length(i) for i in self._done)
        if kept:
            self.on_progress(kept)
        missing = [i for i in range(self.count) if i not in self._done]
        fd = self._os.open(self.path, self._os.O_RDWR)
        try:
            with ThreadPoolExecutor(max_workers=min(self.workers, max(1, len(missing)))) as pool:
                futures = [pool.submit(self._fetch, fd, i) for i in missing]
                try:
                    digest = self._hash_in_order(fd)
                except BaseException:
                    with self._lock:
                        self._failed = self._failed or _Cancelled()
                    for future in futures:
                        future.cancel()
                    raise
                for future in futures:
                    future.result()
        finally:
            self._os.close(fd)
        return digest

    def _length(self, index: int) -> int:
        return min(self.range_size, self.size - index * self.range_size)

    def _hash_in_order(self, fd: int) -> Any:
        digest = hashlib.sha256()
        for index in range(self.count):
            with self._changed:
                while index not in self._done and self._failed is None:
                    self._changed.wait()
                if self._failed is not None:
                    raise self._failed
            start, end = index * self.range_size, index * self.range_size + self._length(index)
            while start < end:
                chunk = self._os.pread(fd, min(settings.CHUNK_SIZE, end - start), start)
                if not chunk:
                    raise IntegrityError(f"{self.what}: the file being written got shorter")
                digest.update(chunk)
                start += len(chunk)
        return digest

    def _fetch(self, fd: int, index: int) -> None:
        try:
            self._fetch_range(fd, index)
        except BaseException as exc:
            with self._changed:
                self._failed = self._failed or exc
                self._changed.notify_all()
            raise
        with self._changed:
            self._done.add(index)
            self._save_state()
            self._changed.notify_all()

    def _fetch_range(self, fd: int, index: int) -> None:
        start = index * self.range_size
        end = start + self._length(index)  # exclusive
        position, failures, refreshes = start, 0, 0
        while position < end:
            with self._lock:
                if self._failed is not None:
                    raise _Cancelled()
                url = self.url
            headers = {"Accept-Encoding": "identity", "Range": f"bytes={position}-{end - 1}"}
            try:
                response = self.session.get(url, headers=headers, stream=True,
                                            timeout=settings.TRANSFER_TIMEOUT)
            except TRANSIENT_ERRORS as exc:
                failures = self._transient(failures, exc)
                continue
            with response:
                status = response.status_code
                if status in (401, 403) and refreshes < 3:
                    refreshes += 1
                    self._renew(url)
                    continue
                if status in RETRY_STATUSES:
                    failures = self._transient(failures, None, response.headers.get("Retry-After"))
                    continue
                raise_for_storage_error(response, self.what)
                if status != 206 or not _range_starts_at(response, position):
                    raise RangesIgnored()
                progressed = False
                try:
                    for chunk in _body_chunks(response):
                        if position + len(chunk) > end:
                            raise IntegrityError(f"{self.what}: the store sent more than asked")
                        self._os.pwrite(fd, chunk, position)
                        position += len(chunk)
                        self.on_progress(len(chunk))
                        progressed = True
                except TRANSIENT_ERRORS as exc:
                    failures = 0 if progressed else failures
                    failures = self._transient(failures, exc)
                    continue
                if position < end:
                    failures = self._transient(0 if progressed else failures, None)

    def _renew(self, stale: str) -> None:
        with self._lock:
            if self.url != stale:
                return  # another thread renewed it already
            self.url = self.refresh_url()

    def _transient(self, failures: int, exc: Exception | None,
                   retry_after: str | None = None) -> int:
        failures += 1
        if failures >= self.retry.attempts:
            raise ServerUnreachable(
                f"{self.what} keeps failing: {exc or 'the connection dropped'}") from exc
        self.retry.sleep(self.retry.delay(failures, retry_after))
        return failures
