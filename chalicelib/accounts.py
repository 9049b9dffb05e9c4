"""Accounts own namespaces: the namespace claims, the sign-up rules and the liveness check.

A namespace belongs to one account, its Cognito `sub`, never to a username string. The claim
is an item of its own (`keys.claim_pk(ns)` / `keys.CLAIM_SK`), written once with a
conditional put and never deleted:

- `/v1/auth/signup` claims the namespace with the `UserSub` Cognito returns;
- an account made any other way (an operator's AdminCreateUser, accounts older than claims)
  claims it on its first verified token, if nobody has;
- a token is honoured only when its `sub` is the claim's and that account is still live in
  the pool (AdminGetUser). A deleted account's namespace stays claimed by its old `sub`:
  retired, never handed to another account, so a re-created username gets 401, not the old
  account's private data.

The same rules refuse such accounts at the source: `pre_sign_up` is the user pool's
PreSignUp trigger (app.py's `pre_sign_up` Lambda function; the dev stack and the tests run it
on moto's SignUp and AdminCreateUser, see devstack/motofix.py). `check_sign_up` is the one
check both `/v1/auth/signup` and the trigger apply, so both give the same answer.

Lookups on the token path are cached per warm container for `LIVE_CACHE_SECONDS`, so a
signed-in read stays one table read when warm, and a deleted account stops working within
that time.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from chalicelib.errors import Conflict, InvalidName, NshubError, Unauthorized
from chalicelib.names import RESERVED_NAMESPACES, check_new_username, fold, is_namespace
from chalicelib.store.records import NamespaceClaim
from chalicelib.times import now_iso

LIVE_CACHE_SECONDS = 30.0
MAX_CACHED = 10_000


def _gone() -> Unauthorized:
    return Unauthorized("this account was deleted or disabled: sign in with a live account")


# ---------------------------------------------------------------- data access


def get_claim(namespace: str, consistent: bool = False) -> NamespaceClaim | None:
    from chalicelib.store import accounts as stored

    return stored.read_claim(namespace, consistent)


def claim_namespace(namespace: str, sub: str) -> NamespaceClaim:
    """Claim `namespace` for the account `sub`, once (a conditional put). Returns the claim
    that holds afterwards: this one, or the one that was there first (then its `sub` differs)."""
    from chalicelib.store import accounts as stored

    claim = NamespaceClaim(namespace=namespace, sub=sub, claimed_at=now_iso())
    if stored.put_claim(claim):
        return claim
    existing = stored.read_claim(namespace, consistent=True)
    if existing is None:  # cannot happen: claims are never deleted
        raise RuntimeError(f"the claim of '{namespace}' was refused but cannot be read")
    return existing


# ---------------------------------------------------------------- sign-up rules


def check_sign_up(username: object) -> str:
    """The namespace a new account named `username` would own, or InvalidName (400) /
    Conflict (409): outside the grammar, reserved, taken, or reading as a reserved or taken
    namespace once case and compatibility forms are folded (`ALICE`, `\\u212aate`)."""
    if isinstance(username, str) and not is_namespace(username):
        folded = fold(username)
        if folded != username and folded in RESERVED_NAMESPACES:
            raise InvalidName(f"the username {username!r} reads as the reserved name "
                              f"{folded!r}: choose another username")
        if folded != username and is_namespace(folded) and get_claim(folded) is not None:
            raise Conflict(f"the username {username!r} reads as the taken namespace "
                           f"{folded!r}: choose another username")
    namespace = check_new_username(username)
    if get_claim(namespace, consistent=True) is not None:
        raise Conflict(f"the username '{namespace}' is taken: choose another")
    return namespace


class SignUpRefused(Exception):
    """Raised by the PreSignUp trigger: Cognito refuses the sign-up with
    `UserLambdaValidationException: PreSignUp failed with error <Code>: <message>.`"""


def pre_sign_up(event: dict) -> dict:
    """The user pool's PreSignUp trigger (SignUp, AdminCreateUser): refuse usernames that
    could not own their namespace. Fails closed: an error here refuses the sign-up."""
    try:
        check_sign_up(event.get("userName"))
    except NshubError as exc:
        raise SignUpRefused(f"{exc.code}: {exc.message}") from None
    return event


def refusal_of(message: str) -> NshubError | None:
    """The domain error the trigger refused a sign-up with, from Cognito's message."""
    from chalicelib import errors

    _, found, rest = message.partition("failed with error ")
    code, sep, text = rest.partition(": ")
    if not found or not sep:
        return None
    for cls in (errors.InvalidName, errors.Conflict, errors.InvalidRequest):
        if cls.code == code:
            return cls(text.rstrip(".").strip() or "sign-up refused")
    return None


