"""Pulling bytes from presigned URLs, in bounded memory.

`download` streams an object into a sink in CHUNK_SIZE pieces, hashed on the way;
`RangedDownload` fetches it as parallel ranged GETs written in place, resumable. Both read
through `fetch_range`: a dropped connection resumes with `Range` from where it stopped, an
expired URL (401/403) is replaced by a fresh one, and transient failures wait as `Backoff`
says (only consecutive failures without progress count). The caller checks size and sha256
(`verify_download`) before the file is renamed into place.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import requests
import urllib3

from nshub import settings
from nshub._http import (
    RETRY_STATUSES,
    TRANSIENT_ERRORS,
    Backoff,
    Retry,
    describe_error,
    raise_for_storage_error,
    shown_cause,
)
from nshub.errors import Conflict, IntegrityError, ServerUnreachable, UnexpectedResponse


def download_url_of(info: dict, shown: str) -> str:
    """The download URL of the version `info` describes (`shown`: how the user named it). A
    quarantined version (its owner still sees it) has no bytes to give."""
    version = info.get("version")
    if info.get("integrity") == "quarantined":
        raise IntegrityError(
            f"{info.get('full_name', shown)} version {version} is quarantined "
            f"({info.get('quarantine_reason')}): push it again")
    url = info.get("download_url")
    if not isinstance(url, str) or not url:
        raise UnexpectedResponse(f"the server gave no download URL for {shown} version {version}")
    return url


class RangesIgnored(Exception):
    """The store answered a ranged GET with the whole object: download in one stream."""


class _Cancelled(Exception):
    """Another range failed: stop fetching this one."""


class ObjectURL:
    """The presigned URL of the object being pulled, shared by the threads of one download."""

    def __init__(self, url: str, refresh: Callable[[], str]):
        self.url, self._refresh = url, refresh
        self._lock = threading.Lock()

    def renew(self, stale: str) -> None:
        with self._lock:
            if self.url == stale:  # else another thread renewed it already
                self.url = self._refresh()


def fetch_range(
    session: requests.Session,
    source: ObjectURL,
    start: int,
    end: int,
    *,
    open_ended: bool,
    retry: Retry,
    write: Callable[[int, bytes], None],
    unranged: Callable[[int], int],
    what: str,
    check: Callable[[], None] | None = None,
) -> None:
    """GET bytes [start, end) of an object, handing each chunk to `write(position, chunk)`.

    `open_ended`: the range runs to the object's end (no `Range` from 0, `bytes=N-` after),
    else `bytes=start-(end-1)`. An answer that is not the range asked for (the whole object,
    or 416 to an open range) calls `unranged(status)`, which raises or returns the position to
    go on from (0: the whole object, read from this answer; after a 416, a new request).
    `check()` runs before each request (a cancelled download raises there)."""
    position, refreshes, backoff = start, 0, Backoff(retry)

    def transient(exc: Exception | None, retry_after: str | None = None) -> None:
        wait = backoff.failed(retry_after)
        if wait is None:
            raise ServerUnreachable(f"{what} keeps failing: "
                                    f"{describe_error(exc) if exc else 'the connection dropped'}"
                                    ) from shown_cause(exc)
        backoff.sleep(wait)

    while position < end:
        if check is not None:
            check()
        url = source.url
        # identity: the bytes hashed must be the stored bytes, not a decoded form of them
        headers = {"Accept-Encoding": "identity"}
        if not open_ended:
            headers["Range"] = f"bytes={position}-{end - 1}"
        elif position:
            headers["Range"] = f"bytes={position}-"
        try:
            response = session.get(url, headers=headers, stream=True,
                                   timeout=settings.TRANSFER_TIMEOUT)
        except TRANSIENT_ERRORS as exc:
            transient(exc)
            continue
        with response:
            status = response.status_code
            if status in (401, 403) and refreshes < 3:
                refreshes += 1  # the presigned URL expired while we were resuming
                source.renew(url)
                continue
            if status in RETRY_STATUSES:
                transient(None, response.headers.get("Retry-After"))
                continue
            if status == 416 and open_ended:
                position = unranged(status)  # what we hold is longer than the object
                continue
            raise_for_storage_error(response, what)
            if "Range" in headers and (status != 206 or not _range_starts_at(response, position)):
                position = unranged(status)
            progressed = False
            try:
                for chunk in _body_chunks(response):
                    if position + len(chunk) > end:
                        raise IntegrityError(f"{what}: the store sent more than the bytes asked "
                                             f"for ({end - start} from {start})")
                    write(position, chunk)
                    position += len(chunk)
                    progressed = True
            except TRANSIENT_ERRORS as exc:
                if progressed:
                    backoff.progressed()
                transient(exc)
                continue
            if position < end:
                if progressed:
                    backoff.progressed()
                transient(None)


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

    `sink` already holds bytes [0, offset) and `digest` has hashed them. A server that
    ignores `Range` makes the download start over.
    """
    state = {"held": offset, "digest": digest}

    def write(position: int, chunk: bytes) -> None:
        sink.write(chunk)
        state["digest"].update(chunk)
        state["held"] += len(chunk)
        on_progress(len(chunk))

    def restart(status: int) -> int:
        sink.seek(0)
        sink.truncate(0)
        on_progress(-state["held"])
        state["held"], state["digest"] = 0, hashlib.sha256()
        return 0

    fetch_range(session, ObjectURL(url, refresh_url), offset, size, open_ended=True,
                retry=retry, write=write, unranged=restart, what=what)
    return state["digest"]


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


