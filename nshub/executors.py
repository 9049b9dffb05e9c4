"""Executors: push a folder, pull it back by URI.

    from nshub import executors
    info = executors.push("MyExecutor/", public=True, tags=["v1"])   # into your namespace
    folder = executors.pull("jinaai://alice/MyExecutor:v1")          # a folder with config.yml
    image = executors.pull("jinaai+docker://alice/MyExecutor")       # an image reference
    executors.pull("jinahub://MyExecutor:SECRET/v1")                 # legacy, with its secret

Every function takes `client=`; without it a default `Client()` is used (NSHUB_ENDPOINT,
NSHUB_TOKEN or the login of `nshub login`).

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
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote


from nshub import credentials as credentials_file
from nshub import settings
from nshub.errors import (
    Conflict,
    InvalidName,
    InvalidRequest,
    NotFound,
    NotLoggedIn,
    NshubError,
)
from nshub.names import check_name, check_namespace, check_tag
from nshub.packaging import (
    PackagingError,
    check_executor_folder,
    extract_package,
    pack_executor,
    read_executor_name,
)
from nshub.progress import transfer_bar
from nshub.transfer import download, path_opener, verify_download
from nshub.uri import (
    ACCEPTED_FORMS,
    ExecutorRef,
    InvalidExecutorURI,
    is_executor_uri,
    parse_executor_uri,
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
    typo = _SCHEME_TYPO.match(target) if isinstance(target, str) else None
    hint = (f"did you mean {typo.group(1).lower()}://{typo.group(2).lstrip('/')}?" if typo else
            "an executor is NAMESPACE/NAME[:TAG] or jinaai://NAMESPACE/NAME[:TAG], "
            "e.g. jinaai://alice/MyExecutor:v1")
    return InvalidExecutorURI(
        f"invalid executor {target!r}: use NAMESPACE/NAME[:TAG] or {ACCEPTED_FORMS}", hint=hint)


def _writable(target: str | ExecutorRef) -> ExecutorRef:
    ref = resolve(target)
    if ref.legacy:
        raise InvalidName(
            f"use NAMESPACE/NAME to change {ref.name}: a jinahub:// reference can only be pulled "
            "or pushed"
        )
    return ref


def _path(namespace: str, name: str) -> str:
    return f"/v1/executors/{quote(namespace)}/{quote(name)}"


def _legacy_path(name: str) -> str:
    return f"/v1/legacy/executors/{quote(name)}"


def _secret_headers(secret: str | None) -> dict[str, str] | None:
    return {SECRET_HEADER: secret} if secret else None


def _source_uri(ref: ExecutorRef) -> str:
    """The source-package URI of the same executor, safe to print (no secret)."""
    scheme = "jinahub" if ref.legacy else "jinaai"
    return dataclasses.replace(ref, scheme=scheme, docker=False).canonical(redact_secret=True)


@contextlib.contextmanager
def _using(client: Any) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    from nshub.client import Client

    with Client() as default:
        yield default


# --------------------------------------------------------------------------- push


def executor_name(folder: str | os.PathLike, name: str | None = None) -> str:
    """The name a push uses: `name` when given, else config.yml's `metas.name`, else `jtype`."""
    if name:
        return check_name(name)
    derived = read_executor_name(folder)
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


def push(
    folder: str | os.PathLike,
    *,
    name: str | None = None,
    public: bool | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    protected_tags: list[str] | tuple[str, ...] | None = None,
    metadata: dict | None = None,
    legacy: str | bool | None = None,
    secret: str | None = None,
    client: Any = None,
) -> dict:
    """Push an executor folder as a new version; returns its info.

    Into your own namespace, or with `legacy=NAME` (True: the derived name) through the legacy
    routes, authorized by `secret` (or your login, if you own it). `public=None` keeps the
    current visibility (private for a new executor). The new version gets `tags` and
    `protected_tags`, and is `latest` by being the newest.
    """
    folder = Path(folder)
    check_executor_folder(folder)
    if legacy is True:
        legacy = executor_name(folder, name)
    executor = check_name(legacy) if legacy else executor_name(folder, name)
    if secret is not None and not legacy:
        raise InvalidRequest("a secret goes with a legacy push: pass legacy=NAME (--legacy NAME)")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be a JSON object (a dict)")
    tag_list = [check_tag(t) for t in (tags or ())]
    protected = [check_tag(t) for t in (protected_tags or ())]
    all_tags = sorted({*tag_list, *protected})

    with _using(client) as client:
        headers = _secret_headers(secret)
        if legacy:
            if not secret and client._bearer() is None:
                raise NotLoggedIn(
                    f"pushing legacy executor {executor} needs its secret (or the owner's login)"
                )
            base = _legacy_path(executor)
        else:
            base = _path(_my_namespace(client), executor)

        zip_path, _, _ = pack_executor(folder)  # the upload flow hashes it (per part too)
        try:
            body: dict[str, Any] = {"tags": all_tags} if all_tags else {}
            if protected:
                body["protected_tags"] = sorted(set(protected))
            if public is not None:
                body["visibility"] = "public" if public else "private"
            if metadata is not None:
                body["metadata"] = metadata
            return client._upload(base, body, path_opener(zip_path), executor, headers)
        finally:
            os.unlink(zip_path)


