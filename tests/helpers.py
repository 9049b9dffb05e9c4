"""Test helpers that speak the HTTP contract directly (no client library)."""
from __future__ import annotations

import hashlib
import os

import requests


# DESIGN.md's access matrix for changes: (caller, public or private target) -> the statuses
# of (PATCH, DELETE).
PATCH_DELETE_MATRIX = {
    ("owner", "pub"): (200, 204), ("owner", "priv"): (200, 204),
    ("other", "pub"): (403, 403), ("other", "priv"): (404, 404),
    ("anonymous", "pub"): (401, 401), ("anonymous", "priv"): (401, 401),
}


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start(api, token, full_name, data, kind="arrays", **extra):
    return api.post(f"/v1/{kind}/{full_name}/uploads", token=token,
                    json={"size": len(data), "sha256": sha(data), **extra})


def put_parts(plan: dict, data: bytes) -> list[dict]:
    parts = []
    size = plan["part_size"]
    for part in plan["parts"]:
        n = part["part_number"]
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
