"""Personal access tokens: create, list, revoke, and check one on a request.

A token is `nshub_` + 40 random base62 characters, shown once at creation and stored only as
its SHA-256 (chalicelib/store/tokens.py). It acts as its account with its scopes: `read`, or
`read` and `write`. Tokens never create or revoke tokens.

Checking a token costs one GetItem, plus the liveness of its account (chalicelib/accounts.py:
a Cognito lookup, cached); the answer is kept in memory for at most CACHE_SECONDS, so a warm
request costs no table read for its token. What the cache may not
hide: expiry is checked against the clock on every request, and a revocation evicts the token
from this container's cache at once. Another warm container may accept a revoked token until
its cached entry is CACHE_SECONDS old: that is the bound across containers.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from chalicelib.auth import Caller
from chalicelib.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from chalicelib.store import tokens as stored
from chalicelib.store.records import Token
from chalicelib.times import iso

PREFIX = "nshub_"
SECRET_CHARS = 40
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SECRET_RE = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{SECRET_CHARS}}}")
SCOPES = ("read", "write")
MAX_LIVE_TOKENS = 50
DEFAULT_DAYS, MAX_DAYS = 90, 365
MAX_NAME_CHARS = 100
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:@+-]*")
CACHE_SECONDS = 60
CACHE_ENTRIES = 10_000
LAST_USED_EVERY_SECONDS = 3600
INDEX_ATTEMPTS = 5

NO_TOKEN_MANAGEMENT = ("a personal access token cannot create or revoke tokens: sign in "
                       "with `nshub login` (username and password) to manage them")


# ---------------------------------------------------------------- clock


_clock: Callable[[], float] = time.time


def now() -> float:
    return _clock()


def set_clock(clock: Callable[[], float] | None) -> None:
    """Inject the time tokens expire and cached lookups age by (tests); None: the real one."""
    global _clock
    _clock = clock or time.time


# ---------------------------------------------------------------- secrets


def new_secret() -> str:
    return PREFIX + "".join(secrets.choice(BASE62) for _ in range(SECRET_CHARS))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    """A bearer value meant as a personal access token (well-formed or not)."""
    return value.startswith(PREFIX)


def new_token_id() -> str:
    """Sortable by creation (microseconds of the real clock, then randomness)."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(5)}"


# ---------------------------------------------------------------- the lookup cache


class TokenCache:
    """Token records by secret hash, each kept at most `ttl` seconds (by `now()`)."""

    def __init__(self, ttl: float = CACHE_SECONDS, size: int = CACHE_ENTRIES):
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, Token]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, secret_hash: str) -> Token | None:
        with self._lock:
            found = self._entries.get(secret_hash)
            if found is None:
                return None
            if now() - found[0] >= self.ttl:
                del self._entries[secret_hash]
                return None
            return found[1]

    def put(self, token: Token, fetched_at: float) -> None:
        with self._lock:
            self._entries[token.secret_hash] = (fetched_at, token)
            self._entries.move_to_end(token.secret_hash)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def replace(self, token: Token) -> None:
        """Keep a changed copy of a cached token, as old as the lookup it came from (so the
        cache never holds a token longer than `ttl` after it was read)."""
        with self._lock:
            found = self._entries.get(token.secret_hash)
            if found is not None:
                self._entries[token.secret_hash] = (found[0], token)

    def evict(self, secret_hash: str) -> None:
        with self._lock:
            self._entries.pop(secret_hash, None)


_cache: tuple[Any, TokenCache] | None = None


def get_cache() -> TokenCache:
    """One cache per warm container and configuration (a new configuration starts empty)."""
    global _cache
    from chalicelib.config import get_settings

    settings = get_settings()
    if _cache is None or _cache[0] is not settings:
        _cache = (settings, TokenCache())
    return _cache[1]


# ---------------------------------------------------------------- checking a token


def authenticate(secret: str) -> Caller:
    """The caller a personal access token acts as; Unauthorized (never anonymous) when it is
    malformed, unknown, expired or revoked."""
    if not SECRET_RE.fullmatch(secret):
        raise Unauthorized("this is not a valid nshub token (nshub_ and 40 letters and digits): "
                           "copy it again or create one with `nshub token create`")
    secret_hash = hash_secret(secret)
    cache = get_cache()
    at = now()
    token = cache.get(secret_hash)
    if token is None:
        token = stored.find_token(secret_hash)
        if token is None:
            raise Unauthorized("this token is unknown (mistyped, or deleted long ago): "
                               "create one with `nshub token create`")
        cache.put(token, at)
    if token.revoked_at is not None:
        raise Unauthorized(f"this token ('{token.name}') was revoked on {iso(token.revoked_at)}: "
                           "create a new one with `nshub token create`")
    if at >= token.expires_at:
        raise Unauthorized(f"this token ('{token.name}') expired on {iso(token.expires_at)}: "
                           "create a new one with `nshub token create`")
    _require_live_owner(token)
    _note_use(token, at, cache)
    return Caller(username=token.owner, via="pat", sub=token.owner_sub,
                  scopes=frozenset(token.scopes), token_id=token.token_id)


def _require_live_owner(token: Token) -> None:
    """The token's account must still be the live account it was made by: a deleted (or
    disabled, or re-created) account's tokens are 401, within the liveness cache's time
    (chalicelib/accounts.py, a Cognito lookup). The namespace claim needs no second look:
    the token was made by the claim's account (its ID token passed the claim check) and
    claims never change hands."""
    from chalicelib import accounts

    if not token.owner_sub or accounts.live_accounts().live_sub(token.owner) != token.owner_sub:
        raise Unauthorized(f"the account of this token ('{token.name}') was deleted or disabled:"
                           " the token no longer works")


