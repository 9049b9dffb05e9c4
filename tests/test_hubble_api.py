"""The Hubble API subset (/v2/rpc) over HTTP, as the Jina clients' requests look on the wire:
envelopes, codes from the clients' table, form and multipart bodies, the upload cap.
(The clients themselves run in tests/jina/.)"""
from __future__ import annotations

import hashlib
import json

import requests
from urllib3.filepost import encode_multipart_formdata

from tests.helpers import push

RPC = "/v2/rpc/"


def rpc(api, method, token=None, **kwargs):
    return api.post(RPC + method, token=token, **kwargs)


def multipart(fields: dict) -> tuple[bytes, dict]:
    data, ctype = encode_multipart_formdata(fields)
    return data, {"Content-Type": ctype}


def upload(api, token, name, payload: bytes, public="False", chunked=False):
    data, headers = multipart({"file": ("DocumentArray", payload), "name": name,
                               "type": "documentArray", "public": public,
                               "metaData": json.dumps({"summary": [
                                   {"name": "Length", "value": 2, "description": "x"}]})})
    body = iter([data[:100], data[100:]]) if chunked else data  # a generator goes chunked
    return rpc(api, "artifact.upload", token=token, data=body, headers=headers)


def test_whoami_envelope_and_errors(api, users):
    r = rpc(api, "user.identity.whoami", token=users["alice"]["id_token"])
    assert r.status_code == 200
    assert r.json() == {"code": 200, "status": 20000, "meta": None, "data": {
        "_id": "alice", "name": "alice", "nickname": "alice", "namespace": "alice"}}

    r = rpc(api, "user.identity.whoami", token="not-a-token")
    assert r.status_code == 401
    assert r.json()["status"] == 40103 and r.json()["data"] is None
    assert r.json()["readableMessage"] == r.json()["message"] != ""

    r = rpc(api, "dockerRegistry.listInternalRegistries")
    assert (r.status_code, r.json()["data"]) == (200, [])


def test_chunked_upload_then_download_by_get_and_by_form(api, users):
    token = users["alice"]["id_token"]
    payload = b"\x01" + bytes(range(256)) * 10  # not UTF-8: the multipart body is binary
    r = upload(api, token, "alice/raw", payload, chunked=True)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["name"] == "alice/raw"
    assert r.json()["data"]["metaData"]["summary"] == [{"name": "Length", "value": 2}]

    r = api.get(RPC + "artifact.getDownloadUrl?name=alice/raw", token=token)
    assert r.status_code == 200, r.text
    got = requests.get(r.json()["data"]["download"], timeout=30)
    assert got.content == payload and int(got.headers["Content-Length"]) == len(payload)

    r = rpc(api, "artifact.getDownloadUrl", token=token, data={"id": "alice/raw"})
    assert requests.get(r.json()["data"]["download"], timeout=30).content == payload
    # private: another user is told it does not exist, with the client's code
    r = rpc(api, "artifact.getDownloadUrl", token=users["bob"]["id_token"],
            data={"id": "alice/raw"})
    assert (r.status_code, r.json()["status"]) == (404, 40403)


def test_refused_pushes_are_readable(api, users):
    bob = users["bob"]["id_token"]
    r = upload(api, bob, "alice/x", b"\x01data")
    assert (r.status_code, r.json()["status"]) == (403, 40301)
    assert r.json()["readableMessage"] == "you can only push into your own namespace 'bob'"

    r = upload(api, bob, "fashion_mnist", b"\x01data")  # a bare name: legacy, read-only
    assert (r.status_code, r.json()["status"]) == (409, 40301)
    assert "push 'bob/fashion_mnist'" in r.json()["readableMessage"]

    r = upload(api, None, "bob/x", b"\x01data")
    assert (r.status_code, r.json()["status"]) == (401, 40103)


