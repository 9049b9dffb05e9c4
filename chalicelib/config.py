"""The one place that reads configuration.

Every setting comes from the environment (Chalice stages put them there on Lambda; the dev
stack and tests set them directly). AWS clients are built lazily and cached per warm
container, never at import time, so cold starts stay short and tests can point them anywhere.
"""
from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from typing import Any

GiB = 1024**3
MiB = 1024**2
HUBBLE_MAX_BODY_BYTES = 4_600_000

# Chalice needs literal event sources when it packages the functions; `make package` merges
# infra/functions.yaml, which points both mappings at the stack's own queue and stream.
BLOB_EVENTS_QUEUE = "nshub-dev-blob-events"


def table_stream_arn() -> str:
    return os.environ.get("NSHUB_TABLE_STREAM_ARN") or (
        "arn:aws:dynamodb:us-east-1:123456789012:table/nshub-dev/stream/set-at-package-time"
    )


# What a deployed function gets from its stack (infra/functions.yaml sets each one with !Ref,
# !GetAtt or !Sub; tests/test_deploy.py checks that none is missing or a placeholder).
STACK_SETTINGS = (
    "NSHUB_STAGE", "NSHUB_TABLE", "NSHUB_BUCKET", "NSHUB_EVENTS_QUEUE_URL",
    "NSHUB_USER_POOL_ID", "NSHUB_CLIENT_ID", "NSHUB_ISSUER", "NSHUB_JWKS_URL",
    "NSHUB_CODEBUILD_PROJECT", "NSHUB_ECR_REGISTRY", "NSHUB_ECR_PULL_ROLE_ARN",
    "NSHUB_METRICS_NAMESPACE",
)


def metrics_namespace() -> str:
    return os.environ.get("NSHUB_METRICS_NAMESPACE") or "nshub"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_name: str
    bucket_name: str
    events_queue_url: str
    user_pool_id: str
    client_id: str
    issuer: str
    jwks_url: str
    endpoint_url: str | None
    max_upload_bytes: int
    max_executor_bytes: int
    max_unpacked_executor_bytes: int
    retention: int
    url_expires_seconds: int
    upload_ttl_seconds: int
    orphan_grace_seconds: int
    stuck_build_seconds: int
    single_part_max_bytes: int
    min_part_size: int
    codebuild_project: str
    ecr_registry: str
    ecr_pull_role_arn: str
    hubble_max_body_bytes: int
    image_builds: bool  # executor images are built (CodeBuild); a dev stack has none
    service_name: str = "nshub"

    @property
    def is_dev(self) -> bool:
        return self.stage in ("dev", "local", "test")

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ.get
        region = env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1"
        pool = env("NSHUB_USER_POOL_ID", "")
        issuer = env("NSHUB_ISSUER") or (
            f"https://cognito-idp.{region}.amazonaws.com/{pool}" if pool else ""
        )
        jwks = env("NSHUB_JWKS_URL") or (f"{issuer}/.well-known/jwks.json" if issuer else "")
        return cls(
            stage=env("NSHUB_STAGE", "dev"),
            region=region,
            table_name=env("NSHUB_TABLE", "nshub"),
            bucket_name=env("NSHUB_BUCKET", "nshub-blobs"),
            events_queue_url=env("NSHUB_EVENTS_QUEUE_URL", ""),
            user_pool_id=pool,
            client_id=env("NSHUB_CLIENT_ID", ""),
            issuer=issuer,
            jwks_url=jwks,
            endpoint_url=env("AWS_ENDPOINT_URL") or None,
            max_upload_bytes=_int("NSHUB_MAX_UPLOAD_BYTES", 50 * GiB),
            max_executor_bytes=_int("NSHUB_MAX_EXECUTOR_BYTES", 100 * MiB),
            max_unpacked_executor_bytes=_int("NSHUB_MAX_UNPACKED_EXECUTOR_BYTES", 512 * MiB),
            retention=max(1, _int("NSHUB_RETENTION", 5)),
            url_expires_seconds=min(900, max(60, _int("NSHUB_URL_EXPIRES_SECONDS", 900))),
            upload_ttl_seconds=_int("NSHUB_UPLOAD_TTL_SECONDS", 24 * 3600),
            orphan_grace_seconds=_int("NSHUB_ORPHAN_GRACE_SECONDS", 24 * 3600),
            # The build project's TimeoutInMinutes (30) + QueuedTimeoutInMinutes (60), and a margin.
            stuck_build_seconds=_int("NSHUB_STUCK_BUILD_SECONDS", 2 * 3600),
            single_part_max_bytes=_int("NSHUB_SINGLE_PART_MAX_BYTES", 16 * MiB),
            min_part_size=_int("NSHUB_MIN_PART_SIZE", 16 * MiB),
            codebuild_project=env("NSHUB_CODEBUILD_PROJECT", "nshub-executor-images"),
            ecr_registry=env("NSHUB_ECR_REGISTRY", ""),
            ecr_pull_role_arn=env("NSHUB_ECR_PULL_ROLE_ARN", ""),
            # Bytes that old Jina clients send through the API (artifact.upload,
            # executor.push). API Gateway hands Lambda a binary body base64-encoded, and
            # Lambda takes at most 6 MB per request: 4.6 MB of bytes is what fits.
            hubble_max_body_bytes=_int("NSHUB_HUBBLE_MAX_BODY_BYTES", HUBBLE_MAX_BODY_BYTES),


            image_builds=env("NSHUB_IMAGE_BUILDS", "1").strip().lower() not in
            ("0", "false", "no", "off"),
        )


@dataclass
class AWS:
    """Lazily built boto3 clients, shared by every request in a warm container."""

    settings: Settings
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        found = self._clients.get(service)
        if found is not None:
            return found
        with self._lock:
            if service not in self._clients:
                import boto3  # heavy: imported on first use, not at cold start
                from botocore.config import Config

                extra: dict[str, Any] = {}
                if service == "s3":
                    # Presigned URLs must be SigV4 and path-style works for moto and AWS alike.
                    extra["config"] = Config(
                        signature_version="s3v4",
                        s3={"addressing_style": "path"},
                        retries={"max_attempts": 5, "mode": "standard"},
                    )
                else:
                    extra["config"] = Config(retries={"max_attempts": 5, "mode": "standard"})
                self._clients[service] = boto3.session.Session().client(
                    service,
                    region_name=self.settings.region,
                    endpoint_url=self.settings.endpoint_url,
                    **extra,
                )
            return self._clients[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def cognito(self) -> Any:
        return self.client("cognito-idp")


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


@functools.lru_cache(maxsize=1)
def get_aws() -> AWS:
    return AWS(get_settings())


def reset() -> None:
    """Forget cached settings and clients (tests and the dev stack change the environment)."""
    get_settings.cache_clear()
    get_aws.cache_clear()
    from chalicelib.store import table

    table.bind(None)
    table._bound_to = None
