"""DESIGN.md's access matrix, cell by cell, over HTTP, for every resource kind.

| action                  | owner     | other user  | anonymous   |
| push into the namespace | 201 / 200 | 403         | 401         |
| pull / info, public     | 200       | 200         | 200         |
| pull / info, private    | 200       | 404         | 404         |
| list namespace          | all       | public only | public only |
| patch / delete, public  | 200 / 204 | 403         | 401         |
| patch / delete, private | 200 / 204 | 404         | 401         |
"""
from __future__ import annotations

import pytest

from tests.helpers import PATCH_DELETE_MATRIX, push, start

WHO = ("owner", "other", "anonymous")


def tok(users, who):
    return {"owner": users["alice"]["id_token"], "other": users["bob"]["id_token"],
            "anonymous": None}[who]


@pytest.fixture
def seeded(api, users):
    t = tok(users, "owner")
    assert push(api, t, "alice/pub", b"public bytes", visibility="public").status_code == 200
    assert push(api, t, "alice/priv", b"private bytes").status_code == 200
    return users


@pytest.mark.parametrize("who,start_status", [("owner", 201), ("other", 403), ("anonymous", 401)])
def test_push_into_the_namespace(api, users, who, start_status):
    r = start(api, tok(users, who), "alice/new", b"abc")
    assert r.status_code == start_status, r.text
    if who == "owner":
        assert push(api, tok(users, who), "alice/new", b"abc").status_code == 200


@pytest.mark.parametrize("who,status", [("owner", 200), ("other", 200), ("anonymous", 200)])
def test_pull_public(api, seeded, who, status):
    assert api.get("/v1/arrays/alice/pub", token=tok(seeded, who)).status_code == status
    assert api.get("/v1/arrays/alice/pub/versions", token=tok(seeded, who)).status_code == status


@pytest.mark.parametrize("who,status", [("owner", 200), ("other", 404), ("anonymous", 404)])
def test_pull_private(api, seeded, who, status):
    r = api.get("/v1/arrays/alice/priv", token=tok(seeded, who))
    assert r.status_code == status
    assert api.get("/v1/arrays/alice/priv/versions", token=tok(seeded, who)).status_code == status
    if status == 404:
        missing = api.get("/v1/arrays/alice/no_such_thing", token=tok(seeded, who))
        assert missing.status_code == 404
        # indistinguishable from a missing one, apart from the name in the message
        assert r.json()["Message"].replace("alice/priv'", "alice/X'") == \
            missing.json()["Message"].replace("alice/no_such_thing'", "alice/X'")
        assert "download_url" not in r.text


@pytest.mark.parametrize("who,expected", [("owner", {"pub", "priv"}), ("other", {"pub"}),
                                          ("anonymous", {"pub"})])
def test_list_namespace(api, seeded, who, expected):
    r = api.get("/v1/arrays/alice", token=tok(seeded, who))
    assert r.status_code == 200
    assert {i["name"] for i in r.json()["items"]} == expected


@pytest.mark.parametrize("target", ["pub", "priv"])
@pytest.mark.parametrize("who", WHO)
def test_patch_and_delete(api, seeded, who, target):
    expected = PATCH_DELETE_MATRIX[(who, target)]
    visibility = "public" if target == "pub" else "private"
    r = api.patch(f"/v1/arrays/alice/{target}", token=tok(seeded, who),
                  json={"visibility": visibility})
    assert r.status_code == expected[0], r.text
    refusals = [r]
    r = api.delete(f"/v1/arrays/alice/{target}", token=tok(seeded, who))
    assert r.status_code == expected[1], r.text
    for r in refusals + [r]:
        if r.status_code == 403:  # a refusal never names another account
            assert r.headers["X-Error-Code"] == "Forbidden"
            assert "alice" not in r.json()["Message"]
    still_there = api.get(f"/v1/arrays/alice/{target}", token=tok(seeded, "owner")).status_code
    assert still_there == (404 if who == "owner" else 200)


def test_abort_upload_matrix(api, users):
    plan = start(api, tok(users, "owner"), "alice/up", b"abc").json()
    path = f"/v1/arrays/alice/up/uploads/{plan['upload_id']}"
    assert api.delete(path, token=tok(users, "anonymous")).status_code == 401
    assert api.delete(path, token=tok(users, "other")).status_code == 403
    assert api.delete(path, token=tok(users, "owner")).status_code == 204