def _my_namespace(client: Any) -> str:
    """The caller's namespace: the stored login's username, else asked with /v1/me."""
    if client._bearer() is None:
        raise NotLoggedIn(f"pushing needs a login: you are not logged in to {client.endpoint}")
    if client._token is None and not settings.env_token():
        stored = credentials_file.load()
        if stored is not None and stored.endpoint == client.endpoint and stored.username:
            return check_namespace(stored.username)
    return check_namespace(client.whoami()["namespace"])


# --------------------------------------------------------------------------- pull


def pull(uri: str | ExecutorRef, *, client: Any = None) -> Path | str:
    """A source URI gives the folder of the package (with config.yml), from the cache when it
    holds that version; a docker URI gives the image reference (ImageNotReady until built)."""
    ref = resolve(uri)
    with _using(client) as client:
        if ref.docker:
            return image_info(ref, client=client)["image"]
        return pull_source(ref, client=client)[0]


def pull_source(uri: str | ExecutorRef, *, client: Any = None) -> tuple[Path, dict, bool]:
    """(folder, info, from_cache) of the source package a URI names."""
    ref = resolve(uri)
    with _using(client) as client:
        info = _fetch(client, ref)
        namespace = check_namespace(info.get("namespace"))
        name = check_name(info.get("name"))
        version = int(info["version"])
        sha256 = str(info["sha256"]).lower()
        parent = cache_root() / namespace / name.lower()
        dest, marker = parent / f"v{version}", parent / f"v{version}.sha256"
        if _is_cached(dest, marker, sha256):
            return dest, info, True

        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".v{version}-", suffix=".zip", dir=parent)
        try:
            with os.fdopen(fd, "w+b") as sink:
                _download(client, ref, info, sink)
            _install(Path(tmp), parent, version, sha256)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dest, info, False


def cache_root() -> Path:
    return settings.home() / "executors"


def _is_cached(dest: Path, marker: Path, sha256: str) -> bool:
    try:
        return dest.is_dir() and marker.read_text().strip() == sha256
    except OSError:
        return False


def _fetch(client: Any, ref: ExecutorRef, *, version: int | None = None) -> dict:
    """Info (with a download URL) of the version a reference means."""
    params: dict[str, Any] = {}
    if ref.legacy:
        if ref.tag:
            params["tag"] = ref.tag
        return client._api(
            "GET", _legacy_path(ref.name), params=params or None,
            headers=_secret_headers(ref.secret),
        )
    if version is not None:
        params["version"] = version
    elif ref.tag:
        params["tag"] = ref.tag
    try:
        return client._api("GET", _path(ref.namespace or "", ref.name), params=params or None)
    except NotFound as exc:
        if params:  # the executor may exist without that tag or version
            exc.hint = (f"`nshub hub versions {ref.full_name}` lists its versions and tags; "
                        "private executors of others are invisible")
        raise


