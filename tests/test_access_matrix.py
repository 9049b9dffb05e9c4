"""DESIGN.md's access matrix, cell by cell, over HTTP, for every resource kind (arrays and
executors, real packages), on /v1 and on the Hubble API (/v2/rpc) the Jina clients speak.

| action                  | owner     | other user  | anonymous   |
| push into the namespace | 201 / 200 | 403         | 401         |
| pull / info, public     | 200       | 200         | 200         |
| pull / info, private    | 200       | 404         | 404         |
| list namespace          | all       | public only | public only |
| patch / delete, public  | 200 / 204 | 403         | 401         |
| patch / delete, private | 200 / 204 | 404         | 401         |

Plus two columns for the owner's personal access tokens: a write token acts as the owner; a
read token reads as the owner and gets 403 `InsufficientScope` for every push, patch, delete
and abort, legacy executor pushes included. Every read route of a kind follows the pull rows
(executors: `?tag=` reads and pull credentials too). On /v2/rpc the same cells carry Hubble's
codes (shared/HUBBLE.md): 401 40103, 403 40301, 404 40403.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pytest
import requests
from urllib3.filepost import encode_multipart_formdata

from tests.executor_packages import package, pulled_zip
from tests.helpers import (
    MATRIX_CALLERS,
    PATCH_DELETE_MATRIX,
    matrix_credentials,
    push,
    refused_for_scope,
    start,
)

WHO = MATRIX_CALLERS


@dataclass(frozen=True)
class Kind:
    """What differs between the kinds: their path, their bytes, their read routes."""

    path: str  # arrays | executors
    name: str  # array | executor
    # the pull rows' routes besides GET /v1/{kind}/alice/X: (method, path suffix, params)
    reads: tuple[tuple[str, str, dict], ...]

    def payload(self, tmp_path, label: str) -> bytes:
        if self.name == "array":
            return f"{label} bytes".encode()
        return package(tmp_path, label)

    def check_download(self, info: dict, data: bytes) -> None:
        assert requests.get(info["download_url"], timeout=60).content == data
        if self.name == "executor":
            with pulled_zip(info) as zf:
                assert "config.yml" in zf.namelist()


ARRAYS = Kind("arrays", "array", reads=(("get", "/versions", {}),))
EXECUTORS = Kind("executors", "executor", reads=(
    ("get", "", {"tag": "latest"}),
    ("get", "/versions", {}),
    ("post", "/pull-credentials", {}),
))


@pytest.fixture(params=[ARRAYS, EXECUTORS], ids=["arrays", "executors"])
def kind(request) -> Kind:
    return request.param


@pytest.fixture
def creds(api, users):
    return matrix_credentials(api, users)


@pytest.fixture
def pushed(api, creds, kind, tmp_path) -> dict[str, bytes]:
    """alice's public `pub` and private `priv` of the kind: their bytes."""
    t = creds["owner"]
    data = {"pub": kind.payload(tmp_path, "pub"), "priv": kind.payload(tmp_path, "priv")}
    r = push(api, t, "alice/pub", data["pub"], kind=kind.path, visibility="public")
    assert r.status_code == 200, r.text
    assert push(api, t, "alice/priv", data["priv"], kind=kind.path).status_code == 200
    return data


@pytest.fixture
def seeded(pushed, creds):
    return creds


def reads(api, kind: Kind, target: str, token) -> list[requests.Response]:
    """Every read route of `alice/target`: GET first."""
    base = f"/v1/{kind.path}/alice/{target}"
    return [api.get(base, token=token)] + [
        getattr(api, method)(base + suffix, token=token, params=params)
        for method, suffix, params in kind.reads]


# ---------------------------------------------------------------- /v1


@pytest.mark.parametrize("who,start_status", [("owner", 201), ("other", 403), ("anonymous", 401),
                                               ("write token", 201), ("read token", 403)])
def test_push_into_the_namespace(api, creds, kind, tmp_path, who, start_status):
    data = kind.payload(tmp_path, "new")
    r = start(api, creds[who], "alice/new", data, kind=kind.path)
    assert r.status_code == start_status, r.text
    assert refused_for_scope(r) == (who == "read token")
    if start_status == 201:
        assert push(api, creds[who], "alice/new", data, kind=kind.path).status_code == 200


@pytest.mark.parametrize("who", WHO)
def test_pull_public(api, kind, pushed, seeded, who):
    for r in reads(api, kind, "pub", seeded[who]):
        assert r.status_code == 200, r.text
    for params in ({}, {"tag": "latest"}) if kind.name == "executor" else ({},):
        r = api.get(f"/v1/{kind.path}/alice/pub", token=seeded[who], params=params)
        kind.check_download(r.json(), pushed["pub"])


