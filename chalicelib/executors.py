"""Executors: what the registry does beyond bytes and versions for kind `executor`.

- Packages: an uploaded package is validated (chalicelib/packages.py) before its version
  becomes visible; the summary is stored with the version.
- Images: every new executor version starts one container image build, event-driven. The
  table stream's INSERT of a version item -> `handle_stream_record` -> CodeBuild; CodeBuild's
  state changes (EventBridge) -> `record_build_state`. Build status only moves forward:
  pending -> building -> ready | failed (terminal), whatever order events arrive in.
- Pull credentials: short-lived ECR credentials narrowed to one repository by a session
  policy, for whoever may read the executor.
- Legacy executors: executors that predate namespaces keep their bare name and secret. The
  alias item (`legacy#{name}`, `executor#ALIAS`) names the owner and holds a salted scrypt
  hash of the secret; the executor itself is a normal one in the owner's namespace.
  Checking a secret costs one scrypt whether the name exists or not (a missing name is
  checked against a dummy hash), so neither the answer nor its time tells which names
  exist; wrong secrets are limited per name (a counter item per time window, with a TTL):
  past the limit every secret for that name is 429 without being hashed, the right one
  too (it cannot be told apart without hashing it); the owner's login keeps working.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from pathlib import Path
from typing import Any, BinaryIO

from chalicelib import blobs, keys, registry
from chalicelib.auth import Caller
from chalicelib.config import get_aws, get_settings
from chalicelib.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from chalicelib.names import check_name, check_namespace
from chalicelib.observability import logger
from chalicelib.store import builds
from chalicelib.store import legacy as aliases
from chalicelib.store import resources as stored
from chalicelib.store.builds import BUILDING, FAILED, READY, TERMINAL
from chalicelib.store.records import BuildWatch, LegacyAlias, Upload, Version
from chalicelib.times import now_iso, parse, utc_iso

EXECUTOR = "executor"

# ---------------------------------------------------------------- packages


def check_package(fileobj: BinaryIO, upload: Upload) -> dict:
    """Validate an uploaded package (InvalidPackage, 400, refuses the version); return the
    summary stored with the version: jtype, name, manifest, files, unpacked_size,
    has_dockerfile, md5."""
    from chalicelib.packages import validate_executor_package

    fileobj.seek(0)
    summary = validate_executor_package(
        fileobj, max_unpacked_bytes=get_settings().max_unpacked_executor_bytes
    )
    # Jina clients check a pulled package against its md5 (shared/HUBBLE.md).
    fileobj.seek(0)
    md5 = hashlib.md5()  # noqa: S324 - a checksum the client asks for, not security
    for chunk in iter(lambda: fileobj.read(1024 * 1024), b""):
        md5.update(chunk)
    summary["md5"] = md5.hexdigest()
    return summary


# ---------------------------------------------------------------- image builds

BUILD_STATUSES = {
    "IN_PROGRESS": BUILDING,
    "SUCCEEDED": READY,
    "FAILED": FAILED,
    "FAULT": FAILED,
    "STOPPED": FAILED,
    "TIMED_OUT": FAILED,
}
# What ECR accepts as a repository name (docker's grammar is looser: `a__b` is not allowed).
ECR_REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
ENV_VERSION_PK, ENV_VERSION_SK = "NSHUB_VERSION_PK", "NSHUB_VERSION_SK"


def forget_images(pk: str, versions: list[int] | None = None) -> int:
    """Images of dropped versions stop being pullable: the `v{n}` tags of `versions`, or the
    whole repository when the executor itself was deleted (versions None), so a re-push of
    the name never exposes the old generation's images. Returns the number of tags removed."""
    from botocore.exceptions import ClientError

    repository = keys.image_repository(*keys.parse_resource_pk(pk))
    ecr = get_aws().client("ecr")
    try:
        if versions is None:
            ecr.delete_repository(repositoryName=repository, force=True)
            return 1
        if not versions:
            return 0
        result = ecr.batch_delete_image(repositoryName=repository, imageIds=[
            {"imageTag": keys.image_tag(n)} for n in versions])
        return len(result.get("imageIds", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("RepositoryNotFoundException",
                                                         "InvalidParameterException"):
            return 0  # never built (or a name ECR refuses): nothing to forget
        raise


def handle_stream_record(record: dict) -> str | None:
    """One table-stream record (Lambda's shape). An INSERT of an executor version starts its
    image build (returns the build id); every other record is ignored (returns None)."""
    if record.get("eventName") != "INSERT":
        return None
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    parsed = keys.parse_sk((image.get("sk") or {}).get("S", ""))
    if parsed["kind"] != EXECUTOR or parsed["type"] != "version":
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
    head = stored.read_head(version.pk, EXECUTOR, consistent=True)
    if head is None or head.generation != generation:
        logger.info("image build skipped: resource deleted", extra={"pk": version.pk, "sk": version.sk})
        return None
    repository = keys.image_repository(head.namespace, head.name)
    if not ECR_REPOSITORY_RE.match(repository):
        builds.set_status(version.pk, version.sk, FAILED, None, None)
        logger.warning("image build refused: name not valid for ECR", extra={"repository": repository})
        return None
    if not builds.claim(version):
        return None  # a build was already started for this version
    settings = get_settings()
    tags = [keys.image_tag(number)] + registry.tags_of(head, number)
    try:
        _ensure_repository(repository)
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


def _ensure_repository(repository: str) -> None:
    from botocore.exceptions import ClientError

    try:
        get_aws().client("ecr").create_repository(
            repositoryName=repository,
            imageScanningConfiguration={"scanOnPush": True},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "RepositoryAlreadyExistsException":
            raise


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
    if not pk or parsed["kind"] != EXECUTOR or parsed["type"] != "version":
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
# started build is watched by a small item (keys.build_watch_key) until its terminal state
# is recorded; the hourly reconciler asks CodeBuild about the ones older than a build can
# run, and records what it answers (or fails a build CodeBuild does not know).

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


# ---------------------------------------------------------------- pull credentials

PULL_CREDENTIALS_SECONDS = 900
PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability"]


def repository_arn(repository: str) -> str:
    """The ARN of an ECR repository of this hub (account and partition of the pull role)."""
    settings = get_settings()
    parts = settings.ecr_pull_role_arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise RuntimeError("NSHUB_ECR_PULL_ROLE_ARN is not set: container images are not configured")
    partition, account = parts[1], parts[4]
    return f"arn:{partition}:ecr:{settings.region}:{account}:repository/{repository}"


def pull_session_policy(repository: str) -> dict:
    """The session policy that narrows the pull role to one repository, read-only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
             "Resource": "*"},
            {"Sid": "PullOneRepository", "Effect": "Allow", "Action": list(PULL_ACTIONS),
             "Resource": repository_arn(repository)},
        ],
    }


def pull_credentials(caller: Caller | None, ns: str, name: str,
                     tag: str | None = None) -> dict[str, Any]:
    """Docker registry credentials that can pull only this executor's images, for 15 minutes,
    for whoever may read it (anyone for a public one; the owner for a private one)."""
    info = registry.get_resource(caller, EXECUTOR, ns, name, tag=tag, download=False)
    return _credentials_for(info, caller.username if caller else "anonymous")


def _credentials_for(info: dict, who: str) -> dict[str, Any]:
    import boto3

    settings = get_settings()
    repository = keys.image_repository(info["namespace"], info["name"])
    session_name = re.sub(r"[^\w+=,.@-]", "-", f"nshub-pull-{who}")[:64]
    creds = get_aws().client("sts").assume_role(
        RoleArn=settings.ecr_pull_role_arn, RoleSessionName=session_name,
        Policy=json.dumps(pull_session_policy(repository), separators=(",", ":")),
        DurationSeconds=PULL_CREDENTIALS_SECONDS,
    )["Credentials"]
    ecr = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name=settings.region,
    ).client("ecr", endpoint_url=settings.endpoint_url)
    auth = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    registry_host = settings.ecr_registry or auth["proxyEndpoint"].split("://", 1)[-1]
    return {
        "registry": registry_host,
        "username": username,
        "password": password,
        # a token made with temporary credentials lasts no longer than they do (15 minutes)
        "expires_at": utc_iso(creds["Expiration"]),
        "image": info["image"],
        "repository": repository,
    }


# ---------------------------------------------------------------- legacy executors

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_SECRET_CHARS = 1024
SECRET_FAILURE_LIMIT = 10  # wrong secrets per name, over this window and the one before
SECRET_FAILURE_WINDOW_SECONDS = 60
# Checked when a name has no alias: the same parameters as a real hash, so a missing name
# costs exactly one scrypt, like a wrong secret. No secret hashes to an all-zero digest.
_NO_ALIAS_HASH = "$".join([
    "scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
    base64.b64encode(bytes(16)).decode(), base64.b64encode(bytes(32)).decode(),
])


def hash_secret(secret: str) -> str:
    """`scrypt$N$r$p$salt$hash` (base64): salted and slow, never the secret itself."""
    salt = os.urandom(16)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Whether `secret` matches the stored hash; one scrypt either way (None: a dummy)."""
    try:
        scheme, n, r, p, salt, digest = (stored or _NO_ALIAS_HASH).split("$")
        expected = base64.b64decode(digest)
        got = _scrypt(secret, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and stored is not None and hmac.compare_digest(got, expected)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                          dklen=32)


def legacy_not_found(name: str) -> NotFound:
    return registry.not_found(EXECUTOR, None, name)


def _legacy_caller(caller: Caller | None, name: str, secret: str | None) -> tuple[LegacyAlias, Caller | None]:
    """The alias and who the request acts as: the owner with a right secret, else the caller.
    A wrong secret is 404, exactly like a missing executor."""
    check_name(name)
    if secret is None:
        alias = aliases.read_alias(name)
        if alias is None:
            raise legacy_not_found(name)
        return alias, caller
    if not secret or len(secret) > MAX_SECRET_CHARS:
        raise legacy_not_found(name)
    now = time.time()
    window = int(now // SECRET_FAILURE_WINDOW_SECONDS)
    alias, current, previous = aliases.alias_and_failures(name, window)
    if current + previous >= SECRET_FAILURE_LIMIT:
        # counted over two windows, so a guesser gains nothing at a window's edge; the
        # limit lifts when the windows that hold enough failures have passed
        until = window + (2 if current >= SECRET_FAILURE_LIMIT else 1)
        retry_after = int(until * SECRET_FAILURE_WINDOW_SECONDS - now) + 1
        raise TooManyRequests(
            f"too many wrong secrets for '{name}': try again in {retry_after} s, "
            "or sign in as its owner", retry_after=retry_after)
    if not verify_secret(secret, alias.secret_hash if alias else None):
        _count_failure(name, window)
        raise legacy_not_found(name)
    return alias, Caller(username=alias.owner, via="legacy-secret")


def _count_failure(name: str, window: int) -> None:
    """One more wrong secret for `name` in `window` (an atomic ADD; the item expires with
    the next window). Racing requests may each pass the limit check before they count: the
    overshoot is bounded by the requests in flight."""
    aliases.count_failure(name, window, expires_at=(window + 2) * SECRET_FAILURE_WINDOW_SECONDS)


def _as_legacy(call, name: str, ns: str, real_name: str):
    """Run a registry call on the owner's executor; its "not found or private" answer becomes
    the legacy one, which does not reveal the owner."""
    try:
        return call()
    except NotFound as exc:
        if exc.message == registry.not_found(EXECUTOR, ns, real_name).message:
            raise legacy_not_found(name) from None
        raise


def get_legacy_executor(caller: Caller | None, name: str, secret: str | None,
                        tag: str | None = None) -> dict[str, Any]:
    alias, acting = _legacy_caller(caller, name, secret)
    info = _as_legacy(lambda: registry.get_resource(acting, EXECUTOR, alias.owner, alias.name,
                                                    tag=tag), name, alias.owner, alias.name)
    info["legacy"] = True
    return info


def legacy_pull_credentials(caller: Caller | None, name: str, secret: str | None,
                            tag: str | None = None) -> dict[str, Any]:
    alias, acting = _legacy_caller(caller, name, secret)
    info = _as_legacy(lambda: registry.get_resource(acting, EXECUTOR, alias.owner, alias.name,
                                                    tag=tag, download=False),
                      name, alias.owner, alias.name)
    return _credentials_for(info, acting.username if acting else "anonymous")


def _legacy_pusher(caller: Caller | None, name: str, secret: str | None) -> LegacyAlias:
    """The alias, when the request may push: a right secret, or the owner's token.
    Anonymous without a secret 401; another user 403 for a public executor, 404 otherwise."""
    if secret is None and caller is None:
        raise Unauthorized("send the executor's secret (X-Executor-Secret) or sign in as its owner")
    alias, acting = _legacy_caller(caller, name, secret)
    if secret is None:
        caller.require_write()  # a read-only token cannot push, even as the owner
    if acting is None or acting.namespace != alias.owner:
        # 404 like a missing one when this caller cannot even see it, else 403.
        _as_legacy(lambda: registry.get_resource(acting, EXECUTOR, alias.owner, alias.name,
                                                 download=False), name, alias.owner, alias.name)
        raise Forbidden(f"only the owner or the executor's secret can push '{name}'")
    return alias


def start_legacy_upload(caller: Caller | None, name: str, secret: str | None,
                        body: dict) -> dict[str, Any]:
    alias = _legacy_pusher(caller, name, secret)
    return registry.start_upload(None, EXECUTOR, alias.owner, alias.name, body,
                                 owner_ns=alias.owner)


def complete_legacy_upload(caller: Caller | None, name: str, secret: str | None,
                           upload_id: str, body: dict) -> dict[str, Any]:
    alias = _legacy_pusher(caller, name, secret)
    info = registry.complete_upload(None, EXECUTOR, alias.owner, alias.name, upload_id, body,
                                    owner_ns=alias.owner)
    info["legacy"] = True
    return info


def refresh_legacy_part_urls(caller: Caller | None, name: str, secret: str | None,
                             upload_id: str, body: dict) -> dict[str, Any]:
    alias = _legacy_pusher(caller, name, secret)
    return registry.refresh_part_urls(None, EXECUTOR, alias.owner, alias.name, upload_id, body,
                                      owner_ns=alias.owner)


def abort_legacy_upload(caller: Caller | None, name: str, secret: str | None,
                        upload_id: str) -> None:
    alias = _legacy_pusher(caller, name, secret)
    registry.abort_upload(None, EXECUTOR, alias.owner, alias.name, upload_id,
                          owner_ns=alias.owner)


def import_legacy_executor(name: str, owner: str, secret: str, package: Path,
                           public: bool = False) -> dict[str, Any]:
    """Register an executor that predates namespaces (operators: `nshub-admin
    import-legacy-executor`, which packs its folder). The package becomes a version of
    `owner/name` (pushed through the same upload flow as any push, so it is validated and its
    image is built), and the alias `name` -> owner keeps `jinahub://name:secret` working.
    Running it twice is harmless: the same package is not pushed again, the alias is kept."""
    check_name(name)
    check_namespace(owner)
    if not isinstance(secret, str) or not secret or len(secret) > MAX_SECRET_CHARS:
        raise InvalidRequest(f"the secret must be 1-{MAX_SECRET_CHARS} characters")
    alias = aliases.read_alias(name)
    _check_existing_alias(alias, name, owner, secret)

    size, sha256 = blobs.file_digest(package)
    head = stored.read_head(keys.resource_pk(owner, name), EXECUTOR, consistent=True)
    if head is not None and head.current.get("sha256") == sha256:
        pushed, version = False, head.counter
    else:
        pushed, version = True, _push_file(owner, name, package, size, sha256, public)

    created = False
    if alias is None:
        created = aliases.put_alias(LegacyAlias.new(name, owner, hash_secret(secret), now_iso()))
        if not created:  # imported concurrently
            _check_existing_alias(aliases.read_alias(name), name, owner, secret)
    return {"name": name, "full_name": f"{owner}/{name}", "version": version, "pushed": pushed,
            "alias_created": created, "sha256": sha256, "size": size}


def _check_existing_alias(alias: LegacyAlias | None, name: str, owner: str, secret: str) -> None:
    if alias is None:
        return
    if alias.owner != owner:
        raise Conflict(f"legacy executor '{name}' already belongs to '{alias.owner}'")
    if not verify_secret(secret, alias.secret_hash):
        raise Conflict(f"legacy executor '{name}' already exists with another secret")


def _push_file(owner: str, name: str, path: Path, size: int, sha256: str, public: bool) -> int:
    """Push a package file as the owner would (start, PUT the parts, complete)."""
    import urllib.request

    body: dict[str, Any] = {"size": size, "sha256": sha256}
    if public:
        body["visibility"] = "public"
    plan = registry.start_upload(None, EXECUTOR, owner, name, body, owner_ns=owner)
    if plan.get("unchanged"):
        return int(plan["version"])
    parts = []
    with path.open("rb") as fh:
        for part in plan["parts"]:
            fh.seek((part["part_number"] - 1) * plan["part_size"])
            data = fh.read(int(part["headers"]["Content-Length"]))
            # urllib would label the body a form otherwise (and a form is not what was signed)
            headers = {"Content-Type": "application/octet-stream", **part["headers"]}
            request = urllib.request.Request(part["url"], data=data, method="PUT",
                                             headers=headers)
            with urllib.request.urlopen(request, timeout=300) as resp:  # noqa: S310 - presigned
                parts.append({"part_number": part["part_number"], "etag": resp.headers["ETag"]})
    info = registry.complete_upload(None, EXECUTOR, owner, name, plan["upload_id"],
                                    {"parts": parts}, owner_ns=owner)
    return int(info["version"])
