"""The credentials file: where `nshub login` keeps the tokens, readable by its owner only.

    $NSHUB_HOME/                 0700
      credentials.json           0600  {endpoint, username, id_token, access_token,
                                        refresh_token, expires_at, token}

A login (`nshub login USER`) stores Cognito tokens, refreshed when about to expire; `nshub
login --token` stores a personal access token instead (`token`), used as it is until it
expires or is revoked.

The file is rewritten atomically (a private temporary file renamed over it), so a reader never
sees half a file and the tokens are never world-readable, not even for an instant.
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from nshub import settings


@dataclass(frozen=True)
class Credentials:
    endpoint: str
    username: str
    id_token: str
    access_token: str
    refresh_token: str
    expires_at: float  # unix seconds
    token: str = ""  # a personal access token (`nshub login --token`): never refreshed

    @property
    def bearer(self) -> str:
        return self.token or self.id_token

    @classmethod
    def from_token(cls, endpoint: str, username: str, token: str) -> "Credentials":
        return cls(endpoint=endpoint, username=username, id_token="", access_token="",
                   refresh_token="", expires_at=0.0, token=token)

    @classmethod
    def from_login(cls, endpoint: str, username: str, tokens: dict[str, Any]) -> "Credentials":
        return cls(
            endpoint=endpoint,
            username=username,
            id_token=tokens["id_token"],
            access_token=tokens.get("access_token", ""),
            refresh_token=tokens.get("refresh_token", ""),
            expires_at=_expires_at(tokens),
        )

    def refreshed(self, tokens: dict[str, Any]) -> "Credentials":
        """The refresh answer has no new refresh token: the old one stays."""
        return replace(
            self,
            id_token=tokens["id_token"],
            access_token=tokens.get("access_token", self.access_token),
            refresh_token=tokens.get("refresh_token") or self.refresh_token,
            expires_at=_expires_at(tokens),
        )

    def expires_soon(self, now: float | None = None) -> bool:
        if self.token:
            return False  # the server says when a personal access token has expired
        now = time.time() if now is None else now
        expiry = min(jwt_expiry(self.id_token) or self.expires_at, self.expires_at)
        return expiry - now < settings.REFRESH_MARGIN_SECONDS


def load(path: Path | None = None) -> Credentials | None:
    path = path or settings.credentials_path()
    try:
        data = json.loads(path.read_text())
        if data.get("token"):
            return Credentials.from_token(str(data["endpoint"]).rstrip("/"),
                                          str(data["username"]), str(data["token"]))
        id_token = str(data["id_token"])
        return Credentials(
            endpoint=str(data["endpoint"]).rstrip("/"),
            username=str(data["username"]),
            id_token=id_token,
            access_token=str(data.get("access_token", "")),
            refresh_token=str(data.get("refresh_token", "")),
            expires_at=float(data.get("expires_at") or jwt_expiry(id_token) or 0),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged file counts as logged out; `nshub login` rewrites it


def save(credentials: Credentials, path: Path | None = None) -> Path:
    path = path or settings.credentials_path()
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", suffix=".json", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            data = asdict(credentials)
            if not data["token"]:
                del data["token"]  # a password login: the file keeps its shape
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def delete(path: Path | None = None) -> bool:
    """Remove the credentials file; True if there was one."""
    path = path or settings.credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, read without verifying (the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def _expires_at(tokens: dict[str, Any]) -> float:
    expiry = jwt_expiry(tokens.get("id_token", ""))
    if expiry is not None:
        return expiry
    return time.time() + float(tokens.get("expires_in") or 3600)
