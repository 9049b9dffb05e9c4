"""Personal access tokens in the table: intent-named reads and writes of `Token` and
`TokenIndex` records (chalicelib/store/records.py).

Layout (see chalicelib/keys.py): one item per token under the SHA-256 of its secret, so
checking a token is one GetItem; one index item per account listing its live tokens, changed
only together with a token item, in one transaction conditional on the index's revision (so
two racing creates cannot both take the last free place, and a revoke never loses a
concurrent create).
"""
from __future__ import annotations

from typing import Any

from chalicelib import keys
from chalicelib.store import table
from chalicelib.store.records import IndexEntry, Token, TokenIndex

# How long a token's record outlives its end (expiry or revocation): long enough for a
# client to be told "expired" or "revoked" instead of "unknown", then DynamoDB's TTL drops it.
TOMBSTONE_SECONDS = 30 * 24 * 3600


class IndexChanged(Exception):
    """The account's token index changed since it was read (a concurrent create or revoke):
    read it again and retry."""


def _index_item(index: TokenIndex, entries: dict[str, IndexEntry]) -> Any:
    return table.items()(**index.next_attributes(entries))


def _index_condition(index: TokenIndex) -> Any:
    model = table.items()
    return model.pk.does_not_exist() if index.revision == 0 else model.revision == index.revision


def find_token(secret_hash: str) -> Token | None:
    """The token whose secret hashes to `secret_hash`: one strongly consistent GetItem (so a
    revocation is seen by the next lookup in any container)."""
    item = table.get(keys.token_pk(secret_hash), keys.token_sk(), consistent=True)
    return Token.from_item(item) if item is not None and item.token_id else None


def read_index(owner: str) -> TokenIndex:
    item = table.get(keys.token_index_pk(owner), keys.token_index_sk(), consistent=True)
    return TokenIndex.from_item(owner, item)


def tokens_of(index: TokenIndex) -> list[Token]:
    """The records of an index's tokens: one BatchGetItem (an account has at most a few
    dozen)."""
    wanted = [(keys.token_pk(e.secret_hash), keys.token_sk()) for e in index.entries.values()]
    if not wanted:
        return []
    return [Token.from_item(item) for item in table.items().batch_get(wanted) if item.token_id]


def add_token(token: Token, index: TokenIndex, keep: dict[str, IndexEntry]) -> None:
    """Store a new token and make the index `keep` plus it, if the index is still `index`."""
    from pynamodb.exceptions import TransactWriteError

    model = table.items()
    item = model(**token.attributes(TOMBSTONE_SECONDS))
    entries = {**keep, token.token_id: IndexEntry(token.secret_hash, token.name, token.expires_at)}
    try:
        with table.transaction() as tx:
            tx.save(item, condition=model.pk.does_not_exist())
            tx.save(_index_item(index, entries), condition=_index_condition(index))
    except TransactWriteError:
        raise IndexChanged() from None


def revoke_token(token_id: str, index: TokenIndex, keep: dict[str, IndexEntry],
                 now: int) -> str:
    """Mark a token revoked and make the index `keep` (without it), if the index is still
    `index`. Returns the revoked token's secret hash."""
    from pynamodb.exceptions import TransactWriteError

    model = table.items()
    entry = index.entries[token_id]
    item = model(keys.token_pk(entry.secret_hash), keys.token_sk())
    keep = {tid: e for tid, e in keep.items() if tid != token_id}
    try:
        with table.transaction() as tx:
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

    model = table.items()
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
