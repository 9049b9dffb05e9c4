"""Personal access tokens over HTTP: /v1/tokens, both header forms, scopes, expiry (with a
clock the test controls), revocation, the live-token limit, last use, hostile token strings.

Given alice and bob signed in (ID tokens), when alice makes tokens, then they act as alice
with their scopes until they expire or are revoked, and every bad one is 401, never anonymous.
"""
from __future__ import annotations

import hashlib
import re

import pytest

from tests.helpers import make_token, pull, push

DAY = 86400


def id_token(users, who="alice"):
    return users[who]["id_token"]


def refused(r, status, code, *words):
    assert r.status_code == status, r.text
    assert r.headers["X-Error-Code"] == code and r.json()["Code"] == code
    message = r.json()["Message"]
    for word in words:
        assert word in message, message
    return message


def test_create_shows_the_secret_once_and_lists_without_it(api, users, clock):
    r = api.post("/v1/tokens", token=id_token(users),
                 json={"name": "nightly CI", "scopes": ["read", "write"], "expires_in_days": 30})
    assert r.status_code == 201, r.text
    made = r.json()
    assert set(made) == {"id", "name", "scopes", "created_at", "expires_at", "token"}
    assert re.fullmatch(r"nshub_[0-9A-Za-z]{40}", made["token"])
    assert made["name"] == "nightly CI" and made["scopes"] == ["read", "write"]
    secret = made.pop("token")

    listed = api.get("/v1/tokens", token=id_token(users))
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item == {**made, "last_used_at": None}
    assert secret not in listed.text and hashlib.sha256(secret.encode()).hexdigest() not in listed.text
    # bob sees none of alice's tokens
    assert api.get("/v1/tokens", token=id_token(users, "bob")).json()["items"] == []


