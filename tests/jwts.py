"""Test helpers that make Cognito tokens the way the pool does (moto ships its signing key), so
tests can mint expired, forged and wrongly-issued ones."""
from __future__ import annotations

import base64
import json
import time

import jwt
from jwt.algorithms import RSAAlgorithm
from moto.utilities.utils import load_resource


def moto_private_key():
    jwk = load_resource("cognitoidp/resources/jwks-private.json")
    return RSAAlgorithm.from_jwk(json.dumps(jwk))


def claims(env, **changes):
    """An ID token's claims for alice from the test stack's pool; a change to None drops it."""
    now = int(time.time())
    base = {
        "iss": env["NSHUB_ISSUER"], "sub": "x", "aud": env["NSHUB_CLIENT_ID"],
        "token_use": "id", "cognito:username": "alice", "iat": now, "exp": now + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sub_of(token: str) -> str:
    """The account (`sub`) a real token was issued to."""
    return jwt.decode(token, options={"verify_signature": False})["sub"]


def sign(payload, key=None, alg="RS256", kid="dummy"):
    return jwt.encode(payload, key or moto_private_key(), algorithm=alg, headers={"kid": kid})


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
