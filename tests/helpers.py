"""Test helpers that speak the HTTP contract directly (no client library)."""
from __future__ import annotations

import hashlib
import os

import requests


# DESIGN.md's access matrix for changes: (caller, public or private target) -> the statuses
# of (PATCH, DELETE). "write token" and "read token" are personal access tokens of the owner.
PATCH_DELETE_MATRIX = {
    ("owner", "pub"): (200, 204), ("owner", "priv"): (200, 204),
    ("other", "pub"): (403, 403), ("other", "priv"): (404, 404),
    ("anonymous", "pub"): (401, 401), ("anonymous", "priv"): (401, 401),
    ("write token", "pub"): (200, 204), ("write token", "priv"): (200, 204),
    ("read token", "pub"): (403, 403), ("read token", "priv"): (403, 403),
}

# The callers of the matrix: alice owns the resources; bob is the other user.
MATRIX_CALLERS = ("owner", "other", "anonymous", "write token", "read token")


def matrix_credentials(api, users) -> dict[str, str | None]:
    """Each matrix caller's bearer token (None: anonymous)."""
    alice = users["alice"]["id_token"]
    return {"owner": alice, "other": users["bob"]["id_token"], "anonymous": None,
            "write token": make_token(api, alice, "matrix write", ("read", "write")),
            "read token": make_token(api, alice, "matrix read", ("read",))}


def refused_for_scope(r) -> bool:
    return r.status_code == 403 and r.headers.get("X-Error-Code") == "InsufficientScope"


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The test server's single-part limit and smallest part (tests/conftest.py TEST_SETTINGS).
PART_SIZE = 5 * 1024 * 1024


def part_digests(data: bytes, part_size: int = PART_SIZE) -> list[str]:
    return [sha(data[i:i + part_size]) for i in range(0, len(data), part_size)]


def start(api, token, full_name, data, kind="arrays", **extra):
    """Start an upload of `data`; an array sent in parts declares its part digests, as the
    client does."""
    body = {"size": len(data), "sha256": sha(data)}
    if kind == "arrays" and len(data) > PART_SIZE and "part_size" not in extra:
        body.update(part_size=PART_SIZE, part_sha256=part_digests(data))
    return api.post(f"/v1/{kind}/{full_name}/uploads", token=token, json={**body, **extra})


def put_parts(plan: dict, data: bytes, more=None) -> list[dict]:
    """PUT every part; `more(part_numbers)` hands out the URLs beyond the plan's first batch."""
    parts = []
    size = plan["part_size"]
    known = {p["part_number"]: p for p in plan["parts"]}
    total = plan.get("parts_total", len(known))
    assert more is not None or len(known) == total, "this plan needs more part URLs"
    for n in range(1, total + 1):
        if n not in known:
            known.update({p["part_number"]: p for p in more(list(range(n, min(total, n + 63) + 1)))})
        part = known[n]
        chunk = data[(n - 1) * size: n * size]
        r = requests.put(part["url"], data=chunk, headers=part["headers"], timeout=60)
        assert r.status_code == 200, r.text
        parts.append({"part_number": n, "etag": r.headers["ETag"]})
    return parts


def push(api, token, full_name, data, kind="arrays", **extra) -> requests.Response:
    r = start(api, token, full_name, data, kind=kind, **extra)
    assert r.status_code == 201, r.text
    plan = r.json()
    parts = put_parts(plan, data)
    return api.post(f"/v1/{kind}/{full_name}/uploads/{plan['upload_id']}/complete",
                    token=token, json={"parts": parts})


def pull(api, token, full_name, kind="arrays", **params) -> tuple[dict, bytes]:
    r = api.get(f"/v1/{kind}/{full_name}", token=token, params=params)
    assert r.status_code == 200, r.text
    info = r.json()
    data = requests.get(info["download_url"], timeout=60).content
    return info, data


def make_token(api, id_token: str, name: str = "ci", scopes=("read", "write"),
               **extra) -> str:
    """A new personal access token's secret (POST /v1/tokens as a signed-in account)."""
    r = api.post("/v1/tokens", token=id_token, json={"name": name, "scopes": list(scopes),
                                                     **extra})
    assert r.status_code == 201, r.text
    return r.json()["token"]
