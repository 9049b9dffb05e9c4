"""AWS calls per API operation, counted with botocore event hooks.

The app runs in this process (`chalice.test.Client`), moto in its own. Every botocore client
created while counting (boto3's for S3, pynamodb's for DynamoDB: each has its own session)
gets a `before-call.*.*` hook, which fires once per API call (retries are not calls; a
presign is not a call). Bytes go to S3 with `requests`, outside the count, as a client's
would.
"""
from __future__ import annotations

import hashlib
import json
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import requests

from bench.report import Figure
from bench.stack import MiB, Stack

_lock = threading.Lock()
_calls: list[str] = []
_responses: list[tuple[str, dict]] = []
_installed = False


def _on_call(event_name: str, **_: Any) -> None:
    # event_name: before-call.<service>.<Operation>
    _, service, operation = event_name.split(".", 2)
    with _lock:
        _calls.append(f"{service}:{operation}")


def _on_response(event_name: str, parsed: Any = None, **_: Any) -> None:
    with _lock:
        _responses.append((event_name.split(".", 2)[2], parsed if isinstance(parsed, dict) else {}))


def install_hooks() -> None:
    """Register the hooks on every botocore client created from now on, whatever its session."""
    global _installed
    if _installed:
        return
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call.*.*", _on_call)
        client.meta.events.register("after-call.*.*", _on_response)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    _installed = True


@contextmanager
def counting() -> Iterator[list[str]]:
    """The AWS calls made inside the block, as `service:Operation` strings."""
    found: list[str] = []
    with _lock:
        _calls.clear()
        _responses.clear()
    yield found
    with _lock:
        found.extend(_calls)
        _calls.clear()


def responses() -> list[tuple[str, dict]]:
    with _lock:
        return list(_responses)


def _app_client():
    from chalice.test import Client

    import app as app_module
    from bench.stack import REPO

    return Client(app_module.app, project_dir=str(REPO))


