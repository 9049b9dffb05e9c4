"""DESIGN.md's access matrix, cell by cell, over HTTP, for executors (real packages).

| action                  | owner     | other user  | anonymous   |
| push into the namespace | 201 / 200 | 403         | 401         |
| pull / info, public     | 200       | 200         | 200         |
| pull / info, private    | 200       | 404         | 404         |
| list namespace          | all       | public only | public only |
| patch / delete, public  | 200 / 204 | 403         | 401         |
| patch / delete, private | 200 / 204 | 404         | 401         |

Plus the executor-only routes: `?tag=` reads and pull credentials follow the pull rows.
"""
from __future__ import annotations

import pytest

from tests.executor_packages import package, pulled_zip, push_executor
from tests.helpers import PATCH_DELETE_MATRIX, start

WHO = ("owner", "other", "anonymous")


def tok(users, who):
    return {"owner": users["alice"]["id_token"], "other": users["bob"]["id_token"],
            "anonymous": None}[who]


@pytest.fixture
def seeded(api, users, tmp_path):
    t = tok(users, "owner")
    r = push_executor(api, t, "alice/pub", package(tmp_path, "pub"), visibility="public")
    assert r.status_code == 200, r.text
    assert push_executor(api, t, "alice/priv", package(tmp_path, "priv")).status_code == 200
    return users


@pytest.mark.parametrize("who,start_status", [("owner", 201), ("other", 403), ("anonymous", 401)])
def test_push_into_the_namespace(api, users, tmp_path, who, start_status):
    data = package(tmp_path)
    r = start(api, tok(users, who), "alice/new", data, kind="executors")
    assert r.status_code == start_status, r.text
    if who == "owner":
        assert push_executor(api, tok(users, who), "alice/new", data).status_code == 200


@pytest.mark.parametrize("who", WHO)
def test_pull_public(api, seeded, who):
    for params in ({}, {"tag": "latest"}):
        r = api.get("/v1/executors/alice/pub", token=tok(seeded, who), params=params)
        assert r.status_code == 200
        with pulled_zip(r.json()) as zf:
            assert "config.yml" in zf.namelist()
    assert api.get("/v1/executors/alice/pub/versions", token=tok(seeded, who)).status_code == 200
    r = api.post("/v1/executors/alice/pub/pull-credentials", token=tok(seeded, who))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("who,status", [("owner", 200), ("other", 404), ("anonymous", 404)])
def test_pull_private(api, seeded, who, status):
    r = api.get("/v1/executors/alice/priv", token=tok(seeded, who))
    assert r.status_code == status
    tagged = api.get("/v1/executors/alice/priv", token=tok(seeded, who), params={"tag": "latest"})
    assert tagged.status_code == status
    assert api.get("/v1/executors/alice/priv/versions", token=tok(seeded, who)).status_code == status
    creds = api.post("/v1/executors/alice/priv/pull-credentials", token=tok(seeded, who))
    assert creds.status_code == status
    if status == 404:
        missing = api.get("/v1/executors/alice/no_such_thing", token=tok(seeded, who))
        assert missing.status_code == 404
        # indistinguishable from a missing one, apart from the name in the message
        for refused in (r, tagged, creds):
            assert refused.json()["Message"].replace("alice/priv'", "alice/X'") == \
                missing.json()["Message"].replace("alice/no_such_thing'", "alice/X'")
            assert "download_url" not in refused.text and "password" not in refused.text


@pytest.mark.parametrize("who,expected", [("owner", {"pub", "priv"}), ("other", {"pub"}),
                                          ("anonymous", {"pub"})])
def test_list_namespace(api, seeded, who, expected):
    r = api.get("/v1/executors/alice", token=tok(seeded, who))
    assert r.status_code == 200
    items = r.json()["items"]
    assert {i["name"] for i in items} == expected
    assert all(i["kind"] == "executor" and "image_status" in i for i in items)


@pytest.mark.parametrize("target", ["pub", "priv"])
@pytest.mark.parametrize("who", WHO)
def test_patch_and_delete(api, seeded, who, target):
    expected = PATCH_DELETE_MATRIX[(who, target)]
    visibility = "public" if target == "pub" else "private"
    r = api.patch(f"/v1/executors/alice/{target}", token=tok(seeded, who),
                  json={"visibility": visibility})
    assert r.status_code == expected[0], r.text
    r = api.delete(f"/v1/executors/alice/{target}", token=tok(seeded, who))
    assert r.status_code == expected[1], r.text
    still_there = api.get(f"/v1/executors/alice/{target}", token=tok(seeded, "owner")).status_code
    assert still_there == (404 if who == "owner" else 200)


def test_abort_upload_matrix(api, users, tmp_path):
    plan = start(api, tok(users, "owner"), "alice/up", package(tmp_path), kind="executors").json()
    path = f"/v1/executors/alice/up/uploads/{plan['upload_id']}"
    assert api.delete(path, token=tok(users, "anonymous")).status_code == 401
    assert api.delete(path, token=tok(users, "other")).status_code == 403
    assert api.delete(path, token=tok(users, "owner")).status_code == 204


@pytest.mark.parametrize("path,method", [
    ("/v1/executors/alice/pub", "get"),
    ("/v1/executors/alice/pub/pull-credentials", "post"),
    ("/v1/legacy/executors/pub", "get"),
])
def test_a_bad_token_is_401_never_anonymous(api, seeded, path, method):
    r = getattr(api, method)(path, token="not-a-jwt")
    assert r.status_code == 401 and r.json()["Code"] == "Unauthorized"
