"""Executors: push a folder, pull it back by URI.

    from nshub import Client
    hub = Client()
    info = hub.push_executor("MyExecutor/", public=True, tags=["v1"])  # into your namespace
    folder = hub.pull_executor("jinaai://alice/MyExecutor:v1")         # a folder with config.yml
    image = hub.pull_executor("jinaai+docker://alice/MyExecutor")      # an image reference
    hub.pull_executor("jinahub://MyExecutor:SECRET/v1")                # legacy, with its secret

The operations are methods of `nshub.Client` (nshub/client_executors.py). This module offers
them as functions too, each taking `client=` (without it a fresh `Client()`: NSHUB_ENDPOINT,
NSHUB_TOKEN or the login of `nshub login`): `executors.push(folder, ...)`, `pull(uri)`,
`pull_source`, `image_info`, `pull_credentials`, `info`, `list_executors`, `versions`,
`set_visibility`, `delete`. It also holds what needs no server: references (`resolve`), the
name a push uses (`executor_name`), the cache of pulled packages, and `docker_login`.

Push: the name is the `name` argument when given, else `metas.name` of config.yml, else its
`jtype`. The folder is packed reproducibly (nshub.packaging: the same files give the same
sha256) into a temporary zip, deleted afterwards, and uploaded like an array. A push puts
`tags` and `protected_tags` on the new version; a protected tag never moves again (409
TagProtected). `latest` is no tag: it always names the newest version (no tag means `latest`),
and nobody sets or protects it.
`legacy=NAME, secret=S` pushes through the legacy (`jinahub://`) routes.

Pull of a source URI: the package is downloaded to a temporary file, checked against the
size and sha256 the registry declares, and extracted into the cache

    $NSHUB_HOME/executors/{namespace}/{name lower-cased}/v{version}/      the package
    $NSHUB_HOME/executors/{namespace}/{name lower-cased}/v{version}.sha256  written last

so a folder whose marker holds the version's sha256 is complete, and pulling the same version
again asks the registry which version the URI means but downloads nothing.

Pull of a docker URI returns the image reference; it raises ImageNotReady while the image is
being built. `pull_credentials` gives short-lived registry credentials, `docker_login` feeds
them to `docker login --password-stdin`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from nshub import settings
from nshub.errors import InvalidName, NshubError
from nshub.names import check_name, check_namespace, check_tag
from nshub.packaging import (
    MAX_UNPACKED_BYTES,
    PackagingError,
    executor_name_in,
    extract_package,
    read_executor_name,
)
from nshub.uri import (
    ACCEPTED_FORMS,
    ExecutorRef,
    InvalidExecutorURI,
    is_executor_uri,
    parse_executor_uri,
    redact_secret,
)

SECRET_HEADER = "X-Executor-Secret"
READY = "ready"
FAILED_STATUSES = ("failed", "error")


class ImageNotReady(NshubError):
    """The container image of an executor version is not (yet) available."""

    code = "ImageNotReady"


class DockerNotFound(NshubError):
    code = "DockerNotFound"
    hint = "install Docker (https://docs.docker.com/get-docker/) and try again"


class DockerLoginFailed(NshubError):
    code = "DockerLoginFailed"
    hint = "is the Docker daemon running? try `docker info`"


# --------------------------------------------------------------------------- references


def resolve(target: str | ExecutorRef) -> ExecutorRef:
    """An ExecutorRef from a URI (any of the four schemes) or `NAMESPACE/NAME[:TAG]`."""
    if isinstance(target, ExecutorRef):
        return target
    if is_executor_uri(target):
        return parse_executor_uri(target)
    if not isinstance(target, str) or "://" in target:
        raise _not_an_executor(target)
    head, sep, tag = target.strip().partition(":")
    if head.count("/") != 1:
        raise _not_an_executor(target)
    namespace, name = head.split("/")
    try:
        return ExecutorRef("jinaai", check_namespace(namespace), check_name(name),
                           check_tag(tag) if sep else None)
    except InvalidExecutorURI:
        raise
    except InvalidName as exc:
        raise InvalidExecutorURI(f"invalid executor {target!r}: {exc.message}") from None


_SCHEME_TYPO = re.compile(r"^\s*(jina(?:ai|hub)(?:\+docker)?)\s*:/*(.*)$", re.I | re.S)


def _not_an_executor(target: object) -> InvalidExecutorURI:
    shown = redact_secret(target) if isinstance(target, str) else target  # a mistyped jinahub:
    typo = _SCHEME_TYPO.match(shown) if isinstance(shown, str) else None
    hint = (f"did you mean {typo.group(1).lower()}://{typo.group(2).lstrip('/')}?" if typo else
            "an executor is NAMESPACE/NAME[:TAG] or jinaai://NAMESPACE/NAME[:TAG], "
            "e.g. jinaai://alice/MyExecutor:v1")
    return InvalidExecutorURI(
        f"invalid executor {shown!r}: use NAMESPACE/NAME[:TAG] or {ACCEPTED_FORMS}", hint=hint)


def resolve_writable(target: str | ExecutorRef) -> ExecutorRef:
    """The reference of an executor to change or delete: NAMESPACE/NAME, not jinahub://."""
    ref = resolve(target)
    if ref.legacy:
        raise InvalidName(
            f"use NAMESPACE/NAME to change {ref.name}: a jinahub:// reference can only be pulled "
            "or pushed"
        )
    return ref