@pytest.mark.parametrize("who,status", [("owner", 200), ("other", 404), ("anonymous", 404),
                                        ("write token", 200), ("read token", 200)])
def test_pull_private(api, kind, seeded, who, status):
    found = reads(api, kind, "priv", seeded[who])
    for r in found:
        assert r.status_code == status, r.text
    if status == 404:
        missing = api.get(f"/v1/{kind.path}/alice/no_such_thing", token=seeded[who])
        assert missing.status_code == 404
        # indistinguishable from a missing one, apart from the name in the message
        for refused in found:
            assert refused.json()["Message"].replace("alice/priv'", "alice/X'") == \
                missing.json()["Message"].replace("alice/no_such_thing'", "alice/X'")
            assert "download_url" not in refused.text and "password" not in refused.text


@pytest.mark.parametrize("who,expected", [("owner", {"pub", "priv"}), ("other", {"pub"}),
                                          ("anonymous", {"pub"}), ("write token", {"pub", "priv"}),
                                          ("read token", {"pub", "priv"})])
def test_list_namespace(api, kind, seeded, who, expected):
    r = api.get(f"/v1/{kind.path}/alice", token=seeded[who])
    assert r.status_code == 200
    items = r.json()["items"]
    assert {i["name"] for i in items} == expected
    assert all(i["kind"] == kind.name for i in items)
    if kind.name == "executor":
        assert all("image_status" in i for i in items)


@pytest.mark.parametrize("target", ["pub", "priv"])
@pytest.mark.parametrize("who", WHO)
def test_patch_and_delete(api, kind, seeded, who, target):
    expected = PATCH_DELETE_MATRIX[(who, target)]
    visibility = "public" if target == "pub" else "private"
    r = api.patch(f"/v1/{kind.path}/alice/{target}", token=seeded[who],
                  json={"visibility": visibility})
    assert r.status_code == expected[0], r.text
    assert refused_for_scope(r) == (who == "read token")
    refusals = [r]
    r = api.delete(f"/v1/{kind.path}/alice/{target}", token=seeded[who])
    assert r.status_code == expected[1], r.text
    assert refused_for_scope(r) == (who == "read token")
    for r in refusals + [r]:
        if r.status_code == 403:  # a refusal never names another account
            assert r.headers["X-Error-Code"] == ("InsufficientScope" if who == "read token"
                                                 else "Forbidden")
            assert "alice" not in r.json()["Message"]
    still_there = api.get(f"/v1/{kind.path}/alice/{target}", token=seeded["owner"]).status_code
    assert still_there == (404 if expected[1] == 204 else 200)


def test_abort_upload_matrix(api, creds, kind, tmp_path):
    data = kind.payload(tmp_path, "up")
    plan = start(api, creds["owner"], "alice/up", data, kind=kind.path).json()
    path = f"/v1/{kind.path}/alice/up/uploads/{plan['upload_id']}"
    assert api.delete(path, token=creds["anonymous"]).status_code == 401
    assert api.delete(path, token=creds["other"]).status_code == 403
    assert refused_for_scope(api.delete(path, token=creds["read token"]))
    assert api.delete(path, token=creds["write token"]).status_code == 204
    plan = start(api, creds["owner"], "alice/up", data, kind=kind.path).json()
    assert api.delete(f"/v1/{kind.path}/alice/up/uploads/{plan['upload_id']}",
                      token=creds["owner"]).status_code == 204


def test_complete_and_part_urls_need_write(api, creds, kind, tmp_path):
    data = kind.payload(tmp_path, "up")
    plan = start(api, creds["write token"], "alice/up", data, kind=kind.path).json()
    path = f"/v1/{kind.path}/alice/up/uploads/{plan['upload_id']}"
    assert refused_for_scope(api.post(f"{path}/parts", token=creds["read token"], json={}))
    assert refused_for_scope(api.post(f"{path}/complete", token=creds["read token"],
                                      json={"parts": []}))
    assert api.post(f"{path}/parts", token=creds["write token"], json={}).status_code == 200


BAD_TOKEN_ROUTES = {
    "arrays": [("/v1/arrays/alice/pub", "get")],
    "executors": [("/v1/executors/alice/pub", "get"),
                  ("/v1/executors/alice/pub/pull-credentials", "post"),
                  ("/v1/legacy/executors/pub", "get")],
}


