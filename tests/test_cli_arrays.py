"""`nshub push|pull|ls|info|versions|visibility|rm`, in process, against the fake hub."""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys

import pytest

from nshub.cli import main
from tests.fake_http import alice, hub, waits  # noqa: F401  (fixtures)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(200))
    return path


def test_push_then_pull(alice, file, tmp_path, capsys):
    assert main(["push", str(file), "alice/data", "--public", "--meta", "k=v",
                 "--meta", "eq=a=b"]) == 0
    assert capsys.readouterr().out == "pushed alice/data version 1 (200 B, public)\n"

    out = tmp_path / "copy.bin"
    assert main(["pull", "alice/data", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"pulled alice/data version 1 to {out} (200 B)\n"
    assert out.read_bytes() == file.read_bytes()

    assert main(["info", "alice/data", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metadata"] == {"k": "v", "eq": "a=b"}
    assert info["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()


def test_push_and_pull_json(alice, file, tmp_path, capsys):
    assert main(["push", str(file), "alice/data", "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert pushed["full_name"] == "alice/data" and pushed["visibility"] == "private"
    assert main(["pull", "alice/data", "-o", str(tmp_path), "--version", "1", "--json"]) == 0
    pulled = json.loads(capsys.readouterr().out)
    assert pulled["path"] == str(tmp_path / "data") and "download_url" not in pulled


def test_ls_info_versions_visibility(alice, file, capsys):
    main(["push", str(file), "alice/one"])
    main(["push", str(file), "alice/one"])
    main(["push", str(file), "alice/two", "--public"])
    capsys.readouterr()

    assert main(["ls", "alice"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "SIZE", "VISIBILITY", "UPDATED"]
    assert [line.split()[:2] for line in lines[1:]] == [["alice/one", "2"], ["alice/two", "1"]]

    assert main(["info", "alice/one"]) == 0
    out = capsys.readouterr().out
    assert "full_name:   alice/one" in out and "size:        200 (200 B)" in out

    assert main(["versions", "alice/one", "--json"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)["items"]] == [2, 1]

    assert main(["visibility", "alice/one", "public"]) == 0
    assert capsys.readouterr().out == "alice/one is now public\n"


def test_ls_empty(alice, capsys):
    assert main(["ls", "alice"]) == 0
    assert capsys.readouterr().out == "no arrays in alice that you can see\n"
    assert main(["ls", "alice", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"items": []}


def test_rm_asks_on_a_terminal(alice, hub, file, monkeypatch, capsys):
    main(["push", str(file), "alice/gone"])
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", Tty("n\n"))
    assert main(["rm", "alice/gone"]) == 0
    assert capsys.readouterr().out == "Delete alice/gone? [y/N] nothing deleted\n"
    monkeypatch.setattr(sys, "stdin", Tty("y\n"))
    assert main(["rm", "alice/gone"]) == 0
    assert capsys.readouterr().out.endswith("deleted alice/gone\n")
    assert hub.arrays == {}


def test_rm_without_a_terminal_needs_yes(alice, hub, file, monkeypatch, capsys):
    main(["push", str(file), "alice/kept"])
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert main(["rm", "alice/kept"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: refusing to delete alice/kept without confirmation: pass --yes")
    assert main(["rm", "alice/kept", "--yes"]) == 0
    assert hub.arrays == {}


def test_errors_are_one_line_with_a_hint(alice, file, capsys):
    assert main(["push", str(file), "fashion_mnist"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: 'fashion_mnist' has no namespace: push to 'namespace/name', "
                   "e.g. 'alice/fashion_mnist' (InvalidName)"]

    assert main(["pull", "bob/missing"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: bob/missing does not exist (NotFound)",
        "hint: check the name; private resources of others are invisible",
    ]

    assert main(["push", "no-such-file", "alice/x"]) == 1
    assert capsys.readouterr().err.startswith("error: 'no-such-file' is not a file")

    assert main(["info", "alice/bad name"]) == 1
    assert "(InvalidName)" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_without_presigned_queries(alice, monkeypatch, capsys):
    """Even a bug's line never shows a presigned URL's query (it is a credential)."""
    from nshub.client import Client

    def broken(*args, **kwargs):
        raise RuntimeError("bad answer from http://s3.local/b/k?X-Amz-Signature=abc&x=1 here")

    monkeypatch.setattr(Client, "info", broken)
    code = main(["info", "alice/data"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[0] == (
        "error: unexpected RuntimeError: bad answer from http://s3.local/b/k here (InternalError)")
