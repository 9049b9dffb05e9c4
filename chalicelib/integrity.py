"""The whole-object SHA-256, verified after commit, on the event path.

`complete` commits an array version as `pending` without reading its bytes (what S3 stored
was checked against the declared digests: see chalicelib/registry.py). The one thing S3
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

import datetime as dt
import json
import time
from typing import Any

from chalicelib import blobs, keys
from chalicelib.config import get_aws, get_settings
from chalicelib.models import Item, items
from chalicelib.observability import logger, metrics

VERIFY_EVENT = "nshub:VerifyVersion"
HEAD_ATTEMPTS = 8
# The slowest rate a verification is planned with: a message is left for a later delivery
# when the function's remaining time could not hash the object at this rate.
PLANNED_BYTES_PER_SECOND = 64 * 1024 * 1024


def _get(pk: str, sk: str) -> Item | None:
    try:
        return items().get(pk, sk, consistent_read=True)
    except Item.DoesNotExist:
        return None


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
    item = items().from_raw_data(raw)
    if keys.parse_sk(item.sk)["type"] != "version" or item.integrity != "pending":
        return None
    get_aws().client("sqs").send_message(
        QueueUrl=get_settings().events_queue_url,
        MessageBody=verification_request(item.pk, item.sk, int(item.size or 0)))
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
    item = _get(pk, sk)
    if item is None:
        return "gone"
    if item.integrity == "pending":
        started = time.monotonic()
        digest = blobs.digest_object(item.blob_key)
        if digest is None:
            return "gone"  # dropped meanwhile (delete, retention): nothing left to judge
        reason = _mismatch(item, digest)
        item = _record_outcome(item, reason)
        _report(item, time.monotonic() - started)
    _sync_head(item)
    return item.integrity or "verified"


def _mismatch(item: Item, digest: blobs.Digest) -> str | None:
    if digest.size != int(item.size):
        return f"S3 holds {digest.size} bytes, the push declared {int(item.size)}"
    if digest.sha256 != item.sha256:
        return (f"the stored bytes have sha256 {digest.sha256}, the push declared {item.sha256}:"
                f" push the file again")
    return None


def _record_outcome(item: Item, reason: str | None) -> Item:
    """Move the version item out of `pending` (once: a second delivery finds it done)."""
    from pynamodb.exceptions import UpdateError

    model = items()
    actions = [model.integrity.set("verified")] if reason is None else [
        model.integrity.set("quarantined"), model.integrity_reason.set(reason)]
    try:
        item.update(actions, condition=model.integrity == "pending")
    except UpdateError:
        fresh = _get(item.pk, item.sk)
        return fresh if fresh is not None else item
    return item


def _report(item: Item, seconds: float) -> None:
    where = {"pk": item.pk, "version": int(item.version), "size": int(item.size)}
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
        return max(0.0, time.time() - dt.datetime.fromisoformat(
            str(iso).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


# ---------------------------------------------------------------- the head follows


def _sync_head(item: Item) -> None:
    """Bring the head's copy of the latest version in line with the version's state: a
    verified latest says so; a quarantined latest gives way to the newest version that is not
    quarantined (or, when there is none, stays as the owner's record of what went wrong)."""
    from pynamodb.exceptions import UpdateError

    kind = keys.parse_sk(item.sk)["kind"]
    generation, version = keys.parse_sk(item.sk)["generation"], int(item.version)
    model = items()
    for _ in range(HEAD_ATTEMPTS):
        head = _get(item.pk, keys.head_sk(kind))
        if head is None or head.generation != generation:
            return
        current = dict(head.current or {})
        if current.get("version") != version or current.get("integrity") == item.integrity:
            return  # latest is another version, or already says what we know
        actions: list[Any]
        if item.integrity == "quarantined":
            actions = _moving_back(item, kind, generation, current)
        else:
            actions = [model.current.set({**current, "integrity": item.integrity})]
        try:
            head.update(actions, condition=(model.generation == generation)
                        & (model.current == head.current))
            return
        except UpdateError:
            continue  # a commit or another verification changed the head: look again
    raise RuntimeError(f"the head of {item.pk} kept changing: retried later")


def _moving_back(item: Item, kind: str, generation: str, current: dict) -> list[Any]:
    from chalicelib.registry import _version_record

    model = items()
    good = _newest_good(item.pk, kind, generation)
    if good is None:
        return [model.current.set({**current, "integrity": "quarantined",
                                   "integrity_reason": item.integrity_reason}),
                model.current_size.remove(), model.current_sha256.remove()]
    record = _version_record(good)
    return [model.current.set(record), model.current_size.set(record["size"]),
            model.current_sha256.set(record["sha256"])]


def _newest_good(pk: str, kind: str, generation: str) -> Item | None:
    model = items()
    for version in model.query(pk, model.sk.startswith(keys.version_prefix(kind, generation)),
                               scan_index_forward=False, consistent_read=True):
        if version.integrity != "quarantined":
            return version
    return None
