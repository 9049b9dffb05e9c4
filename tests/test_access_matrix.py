"""DESIGN.md's access matrix, cell by cell, over HTTP, for every resource kind.

| action                  | owner     | other user  | anonymous   |
| push into the namespace | 201 / 200 | 403         | 401         |
| pull / info, public     | 200       | 200         | 200         |
| pull / info, private    | 200       | 404         | 404         |
| list namespace          | all       | public only | public only |
| patch / delete, public  | 200 / 204 | 403         | 401         |
| patch / delete, private | 200 / 204 | 404         | 401         |

Plus two columns for the owner's personal access tokens: a write token acts as the owner; a
read token reads as the owner and gets 403 `InsufficientScope` for every push, patch, delete
and abort.
"""
from __future__ import annotations

import pytest

from tests.helpers import (
    MATRIX_CALLERS,
    PATCH_DELETE_MATRIX,
    matrix_credentials,
    push,
    refused_for_scope,
    start,
)

WHO = MATRIX_CALLERS


@pytest.fixture
def creds(api, users):
    return matrix_credentials(api, users)


@pytest.fixture
def seeded(api, creds):
    t = creds["owner"]
    assert push(api, t, "alice/pub", b"public bytes", visibility="public").status_code == 200
    assert push(api, t, "alice/priv", b"private bytes").status_code == 200
    return creds


@pytest.mark.parametrize("who,start_status", [("owner", 201), ("other", 403), ("anonymous", 401),
                                               ("write token", 201), ("read token", 403)])
def test_push_into_the_namespace(api, creds, who, start_status):
    r = start(api, creds[who], "alice/new", b"abc")
    assert r.status_code == start_status, r.text
    assert refused_for_scope(r) == (who == "read token")
    if start_status == 201:
        assert push(api, creds[who], "alice/new", b"abc").status_code == 200


@pytest.mark.parametrize("who,status", [("owner", 200), ("other", 200), ("anonymous", 200),
                                        ("write token", 200), ("read token", 200)])
def test_pull_public(api, seeded, who, status):
    assert api.get("/v1/arrays/alice/pub", token=seeded[who]).status_code == status
    assert api.get("/v1/arrays/alice/pub/versions", token=seeded[who]).status_code == status


@pytest.mark.parametrize("who,status", [("owner", 200), ("other", 404), ("anonymous", 404),
                                        ("write token", 200), ("read token", 200)])
def test_pull_private(api, seeded, who, status):
    r = api.get("/v1/arrays/alice/priv", token=seeded[who])
    assert r.status_code == status
    assert api.get("/v1/arrays/alice/priv/versions", token=seeded[who]).status_code == status
    if status == 404:
        missing = api.get("/v1/arrays/alice/no_such_thing", token=seeded[who])
        assert missing.status_code == 404
        # indistinguishable from a missing one, apart from the name in the message
        assert r.json()["Message"].replace("alice/priv'", "alice/X'") == \
            missing.json()["Message"].replace("alice/no_such_thing'", "alice/X'")
        assert "download_url" not in r.text


@pytest.mark.parametrize("who,expected", [("owner", {"pub", "priv"}), ("other", {"pub"}),
                                          ("anonymous", {"pub"}), ("write token", {"pub", "priv"}),
                                          ("read token", {"pub", "priv"})])
def test_list_namespace(api, seeded, who, expected):
    r = api.get("/v1/arrays/alice", token=seeded[who])
    assert r.status_code == 200
    assert {i["name"] for i in r.json()["items"]} == expected


@pytest.mark.parametrize("target", ["pub", "priv"])
@pytest.mark.parametrize("who", WHO)
def test_patch_and_delete(api, seeded, who, target):
    expected = PATCH_DELETE_MATRIX[(who, target)]
    visibility = "public" if target == "pub" else "private"
    r = api.patch(f"/v1/arrays/alice/{target}", token=seeded[who],
                  json={"visibility": visibility})
    assert r.status_code == expected[0], r.text
    assert refused_for_scope(r) == (who == "read token")
    refusals = [r]
    r = api.delete(f"/v1/arrays/alice/{target}", token=seeded[who])
    assert r.status_code == expected[1], r.text
    assert refused_for_scope(r) == (who == "read token")
    for r in refusals + [r]:
        if r.status_code == 403:  # a refusal never names another account
            assert r.headers["X-Error-Code"] == ("InsufficientScope" if who == "read token"
                                                 else "Forbidden")
            assert "alice" not in r.json()["Message"]
    still_there = api.get(f"/v1/arrays/alice/{target}", token=seeded["owner"]).status_code
    assert still_there == (404 if expected[1] == 204 else 200)


def test_abort_upload_matrix(api, creds):
    plan = start(api, creds["owner"], "alice/up", b"abc").json()
    path = f"/v1/arrays/alice/up/uploads/{plan['upload_id']}"
    assert api.delete(path, token=creds["anonymous"]).status_code == 401
    assert api.delete(path, token=creds["other"]).status_code == 403
    assert refused_for_scope(api.delete(path, token=creds["read token"]))
    assert api.delete(path, token=creds["write token"]).status_code == 204
    plan = start(api, creds["owner"], "alice/up", b"abc").json()
    assert api.delete(f"/v1/arrays/alice/up/uploads/{plan['upload_id']}",
                      token=creds["owner"]).status_code == 204


def test_complete_and_part_urls_need_write(api, creds):
    plan = start(api, creds["write token"], "alice/up", b"abc").json()
    path = f"/v1/arrays/alice/up/uploads/{plan['upload_id']}"
    assert refused_for_scope(api.post(f"{path}/parts", token=creds["read token"], json={}))
    assert refused_for_scope(api.post(f"{path}/complete", token=creds["read token"],
                                      json={"parts": []}))
    assert api.post(f"{path}/parts", token=creds["write token"], json={}).status_code == 200
