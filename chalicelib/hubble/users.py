"""Hubble's user methods: who the caller is, the docker registries `jina auth login` asks
for, and personal access tokens, answered from nshub's token store. A token cannot create or
revoke tokens (403): sign in (the console, `nshub login`) to manage them."""
from __future__ import annotations

import re
from typing import Any

from chalicelib.errors import InvalidRequest
from chalicelib.hubble.envelope import RpcRequest, success
from chalicelib.hubble.inputs import signed_in, text


def whoami(request: RpcRequest) -> dict[str, Any]:
    who = signed_in(request)
    return success({"_id": who.username, "name": who.username, "nickname": who.username,
                    "namespace": who.namespace})


def list_internal_registries(request: RpcRequest) -> dict[str, Any]:
    # `jina auth login` asks for these; nshub's images have their own pull credentials.
    return success([])


def create_pat(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import tokens

    fields = request.fields()
    body: dict[str, Any] = {"name": text(fields, "name"), "scopes": ["read", "write"]}
    days = text(fields, "expirationDays")
    if days is not None:
        if not re.fullmatch(r"[0-9]{1,5}", days):
            raise InvalidRequest("expirationDays must be a whole number of days")
        body["expires_in_days"] = int(days)
    return success(tokens.create_token(signed_in(request), body))


def list_pats(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import tokens

    found = tokens.list_tokens(signed_in(request))["items"]
    return success({"personal_access_tokens": found})


def delete_pat(request: RpcRequest) -> dict[str, Any]:
    from chalicelib import tokens

    name = text(request.fields(), "name", required=True)
    tokens.revoke_token(signed_in(request), name=name)
    return success({"name": name, "deleted": True})
