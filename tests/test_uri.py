"""Executor URIs: the Jina hub SDK grammar (DESIGN.md, "Grammar")."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, strategies as st

from nshub import names as client_names
from nshub.errors import InvalidName
from nshub.uri import ExecutorRef, InvalidExecutorURI, is_executor_uri, parse_executor_uri


@pytest.mark.parametrize("plus", ["", "+docker"])
@pytest.mark.parametrize(
    "suffix, tag",
    [
        ("user1/executor1", None),
        ("user1/executor1:tag1", "tag1"),
        ("user1/executor1/:/tag1/", "tag1"),  # the SDK strips slashes around ':' and at the end
        ("user1/executor1/", None),
        ("user1/executor1:tag1/", "tag1"),
        ("user1/executor1:", None),  # empty tag counts as none, like the SDK
    ],
)
def test_jinaai(plus, suffix, tag):
    ref = parse_executor_uri(f"jinaai{plus}://{suffix}")
    assert ref == ExecutorRef(f"jinaai{plus}", "user1", "executor1", tag, None, bool(plus), False)
    assert ref.full_name == "user1/executor1"
    assert ref.tag_or_latest == (tag or "latest")


@pytest.mark.parametrize("plus", ["", "+docker"])
@pytest.mark.parametrize(
    "suffix, name, secret, tag",
    [
        ("executor1", "executor1", None, None),
        ("executor1/tag1", "executor1", None, "tag1"),
        ("executor1:secret1/tag1", "executor1", "secret1", "tag1"),
        ("executor1:secret1", "executor1", "secret1", None),
        ("executor1:secret1/tag1/", "executor1", "secret1", "tag1"),
        ("executor1:/tag1", "executor1", None, "tag1"),
        ("MyExecutor/", "MyExecutor", None, None),
    ],
)
def test_jinahub_legacy(plus, suffix, name, secret, tag):
    ref = parse_executor_uri(f"jinahub{plus}://{suffix}")
    assert ref == ExecutorRef(f"jinahub{plus}", None, name, tag, secret, bool(plus), True)
    assert ref.legacy and ref.namespace is None
    assert ref.full_name == name


def test_namespace_is_lower_cased_name_and_tag_keep_case():
    ref = parse_executor_uri("jinaai+docker://Alice/MyExecutor:V1.0")
    assert (ref.namespace, ref.name, ref.tag) == ("alice", "MyExecutor", "V1.0")
    assert ref.canonical() == "jinaai+docker://alice/MyExecutor:V1.0"


def test_scheme_is_case_insensitive_and_outer_whitespace_ignored():
    assert parse_executor_uri("  JinaAI://alice/Enc \n").canonical() == "jinaai://alice/Enc"


def test_canonical_forms():
    assert parse_executor_uri("jinaai://user1/executor1/:/tag1/").canonical() == "jinaai://user1/executor1:tag1"
    assert parse_executor_uri("jinahub+docker://Enc:s3cr3t/v2/").canonical() == "jinahub+docker://Enc:s3cr3t/v2"
    assert parse_executor_uri("jinahub://Enc:s3cr3t/v2").canonical(redact_secret=True) == "jinahub://Enc:<secret>/v2"
    assert parse_executor_uri("jinahub://Enc").canonical() == "jinahub://Enc"


def test_secret_is_not_in_repr():
    ref = parse_executor_uri("jinahub://Enc:topsecret/v2")
    assert "topsecret" not in repr(ref) and "topsecret" not in str(ref)


@pytest.mark.parametrize(
    "uri, why",
    [
        ("jinaai://user1", "missing executor name"),
        ("jinaai://user1/", "missing executor name"),
        ("jinaai://user1:tag1", "missing executor name"),
        ("jinaai://user1/MyExecutor:tag1:tag2", "more than one ':'"),
        ("jinaai://", "empty"),
        ("jinahub://", "empty"),
        ("jinahub+docker://", "empty"),
        ("jinahub://:secret/tag", "missing executor name"),
        ("jinahub://a:b:c", "more than one ':'"),
        ("different-scheme://hello", "unknown scheme"),
        ("docker://alice/Enc", "unknown scheme"),
        ("jinaai+sandbox://alice/Enc", "sandbox"),
        ("jinahub+sandbox://Enc", "sandbox"),
        ("alice/Enc", "missing scheme"),
        ("", "missing scheme"),
        ("jinaai://a/Enc", "invalid namespace"),  # too short
        ("jinaai://al--ice/Enc", "invalid namespace"),
        ("jinaai://-alice/Enc", "invalid namespace"),
        ("jinaai://al_ice/Enc", "invalid namespace"),
        ("jinaai://" + "a" * 40 + "/Enc", "invalid namespace"),
        ("jinaai://alice/-Enc", "invalid name"),
        ("jinaai://alice/Enc-", "invalid name"),
        ("jinaai://alice/En..c", "invalid name"),
        ("jinaai://alice/" + "E" * 101, "invalid name"),
        ("jinaai://alice/En$c", "invalid name"),
        ("jinaai://alice/Enc:.v1", "invalid tag"),
        ("jinaai://alice/Enc:-v1", "invalid tag"),
        ("jinaai://alice/Enc:v/1", "invalid tag"),
        ("jinaai://alice/Enc:" + "v" * 129, "invalid tag"),
        ("jinaai://alice/Enc/extra", "too many '/'"),
        ("jinaai://alice//Enc", "too many '/'"),
        ("jinaai:///Enc", "empty namespace"),
        ("jinaai://alice/Enc?x=1", "'?'"),
        ("jinaai://alice/Enc#frag", "'#'"),
        ("jinaai://alice/E nc", "space"),
        ("jinahub://hello:dummy@secret/path", "'@'"),
        ("jinahub://Enc/a/b", "invalid tag"),
        ("jinahub://Enc:s!cret/v1", "invalid secret"),
    ],
)
def test_rejected(uri, why):
    with pytest.raises(InvalidExecutorURI) as info:
        parse_executor_uri(uri)
    message = str(info.value)
    assert why in message
    assert "jinaai://NAMESPACE/NAME[:TAG]" in message  # says which forms are accepted
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, InvalidName)  # the CLI prints it like any client error
    assert message.count("invalid executor URI") == 1
    assert "\n" not in message


def test_rejected_legacy_uri_does_not_echo_the_secret():
    with pytest.raises(InvalidExecutorURI) as info:
        parse_executor_uri("jinahub://Enc:topsecret/.bad")
    assert "topsecret" not in str(info.value)


def test_non_string():
    with pytest.raises(InvalidExecutorURI):
        parse_executor_uri(None)


def test_is_executor_uri():
    assert is_executor_uri("jinaai://alice/Enc")
    assert is_executor_uri("JINAHUB+DOCKER://x")
    assert is_executor_uri("jinaai://")  # looks like one, even if invalid
    assert not is_executor_uri("config.yml")
    assert not is_executor_uri("docker://image")
    assert not is_executor_uri(3)


def test_constructed_refs_are_checked():
    with pytest.raises(InvalidExecutorURI):
        ExecutorRef("jinaai", "Alice", "Enc")  # namespaces are stored lower-case
    with pytest.raises(InvalidExecutorURI):
        ExecutorRef("jinaai", "alice", "Enc", docker=True)  # scheme and flags disagree
    with pytest.raises(InvalidExecutorURI):
        ExecutorRef("jinaai", "alice", "Enc", secret="x")
    with pytest.raises(InvalidExecutorURI):
        ExecutorRef("jinahub", "alice", "Enc", legacy=True)
    ref = ExecutorRef("jinaai", "alice", "Enc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "v1"  # type: ignore[misc]


def test_client_grammar_matches_server_grammar():
    from chalicelib import names as server_names

    for attr in ("NAMESPACE_RE", "NAME_RE", "TAG_RE"):
        assert getattr(client_names, attr).pattern == getattr(server_names, attr).pattern


# --------------------------------------------------------------------------- hypothesis

namespaces = st.from_regex(client_names.NAMESPACE_RE, fullmatch=True)
names = st.from_regex(client_names.NAME_RE, fullmatch=True).filter(lambda s: ".." not in s)
tags = st.none() | st.from_regex(client_names.TAG_RE, fullmatch=True)
secrets = st.none() | st.from_regex(r"[A-Za-z0-9._~-]{1,40}", fullmatch=True)


@given(ns=namespaces, name=names, tag=tags, docker=st.booleans())
def test_roundtrip_jinaai(ns, name, tag, docker):
    scheme = "jinaai+docker" if docker else "jinaai"
    ref = ExecutorRef(scheme, ns, name, tag, None, docker, False)
    assert parse_executor_uri(ref.canonical()) == ref
    # the SDK's decorated spelling means the same thing; the namespace is case-insensitive
    decorated = f"{scheme}://{ns.upper()}/{name}/" + (f":/{tag}/" if tag else "")
    assert parse_executor_uri(decorated) == ref


@given(name=names, tag=tags, secret=secrets, docker=st.booleans())
def test_roundtrip_jinahub(name, tag, secret, docker):
    scheme = "jinahub+docker" if docker else "jinahub"
    ref = ExecutorRef(scheme, None, name, tag, secret, docker, True)
    assert parse_executor_uri(ref.canonical()) == ref


@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_invalid_uri(text):
    for candidate in (text, "jinaai://" + text, "jinahub://" + text):
        try:
            ref = parse_executor_uri(candidate)
        except InvalidExecutorURI:
            continue
        assert parse_executor_uri(ref.canonical()) == ref
