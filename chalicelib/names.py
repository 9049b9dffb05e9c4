"""The grammar of namespaces, resource names and tags (DESIGN.md), checked in one place."""
from __future__ import annotations

import re
import unicodedata

from chalicelib.errors import InvalidName

NAMESPACE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){1,38}$")
NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")

RESERVED_NAMESPACES = frozenset(
    "admin api www legacy console auth me tokens orgs v1 v2 static public private root "
    "system nshub jina jinaai".split()
)

KINDS = {"arrays": "array", "executors": "executor"}


def check_namespace(ns: object) -> str:
    # fullmatch: `$` would also let a trailing newline through
    if not isinstance(ns, str) or not NAMESPACE_RE.fullmatch(ns):
        raise InvalidName(
            f"invalid namespace {_show(ns)}: use 2-39 lowercase letters, digits and single hyphens"
        )
    return ns


def check_new_username(username: object) -> str:
    """A username becomes a namespace exactly as typed: the grammar plus the reserved words.
    Never lower-cased or normalized (`Alice` is not `alice`: it is refused)."""
    ns = check_namespace(username)
    if ns in RESERVED_NAMESPACES:
        raise InvalidName(f"the name {ns!r} is reserved: choose another username")
    return ns


def is_namespace(username: object) -> bool:
    """True when `username`, exactly as it is, is a namespace an account may own."""
    return (isinstance(username, str) and NAMESPACE_RE.fullmatch(username) is not None
            and username not in RESERVED_NAMESPACES)


def fold(text: str) -> str:
    """What a name reads as once case and compatibility forms are ignored (NFKC, Unicode
    case folding, NFKC again): `ALICE`, `Alice` and `\u212aate` (Kelvin sign) read as
    `alice` and `kate`. Used to refuse look-alikes at sign-up, never to map a name."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


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


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"