def _call(client, method: str, path: str, token: str | None = None,
          body: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    raw = json.dumps(body).encode() if body is not None else b""
    resp = getattr(client.http, method.lower())(path, headers=headers, body=raw)
    try:
        payload = json.loads(resp.body) if resp.body else None
    except ValueError:
        payload = resp.body
    return resp.status_code, payload


def _declared(data: bytes, part_size: int = 5 * MiB) -> dict:
    """The upload body a client sends: size, sha256 and, for more than one part, the part
    size and each part's sha256."""
    body: dict[str, Any] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if len(data) > part_size:
        body["part_size"] = part_size
        body["part_sha256"] = [hashlib.sha256(data[i:i + part_size]).hexdigest()
                               for i in range(0, len(data), part_size)]
    return body


def _put_parts(plan: dict, data: bytes) -> list[dict]:
    parts, part_size = [], int(plan["part_size"])
    for part in plan["parts"]:
        n = int(part["part_number"])
        chunk = data if len(plan["parts"]) == 1 else data[(n - 1) * part_size:n * part_size]
        r = requests.put(part["url"], data=chunk, headers=part["headers"], timeout=60)
        r.raise_for_status()
        parts.append({"part_number": n, "etag": r.headers["ETag"]})
    return parts


def measure(stack: Stack) -> dict[str, list[str]]:
    """Run each operation once (after one warm-up of each) and return its AWS calls."""
    install_hooks()
    out: dict[str, list[str]] = {}
    single = b"x" * 1024
    multi = bytes(range(256)) * (6 * MiB // 256)  # 6 MiB: two parts at 5 MiB
    token = stack.token
    with stack.apply():
        client = _app_client()

        def push(name: str, data: bytes, label: str | None, public: bool = False) -> None:
            body = _declared(data)
            if public:
                body["visibility"] = "public"
            path = f"/v1/arrays/alice/{name}/uploads"
            with counting() as start_calls:
                status, plan = _call(client, "POST", path, token, body)
            assert status == 201, (status, plan)
            parts = _put_parts(plan, data)
            with counting() as complete_calls:
                status, info = _call(client, "POST", f"{path}/{plan['upload_id']}/complete",
                                     token, {"parts": parts})
            assert status == 200, (status, info)
            if label:
                out[f"push start ({label})"] = start_calls
                out[f"complete ({label})"] = complete_calls

        # warm-up: the first request of a process fetches the token keys and builds clients
        push("warm", single, None)
        _call(client, "GET", "/v1/arrays/alice/warm", token)

        push("one", single, "single part", public=True)
        push("one", b"y" * 1024, "single part, 2nd version", public=True)
        push("big", multi, "multipart")
        push("three", single, None, public=True)
        with counting() as calls:
            status, same = _call(client, "POST", "/v1/arrays/alice/big/uploads", token,
                                 _declared(multi))
        assert status == 200 and same["unchanged"], (status, same)
        out["push start (unchanged)"] = calls

        for label, tok in (("signed in", token), ("anonymous, public", None)):
            with counting() as calls:
                status, _ = _call(client, "GET", "/v1/arrays/alice/one", tok)
            assert status == 200, status
            out[f"pull/info ({label})"] = calls
        out.update(_token_reads(client, token))
        with counting() as calls:
            status, page = _call(client, "GET", "/v1/arrays/alice?limit=2", token)
        assert status == 200 and page["next_cursor"], page
        out["list page (first)"] = calls
        with counting() as calls:
            status, page2 = _call(client, "GET", f"/v1/arrays/alice?limit=2&cursor="
                                  f"{page['next_cursor']}", token)
        assert status == 200, page2
        out["list page (next)"] = calls
        with counting() as calls:
            status, _ = _call(client, "PATCH", "/v1/arrays/alice/one", token,
                              {"visibility": "private"})
        assert status == 200, status
        out["PATCH"] = calls
        with counting() as calls:
            status, _ = _call(client, "DELETE", "/v1/arrays/alice/one", token)
        assert status == 204, status
        out["delete"] = calls
    return out


def _token_reads(client, token: str) -> dict[str, list[str]]:
    """A pull/info with a personal access token: warm (its lookup cached), cold (the cache
    aged out: the clock is moved past its 60 s, not slept through) and the first use in an
    hour (which also records the use, at most once an hour per token). Their goals count
    DynamoDB calls (the issue's measure); a cold lookup also asks Cognito whether the account
    still lives (shown in the detail)."""
    import time

    from chalicelib import accounts, tokens

    status, made = _call(client, "POST", "/v1/tokens", token,
                         {"name": "bench", "scopes": ["read"]})
    assert status == 201, made
    pat = made["token"]
    out = {}
    now = tokens.now()
    try:
        with counting() as calls:
            status, _ = _call(client, "GET", "/v1/arrays/alice/one", pat)
        assert status == 200, status
        out["pull/info (token, first use in an hour)"] = calls
        with counting() as calls:
            status, _ = _call(client, "GET", "/v1/arrays/alice/one", pat)
        assert status == 200, status
        out["pull/info (token, warm)"] = calls
        tokens.set_clock(lambda: now + tokens.CACHE_SECONDS + 1)
        accounts.set_clock(time.monotonic)  # and forget the account liveness cache: all cold
        with counting() as calls:
            status, _ = _call(client, "GET", "/v1/arrays/alice/one", pat)
        assert status == 200, status
        out["pull/info (token, cold)"] = calls
    finally:
        tokens.set_clock(None)
    _call(client, "GET", "/v1/arrays/alice/one", token)  # warm again for the rows that follow
    return out


# (operation, goal) in table order; "report" = no goal in the issue: counted and shown
GOALS = [
    ("pull/info (signed in)", "== 1"),
    ("pull/info (anonymous, public)", "== 1"),
    ("pull/info (token, warm)", "== 1"),
    ("pull/info (token, cold)", "<= 2"),
    ("pull/info (token, first use in an hour)", "report"),
    ("list page (first)", "== 1"),
    ("list page (next)", "== 1"),
    ("push start (single part)", "<= 1"),
    ("push start (multipart)", "report"),
    ("complete (single part)", "<= 3"),
    ("complete (single part, 2nd version)", "<= 3"),
    ("complete (multipart)", "<= 3"),
    ("push start (unchanged)", "report"),
    ("delete", "report"),
    ("PATCH", "report"),
]


def figures(calls: dict[str, list[str]]) -> list[Figure]:
    out = []
    for op, goal in GOALS:
        found = calls[op]
        detail = ", ".join(c.split(":", 1)[1] for c in found)
        if op.startswith("pull/info (token"):
            table_calls = [c for c in found if c.startswith("dynamodb:")]
            out.append(Figure(f"AWS calls: {op}", len(table_calls), "DynamoDB calls", goal,
                              detail=detail))
            continue
        out.append(Figure(f"AWS calls: {op}", len(found), "calls", goal, detail=detail))
    reads = [c for op in ("complete (single part)", "complete (multipart)") for c in calls[op]
             if c.endswith(":GetObject")]
    out.append(Figure("AWS calls: GetObject in complete", len(reads), "calls", "== 0",
                      detail="complete never reads the object back (single part and multipart)"))
    return out


def start_answer_bytes(stack: Stack) -> tuple[int, int]:
    """(bytes of the start answer, parts_total) of a declared 50 GiB upload at the server's
    own part plan, signed with a 1 KiB session token as Lambda's credentials are."""
    from bench.stack import _environ
    from chalicelib import blobs

    size = 50 * 1024 * MiB
    with stack.apply(), _environ({"AWS_SESSION_TOKEN": "T" * 1024}, reset=True):
        part_size, count = blobs.plan_parts(size)
        client = _app_client()
        body = {"size": size, "sha256": "a" * 64, "part_size": part_size,
                "part_sha256": ["b" * 64] * count}
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {stack.token}"}
        resp = client.http.post("/v1/arrays/alice/fifty-gib/uploads", headers=headers,
                                body=json.dumps(body).encode())
        assert resp.status_code == 201, resp.body
        return len(resp.body), count


def run(log=print) -> list[Figure]:
    settings = {"NSHUB_SINGLE_PART_MAX_BYTES": str(5 * MiB), "NSHUB_MIN_PART_SIZE": str(5 * MiB)}
    with Stack(api=False, settings=settings) as stack:
        calls = measure(stack)
        answer, parts = start_answer_bytes(stack)
    for op, found in calls.items():
        log(f"  {op}: {len(found)} {found}")
    return figures(calls) + [Figure(
        "start answer for a declared 50 GiB upload", round(answer / 1024, 1), "KiB", "<= 256",
        detail=f"{parts} parts of the server's plan, the first {min(parts, 64)} URLs signed "
               f"with a 1 KiB session token; the rest come from /parts, 64 at a time")]