def _note_use(token: Token, at: float, cache: TokenCache) -> None:
    """Record the use at most once an hour per token (a conditional update)."""
    if token.last_used_at is not None and at - token.last_used_at < LAST_USED_EVERY_SECONDS:
        return
    from dataclasses import replace

    stored.record_use(token.secret_hash, int(at), LAST_USED_EVERY_SECONDS)
    # Written now, or by someone else within the hour: either way not again this hour.
    cache.replace(replace(token, last_used_at=int(at)))


# ---------------------------------------------------------------- managing tokens


def _require_account(caller: Caller | None, managing: bool) -> Caller:
    if caller is None:
        raise Unauthorized("sign in first: run `nshub login`")
    if caller.via == "pat" and managing:
        raise Forbidden(NO_TOKEN_MANAGEMENT)
    if caller.via not in ("id", "access", "pat"):
        raise Forbidden("only a signed-in account has tokens: run `nshub login`")
    return caller


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("'name' is required: say what the token is for, e.g. \"nightly CI\"")
    name = value.strip()
    if len(name) > MAX_NAME_CHARS or not NAME_RE.fullmatch(name):
        raise InvalidRequest(f"a token name is 1-{MAX_NAME_CHARS} letters, digits, spaces and "
                             "._:@+- starting with a letter or digit")
    return name


def _check_scopes(value: Any) -> tuple[str, ...]:
    if value is None:
        return ("read",)
    if (not isinstance(value, list) or not value
            or not all(isinstance(s, str) and s in SCOPES for s in value)):
        raise InvalidRequest('scopes must be ["read"] or ["read", "write"]')
    return ("read", "write") if "write" in value else ("read",)


def _check_days(value: Any) -> int:
    if value is None:
        return DEFAULT_DAYS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise InvalidRequest(f"expires_in_days must be a whole number from 1 to {MAX_DAYS}")
    return value


def describe(token: Token) -> dict[str, Any]:
    """A token as its owner sees it: never the secret nor its hash."""
    return {
        "id": token.token_id,
        "name": token.name,
        "scopes": list(token.scopes),
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at) if token.last_used_at is not None else None,
    }


def create_token(caller: Caller | None, body: dict) -> dict[str, Any]:
    """A new token for the caller's account; its secret is in this answer and nowhere else."""
    caller = _require_account(caller, managing=True)
    unknown = set(body) - {"name", "scopes", "expires_in_days"}
    if unknown:
        raise InvalidRequest(f"unknown field(s) {', '.join(sorted(unknown))}: "
                             "send name, scopes and expires_in_days")
    name = _check_name(body.get("name"))
    scopes = _check_scopes(body.get("scopes"))
    days = _check_days(body.get("expires_in_days"))
    secret = new_secret()
    for _ in range(INDEX_ATTEMPTS):
        at = int(now())
        index = stored.read_index(caller.username)
        live = index.live(at)
        if len(live) >= MAX_LIVE_TOKENS:
            raise Conflict(f"you have {len(live)} live tokens, the most an account may have is "
                           f"{MAX_LIVE_TOKENS}: remove one with `nshub token rm ID`")
        if any(e.name == name for e in live.values()):
            raise Conflict(f"you already have a token named '{name}': choose another name "
                           "or remove that one")
        token = Token(token_id=new_token_id(), secret_hash=hash_secret(secret),
                      owner=caller.username, owner_sub=caller.sub or None, name=name, scopes=scopes,
                      created_at=at, expires_at=at + days * 86400)
        try:
            stored.add_token(token, index, keep=live)
        except stored.IndexChanged:
            continue
        made = describe(token)
        del made["last_used_at"]
        return {**made, "token": secret}
    raise Conflict("your tokens changed while this one was made: try again")


def list_tokens(caller: Caller | None) -> dict[str, Any]:
    """The caller's live tokens, oldest first."""
    caller = _require_account(caller, managing=False)
    at = now()
    index = stored.read_index(caller.username)
    live = [t for t in stored.tokens_of(index)
            if t.revoked_at is None and t.expires_at > at and t.owner == caller.username]
    live.sort(key=lambda t: (t.created_at, t.token_id))
    return {"items": [describe(t) for t in live]}


def revoke_token(caller: Caller | None, token_id: str | None = None,
                 name: str | None = None) -> None:
    """Revoke one of the caller's tokens, by id (or by name, for the Hubble API); refused from
    the next request on."""
    caller = _require_account(caller, managing=True)
    for _ in range(INDEX_ATTEMPTS):
        at = int(now())
        index = stored.read_index(caller.username)
        live = index.live(at)
        found = [tid for tid, e in live.items()
                 if (token_id is not None and tid == token_id)
                 or (token_id is None and name is not None and e.name == name)]
        if not found:
            what = f"id '{token_id}'" if token_id is not None else f"name '{name}'"
            raise NotFound(f"you have no token with {what}: list yours with `nshub token ls`")
        try:
            secret_hash = stored.revoke_token(found[0], index, live, at)
        except stored.IndexChanged:
            continue
        get_cache().evict(secret_hash)
        return
    raise Conflict("your tokens changed while this one was revoked: try again")
