"""Checks of what a request body says (one-line 400s), before anything is read or written."""
from __future__ import annotations

import json
import re
from typing import Any

from chalicelib.errors import InvalidRequest
from chalicelib.names import check_tag
from chalicelib.tags import LATEST

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_METADATA_BYTES = 16 * 1024
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 50
VISIBILITIES = ("public", "private")


def check_visibility(value: Any) -> str | None:
    if value is None:
        return None
    if value not in VISIBILITIES:
        raise InvalidRequest("visibility must be 'public' or 'private'")
    return value


def check_metadata(value: Any) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be a JSON object")
    try:
        encoded = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:  # NaN or Infinity, which no JSON reader but Python's accepts
        raise InvalidRequest("metadata holds NaN or Infinity: send finite numbers") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise InvalidRequest("metadata is larger than 16 KiB: keep it small, put data in the array")
    return value


def check_tags(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 50:
        raise InvalidRequest(f"{field} must be a list of at most 50 tags")
    tags = sorted({check_tag(t) for t in value})
    if LATEST in tags:
        raise InvalidRequest(f"'{LATEST}' always names the newest version: nobody sets, moves "
                             f"or protects it, leave it out of {field}")
    return tags


def check_int(value: Any, field: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"{field} must be an integer >= {minimum}")
    return value


def check_sha256(value: Any) -> str:
    if not isinstance(value, str) or not SHA256_RE.match(value.lower()):
        raise InvalidRequest("sha256 must be the 64 hex digits of the content's SHA-256")
    return value.lower()


def check_part_sha256(value: Any, count: int) -> list[str] | None:
    """Optional per-part digests: signed into each part's URL, so S3 enforces every part."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != count or not all(
            isinstance(v, str) and SHA256_RE.match(v.lower()) for v in value):
        raise InvalidRequest(f"part_sha256 must list the sha256 (hex) of each of the {count} parts")
    return [v.lower() for v in value]


def check_parts(body: dict, expected: int) -> list[dict]:
    parts = body.get("parts")
    if not isinstance(parts, list) or len(parts) != expected:
        raise InvalidRequest(f"parts must list all {expected} parts as {{part_number, etag}}")
    seen = set()
    out = []
    for p in parts:
        if not isinstance(p, dict) or not isinstance(p.get("etag"), str):
            raise InvalidRequest("each part needs a part_number and the etag S3 returned")
        number = check_int(p.get("part_number"), "part_number", 1)
        if number > expected or number in seen:
            raise InvalidRequest(f"part numbers must be 1..{expected}, each once")
        seen.add(number)
        out.append({"part_number": number, "etag": p["etag"]})
    return sorted(out, key=lambda p: p["part_number"])


def list_limit(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_LIST_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest("limit must be an integer between 1 and 100") from None
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest("limit must be an integer between 1 and 100")
    return limit
