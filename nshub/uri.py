"""Executor URIs, with the grammar of the Jina hub SDK (DESIGN.md, "Grammar").

    jinaai://NAMESPACE/NAME[:TAG]           source package
    jinaai+docker://NAMESPACE/NAME[:TAG]    container image
    jinahub://NAME[:SECRET][/TAG]           legacy, source package
    jinahub+docker://NAME[:SECRET][/TAG]    legacy, container image

Like the SDK, slashes around the `:` and trailing slashes are ignored
(`jinaai://alice/Enc/:/v1/` is `jinaai://alice/Enc:v1`), and an empty tag or secret counts as
none. Namespaces are case-insensitive and come back lower-cased; names and tags keep their
case. No tag means `tag=None`, which callers read as `latest`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from nshub.errors import InvalidName
from nshub.names import InvalidNameError, check_name, check_namespace, check_tag

ACCEPTED_FORMS = (
    "jinaai://NAMESPACE/NAME[:TAG], jinaai+docker://NAMESPACE/NAME[:TAG], "
    "jinahub://NAME[:SECRET][/TAG] or jinahub+docker://NAME[:SECRET][/TAG]"
)

# scheme -> (docker, legacy)
SCHEMES = {
    "jinaai": (False, False),
    "jinaai+docker": (True, False),
    "jinahub": (False, True),
    "jinahub+docker": (True, True),
}

SECRET_RE = re.compile(r"^[A-Za-z0-9._~-]{1,256}$")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.S)
# A legacy reference, or a mistyped one (`jinahub:/NAME:SECRET`, `jinahub+docker:NAME:SECRET`):
# the scheme, what stands for `://`, then NAME[:SECRET][/TAG].
_LEGACY_REFERENCE = re.compile(
    r"^(\s*jinahub(?:\+docker)?(?![\w+.-])[\s:/]*)([^:/]*)(:[^/]+)?", re.I)


class InvalidExecutorURI(InvalidName):
    """An executor URI that does not follow the grammar; the message says what and how.

    An `nshub.errors.InvalidName`, hence also a ValueError.
    """

    hint = None  # the message already lists the accepted forms


@dataclass(frozen=True)
class ExecutorRef:
    scheme: str
    namespace: str | None
    name: str
    tag: str | None = None
    secret: str | None = field(default=None, repr=False)  # never printed by repr()
    docker: bool = False
    legacy: bool = False

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise InvalidExecutorURI(f"unknown executor URI scheme {self.scheme!r}: use {ACCEPTED_FORMS}")
        if SCHEMES[self.scheme] != (self.docker, self.legacy):
            raise InvalidExecutorURI(
                f"scheme {self.scheme!r} does not match docker={self.docker}, legacy={self.legacy}"
            )
        try:
            if self.legacy:
                if self.namespace is not None:
                    raise InvalidExecutorURI("a legacy (jinahub) reference has no namespace")
            else:
                if self.secret is not None:
                    raise InvalidExecutorURI("a jinaai reference has no secret: access follows your login")
                if check_namespace(self.namespace) != self.namespace:
                    raise InvalidExecutorURI(f"namespace {self.namespace!r} must be lower-case")
            check_name(self.name)
            if self.tag is not None:
                check_tag(self.tag)
        except InvalidExecutorURI:
            raise
        except InvalidNameError as exc:
            raise InvalidExecutorURI(str(exc)) from None
        if self.secret is not None and not SECRET_RE.fullmatch(self.secret):
            raise InvalidExecutorURI("invalid secret: use letters, digits, '.', '_', '~' and '-'")

    @property
    def full_name(self) -> str:
        """`namespace/name`, or the bare name of a legacy executor."""
        return self.name if self.legacy else f"{self.namespace}/{self.name}"

    @property
    def tag_or_latest(self) -> str:
        return self.tag or "latest"

    def canonical(self, *, redact_secret: bool = False) -> str:
        """The canonical URI; `parse_executor_uri(ref.canonical()) == ref`."""
        if not self.legacy:
            uri = f"{self.scheme}://{self.namespace}/{self.name}"
            return uri + (f":{self.tag}" if self.tag else "")
        uri = f"{self.scheme}://{self.name}"
        if self.secret:
            uri += ":<secret>" if redact_secret else f":{self.secret}"
        return uri + (f"/{self.tag}" if self.tag else "")


def redact_secret(text: str) -> str:
    """`text` with the secret of a legacy reference, even a mistyped one, shown as `<secret>`."""
    return _LEGACY_REFERENCE.sub(lambda m: m[1] + m[2] + (":<secret>" if m[3] else ""), text)


def is_executor_uri(value: object) -> bool:
    """True when `value` looks like a hub URI (known scheme), valid or not."""
    if not isinstance(value, str):
        return False
    m = _SCHEME_RE.match(value.strip())
    return bool(m) and m.group(1).lower() in SCHEMES


def parse_executor_uri(uri: object) -> ExecutorRef:
    """Parse an executor URI or raise InvalidExecutorURI saying what is wrong."""
    if not isinstance(uri, str):
        raise InvalidExecutorURI(f"an executor URI must be a string, not {type(uri).__name__}: use {ACCEPTED_FORMS}")
    text = uri.strip()

    def fail(what: str) -> InvalidExecutorURI:
        return InvalidExecutorURI(
            f"invalid executor URI {redact_secret(uri)!r}: {what}; use {ACCEPTED_FORMS}")

    m = _SCHEME_RE.match(text)
    if not m:
        raise fail("missing scheme")
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme not in SCHEMES:
        if scheme.endswith("+sandbox"):
            raise fail(f"sandbox executors ({scheme}://) are not supported")
        raise fail(f"unknown scheme {scheme!r}")
    docker, legacy = SCHEMES[scheme]
    if not rest:
        raise fail("it is empty after the scheme")
    if any(c in rest for c in "?#@") or any(c.isspace() or ord(c) < 0x20 for c in rest):
        raise fail("it contains a space, '?', '#' or '@'")

    try:
        if legacy:
            authority, _, path = rest.partition("/")
            parts = authority.split(":")
            if len(parts) > 2:
                raise fail("more than one ':' in NAME:SECRET")
            if not parts[0]:
                raise fail("missing executor name")
            name = check_name(parts[0])
            secret = parts[1] if len(parts) == 2 and parts[1] else None
            if secret is not None and not SECRET_RE.fullmatch(secret):
                raise fail("invalid secret: use letters, digits, '.', '_', '~' and '-'")
            tag_text = path.strip("/")
            tag = check_tag(tag_text) if tag_text else None
            return ExecutorRef(scheme, None, name, tag, secret, docker, legacy)

        parts = rest.split(":")
        if len(parts) > 2:
            raise fail("more than one ':' (an executor has at most one tag)")
        head = parts[0].rstrip("/")
        tag_text = parts[1].strip("/") if len(parts) == 2 else ""
        segments = head.split("/")
        if len(segments) == 1:
            what = "missing executor name" if segments[0] else "missing namespace and name"
            raise fail(f"{what}: expected NAMESPACE/NAME")
        if len(segments) > 2:
            raise fail("too many '/' (expected NAMESPACE/NAME)")
        if not segments[0]:
            raise fail("empty namespace")
        if not segments[1]:
            raise fail("empty executor name")
        namespace = check_namespace(segments[0])
        name = check_name(segments[1])
        tag = check_tag(tag_text) if tag_text else None
        return ExecutorRef(scheme, namespace, name, tag, None, docker, legacy)
    except InvalidExecutorURI:
        raise
    except InvalidNameError as exc:
        raise fail(str(exc)) from None

