"""`nshub signup|confirm|login|logout|whoami`, in process, against the fake hub."""
from __future__ import annotations

import io
import json
import stat
import sys

from nshub import settings
from nshub.cli import main
from tests.fake_http import hub  # noqa: F401  (fixtures)


def stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_signup_confirm_login_whoami_logout(hub, monkeypatch, capsys):
    stdin(monkeypatch, "s3cret-pw\n")
    assert main(["signup", "carol", "--email", "c@example.com", "--password-stdin"]) == 0
    out = capsys.readouterr().out
    assert "signed up as carol" in out and "nshub confirm carol CODE" in out

    assert main(["confirm", "carol", "123456"]) == 0
    assert "nshub login carol" in capsys.readouterr().out

    stdin(monkeypatch, "s3cret-pw\n")
    assert main(["login", "carol", "--password-stdin"]) == 0
    assert capsys.readouterr().out == f"logged in as carol at {hub.endpoint}\n"
    assert stat.S_IMODE(settings.credentials_path().stat().st_mode) == 0o600

    assert main(["whoami"]) == 0
    assert capsys.readouterr().out == "carol\n"
    assert main(["whoami", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"username": "carol", "namespace": "carol"}

    assert main(["logout"]) == 0
    assert capsys.readouterr().out == "logged out\n"
    assert not settings.credentials_path().exists()


def test_signup_asks_the_password_twice(hub, monkeypatch, capsys):
    answers = iter(["pw-one", "pw-two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["signup", "dave", "--email", "d@example.com"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the passwords do not match (PasswordMismatch)\n")
    assert "dave" not in hub.users


def test_wrong_password_is_one_line_and_a_hint(hub, monkeypatch, capsys):
    stdin(monkeypatch, "nope\n")
    assert main(["login", "alice", "--password-stdin"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: wrong username or password (Unauthorized)\n"
                            "hint: no account yet? `nshub signup USERNAME --email EMAIL` "
                            "creates one\n")


def test_whoami_when_logged_out(hub, capsys):
    assert main(["whoami"]) == 1
    assert capsys.readouterr().err.startswith(
        f"error: you are not logged in to {hub.endpoint} (NotLoggedIn)\nhint: ")


def test_an_unreachable_server_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("NSHUB_HOME", str(tmp_path))
    stdin(monkeypatch, "pw\n")  # a POST: not retried, so no backoff to wait for
    assert main(["--endpoint", "http://127.0.0.1:9", "login", "alice", "--password-stdin"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: cannot reach http://127.0.0.1:9") and len(err) == 2
    assert err[1].startswith("hint: is the server running?")


def test_debug_shows_the_traceback(hub, monkeypatch, capsys):
    monkeypatch.setenv("NSHUB_DEBUG", "1")
    assert main(["whoami"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "NotLoggedIn" in err


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["login"]) == 2
    assert main(["push", "f", "alice/x", "--meta", "novalue"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["--help"]) == 0
