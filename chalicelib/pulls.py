"""Pull credentials: short-lived ECR credentials narrowed to one executor's repository by a
session policy, for whoever may read the executor."""
from __future__ import annotations

import base64
import json
import re
from typing import Any

from chalicelib import keys
from chalicelib.access import Who
from chalicelib.config import get_aws, get_settings
from chalicelib.resources import get_resource
from chalicelib.times import utc_iso

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


def pull_credentials(caller: Who, ns: str, name: str,
                     tag: str | None = None) -> dict[str, Any]:
    """Docker registry credentials that can pull only this executor's images, for 15 minutes,
    for whoever may read it (anyone for a public one; the owner for a private one)."""
    info = get_resource(caller, keys.EXECUTOR, ns, name, tag=tag, download=False)
    return credentials_for(info, caller.username if caller else "anonymous")


def credentials_for(info: dict, who: str) -> dict[str, Any]:
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
