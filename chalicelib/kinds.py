"""What differs between kinds of resource, as one policy object per kind.

The service asks `policy(kind)` once and reads its answers; it never branches on the kind's
name. An array is bytes and metadata; an executor adds a package that is validated before
its version is visible, tags (some protected), a container image per version, and images
that go when their versions go.
"""
from __future__ import annotations

from typing import Any, BinaryIO

from chalicelib import keys
from chalicelib.config import Settings, get_settings
from chalicelib.ecr import forget_images
from chalicelib.packages import check_package
from chalicelib.store.records import Head
from chalicelib.tags import protected_tags_of, tags_of


class Kind:
    """An array (and what every kind does unless it says otherwise)."""

    name = keys.ARRAY
    # the setting that bounds one push of this kind
    max_bytes_setting = "max_upload_bytes"
    # whether `complete` reads the bytes to check them before the version is visible (then
    # their whole-object sha256 is checked there, not later on the event path)
    checks_at_complete = False
    tagged = False  # pushes name tags, some protected; every info lists them
    builds_images = False  # each new version starts a container image build
    # a legacy resource of this kind is named by its bare name (else `owner/name`)
    bare_legacy_name = True

    def max_bytes(self, settings: Settings) -> int:
        return getattr(settings, self.max_bytes_setting)

    def check_package(self, fileobj: BinaryIO) -> dict | None:
        """What to store with the version, from its verified bytes (or a refusal)."""
        return None

    def extra_info(self, head: Head, current: dict) -> dict[str, Any]:
        """Fields this kind adds to a version's info (`current`: the version's summary)."""
        return {}

    def drop_versions(self, pk: str, versions: list[int] | None) -> None:
        """What goes with dropped versions besides their records and bytes (versions None:
        the whole resource was deleted)."""


class ExecutorKind(Kind):
    name = keys.EXECUTOR
    max_bytes_setting = "max_executor_bytes"
    # packages are small (capped) and must be valid before they are visible
    checks_at_complete = True
    tagged = True
    builds_images = True
    bare_legacy_name = False

    def check_package(self, fileobj: BinaryIO) -> dict | None:
        return check_package(fileobj)

    def extra_info(self, head: Head, current: dict) -> dict[str, Any]:
        version = int(current["version"])
        return {
            "tags": tags_of(head, version),
            "protected_tags": sorted(protected_tags_of(head)),
            "image": _image_ref(head, version),
            "image_status": _image_status(head, current),
            "md5": (current.get("package") or {}).get("md5"),
        }

    def drop_versions(self, pk: str, versions: list[int] | None) -> None:
        forget_images(pk, versions)


def _image_ref(head: Head, version: int) -> str | None:
    registry = get_settings().ecr_registry
    if not registry:
        return None
    repository = keys.image_repository(head.namespace, head.name)
    return f"{registry}/{repository}:{keys.image_tag(version)}"


def _image_status(head: Head, current: dict) -> str:
    """The version item's build status; the head's copy for the latest version (the head's
    `current` is a JSON copy made at commit, the build status arrives later)."""
    status = current.get("image_status")
    if status is None and head.counter is not None and head.counter == current["version"]:
        status = head.image_status
    return status or "pending"


POLICIES: dict[str, Kind] = {k.name: k for k in (Kind(), ExecutorKind())}


def policy(kind: str) -> Kind:
    return POLICIES[kind]
