"""The Python API: `Client`, one class whose public methods are every operation (arrays,
executors, accounts and tokens); `nshub/__init__.py` offers the common ones as module functions.

    from nshub import Client
    hub = Client()                          # NSHUB_ENDPOINT, NSHUB_TOKEN or `nshub login`
    hub.push_file("data.bin", "alice/fashion_mnist", public=True)
    hub.pull_file("alice/fashion_mnist", "data.bin")
    hub.push_executor("MyExecutor/", public=True, tags=["v1"])
    folder = hub.pull_executor("jinaai://alice/MyExecutor:v1")     # a folder with config.yml

`token` is a string (used as the bearer: a login's ID token or a personal access token
`nshub_...`), False (anonymous, even when logged in) or None (the NSHUB_TOKEN variable, else
the credentials file of `nshub login`, refreshed automatically when its ID token is about to
expire, or of `nshub login --token`).

The methods are grouped by what they act on: accounts and tokens (client_accounts.py),
arrays (client_arrays.py), executors (client_executors.py). This module holds what they
share: the session, API calls (bearer, retries, typed errors), pagination, and the upload
and download flows.
"""
from __future__ import annotations

import threading
from typing import Any, IO
from urllib.parse import quote, urlsplit

import requests

from nshub import credentials as credentials_file
from nshub import digests, settings
from nshub._http import (
    Retry,
    new_session,
    raise_for_api_error,
    request_with_retries,
    without_query,
)
from nshub.client_accounts import AccountMethods
from nshub.client_arrays import ArrayMethods
from nshub.client_executors import ExecutorMethods
from nshub.credentials import Credentials
from nshub.download import download
from nshub.errors import (
    TOKEN_HINTS,
    InvalidEndpoint,
    NotLoggedIn,
    NshubError,
    Unauthorized,
    UnexpectedResponse,
)
from nshub.progress import transfer_bar
from nshub.upload import (
    Opener,
    hash_source,
    hash_source_parts,
    part_url,
    source_size,
    upload_parts,
    watch_source,
)

# One refresh at a time per process: the credentials file is shared by every Client.
_refresh_lock = threading.Lock()

_PAGE_LIMIT = 100  # items asked per page when following next_cursor
TOKEN_PREFIX = "nshub_"  # personal access tokens
MiB = 1024 * 1024


class Client(AccountMethods, ArrayMethods, ExecutorMethods):
    """The nshub API, every operation a method.

    Accounts and tokens: signup, confirm, login, login_with_token, logout, whoami,
    create_token, list_tokens, revoke_token. Arrays: push_file, push_bytes, pull_file,
    pull_to_file, pull_bytes, info, list, versions, set_visibility, set_metadata, delete.
    Executors: push_executor, pull_executor, pull_executor_source, executor_image,
    executor_pull_credentials, executor_info, list_executors, list_executor_versions,
    set_executor_visibility, delete_executor. The server: config.
    """

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

    # --- transfers ------------------------------------------------------------------------

    def _upload(self, base: str, body: dict, opener: Opener, desc: str,
                headers: dict[str, str] | None = None) -> dict:
        """The upload flow of every resource: hash, plan, PUT the parts, complete (or abort).

        Large sources are hashed whole and per part from one read, with a part size the
        server accepts, so every part URL signs its part's sha256 and the store refuses bad
        bytes. A file that changed between the hashing and the last PUT is not completed."""
        unchanged = watch_source(opener)
        part_size = self._part_size(source_size(opener))
        path = getattr(opener, "path", None)  # a file's digests may be known (nshub/digests.py)
        seen = digests.fingerprint(path) if path is not None else None
        known = digests.lookup(path, part_size, seen) if path is not None else None
        if known is not None:
            size, sha256, part_digests = known
        elif part_size:
            size, sha256, part_digests = hash_source_parts(opener, part_size)
        else:
            (size, sha256), part_digests = hash_source(opener), None
        unchanged()
        if known is None and path is not None:
            digests.remember(path, part_size, seen, (size, sha256, part_digests))
        if part_size:
            body = {**body, "part_size": part_size, "part_sha256": part_digests}
        body = {**body, "size": size, "sha256": sha256}
        plan = self._api("POST", base + "/uploads", json=body, headers=headers)
        if plan.get("unchanged"):
            return plan  # the newest version holds these bytes already: nothing to send
        upload = f"{base}/uploads/{quote(str(plan['upload_id']), safe='')}"

        def more(part_numbers: list[int]) -> Any:
            answer = self._api("POST", upload + "/parts", json={"part_numbers": part_numbers},
                               headers=headers, idempotent=True)
            return answer.get("parts") if isinstance(answer, dict) else None

        def renew(part_number: int) -> dict:
            return part_url(more([part_number]), part_number)

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
            unchanged()
            return self._api("POST", upload + "/complete", json={"parts": parts},
                             idempotent=True, headers=headers)
        except BaseException:
            self._abort(upload, headers)
            raise

    def _server_setting(self, name: str) -> int | None:
        """A number from the registry's `config()` (asked once per client), None when it does
        not say (an older registry)."""
        if self._server_config is None:
            self._server_config = self.config()
        try:
            return int(self._server_config[name])
        except (KeyError, TypeError, ValueError):
            return None

    def _part_size(self, size: int) -> int | None:
        """The part size to hash with, or None for a single-part upload (the server's rule:
        at least its minimum, at most `max_parts` parts, whole MiB)."""
        single, minimum, max_parts = (self._server_setting("single_part_max_bytes"),
                                      self._server_setting("min_part_size"),
                                      self._server_setting("max_parts"))
        if single is None or minimum is None or not max_parts:
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

    def _stream_download(self, sink: IO[bytes], *, url: str, refresh_url: Any, size: int,
                         offset: int, digest: Any, label: str, what: str) -> Any:
        """One GET stream into `sink` (which holds `offset` bytes hashed into `digest`), with
        a progress bar; returns the digest of everything in `sink`."""
        with transfer_bar(size, label) as bar:
            bar.update(offset)
            return download(self.session, sink, url=url, refresh_url=refresh_url, size=size,
                            offset=offset, digest=digest, retry=self.retry,
                            on_progress=bar.update, what=what)

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
            # requests strips Authorization on a redirect to another host, not our own headers
            # (X-Executor-Secret): the API never redirects, so nothing follows one
            allow_redirects=False,
        )
        with response:
            if response.is_redirect:
                raise InvalidEndpoint(
                    f"{method} {path} was redirected (HTTP {response.status_code}) to "
                    f"{without_query(response.headers.get('Location') or '?')}: nshub does not "
                    f"follow redirects with your credentials; if that is the API, set "
                    f"NSHUB_ENDPOINT (or --endpoint) to it", status=response.status_code)
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
            try:
                return response.json()
            except ValueError:
                kind = response.headers.get("Content-Type") or "no Content-Type"
                raise UnexpectedResponse(
                    f"{method} {path} answered HTTP {response.status_code} with a body that is "
                    f"not JSON ({kind}): is {self.endpoint} an nshub server?",
                    status=response.status_code) from None

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
