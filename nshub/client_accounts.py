"""The account methods of `nshub.Client`: sign-up, login, and personal access tokens.

`AccountMethods` is a part of `Client` (nshub/client.py), not a class to use alone: it calls
the client's `_api` and `_bearer`.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from nshub import credentials as credentials_file
from nshub.credentials import Credentials
from nshub.errors import InvalidRequest, NotLoggedIn, Unauthorized


class AccountMethods:
    def signup(self, username: str, password: str, email: str) -> dict:
        """Create an account; returns `{username, confirmed}`. Your username is your namespace."""
        return self._api(
            "POST",
            "/v1/auth/signup",
            json={"username": username, "password": password, "email": email},
            auth=False,
        )

    def confirm(self, username: str, code: str) -> dict:
        """Confirm a sign-up with the code sent by email."""
        return self._api(
            "POST", "/v1/auth/confirm", json={"username": username, "code": code}, auth=False
        ) or {"username": username, "confirmed": True}

    def login(self, username: str, password: str) -> dict:
        """Sign in and store the tokens in the credentials file (0600); returns `{username, namespace}`."""
        try:
            tokens = self._api(
                "POST",
                "/v1/auth/login",
                json={"username": username, "password": password},
                auth=False,
            )
        except Unauthorized as exc:
            exc.hint = "no account yet? `nshub signup USERNAME --email EMAIL` creates one"
            raise
        me = self._api("GET", "/v1/me", bearer=tokens["id_token"])
        credentials_file.save(
            Credentials.from_login(self.endpoint, me.get("username") or username, tokens)
        )
        return me

    def login_with_token(self, token: str) -> dict:
        """Store a personal access token (`nshub_...`) as this machine's login, after the
        server accepted it; returns `{username, namespace}` of its account."""
        token = (token or "").strip()
        if not token or any(c.isspace() for c in token):
            raise InvalidRequest("the token is empty or has spaces in it: paste it again",
                                 code="InvalidToken")
        try:
            me = self._api("GET", "/v1/me", bearer=token)
        except Unauthorized as exc:
            exc.hint = "check the token you pasted, or make a new one with `nshub token create NAME`"
            raise
        credentials_file.save(Credentials.from_token(self.endpoint, me["username"], token))
        return me

    def logout(self) -> bool:
        """Forget the stored tokens; True if there were any."""
        return credentials_file.delete()

    def whoami(self) -> dict:
        """`{username, namespace}` of the caller; NotLoggedIn when there is no token."""
        bearer = self._bearer()
        if bearer is None:
            self.config()  # an unreachable server is worth saying before "not logged in"
            stored = credentials_file.load()
            if stored is not None and stored.endpoint != self.endpoint:
                raise NotLoggedIn(
                    f"you are not logged in to {self.endpoint} (your login as "
                    f"{stored.username} is for {stored.endpoint})",
                    hint=f"run `nshub login USERNAME`, or set NSHUB_ENDPOINT={stored.endpoint}")
            raise NotLoggedIn(f"you are not logged in to {self.endpoint}")
        return self._api("GET", "/v1/me")

    # --- personal access tokens -------------------------------------------------------------

    def create_token(self, name: str, *, scope: str = "read", days: int | None = None) -> dict:
        """Make a personal access token for your account (needs your login, not a token).

        `scope` is "read" (pull, info, list) or "write" (also push, change, delete); the token
        expires after `days` (1-365, the server's default 90). Returns `{id, name, scopes,
        created_at, expires_at, token}`: `token` is the secret, shown this once.
        """
        if scope not in ("read", "write"):
            raise InvalidRequest(f"scope must be 'read' or 'write', not {scope!r}")
        body: dict[str, Any] = {"name": name,
                                "scopes": ["read", "write"] if scope == "write" else ["read"]}
        if days is not None:
            body["expires_in_days"] = days
        return self._api("POST", "/v1/tokens", json=body)

    def list_tokens(self) -> list[dict]:
        """Your live tokens, oldest first: `{id, name, scopes, created_at, expires_at,
        last_used_at}` each (never the secret)."""
        return self._api("GET", "/v1/tokens").get("items") or []

    def revoke_token(self, token_id: str) -> None:
        """Revoke one of your tokens by id: it is refused from the next request on."""
        if not isinstance(token_id, str) or not token_id.strip():
            raise InvalidRequest("give the id of the token (see `nshub token ls`)")
        self._api("DELETE", f"/v1/tokens/{quote(token_id.strip(), safe='')}")