def _download(client: Any, ref: ExecutorRef, info: dict, sink: Any) -> None:
    size = int(info["size"])
    expected = str(info["sha256"]).lower()
    what = f"the download of {info.get('full_name') or ref.full_name} v{info['version']}"

    def refresh_url() -> str:  # the presigned URL expired: ask again, for the same bytes
        fresh = _fetch(client, ref, version=int(info["version"]))
        if str(fresh.get("sha256", "")).lower() != expected:
            raise Conflict(f"{ref.canonical(redact_secret=True)} changed during the pull: pull again")
        return fresh["download_url"]

    with transfer_bar(size, f"pull {info.get('name') or ref.name}") as bar:
        digest = download(
            client.session,
            sink,
            url=info.get("download_url") or "",
            refresh_url=refresh_url,
            size=size,
            offset=0,
            digest=hashlib.sha256(),
            retry=client.retry,
            on_progress=bar.update,
            what=what,
        )
    verify_download(sink.tell(), digest, info, what)


def _install(zip_path: Path, parent: Path, version: int, sha256: str) -> None:
    """Extract into a fresh sibling, swap it in as v{version}/, then write the marker."""
    dest, marker = parent / f"v{version}", parent / f"v{version}.sha256"
    staging = parent / f".v{version}-{uuid.uuid4().hex[:12]}"
    try:
        extract_package(zip_path, staging)
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


# --------------------------------------------------------------------------- images


def image_info(uri: str | ExecutorRef, *, client: Any = None) -> dict:
    """The info of the version a URI names, once its container image is ready.

    Raises ImageNotReady, with what to do instead, while the image is pending or building,
    when its build failed, and when the registry builds no images.
    """
    ref = resolve(uri)
    with _using(client) as client:
        info = _fetch(client, ref)
    where = f"{info.get('full_name') or ref.full_name} v{info.get('version')}"
    status = str(info.get("image_status") or "pending")
    source = _source_uri(ref)
    if not info.get("image"):
        raise ImageNotReady(
            f"{where} has no container image on this registry: pull {source} to run from source"
        )
    if status in FAILED_STATUSES:
        raise ImageNotReady(
            f"the image build for {where} failed (status: {status}): pull {source} to run from "
            "source, or push again"
        )
    if status != READY:
        raise ImageNotReady(
            f"the image for {where} is still building (status: {status}): try again in a few "
            f"minutes, or pull {source} to run from source"
        )
    return info


def pull_credentials(uri: str | ExecutorRef, *, client: Any = None) -> dict:
    """Short-lived registry credentials for the image of an executor:
    `{registry, username, password, expires_at, image, repository}`."""
    ref = resolve(uri)
    params = {"tag": ref.tag} if ref.tag else None
    if ref.legacy:
        path, headers = _legacy_path(ref.name), _secret_headers(ref.secret)
    else:
        path, headers = _path(ref.namespace or "", ref.name), None
    with _using(client) as client:
        return client._api("POST", path + "/pull-credentials", params=params, headers=headers)


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


# --------------------------------------------------------------------------- management


def info(target: str | ExecutorRef, *, client: Any = None) -> dict:
    """Info of an executor (the version its tag names, else the latest) with a download URL."""
    ref = resolve(target)
    with _using(client) as client:
        return _fetch(client, ref)


def list_executors(namespace: str, *, limit: int | None = None, client: Any = None) -> list[dict]:
    """Executors of a namespace that you can see (all pages; at most `limit`)."""
    ns = check_namespace(namespace)
    with _using(client) as client:
        return client._paginate(f"/v1/executors/{quote(ns)}", limit)


def versions(target: str | ExecutorRef, *, limit: int | None = None, client: Any = None) -> list[dict]:
    """Versions of an executor, newest first."""
    ref = resolve(target)
    with _using(client) as client:
        namespace, name = ref.namespace, ref.name
        if ref.legacy:
            found = _fetch(client, ref)
            namespace, name = found["namespace"], found["name"]
        return client._paginate(_path(namespace or "", name) + "/versions", limit)


def set_visibility(target: str | ExecutorRef, visibility: str, *, client: Any = None) -> dict:
    """Make an executor `public` or `private`; returns its info."""
    if visibility not in ("public", "private"):
        raise InvalidRequest(f"visibility must be 'public' or 'private', not {visibility!r}")
    ref = _writable(target)
    with _using(client) as client:
        return client._api(
            "PATCH", _path(ref.namespace or "", ref.name), json={"visibility": visibility}
        )


def delete(target: str | ExecutorRef, *, client: Any = None) -> None:
    """Delete an executor, all its versions and tags."""
    ref = _writable(target)
    with _using(client) as client:
        client._api("DELETE", _path(ref.namespace or "", ref.name))
