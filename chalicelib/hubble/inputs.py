"""What Hubble methods read of a call: the signed-in caller, text and flag fields, and names
(`ns/name`; a leading `jac://` is dropped; a bare name is a legacy one)."""
from __future__ import annotations

from chalicelib.auth import Caller
from chalicelib.errors import InvalidRequest, Unauthorized
from chalicelib.forms import Field
from chalicelib.hubble.envelope import RpcRequest

JAC_PREFIX = "jac://"


def signed_in(request: RpcRequest) -> Caller:
    if request.caller is None:
        raise Unauthorized("sign in first: set JINA_AUTH_TOKEN to an nshub personal access "
                           "token (`nshub token create NAME --scope write`)")
    return request.caller


def text(fields: dict[str, Field], name: str, required: bool = False) -> str | None:
    found = fields.get(name)
    value = found.text().strip() if found is not None else ""
    if not value:
        if required:
            raise InvalidRequest(f"the request needs a '{name}' field")
        return None
    return value


def flag(fields: dict[str, Field], name: str) -> bool | None:
    value = text(fields, name)
    if value is None:
        return None
    return value.lower() in ("true", "1", "yes")


def split_name(raw: str, what: str = "array") -> tuple[str | None, str]:
    """`ns/name` -> (ns, name); a bare `name` -> (None, name). `jac://` is dropped."""
    name = raw.strip()
    if name.startswith(JAC_PREFIX):
        name = name[len(JAC_PREFIX):]
    ns, sep, rest = name.partition("/")
    if not sep:
        return None, name
    if "/" in rest:
        raise InvalidRequest(f"invalid {what} name '{raw}': use 'username/name'")
    return ns.lower(), rest