def test_a_bad_token_is_401_never_anonymous(api, kind, seeded):
    for path, method in BAD_TOKEN_ROUTES[kind.path]:
        r = getattr(api, method)(path, token="not-a-jwt")
        assert r.status_code == 401 and r.json()["Code"] == "Unauthorized", path


def test_legacy_executor_routes_with_tokens(api, creds, tmp_path, capsys):
    """A legacy executor pushed by its owner: the owner's write token may, the read token
    reads it but gets 403 InsufficientScope for the push; the secret still works either way."""
    from chalicelib.admin import main
    from tests.executor_packages import executor_folder

    folder = executor_folder(tmp_path / "OldExec")
    assert main(["import-legacy-executor", "OldExec", "--owner", "alice", "--secret", "s3cret-x",
                 "--dir", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["alias_created"]
    data = package(tmp_path, "legacy")
    body = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    for who in ("read token", "write token", "owner"):
        assert api.get("/v1/legacy/executors/OldExec", token=creds[who]).status_code == 200
    r = api.post("/v1/legacy/executors/OldExec/uploads", token=creds["read token"], json=body)
    assert refused_for_scope(r), r.text
    r = api.post("/v1/legacy/executors/OldExec/uploads", token=creds["write token"], json=body)
    assert r.status_code == 201, r.text
    r = api.post("/v1/legacy/executors/OldExec/uploads", token=creds["read token"], json=body,
                 headers={"X-Executor-Secret": "s3cret-x"})
    assert r.status_code == 201, r.text  # the secret is its own authority


# ---------------------------------------------------------------- /v2/rpc (Hubble)
# The Jina clients send `Authorization: token <TOKEN>`; answers are Hubble envelopes.

OK, UNAUTHENTICATED, NOT_ALLOWED, NOT_FOUND = (200, 20000), (401, 40103), (403, 40301), \
    (404, 40403)


def rpc(api, method: str, token: str | None, **kwargs) -> requests.Response:
    headers = {**kwargs.pop("headers", {}),
               **({"Authorization": f"token {token}"} if token else {})}
    return api.post(f"/v2/rpc/{method}", headers=headers, **kwargs)


def outcome(r: requests.Response) -> tuple[int, int]:
    """(HTTP status, Hubble status) of an answer; a streamed push's last line says it."""
    if r.headers.get("Content-Type", "").startswith("application/x-ndjson"):
        last = json.loads(r.text.splitlines()[-1])
        return r.status_code, OK[1] if last["type"] == "complete" else -1
    return r.status_code, r.json()["status"]


def refused_for_scope_rpc(r: requests.Response) -> bool:
    """A read-only token's refusal, in Hubble's envelope (which has no X-Error-Code)."""
    return outcome(r) == NOT_ALLOWED and "read-only" in r.json()["readableMessage"]


def rpc_push(api, kind: Kind, token: str | None, full_name: str, data: bytes, public=False):
    """A push as the Jina clients send it: docarray's artifact.upload, jina's executor.push."""
    if kind.name == "array":
        fields = {"file": ("DocumentArray", data), "name": full_name, "type": "documentArray",
                  "public": str(public), "metaData": json.dumps({"summary": []})}
        method = "artifact.upload"
    else:
        fields = {"id": full_name, "md5sum": hashlib.md5(data).hexdigest(),  # noqa: S324
                  "public": str(public), "private": str(not public), "file": ("pkg.zip", data)}
        method = "executor.push"
    body, ctype = encode_multipart_formdata(fields)
    return rpc(api, method, token, data=body, headers={"Content-Type": ctype})


def rpc_reads(api, kind: Kind, token: str | None, full_name: str) -> list[requests.Response]:
    """Every Hubble read of `full_name`: the download URL and detail of an array, the package
    of an executor (with and without `latest`)."""
    if kind.name == "array":
        return [api.get(f"/v2/rpc/artifact.getDownloadUrl?name={full_name}",
                        headers={"Authorization": f"token {token}"} if token else {}),
                rpc(api, "artifact.getDownloadUrl", token, data={"id": full_name}),
                rpc(api, "artifact.getDetail", token, data={"name": full_name})]
    return [rpc(api, "executor.getPackage", token, json={"id": full_name, "include": ["code"]}),
            rpc(api, "executor.getPackage", token,
                json={"id": full_name, "include": ["code"], "tag": "latest"})]


@pytest.mark.parametrize("who,expected", [("owner", OK), ("other", NOT_ALLOWED),
                                          ("anonymous", UNAUTHENTICATED), ("write token", OK),
                                          ("read token", NOT_ALLOWED)])
def test_rpc_push_into_the_namespace(api, creds, kind, tmp_path, who, expected):
    r = rpc_push(api, kind, creds[who], "alice/new", kind.payload(tmp_path, "new"))
    assert outcome(r) == expected, r.text
    if expected != OK:
        assert r.json()["readableMessage"] and r.json()["data"] is None
        assert refused_for_scope_rpc(r) == (who == "read token")
    owner_sees = api.get(f"/v1/{kind.path}/alice/new", token=creds["owner"]).status_code
    assert owner_sees == (200 if expected == OK else 404)


@pytest.mark.parametrize("target", ["pub", "priv"])
@pytest.mark.parametrize("who", WHO)
def test_rpc_reads(api, kind, pushed, seeded, who, target):
    refused = target == "priv" and who in ("other", "anonymous")
    for r in rpc_reads(api, kind, seeded[who], f"alice/{target}"):
        assert outcome(r) == (NOT_FOUND if refused else OK), r.text
        if refused:
            assert "download" not in json.dumps(r.json()["data"] or {})
        elif kind.name == "array" and "download" in r.json()["data"]:
            got = requests.get(r.json()["data"]["download"], timeout=60).content
            assert got == pushed[target]
        elif kind.name == "executor":
            got = requests.get(r.json()["data"]["package"]["download"], timeout=60).content
            assert got == pushed[target]


@pytest.fixture
def arrays_seeded(api, creds, tmp_path):
    t = creds["owner"]
    assert push(api, t, "alice/pub", b"pub bytes", visibility="public").status_code == 200
    assert push(api, t, "alice/priv", b"priv bytes").status_code == 200
    return creds


@pytest.mark.parametrize("who,expected", [("owner", {"alice/pub", "alice/priv"}),
                                          ("other", set()), ("anonymous", UNAUTHENTICATED),
                                          ("write token", {"alice/pub", "alice/priv"}),
                                          ("read token", {"alice/pub", "alice/priv"})])
def test_rpc_list_is_the_callers_own(api, arrays_seeded, who, expected):
    r = rpc(api, "artifact.list", arrays_seeded[who])
    if isinstance(expected, tuple):
        assert outcome(r) == expected, r.text
        return
    assert outcome(r) == OK, r.text
    assert {a["name"] for a in r.json()["data"]} == expected


@pytest.mark.parametrize("target", ["pub", "priv"])
@pytest.mark.parametrize("who", WHO)
def test_rpc_delete(api, arrays_seeded, who, target):
    status = PATCH_DELETE_MATRIX[(who, target)][1]
    expected = {204: OK, 401: UNAUTHENTICATED, 403: NOT_ALLOWED, 404: NOT_FOUND}[status]
    r = rpc(api, "artifact.delete", arrays_seeded[who], data={"name": f"alice/{target}"})
    assert outcome(r) == expected, r.text
    assert refused_for_scope_rpc(r) == (who == "read token")
    if r.status_code == 403:
        assert "alice" not in r.json()["readableMessage"]
    still_there = api.get(f"/v1/arrays/alice/{target}", token=arrays_seeded["owner"]).status_code
    assert still_there == (404 if status == 204 else 200)


@pytest.mark.parametrize("who,create,delete", [
    ("owner", OK, OK), ("other", OK, NOT_FOUND), ("anonymous", UNAUTHENTICATED, UNAUTHENTICATED),
    ("write token", NOT_ALLOWED, NOT_ALLOWED), ("read token", NOT_ALLOWED, NOT_ALLOWED)])
def test_rpc_tokens_are_managed_by_a_sign_in_only(api, creds, who, create, delete):
    """user.pat.*: an account's tokens, listed by any of its credentials; only a sign-in creates
    or revokes them (a token never does), and another account finds none of alice's."""
    r = rpc(api, "user.pat.create", creds[who], data={"name": "notebook"})
    assert outcome(r) == create, r.text
    listed = rpc(api, "user.pat.list", creds[who])
    if who == "anonymous":
        assert outcome(listed) == UNAUTHENTICATED
    else:
        names = {t["name"] for t in listed.json()["data"]["personal_access_tokens"]}
        alices = {"matrix write", "matrix read"} | ({"notebook"} if create == OK else set())
        assert names == ({"notebook"} if who == "other" else alices)
    r = rpc(api, "user.pat.delete", creds[who], data={"name": "matrix read"})
    assert outcome(r) == delete, r.text
    left = rpc(api, "user.pat.list", creds["owner"]).json()["data"]["personal_access_tokens"]
    assert ("matrix read" in {t["name"] for t in left}) == (delete != OK)
