"""Legacy executors: executors that predate namespaces keep their bare name and secret.

The alias (`legacy#{name}`, `executor#ALIAS`: a LegacyAlias record) names the owner and holds
a salted scrypt hash of the secret; the executor itself is a normal one in the owner's
namespace. A right secret is a `Grant` (chalicelib/access.py) to read and push that one
executor as its owner. Checking a secret costs one scrypt whether the name exists or not (a
missing name is checked against a dummy hash), so neither the answer nor its time tells which
names exist; wrong secrets are limited per name (a counter per time window, with a TTL):
past the limit every secret for that name is 429 without being hashed, the right one too (it
cannot be told apart without hashing it); the owner's login keeps working.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from pathlib import Path
from typing import Any

from chalicelib import blobs, keys
from chalicelib.access import Grant, Who, not_found
from chalicelib.auth import Caller
from chalicelib.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    NotVisible,
    TooManyRequests,
    Unauthorized,
)
from chalicelib.names import check_name, check_new_username
from chalicelib.pulls import credentials_for
from chalicelib.resources import get_resource
from chalicelib.store import legacy as aliases
from chalicelib.store import resources as stored
from chalicelib.store.records import LegacyAlias
from chalicelib.times import now_iso
from chalicelib.uploads import abort_upload, complete_upload, refresh_part_urls, start_upload

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_SECRET_CHARS = 1024
SECRET_FAILURE_LIMIT = 10  # wrong secrets per name, over this window and the one before
SECRET_FAILURE_WINDOW_SECONDS = 60
# Checked when a name has no alias: the same parameters as a real hash, so a missing name
# costs exactly one scrypt, like a wrong secret. No secret hashes to an all-zero digest.
_NO_ALIAS_HASH = "$".join([
    "scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
    base64.b64encode(bytes(16)).decode(), base64.b64encode(bytes(32)).decode(),
])


def hash_secret(secret: str) -> str:
    """`scrypt$N$r$p$salt$hash` (base64): salted and slow, never the secret itself."""
    salt = os.urandom(16)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Whether `secret` matches the stored hash; one scrypt either way (None: a dummy)."""
    try:
        scheme, n, r, p, salt, digest = (stored or _NO_ALIAS_HASH).split("$")
        expected = base64.b64decode(digest)
        got = _scrypt(secret, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and stored is not None and hmac.compare_digest(got, expected)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                          dklen=32)


def legacy_not_found(name: str) -> NotFound:
    return not_found(keys.EXECUTOR, None, name)


