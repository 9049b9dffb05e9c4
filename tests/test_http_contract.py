"""The HTTP edge as any client sees it: strict JSON bodies, cache headers on answers that
carry credentials, and the error contract on routes that do not exist."""
from __future__ import annotations

import pytest

from tests.helpers import push, random_bytes, sha


def token(users, who="alice"):
    return users[who]["id_token"]


# ---------------------------------------------------------------- strict JSON


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_bodies_with_numbers_json_does_not_have_are_refused(api, users, literal):
    t = token(users)
    assert push(api, t, "alice/ds", b"abc").status_code == 200
    patch = '{"metadata": {"score": %s}}' % literal
    r = api.patch("/v1/arrays/alice/ds", token=t, data=patch,
                  headers={"Content-Type": "application/json"})
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest"), r.text
    assert r.json()["Code"] == "InvalidRequest"
    data = random_bytes(8)
    upload = '{"size": %d, "sha256": "%s", "metadata": {"x": [%s]}}' % (len(data), sha(data),
                                                                      literal)
    r = api.post("/v1/arrays/alice/other/uploads", token=t, data=upload,
                 headers={"Content-Type": "application/json"})
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest"), r.text
    # nothing was written: what others read is still valid JSON, metadata untouched
    r = api.get("/v1/arrays/alice/ds", token=t)
    assert r.status_code == 200 and r.json()["metadata"] == {}
    assert api.get("/v1/arrays/alice/other", token=t).status_code == 404


def test_large_but_finite_numbers_are_kept(api, users):
    t = token(users)
    assert push(api, t, "alice/ds", b"abc").status_code == 200
    r = api.patch("/v1/arrays/alice/ds", token=t, json={"metadata": {"big": 1e300, "n": -0.5}})
    assert r.status_code == 200, r.text
    assert api.get("/v1/arrays/alice/ds", token=t).json()["metadata"] == {"big": 1e300, "n": -0.5}


# ---------------------------------------------------------------- caches


def test_signed_in_answers_are_never_cached(api, users):
    t = token(users)
    assert push(api, t, "alice/ds", b"abc", visibility="public").status_code == 200
    signed_in = [api.get("/v1/arrays/alice/ds", token=t),  # carries a download URL
                 api.get("/v1/arrays/alice", token=t),
                 api.get("/v1/me", token=t),
                 api.get("/v1/arrays/alice/missing", token=t),  # errors too
                 api.get("/v1/arrays/alice/ds", token="not-a-token")]
    assert [r.status_code for r in signed_in] == [200, 200, 200, 404, 401]
    for r in signed_in:
        assert r.headers["Cache-Control"] == "no-store", r.request.url
        assert "Authorization" in [v.strip() for v in r.headers["Vary"].split(",")]
    # a legacy executor secret is a credential too
    r = api.get("/v1/legacy/executors/NoSuchExec", headers={"X-Executor-Secret": "s3cret"})
    assert r.status_code == 404 and r.headers["Cache-Control"] == "no-store"
    # an anonymous answer may be kept, but never handed to a signed-in caller
    r = api.get("/v1/arrays/alice/ds")
    assert r.status_code == 200 and "no-store" not in r.headers.get("Cache-Control", "")
    assert "Authorization" in [v.strip() for v in r.headers["Vary"].split(",")]
