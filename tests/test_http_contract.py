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


# ---------------------------------------------------------------- unknown routes, methods


@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"), ("GET", "/v1/arrays"), ("POST", "/v3/anything"), ("PUT", "/console"),
    ("GET", "/v1/arrays/alice/ds/versions/1/extra/deep"), ("DELETE", "/v1/tokens/abc/def/x"),
])
@pytest.mark.parametrize("signed_in", [False, True])
def test_unknown_routes_are_404_in_the_error_contract(api, users, method, path, signed_in):
    from chalicelib.errors import UNKNOWN_ROUTE_MESSAGE

    r = api.request(method, path, token=token(users) if signed_in else None)
    assert (r.status_code, r.headers["X-Error-Code"]) == (404, "NotFound"), r.text
    assert r.json() == {"Code": "NotFound", "Message": UNKNOWN_ROUTE_MESSAGE}


def test_wrong_method_is_405_and_wrong_body_type_415_in_the_error_contract(api, users):
    r = api.delete("/v1/config")
    assert (r.status_code, r.headers["X-Error-Code"]) == (405, "MethodNotAllowed"), r.text
    assert r.json()["Code"] == "MethodNotAllowed" and "GET" in r.json()["Message"]
    assert r.headers["Allow"] == "GET"
    r = api.post("/v1/auth/login", data="username=alice", headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.headers["X-Error-Code"]) == (415, "UnsupportedMediaType"), r.text
    assert "application/json" in r.json()["Message"]


def test_head_then_get_on_one_keep_alive_connection(live_api):
    import http.client
    import json
    from urllib.parse import urlparse

    where = urlparse(live_api)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        for path in ("/v1/config", "/nope"):
            conn.request("HEAD", path)
            head = conn.getresponse()
            assert head.status in (404, 405) and head.read() == b""
            assert head.getheader("X-Error-Code") in ("NotFound", "MethodNotAllowed")
            conn.request("GET", "/v1/config")  # the same connection
            got = conn.getresponse()
            assert got.status == 200
            assert "part_size" in json.loads(got.read())
    finally:
        conn.close()


def test_api_gateway_answers_unknown_routes_in_the_error_contract():
    """What `make package` deploys: API Gateway's own answers in the contract."""
    import json
    from pathlib import Path

    from chalicelib.errors import UNKNOWN_ROUTE_MESSAGE
    from devstack.bootstrap import load_template
    from infra.package import merge  # what `make package` does

    infra = Path(__file__).resolve().parent.parent / "infra"

    template = merge(dict(load_template(infra / "template.yaml")),
                     load_template(infra / "functions.yaml"))
    responses = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"]
    unknown = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert unknown["statusCode"] == "404"
    assert unknown["responseParameters"]["gatewayresponse.header.X-Error-Code"] == "'NotFound'"
    assert json.loads(unknown["responseTemplates"]["application/json"]) == {
        "Code": "NotFound", "Message": UNKNOWN_ROUTE_MESSAGE}
    for response in responses.values():
        body = json.loads(response["responseTemplates"]["application/json"])
        code = response["responseParameters"]["gatewayresponse.header.X-Error-Code"]
        assert code == f"'{body['Code']}'" and body["Message"]
