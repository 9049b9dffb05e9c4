"""The whole-object SHA-256, verified after commit, on the event path.

`complete` commits an array version as `pending` without reading its bytes (what S3 stored
was checked against the declared digests: see chalicelib/uploads.py). The one thing S3
cannot check is the whole object's SHA-256 of a multipart upload (its checksum is a checksum
of the part checksums), so a client could declare the part digests of one file and the
sha256 of another. This module closes that gap, off the request path:

    commit (version item INSERT, integrity=pending)
      -> table stream -> `request_verification`: a message on the blob events queue
      -> SQS -> on_blob_event (a function with a long timeout) -> `verify_version`:
         stream the object once, hash it, then
           same size and sha256 -> the version is `verified`
           otherwise            -> the version is `quarantined`: hidden from readers,
                                   `latest` moves back to the newest version that is not,
                                   the owner's info says why; a metric and an error log

Idempotent and safe at least once: the version item changes state only from `pending`, and
the head is brought in line with the version's state on every delivery (a crash between the
two writes is finished by the retry). The head is changed on the condition that its
`current` is still what was read, so racing commits, verifications and quarantines each see
the other's result.
"""
from __future__ import annotations

import json
import time
from typing import Any

from chalicelib import blobs, keys
from chalicelib.config import get_aws, get_settings
from chalicelib.observability import logger, metrics
from chalicelib.store import resources as stored
from chalicelib.store.records import ConditionFailed, Head, Version
from chalicelib.times import parse

VERIFY_EVENT = "nshub:VerifyVersion"
HEAD_ATTEMPTS = 8
# The slowest rate a verification is planned with: a message is left for a later delivery
# when the function's remaining time could not hash the object at this rate.
PLANNED_BYTES_PER_SECOND = 64 * 1024 * 1024


# ---------------------------------------------------------------- requesting


def verification_request(pk: str, sk: str, size: int) -> str:
    return json.dumps({"Event": VERIFY_EVENT, "pk": pk, "sk": sk, "size": size})


def parse_request(message: dict) -> tuple[str, str, int] | None:
    """(pk, sk, size) of a verification request, None for any other message."""
    if message.get("Event") != VERIFY_EVENT:
        return None
    pk, sk, size = message.get("pk"), message.get("sk"), message.get("size", 0)
    if not isinstance(pk, str) or not isinstance(sk, str) or keys.parse_sk(sk)["type"] != "version":
        raise ValueError("a verification request names a version item")
    return pk, sk, int(size or 0)


def handle_stream_record(record: dict) -> str | None:
    """A table stream record: a pending version just committed gets a verification request."""
    if record.get("eventName") != "INSERT":
        return None
    raw = (record.get("dynamodb") or {}).get("NewImage")
    if not raw:
        return None
    version = stored.from_stream_image(raw)
    if not isinstance(version, Version) or version.integrity != "pending":
        return None
    get_aws().client("sqs").send_message(
        QueueUrl=get_settings().events_queue_url,
        MessageBody=verification_request(version.pk, version.sk, version.size))
    return "requested"


def affordable(size: int, remaining_seconds: float | None) -> bool:
    """Whether a function with `remaining_seconds` left can hash `size` bytes in time."""
    if remaining_seconds is None:
        return True
    return remaining_seconds > 10 + size / PLANNED_BYTES_PER_SECOND


# ---------------------------------------------------------------- verifying


def verify_version(pk: str, sk: str) -> str:
    """Hash the version's stored object and record the outcome. Returns the version's state
    (`verified`, `quarantined`), or `gone` when the version no longer exists."""
    version = stored.read_version(pk, sk, consistent=True)
    if version is None:
        return "gone"
    if version.integrity == "pending":
        started = time.monotonic()
        digest = blobs.digest_object(version.blob_key)
        if digest is None:
            return "gone"  # dropped meanwhile (delete, retention): nothing left to judge
        # once: a second delivery finds it done
        version = stored.record_integrity(version, _mismatch(version, digest))
        _report(version, time.monotonic() - started)
    _sync_head(version)
    return version.integrity or "verified"


def _mismatch(version: Version, digest: blobs.Digest) -> str | None:
    if digest.size != version.size:
        return f"S3 holds {digest.size} bytes, the push declared {version.size}"
    if digest.sha256 != version.sha256:
        return (f"the stored bytes have sha256 {digest.sha256}, the push declared "
                f"{version.sha256}: push the file again")
    return None


def _report(item: Version, seconds: float) -> None:
    where = {"pk": item.pk, "version": item.version, "size": item.size}
    if item.integrity == "quarantined":
        metrics.add_metric(name="VersionsQuarantined", unit="Count", value=1)
        logger.error("version quarantined: its bytes are not the declared ones",
                     extra={**where, "reason": item.integrity_reason})
        return
    metrics.add_metric(name="VersionsVerified", unit="Count", value=1)
    lag = _seconds_since(item.created_at)
    if lag is not None:
        metrics.add_metric(name="VerificationLag", unit="Seconds", value=lag)
    logger.info("version verified", extra={**where, "hash_seconds": round(seconds, 3),
                                           "seconds_since_commit": lag})


def _seconds_since(iso: str | None) -> float | None:
    try:
        return max(0.0, time.time() - parse(str(iso)))
    except ValueError:
        return None


# ---------------------------------------------------------------- the head follows


def _sync_head(version: Version) -> None:
    """Bring the head's copy of the latest version in line with the version's state: a
    verified latest says so; a quarantined latest gives way to the newest version that is not
    quarantined (or, when there is none, stays as the owner's record of what went wrong)."""
    kind, generation = version.kind, version.generation
    for _ in range(HEAD_ATTEMPTS):
        head = stored.read_head(version.pk, kind, consistent=True)
        if head is None or head.generation != generation:
            return
        current = dict(head.current)
        if current.get("version") != version.version or \
                current.get("integrity") == version.integrity:
            return  # latest is another version, or already says what we know
        if version.integrity == "quarantined":
            changes = _moving_back(version, head)
        else:
            changes = {"current": {**current, "integrity": version.integrity}}
        try:
            stored.update_head(head, changes, unchanged=("generation", "current"))
            return
        except ConditionFailed:
            continue  # a commit or another verification changed the head: look again
    raise RuntimeError(f"the head of {version.pk} kept changing: retried later")


def _moving_back(version: Version, head: Head) -> dict[str, Any]:
    good = next((v for v in stored.versions_of(version.pk, version.kind, version.generation,
                                               newest_first=True)
                 if v.integrity != "quarantined"), None)
    if good is None:
        return {"current": {**head.current, "integrity": "quarantined",
                            "integrity_reason": version.integrity_reason},
                "current_size": None, "current_sha256": None}
    return {"current": good.summary(), "current_size": good.size, "current_sha256": good.sha256}
