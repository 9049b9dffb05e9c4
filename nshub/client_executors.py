"""The executor methods of `nshub.Client`: push a folder, pull it back by URI, list and change
executors (what they do, and the cache they pull into: nshub/executors.py).

`ExecutorMethods` is a part of `Client` (nshub/client.py), not a class to use alone: it calls
the client's `_api`, `_paginate`, `_bearer_and_source`, `_upload`, `_stream_download` and
`_server_setting`.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nshub import credentials as credentials_file
from nshub.errors import Conflict, InvalidRequest, NotFound, NotLoggedIn
from nshub.executors import (
    FAILED_STATUSES,
    READY,
    SECRET_HEADER,
    ImageNotReady,
    cache_root,
    cached_version,
    executor_name,
    install_package,
    resolve,
    resolve_writable,
    source_uri,
)
from nshub.download import download_url_of, verify_download
from nshub.names import check_name, check_namespace, check_tag
from nshub.packaging import MAX_UNPACKED_BYTES, check_executor_folder, pack_executor_file
from nshub.upload import path_opener
from nshub.uri import ExecutorRef


class ExecutorMethods:
    # --- push -----------------------------------------------------------------------------

    def push_executor(
        self,
        folder: str | os.PathLike,
        *,
        name: str | None = None,
        public: bool | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
        protected_tags: list[str] | tuple[str, ...] | None = None,
        metadata: dict | None = None,
        legacy: str | bool | None = None,
        secret: str | None = None,
    ) -> dict:
        """Push an executor folder as a new version; returns its info.

        Into your own namespace, or with `legacy=NAME` (True: the derived name) through the legacy
        routes, authorized by `secret` (or your login, if you own it). `public=None` keeps the
        current visibility (private for a new executor). The new version gets `tags` and
        `protected_tags`, and is `latest` by being the newest.
        """
        folder = Path(folder)
        config = check_executor_folder(folder)
        if legacy is True:
            legacy = executor_name(folder, name, config=config)
        executor = check_name(legacy) if legacy else executor_name(folder, name, config=config)
        if secret is not None and not legacy:
            raise InvalidRequest("a secret goes with a legacy push: pass legacy=NAME (--legacy NAME)")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidRequest("metadata must be a JSON object (a dict)")
        tag_list = [check_tag(t) for t in (tags or ())]
        protected = [check_tag(t) for t in (protected_tags or ())]
        all_tags = sorted({*tag_list, *protected})

        headers = _secret_headers(secret)
        if legacy:
            if not secret and self._bearer() is None:
                raise NotLoggedIn(
                    f"pushing legacy executor {executor} needs its secret (or the owner's login)"
                )
            base = _legacy_path(executor)
        else:
            base = _path(self._my_namespace(), executor)

        zip_path = pack_executor_file(folder, checked=True)  # the upload hashes it (per part too)
        try:
            body: dict[str, Any] = {"tags": all_tags} if all_tags else {}
            if protected:
                body["protected_tags"] = sorted(set(protected))
            if public is not None:
                body["visibility"] = "public" if public else "private"
            if metadata is not None:
                body["metadata"] = metadata
            return self._upload(base, body, path_opener(zip_path), executor, headers)
        finally:
            os.unlink(zip_path)

    def _my_namespace(self) -> str:
        """The caller's namespace: the stored login's username, else asked with /v1/me."""
        bearer, source = self._bearer_and_source()
        if bearer is None:
            raise NotLoggedIn(f"pushing needs a login: you are not logged in to {self.endpoint}")
        if source == "login":
            stored = credentials_file.load()
            if stored is not None and stored.endpoint == self.endpoint and stored.username:
                return check_namespace(stored.username)
        return check_namespace(self.whoami()["namespace"])

    # --- pull -----------------------------------------------------------------------------

    def pull_executor(self, uri: str | ExecutorRef) -> Path | str:
        """A source URI gives the folder of the package (with config.yml), from the cache when
        it holds that version; a docker URI gives the image reference (ImageNotReady until
        built)."""
        ref = resolve(uri)
        if ref.docker:
            return self.executor_image(ref)["image"]
        return self.pull_executor_source(ref)[0]

    def pull_executor_source(self, uri: str | ExecutorRef) -> tuple[Path, dict, bool]:
        """(folder, info, from_cache) of the source package a URI names."""
        ref = resolve(uri)
        info = self._executor(ref)
        namespace = check_namespace(info.get("namespace"))
        name = check_name(info.get("name"))
        version = int(info["version"])
        sha256 = str(info["sha256"]).lower()
        parent = cache_root() / namespace / name.lower()
        cached = cached_version(parent, version, sha256)
        if cached is not None:
            return cached, info, True

        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".v{version}-", suffix=".zip", dir=parent)
        try:
            with os.fdopen(fd, "w+b") as sink:
                self._download_package(ref, info, sink)
            dest = install_package(Path(tmp), parent, version, sha256,
                                   max_unpacked_bytes=self._max_unpacked_bytes())
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dest, info, False

    def _max_unpacked_bytes(self) -> int:
        """The registry's limit on what a package unpacks to (`GET /v1/config`), so a pull
        refuses what a push would; an older registry does not say: the default."""
        limit = self._server_setting("max_unpacked_executor_bytes")
        return limit if limit is not None else MAX_UNPACKED_BYTES

    def _executor(self, ref: ExecutorRef, *, version: int | None = None) -> dict:
        """Info (with a download URL) of the version a reference means."""
        params: dict[str, Any] = {}
        if ref.legacy:
            if ref.tag:
                params["tag"] = ref.tag
            return self._api("GET", _legacy_path(ref.name), params=params or None,
                             headers=_secret_headers(ref.secret))
        if version is not None:
            params["version"] = version
        elif ref.tag:
            params["tag"] = ref.tag
        try:
            return self._api("GET", _path(ref.namespace or "", ref.name), params=params or None)
        except NotFound as exc:
            if params:  # the executor may exist without that tag or version
                exc.hint = (f"`nshub hub versions {ref.full_name}` lists its versions and tags; "
                            "private executors of others are invisible")
            raise

    def _download_package(self, ref: ExecutorRef, info: dict, sink: Any) -> None:
        expected = str(info["sha256"]).lower()
        what = f"the download of {info.get('full_name') or ref.full_name} v{info['version']}"

        def refresh_url() -> str:  # the presigned URL expired: ask again, for the same bytes
            fresh = self._executor(ref, version=int(info["version"]))
            if str(fresh.get("sha256", "")).lower() != expected:
                raise Conflict(f"{ref.canonical(redact_secret=True)} changed during the pull: "
                               "pull again")
            return download_url_of(fresh, ref.canonical(redact_secret=True))

        digest = self._stream_download(
            sink, url=download_url_of(info, ref.canonical(redact_secret=True)),
            refresh_url=refresh_url,
            size=int(info["size"]), offset=0, digest=hashlib.sha256(),
            label=f"pull {info.get('name') or ref.name}", what=what)
        verify_download(sink.tell(), digest, info, what)

    # --- images ---------------------------------------------------------------------------

    def executor_image(self, uri: str | ExecutorRef) -> dict:
        """The info of the version a URI names, once its container image is ready.

        Raises ImageNotReady, with what to do instead, while the image is pending or building,
        when its build failed, and when the registry builds no images.
        """
        ref = resolve(uri)
        info = self._executor(ref)
        where = f"{info.get('full_name') or ref.full_name} v{info.get('version')}"
        status = str(info.get("image_status") or "pending")
        source = source_uri(ref)
        if not info.get("image"):
            raise ImageNotReady(
                f"{where} has no container image on this registry: pull {source} to run from "
                "source"
            )
        if status in FAILED_STATUSES:
            raise ImageNotReady(
                f"the image build for {where} failed (status: {status}): pull {source} to run "
                "from source, or push again"
            )
        if status != READY:
            raise ImageNotReady(
                f"the image for {where} is still building (status: {status}): try again in a "
                f"few minutes, or pull {source} to run from source"
            )
        return info

    def executor_pull_credentials(self, uri: str | ExecutorRef) -> dict:
        """Short-lived registry credentials for the image of an executor:
        `{registry, username, password, expires_at, image, repository}`."""
        ref = resolve(uri)
        params = {"tag": ref.tag} if ref.tag else None
        if ref.legacy:
            path, headers = _legacy_path(ref.name), _secret_headers(ref.secret)
        else:
            path, headers = _path(ref.namespace or "", ref.name), None
        return self._api("POST", path + "/pull-credentials", params=params, headers=headers)

    # --- management -----------------------------------------------------------------------

    def executor_info(self, target: str | ExecutorRef) -> dict:
        """Info of an executor (the version its tag names, else the latest) with a download
        URL."""
        return self._executor(resolve(target))

    def list_executors(self, namespace: str, *, limit: int | None = None) -> list[dict]:
        """Executors of a namespace that you can see (all pages; at most `limit`)."""
        ns = check_namespace(namespace)
        return self._paginate(f"/v1/executors/{quote(ns)}", limit)

    def list_executor_versions(self, target: str | ExecutorRef, *,
                               limit: int | None = None) -> list[dict]:
        """Versions of an executor, newest first."""
        ref = resolve(target)
        namespace, name = ref.namespace, ref.name
        if ref.legacy:
            found = self._executor(ref)
            namespace, name = found["namespace"], found["name"]
        return self._paginate(_path(namespace or "", name) + "/versions", limit)

    def set_executor_visibility(self, target: str | ExecutorRef, visibility: str) -> dict:
        """Make an executor `public` or `private`; returns its info."""
        if visibility not in ("public", "private"):
            raise InvalidRequest(f"visibility must be 'public' or 'private', not {visibility!r}")
        ref = resolve_writable(target)
        return self._api("PATCH", _path(ref.namespace or "", ref.name),
                         json={"visibility": visibility})

    def delete_executor(self, target: str | ExecutorRef) -> None:
        """Delete an executor, all its versions and tags."""
        ref = resolve_writable(target)
        self._api("DELETE", _path(ref.namespace or "", ref.name))


def _path(namespace: str, name: str) -> str:
    return f"/v1/executors/{quote(namespace)}/{quote(name)}"


def _legacy_path(name: str) -> str:
    return f"/v1/legacy/executors/{quote(name)}"


def _secret_headers(secret: str | None) -> dict[str, str] | None:
    return {SECRET_HEADER: secret} if secret else None
