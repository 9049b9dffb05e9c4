"""The digests of files the client hashed, so that pushing a file untouched since costs no
second hashing (a 50 GiB re-push: one request, not minutes of sha256), as git's index and
DVC's state database do for the same reason.

An entry is kept in `NSHUB_HOME/digests.json` under the file's real path and the part size
it was hashed with, and holds the file's device, inode, size, mtime and ctime at that time.
It is used only while all five are unchanged: writing to a file, renaming another over it
or touching it changes its ctime, which no user can set back. A file changed less than
`RACY_SECONDS` before it was hashed is not remembered: a second write within the same
timestamp tick could leave all five as they were (git calls these entries "racily clean").
`NSHUB_HASH_CACHE=0` turns the cache off. Whatever the cache says, every part URL still signs
its part's sha256, so storage refuses bytes that are not the declared ones.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from nshub import settings

CACHE_FILE = "digests.json"
MAX_ENTRIES = 64  # the files pushed most recently (a 50 GiB entry holds ~200 KiB of part digests)
RACY_SECONDS = 2  # coarser than any filesystem's timestamp tick (FAT's is 2 s)

Digests = tuple[int, str, "list[str] | None"]  # (size, sha256, part digests or None)


def fingerprint(path: Path) -> list[int] | None:
    """What says a file is unchanged: device, inode, size, mtime and ctime (None: no file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def lookup(path: Path, part_size: int | None, seen: list[int] | None) -> Digests | None:
    """The digests of `path` hashed with `part_size`, if it is as it was then (`seen`: its
    fingerprint now)."""
    if seen is None or not settings.hash_cache_enabled():
        return None
    entry = _load().get(_key(path, part_size))
    if not isinstance(entry, dict) or entry.get("fingerprint") != seen:
        return None
    try:
        size, sha256, parts = int(entry["size"]), str(entry["sha256"]), entry["parts"]
    except (KeyError, TypeError, ValueError):
        return None
    if parts is not None and not (isinstance(parts, list)
                                  and all(isinstance(p, str) for p in parts)):
        return None
    return size, sha256, parts


def remember(path: Path, part_size: int | None, seen: list[int] | None,
             digests: Digests) -> None:
    """Keep the digests of `path` (`seen`: its fingerprint before it was hashed), unless it
    changed while hashed or too recently to tell a later change apart."""
    if seen is None or not settings.hash_cache_enabled() or fingerprint(path) != seen:
        return
    changed_ns = max(seen[3], seen[4])
    if time.time_ns() - changed_ns < RACY_SECONDS * 1_000_000_000:
        return
    size, sha256, parts = digests
    entries = _load()
    entries[_key(path, part_size)] = {"fingerprint": seen, "size": size, "sha256": sha256,
                                      "parts": parts, "used": time.time()}
    newest = sorted(entries.items(), key=lambda item: _used(item[1]), reverse=True)
    _save(dict(newest[:MAX_ENTRIES]))


def _key(path: Path, part_size: int | None) -> str:
    return f"{os.path.realpath(path)}\n{part_size or 0}"


def _used(entry: Any) -> float:
    try:
        return float(entry.get("used", 0))
    except (AttributeError, TypeError, ValueError):
        return 0.0


def _load() -> dict[str, Any]:
    try:
        data = json.loads((settings.home() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: hash again, as without a cache
    return data if isinstance(data, dict) else {}


def _save(entries: dict[str, Any]) -> None:
    """Replace the cache file at once (a reader never sees half of it); a failure to write
    only means hashing again next time."""
    home = settings.home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".digests-", dir=home)  # mode 0600
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entries, fh, separators=(",", ":"))
        os.replace(tmp, home / CACHE_FILE)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
