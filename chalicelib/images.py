"""Executor images: every new executor version starts one container image build,
event-driven, and the images of dropped versions stop being pullable.

The table stream's INSERT of a version item of a kind that builds images (kinds.py) ->
`handle_stream_record` -> CodeBuild; CodeBuild's state changes (EventBridge) ->
`record_build_state`. Build status only moves forward: pending -> building -> ready |
failed (terminal), whatever order events arrive in (chalicelib/store/builds.py). A build whose state change never arrives is settled by the
hourly reconciler (`settle_stuck_builds`).

ECR: one repository per executor (keys.image_repository), its images tagged `v{version}`
(keys.image_tag, immutable) plus the version's tags.
"""
from __future__ import annotations

import hashlib
import time

from chalicelib import ecr, keys
from chalicelib.config import get_aws, get_settings
from chalicelib.kinds import POLICIES
from chalicelib.observability import logger
from chalicelib.store import builds
from chalicelib.store import resources as stored
from chalicelib.store.builds import BUILDING, FAILED, READY, TERMINAL
from chalicelib.store.records import BuildWatch, Version
from chalicelib.tags import tags_of
from chalicelib.times import now_iso, parse

BUILD_STATUSES = {
    "IN_PROGRESS": BUILDING,
    "SUCCEEDED": READY,
    "FAILED": FAILED,
    "FAULT": FAILED,
    "STOPPED": FAILED,
    "TIMED_OUT": FAILED,
}
ENV_VERSION_PK, ENV_VERSION_SK = "NSHUB_VERSION_PK", "NSHUB_VERSION_SK"


def handle_stream_record(record: dict) -> str | None:
    """One table-stream record (Lambda's shape). An INSERT of a version of a kind that builds
    images starts its image build (returns the build id); every other record is ignored (returns None)."""
    if record.get("eventName") != "INSERT":
        return None
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    parsed = keys.parse_sk((image.get("sk") or {}).get("S", ""))
    if not _builds_images(parsed["kind"]) or parsed["type"] != "version":
        return None
    if not get_settings().image_builds:  # a dev stack: no CodeBuild, the image stays pending
        return None
    return start_image_build(image)


