"""Pushing bytes to presigned URLs, in bounded memory.

The source is hashed by streaming it once (the whole and each part from the same bytes), then
each part is PUT from a `FileSlice` (a lazily read window of the source with a known length),
in parallel, each part retried with backoff on its own (`request_with_retries`). A part URL
refused with 403 (it lives at most 15 minutes) is renewed once. A file that changes between
the hashing and the last PUT is refused (`watch_source`).
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import requests

from nshub import settings
from nshub._http import Retry, raise_for_storage_error, request_with_retries
from nshub.errors import IntegrityError, InvalidRequest, StorageError, UnexpectedResponse

Opener = Callable[[], IO[bytes]]


class PathOpener:
    """Readers of a file; its `path` lets a push find the digests it hashed before."""

    def __init__(self, path: Any):
        self.path = Path(path)

    def __call__(self) -> IO[bytes]:
        return open(self.path, "rb")


def path_opener(path: Any) -> Opener:
    return PathOpener(path)


def bytes_opener(data: bytes | bytearray | memoryview) -> Opener:
    """Readers of `data` that share its buffer (io.BytesIO copies a bytearray or memoryview
    whole, once per reader: once per part and attempt); a view that is not contiguous is
    copied once, here."""
    view = memoryview(data)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    view = view.cast("B")
    return lambda: BufferReader(view)


class BufferReader(io.RawIOBase):
    """A seekable reader of a byte buffer: `readinto` copies into the caller's buffer, `read`
    returns bytes of at most the size asked; the buffer itself is never copied."""

    def __init__(self, view: memoryview):
        super().__init__()
        self._view = view
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        chunk = self._view[self._position:self._position + len(target)]
        target[:len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._position + size
        chunk = self._view[self._position:end].tobytes()
        self._position += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}
        self._position = max(0, base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._view = memoryview(b"")  # the shared view stays with its opener
        super().close()


HASH_CHUNK = 8 * 1024 * 1024  # bytes hashed per call: large, so hashlib releases the GIL


def hash_source(opener: Opener) -> tuple[int, str]:
    """(size, sha256 hex) of everything `opener` yields, read into one reused buffer."""
    view = memoryview(bytearray(HASH_CHUNK))
    digest, size = hashlib.sha256(), 0
    with opener() as fh:
        while n := fh.readinto(view):
            digest.update(view[:n])
            size += n
    return size, digest.hexdigest()


def hash_source_parts(opener: Opener, part_size: int) -> tuple[int, str, list[str]]:
    """(size, sha256, [sha256 of each part_size piece]), from one read of the source.

    Each buffer read is hashed into the whole file's digest on a second thread while this one
    hashes it into its part's digest, and a third reads the next buffer meanwhile (hashlib
    and file reads release the GIL, so the pass costs about one digest's time). Both digests
    are of the same bytes, so the declared sha256 is the one of the declared parts even if the file is
    rewritten meanwhile (`watch_source` then refuses the push)."""
    buffers = [memoryview(bytearray(HASH_CHUNK)) for _ in range(2)]
    whole, part = hashlib.sha256(), hashlib.sha256()
    size, in_part, parts = 0, 0, []
    with ThreadPoolExecutor(max_workers=2) as pool, opener() as fh:
        # while both digests take in one buffer, the next is read into the other
        n = fh.readinto(buffers[0][:min(HASH_CHUNK, part_size)])
        turn = 0
        while n:
            chunk, after = buffers[turn][:n], (in_part + n) % part_size
            hashed = pool.submit(whole.update, chunk)
            following = pool.submit(fh.readinto,
                                    buffers[1 - turn][:min(HASH_CHUNK, part_size - after)])
            part.update(chunk)
            hashed.result()
            size += n
            in_part += n
            if in_part == part_size:
                parts.append(part.hexdigest())
                part, in_part = hashlib.sha256(), 0
            n, turn = following.result(), 1 - turn
    if in_part or not parts:
        parts.append(part.hexdigest())
    return size, whole.hexdigest(), parts


def source_size(opener: Opener) -> int:
    with opener() as fh:
        return fh.seek(0, io.SEEK_END)


FILE_CHANGED = ("the file changed while it was being pushed: push it again once nothing writes "
                "to it")
NOT_PUSHED = "no new version was made"


def watch_source(opener: Opener) -> Callable[[], None]:
    """A check that raises IntegrityError if the file behind `opener` changed since now.

    A push reads its file twice (hashing, then the part PUTs): bytes rewritten in between
    would be refused by the store (every part URL signs its part's sha256) or, for a server
    that takes no part digests, found only by the registry's later hash. The file's size,
    mtime, ctime, inode and device say whether it was written to, renamed over or touched
    (ctime cannot be set back); bytes in memory have none of them and are not checked."""

    def fingerprint() -> tuple[int, ...] | None:
        with opener() as fh:
            try:
                st = os.fstat(fh.fileno())
            except (OSError, io.UnsupportedOperation):
                return None
        return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev

    before = fingerprint()

    def check() -> None:
        if before is not None and fingerprint() != before:
            raise IntegrityError(FILE_CHANGED, hint=NOT_PUSHED)

    return check


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
            raise IntegrityError(FILE_CHANGED, hint=NOT_PUSHED)
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
        self._known = by_part_number(plan.get("parts"))
        self._total, self._fetch, self._batch = total, fetch, max(1, batch)
        self._lock = threading.Lock()

    def get(self, number: int) -> dict:
        with self._lock:
            if number not in self._known and self._fetch is not None:
                wanted = [n for n in range(number, min(self._total, number + self._batch - 1) + 1)
                          if n not in self._known]
                self._known.update(by_part_number(self._fetch(wanted)))
            part = self._known.pop(number, None)  # a URL is used once: memory stays one batch
        if part is None:
            raise UnexpectedResponse(f"the server handed out no URL for part {number}")
        return part


def by_part_number(parts: Any) -> dict[int, dict]:
    """The part URLs of a server's answer (`[{part_number, url, headers}]`) by number."""
    try:
        found = {int(p["part_number"]): p for p in parts}
    except (KeyError, TypeError, ValueError):
        found = None
    if found is None or not all(isinstance(p.get("url"), str) for p in found.values()):
        raise UnexpectedResponse("the server's answer lists part URLs without a part number "
                                 "or a URL")
    return found


def part_url(parts: Any, number: int) -> dict:
    """The URL of part `number` in a server's answer."""
    part = by_part_number(parts).get(number)
    if part is None:
        raise UnexpectedResponse(f"the server handed out no URL for part {number}")
    return part


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
    total = int(plan.get("parts_total") or len(plan.get("parts") or ()))
    ranges = part_ranges(total, int(plan.get("part_size") or size or 1), size)
    urls = PartURLs(plan, total, more, batch=max(len(plan.get("parts") or ()), 1))
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


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None
