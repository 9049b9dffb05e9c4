"""The table's items, through pynamodb: the one model class and the few helpers every
operation of the store shares.

One table, one model class (`Item`): single-table design, so a BatchGetItem can fetch a
head and an upload in one call. Which attributes an item uses depends on what its sort key
says it is (see chalicelib/keys.py for the layout; chalicelib/store/records.py for the typed
records each kind of item converts to). The table name, region and endpoint are bound from
the config on first use, never at import.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model


class ListIndex(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Item(Model):
    class Meta:
        table_name = "nshub"
        region = "us-east-1"
        host: str | None = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    list_index = ListIndex()
    expires_at = NumberAttribute(null=True)  # TTL (epoch seconds)

    # what every resource item knows
    kind = UnicodeAttribute(null=True)  # array | executor
    namespace = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)  # first spelling, for display
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)

    # head
    visibility = UnicodeAttribute(null=True)
    generation = UnicodeAttribute(null=True)
    counter = NumberAttribute(null=True)  # highest committed version number
    current = JSONAttribute(null=True)  # the latest version's info, so a pull is one read
    # the latest version's size and sha256 again, as plain attributes: an unchanged re-push is
    # recognised by a condition on them (DynamoDB cannot look inside `current`)
    current_size = NumberAttribute(null=True)
    current_sha256 = UnicodeAttribute(null=True)
    tags = JSONAttribute(null=True)  # executor: {tag: version}
    protected_tags = UnicodeSetAttribute(null=True)
    legacy = NumberAttribute(null=True)  # 1 for legacy resources
    image_status = UnicodeAttribute(null=True)
    image_log_url = UnicodeAttribute(null=True)
    image_build_id = UnicodeAttribute(null=True)

    # version / upload
    version = NumberAttribute(null=True)
    size = NumberAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    blob_key = UnicodeAttribute(null=True)
    metadata = JSONAttribute(null=True)
    upload_id = UnicodeAttribute(null=True)
    s3_upload_id = UnicodeAttribute(null=True)
    part_size = NumberAttribute(null=True)
    part_count = NumberAttribute(null=True)
    part_sha256 = JSONAttribute(null=True)  # upload: the client's per-part digests, if any
    state = UnicodeAttribute(null=True)  # upload: pending | completed
    request = JSONAttribute(null=True)  # upload: visibility, metadata, tags asked for
    package = JSONAttribute(null=True)  # executor version: validated package summary
    # version: pending (committed, whole-object sha256 not yet checked) | verified |
    # quarantined (its bytes are not the declared ones: hidden from readers). None: verified
    # before commit (versions committed before asynchronous verification).
    integrity = UnicodeAttribute(null=True)
    integrity_reason = UnicodeAttribute(null=True)

    # the reconciler's cursor: {"phase": "objects", "after": key} or
    # {"phase": "multipart", "key_marker": key, "upload_id_marker": id}
    cursor = JSONAttribute(null=True)

    # legacy executor alias
    owner = UnicodeAttribute(null=True)  # also: a personal access token's account (username)
    secret_hash = UnicodeAttribute(null=True)
    failures = NumberAttribute(null=True)  # wrong secrets in one window

    # namespace claim: the Cognito `sub` of the account that owns the namespace
    account_sub = UnicodeAttribute(null=True)
    # personal access token (chalicelib/store/tokens.py reads and writes these)
    token_id = UnicodeAttribute(null=True)
    owner_sub = UnicodeAttribute(null=True)  # the account's Cognito sub
    scopes = JSONAttribute(null=True)  # ["read"] or ["read", "write"]
    valid_until = NumberAttribute(null=True)  # epoch seconds: refused from then on
    last_used_at = NumberAttribute(null=True)  # epoch seconds, written at most hourly
    revoked_at = NumberAttribute(null=True)  # epoch seconds
    # an account's token index
    live_tokens = JSONAttribute(null=True)  # {token_id: {hash, name, valid_until}}
    revision = NumberAttribute(null=True)  # every change is conditional on it


def bind(settings: Any) -> None:
    """Point the model at the configured table (None: forget the connection)."""
    Item._connection = None
    ListIndex._connection = None  # type: ignore[attr-defined]
    if settings is None:
        return
    Item.Meta.table_name = settings.table_name
    Item.Meta.region = settings.region
    Item.Meta.host = settings.endpoint_url
    Item.Meta.max_retry_attempts = 5  # type: ignore[attr-defined]


_bound_to: Any = None


def items() -> type[Item]:
    """The model class, bound to the current settings."""
    global _bound_to
    from chalicelib.config import get_settings

    settings = get_settings()
    if _bound_to is not settings:
        bind(settings)
        _bound_to = settings
    return Item


def get(pk: str, sk: str, consistent: bool = False) -> Item | None:
    """One item, or None."""
    try:
        return items().get(pk, sk, consistent_read=consistent)
    except Item.DoesNotExist:
        return None


def put_new(attributes: dict[str, Any]) -> bool:
    """Write an item unless its key is taken (then False, and nothing is written)."""
    from pynamodb.exceptions import PutError

    model = items()
    try:
        model(**attributes).save(condition=model.pk.does_not_exist())
    except PutError as exc:
        if failed_condition(exc):
            return False
        raise
    return True


def from_image(raw: dict) -> Item:
    """The item a table stream record carries (DynamoDB JSON)."""
    return items().from_raw_data(raw)


def failed_condition(exc: Exception) -> bool:
    """Whether a write failed because its condition did not hold."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def cancellation_reasons(exc: Exception) -> list[str | None]:
    """Why each write of a cancelled transaction failed (in the order they were added)."""
    return [getattr(r, "code", None) for r in (getattr(exc, "cancellation_reasons", None) or [])]


@contextmanager
def transaction() -> Iterator[Any]:
    """A TransactWrite on the bound table."""
    from pynamodb.transactions import TransactWrite

    model = items()
    with TransactWrite(connection=model._get_connection().connection) as tx:
        yield tx