def test_defaults_read_scope_and_90_days(api, users, clock):
    r = api.post("/v1/tokens", token=id_token(users), json={"name": "notebook"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["scopes"] == ["read"]
    from chalicelib.times import iso

    assert made["expires_at"] == iso(int(clock.now) + 90 * DAY)


@pytest.mark.parametrize("body,words", [
    ({}, ["name"]),
    ({"name": ""}, ["name"]),
    ({"name": "x" * 101}, ["name"]),
    ({"name": "bad\nname"}, ["name"]),
    ({"name": "ci", "scopes": ["admin"]}, ["scopes"]),
    ({"name": "ci", "scopes": []}, ["scopes"]),
    ({"name": "ci", "scopes": "write"}, ["scopes"]),
    ({"name": "ci", "expires_in_days": 0}, ["expires_in_days"]),
    ({"name": "ci", "expires_in_days": 366}, ["expires_in_days"]),
    ({"name": "ci", "expires_in_days": True}, ["expires_in_days"]),
    ({"name": "ci", "expires_in_days": 1.5}, ["expires_in_days"]),
    ({"name": "ci", "owner": "bob"}, ["owner"]),
])
def test_bad_create_bodies_are_400(api, users, body, words):
    refused(api.post("/v1/tokens", token=id_token(users), json=body), 400, "InvalidRequest", *words)


def test_both_header_forms_and_jwts_in_both(api, users):
    secret = make_token(api, id_token(users))
    for scheme in ("Bearer", "token", "TOKEN", "bearer"):
        for credential in (secret, id_token(users)):
            r = api.get("/v1/me", headers={"Authorization": f"{scheme} {credential}"})
            assert r.status_code == 200, (scheme, r.text)
            assert r.json()["username"] == "alice"


def test_a_write_token_pushes_and_pulls_like_its_account(api, users):
    secret = make_token(api, id_token(users), scopes=["read", "write"])
    data = b"pushed with a token"
    assert push(api, secret, "alice/ds", data).status_code == 200
    info, pulled = pull(api, secret, "alice/ds")
    assert pulled == data and info["full_name"] == "alice/ds"
    r = api.patch("/v1/arrays/alice/ds", token=secret, json={"visibility": "public"})
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    # its account's rules, not more: bob's namespace is still bob's
    refused(api.post("/v1/arrays/bob/ds/uploads", token=secret, json={"size": 1, "sha256": "0" * 64}),
            403, "Forbidden")
    assert api.delete("/v1/arrays/alice/ds", token=secret).status_code == 204


def test_a_read_token_reads_but_never_writes(api, users):
    owner = id_token(users)
    assert push(api, owner, "alice/ds", b"private bytes").status_code == 200
    secret = make_token(api, owner, scopes=["read"])
    assert pull(api, secret, "alice/ds")[1] == b"private bytes"
    assert api.get("/v1/arrays/alice", token=secret).json()["items"][0]["name"] == "ds"
    body = {"size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    for r in (api.post("/v1/arrays/alice/ds/uploads", token=secret, json=body),
              api.post("/v1/arrays/alice/new/uploads", token=secret, json=body),
              api.patch("/v1/arrays/alice/ds", token=secret, json={"visibility": "public"}),
              api.delete("/v1/arrays/alice/ds", token=secret)):
        refused(r, 403, "InsufficientScope", "read-only", "--scope write")
    assert api.get("/v1/arrays/alice/ds", token=owner).json()["visibility"] == "private"


def test_tokens_cannot_manage_tokens(api, users):
    secret = make_token(api, id_token(users), scopes=["read", "write"])
    refused(api.post("/v1/tokens", token=secret, json={"name": "another"}), 403, "Forbidden",
            "nshub login")
    [item] = api.get("/v1/tokens", token=secret).json()["items"]  # listing is allowed
    refused(api.delete(f"/v1/tokens/{item['id']}", token=secret), 403, "Forbidden")
    assert api.get("/v1/me", token=secret).status_code == 200  # still alive
    refused(api.get("/v1/tokens"), 401, "Unauthorized")
    refused(api.post("/v1/tokens", json={"name": "x"}), 401, "Unauthorized")


def test_revoked_is_refused_on_the_next_request_even_when_cached(api, users, clock):
    secret = make_token(api, id_token(users), name="ci")
    assert api.get("/v1/me", token=secret).status_code == 200  # now cached in this container
    [item] = api.get("/v1/tokens", token=id_token(users)).json()["items"]
    assert api.delete(f"/v1/tokens/{item['id']}", token=id_token(users)).status_code == 204
    refused(api.get("/v1/me", token=secret), 401, "Unauthorized", "revoked", "'ci'")
    # never anonymous: a public read with it is 401 too
    assert push(api, id_token(users), "alice/pub", b"x", visibility="public").status_code == 200
    refused(api.get("/v1/arrays/alice/pub", token=secret), 401, "Unauthorized", "revoked")
    assert api.get("/v1/tokens", token=id_token(users)).json()["items"] == []
    refused(api.delete(f"/v1/tokens/{item['id']}", token=id_token(users)), 404, "NotFound")


def test_revocation_elsewhere_is_seen_within_the_cache_bound(api, users, clock):
    """Another container revokes: this one may serve its cached lookup for at most 60 s."""
    from chalicelib import tokens
    from chalicelib.store import tokens as tokenstore

    secret = make_token(api, id_token(users), name="ci")
    assert api.get("/v1/me", token=secret).status_code == 200
    # what another container's DELETE /v1/tokens/{id} writes, without touching our cache
    index = tokenstore.read_index("alice")
    [token_id] = index.entries
    tokenstore.revoke_token(token_id, index, index.live(clock.now), int(clock.now))
    clock.advance(tokens.CACHE_SECONDS - 1)
    assert api.get("/v1/me", token=secret).status_code == 200
    clock.advance(1)
    refused(api.get("/v1/me", token=secret), 401, "Unauthorized", "revoked")


def test_expiry_takes_effect_on_the_next_request(api, users, clock):
    secret = make_token(api, id_token(users), name="short", expires_in_days=1)
    assert api.get("/v1/me", token=secret).status_code == 200
    clock.advance(DAY - 1)
    assert api.get("/v1/me", token=secret).status_code == 200  # cached, still valid
    clock.advance(1)
    refused(api.get("/v1/me", token=secret), 401, "Unauthorized", "expired", "'short'")
    r = api.get("/v1/arrays/alice", token=secret)
    refused(r, 401, "Unauthorized", "expired")
    # an expired token is no longer live: not listed, and its name is free again
    assert api.get("/v1/tokens", token=id_token(users)).json()["items"] == []
    make_token(api, id_token(users), name="short")


def test_another_users_token_cannot_be_revoked(api, users):
    make_token(api, id_token(users), name="ci")
    [item] = api.get("/v1/tokens", token=id_token(users)).json()["items"]
    refused(api.delete(f"/v1/tokens/{item['id']}", token=id_token(users, "bob")), 404, "NotFound")
    refused(api.delete(f"/v1/tokens/{item['id']}"), 401, "Unauthorized")
    assert len(api.get("/v1/tokens", token=id_token(users)).json()["items"]) == 1


def test_names_are_unique_among_live_tokens(api, users):
    make_token(api, id_token(users), name="ci")
    refused(api.post("/v1/tokens", token=id_token(users), json={"name": "ci"}), 409, "Conflict",
            "'ci'")
    make_token(api, id_token(users, "bob"), name="ci")  # bob's names are his own


def test_at_most_50_live_tokens(api, users):
    from chalicelib.tokens import MAX_LIVE_TOKENS

    assert MAX_LIVE_TOKENS == 50
    for n in range(50):
        make_token(api, id_token(users), name=f"t{n}")
    message = refused(api.post("/v1/tokens", token=id_token(users), json={"name": "one more"}),
                      409, "Conflict", "50", "nshub token rm")
    assert "50 live tokens" in message
    first = api.get("/v1/tokens", token=id_token(users)).json()["items"][0]
    assert first["name"] == "t0"
    assert api.delete(f"/v1/tokens/{first['id']}", token=id_token(users)).status_code == 204
    make_token(api, id_token(users), name="one more")


def test_last_use_is_written_at_most_once_an_hour(api, users, clock):
    secret = make_token(api, id_token(users), name="ci")

    def last_used():
        [item] = api.get("/v1/tokens", token=id_token(users)).json()["items"]
        return item["last_used_at"]

    from chalicelib.times import iso

    first = int(clock.now)
    assert api.get("/v1/me", token=secret).status_code == 200
    assert last_used() == iso(first)
    clock.advance(30 * 60)  # the cached lookup has aged out: a fresh read, no new write
    assert api.get("/v1/me", token=secret).status_code == 200
    assert last_used() == iso(first)
    clock.advance(31 * 60)
    assert api.get("/v1/me", token=secret).status_code == 200
    assert last_used() == iso(int(clock.now))


def hostile_tokens(api, users):
    alices = make_token(api, id_token(users), name="alices")
    alice_hash = hashlib.sha256(alices.encode()).hexdigest()
    return {
        "prefix only": "nshub_",
        "prefix and garbage": "nshub_!!not-a-token!!",
        "prefix and 39 chars": "nshub_" + "a" * 39,
        "prefix and 41 chars": "nshub_" + "a" * 41,
        "well-formed, unknown": "nshub_" + "A" * 40,
        "another user's token hash": alice_hash,
        "another user's token hash, prefixed": "nshub_" + alice_hash[:40],
        "a token with a character changed": alices[:-1] + ("a" if alices[-1] != "a" else "b"),
        "a token with trailing garbage": alices + "x",
        "a token in lower case": alices.lower() if alices.lower() != alices else alices + "!",
        "non-ascii": "nshub_" + "\u00e9" * 40,
        "very long": "nshub_" + "a" * 20000,
    }


@pytest.mark.parametrize("scheme", ["Bearer", "token"])
def test_hostile_token_strings_are_401_never_anonymous(api, users, scheme):
    assert push(api, id_token(users), "alice/pub", b"x", visibility="public").status_code == 200
    for label, value in hostile_tokens(api, users).items():
        for method, path in (("GET", "/v1/arrays/alice/pub"), ("GET", "/v1/arrays/alice"),
                             ("GET", "/v1/config"), ("GET", "/v1/tokens"),
                             ("POST", "/v1/arrays/alice/x/uploads")):
            header = f"{scheme} {value}"
            r = api.request(method, path, headers={"Authorization": header.encode("utf-8")},
                            json={})
            assert r.status_code == 401, (label, method, path, r.status_code, r.text[:200])
            assert r.headers["X-Error-Code"] == "Unauthorized"


def test_a_very_long_authorization_header_is_401(api, users):
    for value in ("Bearer " + "x" * 50_000, "token nshub_" + "a" * 50_000, "x" * 50_000):
        r = api.get("/v1/config", headers={"Authorization": value})
        refused(r, 401, "Unauthorized", "too long")


def test_a_token_read_is_one_table_read_warm_and_two_cold(api, users, clock):
    """pull/info with a token: warm, only the resource's head is read (the token's lookup is
    cached); cold (the cache aged out), the token's item and the head."""
    from bench import aws_calls
    from chalicelib import config, tokens

    aws_calls.install_hooks()
    config.reset()  # clients made from here on are counted
    assert push(api, id_token(users), "alice/ds", b"bytes").status_code == 200
    secret = make_token(api, id_token(users), scopes=["read"])
    with aws_calls.counting() as first:
        assert api.get("/v1/arrays/alice/ds", token=secret).status_code == 200
    assert "dynamodb:UpdateItem" in first  # its first use in an hour is recorded
    with aws_calls.counting() as warm:
        assert api.get("/v1/arrays/alice/ds", token=secret).status_code == 200
    assert warm == ["dynamodb:GetItem"], warm
    clock.advance(tokens.CACHE_SECONDS)
    with aws_calls.counting() as cold:
        assert api.get("/v1/arrays/alice/ds", token=secret).status_code == 200
    assert [c for c in cold if c.startswith("dynamodb:")] == ["dynamodb:GetItem"] * 2, cold


def test_a_deleted_accounts_tokens_are_refused(api, users, aws_env, clock):
    """bob's token works, bob's account is deleted: within the liveness cache's time (the
    token's own lookup still cached) the token is 401, on every route, never anonymous."""
    import boto3

    from chalicelib import accounts

    secret = make_token(api, id_token(users, "bob"), name="bob-ci", scopes=["read", "write"])
    assert push(api, id_token(users, "bob"), "bob/pub", b"x", visibility="public").status_code == 200
    assert api.get("/v1/me", token=secret).json()["username"] == "bob"
    idp = boto3.client("cognito-idp", endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                       region_name="us-east-1")
    idp.admin_delete_user(UserPoolId=aws_env["NSHUB_USER_POOL_ID"], Username="bob")
    liveness = [0.0]
    accounts.set_clock(lambda: liveness[0])  # starts the liveness cache afresh
    try:
        assert accounts.LIVE_CACHE_SECONDS <= 60
        liveness[0] += accounts.LIVE_CACHE_SECONDS
        for method, path in (("GET", "/v1/me"), ("GET", "/v1/arrays/bob/pub"),
                             ("GET", "/v1/arrays/bob"), ("POST", "/v1/arrays/bob/x/uploads"),
                             ("GET", "/v1/tokens")):
            r = api.request(method, path, token=secret, json={})
            refused(r, 401, "Unauthorized", "deleted", "'bob-ci'")
        # the same in the Jina clients' form
        r = api.get("/v1/arrays/bob/pub", headers={"Authorization": f"token {secret}"})
        refused(r, 401, "Unauthorized", "deleted")
    finally:
        accounts.set_clock(__import__("time").monotonic)


def test_recording_a_use_never_stretches_the_cache_bound(api, users, clock):
    """A cached lookup lives at most 60 s from its read, even when the token's hourly use is
    recorded while it is cached: a revocation elsewhere is seen on time."""
    from chalicelib import tokens
    from chalicelib.store import tokens as tokenstore

    secret = make_token(api, id_token(users), name="ci")
    assert api.get("/v1/me", token=secret).status_code == 200  # use recorded now (t0)
    clock.advance(3590)  # the cache aged out: read again at t0 + 3590 (use still fresh)
    assert api.get("/v1/me", token=secret).status_code == 200
    clock.advance(20)  # cached; the hourly use is due and recorded at t0 + 3610
    assert api.get("/v1/me", token=secret).status_code == 200
    index = tokenstore.read_index("alice")  # another container revokes it
    [token_id] = index.entries
    tokenstore.revoke_token(token_id, index, index.live(clock.now), int(clock.now))
    clock.advance(tokens.CACHE_SECONDS - 20)  # 60 s after the read at t0 + 3590
    refused(api.get("/v1/me", token=secret), 401, "Unauthorized", "revoked")
