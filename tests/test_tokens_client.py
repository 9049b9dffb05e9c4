"""Personal access tokens through the client and the `nshub` command, against the real app.

Given alice logged in with her password, when she makes tokens with `nshub token create`, then
they push and pull through the CLI (NSHUB_TOKEN or `nshub login --token`) and the client, a
read-only one cannot write, a revoked or expired one is refused on the next request, and every
refusal names the token's problem.
"""
from __future__ import annotations

import json
import os
import re
import stat

import pytest

from nshub import Client, settings
from nshub.errors import Forbidden, InsufficientScope, Unauthorized
from tests.cli_runner import run

DAY = 86400


@pytest.fixture
def alice_cli(live_api, users, home, capsys, monkeypatch):
    """alice logged in with her password, through the CLI."""
    code, out, err = run(capsys, "login", "alice", "--password-stdin",
                         stdin=users["alice"]["password"] + "\n", monkeypatch=monkeypatch)
    assert code == 0, err
    return users


def create(capsys, *args: str) -> dict:
    code, out, err = run(capsys, "token", "create", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_create_prints_the_secret_once(alice_cli, capsys):
    code, out, err = run(capsys, "token", "create", "nightly-ci", "--scope", "write",
                         "--days", "7")
    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"nshub_[0-9A-Za-z]{40}", lines[0])
    assert "nightly-ci" in lines[1] and "read, write" in lines[1]
    assert "will not be shown again" in out
    secret = lines[0]

    code, out, err = run(capsys, "token", "ls")
    assert code == 0, err
    assert "nightly-ci" in out and "read,write" in out and "never" in out
    assert secret not in out
    code, out, _ = run(capsys, "token", "ls", "--json")
    [item] = json.loads(out)["items"]
    assert set(item) == {"id", "name", "scopes", "created_at", "expires_at", "last_used_at"}

    assert run(capsys, "token", "rm", item["id"])[:2] == (0, f"revoked token {item['id']}\n")
    assert run(capsys, "token", "ls")[1] == "no live tokens: make one with `nshub token create NAME`\n"
    code, _, err = run(capsys, "token", "rm", item["id"])
    assert code == 1 and "(NotFound)" in err


def test_a_write_token_pushes_and_pulls_through_the_cli(alice_cli, capsys, monkeypatch, tmp_path):
    secret = create(capsys, "ci", "--scope", "write")["token"]
    assert run(capsys, "logout")[0] == 0
    monkeypatch.setenv("NSHUB_TOKEN", secret)
    data = os.urandom(6 * 1024 * 1024)  # two parts
    (tmp_path / "data.bin").write_bytes(data)
    code, out, err = run(capsys, "push", str(tmp_path / "data.bin"), "alice/ds")
    assert code == 0, err
    assert out.startswith("pushed alice/ds version 1")
    code, out, err = run(capsys, "pull", "alice/ds", "-o", str(tmp_path / "back.bin"))
    assert code == 0, err
    assert (tmp_path / "back.bin").read_bytes() == data
    assert run(capsys, "whoami") == (0, "alice\n", "")
    # a token cannot make tokens
    code, out, err = run(capsys, "token", "create", "another")
    assert code == 1 and "cannot create or revoke tokens" in err and "(Forbidden)" in err


def test_a_read_token_cannot_write_and_says_so(alice_cli, capsys, monkeypatch, tmp_path):
    (tmp_path / "f.bin").write_bytes(b"hello")
    assert run(capsys, "push", str(tmp_path / "f.bin"), "alice/ds")[0] == 0
    secret = create(capsys, "reader")["token"]
    monkeypatch.setenv("NSHUB_TOKEN", secret)
    code, out, err = run(capsys, "pull", "alice/ds", "-o", str(tmp_path / "back.bin"))
    assert code == 0, err
    code, out, err = run(capsys, "push", str(tmp_path / "f.bin"), "alice/ds")
    assert code == 1 and out == ""
    first, hint = err.splitlines()
    assert "read-only" in first and first.endswith("(InsufficientScope)")
    assert hint.startswith("hint: ") and "--scope write" in hint
    code, _, err = run(capsys, "rm", "alice/ds", "--yes")
    assert code == 1 and "(InsufficientScope)" in err


