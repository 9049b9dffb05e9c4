"""Items DynamoDB reads per list page, with 100, 1,000 and 10,000 arrays in a namespace.

Heads are written straight into the table (batch writes: what a push leaves, without the
bytes), half of them public. Each listing (owner: all; anonymous: public only) reads a first
page and the next one (through the cursor) with the page limit of 50. The figure is the
items read per page at 10,000 arrays over the items read at 100: 1.0 when a page costs the
same whatever the namespace holds. Items read is the Query's ScannedCount, read from
botocore's `after-call` hook; the number of Query calls per page is checked too.
"""
from __future__ import annotations

import os

from bench import aws_calls
from bench.report import Figure
from bench.stack import Stack

PAGE = 50


def _fill(ns: str, count: int) -> None:
    from chalicelib import keys
    from chalicelib.store import table
    from chalicelib.store.records import Head

    model = table.items()
    stamp = "2024-01-01T00:00:00Z"
    with model.batch_write() as batch:
        for i in range(count):
            name = f"array-{i:05d}"
            visibility = "public" if i % 2 else "private"
            current = {"version": 1, "size": 1, "sha256": "0" * 64,
                       "blob_key": keys.blob_key("array", ns, name, "0" * 32),
                       "created_at": stamp, "metadata": None, "upload_id": "0" * 32,
                       "package": None}
            head = Head(*Head.key("array", ns, name), kind="array", namespace=ns, name=name,
                        generation="g" * 12, visibility=visibility, counter=1, current=current,
                        metadata={}, created_at=stamp, updated_at=stamp)
            batch.save(model(**head.attributes()))


def _pages(ns: str, caller) -> list[tuple[int, int, int]]:
    """(items returned, items read, Query calls) of the first two pages (or the only one)."""
    from chalicelib import resources

    out, cursor = [], None
    for _ in range(2):
        with aws_calls.counting() as calls:
            page = resources.list_resources(caller, "array", ns, PAGE, cursor)
        scanned = sum(int(r.get("ScannedCount", 0)) for op, r in aws_calls.responses()
                      if op == "Query")
        queries = sum(1 for c in calls if c.endswith(":Query"))
        out.append((len(page["items"]), scanned, queries))
        cursor = page["next_cursor"]
        if not cursor:
            break
    return out


def run(sizes: tuple[int, ...] | None = None, log=print) -> list[Figure]:
    from chalicelib.auth import Caller

    sizes = sizes or tuple(
        int(s) for s in (os.environ.get("BENCH_LIST_SIZES") or "100,1000,10000").split(","))
    aws_calls.install_hooks()
    read: dict[int, list[int]] = {}
    queries: set[int] = set()
    with Stack(api=False) as stack, stack.apply():
        for n in sizes:
            ns = f"scale{n}"
            _fill(ns, n)
            rows = []
            for who, caller in (("owner", Caller(username=ns, via="id")), ("anonymous", None)):
                for returned, scanned, q in _pages(ns, caller):
                    assert returned == min(PAGE, n if who == "owner" else n // 2), returned
                    rows.append(scanned)
                    queries.add(q)
                    log(f"  {n} arrays, {who}: {returned} items, {scanned} read, {q} Query")
            read[n] = rows
    per_page = {n: max(r) for n, r in read.items()}
    small, large = per_page[min(sizes)], per_page[max(sizes)]
    values = [v for r in read.values() for v in r]  # every page read at every size
    detail = (f"items read per page of {PAGE} (owner p1, p2; anonymous p1[, p2]) at "
              + "; ".join(f"{n:,}: {'/'.join(map(str, r))}" for n, r in read.items())
              + f"; Query calls per page: {sorted(queries)}")
    return [Figure(f"list scaling ({max(sizes):,} vs {min(sizes):,} arrays)",
                   round(large / small, 2), "x items read", "constant",
                   detail=detail, values=values)]
