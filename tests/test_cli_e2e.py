"""The `nshub` command against the real app (served over HTTP on moto)."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from nshub import settings
from tests.cli_runner import run


def test_a_user_session(live_api, home, tmp_path, monkeypatch, capsys):
    # Given a new account (the dev stage confirms at once)
    code, out, _ = run(capsys, "signup", "carol", "--email", "carol@example.com",
                       "--password-stdin", stdin="Carol-passw0rd\n", monkeypatch=monkeypatch)
    assert code == 0 and out.startswith("signed up as carol")
    code, out, _ = run(capsys, "login", "carol", "--password-stdin",
                       stdin="Carol-passw0rd\n", monkeypatch=monkeypatch)
    assert (code, out) == (0, f"logged in as carol at {live_api}\n")
    assert stat.S_IMODE(settings.credentials_path().stat().st_mode) == 0o600
    assert run(capsys, "whoami") == (0, "carol\n", "")

    # When carol pushes a multi-part file, public, with metadata
    data = os.urandom(6 * 1024 * 1024)
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    code, out, err = run(capsys, "push", str(source), "carol/data", "--public", "--meta",
                         "source=test", "--json")
    assert code == 0, err
    pushed = json.loads(out)
    assert pushed["sha256"] == hashlib.sha256(data).hexdigest()
    assert pushed["metadata"] == {"source": "test"} and pushed["visibility"] == "public"

    # Then she sees it, pulls it back, and anyone can pull it
    code, out, _ = run(capsys, "ls", "carol")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["carol/data", "1"]
    code, out, _ = run(capsys, "info", "carol/data")
    assert code == 0 and "visibility:  public" in out
    target = tmp_path / "copy.bin"
    code, out, _ = run(capsys, "pull", "carol/data", "-o", str(target))
    assert code == 0 and target.read_bytes() == data
    code, out, _ = run(capsys, "versions", "carol/data", "--json")
    assert [v["version"] for v in json.loads(out)["items"]] == [1]

    # and making it private hides it from others
    assert run(capsys, "visibility", "carol/data", "private")[:2] == (
        0, "carol/data is now private\n")
    monkeypatch.setenv("NSHUB_HOME", str(tmp_path / "nobody"))
    code, _, err = run(capsys, "pull", "carol/data", "-o", str(tmp_path / "x"))
    lines = err.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith("error: ") and lines[0].endswith("(NotFound)")
    assert lines[1] == "hint: check the name; private resources of others are invisible"
    monkeypatch.setenv("NSHUB_HOME", str(home))

    assert run(capsys, "rm", "carol/data", "--yes") == (0, "deleted carol/data\n", "")
    assert run(capsys, "logout") == (0, "logged out\n", "")


def test_the_console_script(live_api, users, home, tmp_path):
    nshub = Path(sys.executable).with_name("nshub")
    env = {**os.environ, "NSHUB_TOKEN": users["alice"]["id_token"]}
    (tmp_path / "f").write_bytes(b"hello")

    pushed = subprocess.run([str(nshub), "push", str(tmp_path / "f"), "alice/hello"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout == "pushed alice/hello version 1 (5 B, private)\n"

    refused = subprocess.run([str(nshub), "push", str(tmp_path / "f"), "hello"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == ("error: 'hello' has no namespace: push to 'namespace/name', "
                              "e.g. 'your-username/hello' (InvalidName)\n")