def test_a_revoked_token_is_refused_and_the_hint_names_nshub_token(alice_cli, capsys,
                                                                    monkeypatch, tmp_path):
    made = create(capsys, "ci", "--scope", "write")
    monkeypatch.setenv("NSHUB_TOKEN", made["token"])
    assert run(capsys, "ls", "alice")[0] == 0
    monkeypatch.delenv("NSHUB_TOKEN")
    assert run(capsys, "token", "rm", made["id"])[0] == 0
    monkeypatch.setenv("NSHUB_TOKEN", made["token"])
    code, out, err = run(capsys, "ls", "alice")
    assert code == 1
    first, hint = err.splitlines()
    assert "revoked" in first and "'ci'" in first and first.endswith("(Unauthorized)")
    assert "NSHUB_TOKEN" in hint and "nshub token create" in hint


def test_login_with_a_token_from_stdin(alice_cli, capsys, monkeypatch, tmp_path):
    secret = create(capsys, "laptop", "--scope", "write")["token"]
    assert run(capsys, "logout")[0] == 0
    code, out, err = run(capsys, "login", "--token", stdin=secret + "\n", monkeypatch=monkeypatch)
    assert code == 0, err
    assert out == f"logged in as alice at {settings.endpoint()} with a personal access token\n"
    path = settings.credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["token"] == secret
    assert run(capsys, "whoami") == (0, "alice\n", "")
    (tmp_path / "f.bin").write_bytes(b"from a stored token")
    assert run(capsys, "push", str(tmp_path / "f.bin"), "alice/ds")[0] == 0
    assert Client().pull_bytes("alice/ds") == b"from a stored token"


def test_login_with_a_token_refuses_bad_tokens_and_argv(alice_cli, capsys, monkeypatch):
    secret = create(capsys, "laptop")["token"]
    assert run(capsys, "logout")[0] == 0
    # on the command line: refused before anything is sent or stored
    code, out, err = run(capsys, "login", "--token", secret, stdin="", monkeypatch=monkeypatch)
    assert code == 1 and "never put a token on the command line" in err and secret not in err
    assert not settings.credentials_path().exists()
    # a wrong one: the server's refusal, nothing stored
    code, out, err = run(capsys, "login", "--token", stdin="nshub_" + "x" * 40 + "\n",
                         monkeypatch=monkeypatch)
    assert code == 1 and "(Unauthorized)" in err and "unknown" in err
    assert not settings.credentials_path().exists()
    # someone else's account named: nothing stored
    code, out, err = run(capsys, "login", "bob", "--token", stdin=secret + "\n",
                         monkeypatch=monkeypatch)
    assert code == 1 and "belongs to alice" in err
    assert not settings.credentials_path().exists()
    # no username and no --token: a usage error
    code, out, err = run(capsys, "login")
    assert code == 2 and "USERNAME" in err


def test_the_client_token_methods(live_api, users, home, clock):
    with Client(token=users["alice"]["id_token"]) as alice:
        made = alice.create_token("script", scope="write", days=2)
        assert made["scopes"] == ["read", "write"] and made["token"].startswith("nshub_")
        reader = alice.create_token("reader")
        assert reader["scopes"] == ["read"]
        assert [t["name"] for t in alice.list_tokens()] == ["script", "reader"]

    with Client(token=made["token"]) as ci:
        info = ci.push_bytes(b"pushed by a script", "alice/ds")
        assert info["version"] == 1
        assert ci.pull_bytes("alice/ds") == b"pushed by a script"
        with pytest.raises(Forbidden) as refused:
            ci.create_token("nope")
        assert "cannot create or revoke tokens" in refused.value.message

    with Client(token=reader["token"]) as ro:
        assert ro.pull_bytes("alice/ds") == b"pushed by a script"
        with pytest.raises(InsufficientScope) as refused:
            ro.push_bytes(b"x", "alice/ds")
        assert isinstance(refused.value, Forbidden) and "read-only" in refused.value.message
        with pytest.raises(InsufficientScope):
            ro.set_visibility("alice/ds", "public")

    clock.advance(2 * DAY)
    with Client(token=made["token"]) as ci:
        with pytest.raises(Unauthorized) as refused:
            ci.pull_bytes("alice/ds")
        assert "expired" in refused.value.message and "'script'" in refused.value.message
        assert "nshub token create" in refused.value.hint

    with Client(token=users["alice"]["id_token"]) as alice:
        assert [t["name"] for t in alice.list_tokens()] == ["reader"]
        alice.revoke_token(alice.list_tokens()[0]["id"])
        assert alice.list_tokens() == []


def test_module_aliases(live_api, users, home, monkeypatch):
    import nshub

    monkeypatch.setenv("NSHUB_TOKEN", users["alice"]["id_token"])
    made = nshub.create_token("alias")
    assert [t["id"] for t in nshub.list_tokens()] == [made["id"]]
    nshub.revoke_token(made["id"])
    assert nshub.list_tokens() == []
