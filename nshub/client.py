"""The Python API: `Client`, and through `nshub/__init__.py` its methods as module functions.

    from nshub import Client
    hub = Client()                          # NSHUB_ENDPOINT, NSHUB_TOKEN or `nshub login`
    hub.push_file("data.bin", "alice/fashion_mnist", public=True)
    hub.pull_file("alice/fashion_mnist", "data.bin")

`token` is a string (used as the bearer: a login's ID token or a personal access token
`nshub_...`), False (anonymous, even when logged in) or None (the NSHUB_TOKEN variable, else
the credentials file of `nshub login`, refreshed automatically when its ID token is about to
expire, or of `nshub login --token`).
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from nshub import credentials as credentials_file
from nshub import settings
from nshub._http import Retry, new_session, raise_for_api_error, request_with_retries
from nshub.credentials import Credentials
from nshub.errors import (
    TOKEN_HINTS,
    IntegrityError,
    InvalidEndpoint,
    InvalidRequest,
    NotFound,
    NotLoggedIn,
    NshubError,
    Unauthorized,
)
from nshub.names import (
    ArrayName,
    check_namespace,
    parse_array_name,
    pushable_array_name,
    writable_array_name,
)
from nshub.progress import transfer_bar
from nshub.transfer import (
    Opener,
    bytes_opener,
    download,
    hash_source,
    hash_source_parts,
    path_opener,
    source_size,
    RangedDownload,
    RangesIgnored,
    upload_parts,
    verify_download,
)

# One refresh at a time per process: the credentials file is shared by every Client.
_refresh_lock = threading.Lock()

_PAGE_LIMIT = 100  # items asked per page when following next_cursor
TOKEN_PREFIX = "nshub_"  # personal access tokens
MiB = 1024 * 1024


class Client:
    def __init__(
        self,
        endpoint: str | None = None,
        token: str | bool | None = None,
        *,
        retry: Retry | None = None,
        max_workers: int | None = None,
    ):
        if token is True:
            token = None  # "use my login" is what None means
        if token is not None and not isinstance(token, (str, bool)):
            raise TypeError("token must be a string, False (anonymous) or None (your login)")
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self._token = token
        self.retry = retry or Retry()
        self._max_workers = max_workers
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()
        self._server_config: dict | None = None

    def __repr__(self) -> str:
        return f"Client(endpoint={self._endpoint or settings.endpoint()!r})"

    @property
    def endpoint(self) -> str:
        """The API root, checked: `http(s)://HOST[:PORT]`."""
        url = self._endpoint or settings.endpoint()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidEndpoint(
                f"invalid endpoint {url!r}: use http://HOST:PORT or https://HOST"
                + (f" (e.g. http://{url})" if not parts.netloc and "://" not in url else "")
            )
        return url

    @property
    def max_workers(self) -> int:
        return self._max_workers or settings.max_workers()

    @property
    def session(self) -> requests.Session:
        with self._session_lock:
            if self._session is None:
                self._session = new_session(self.max_workers)
            return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- platform -------------------------------------------------------------------------

    def config(self) -> dict:
        """The server's public settings: `{region, user_pool_id, client_id, max_upload_bytes, part_size}`."""
        return self._api("GET", "/v1/config", auth=False)

    def signup(self, username: str, password: str, email: str) -> dict:
        """Create an account; returns `{username, confirmed}`. Your username is your namespace."""
        return self._api(
            "POST",
            "/v1/auth/signup",
            json={"username": username, "password": password, "email": email},
            auth=False,
        )

    def confirm(self, username: str, code: str) -> dict:
        """Confirm a sign-up with the code sent by email."""
        return self._api(
            "POST", "/v1/auth/confirm", json={"username": username, "code": code}, auth=False
        ) or {"username": username, "confirmed": True}

    def login(self, username: str, password: str) -> dict:
        """Sign in and store the tokens in the credentials file (0600); returns `{username, namespace}`."""
        try:
            tokens = self._api(
                "POST",
                "/v1/auth/login",
                json={"username": username, "password": password},
                auth=False,
            )
        except Unauthorized as exc:
            exc.hint = "no account yet? `nshub signup USERNAME --email EMAIL` creates one"
            raise
        me = self._api("GET", "/v1/me", bearer=tokens["id_token"])
        credentials_file.save(
            Credentials.from_login(self.endpoint, me.get("username") or username, tokens)
        )
        return me

    def login_with_token(self, token: str) -> dict:
        """Store a personal access token (`nshub_...`) as this machine's login, after the
        server accepted it; returns `{username, namespace}` of its account."""
        token = (token or "").strip()
        if not token or any(c.isspace() for c in token):
            raise InvalidRequest("the token is empty or has spaces in it: paste it again",
                                 code="InvalidToken")
        try:
            me = self._api("GET", "/v1/me", bearer=token)
        except Unauthorized as exc:
            exc.hint = "check the token you pasted, or make a new one with `nshub token create NAME`"
            raise
        credentials_file.save(Credentials.from_token(self.endpoint, me["username"], token))
        return me

    def logout(self) -> bool:
        """Forget the stored tokens; True if there were any."""
        return credentials_file.delete()

    def whoami(self) -> dict:
        """`{username, namespace}` of the caller; NotLoggedIn when there is no token."""
        bearer = self._bearer()
        if bearer is None:
            self.config()  # an unreachable server is worth saying before "not logged in"
            stored = credentials_file.load()
            if stored is not None and stored.endpoint != self.endpoint:
                raise NotLoggedIn(
                    f"you are not logged in to {self.endpoint} (your login as "
                    f"{stored.username} is for {stored.endpoint})",
                    hint=f"run `nshub login USERNAME`, or set NSHUB_ENDPOINT={stored.endpoint}")
            raise NotLoggedIn(f"you are not logged in to {self.endpoint}")
        return self._api("GET", "/v1/me")

    # --- personal access tokens -------------------------------------------------------------

    def create_token(self, name: str, *, scope: str = "read", days: int | None = None) -> dict:
        """Make a personal access token for your account (needs your login, not a token).

        `scope` is "read" (pull, info, list) or "write" (also push, change, delete); the token
        expires after `days` (1-365, the server's default 90). Returns `{id, name, scopes,
        created_at, expires_at, token}`: `token` is the secret, shown this once.
        """
        if scope not in ("read", "write"):
            raise InvalidRequest(f"scope must be 'read' or 'write', not {scope!r}")
        body: dict[str, Any] = {"name": name,
                                "scopes": ["read", "write"] if scope == "write" else ["read"]}
        if days is not None:
            body["expires_in_days"] = days
        return self._api("POST", "/v1/tokens", json=body)

    def list_tokens(self) -> list[dict]:
        """Your live tokens, oldest first: `{id, name, scopes, created_at, expires_at,
        last_used_at}` each (never the secret)."""
        return self._api("GET", "/v1/tokens").get("items") or []

    def revoke_token(self, token_id: str) -> None:
        """Revoke one of your tokens by id: it is refused from the next request on."""
        if not isinstance(token_id, str) or not token_id.strip():
            raise InvalidRequest("give the id of the token (see `nshub token ls`)")
        self._api("DELETE", f"/v1/tokens/{quote(token_id.strip(), safe='')}")

    # --- arrays ---------------------------------------------------------------------------

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
        return self._pull_to_file(name, path, version=version)[0]

    def _pull_to_file(
        self, name: str, path: str | os.PathLike | None, *, version: int | None
    ) -> tuple[Path, dict]:
        array = parse_array_name(name)
        info = self._downloadable_info(name, version)
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir():
            target = target / array.name
        partial = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)

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
        if info.get("integrity") == "quarantined":
            raise IntegrityError(
                f"{info.get('full_name', name)} version {info.get('version')} is quarantined "
                f"({info.get('quarantine_reason')}): push the file again")
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

    def _upload(self, base: str, body: dict, opener: Opener, desc: str,
                headers: dict[str, str] | None = None) -> dict:
        """The upload flow of every resource: hash, plan, PUT the parts, complete (or abort).

        Large sources are hashed per part in the same pass, with a part size the server
        accepts, so every part URL signs its part's sha256 and the store refuses bad bytes."""
        part_size = self._part_size(source_size(opener))
        if part_size:
            size, sha256, part_digests = hash_source_parts(opener, part_size)
            body = {**body, "part_size": part_size, "part_sha256": part_digests}
        else:
            size, sha256 = hash_source(opener)
        body = {**body, "size": size, "sha256": sha256}
        plan = self._api("POST", base + "/uploads", json=body, headers=headers)
        if plan.get("unchanged"):
            return plan  # the newest version holds these bytes already: nothing to send
        upload = f"{base}/uploads/{quote(str(plan['upload_id']), safe='')}"

        def more(part_numbers: list[int]) -> list[dict]:
            return self._api("POST", upload + "/parts", json={"part_numbers": part_numbers},
                             headers=headers, idempotent=True)["parts"]

        def renew(part_number: int) -> dict:
            return more([part_number])[0]

        try:
            with transfer_bar(size, f"push {desc}") as bar:
                parts = upload_parts(
                    self.session,
                    plan,
                    size,
                    opener,
                    retry=self.retry,
                    workers=self.max_workers,
                    on_progress=bar.update,
                    renew=renew,
                    more=more,
                )
            return self._api("POST", upload + "/complete", json={"parts": parts},
                             idempotent=True, headers=headers)
        except BaseException:
            self._abort(upload, headers)
            raise

    def _part_size(self, size: int) -> int | None:
        """The part size to hash with, or None for a single-part upload (the server's rule:
        at least its minimum, at most `max_parts` parts, whole MiB)."""
        if self._server_config is None:
            self._server_config = self.config()
        cfg = self._server_config
        try:
            single, minimum, max_parts = (int(cfg["single_part_max_bytes"]),
                                          int(cfg["min_part_size"]), int(cfg["max_parts"]))
        except (KeyError, TypeError, ValueError):
            return None  # an older server: it chooses the parts itself
        if size <= single:
            return None
        part = max(minimum, -(-size // max_parts))
        return -(-part // MiB) * MiB if part >= MiB else part

    def _abort(self, upload: str, headers: dict[str, str] | None = None) -> None:
        """Best effort: the server also expires abandoned uploads on its own."""
        try:
            self._api("DELETE", upload, headers=headers)
        except (NshubError, requests.RequestException):
            pass

    def _download_ranges(self, array: ArrayName, info: dict, version: int | None,
                         partial: Path, fresh: bool) -> tuple[Any, dict]:
        """Parallel ranged GETs into `partial`, resumable (see transfer.RangedDownload)."""
        size = int(info["size"])
        current = {"info": info}
        pinned = info.get("version", version) if not array.legacy else version

        def refresh_url() -> str:
            current["info"] = self.info(str(array), version=pinned)
            return current["info"]["download_url"]

        lock = threading.Lock()
        with transfer_bar(size, f"pull {array.name}") as bar:
            def progress(n: int) -> None:
                with lock:
                    bar.update(n)

            job = RangedDownload(
                self.session, partial, url=info.get("download_url") or "",
                refresh_url=refresh_url, size=size, sha256=str(info.get("sha256")),
                retry=self.retry, workers=self.max_workers,
                range_size=settings.pull_range_bytes(), on_progress=progress,
                what=f"the download of {array}")
            if fresh:
                job.forget()
                partial.unlink(missing_ok=True)
            digest = job.run()
        return digest, current["info"]

    def _download(
        self,
        array: ArrayName,
        info: dict,
        version: int | None,
        sink: Any,
        offset: int,
        digest: Any,
    ) -> tuple[Any, dict]:
        size = int(info["size"])
        current = {"info": info}
        # Resume the same version even if `latest` moves meanwhile.
        pinned = info.get("version", version) if not array.legacy else version

        def refresh_url() -> str:
            current["info"] = self.info(str(array), version=pinned)
            return current["info"]["download_url"]

        with transfer_bar(size, f"pull {array.name}") as bar:
            bar.update(offset)
            digest = download(
                self.session,
                sink,
                url=info.get("download_url") or "",
                refresh_url=refresh_url,
                size=size,
                offset=offset,
                digest=digest,
                retry=self.retry,
                on_progress=bar.update,
                what=f"the download of {array}",
            )
        return digest, current["info"]

    # --- HTTP -----------------------------------------------------------------------------

    def _api(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        auth: bool = True,
        bearer: str | None = None,
        idempotent: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        headers = {**(headers or {}), "Accept": "application/json"}
        source = "argument"
        if bearer is None and auth:
            bearer, source = self._bearer_and_source()
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        response = request_with_retries(
            self.session,
            method,
            self.endpoint + path,
            retry=self.retry,
            idempotent=idempotent,
            json=json,
            params=params,
            headers=headers,
            timeout=settings.API_TIMEOUT,
        )
        with response:
            try:
                raise_for_api_error(response)
            except Unauthorized as exc:
                if bearer and bearer.startswith(TOKEN_PREFIX) and source in TOKEN_HINTS:
                    exc.hint = TOKEN_HINTS[source]  # the message names the token's problem
                elif bearer and source in ("login", "NSHUB_TOKEN"):
                    raise self._refused(exc, source) from exc
                raise
            if response.status_code == 204 or not response.content:
                return None
            return response.json()

    def _paginate(self, path: str, limit: int | None) -> list[dict]:
        items: list[dict] = []
        cursor = None
        while limit is None or len(items) < limit:
            params: dict[str, Any] = {"limit": _PAGE_LIMIT}
            if limit is not None:
                params["limit"] = min(_PAGE_LIMIT, limit - len(items))
            if cursor:
                params["cursor"] = cursor
            page = self._api("GET", path, params=params)
            items.extend(page.get("items") or [])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items if limit is None else items[:limit]

    # --- tokens ---------------------------------------------------------------------------

    def _bearer(self) -> str | None:
        """The token to send: explicit, else NSHUB_TOKEN, else the (fresh) stored login."""
        return self._bearer_and_source()[0]

    def _bearer_and_source(self) -> tuple[str | None, str]:
        """The token to send and where it came from: "argument", "NSHUB_TOKEN" or "login"."""
        if self._token is False:
            return None, "argument"
        if isinstance(self._token, str):
            return self._token, "argument"
        from_env = settings.env_token()
        if from_env:
            return from_env, "NSHUB_TOKEN"
        stored = self._stored_credentials()
        return (stored.bearer if stored else None), "login"

    def _refused(self, exc: Unauthorized, source: str) -> Unauthorized:
        """A 401 for a token the user did not pass by hand: say which one, and what to do
        (a dev stack forgets every account when it restarts, so this is a common sight)."""
        if source == "NSHUB_TOKEN":
            return Unauthorized(
                f"the server refuses the token in NSHUB_TOKEN: {exc.message}", code=exc.code,
                status=exc.status, hint="set NSHUB_TOKEN to a valid token, or unset it")
        stored = credentials_file.load()
        user = stored.username if stored else "USERNAME"
        return Unauthorized(
            f"{self.endpoint} no longer accepts your login as {user} (the server restarted, or "
            f"the account or session ended): run `nshub login {user}` again", code=exc.code,
            status=exc.status,
            hint="`nshub logout` forgets it, so public resources can be read anonymously")

    def _stored_credentials(self) -> Credentials | None:
        stored = credentials_file.load()
        if stored is None or stored.endpoint != self.endpoint:
            return None  # never send a token to a server it was not issued by
        if not stored.expires_soon():
            return stored
        with _refresh_lock:
            stored = credentials_file.load()  # another thread may have refreshed already
            if stored is None or stored.endpoint != self.endpoint:
                return None
            if stored.expires_soon():
                stored = self._refresh(stored)
        return stored

    def _refresh(self, stored: Credentials) -> Credentials:
        if not stored.refresh_token:
            raise NotLoggedIn(f"your session at {self.endpoint} has expired: log in again")
        try:
            tokens = self._api(
                "POST", "/v1/auth/refresh", json={"refresh_token": stored.refresh_token}, auth=False
            )
        except Unauthorized as exc:
            raise self._refused(exc, "login") from exc
        refreshed = stored.refreshed(tokens)
        credentials_file.save(refreshed)
        return refreshed


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