def source_uri(ref: ExecutorRef) -> str:
    """The source-package URI of the same executor, safe to print (no secret)."""
    scheme = "jinahub" if ref.legacy else "jinaai"
    return dataclasses.replace(ref, scheme=scheme, docker=False).canonical(redact_secret=True)


def executor_name(folder: str | os.PathLike, name: str | None = None, *,
                  config: dict | None = None) -> str:
    """The name a push uses: `name` when given, else config.yml's `metas.name`, else `jtype`
    (from `config`, the folder's config.yml as `check_executor_folder` returned it, if given)."""
    if name:
        return check_name(name)
    derived = executor_name_in(config) if config is not None else read_executor_name(folder)
    if derived is None:
        raise PackagingError(
            f"cannot tell the executor's name from {Path(folder) / 'config.yml'}: add "
            "`metas: {name: MyExecutor}` or pass --name"
        )
    try:
        return check_name(derived)
    except InvalidName:
        raise InvalidName(
            f"{derived!r} (from config.yml) is not a valid executor name: use 1-100 of letters, "
            "digits, '.', '_' and '-', or pass --name"
        ) from None


# --------------------------------------------------------------------------- the cache


def cache_root() -> Path:
    return settings.home() / "executors"


def cached_version(parent: Path, version: int, sha256: str) -> Path | None:
    """`parent/v{version}/` when its marker holds `sha256` (the folder is complete), else None."""
    dest, marker = parent / f"v{version}", parent / f"v{version}.sha256"
    try:
        return dest if dest.is_dir() and marker.read_text().strip() == sha256 else None
    except OSError:
        return None


def install_package(zip_path: Path, parent: Path, version: int, sha256: str, *,
                    max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Extract into a fresh sibling, swap it in as v{version}/, then write the marker;
    `max_unpacked_bytes` is the registry's limit (`GET /v1/config`)."""
    dest, marker = parent / f"v{version}", parent / f"v{version}.sha256"
    staging = parent / f".v{version}-{uuid.uuid4().hex[:12]}"
    try:
        extract_package(zip_path, staging, max_unpacked_bytes=max_unpacked_bytes)
        marker.unlink(missing_ok=True)  # whatever v{version}/ holds is no longer vouched for
        for _ in range(3):
            if dest.exists():  # stale (another sha256) or half-installed: set it aside
                trash = parent / f".trash-v{version}-{uuid.uuid4().hex[:12]}"
                try:
                    os.replace(dest, trash)
                except FileNotFoundError:
                    pass
                shutil.rmtree(trash, ignore_errors=True)
            try:
                os.replace(staging, dest)
                break
            except OSError:  # a concurrent pull installed it meanwhile: once more
                continue
        else:
            raise NshubError(f"could not install the package into {dest}: is another pull running?")
        fd, tmp = tempfile.mkstemp(prefix=f".v{version}-", suffix=".sha256", dir=parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(sha256 + "\n")
        os.replace(tmp, marker)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


# --------------------------------------------------------------------------- docker


def docker_login(creds: dict) -> str:
    """Run `docker login --username U --password-stdin REGISTRY`; returns the registry."""
    registry = str(creds.get("registry") or "")
    docker = shutil.which("docker")
    if docker is None:
        raise DockerNotFound(
            f"the docker command was not found: cannot log in to {registry or 'the registry'}"
        )
    try:
        done = subprocess.run(
            [docker, "login", "--username", str(creds["username"]), "--password-stdin", registry],
            input=str(creds["password"]),
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DockerLoginFailed(f"docker login to {registry} failed: {exc}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {done.returncode}"
        raise DockerLoginFailed(f"docker login to {registry} failed: {detail}")
    return registry


# --------------------------------------------------------------------------- module functions


@contextlib.contextmanager
def _using(client: Any) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    from nshub.client import Client

    with Client() as default:
        yield default


def _alias(method: str) -> Callable[..., Any]:
    def call(*args: Any, client: Any = None, **kwargs: Any) -> Any:
        with _using(client) as hub:
            return getattr(hub, method)(*args, **kwargs)

    call.__doc__ = f"`Client.{method}` on `client` (default: a fresh `Client()`)."
    return call


push = _alias("push_executor")
pull = _alias("pull_executor")
pull_source = _alias("pull_executor_source")
image_info = _alias("executor_image")
pull_credentials = _alias("executor_pull_credentials")
info = _alias("executor_info")
list_executors = _alias("list_executors")
versions = _alias("list_executor_versions")
set_visibility = _alias("set_executor_visibility")
delete = _alias("delete_executor")
