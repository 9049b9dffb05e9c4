"""Names are checked on the client, before any network call."""
from __future__ import annotations

import pytest

from nshub import Client
from nshub.errors import InvalidName, LegacyReadOnly
from nshub.names import ArrayName, parse_array_name

# Nothing listens here: a test that reached the network would fail with ServerUnreachable.
NOWHERE = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("alice/fashion_mnist", ArrayName("alice", "fashion_mnist")),
        ("a1/X", ArrayName("a1", "X")),
        ("my-team/data.v2", ArrayName("my-team", "data.v2")),
        ("Alice/MyData", ArrayName("alice", "MyData")),  # namespaces are case-insensitive
        ("fashion_mnist", ArrayName(None, "fashion_mnist")),
        ("x", ArrayName(None, "x")),
        ("a" * 39 + "/" + "b" * 100, ArrayName("a" * 39, "b" * 100)),
    ],
)
def test_valid_names_parse(text, parsed):
    assert parse_array_name(text) == parsed
    assert str(parse_array_name(text)) == (text if parsed.namespace is None else
                                           f"{parsed.namespace}/{parsed.name}")


@pytest.mark.parametrize(
    "text",
    [
        "", "/", "alice/", "/x", "a/x", "alice/x/y", "al--ice/x", "-alice/x", "alice-/x",
        "alice/.x", "alice/x.", "alice/a..b", "alice/x y", "alice/x#1", "alice/x:1",
        "alice/x@1", "alice/x\n", "alice\n/x", "al_ice/x", "a" * 40 + "/x", "alice/" + "b" * 101, None, 42,
    ],
)
def test_invalid_names_fail_before_any_request(text):
    client = Client(endpoint=NOWHERE, token="t")
    with pytest.raises(InvalidName):
        client.info(text)
    with pytest.raises(InvalidName):
        client.push_bytes(b"x", text)


def test_a_bare_name_cannot_be_pushed_or_changed():
    client = Client(endpoint=NOWHERE, token="t")
    # a push to a bare name is a push without its namespace
    with pytest.raises(InvalidName, match="'fashion_mnist' has no namespace: push to "
                                          "'namespace/name', e.g. 'your-username/fashion_mnist'"):
        client.push_bytes(b"x", "fashion_mnist")
    for change in (
        lambda: client.set_visibility("fashion_mnist", "public"),
        lambda: client.set_metadata("fashion_mnist", {}),
        lambda: client.delete("fashion_mnist"),
    ):
        with pytest.raises(LegacyReadOnly, match="push `namespace/fashion_mnist` instead"):
            change()


def test_invalid_namespace_for_listing():
    with pytest.raises(InvalidName):
        Client(endpoint=NOWHERE).list("Not_A_Namespace")
