"""What a reader is told about a resource's version: its info, and a short-lived download
URL for its bytes."""
from __future__ import annotations

from typing import Any

from chalicelib import blobs
from chalicelib.config import get_settings
from chalicelib.errors import Conflict
from chalicelib.kinds import policy
from chalicelib.store.records import Head
from chalicelib.times import from_now_iso


def owner_of(head: Head) -> str:
    """The namespace that owns a resource (a legacy one's: its owner's)."""
    return head.owner or head.namespace or ""


def resource_info(kind: str, head: Head, current: dict, metadata: Any) -> dict[str, Any]:
    """The info of one version of a resource (`current`: the version's summary)."""
    kind_policy = policy(kind)
    legacy = head.legacy
    ns = owner_of(head) if legacy else head.namespace
    info = {
        "kind": kind,
        "namespace": ns,
        "name": head.name,
        "full_name": head.name if legacy and kind_policy.bare_legacy_name else f"{ns}/{head.name}",
        "visibility": head.visibility,
        "version": current["version"],
        "size": current["size"],
        "sha256": current["sha256"],
        "created_at": head.created_at,
        "updated_at": head.updated_at,
        "metadata": metadata if metadata is not None else {},
        "integrity": current.get("integrity") or "verified",
    }
    if info["integrity"] == "quarantined":
        info["quarantine_reason"] = current.get("integrity_reason")
    info.update(kind_policy.extra_info(head, current))
    if legacy:
        info["legacy"] = True
    return info


def downloadable(info: dict) -> dict:
    """`info` when it can be downloaded; a quarantined version (which only its owner sees)
    has no bytes to give."""
    if "download_url" not in info:
        raise Conflict(f"{info['full_name']} version {info['version']} is quarantined "
                       f"({info.get('quarantine_reason')}): push the file again")
    return info


def with_download(info: dict, blob_key: str) -> dict:
    info["download_url"] = blobs.presign_get(blob_key)
    info["download_expires_at"] = from_now_iso(get_settings().url_expires_seconds)
    return info