def test_malformed_bodies_are_400(api, users):
    token = users["alice"]["id_token"]
    headers = {"Content-Type": "multipart/form-data; boundary=abc"}
    for body in (b"garbage", b"--abc\r\nno header end", b"--abc\r\nX: y\r\n\r\ncut short"):
        r = rpc(api, "artifact.upload", token=token, data=body, headers=headers)
        assert (r.status_code, r.json()["status"]) == (400, 40001), r.text
    data, headers = multipart({"file": ("f", b"\x01x"), "name": "alice/odd",
                               "metaData": json.dumps({"summary": [{"name": {"a": 1}}, 3]})})
    r = rpc(api, "artifact.upload", token=token, data=data, headers=headers)
    assert r.status_code == 200, r.text  # odd summary entries are dropped, not a 500
    for meta in ("not json", "[1]"):
        data, headers = multipart({"file": ("f", b"\x01x"), "name": "alice/odd",
                                   "metaData": meta})
        r = rpc(api, "artifact.upload", token=token, data=data, headers=headers)
        assert (r.status_code, r.json()["status"]) == (400, 40001), r.text
    r = rpc(api, "artifact.list", token=token, data=b"[1]",
            headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["status"]) == (400, 40001)
    r = rpc(api, "artifact.list", token=token, json={"pageSize": 0})
    assert (r.status_code, r.json()["status"]) == (400, 40001)
    # JSON as only Python reads it (NaN, a number past a float) and numbers int() refuses
    for body in (b'{"pageSize": 1e400}', b'{"pageSize": NaN}', b'{"pageIndex": Infinity}'):
        r = rpc(api, "artifact.list", token=token, data=body,
                headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["status"]) == (400, 40001), r.text
    for days in ("\u00b2", "9" * 5000, "-1", "1.5"):
        r = rpc(api, "user.pat.create", token=token, data={"name": "n", "expirationDays": days})
        assert (r.status_code, r.json()["status"]) == (400, 40001), (days, r.text)
    for meta in ('{"summary": [{"name": "Length", "value": NaN}]}', '{"x": 1e999}'):
        data, headers = multipart({"file": ("f", b"\x01x"), "name": "alice/nan",
                                   "metaData": meta})
        r = rpc(api, "artifact.upload", token=token, data=data, headers=headers)
        assert (r.status_code, r.json()["status"]) == (400, 40001), r.text
        assert "finite numbers" in r.json()["readableMessage"]


def test_upload_over_the_cap_is_413(api, users, monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("NSHUB_HUBBLE_MAX_BODY_BYTES", "1000")
    config.reset()
    r = upload(api, users["alice"]["id_token"], "alice/big", b"\x01" + b"x" * 2000)
    assert (r.status_code, r.json()["status"]) == (413, 41301)
    assert "push it with `nshub push FILE alice/big`" in r.json()["readableMessage"]


def test_list_pages_and_legacy_delete(api, users):
    token = users["alice"]["id_token"]
    for name in ("one", "two", "three"):
        assert push(api, token, f"alice/{name}", name.encode()).status_code == 200
    r = rpc(api, "artifact.list", token=token,
            json={"filter": {"type": "documentArray"}, "sort": {"createdAt": 1},
                  "pageIndex": 2, "pageSize": 2})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["total"] == 3
    assert len(r.json()["data"]) == 1

    r = rpc(api, "artifact.delete", token=token, data={"name": "fashion_mnist"})
    assert (r.status_code, r.json()["status"]) == (409, 40301)


def test_executor_package_carries_md5_and_commit(api, users, tmp_path):
    from tests.executor_packages import package

    token = users["alice"]["id_token"]
    data = package(tmp_path)
    assert push(api, token, "alice/MyExecutor", data, kind="executors",
                visibility="public", tags=["v1"]).status_code == 200
    r = rpc(api, "executor.getPackage", json={"id": "alice/MyExecutor", "include": ["code"],
                                              "rebuildImage": True})
    assert r.status_code == 200, r.text
    found = r.json()["data"]
    assert found["id"] == "alice.MyExecutor" and found["visibility"] == "public"
    assert found["commit"]["tags"] == ["v1"] and found["commit"]["id"].startswith("v1-")
    assert found["package"]["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324
    assert found["package"]["containers"] == []
    got = requests.get(found["package"]["download"], timeout=30).content
    assert got == data

    r = rpc(api, "executor.getPackage", json={"id": "alice/MyExecutor", "tag": "nope"})
    assert (r.status_code, r.json()["status"]) == (404, 40403)
