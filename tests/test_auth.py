"""Sign-up, confirmation, sign-in, refresh and /v1/me over HTTP, and every refusal."""
from __future__ import annotations


def test_config_is_public(api, aws_env):
    r = api.get("/v1/config")
    assert r.status_code == 200
    body = r.json()
    assert body["user_pool_id"] == aws_env["NSHUB_USER_POOL_ID"]
    assert body["client_id"] == aws_env["NSHUB_CLIENT_ID"]
    assert body["max_upload_bytes"] == 50 * 1024**3


def test_signup_login_me_refresh(api):
    r = api.post("/v1/auth/signup", json={"username": "carol", "password": "Carol-passw0rd",
                                          "email": "carol@example.com"})
    assert r.status_code == 201, r.text
    assert r.json()["confirmed"] is True
    r = api.post("/v1/auth/login", json={"username": "carol", "password": "Carol-passw0rd"})
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert {"id_token", "access_token", "refresh_token", "expires_in"} <= set(tokens)
    for token in (tokens["id_token"], tokens["access_token"]):
        me = api.get("/v1/me", token=token)
        assert me.status_code == 200, me.text
        assert me.json() == {"username": "carol", "namespace": "carol"}
    r = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    assert api.get("/v1/me", token=r.json()["id_token"]).json()["username"] == "carol"


def test_username_is_case_insensitive_at_login(api, users):
    r = api.post("/v1/auth/login", json={"username": "ALICE", "password": users["alice"]["password"]})
    assert r.status_code == 200


def test_me_needs_a_caller(api):
    r = api.get("/v1/me")
    assert r.status_code == 401
    assert r.headers["X-Error-Code"] == "Unauthorized"
    assert r.json()["Code"] == "Unauthorized"


def test_signup_refusals(api, users):
    cases = [
        ({"username": "a", "password": "Xx-passw0rd1", "email": "a@x.io"}, 400, "InvalidName"),
        ({"username": "admin", "password": "Xx-passw0rd1", "email": "a@x.io"}, 400, "InvalidName"),
        ({"username": "jinaai", "password": "Xx-passw0rd1", "email": "a@x.io"}, 400, "InvalidName"),
        ({"username": "bad--name", "password": "Xx-passw0rd1", "email": "a@x.io"}, 400, "InvalidName"),
        ({"username": "-bad", "password": "Xx-passw0rd1", "email": "a@x.io"}, 400, "InvalidName"),
        ({"username": "x" * 40, "password": "Xx-passw0rd1", "email": "a@x.io"}, 400, "InvalidName"),
        ({"username": "dave/x", "password": "Xx-passw0rd1", "email": "a@x.io"}, 400, "InvalidName"),
        ({"username": "alice", "password": "Xx-passw0rd1", "email": "a@x.io"}, 409, "Conflict"),
        ({"username": "dave", "password": "weak", "email": "d@x.io"}, 400, "InvalidRequest"),
        ({"username": "dave", "password": "Xx-passw0rd1"}, 400, "InvalidRequest"),
    ]
    for payload, status, code in cases:
        r = api.post("/v1/auth/signup", json=payload)
        assert (r.status_code, r.headers.get("X-Error-Code")) == (status, code), (payload, r.text)
        assert r.json()["Message"]


def test_weak_password_reason_comes_from_cognito(api):
    r = api.post("/v1/auth/signup", json={"username": "dave", "password": "alllowercase1",
                                          "email": "d@x.io"})
    assert r.status_code == 400
    assert "password" in r.json()["Message"].lower()


def test_malformed_bodies(api):
    for raw in (b"{not json", b"[1, 2]", b"", b"\xff\xfe"):
        r = api.post("/v1/auth/login", data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, raw
        assert r.headers["X-Error-Code"] == "InvalidRequest"


def test_wrong_password_and_unknown_user_look_the_same(api, users):
    wrong = api.post("/v1/auth/login", json={"username": "alice", "password": "Nope-passw0rd"})
    unknown = api.post("/v1/auth/login", json={"username": "zed", "password": "Nope-passw0rd"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_bad_refresh_token(api):
    r = api.post("/v1/auth/refresh", json={"refresh_token": "not-a-token"})
    assert r.status_code == 401


def test_prod_stage_needs_confirmation(api, monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("NSHUB_STAGE", "prod")
    config.reset()
    r = api.post("/v1/auth/signup", json={"username": "erin", "password": "Erin-passw0rd",
                                          "email": "erin@example.com"})
    assert r.status_code == 201
    assert r.json()["confirmed"] is False
    r = api.post("/v1/auth/login", json={"username": "erin", "password": "Erin-passw0rd"})
    assert r.status_code == 403
    assert "confirm" in r.json()["Message"]
    r = api.post("/v1/auth/confirm", json={"username": "erin", "code": "123456"})
    assert r.status_code == 200, r.text
    r = api.post("/v1/auth/login", json={"username": "erin", "password": "Erin-passw0rd"})
    assert r.status_code == 200


def test_logs_carry_request_and_caller_but_no_secret(api, users):
    """Log lines as Powertools writes them: request id and username on each, no secrets."""
    import json
    import logging

    from chalicelib.observability import logger

    lines = []

    class Collect(logging.Handler):
        def emit(self, record):  # runs on the server's thread, where the keys are set
            lines.append(logger.registered_formatter.format(record))

    handler = Collect()
    logger.addHandler(handler)
    try:
        secret_password = "Wrong-passw0rd-XYZ"
        api.post("/v1/auth/login", json={"username": "alice", "password": secret_password})
        r = api.post("/v1/auth/login", json={"username": "alice",
                                              "password": users["alice"]["password"]})
        tokens = r.json()
        api.get("/v1/arrays/alice/nothing", token=tokens["id_token"])
        before_pats = len(lines)
        # personal access tokens: made, used in both forms, refused (read-only), revoked
        made = api.post("/v1/tokens", token=tokens["id_token"],
                        json={"name": "ci", "scopes": ["read"]}).json()
        pat = made["token"]
        api.get("/v1/arrays/alice/nothing", token=pat)
        api.get("/v1/me", headers={"Authorization": f"token {pat}"})
        api.patch("/v1/arrays/alice/nothing", token=pat, json={"visibility": "public"})
        api.get("/v1/tokens", token=pat)
        api.delete(f"/v1/tokens/{made['id']}", token=tokens["id_token"])
        api.get("/v1/me", token=pat)
        api.get("/v1/me", token=pat[:-1] + "!")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(lines)
    import hashlib

    pat_hash = hashlib.sha256(pat.encode()).hexdigest()
    for secret in (secret_password, users["alice"]["password"], tokens["id_token"],
                   tokens["refresh_token"], tokens["access_token"], pat, pat[6:], pat[:-1],
                   pat_hash):
        assert secret not in text
    records = [json.loads(line) for line in lines]
    # a refusal of a token's request names its account, not the token
    assert any(rec.get("code") == "InsufficientScope" and rec["username"] == "alice"
               for rec in records)
    assert records and all(rec.get("request_id") for rec in records)
    assert records[before_pats - 1]["username"] == "alice"
    assert records[0].get("username") is None  # the failed login: nobody signed in
