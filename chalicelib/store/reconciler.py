"""Where the last scheduled reconciler run stopped (one item)."""
from __future__ import annotations

from chalicelib import keys
from chalicelib.store import table


def read_cursor() -> dict:
    """{} when the last run finished its pass (or none ran)."""
    item = table.get(*keys.reconciler_cursor_key(), consistent=True)
    return dict(item.cursor or {}) if item is not None else {}


def save_cursor(cursor: dict, stamp: str) -> None:
    table.items()(*keys.reconciler_cursor_key(), cursor=cursor, updated_at=stamp).save()


def clear_cursor() -> None:
    table.items()(*keys.reconciler_cursor_key()).delete()
