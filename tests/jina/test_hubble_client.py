"""jina-hubble-sdk 0.39's `hubble.Client`, unmodified: whoami, upload, list, getDetail,
download, delete, and its typed errors (issue 12, flow 3)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.jina_clients

HUBBLE = "hubble039"


def test_whoami_upload_list_detail_download_delete(jina_client, api, users):
    alice = jina_client(HUBBLE, "alice")
    run = alice.run("""
import hashlib, io
import hubble
client = hubble.Client(jsonify=True)
me = client.get_user_info()["data"]
up = client.upload_artifact(io.BytesIO(b"hello nshub" * 100), name="alice/blob",
                            metadata={"note": "from hubble"}, is_public=True)
listed = client.list_artifacts(filter={"type": "documentArray"}, sort={"createdAt": 1})
detail = client.get_artifact_info(id="alice/blob")["data"]
buf = client.download_artifact(id="alice/blob", f=io.BytesIO())
client.delete_artifact(id="alice/blob")
try:
    client.get_artifact_info(id="alice/blob")
    gone = None
except hubble.excepts.RequestedEntityNotFoundError as exc:
    gone = str(exc)
report({"me": me, "up": up["data"]["name"], "listed": [a["name"] for a in listed["data"]],
        "total": listed["meta"]["total"], "detail": detail,
        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(), "gone": gone})
""")
    assert run.returncode == 0, run
    out = run.result
    assert out["me"]["name"] == "alice" and out["me"]["nickname"] == "alice"
    assert out["up"] == "alice/blob"
    assert out["listed"] == ["alice/blob"] and out["total"] == 1
    assert out["detail"]["visibility"] == "public"
    assert out["detail"]["metaData"]["summary"] == [{"name": "Length", "value": None}]
    import hashlib

    assert out["sha256"] == hashlib.sha256(b"hello nshub" * 100).hexdigest()
    assert out["detail"]["sha256"] == out["sha256"]
    assert out["gone"] == "40403: array 'alice/blob' does not exist or is private: check " \
        "the name and your login"
    # deleted for nshub too
    assert api.get("/v1/arrays/alice/blob", token=users["alice"]["id_token"]).status_code == 404


def test_bad_token_raises_authentication_required(jina_client):
    client = jina_client(HUBBLE, None)
    run = client.run("""
import hubble
from hubble.excepts import AuthenticationRequiredError
try:
    hubble.Client(jsonify=True).get_user_info()
except AuthenticationRequiredError as exc:
    report({"type": type(exc).__name__, "message": str(exc)})
""", token="nshub_not-a-real-token")
    assert run.returncode == 0, run
    assert run.result["type"] == "AuthenticationRequiredError"
    assert run.result["message"].startswith("40103: ")


def test_anonymous_whoami_and_unknown_method(jina_client, live_api):
    import requests

    r = requests.post(f"{live_api}/v2/rpc/user.identity.whoami", timeout=30)
    assert r.status_code == 401
    assert r.json()["status"] == 40103 and r.json()["code"] == 401
    assert "JINA_AUTH_TOKEN" in r.json()["readableMessage"]

    r = requests.post(f"{live_api}/v2/rpc/sandbox.create", timeout=30)
    assert r.status_code == 404
    assert r.json() == {"code": 404, "status": 40402, "data": None,
                        "message": "nshub does not serve the Hubble method 'sandbox.create'",
                        "readableMessage": "nshub does not serve the Hubble method "
                                           "'sandbox.create'"}


def test_personal_access_tokens_from_the_token_store(jina_client, api, users):
    # A token lists its account's tokens but cannot make or revoke tokens.
    run = jina_client(HUBBLE, "alice").run("""
import hubble
from hubble.excepts import OperationNotAllowedError
client = hubble.Client(jsonify=True)
names = [t["name"] for t in client.list_personal_access_tokens()["data"]["personal_access_tokens"]]
refused = []
for call in (lambda: client.create_personal_access_token("more", 7),
             lambda: client.delete_personal_access_token("jina clients")):
    try:
        call()
    except OperationNotAllowedError as exc:
        refused.append(str(exc).split(":")[0])
report({"names": names, "refused": refused})
""")
    assert run.returncode == 0, run
    assert run.result == {"names": ["jina clients"], "refused": ["40301", "40301"]}

    # A sign-in may: the same methods over HTTP with alice's ID token.
    id_token = users["alice"]["id_token"]
    r = api.post("/v2/rpc/user.pat.create", token=id_token,
                 data={"name": "notebook", "expirationDays": 7})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["token"].startswith("nshub_")
    r = api.post("/v2/rpc/user.pat.delete", token=id_token, data={"name": "notebook"})
    assert r.status_code == 200, r.text
    r = api.post("/v2/rpc/user.pat.list", token=id_token)
    assert [t["name"] for t in r.json()["data"]["personal_access_tokens"]] == ["jina clients"]
