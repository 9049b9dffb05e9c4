"""Figures, the table, the machine, and bench/results.json."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass
class Figure:
    """One measured figure. `goal` is a comparison (`>= 0.9`, `<= 150`, `== 1`), `constant`
    (every value of the row's `values` equal) or `report` (no goal: measured and shown)."""

    name: str
    value: Any
    unit: str
    goal: str
    met: bool = True
    detail: str = ""
    values: list[Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.met = meets(self.value, self.goal, self.values)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("values")
        if not out["detail"]:
            out.pop("detail")
        return out


def meets(value: Any, goal: str, values: list[Any] | None = None) -> bool:
    goal = goal.strip()
    if goal == "report":
        return True
    if goal == "constant":
        return bool(values) and len(set(values)) == 1
    op, _, bound = goal.partition(" ")
    limit = float(bound)
    ops = {">=": value >= limit, "<=": value <= limit, "==": value == limit}
    return bool(ops[op])


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as fh:
            kib = int(next(ln for ln in fh if ln.startswith("MemTotal")).split()[1])
            mem_gib = round(kib / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    versions = {}
    for module in ("boto3", "botocore", "moto", "chalice", "pynamodb", "requests", "urllib3"):
        try:
            from importlib.metadata import version

            versions[module] = version(module)
        except Exception:  # noqa: BLE001 - a missing package is just not reported
            pass
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
        "commit": _commit(),
    }


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "unit", "goal", "met", "detail")]
    for f in figures:
        rows.append((f.name, _fmt(f.value), f.unit, f.goal, "yes" if f.met else "NO", f.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[c].ljust(widths[c]) for c in range(5)] + [row[5]]
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("| " + " | ".join("-" * w for w in widths) + " | --- |")
    return "\n".join(lines)


def machine_line(m: dict[str, Any]) -> str:
    pk = m.get("packages", {})
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
            f"Python {m['python']}, moto {pk.get('moto', '?')}, boto3 {pk.get('boto3', '?')}, "
            f"chalice {pk.get('chalice', '?')}")


def write(figures: list[Figure], m: dict[str, Any], path: Path = RESULTS,
          extra: dict[str, Any] | None = None) -> None:
    data = {"machine": m, "figures": [f.as_json() for f in figures], **(extra or {})}
    path.write_text(json.dumps(data, indent=2) + "\n")
