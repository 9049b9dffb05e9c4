"""docarray 0.21.1, unmodified: login, push, pull, cloud_list, cloud_delete against nshub,
with only JINA_HUBBLE_REGISTRY and JINA_AUTH_TOKEN set (issue 12, flow 1)."""
from __future__ import annotations

import hashlib

import pytest
import requests

from chalicelib.admin import main as admin_main

pytestmark = pytest.mark.jina_clients

DOCARRAY = "docarray021"

PUSH = """
import sys
import docarray
from docarray import Document, DocumentArray
docarray.login()
docs = DocumentArray(Document(text="doc %d" % i, tags={{"i": i}}) for i in range({n}))
data = docs.push("{name}", public={public})
report({{"data": data}})
"""

PULL = """
from docarray import DocumentArray
docs = DocumentArray.pull("{name}", local_cache=False)
report({{"texts": docs.texts, "tags": [d.tags.get("i") for d in docs]}})
"""

REFUSED = """
from docarray import Document, DocumentArray
try:
    DocumentArray([Document(text="x")]).push("{name}")
except Exception as exc:
    report({{"error": str(exc)}})
"""


def push(client, name, n=3, public=False):
    run = client.run(PUSH.format(name=name, n=n, public=public))
    assert run.returncode == 0, run
    return run.result["data"]


def pull(client, name):
    run = client.run(PULL.format(name=name))
    assert run.returncode == 0, run
    return run.result


def test_push_then_pull_own_and_others_public(jina_client, api, users):
    alice = jina_client(DOCARRAY, "alice")
    data = push(alice, "alice/fashion_mnist", n=5, public=True)
    assert data["name"] == "alice/fashion_mnist"
    assert pull(alice, "alice/fashion_mnist") == {
        "texts": [f"doc {i}" for i in range(5)], "tags": [0, 1, 2, 3, 4]}

    bob = jina_client(DOCARRAY, "bob")
    assert pull(bob, "alice/fashion_mnist")["texts"] == [f"doc {i}" for i in range(5)]

    # What the old client pushed is an ordinary nshub array: /v1 sees it, with its format.
    r = api.get("/v1/arrays/alice/fashion_mnist", token=users["bob"]["id_token"])
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["visibility"] == "public" and info["version"] == 1
    assert info["metadata"]["format"] == "docarray-v1-protobuf-gzip"
    assert info["metadata"]["num_docs"] == 5
    body = requests.get(info["download_url"], timeout=30).content
    assert hashlib.sha256(body).hexdigest() == info["sha256"]


def test_others_private_array_is_refused(jina_client):
    alice = jina_client(DOCARRAY, "alice")
    push(alice, "alice/private_set", public=False)
    assert pull(alice, "alice/private_set")["texts"] == ["doc 0", "doc 1", "doc 2"]

    run = jina_client(DOCARRAY, "bob").run(PULL.format(name="alice/private_set"))
    assert run.returncode != 0
    assert "404" in run.output


def test_push_into_another_namespace_or_bare_name_is_refused(jina_client):
    bob = jina_client(DOCARRAY, "bob")
    run = bob.run(REFUSED.format(name="alice/stolen"))
    assert run.returncode == 0, run
    assert "403" in run.result["error"]
    assert "you can only push into your own namespace 'bob'" in run.result["error"]

    run = bob.run(REFUSED.format(name="fashion_mnist"))
    assert run.returncode == 0, run
    assert "push 'bob/fashion_mnist'" in run.result["error"]


def test_read_only_token_pulls_but_cannot_push(jina_client, api, users):
    push(jina_client(DOCARRAY, "alice"), "alice/shared", public=True)
    r = api.post("/v1/tokens", token=users["bob"]["id_token"],
                 json={"name": "read only", "scopes": ["read"]})
    assert r.status_code == 201, r.text
    bob = jina_client(DOCARRAY, "bob")
    bob.token = r.json()["token"]
    assert pull(bob, "alice/shared")["texts"] == ["doc 0", "doc 1", "doc 2"]
    run = bob.run(REFUSED.format(name="bob/mine"))
    assert run.returncode == 0, run
    assert "403" in run.result["error"] and "this token is read-only" in run.result["error"]


def test_pull_legacy_array_by_bare_name(jina_client, tmp_path):
    # An operator imports a pre-namespace array that docarray 0.21 pushed long ago.
    alice = jina_client(DOCARRAY, "alice")
    saved = tmp_path / "legacy.bin"
    run = alice.run(f"""
from docarray import Document, DocumentArray
DocumentArray(Document(text=t) for t in ("old", "set")).save_binary(
    {str(saved)!r}, protocol="protobuf", compress="gzip")
report("saved")
""")
    assert run.returncode == 0, run
    argv = ["import-legacy", "fashion_mnist", "--owner", "alice", "--file", str(saved),
            "--public"]
    assert admin_main(argv) == 0

    bob = jina_client(DOCARRAY, "bob")
    assert pull(bob, "fashion_mnist")["texts"] == ["old", "set"]


def test_cloud_list_and_cloud_delete(jina_client, api, users):
    alice = jina_client(DOCARRAY, "alice")
    push(alice, "alice/first", n=2)
    push(alice, "alice/second", n=4, public=True)
    run = alice.run("""
from docarray import DocumentArray
report(DocumentArray.cloud_list(show_table=True))
""")
    assert run.returncode == 0, run
    assert run.result == ["alice/first", "alice/second"]
    assert "You have 2 DocumentArray on the cloud" in run.stdout

    run = alice.run("""
from docarray import DocumentArray
DocumentArray.cloud_delete("alice/first")
report(DocumentArray.cloud_list())
""")
    assert run.returncode == 0, run
    assert run.result == ["alice/second"]
    assert api.get("/v1/arrays/alice/first", token=users["alice"]["id_token"]).status_code == 404


def test_push_over_the_cap_is_413_then_the_nshub_cli_pushes_what_docarray_pulls(
        jina_client, home, monkeypatch, tmp_path, users, capsys):
    from chalicelib import config
    from nshub.cli import main as nshub_main

    monkeypatch.setenv("NSHUB_HUBBLE_MAX_BODY_BYTES", "20000")
    config.reset()
    alice = jina_client(DOCARRAY, "alice")
    big = """
from docarray import Document, DocumentArray
import os
docs = DocumentArray(Document(blob=os.urandom(1000), tags={"i": i}) for i in range(40))
try:
    docs.push("alice/big")
except Exception as exc:
    report({"error": str(exc)})
else:
    report({"error": None})
docs.save_binary(os.environ["SAVE_TO"], protocol="protobuf", compress="gzip")
"""
    saved = tmp_path / "big.bin"
    run = alice.run(big, SAVE_TO=str(saved))
    assert run.returncode == 0, run
    error = run.result["error"]
    assert error.startswith("413 Client Error: the array 'alice/big' is 0.0")
    assert "over the 0.0 MB that old Jina clients can send through the API: push it with " \
        "`nshub push FILE alice/big` after `docs.save_binary(FILE, protocol='protobuf', " \
        "compress='gzip')`" in error

    # The nshub CLI pushes the same bytes through presigned URLs; docarray then pulls them.
    monkeypatch.setenv("NSHUB_TOKEN", users["alice"]["id_token"])
    assert nshub_main(["push", str(saved), "alice/big"]) == 0
    capsys.readouterr()
    pulled = pull(alice, "alice/big")
    assert pulled["tags"] == list(range(40))