def start_image_build(version_image: dict) -> str | None:
    """Start the image build of one executor version, given its item as the stream's
    NewImage (DynamoDB JSON). Safe to run twice: the version is claimed with a conditional
    write first, so a redelivered record starts no second build."""
    version = stored.from_stream_image(version_image)
    assert isinstance(version, Version)
    generation, number = version.generation, version.version
    head = stored.read_head(version.pk, version.kind, consistent=True)
    if head is None or head.generation != generation:
        logger.info("image build skipped: resource deleted", extra={"pk": version.pk, "sk": version.sk})
        return None
    repository = keys.image_repository(head.namespace, head.name)
    if not ecr.ECR_REPOSITORY_RE.match(repository):
        builds.set_status(version.pk, version.sk, FAILED, None, None)
        logger.warning("image build refused: name not valid for ECR", extra={"repository": repository})
        return None
    if not builds.claim(version):
        return None  # a build was already started for this version
    settings = get_settings()
    tags = [keys.image_tag(number)] + tags_of(head, number)
    try:
        ecr.ensure_repository(repository)
        build = get_aws().client("codebuild").start_build(
            # The project has no source of its own: its buildspec fetches PACKAGE_KEY, which
            # keeps the build role's S3 access to the executor packages only.
            projectName=settings.codebuild_project,
            idempotencyToken=hashlib.sha256(f"{version.pk}\n{version.sk}".encode()).hexdigest(),
            environmentVariablesOverride=[
                {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in (
                    ("PACKAGE_BUCKET", settings.bucket_name),
                    ("PACKAGE_KEY", version.blob_key),
                    ("IMAGE_REPOSITORY", repository),
                    ("IMAGE_TAG", keys.image_tag(number)),
                    ("IMAGE_TAGS", " ".join(tags)),
                    (ENV_VERSION_PK, version.pk),
                    (ENV_VERSION_SK, version.sk),
                )
            ],
        )["build"]
    except Exception:
        builds.unclaim(version)  # whatever went wrong, the stream's retry starts it again
        raise
    build_id = build["id"]
    builds.set_status(version.pk, version.sk, BUILDING, build_id, None)
    builds.watch(BuildWatch(version.pk, version.sk, build_id, now_iso()))
    logger.info("image build started", extra={"build_id": build_id, "repository": repository,
                                              "tags": tags})
    return build_id


def _builds_images(kind: str) -> bool:
    found = POLICIES.get(kind)
    return found is not None and found.builds_images


def record_build_state(event: dict) -> str | None:
    """Apply one `CodeBuild Build State Change` event (EventBridge's JSON) to the version
    whose build it is. Returns the status recorded, None for an event that is not ours or
    changes nothing (duplicates, late events after a terminal status)."""
    detail = event.get("detail") or {}
    settings = get_settings()
    if detail.get("project-name") != settings.codebuild_project:
        return None
    status = BUILD_STATUSES.get(detail.get("build-status", ""))
    if status is None:
        return None
    extra = detail.get("additional-information") or {}
    variables = {
        v.get("name"): v.get("value")
        for v in (extra.get("environment") or {}).get("environment-variables") or []
        if isinstance(v, dict)
    }
    pk, sk = variables.get(ENV_VERSION_PK), variables.get(ENV_VERSION_SK)
    parsed = keys.parse_sk(sk or "")
    if not pk or not _builds_images(parsed["kind"]) or parsed["type"] != "version":
        logger.warning("build state event without an executor version", extra={
            "build_id": detail.get("build-id")})
        return None
    build_id = _build_id(detail.get("build-id") or "")
    log_url = (extra.get("logs") or {}).get("deep-link")
    if not builds.set_status(pk, sk, status, build_id, log_url):
        return None
    if status in TERMINAL:
        builds.unwatch(pk, sk)
    logger.info("image build state", extra={"build_id": build_id, "status": status})
    return status


# ---------------------------------------------------------------- builds nobody heard of
# A build's state change is an EventBridge event: one that is lost (the function failed
# every retry, the rule was disabled) would leave a version `building` for ever. Every
# started build is watched (a BuildWatch record) until its terminal state is recorded; the
# hourly reconciler asks CodeBuild about the ones older than a build can run, and records
# what it answers (or fails a build CodeBuild does not know).


def settle_stuck_builds(now: float | None = None) -> dict[str, int]:
    """Record the outcome of builds started more than `stuck_build_seconds` ago whose state
    change never arrived: what CodeBuild says, or `failed` when it does not know the build
    (the owner pushes again to rebuild). Returns counts by what was recorded."""
    now = time.time() if now is None else now
    stuck = [w for w in builds.watched()
             if now - parse(w.created_at) >= get_settings().stuck_build_seconds]
    counts = {"checked": len(stuck), "ready": 0, "failed": 0, "still_running": 0}
    for start in range(0, len(stuck), 100):  # BatchGetBuilds takes 100 ids
        batch = stuck[start:start + 100]
        found = {b["id"]: b for b in get_aws().client("codebuild").batch_get_builds(
            ids=[w.build_id for w in batch])["builds"]}
        for watch in batch:
            build = found.get(watch.build_id)
            status = FAILED if build is None else BUILD_STATUSES.get(build["buildStatus"])
            if status not in TERMINAL:
                counts["still_running"] += 1
                continue
            log_url = ((build or {}).get("logs") or {}).get("deepLink")
            builds.set_status(watch.version_pk, watch.version_sk, status, watch.build_id,
                              log_url)
            builds.unwatch(watch.version_pk, watch.version_sk)
            counts[status] += 1
            logger.warning("image build settled by the reconciler", extra={
                "build_id": watch.build_id, "status": status,
                "known_to_codebuild": build is not None})
    return counts


def _build_id(build_arn_or_id: str) -> str:
    """`project:uuid` from a build ARN (events carry the ARN; StartBuild answers the id)."""
    return build_arn_or_id.split(":build/", 1)[-1]