# ---------------------------------------------------------------- liveness


class LiveAccounts:
    """Claims and Cognito accounts as seen within the last `ttl` seconds (per warm
    container). `clock` is injectable so tests move time instead of sleeping."""

    def __init__(self, ttl: float = LIVE_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._claims: dict[str, tuple[float, NamespaceClaim | None]] = {}
        self._subs: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def _fresh(self, table: dict, key: str) -> tuple[bool, Any]:
        found = table.get(key)
        if found is None or self.clock() - found[0] >= self.ttl:
            return False, None
        return True, found[1]

    def _keep(self, table: dict, key: str, value: Any) -> None:
        with self._lock:
            if len(table) >= MAX_CACHED:
                table.clear()
            table[key] = (self.clock(), value)

    def claim(self, namespace: str) -> NamespaceClaim | None:
        hit, claim = self._fresh(self._claims, namespace)
        if not hit:
            claim = get_claim(namespace, consistent=True)
            if claim is not None:  # an unclaimed namespace is looked up again next time
                self._keep(self._claims, namespace, claim)
        return claim

    def remember(self, claim: NamespaceClaim) -> None:
        self._keep(self._claims, claim.namespace, claim)

    def live_sub(self, username: str) -> str | None:
        """The `sub` of the enabled Cognito account `username`, None when there is none."""
        hit, sub = self._fresh(self._subs, username)
        if not hit:
            sub = _cognito_live_sub(username)
            self._keep(self._subs, username, sub)
        return sub


def _cognito_live_sub(username: str) -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.config import get_aws, get_settings

    try:
        user = get_aws().cognito.admin_get_user(UserPoolId=get_settings().user_pool_id,
                                                Username=username)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "UserNotFoundException":
            return None
        raise Unauthorized("cannot check the account right now: try again shortly") from None
    except BotoCoreError:
        raise Unauthorized("cannot check the account right now: try again shortly") from None
    if not user.get("Enabled", True) or user.get("Username") != username:
        return None
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    return attributes.get("sub")


_clock: Callable[[], float] = time.monotonic
_live: tuple[Any, LiveAccounts] | None = None


def set_clock(clock: Callable[[], float]) -> None:
    """Inject the clock of the liveness cache (tests; forgets what was cached)."""
    global _clock, _live
    _clock, _live = clock, None


def live_accounts() -> LiveAccounts:
    """One cache per warm container and configuration."""
    global _live
    from chalicelib.config import get_settings

    settings = get_settings()
    if _live is None or _live[0] is not settings:
        _live = (settings, LiveAccounts(clock=_clock))
    return _live[1]


def require_live_account(namespace: str, sub: str) -> NamespaceClaim:
    """The claim of `namespace` when `sub` is the live account that owns it; Unauthorized
    (401) otherwise: the name is not a namespace, another account owns it (a deleted
    account's namespace stays retired), or the account was deleted or disabled. An unclaimed
    namespace is claimed here by its live account (accounts made around /v1/auth/signup).
    Every token, Cognito's and personal access tokens alike, goes through this."""
    if not is_namespace(namespace):
        raise Unauthorized(f"the account {namespace!r} has no valid namespace: "
                           "sign up with a lowercase username")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("the token names no account: sign in again")
    live = live_accounts()
    claim = live.claim(namespace)
    if claim is None:
        if live.live_sub(namespace) != sub:
            raise _gone()
        claim = claim_namespace(namespace, sub)
        live.remember(claim)
    if claim.sub != sub:
        raise Unauthorized(f"this account does not own the namespace '{namespace}' (it "
                           "belongs to an account made earlier): sign up with another username")
    if live.live_sub(namespace) != sub:
        raise _gone()
    return claim
