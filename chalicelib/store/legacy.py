"""Legacy executors' aliases in the table, and the wrong secrets counted per name."""
from __future__ import annotations

from chalicelib import keys
from chalicelib.store import table
from chalicelib.store.records import LegacyAlias


def read_alias(name: str) -> LegacyAlias | None:
    item = table.get(keys.resource_pk(keys.LEGACY_NS, name), keys.legacy_executor_sk(),
                     consistent=True)
    return LegacyAlias.from_item(item) if item is not None else None


def alias_and_failures(name: str, window: int) -> tuple[LegacyAlias | None, int, int]:
    """The alias of `name` and the wrong secrets sent for it in `window` and the window
    before: one BatchGetItem."""
    pk = keys.resource_pk(keys.LEGACY_NS, name)
    counters = [keys.secret_failures_sk(window), keys.secret_failures_sk(window - 1)]
    wanted = [(pk, keys.legacy_executor_sk())] + [(pk, sk) for sk in counters]
    found = {item.sk: item for item in table.items().batch_get(wanted, consistent_read=True)}
    current, previous = (int(found[sk].failures or 0) if sk in found else 0 for sk in counters)
    alias = found.get(keys.legacy_executor_sk())
    return (LegacyAlias.from_item(alias) if alias is not None else None), current, previous


def count_failure(name: str, window: int, expires_at: int) -> None:
    """One more wrong secret for `name` in `window`: an atomic ADD (the counter expires at
    `expires_at`)."""
    model = table.items()
    counter = model(keys.resource_pk(keys.LEGACY_NS, name), keys.secret_failures_sk(window))
    counter.update(actions=[model.failures.add(1), model.expires_at.set(expires_at)])


def put_alias(alias: LegacyAlias) -> bool:
    """Store a new alias; False when the name has one already."""
    return table.put_new(alias.attributes())
