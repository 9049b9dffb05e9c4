"""How the `nshub` commands print: a short human answer, or JSON with `--json`."""
from __future__ import annotations

import argparse
import json
from typing import Any, Sequence


def with_json(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def print_json(args: argparse.Namespace, data: Any) -> bool:
    """Print `data` as JSON if `--json` was given; say whether it was."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
        return True
    return False


def without_urls(info: dict) -> dict:
    return {k: v for k, v in info.items() if not k.startswith("download_")}


def human_size(size: Any) -> str:
    if not isinstance(size, (int, float)):
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
