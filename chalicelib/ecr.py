"""ECR repositories of executors (keys.image_repository): created on an executor's first
build; the images of dropped versions forgotten."""
from __future__ import annotations

import re

from chalicelib import keys
from chalicelib.config import get_aws

# What ECR accepts as a repository name (docker's grammar is looser: `a__b` is not allowed).
ECR_REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


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


def ensure_repository(repository: str) -> None:
    from botocore.exceptions import ClientError

    try:
        get_aws().client("ecr").create_repository(
            repositoryName=repository,
            imageScanningConfiguration={"scanOnPush": True},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "RepositoryAlreadyExistsException":
            raise
