"""Executor image builds in the table: each version's build status (mirrored on the head
for the latest version) and the watch kept on every build until its outcome is recorded.

Build status only moves forward: pending (no status) -> building -> ready | failed
(terminal), whatever order the events arrive in, and never from another build's event.
"""
from __future__ import annotations

from chalicelib import keys
from chalicelib.store import table
from chalicelib.store.records import BuildWatch, Version

BUILDING, READY, FAILED = "building", "ready", "failed"
TERMINAL = (READY, FAILED)


def claim(version: Version) -> bool:
    """Mark a version `building` before its build starts, once: False when a build was
    already started for it."""
    from pynamodb.exceptions import UpdateError

    model = table.items()
    try:
        model(version.pk, version.sk).update(
            actions=[model.image_status.set(BUILDING)],
            condition=model.pk.exists() & model.image_status.does_not_exist())
    except UpdateError as exc:
        if table.failed_condition(exc):
            return False
        raise
    return True


def unclaim(version: Version) -> None:
    """Undo `claim` when the build could not be started (none was recorded)."""
    from pynamodb.exceptions import UpdateError

    model = table.items()
    try:
        model(version.pk, version.sk).update(
            actions=[model.image_status.remove()],
            condition=(model.image_status == BUILDING) & model.image_build_id.does_not_exist())
    except UpdateError as exc:
        if not table.failed_condition(exc):
            raise


def set_status(pk: str, sk: str, status: str, build_id: str | None,
               log_url: str | None) -> bool:
    """Move one version's image status forward, on the version item and, when it is the
    latest, on the head. Never out of a terminal status, never from another build's event.
    Returns whether the version item changed."""
    from pynamodb.exceptions import UpdateError

    model = table.items()
    actions = [model.image_status.set(status)]
    if build_id is not None:
        actions.append(model.image_build_id.set(build_id))
    if log_url:
        actions.append(model.image_log_url.set(log_url))
    forward = model.image_status.does_not_exist() | ~model.image_status.is_in(*TERMINAL)
    if status in TERMINAL and build_id is None:  # refused before any build: only from pending
        forward = model.image_status.does_not_exist()
    same_build = model.image_build_id.does_not_exist()
    if build_id is not None:
        same_build = same_build | (model.image_build_id == build_id)
    parsed = keys.parse_sk(sk)
    changed = True
    try:
        model(pk, sk).update(actions, condition=model.pk.exists() & forward & same_build)
    except UpdateError as exc:
        if not table.failed_condition(exc):
            raise
        changed = False
    try:  # the head mirrors the latest version's status
        model(pk, keys.head_sk(parsed["kind"])).update(
            actions, condition=(model.counter == int(parsed["version"]))
            & (model.generation == parsed["generation"]) & forward & same_build)
    except UpdateError as exc:
        if not table.failed_condition(exc):
            raise
    return changed


def watch(build: BuildWatch) -> None:
    table.items()(**build.attributes()).save()


def unwatch(version_pk: str, version_sk: str) -> None:
    table.items()(*keys.build_watch_key(version_pk, version_sk)).delete()


def watched() -> list[BuildWatch]:
    """Every build still watched (one partition: builds in flight are few)."""
    pk = keys.build_watch_key("", "")[0]
    return [BuildWatch.from_item(item) for item in table.items().query(pk, consistent_read=True)]
