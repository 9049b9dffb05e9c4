"""Token attacks: every forged, expired or wrongly-issued token is 401 on every route, and
never treated as anonymous (a public resource read with a bad token is still 401)."""
from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from tests.jwts import b64, claims, moto_private_key, sign, sub_of

ROUTES = [
    ("GET", "/v1/me"),
    ("GET", "/v1/config"),
    ("GET", "/v1/arrays/alice"),
    ("GET", "/v1/arrays/alice/public_data"),
    ("POST", "/v1/arrays/alice/x/uploads"),
    ("DELETE", "/v1/arrays/alice/public_data"),
    ("GET", "/v1/legacy/arrays/old"),
    ("POST", "/v1/auth/login"),
]


def attacks(env, users):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = moto_private_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    alice = sub_of(users["alice"]["id_token"])
    good = claims(env, sub=alice)
    return {
        "alg none": f"{b64({'alg': 'none', 'kid': 'dummy'})}.{b64(good)}.",
        "HS256 with the public key": _hs256(good, public_pem),
        "another key": sign(good, other_key),
        "another key, unknown kid": sign(good, other_key, kid="attacker"),
        "expired": sign(claims(env, sub=alice, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        "another pool": sign(claims(env, sub=alice, iss=env["NSHUB_ISSUER"] + "x")),
        "another client": sign(claims(env, sub=alice, aud="someone-elses-client")),
        "access token for another client": sign(claims(env, sub=alice, token_use="access", aud=None,
                                                       client_id="other", username="alice")),
        "no token_use": sign(claims(env, sub=alice, token_use=None)),
        "refresh token_use": sign(claims(env, sub=alice, token_use="refresh")),
        "no exp": sign(claims(env, sub=alice, exp=None)),
        "refresh token as bearer": users["alice"]["refresh_token"],
        "garbage": "garbage",
        "tampered payload": _tamper(users["alice"]["id_token"]),
    }


def _hs256(payload, secret: bytes) -> str:
    import hashlib
    import hmac

    head = b64({"alg": "HS256", "typ": "JWT", "kid": "dummy"})
    body = b64(payload)
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"


def _tamper(token: str) -> str:
    head, body, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["cognito:username"] = "bob"
    return f"{head}.{b64(data)}.{sig}"


def test_a_well_formed_minted_token_is_accepted(api, aws_env, users):
    # The control: the attacks below fail for the reason they name, not for a broken mint.
    r = api.get("/v1/me", token=sign(claims(aws_env, sub=sub_of(users["alice"]["id_token"]))))
    assert r.status_code == 200
    assert r.json()["username"] == "alice"


def test_every_attack_is_401_on_every_route(api, aws_env, users):
    for label, token in attacks(aws_env, users).items():
        for method, path in ROUTES:
            r = api.request(method, path, token=token, json={})
            assert r.status_code == 401, (label, method, path, r.status_code, r.text)
            assert r.headers["X-Error-Code"] == "Unauthorized"


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer ", "token abc"])
def test_malformed_authorization_headers(api, header):
    r = api.get("/v1/config", headers={"Authorization": header})
    assert r.status_code == 401


def test_unknown_kid_refetch_is_rate_limited(aws_env):
    """Unknown kids refetch the JWKS at most once a minute, whatever the traffic."""
    from chalicelib.auth import JWKSKeys
    from chalicelib.errors import Unauthorized

    calls = []

    def fetch(url):
        calls.append(url)
        return {"keys": []}

    keys = JWKSKeys("http://jwks", fetch)
    for kid in ("a", "b", "c", "a"):
        with pytest.raises(Unauthorized):
            keys.get(kid)
    assert calls == ["http://jwks"]


def test_injected_key_source(aws_env, users):
    """The verifier's key source is injectable (in-process moto does not serve HTTP)."""
    from chalicelib import auth

    jwks = json.loads(json.dumps(load_resource("cognitoidp/resources/jwks-public.json")))
    seen = []

    def fetch(url):
        seen.append(url)
        return jwks

    auth.set_key_fetch(fetch)
    try:
        caller = auth.identify({"Authorization": f"Bearer {users['bob']['id_token']}"})
        assert caller.username == "bob"
        assert seen == [aws_env["NSHUB_JWKS_URL"]]
    finally:
        auth.set_key_fetch(auth.fetch_jwks_over_http)


def test_accounts_made_around_signup_cannot_take_reserved_namespaces(api, aws_env, users):
    """Someone who signs up with Cognito directly as `legacy` (or any name that is not a
    namespace) gets tokens, but the API refuses them, so legacy arrays stay read-only."""
    import boto3

    idp = boto3.client("cognito-idp", endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                       region_name="us-east-1")
    from devstack.motofix import sign_up_trigger_bypassed

    for name in ("legacy", "Bad_Name"):
        with sign_up_trigger_bypassed():  # an account older than the PreSignUp trigger
            idp.sign_up(ClientId=aws_env["NSHUB_CLIENT_ID"], Username=name,
                        Password="Xx-passw0rd1",
                        UserAttributes=[{"Name": "email", "Value": "x@example.com"}])
        idp.admin_confirm_sign_up(UserPoolId=aws_env["NSHUB_USER_POOL_ID"], Username=name)
        tokens = idp.initiate_auth(ClientId=aws_env["NSHUB_CLIENT_ID"], AuthFlow="USER_PASSWORD_AUTH",
                                   AuthParameters={"USERNAME": name, "PASSWORD": "Xx-passw0rd1"})
        token = tokens["AuthenticationResult"]["IdToken"]
        r = api.post("/v1/arrays/legacy/fashion_mnist/uploads", token=token,
                     json={"size": 1, "sha256": "0" * 64})
        assert r.status_code == 401, (name, r.text)
    # and no signed-in user can push into the legacy namespace either
    r = api.post("/v1/arrays/legacy/fashion_mnist/uploads", token=users["alice"]["id_token"],
                 json={"size": 1, "sha256": "0" * 64})
    assert (r.status_code, r.headers["X-Error-Code"]) == (409, "LegacyReadOnly")
