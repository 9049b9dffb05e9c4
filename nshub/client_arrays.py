"""The array methods of `nshub.Client`: push, pull, list and change DocumentArrays (any
bytes) by `namespace/name`, or a legacy array by its bare name.

`ArrayMethods` is a part of `Client` (nshub/client.py), not a class to use alone: it calls
the client's `_api`, `_paginate`, `_bearer`, `_upload` and `_stream_download`.
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nshub import credentials as credentials_file
from nshub import settings
from nshub.download import (
    RangedDownload,
    RangesIgnored,
    download_url_of,
    verify_download,
    writing_alone,
)
from nshub.errors import IntegrityError, InvalidRequest, NotFound, NotLoggedIn
from nshub.names import (
    ArrayName,
    check_namespace,
    parse_array_name,
    pushable_array_name,
    writable_array_name,
)
from nshub.progress import transfer_bar
from nshub.upload import Opener, bytes_opener, path_opener


class ArrayMethods:
    def push_file(
        self,
        path: str | os.PathLike,
        name: str,
        *,
        public: bool | None = None,
        metadata: dict | None = None,
    ) -> dict:
        """Push a file as a new version of the array `name` (`namespace/name`); returns its info.

        `public=None` keeps the current visibility (private for a new array).
        """
        target = self._push_target(name)
        path = Path(path)
        if not path.is_file():
            raise InvalidRequest(f"{str(path)!r} is not a file")
        return self._push(path_opener(path), target, public, metadata, desc=path.name)

    def push_bytes(
        self,
        data: bytes | bytearray | memoryview,
        name: str,
        *,
        public: bool | None = None,
        metadata: dict | None = None,
    ) -> dict:
        """Push bytes held in memory as a new version of `name`; returns its info."""
        target = self._push_target(name)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes-like")
        return self._push(bytes_opener(data), target, public, metadata, desc=target.name)

    def pull_file(
        self,
        name: str,
        path: str | os.PathLike | None = None,
        *,
        version: int | None = None,
    ) -> Path:
        """Download an array to `path` (a file, or a folder to put `<name>` in; default: here).

        The bytes land in `<path>.part`, are checked against the declared size and sha256, and
        only then renamed to `path`. An interrupted pull resumes where it stopped.
        """
        return self.pull_to_file(name, path, version=version)[0]

    def pull_to_file(
        self,
        name: str,
        path: str | os.PathLike | None = None,
        *,
        version: int | None = None,
    ) -> tuple[Path, dict]:
        """`pull_file`, returning also the info of the version pulled: `(path, info)`."""
        array = parse_array_name(name)
        info = self._downloadable_info(name, version)
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir():
            target = target / array.name
        partial = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        with writing_alone(partial, target):
            return self._pull_into(array, info, version, partial, target)

    def _pull_into(self, array: ArrayName, info: dict, version: int | None, partial: Path,
                   target: Path) -> tuple[Path, dict]:
        """Download into `partial` (resuming what it holds), verify, rename it to `target`;
        returns `(target, info of the version pulled)`."""
        ranged = int(info["size"]) > settings.pull_range_bytes()
        for fresh in (False, True):
            if ranged:
                try:
                    digest, info = self._download_ranges(array, info, version, partial, fresh)
                except RangesIgnored:
                    ranged = False  # a store without ranged GETs: one stream
                    fresh = True
            if not ranged:
                offset, digest = _resume_state(partial, int(info["size"]), fresh)
                with open(partial, "ab") as sink:
                    digest, info = self._download(array, info, version, sink, offset, digest)
            try:
                verify_download(partial.stat().st_size, digest, info, str(array))
                break
            except IntegrityError:
                partial.unlink(missing_ok=True)
                partial.with_name(partial.name + ".ranges").unlink(missing_ok=True)
                if fresh:
                    raise
                # the bytes resumed from disk were stale (another version?): once more, clean
        partial.with_name(partial.name + ".ranges").unlink(missing_ok=True)
        os.replace(partial, target)
        return target, info

    def pull_bytes(self, name: str, *, version: int | None = None) -> bytes:
        """Download an array into memory, checked against its declared size and sha256."""
        array = parse_array_name(name)
        info = self._downloadable_info(name, version)
        sink = io.BytesIO()
        digest, info = self._download(array, info, version, sink, 0, hashlib.sha256())
        verify_download(sink.tell(), digest, info, str(array))
        return sink.getvalue()

    def info(self, name: str, *, version: int | None = None) -> dict:
        """The info of an array (latest version unless `version`), with a fresh `download_url`."""
        array = parse_array_name(name)
        params = {"version": int(version)} if version is not None else None
        try:
            return self._api("GET", _array_path(array), params=params)
        except NotFound as exc:
            if params:  # the array may exist without that version
                exc.hint = (f"`nshub versions {array}` lists its versions; private arrays of "
                            "others are invisible")
            raise

    def _downloadable_info(self, name: str, version: int | None) -> dict:
        """The info to pull from: a quarantined version (the owner still sees it) has no bytes
        to give."""
        info = self.info(name, version=version)
        download_url_of(info, name)
        return info

    def list(self, namespace: str, *, limit: int | None = None) -> list[dict]:
        """Arrays of a namespace (all of them, following pages; at most `limit`)."""
        ns = check_namespace(namespace)
        return self._paginate(f"/v1/arrays/{quote(ns)}", limit)

    def versions(self, name: str, *, limit: int | None = None) -> list[dict]:
        """Versions of an array, as the server orders them."""
        array = parse_array_name(name)
        if array.legacy:
            info = self.info(name)  # a legacy array has the one version it was frozen with
            return [{k: v for k, v in info.items() if not k.startswith("download_")}]
        return self._paginate(_array_path(array) + "/versions", limit)

    def set_visibility(self, name: str, visibility: str) -> dict:
        """Make an array `public` or `private`; returns its info."""
        if visibility not in ("public", "private"):
            raise InvalidRequest(f"visibility must be 'public' or 'private', not {visibility!r}")
        array = writable_array_name(name)
        return self._api("PATCH", _array_path(array), json={"visibility": visibility})

    def set_metadata(self, name: str, metadata: dict) -> dict:
        """Replace the metadata of an array; returns its info."""
        if not isinstance(metadata, dict):
            raise InvalidRequest("metadata must be a JSON object (a dict)")
        array = writable_array_name(name)
        return self._api("PATCH", _array_path(array), json={"metadata": metadata})

    def delete(self, name: str) -> None:
        """Delete an array and all its versions (the bytes go shortly after)."""
        array = writable_array_name(name)
        self._api("DELETE", _array_path(array))

    # --- transfers ------------------------------------------------------------------------

    def _push_target(self, name: str) -> ArrayName:
        stored = credentials_file.load()
        return pushable_array_name(name, stored.username if stored else None)

    def _push(
        self,
        opener: Opener,
        array: ArrayName,
        public: bool | None,
        metadata: dict | None,
        desc: str,
    ) -> dict:
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidRequest("metadata must be a JSON object (a dict)")
        if self._bearer() is None:
            raise NotLoggedIn(f"pushing needs a login: you are not logged in to {self.endpoint}")
        body: dict[str, Any] = {}
        if public is not None:
            body["visibility"] = "public" if public else "private"
        if metadata is not None:
            body["metadata"] = metadata
        return self._upload(_array_path(array), body, opener, desc)

    def _download_ranges(self, array: ArrayName, info: dict, version: int | None,
                         partial: Path, fresh: bool) -> tuple[Any, dict]:
        """Parallel ranged GETs into `partial`, resumable (see download.RangedDownload)."""
        size = int(info["size"])
        pinned = _PinnedVersion(self, array, info, version)
        lock = threading.Lock()
        with transfer_bar(size, f"pull {array.name}") as bar:
            def progress(n: int) -> None:
                with lock:
                    bar.update(n)

            job = RangedDownload(
                self.session, partial, url=info["download_url"],
                refresh_url=pinned.refresh_url, size=size, sha256=str(info.get("sha256")),
                retry=self.retry, workers=self.max_workers,
                range_size=settings.pull_range_bytes(), on_progress=progress,
                what=f"the download of {array}")
            if fresh:
                job.forget()
                partial.unlink(missing_ok=True)
            digest = job.run()
        return digest, pinned.info

    def _download(self, array: ArrayName, info: dict, version: int | None, sink: Any,
                  offset: int, digest: Any) -> tuple[Any, dict]:
        """One GET stream into `sink`, which holds `offset` bytes hashed into `digest`."""
        pinned = _PinnedVersion(self, array, info, version)
        digest = self._stream_download(
            sink, url=info["download_url"], refresh_url=pinned.refresh_url,
            size=int(info["size"]), offset=offset, digest=digest, label=f"pull {array.name}",
            what=f"the download of {array}")
        return digest, pinned.info


class _PinnedVersion:
    """The info of the array version being pulled. An expired download URL is renewed for
    that same version, even if `latest` moves meanwhile."""

    def __init__(self, client: Any, array: ArrayName, info: dict, version: int | None):
        self.client, self.array, self.info = client, array, info
        self.version = info.get("version", version) if not array.legacy else version

    def refresh_url(self) -> str:
        """A fresh URL; raises IntegrityError if the version was quarantined meanwhile."""
        self.info = self.client._downloadable_info(str(self.array), self.version)
        return self.info["download_url"]


def _array_path(array: ArrayName) -> str:
    if array.legacy:
        return f"/v1/legacy/arrays/{quote(array.name)}"
    return f"/v1/arrays/{quote(array.namespace or '')}/{quote(array.name)}"


def _resume_state(partial: Path, size: int, fresh: bool) -> tuple[int, Any]:
    """How much of `partial` a pull can keep, and the digest of those bytes."""
    digest = hashlib.sha256()
    if fresh or not partial.exists() or partial.stat().st_size > size:
        partial.unlink(missing_ok=True)
        return 0, digest
    offset = 0
    with open(partial, "rb") as fh:
        while chunk := fh.read(settings.CHUNK_SIZE):
            digest.update(chunk)
            offset += len(chunk)
    return offset, digest
