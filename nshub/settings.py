"""The one module of the client that reads the environment.

Every setting is a function, read at call time, so a process (or a test) that changes the
environment is obeyed without re-importing anything.

    NSHUB_ENDPOINT                 the API root            (default http://127.0.0.1:8000)
    NSHUB_TOKEN                    a bearer token used as-is; wins over the credentials file
    NSHUB_HOME                     client state folder     (default ~/.nshub)
    NSHUB_DISABLE_PROGRESS_BARS=1  never draw progress bars
    NSHUB_MAX_WORKERS              parallel part uploads and ranged downloads (default 8)
    NSHUB_PULL_RANGE_BYTES         a pull of more than this is parallel ranged GETs of this
                                   size each (default 16 MiB)
    NSHUB_DEBUG=1                  the CLI prints full tracebacks
    NSHUB_HASH_CACHE=0             hash every file pushed, even one hashed before unchanged
                                   (nshub/digests.py)
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
DEFAULT_MAX_WORKERS = 8

CHUNK_SIZE = 1024 * 1024  # bytes read, hashed and written at a time by transfers
REFRESH_MARGIN_SECONDS = 300  # refresh an ID token this long before it expires
API_TIMEOUT = (10, 60)  # (connect, read) seconds for API calls
TRANSFER_TIMEOUT = (10, 300)  # (connect, read) seconds for presigned PUT/GET


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def endpoint() -> str:
    return (os.environ.get("NSHUB_ENDPOINT", "").strip() or DEFAULT_ENDPOINT).rstrip("/")


def env_token() -> str | None:
    return os.environ.get("NSHUB_TOKEN", "").strip() or None


def home() -> Path:
    raw = os.environ.get("NSHUB_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".nshub"


def credentials_path() -> Path:
    return home() / "credentials.json"


def progress_bars_disabled() -> bool:
    return _flag("NSHUB_DISABLE_PROGRESS_BARS")


def max_workers() -> int:
    raw = os.environ.get("NSHUB_MAX_WORKERS", "").strip()
    try:
        return max(1, int(raw)) if raw else DEFAULT_MAX_WORKERS
    except ValueError:
        return DEFAULT_MAX_WORKERS


DEFAULT_PULL_RANGE_BYTES = 16 * 1024 * 1024


def pull_range_bytes() -> int:
    raw = os.environ.get("NSHUB_PULL_RANGE_BYTES", "").strip()
    try:
        return max(CHUNK_SIZE, int(raw)) if raw else DEFAULT_PULL_RANGE_BYTES
    except ValueError:
        return DEFAULT_PULL_RANGE_BYTES


def debug() -> bool:
    return _flag("NSHUB_DEBUG")


def hash_cache_enabled() -> bool:
    return os.environ.get("NSHUB_HASH_CACHE", "").strip().lower() not in ("0", "false", "no",
                                                                          "off")
