"""The client against the real app (served over HTTP on moto): what a user of `nshub` sees.

The test settings make one part up to 5 MiB and parts of 5 MiB (tests/conftest.py).
"""
from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import pytest
from docarray import BaseDoc, DocList
from docarray.typing import NdArray

from nshub import Client, credentials
from nshub import docarray as nsda
from nshub.errors import Forbidden, InvalidName, NotFound, NotLoggedIn, Unauthorized

MiB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def alice(live_api, users, home):
    client = Client()
    assert client.login("alice", users["alice"]["password"]) == {"username": "alice",
                                                                  "namespace": "alice"}
    with client:
        yield client


@pytest.fixture
def bob(live_api, users):
    with Client(token=users["bob"]["id_token"]) as client:
        yield client


def test_round_trips_across_the_part_boundaries(alice, tmp_path):
    for size in (0, 1, 5 * MiB - 1, 5 * MiB + 1, 11 * MiB + 3):
        data = os.urandom(size)
        source = tmp_path / f"in-{size}"
        source.write_bytes(data)

        info = alice.push_file(source, "alice/blob", metadata={"size": size})

        assert (info["full_name"], info["size"], info["sha256"]) == ("alice/blob", size, sha(data))
        assert info["metadata"] == {"size": size} and info["visibility"] == "private"
        pulled = alice.pull_file("alice/blob", tmp_path / f"out-{size}")
        assert sha(pulled.read_bytes()) == sha(data)
        assert not (tmp_path / f"out-{size}.part").exists()
    assert [v["size"] for v in alice.versions("alice/blob")][:2] == [11 * MiB + 3, 5 * MiB + 1]


def test_who_sees_what(alice, bob, live_api):
    anonymous = Client(token=False)
    alice.push_bytes(b"private bytes", "alice/diary")
    alice.push_bytes(b"public bytes", "alice/poems", public=True)

    assert bob.pull_bytes("alice/poems") == anonymous.pull_bytes("alice/poems") == b"public bytes"
    for other in (bob, anonymous):
        with pytest.raises(NotFound):
            other.pull_bytes("alice/diary")
        assert [i["name"] for i in other.list("alice")] == ["poems"]
    assert sorted(i["name"] for i in alice.list("alice")) == ["diary", "poems"]

    with pytest.raises(Forbidden):
        bob.push_bytes(b"graffiti", "alice/poems")
    with pytest.raises(Forbidden):
        bob.set_visibility("alice/poems", "private")
    with pytest.raises(Unauthorized):
        anonymous.delete("alice/poems")
    with pytest.raises(NotLoggedIn):
        anonymous.push_bytes(b"x", "alice/poems")

    # the same name in another namespace is another array
    bob_info = bob.push_bytes(b"bob's", "bob/poems")
    assert bob_info["full_name"] == "bob/poems" and alice.pull_bytes("alice/poems") == b"public bytes"


def test_versions_visibility_metadata_and_delete(alice, bob):
    alice.push_bytes(b"one", "alice/Data")
    alice.push_bytes(b"two", "alice/data")

    assert alice.info("alice/DATA")["full_name"] == "alice/Data"  # first spelling kept
    assert alice.pull_bytes("alice/data", version=1) == b"one"
    assert sorted(v["version"] for v in alice.versions("alice/data")) == [1, 2]

    assert alice.set_visibility("alice/data", "public")["visibility"] == "public"
    assert bob.pull_bytes("alice/data") == b"two"
    assert alice.set_metadata("alice/data", {"k": "v"})["metadata"] == {"k": "v"}

    alice.delete("alice/data")
    with pytest.raises(NotFound):
        alice.info("alice/data")


def test_legacy_arrays_pull_but_never_push(alice, tmp_path, capsys):
    from chalicelib.admin import main as admin

    legacy = tmp_path / "legacy.bin"
    legacy.write_bytes(b"from before namespaces")
    assert admin(["import-legacy", "fashion_mnist", "--owner", "alice", "--file", str(legacy),
                  "--public"]) == 0
    capsys.readouterr()

    assert Client(token=False).pull_bytes("fashion_mnist") == b"from before namespaces"
    info = alice.info("fashion_mnist")
    assert info["legacy"] is True and info["sha256"] == sha(legacy.read_bytes())
    with pytest.raises(InvalidName, match="push to 'namespace/name', e.g. 'alice/fashion_mnist'"):
        alice.push_bytes(b"new", "fashion_mnist")


def test_an_expiring_login_is_refreshed(alice):
    stored = credentials.load()
    credentials.save(credentials.Credentials(
        stored.endpoint, stored.username, stored.id_token, stored.access_token,
        stored.refresh_token, time.time() + 60,  # "expires in a minute"
    ))

    assert alice.whoami()["username"] == "alice"

    refreshed = credentials.load()  # rewritten with the new ID token's expiry
    assert refreshed.expires_at > time.time() + 300
    assert refreshed.refresh_token == stored.refresh_token
    assert alice.whoami()["username"] == "alice"


class Review(BaseDoc):
    text: str
    embedding: NdArray[8]


def test_a_doclist_round_trips(alice):
    docs = DocList[Review](
        Review(text=f"review {i}", embedding=np.random.rand(8).astype(np.float32))
        for i in range(200)
    )
    info = nsda.push(docs, "alice/reviews", public=True)
    assert info["metadata"]["num_docs"] == 200 and info["metadata"]["schema"] == "Review"

    got = nsda.pull(DocList[Review], "alice/reviews", client=Client(token=False))

    assert [d.id for d in got] == [d.id for d in docs]
    assert [d.text for d in got] == [d.text for d in docs]
    for a, b in zip(got, docs):
        np.testing.assert_array_equal(a.embedding, b.embedding)
