"""Who may do what (DESIGN.md's access matrix), decided in one place.

Authority comes as a `Caller` (a signed-in user or one of their tokens), as a `Grant` (an
authority that is no signed-in user: a legacy executor's verified secret, an operator's
import), or as None: anonymous, always. Push only into your own namespace; read your own
resources and others' public ones; another user's private resource answers 404 exactly like
a missing one; legacy resources are read-only for everyone.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import keys
from chalicelib.auth import Caller
from chalicelib.errors import Forbidden, LegacyReadOnly, NotVisible, Unauthorized
from chalicelib.info import owner_of
from chalicelib.names import check_namespace
from chalicelib.store import resources as stored
from chalicelib.store.records import Head


@dataclass(frozen=True)
class Grant:
    """Authority over one resource that no signed-in caller holds: a legacy executor's
    secret, verified (`legacy-secret`), or an operator's import (`operator`). It acts as the
    resource's owner namespace, for that resource only."""

    kind: str
    namespace: str
    name: str
    reason: str

    def covers(self, kind: str, ns: str, name: str) -> bool:
        return (self.kind, self.namespace, self.name.lower()) == (kind, ns, name.lower())


Who = Caller | Grant | None


def acting_namespace(who: Who, kind: str, ns: str, name: str) -> str | None:
    """The namespace `who` acts as for the resource `ns/name` (None: anonymous)."""
    if isinstance(who, Grant):
        return who.namespace if who.covers(kind, ns, name) else None
    return who.namespace if who is not None else None


def require_caller(caller: Caller | None) -> Caller:
    if caller is None:
        raise Unauthorized("sign in first: run `nshub login` or send a bearer token")
    return caller


def require_owner_namespace(caller: Caller | None, ns: str) -> Caller:
    caller = require_caller(caller).require_write()
    if ns == keys.LEGACY_NS:
        raise LegacyReadOnly("legacy resources cannot be updated: push 'your-namespace/NAME'")
    if caller.namespace != ns:
        raise Forbidden(f"you can only push into your own namespace '{caller.namespace}'")
    return caller


def require_pusher(who: Who, kind: str, ns: str, name: str) -> str:
    """The namespace that pushes to `ns/name`: a caller's own (401 anonymous, 403 a
    read-only token or another namespace, 409 legacy), or a grant's for that resource."""
    if isinstance(who, Grant):
        if ns == keys.LEGACY_NS:
            raise legacy_read_only(name)
        if not who.covers(kind, ns, name):
            raise Forbidden(f"this grant does not cover '{ns}/{name}'")
        return who.namespace
    return require_owner_namespace(who, ns).namespace


def can_read(who: Who, head: Head) -> bool:
    return head.visibility == "public" or is_owner(who, head)


def is_owner(who: Who, head: Head) -> bool:
    return acting_namespace(who, head.kind, head.namespace, head.name) == owner_of(head)


def not_found(kind: str, ns: str | None, name: str) -> NotVisible:
    full = f"{ns}/{name}" if ns and ns != keys.LEGACY_NS else name
    return NotVisible(
        f"{kind} '{full}' does not exist or is private: check the name and your login",
        kind=kind, namespace=ns, name=name)


def legacy_read_only(name: str) -> LegacyReadOnly:
    return LegacyReadOnly(
        f"'{name}' is a legacy resource and cannot be changed: push 'your-namespace/{name}' instead"
    )


def readable_head(who: Who, kind: str, ns: str, name: str) -> Head:
    check_namespace(ns)
    head = stored.read_head(keys.resource_pk(ns, name), kind)
    if head is None or not can_read(who, head):
        raise not_found(kind, ns, name)
    return head


def owned_head(caller: Caller | None, kind: str, ns: str, name: str) -> Head:
    """The head a caller may change: 401 anonymous, 403 a read-only token, 409 legacy
    (read-only for everyone, and whether it exists is not told), 404 invisible, 403 visible
    but not theirs (the message never names the owner)."""
    caller = require_caller(caller).require_write()
    if ns == keys.LEGACY_NS:
        raise legacy_read_only(name)
    head = readable_head(caller, kind, ns, name)
    if owner_of(head) != caller.namespace:
        raise Forbidden(f"this {kind} is not yours: you can only change {kind}s in your own "
                        f"namespace '{caller.namespace}'")
    return head
