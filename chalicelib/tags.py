"""Executor tags as a head stores them, and the one tag nobody stores: `latest`.

`latest` always names the newest committed version (DESIGN.md): resolved from the head,
never stored, set or protected. Data written before this rule may hold it in a head's tags or
protected tags: every read here ignores it.
"""
from __future__ import annotations

from chalicelib.errors import TagProtected
from chalicelib.store.records import Head

LATEST = "latest"


def stored_tags(head: Head) -> dict[str, int]:
    """A head's tags -> versions, without `latest` (which is never stored any more)."""
    return {t: v for t, v in head.tags.items() if t != LATEST}


def protected_tags_of(head: Head) -> set[str]:
    return head.protected_tags - {LATEST}


def tags_of(head: Head, version: int) -> list[str]:
    """The tags that name `version`, `latest` included when it is the newest."""
    tags = {t for t, v in stored_tags(head).items() if v == version}
    if version == head.latest_version:
        tags.add(LATEST)
    return sorted(tags)


def refuse_protected_moves(head: Head, tags: list[str], ns: str, name: str) -> None:
    protected = protected_tags_of(head)
    for tag in tags:
        if tag in protected and stored_tags(head).get(tag) is not None:
            raise TagProtected(
                f"tag '{tag}' of '{ns}/{name}' is protected and cannot move: push with another tag"
            )
