"""A fake of the nshub HTTP API and its presigned URLs, for client tests that need no AWS.

`FakeHub` keeps users, tokens, arrays and uploads in memory and serves the routes of
DESIGN.md that the array client speaks, on 127.0.0.1 with `http.server`. Presigned URLs are
`/s3/...` paths of the same server. Knobs make it misbehave the way networks and object stores
do: answer a status a few times (`fail`), drop a download after N bytes (`drop_after`), ignore
`Range`, corrupt a download, expire the URLs handed out so far, quarantine a version, hand out
presigned URLs of another store (`storage_endpoint`), run a function when a request arrives (`on`).
Presigned URLs carry `X-Amz-*` query parameters like S3's: secrets that must never be shown.

Fixtures (import them into a test module): `hub` (a running FakeHub, with NSHUB_ENDPOINT,
NSHUB_HOME and no NSHUB_TOKEN in the environment) and `alice` (a Client logged in as alice
whose retries record their waits instead of sleeping).
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from nshub import Client, Retry


# The query of every presigned URL handed out: S3's credentials, never to be shown.
SIGNED = "?X-Amz-Credential=AKIA%2Fsecret&X-Amz-Signature=cafe&X-Amz-Security-Token=session"


def make_jwt(claims: dict) -> str:
    def enc(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}.c2ln"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


@dataclass
class Fault:
    method: str
    path_contains: str
    status: int
    times: int = 1
    retry_after: str | None = None
    headers: dict | None = None
    body: bytes = b"fault"


@dataclass
class FakeHub:
    single_part_max: int = 64
    part_size: int = 32
    token_lifetime: int = 3600
    users: dict = field(default_factory=lambda: {"alice": "alice-pw", "bob": "bob-pw"})
    arrays: dict = field(default_factory=dict)  # (ns, name.lower()) -> resource
    uploads: dict = field(default_factory=dict)
    blobs: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)  # (method, path, headers)
    faults: list = field(default_factory=list)
    drop_after: list = field(default_factory=list)  # byte counts, one per download to cut
    ignore_range: bool = False
    ranges: list = field(default_factory=list)  # (first, last) byte of each ranged GET served
    corrupt: bool = False
    url_generation: int = 0
    endpoint: str = ""
    renewed: list = field(default_factory=list)  # part numbers whose URLs were renewed
    hooks: list = field(default_factory=list)  # (method, path_contains, fn(url)), see `on`
    storage_endpoint: str = ""  # the store presigned URLs point at (default: this server)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.id_tokens: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}

    # --- knobs and views ---

    def fail(self, method: str, path_contains: str, status: int, times: int = 1,
             retry_after: str | None = None, headers: dict | None = None,
             body: bytes = b"fault") -> None:
        self.faults.append(Fault(method, path_contains, status, times, retry_after, headers,
                                 body))

    def on(self, method: str, path_contains: str, fn: Any) -> None:
        """Call `fn(url)` (in the server's thread) when such a request arrives, before it is
        answered: to change a file mid-push, or hold a download."""
        self.hooks.append((method, path_contains, fn))

    def quarantine(self, ns: str, name: str, version: int) -> None:
        """What the event path does to a version whose bytes are not the declared ones."""
        for v in self.arrays[(ns, name.lower())]["versions"]:
            if v["version"] == version:
                v["quarantined"] = True

    def expire_urls(self) -> None:
        self.url_generation += 1

    def calls(self, method: str, path_contains: str = "") -> list:
        return [r for r in self.requests if r[0] == method and path_contains in r[1]]

    def issue_tokens(self, username: str, lifetime: int | None = None) -> dict:
        n = next(self.ids)
        exp = int(time.time()) + (self.token_lifetime if lifetime is None else lifetime)
        id_token = make_jwt({"sub": username, "exp": exp, "n": n, "token_use": "id"})
        self.id_tokens[id_token] = username
        refresh = f"refresh-{username}-{n}"
        self.refresh_tokens[refresh] = username
        return {"id_token": id_token, "access_token": f"access-{n}", "refresh_token": refresh,
                "expires_in": exp - int(time.time())}

    def add_legacy(self, name: str, data: bytes) -> None:
        self._commit(None, name, data, "public", {}, legacy=True)

    # --- the API ---

    def handle(self, method: str, url: str, headers: Any, body: bytes) -> tuple:
        parsed = urlparse(url)
        path, query = parsed.path, {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        for hook_method, path_contains, fn in list(self.hooks):
            if hook_method == method and path_contains in path:
                fn(url)
        with self.lock:
            self.requests.append((method, url, dict(headers)))
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path_contains in path:
                    fault.times -= 1
                    extra = dict(fault.headers or {})
                    if fault.retry_after:
                        extra["Retry-After"] = fault.retry_after
                    return fault.status, extra, fault.body
        if path.startswith("/s3/"):
            return self._s3(method, path, query, headers, body)
        try:
            with self.lock:
                status, payload = self._route(method, path, query, headers, body)
        except ApiError as err:
            data = json.dumps({"Code": err.code, "Message": err.message}).encode()
            return err.status, {"X-Error-Code": err.code, "Content-Type": "application/json"}, data
        if payload is None:
            return status, {}, b""
        return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    def _caller(self, headers: Any) -> str | None:
        auth = headers.get("Authorization")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ")
        user = self.id_tokens.get(token)
        if user is None:
            raise ApiError(401, "Unauthorized", "invalid token")
        return user

    def _route(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple:
        data = json.loads(body) if body else {}
        seg = path.strip("/").split("/")
        if (method, path) == ("POST", "/v1/auth/login"):
            if self.users.get(data.get("username")) != data.get("password"):
                raise ApiError(401, "Unauthorized", "wrong username or password")
            return 200, self.issue_tokens(data["username"])
        if (method, path) == ("POST", "/v1/auth/refresh"):
            user = self.refresh_tokens.get(data.get("refresh_token"))
            if user is None:
                raise ApiError(401, "Unauthorized", "refresh token expired")
            tokens = self.issue_tokens(user)
            del tokens["refresh_token"]
            return 200, tokens
        if (method, path) == ("POST", "/v1/auth/signup"):
            self.users[data["username"]] = data["password"]
            return 201, {"username": data["username"], "confirmed": False}
        if (method, path) == ("POST", "/v1/auth/confirm"):
            return 200, {"username": data["username"], "confirmed": True}
        if (method, path) == ("GET", "/v1/config"):
            return 200, {"single_part_max_bytes": self.single_part_max,
                         "min_part_size": self.part_size, "max_parts": 10_000}
        if (method, path) == ("GET", "/v1/me"):
            user = self._caller(headers)
            if user is None:
                raise ApiError(401, "Unauthorized", "sign in first")
            return 200, {"username": user, "namespace": user}
        caller = self._caller(headers)
        if seg[:3] == ["v1", "legacy", "arrays"] and len(seg) >= 4:
            if method == "POST":
                raise ApiError(409, "LegacyReadOnly", "legacy arrays are read-only: push ns/name")
            return 200, self._download_info(self._get(None, seg[3], None), query)
        if seg[:2] != ["v1", "arrays"]:
            raise ApiError(404, "NotFound", f"no route {path}")
        ns = seg[2]
        if len(seg) == 3 and method == "GET":
            items = [self._info(r) for (n, _), r in sorted(self.arrays.items(), key=str)
                     if n == ns and (caller == ns or r["visibility"] == "public")]
            return 200, self._page(items, query)
        name = seg[3]
        rest = seg[4:]
        if rest[:1] == ["uploads"]:
            if caller is None:
                raise ApiError(401, "Unauthorized", "sign in to push")
            if caller != ns:
                raise ApiError(403, "Forbidden", "push into your own namespace")
            if len(rest) == 1 and method == "POST":
                return 201, self._plan(ns, name, data)
            upload = self.uploads.get(rest[1])
            if upload is None:
                raise ApiError(404, "NotFound", "no such upload")
            if method == "DELETE":
                upload["state"] = "aborted"
                return 204, None
            if rest[2:] == ["parts"]:
                self.renewed.extend(data["part_numbers"])
                base = f"{self.storage_endpoint or self.endpoint}/s3/put/{upload['id']}"
                return 200, {"parts": [{"part_number": n, "url": f"{base}/{n}{SIGNED}",
                                        "headers": {}} for n in data["part_numbers"]]}
            return 200, self._complete(upload, data)
        resource = self._get(ns, name, caller)
        if rest == ["versions"]:
            items = [self._info(resource, v) for v in reversed(resource["versions"])]
            return 200, self._page(items, query)
        if method == "GET":
            return 200, self._download_info(resource, query)
        if caller != ns:
            raise ApiError(401 if caller is None else 403, "Forbidden", "not yours")
        if method == "PATCH":
            resource["visibility"] = data.get("visibility", resource["visibility"])
            if "metadata" in data:
                resource["versions"][-1]["metadata"] = data["metadata"]
            return 200, self._info(resource)
        if method == "DELETE":
            del self.arrays[(ns, name.lower())]
            return 204, None
        raise ApiError(400, "InvalidRequest", "unsupported")

    def _get(self, ns: str | None, name: str, caller: str | None) -> dict:
        resource = self.arrays.get((ns, name.lower()))
        if resource is None or (resource["visibility"] == "private" and caller != ns):
            raise ApiError(404, "NotFound", f"{ns}/{name} does not exist")
        return resource

    def _page(self, items: list, query: dict) -> dict:
        start = int(query.get("cursor", 0))
        limit = int(query.get("limit", 1000))
        end = start + limit
        return {"items": items[start:end], "next_cursor": str(end) if end < len(items) else None}

    def _plan(self, ns: str, name: str, data: dict) -> dict:
        size = int(data["size"])
        upload_id = f"up{next(self.ids)}"
        base = f"{self.storage_endpoint or self.endpoint}/s3/put/{upload_id}"
        if size <= self.single_part_max:
            checksum = base64.b64encode(bytes.fromhex(data["sha256"])).decode()
            parts = [{"part_number": 1, "url": f"{base}/1{SIGNED}",
                      "headers": {"Content-Length": str(size), "x-amz-checksum-sha256": checksum}}]
        else:
            count = -(-size // self.part_size)
            parts = [{"part_number": i, "url": f"{base}/{i}{SIGNED}", "headers": {}}
                     for i in range(1, count + 1)]
        self.uploads[upload_id] = {"id": upload_id, "ns": ns, "name": name, "request": data,
                                   "parts": {}, "state": "pending", "plan": parts}
        return {"upload_id": upload_id, "part_size": self.part_size,
                "expires_at": "2099-01-01T00:00:00Z", "parts": parts}

    def _complete(self, upload: dict, data: dict) -> dict:
        if upload["state"] == "done":
            return upload["info"]
        if upload["state"] == "aborted":
            raise ApiError(404, "NotFound", "upload aborted")
        chunks = []
        for part in data["parts"]:
            stored = upload["parts"].get(part["part_number"])
            if stored is None or stored[1] != part["etag"]:
                raise ApiError(400, "InvalidRequest", f"bad part {part['part_number']}")
            chunks.append(stored[0])
        blob = b"".join(chunks)
        request = upload["request"]
        if len(blob) != request["size"]:
            raise ApiError(400, "SizeMismatch", "size differs")
        if hashlib.sha256(blob).hexdigest() != request["sha256"]:
            raise ApiError(400, "ChecksumMismatch", "sha256 differs")
        info = self._commit(upload["ns"], upload["name"], blob, request.get("visibility"),
                            request.get("metadata") or {})
        upload["state"], upload["info"] = "done", info
        return info

    def _commit(self, ns: str | None, name: str, blob: bytes, visibility: str | None,
                metadata: dict, legacy: bool = False) -> dict:
        resource = self.arrays.setdefault(
            (ns, name.lower()),
            {"ns": ns, "name": name, "visibility": visibility or "private", "versions": [],
             "legacy": legacy},
        )
        if visibility:
            resource["visibility"] = visibility
        blob_id = f"b{next(self.ids)}"
        self.blobs[blob_id] = blob
        resource["versions"].append({
            "version": len(resource["versions"]) + 1, "blob": blob_id, "size": len(blob),
            "sha256": hashlib.sha256(blob).hexdigest(), "metadata": metadata,
            "created_at": "2024-01-01T00:00:00Z",
        })
        return self._info(resource)

    def _info(self, resource: dict, version: dict | None = None) -> dict:
        v = version or resource["versions"][-1]
        info = {
            "kind": "array", "namespace": resource["ns"], "name": resource["name"],
            "full_name": (f"{resource['ns']}/" if resource["ns"] else "") + resource["name"],
            "visibility": resource["visibility"], "version": v["version"], "size": v["size"],
            "sha256": v["sha256"], "created_at": v["created_at"],
            "updated_at": v["created_at"], "metadata": v["metadata"],
        }
        if resource["legacy"]:
            info["legacy"] = True
        return info

    def _download_info(self, resource: dict, query: dict) -> dict:
        versions = resource["versions"]
        if "version" in query:
            found = [v for v in versions if v["version"] == int(query["version"])]
            if not found:
                raise ApiError(404, "NotFound", "no such version")
            version = found[0]
        else:
            version = versions[-1]
        info = self._info(resource, version)
        if version.get("quarantined"):
            info.update(integrity="quarantined", quarantine_reason="sha256 mismatch")
            return info  # hidden bytes: no URL
        info["download_url"] = (
            f"{self.storage_endpoint or self.endpoint}/s3/get/{version['blob']}"
            f"?gen={self.url_generation}&{SIGNED[1:]}"
        )
        info["download_expires_at"] = "2099-01-01T00:00:00Z"
        return info

    # --- the object store ---

    def _s3(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple:
        seg = path.strip("/").split("/")
        if method == "PUT" and seg[1] == "put":
            upload = self.uploads[seg[2]]
            number = int(seg[3])
            plan = upload["plan"][number - 1]
            for key, value in plan["headers"].items():
                if headers.get(key) != value:
                    return 403, {}, f"<Error><Code>SignatureDoesNotMatch</Code><Message>{key}" \
                                    f"</Message></Error>".encode()
            etag = f'"{hashlib.md5(body).hexdigest()}"'
            with self.lock:
                upload["parts"][number] = (body, etag)
            return 200, {"ETag": etag}, b""
        if method == "GET" and seg[1] == "get":
            if int(query.get("gen", -1)) != self.url_generation:
                return 403, {}, b"<Error><Code>AccessDenied</Code><Message>Request has expired" \
                                b"</Message></Error>"
            blob = self.blobs[seg[2]]
            if self.corrupt and blob:
                blob = bytes([blob[0] ^ 0xFF]) + blob[1:]
            start = 0
            rng = headers.get("Range")
            if rng and not self.ignore_range:
                first, _, last = rng.removeprefix("bytes=").partition("-")
                start = int(first)
                if start >= len(blob):
                    return 416, {}, b""
                end = min(int(last), len(blob) - 1) if last else len(blob) - 1
                with self.lock:
                    self.ranges.append((start, end))
                return 206, {"Content-Range": f"bytes {start}-{end}/{len(blob)}"}, \
                    blob[start:end + 1]
            return 200, {}, blob
        return 400, {}, b"<Error><Code>BadRequest</Code></Error>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms stalls
    hub: FakeHub

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.hub.handle(self.command, self.path, self.headers, body)
        cut = None
        if self.command == "GET" and self.path.startswith("/s3/get/") and status in (200, 206):
            with self.hub.lock:
                cut = self.hub.drop_after.pop(0) if self.hub.drop_after else None
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if cut is not None and cut < len(payload):
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the network drops mid-body
            self.close_connection = True
            return
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up mid-request (a cancelled part) is not a failure of the fake.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(hub: FakeHub) -> tuple[ThreadingHTTPServer, threading.Thread]:
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = _Server(("127.0.0.1", 0), handler)
    hub.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    return server, thread


class RecordedWaits(list):
    """A `sleep` for Retry that remembers the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    fake = FakeHub()
    server, thread = serve(fake)
    monkeypatch.setenv("NSHUB_ENDPOINT", fake.endpoint)
    monkeypatch.setenv("NSHUB_HOME", str(tmp_path / "nshub-home"))
    monkeypatch.setenv("NSHUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("NSHUB_TOKEN", raising=False)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def waits():
    return RecordedWaits()


@pytest.fixture
def alice(hub, waits):
    client = Client(retry=Retry(sleep=waits))
    client.login("alice", "alice-pw")
    with client:
        yield client
