"""Who is calling: verification of Cognito JWTs in code.

Not a Cognito authorizer: Chalice does not check those locally, and API Gateway answers 401
before the app runs when the header is missing, which would lock out anonymous readers.

Rules: RS256 only; the key comes from the pool's JWKS (cached per warm container, refetched
on an unknown `kid` at most once a minute); `exp` and `iss` are checked; `token_use` is `id`
or `access`; the audience (`aud` for ID tokens, `client_id` for access tokens) must be our
app client. The username is used exactly as issued, and only for the live account that owns
its namespace (`accounts.require_live_account`: the claim's `sub`, a deleted account refused
within a minute). Any failure is Unauthorized: a bad token is never treated as anonymous.
Personal access tokens (`nshub_...`) are checked by chalicelib/tokens.py instead.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from chalicelib import accounts
from chalicelib.errors import Unauthorized

JWKS_REFETCH_SECONDS = 60
LEEWAY_SECONDS = 30


FULL_SCOPES = frozenset({"read", "write"})
MAX_AUTHORIZATION_CHARS = 8192  # far above any Cognito token; refused before any parsing


@dataclass(frozen=True)
class Caller:
    username: str
    via: str  # "id", "access" or "pat" (personal access token)
    sub: str = ""  # the account (Cognito `sub`) behind a token
    scopes: frozenset[str] = FULL_SCOPES  # a personal access token's; sign-ins have all
    token_id: str | None = None  # the personal access token acting, if any

    @property
    def namespace(self) -> str:
        return self.username

    def require_write(self) -> "Caller":
        """This caller, when it may write (push, change, delete); InsufficientScope if not."""
        if "write" not in self.scopes:
            from chalicelib.errors import InsufficientScope

            raise InsufficientScope("this token is read-only: it cannot push, change or delete; "
                                    "create one with `nshub token create NAME --scope write`")
        return self


ANONYMOUS = None


def fetch_jwks_over_http(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (configured URL)
        return json.loads(resp.read())


class JWKSKeys:
    """Public keys by `kid`, fetched with an injectable `fetch(url) -> jwks dict`."""

    def __init__(self, url: str, fetch: Callable[[str], dict[str, Any]] = fetch_jwks_over_http):
        self.url = url
        self._fetch = fetch
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= JWKS_REFETCH_SECONDS:
                self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("the token was signed by an unknown key: sign in again")
        return key

    def _refresh(self) -> None:
        from jwt.algorithms import RSAAlgorithm

        self._fetched_at = time.monotonic()
        try:
            jwks = self._fetch(self.url)
        except Exception as exc:  # the pool's keys are unreachable: refuse, never admit
            raise Unauthorized("cannot check the token right now: try again shortly") from exc
        keys = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("kid"):
                keys[jwk["kid"]] = RSAAlgorithm.from_jwk(json.dumps(jwk))
        self._keys = keys


class TokenVerifier:
    def __init__(self, issuer: str, client_id: str, keys: JWKSKeys):
        self.issuer = issuer
        self.client_id = client_id
        self.keys = keys

    def verify(self, token: str) -> Caller:
        import jwt

        bad = Unauthorized("the token is invalid or expired: run `nshub login` again")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise bad from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise bad
        key = self.keys.get(header["kid"])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"verify_aud": False, "require": ["exp", "iss", "token_use"]},
            )
        except jwt.PyJWTError:
            raise bad from None
        use = claims.get("token_use")
        if use == "id":
            audience, username = claims.get("aud"), claims.get("cognito:username")
        elif use == "access":
            audience, username = claims.get("client_id"), claims.get("username")
        else:
            raise bad
        sub = claims.get("sub")
        if audience != self.client_id or not isinstance(username, str) or not username:
            raise bad
        if not isinstance(sub, str) or not sub:
            raise bad
        # The username exactly as issued (never lower-cased: `ALICE` is not `alice`), and
        # only for the live account that claimed its namespace (chalicelib/accounts.py).
        accounts.require_live_account(username, sub)
        return Caller(username=username, via=use, sub=sub)


def bearer_token(headers: dict[str, str]) -> str | None:
    """The token of a request's `Authorization: Bearer <token>` or `Authorization: token
    <token>` (the Jina clients' form); None when there is no Authorization header at all."""
    value = None
    for name, val in headers.items():
        if name.lower() == "authorization":
            value = val
            break
    if value is None:
        return None
    if len(value) > MAX_AUTHORIZATION_CHARS:
        raise Unauthorized("the Authorization header is too long to hold a token: send "
                           "'Bearer <token>' with a token from `nshub login` or `nshub token create`")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>' or 'token <token>'")
    return token.strip()


_key_fetch: Callable[[str], dict[str, Any]] = fetch_jwks_over_http
_verifier: tuple[Any, TokenVerifier] | None = None


def set_key_fetch(fetch: Callable[[str], dict[str, Any]]) -> None:
    """Inject where the pool's JWKS comes from (tests under in-process moto)."""
    global _key_fetch, _verifier
    _key_fetch, _verifier = fetch, None


def get_verifier() -> TokenVerifier:
    """One verifier (and so one key cache) per warm container and configuration."""
    global _verifier
    from chalicelib.config import get_settings

    settings = get_settings()
    if _verifier is None or _verifier[0] is not settings:
        keys = JWKSKeys(settings.jwks_url, _key_fetch)
        _verifier = (settings, TokenVerifier(settings.issuer, settings.client_id, keys))
    return _verifier[1]


def identify(headers: dict[str, str]) -> Caller | None:
    """The caller of a request: None when anonymous, Unauthorized when the token is bad."""
    token = bearer_token(headers)
    if token is None:
        return ANONYMOUS
    from chalicelib import tokens

    if tokens.looks_like_token(token):  # a personal access token (chalicelib/tokens.py)
        return tokens.authenticate(token)
    return get_verifier().verify(token)
