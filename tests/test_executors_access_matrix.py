"""DESIGN.md's access matrix, cell by cell, over HTTP, for executors (real packages).

| action                  | owner     | other user  | anonymous   |
| push into the namespace | 201 / 200 | 403         | 401         |
| pull / info, public     | 200       | 200         | 200         |
| pull / info, private    | 200       | 404         | 404         |
| list namespace          | all       | public only | public only |
| patch / delete, public  | 200 / 204 | 403         | 401         |
| patch / delete, private | 200 / 204 | 404         | 401         |

Plus the executor-only routes: `?tag=` reads and pull credentials follow the pull rows.
And two columns for the owner's personal access tokens: a write token acts as the owner; a read
token reads as the owner (pull credentials included) and gets 403 `InsufficientScope` for every
push, patch, delete and abort, legacy pushes included.
"""
from __future__ import annotations

import pytest

from tests.executor_packages import package, pulled_zip, push_executor
from tests.helpers import (
    MATRIX_CALLERS,
    PATCH_DELETE_MATRIX,
    matrix_credentials,
    refused_for_scope,
    start,
)

WHO = MATRIX_CALLERS


@pytest.fixture
def creds(api, users):
    return matrix_credentials(api, users)


@pytest.fixture
def seeded(api, creds, tmp_path):
    t = creds["owner"]
    r = push_executor(api, t, "alice/pub", package(tmp_path, "pub"), visibility="public")
    assert r.status_code == 200, r.text
    assert push_executor(api, t, "alice/priv", package(tmp_path, "priv")).status_code == 200
    return creds


@pytest.mark.parametrize("who,start_status", [("owner", 201), ("other", 403), ("anonymous", 401),
                                               ("write token", 201), ("read token", 403)])
def test_push_into_the_namespace(api, creds, tmp_path, who, start_status):
    data = package(tmp_path)
    r = start(api, creds[who], "alice/new", data, kind="executors")
    assert r.status_code == start_status, r.text
    assert refused_for_scope(r) == (who == "read token")
    if start_status == 201:
        assert push_executor(api, creds[who], "alice/new", data).status_code == 200


@pytest.mark.parametrize("who", WHO)
def test_pull_public(api, seeded, who):
    for params in ({}, {"tag": "latest"}):
        r = api.get("/v1/executors/alice/pub", token=seeded[who], params=params)
        assert r.status_code == 200
        with pulled_zip(r.json()) as zf:
            assert "config.yml" in zf.namelist()
    assert api.get("/v1/executors/alice/pub/versions", token=seeded[who]).status_code == 200
    r = api.post("/v1/executors/alice/pub/pull-credentials", token=seeded[who])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("who,status", [("owner", 200), ("other", 404), ("anonymous", 404),
                                        ("write token", 200), ("read token", 200)])
def test_pull_private(api, seeded, who, status):
    r = api.get("/v1/executors/alice/priv", token=seeded[who])
    assert r.status_code == status
    tagged = api.get("/v1/executors/alice/priv", token=seeded[who], params={"tag": "latest"})
    assert tagged.status_code == status
    assert api.get("/v1/executors/alice/priv/versions", token=seeded[who]).status_code == status
    creds = api.post("/v1/executors/alice/priv/pull-credentials", token=seeded[who])
    assert creds.status_code == status
    if status == 404:
        missing = api.get("/v1/executors/alice/no_such_thing", token=seeded[who])
        assert missing.status_code == 404
        # indistinguishable from a missing one, apart from the name in the message
        for refused in (r, tagged, creds):
            assert refused.json()["Message"].replace("alice/priv'", "alice/X'") == \
                missing.json()["Message"].replace("alice/no_such_thing'", "alice/X'")
            assert "download_url" not in refused.text and "password" not in refused.text


@pytest.mark.parametrize("who,expected", [("owner", {"pub", "priv"}), ("other", {"pub"}),
                                          ("anonymous", {"pub"}), ("write token", {"pub", "priv"}),
                                          ("read token", {"pub", "priv"})])
def test_list_namespace(api, seeded, who, expected):
    r = api.get("/v1/executors/alice", token=seeded[who])
    assert r.status_code == 200
    items = r.json()["items"]
    assert {i["name"] for i in items} == expected
    assert all(i["kind"] == "executor" and "image_status" in i for i in items)


@pytest.mark.parametrize("target", ["pub", "priv"])
@pytest.mark.parametrize("who", WHO)
def test_patch_and_delete(api, seeded, who, target):
    expected = PATCH_DELETE_MATRIX[(who, target)]
    visibility = "public" if target == "pub" else "private"
    r = api.patch(f"/v1/executors/alice/{target}", token=seeded[who],
                  json={"visibility": visibility})
    assert r.status_code == expected[0], r.text
    assert refused_for_scope(r) == (who == "read token")
    r = api.delete(f"/v1/executors/alice/{target}", token=seeded[who])
    assert r.status_code == expected[1], r.text
    assert refused_for_scope(r) == (who == "read token")
    still_there = api.get(f"/v1/executors/alice/{target}", token=seeded["owner"]).status_code
    assert still_there == (404 if expected[1] == 204 else 200)


def test_abort_upload_matrix(api, creds, tmp_path):
    plan = start(api, creds["owner"], "alice/up", package(tmp_path), kind="executors").json()
    path = f"/v1/executors/alice/up/uploads/{plan['upload_id']}"
    assert api.delete(path, token=creds["anonymous"]).status_code == 401
    assert api.delete(path, token=creds["other"]).status_code == 403
    assert refused_for_scope(api.delete(path, token=creds["read token"]))
    assert api.delete(path, token=creds["write token"]).status_code == 204
    plan = start(api, creds["owner"], "alice/up", package(tmp_path), kind="executors").json()
    assert api.delete(f"/v1/executors/alice/up/uploads/{plan['upload_id']}",
                      token=creds["owner"]).status_code == 204


@pytest.mark.parametrize("path,method", [
    ("/v1/executors/alice/pub", "get"),
    ("/v1/executors/alice/pub/pull-credentials", "post"),
    ("/v1/legacy/executors/pub", "get"),
])
def test_a_bad_token_is_401_never_anonymous(api, seeded, path, method):
    r = getattr(api, method)(path, token="not-a-jwt")
    assert r.status_code == 401 and r.json()["Code"] == "Unauthorized"


def test_legacy_executor_routes_with_tokens(api, creds, tmp_path, capsys):
    """A legacy executor pushed by its owner: the owner's write token may, the read token
    reads it but gets 403 InsufficientScope for the push; the secret still works either way."""
    import json

    from chalicelib.admin import main
    from tests.executor_packages import executor_folder

    folder = executor_folder(tmp_path / "OldExec")
    assert main(["import-legacy-executor", "OldExec", "--owner", "alice", "--secret", "s3cret-x",
                 "--dir", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["alias_created"]
    data = package(tmp_path, "legacy")
    body = {"size": len(data), "sha256": __import__("hashlib").sha256(data).hexdigest()}
    for who in ("read token", "write token", "owner"):
        assert api.get("/v1/legacy/executors/OldExec", token=creds[who]).status_code == 200
    r = api.post("/v1/legacy/executors/OldExec/uploads", token=creds["read token"], json=body)
    assert refused_for_scope(r), r.text
    r = api.post("/v1/legacy/executors/OldExec/uploads", token=creds["write token"], json=body)
    assert r.status_code == 201, r.text
    r = api.post("/v1/legacy/executors/OldExec/uploads", token=creds["read token"], json=body,
                 headers={"X-Executor-Secret": "s3cret-x"})
    assert r.status_code == 201, r.text  # the secret is its own authority
