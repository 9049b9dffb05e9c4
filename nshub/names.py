"""Names, checked on the client before any network call (the grammar of DESIGN.md, "Grammar").

Namespaces are case-insensitive and come back lower-cased; names and tags keep their case.
`alice/fashion_mnist` is a namespaced array; a bare `fashion_mnist` is a legacy array, which
can be pulled but never pushed or changed. Executor URIs build on these checks (nshub/uri.py).
"""
from __future__ import annotations

import re
from typing import NamedTuple

from nshub.errors import ARRAY_FORM_HINT, InvalidName, LegacyReadOnly

NAMESPACE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){1,38}$")
NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")

# The exception every check raises (also a ValueError).
InvalidNameError = InvalidName


def check_namespace(namespace: object) -> str:
    """The namespace, lower-cased; InvalidName if it breaks the grammar."""
    lowered = namespace.lower() if isinstance(namespace, str) else None
    if lowered is None or not NAMESPACE_RE.fullmatch(lowered):
        raise InvalidName(
            f"invalid namespace {_show(namespace)}: use 2-39 lowercase letters, digits and "
            "single hyphens"
        )
    return lowered


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidName(
            f"invalid name {_show(name)}: use 1-100 of letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit, without '..'"
        )
    return name


def check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):
        raise InvalidName(
            f"invalid tag {_show(tag)}: use up to 128 of letters, digits, '.', '_' and '-', "
            "not starting with '.' or '-'"
        )
    return tag


class ArrayName(NamedTuple):
    namespace: str | None  # None: a legacy array
    name: str

    @property
    def legacy(self) -> bool:
        return self.namespace is None

    def __str__(self) -> str:
        return self.name if self.namespace is None else f"{self.namespace}/{self.name}"


def parse_array_name(full_name: object) -> ArrayName:
    """`namespace/name`, or a bare legacy `name`; InvalidName for anything else."""
    if not isinstance(full_name, str) or full_name.count("/") > 1:
        raise InvalidName(
            f"invalid array name {_show(full_name)}: use `namespace/name` "
            "(or a bare `name` for a legacy array)", hint=ARRAY_FORM_HINT
        )
    if "/" in full_name:
        namespace, name = full_name.split("/")
        return ArrayName(check_namespace(namespace), check_name(name))
    return ArrayName(None, check_name(full_name))


def pushable_array_name(full_name: object, namespace: str | None = None) -> ArrayName:
    """Like writable_array_name, for a push: a bare name there is a name without its
    namespace (`namespace` is the one to suggest, e.g. the caller's)."""
    parsed = parse_array_name(full_name)
    if parsed.legacy:
        raise InvalidName(
            f"{parsed.name!r} has no namespace: push to 'namespace/name', "
            f"e.g. '{namespace or 'your-username'}/{parsed.name}'"
        )
    return parsed


def writable_array_name(full_name: object) -> ArrayName:
    """Like parse_array_name, but refuses legacy names: legacy arrays are read-only."""
    parsed = parse_array_name(full_name)
    if parsed.legacy:
        raise LegacyReadOnly(
            f"{parsed.name!r} is a legacy array and legacy arrays are read-only: "
            f"push `namespace/{parsed.name}` instead"
        )
    return parsed


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"