def _legacy_caller(caller: Caller | None, name: str, secret: str | None) -> tuple[LegacyAlias, Who]:
    """The alias and who the request acts as: a grant for the owner's executor with a right
    secret, else the caller. A wrong secret is 404, exactly like a missing executor."""
    check_name(name)
    if secret is None:
        alias = aliases.read_alias(name)
        if alias is None:
            raise legacy_not_found(name)
        return alias, caller
    if not secret or len(secret) > MAX_SECRET_CHARS:
        raise legacy_not_found(name)
    now = time.time()
    window = int(now // SECRET_FAILURE_WINDOW_SECONDS)
    alias, current, previous = aliases.alias_and_failures(name, window)
    if current + previous >= SECRET_FAILURE_LIMIT:
        # counted over two windows, so a guesser gains nothing at a window's edge; the
        # limit lifts when the windows that hold enough failures have passed
        until = window + (2 if current >= SECRET_FAILURE_LIMIT else 1)
        retry_after = int(until * SECRET_FAILURE_WINDOW_SECONDS - now) + 1
        raise TooManyRequests(
            f"too many wrong secrets for '{name}': try again in {retry_after} s, "
            "or sign in as its owner", retry_after=retry_after)
    if not verify_secret(secret, alias.secret_hash if alias else None):
        _count_failure(name, window)
        raise legacy_not_found(name)
    return alias, Grant(keys.EXECUTOR, alias.owner, alias.name, reason="legacy-secret")


def _count_failure(name: str, window: int) -> None:
    """One more wrong secret for `name` in `window` (an atomic ADD; the item expires with
    the next window). Racing requests may each pass the limit check before they count: the
    overshoot is bounded by the requests in flight."""
    aliases.count_failure(name, window, expires_at=(window + 2) * SECRET_FAILURE_WINDOW_SECONDS)


def _as_legacy(call, name: str, ns: str, real_name: str):
    """Run a call on the owner's executor; its "not found or private" answer becomes the
    legacy one, which does not reveal the owner."""
    try:
        return call()
    except NotVisible as exc:
        if (exc.kind, exc.namespace, exc.name) == (keys.EXECUTOR, ns, real_name):
            raise legacy_not_found(name) from None
        raise


def get_legacy_executor(caller: Caller | None, name: str, secret: str | None,
                        tag: str | None = None) -> dict[str, Any]:
    alias, acting = _legacy_caller(caller, name, secret)
    info = _as_legacy(lambda: get_resource(acting, keys.EXECUTOR, alias.owner, alias.name,
                                                    tag=tag), name, alias.owner, alias.name)
    info["legacy"] = True
    return info


def legacy_pull_credentials(caller: Caller | None, name: str, secret: str | None,
                            tag: str | None = None) -> dict[str, Any]:
    alias, acting = _legacy_caller(caller, name, secret)
    info = _as_legacy(lambda: get_resource(acting, keys.EXECUTOR, alias.owner, alias.name,
                                                    tag=tag, download=False),
                      name, alias.owner, alias.name)
    return credentials_for(info, acting.namespace if acting else "anonymous")


def _legacy_pusher(caller: Caller | None, name: str,
                   secret: str | None) -> tuple[LegacyAlias, Who]:
    """The alias and who pushes, when the request may push: a right secret (a grant), or the
    owner's token. Anonymous without a secret 401; another user 403 for a public executor,
    404 otherwise."""
    if secret is None and caller is None:
        raise Unauthorized("send the executor's secret (X-Executor-Secret) or sign in as its owner")
    alias, acting = _legacy_caller(caller, name, secret)
    if secret is None:
        caller.require_write()  # a read-only token cannot push, even as the owner
    if acting is None or acting.namespace != alias.owner:
        # 404 like a missing one when this caller cannot even see it, else 403.
        _as_legacy(lambda: get_resource(acting, keys.EXECUTOR, alias.owner, alias.name,
                                                 download=False), name, alias.owner, alias.name)
        raise Forbidden(f"only the owner or the executor's secret can push '{name}'")
    return alias, acting


def start_legacy_upload(caller: Caller | None, name: str, secret: str | None,
                        body: dict) -> dict[str, Any]:
    alias, acting = _legacy_pusher(caller, name, secret)
    return start_upload(acting, keys.EXECUTOR, alias.owner, alias.name, body)


def complete_legacy_upload(caller: Caller | None, name: str, secret: str | None,
                           upload_id: str, body: dict) -> dict[str, Any]:
    alias, acting = _legacy_pusher(caller, name, secret)
    info = complete_upload(acting, keys.EXECUTOR, alias.owner, alias.name, upload_id, body)
    info["legacy"] = True
    return info


def refresh_legacy_part_urls(caller: Caller | None, name: str, secret: str | None,
                             upload_id: str, body: dict) -> dict[str, Any]:
    alias, acting = _legacy_pusher(caller, name, secret)
    return refresh_part_urls(acting, keys.EXECUTOR, alias.owner, alias.name, upload_id, body)


def abort_legacy_upload(caller: Caller | None, name: str, secret: str | None,
                        upload_id: str) -> None:
    alias, acting = _legacy_pusher(caller, name, secret)
    abort_upload(acting, keys.EXECUTOR, alias.owner, alias.name, upload_id)


def import_legacy_executor(name: str, owner: str, secret: str, package: Path,
                           public: bool = False) -> dict[str, Any]:
    """Register an executor that predates namespaces (operators: `nshub-admin
    import-legacy-executor`, which packs its folder). The package becomes a version of
    `owner/name` (pushed through the same upload flow as any push, so it is validated and its
    image is built), and the alias `name` -> owner keeps `jinahub://name:secret` working.
    Running it twice is harmless: the same package is not pushed again, the alias is kept."""
    check_name(name)
    check_new_username(owner)  # an account's namespace: never a reserved word
    if not isinstance(secret, str) or not secret or len(secret) > MAX_SECRET_CHARS:
        raise InvalidRequest(f"the secret must be 1-{MAX_SECRET_CHARS} characters")
    alias = aliases.read_alias(name)
    _check_existing_alias(alias, name, owner, secret)

    size, sha256 = blobs.file_digest(package)
    head = stored.read_head(keys.resource_pk(owner, name), keys.EXECUTOR, consistent=True)
    if head is not None and head.current.get("sha256") == sha256:
        pushed, version = False, head.counter
    else:
        pushed, version = True, _push_file(owner, name, package, size, sha256, public)

    created = False
    if alias is None:
        created = aliases.put_alias(LegacyAlias.new(name, owner, hash_secret(secret), now_iso()))
        if not created:  # imported concurrently
            _check_existing_alias(aliases.read_alias(name), name, owner, secret)
    return {"name": name, "full_name": f"{owner}/{name}", "version": version, "pushed": pushed,
            "alias_created": created, "sha256": sha256, "size": size}


def _check_existing_alias(alias: LegacyAlias | None, name: str, owner: str, secret: str) -> None:
    if alias is None:
        return
    if alias.owner != owner:
        raise Conflict(f"legacy executor '{name}' already belongs to '{alias.owner}'")
    if not verify_secret(secret, alias.secret_hash):
        raise Conflict(f"legacy executor '{name}' already exists with another secret")


def _push_file(owner: str, name: str, path: Path, size: int, sha256: str, public: bool) -> int:
    """Push a package file as the owner would (start, PUT the parts, complete)."""
    body: dict[str, Any] = {"size": size, "sha256": sha256}
    if public:
        body["visibility"] = "public"
    operator = Grant(keys.EXECUTOR, owner, name, reason="operator")
    plan = start_upload(operator, keys.EXECUTOR, owner, name, body)
    if plan.get("unchanged"):
        return int(plan["version"])
    with path.open("rb") as fh:
        def read(offset: int, length: int) -> bytes:
            fh.seek(offset)
            return fh.read(length)

        parts = blobs.put_planned_parts(plan, read, timeout=300)
    info = complete_upload(operator, keys.EXECUTOR, owner, name, plan["upload_id"],
                           {"parts": parts})
    return int(info["version"])
