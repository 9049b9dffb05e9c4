"""Tokens: where they come from, how they are stored, and how they are refreshed."""
from __future__ import annotations

import json
import stat
import time

import pytest

from nshub import Client, credentials, settings
from nshub.errors import NotLoggedIn, Unauthorized
from tests.fake_http import hub, make_jwt  # noqa: F401  (fixtures)


def sent_bearers(hub, path="/v1/me"):
    return [h.get("Authorization") for _, p, h in hub.requests if p.startswith(path)]


def test_login_writes_a_private_credentials_file(hub):
    me = Client().login("alice", "alice-pw")

    path = settings.credentials_path()
    assert me == {"username": "alice", "namespace": "alice"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert set(stored) == {"endpoint", "username", "id_token", "access_token", "refresh_token",
                           "expires_at"}
    assert stored["endpoint"] == hub.endpoint and stored["username"] == "alice"
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp file left


def test_the_stored_id_token_is_the_bearer_and_logout_forgets_it(hub):
    client = Client()
    client.login("alice", "alice-pw")
    token = credentials.load().id_token

    assert client.whoami()["username"] == "alice"
    assert sent_bearers(hub)[-1] == f"Bearer {token}"
    assert client.logout() is True
    assert not settings.credentials_path().exists()
    with pytest.raises(NotLoggedIn):
        client.whoami()
    assert client.logout() is False


def test_token_precedence(hub, monkeypatch):
    Client().login("alice", "alice-pw")
    bob = hub.issue_tokens("bob")["id_token"]

    # NSHUB_TOKEN wins over the file, an explicit string over both, False means anonymous
    monkeypatch.setenv("NSHUB_TOKEN", bob)
    assert Client().whoami()["username"] == "bob"
    assert sent_bearers(hub)[-1] == f"Bearer {bob}"
    alice_token = hub.issue_tokens("alice")["id_token"]
    assert Client(token=alice_token).whoami()["username"] == "alice"
    with pytest.raises(NotLoggedIn):
        Client(token=False).whoami()
    Client(token=False).list("alice")
    assert sent_bearers(hub, "/v1/arrays/alice")[-1] is None


def test_stored_tokens_are_not_sent_to_another_endpoint(hub):
    Client().login("alice", "alice-pw")
    other = Client(endpoint=hub.endpoint.replace("127.0.0.1", "localhost"))
    with pytest.raises(NotLoggedIn):
        other.whoami()


def test_a_token_near_expiry_is_refreshed_and_the_file_rewritten(hub):
    client = Client()
    client.login("alice", "alice-pw")
    old = credentials.load()
    # Given an ID token that expires in two minutes
    soon = int(time.time()) + 120
    near = make_jwt({"sub": "alice", "exp": soon})
    hub.id_tokens[near] = "alice"
    credentials.save(credentials.Credentials(old.endpoint, "alice", near, old.access_token,
                                             old.refresh_token, soon))
    # When a call is made
    assert client.whoami()["username"] == "alice"
    # Then the token was refreshed first, the new one sent, the refresh token kept
    new = credentials.load()
    assert len(hub.calls("POST", "/v1/auth/refresh")) == 1
    assert new.id_token != near and sent_bearers(hub)[-1] == f"Bearer {new.id_token}"
    assert new.refresh_token == old.refresh_token
    assert new.expires_at > soon
    assert stat.S_IMODE(settings.credentials_path().stat().st_mode) == 0o600


def test_a_fresh_token_is_not_refreshed(hub):
    client = Client()
    client.login("alice", "alice-pw")
    client.whoami()
    client.list("alice")
    assert hub.calls("POST", "/v1/auth/refresh") == []


def test_an_expired_session_says_to_log_in_again(hub):
    client = Client()
    client.login("alice", "alice-pw")
    old = credentials.load()
    credentials.save(credentials.Credentials(old.endpoint, "alice", "not-a-jwt", "",
                                             "revoked", time.time() - 10))
    with pytest.raises(Unauthorized, match="run `nshub login alice` again") as caught:
        client.whoami()
    assert "nshub logout" in caught.value.hint


def test_a_damaged_credentials_file_counts_as_logged_out(hub):
    path = settings.credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(NotLoggedIn):
        Client().whoami()


def test_settings_are_read_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("NSHUB_ENDPOINT", "http://example.test:1/")
    monkeypatch.setenv("NSHUB_HOME", str(tmp_path))
    monkeypatch.setenv("NSHUB_MAX_WORKERS", "3")
    client = Client()
    assert client.endpoint == "http://example.test:1" and client.max_workers == 3
    monkeypatch.setenv("NSHUB_ENDPOINT", "http://other.test:2")
    monkeypatch.delenv("NSHUB_MAX_WORKERS")
    assert client.endpoint == "http://other.test:2" and client.max_workers == 8
    assert settings.credentials_path() == tmp_path / "credentials.json"
