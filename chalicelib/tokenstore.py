"""Personal access tokens in the table: typed records and intent-named reads and writes.

The only module that knows how tokens are stored (pynamodb, conditions, transactions); the
service (chalicelib/tokens.py) works with `Token` and `TokenIndex` records. Layout (see
chalicelib/keys.py): one item per token under the SHA-256 of its secret, so checking a token
is one GetItem; one index item per account listing its live tokens, changed only together
with a token item, in one transaction conditional on the index's revision (so two racing
creates cannot both take the last free place, and a revoke never loses a concurrent create).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from chalicelib import keys
from chalicelib.models import Item, items

# How long a token's record outlives its end (expiry or revocation): long enough for a
# client to be told "expired" or "revoked" instead of "unknown", then DynamoDB's TTL drops it.
TOMBSTONE_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Token:
    token_id: str
    secret_hash: str  # hex SHA-256 of the secret; the secret itself is never stored
    owner: str  # the account's username (its namespace)
    owner_sub: str | None  # the account's Cognito sub
    name: str
    scopes: tuple[str, ...]
    created_at: int  # epoch seconds
    expires_at: int  # epoch seconds: refused from then on
    last_used_at: int | None = None
    revoked_at: int | None = None


@dataclass(frozen=True)
class IndexEntry:
    secret_hash: str
    name: str
    expires_at: int


@dataclass(frozen=True)
class TokenIndex:
    owner: str
    revision: int = 0  # 0: no index item yet
    entries: dict[str, IndexEntry] = field(default_factory=dict)  # token_id -> entry

    def live(self, now: float) -> dict[str, IndexEntry]:
        return {tid: e for tid, e in self.entries.items() if e.expires_at > now}


class IndexChanged(Exception):
    """The account's token index changed since it was read (a concurrent create or revoke):
    read it again and retry."""


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _epoch(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _record(item: Item) -> Token:
    return Token(
        token_id=item.token_id,
        secret_hash=keys.token_hash_of(item.pk),
        owner=item.owner,
        owner_sub=item.owner_sub,
        name=item.name,
        scopes=tuple(item.scopes or ()),
        created_at=_epoch(item.created_at),
        expires_at=int(item.valid_until),
        last_used_at=int(item.last_used_at) if item.last_used_at is not None else None,
        revoked_at=int(item.revoked_at) if item.revoked_at is not None else None,
    )


def _index(owner: str, item: Item | None) -> TokenIndex:
    if item is None:
        return TokenIndex(owner=owner)
    entries = {
        tid: IndexEntry(secret_hash=e["hash"], name=e["name"], expires_at=int(e["expires_at"]))
        for tid, e in (item.live_tokens or {}).items()
    }
    return TokenIndex(owner=owner, revision=int(item.revision or 0), entries=entries)


def _index_item(index: TokenIndex, entries: dict[str, IndexEntry]) -> Item:
    return items()(
        keys.token_index_pk(index.owner), keys.token_index_sk(),
        owner=index.owner, revision=index.revision + 1,
        live_tokens={tid: {"hash": e.secret_hash, "name": e.name, "expires_at": e.expires_at}
                     for tid, e in entries.items()},
    )


def _index_condition(index: TokenIndex) -> Any:
    model = items()
    return model.pk.does_not_exist() if index.revision == 0 else model.revision == index.revision


def find_token(secret_hash: str) -> Token | None:
    """The token whose secret hashes to `secret_hash`: one strongly consistent GetItem (so a
    revocation is seen by the next lookup in any container)."""
    try:
        item = items().get(keys.token_pk(secret_hash), keys.token_sk(), consistent_read=True)
    except Item.DoesNotExist:
        return None
    return _record(item) if item.token_id else None


def read_index(owner: str) -> TokenIndex:
    try:
        item = items().get(keys.token_index_pk(owner), keys.token_index_sk(),
                           consistent_read=True)
    except Item.DoesNotExist:
        item = None
    return _index(owner, item)


def tokens_of(index: TokenIndex) -> list[Token]:
    """The records of an index's tokens: one BatchGetItem (an account has at most a few
    dozen)."""
    wanted = [(keys.token_pk(e.secret_hash), keys.token_sk()) for e in index.entries.values()]
    if not wanted:
        return []
    return [_record(item) for item in items().batch_get(wanted) if item.token_id]


def add_token(token: Token, index: TokenIndex, keep: dict[str, IndexEntry]) -> None:
    """Store a new token and make the index `keep` plus it, if the index is still `index`."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    model = items()
    item = model(
        keys.token_pk(token.secret_hash), keys.token_sk(),
        token_id=token.token_id, owner=token.owner, owner_sub=token.owner_sub, name=token.name,
        scopes=list(token.scopes), created_at=_iso(token.created_at), valid_until=token.expires_at,
        expires_at=token.expires_at + TOMBSTONE_SECONDS,
    )
    entries = {**keep, token.token_id: IndexEntry(token.secret_hash, token.name, token.expires_at)}
    try:
        with TransactWrite(connection=model._get_connection().connection) as tx:
            tx.save(item, condition=model.pk.does_not_exist())
            tx.save(_index_item(index, entries), condition=_index_condition(index))
    except TransactWriteError:
        raise IndexChanged() from None


def revoke_token(token_id: str, index: TokenIndex, keep: dict[str, IndexEntry],
                 now: int) -> str:
    """Mark a token revoked and make the index `keep` (without it), if the index is still
    `index`. Returns the revoked token's secret hash."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    model = items()
    entry = index.entries[token_id]
    item = model(keys.token_pk(entry.secret_hash), keys.token_sk())
    keep = {tid: e for tid, e in keep.items() if tid != token_id}
    try:
        with TransactWrite(connection=model._get_connection().connection) as tx:
            tx.update(item, actions=[model.revoked_at.set(now),
                                     model.expires_at.set(now + TOMBSTONE_SECONDS)],
                      condition=model.owner == index.owner)
            tx.save(_index_item(index, keep), condition=_index_condition(index))
    except TransactWriteError:
        raise IndexChanged() from None
    return entry.secret_hash


def record_use(secret_hash: str, now: int, every_seconds: int) -> bool:
    """Set the token's last use to `now` unless it was set less than `every_seconds` ago: a
    conditional update, so however many containers see the token, it is written at most
    once per period. True when this call wrote it."""
    from pynamodb.exceptions import UpdateError

    model = items()
    item = model(keys.token_pk(secret_hash), keys.token_sk())
    try:
        item.update(
            actions=[model.last_used_at.set(now)],
            condition=model.pk.exists() & model.revoked_at.does_not_exist()
            & (model.last_used_at.does_not_exist() | (model.last_used_at <= now - every_seconds)),
        )
    except UpdateError:
        return False
    return True
