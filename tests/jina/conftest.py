"""Fixtures for the unmodified Jina clients (docarray, jac://, hubble, jina) against the
live app over HTTP. Each client runs in a venv of its own (tests/jina/clientenv.py)."""
from __future__ import annotations

import pytest

from tests.jina.clients import JinaClient


@pytest.fixture
def jina_tokens(api, users) -> dict[str, str]:
    """The token each user sets as JINA_AUTH_TOKEN: a personal access token (nshub_...)."""
    made = {}
    for name, user in users.items():
        r = api.post("/v1/tokens", token=user["id_token"],
                     json={"name": "jina clients", "scopes": ["read", "write"]})
        assert r.status_code == 201, r.text
        made[name] = r.json()["token"]
    return made


@pytest.fixture
def jina_client(live_api, tmp_path, jina_tokens):
    """jina_client(venv_name, user) -> a JinaClient signed in as `user` (None: anonymous)."""
    def make(venv_name: str, user: str | None = "alice") -> JinaClient:
        token = jina_tokens[user] if user else None
        return JinaClient(venv_name, live_api, tmp_path / f"home-{venv_name}-{user}", token)

    return make
