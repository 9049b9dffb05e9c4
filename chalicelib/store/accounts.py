"""Namespace claims in the table: written once with a conditional put, never deleted."""
from __future__ import annotations

from chalicelib import keys
from chalicelib.store import table
from chalicelib.store.records import NamespaceClaim


def read_claim(namespace: str, consistent: bool = False) -> NamespaceClaim | None:
    item = table.get(keys.claim_pk(namespace), keys.CLAIM_SK, consistent)
    return NamespaceClaim.from_item(item) if item is not None else None


def put_claim(claim: NamespaceClaim) -> bool:
    """Store a claim unless its namespace is claimed already (then False)."""
    return table.put_new(claim.attributes())
