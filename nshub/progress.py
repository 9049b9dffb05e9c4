"""The one place that draws progress bars.

Bars go to stderr, only when it is a terminal and NSHUB_DISABLE_PROGRESS_BARS is not set;
otherwise the returned bar is a silent tqdm (its `update` still works, it just draws nothing).
"""
from __future__ import annotations

import sys

from tqdm.auto import tqdm

from nshub import settings


def progress_enabled() -> bool:
    if settings.progress_bars_disabled():
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def transfer_bar(total: int | None, desc: str) -> tqdm:
    """A byte counter for a push or a pull: use it as a context manager and call `update(n)`."""
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not progress_enabled(),
        leave=False,
        dynamic_ncols=True,
    )
