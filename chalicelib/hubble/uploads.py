"""Old clients send an array's or executor's bytes in the request: capped
(`NSHUB_HUBBLE_MAX_BODY_BYTES`, Lambda takes at most 6 MB), then pushed through the same
upload flow as any client, the adapter PUTting them to the presigned URLs itself."""
from __future__ import annotations

import hashlib
from typing import Callable

from chalicelib.errors import TooLarge
from chalicelib.hubble.envelope import RpcRequest


def check_body_size(request: RpcRequest, what: str, nshub_command: str) -> None:
    from chalicelib.config import get_settings

    limit = get_settings().hubble_max_body_bytes
    if len(request.body) > limit:
        raise TooLarge(
            f"{what} is {_mb(len(request.body))}, over the {_mb(limit)} that old Jina clients "
            f"can send through the API: push it with `{nshub_command}` (presigned uploads, no "
            "such limit), then pull it with your Jina client as usual"
        )


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def push_bytes(start: Callable[[dict], dict], complete: Callable[[str, dict], dict],
               data: bytes, body: dict) -> dict:
    """One push through the same upload flow as any client: start, PUT the bytes to the
    presigned URLs (here, server-side), complete."""
    from chalicelib import blobs

    sha256 = hashlib.sha256(data).hexdigest()
    plan = start({**body, "size": len(data), "sha256": sha256})
    if plan.get("unchanged"):
        return plan
    parts = blobs.put_planned_parts(
        plan, lambda offset, length: data[offset:offset + length], timeout=60)
    return complete(plan["upload_id"], {"parts": parts})