@contextlib.contextmanager
def writing_alone(partial: Path, target: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<partial>.lock` while one pull writes `partial` (and its
    `.ranges`) and renames it to `target`: a second pull to the same path would truncate or
    keep writing the file the first one verifies. It fails at once with one line; the lock
    file goes when the pull ends."""
    lock_path = partial.with_name(partial.name + ".lock")
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Conflict(f"another pull is writing {target}: wait for it or choose another "
                           "path") from None
        except OSError:  # a filesystem without locks (ENOSYS, ENOLCK, EOPNOTSUPP): pull unlocked
            os.close(fd)
            lock_path.unlink(missing_ok=True)
            yield
            return
        # The pull before ours may have removed the lock file after we opened it: hold the
        # one that is at the path, or two pulls would each hold a lock of their own.
        try:
            held = os.fstat(fd)
            current = os.stat(lock_path)
            if (held.st_ino, held.st_dev) == (current.st_ino, current.st_dev):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)  # while still held: no one locks a file on its way out
        os.close(fd)


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


class RangedDownload:
    """Download an object into a file as parallel ranged GETs, each written in place.

    The file is sized first; `workers` threads each GET one `range_size` window at a time
    and write its bytes at their offset as they arrive (one CHUNK_SIZE buffer per thread), so
    memory does not grow with the object. The caller's thread hashes the file in order, each
    range as soon as it and all before it are complete (read back from the page cache), so
    the digest is ready when the last range lands. Progress is kept in `<file>.ranges`
    (which ranges are complete, for which sha256): an interrupted pull resumes with the
    ranges it lacks, and hashes the ones it kept from the file. A store that ignores ranges
    raises RangesIgnored.
    """

    def __init__(self, session: requests.Session, path: Any, *, url: str,
                 refresh_url: Callable[[], str], size: int, sha256: str, retry: Retry,
                 workers: int, range_size: int, on_progress: Callable[[int], None], what: str):
        self.session, self.path, self.source = session, Path(path), ObjectURL(url, refresh_url)
        self.size, self.sha256 = size, sha256
        self.retry, self.workers, self.range_size = retry, max(1, workers), range_size
        self.on_progress, self.what = on_progress, what
        self.state_path = self.path.with_name(self.path.name + ".ranges")
        self.count = -(-size // range_size)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._done: set[int] = set()
        self._failed: BaseException | None = None

    # -- state

    def _load_state(self) -> None:
        """The ranges an earlier pull completed; a state file that is missing, stale or
        unreadable (corrupt, hand-edited) means starting over."""
        done: set[int] | None = None
        try:
            state = json.loads(self.state_path.read_text())
            if state.get("sha256") == self.sha256 and state.get("size") == self.size \
                    and state.get("range_size") == self.range_size \
                    and self.path.exists() and self.path.stat().st_size == self.size:
                listed = state.get("done", [])
                done = {int(i) for i in listed} if isinstance(listed, list) else None
        except (OSError, ValueError, AttributeError, TypeError):
            done = None
        if done is not None and all(0 <= i < self.count for i in done):
            self._done = done
        else:
            self._done = set()
            with open(self.path, "wb") as fh:
                fh.truncate(self.size)

    def _save_state(self) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"sha256": self.sha256, "size": self.size,
                                   "range_size": self.range_size, "done": sorted(self._done)}))
        os.replace(tmp, self.state_path)

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
        fd = os.open(self.path, os.O_RDWR)
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
            os.close(fd)
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
                chunk = os.pread(fd, min(settings.CHUNK_SIZE, end - start), start)
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

        def write(position: int, chunk: bytes) -> None:
            os.pwrite(fd, chunk, position)
            self.on_progress(len(chunk))

        def ignored(status: int) -> int:
            raise RangesIgnored()

        def check() -> None:
            with self._lock:
                if self._failed is not None:
                    raise _Cancelled()

        fetch_range(self.session, self.source, start, start + self._length(index),
                    open_ended=False, retry=self.retry, write=write, unranged=ignored,
                    what=self.what, check=check)
