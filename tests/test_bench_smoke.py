"""`python -m bench` runs end to end at tiny sizes: every benchmark produces its figures, the
JSON has the promised shape, and nothing it started is left running. No timing is asserted:
the numbers of a smoke run mean nothing. Marker bench_smoke: `make test-bench-smoke` runs it,
`make test` leaves it out (CI runs both)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024

pytestmark = pytest.mark.bench_smoke


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_bench_runs_at_tiny_sizes(tmp_path):
    results = tmp_path / "results.json"
    work = tmp_path / "work"
    env = {
        **os.environ,
        "BENCH_RESULTS": str(results),
        "BENCH_WORK_DIR": str(work),
        "BENCH_PUSH_MIB": "11",  # 5 MiB parts: three parts, the multipart path
        "BENCH_PULL_MIB": "6",
        "BENCH_ROUNDS": "1",
        "BENCH_PUSH_ROUNDS": "1",
        "BENCH_LIST_SIZES": "2,3,4",
        "BENCH_API_REQUESTS": "8",
        "BENCH_COLD_RUNS": "1",
        # `chalice package` downloads the Lambda wheels on a fresh machine: not in a smoke test
        "BENCH_SKIP": "package",
        "NSHUB_SINGLE_PART_MAX_BYTES": str(5 * MiB),
        "NSHUB_MIN_PART_SIZE": str(5 * MiB),
    }
    proc = subprocess.run([sys.executable, "-m", "bench"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    data = json.loads(results.read_text())
    assert data["machine"]["cores"] and data["machine"]["python"]
    names = [f["name"] for f in data["figures"]]
    for expected in ("push throughput", "pull throughput", "pull memory", "cold start",
                     "API overhead (anonymous, public)", "API overhead (signed in)",
                     "AWS calls: pull/info (signed in)", "AWS calls: complete (single part)",
                     "AWS calls: pull/info (token, warm)", "AWS calls: pull/info (token, cold)",
                     "AWS calls: pull/info (token, first use in an hour)"):
        assert expected in names, names
    # call counts do not depend on the machine: a token's pull/info meets its goals
    for figure in data["figures"]:
        if figure["name"] in ("AWS calls: pull/info (token, warm)",
                              "AWS calls: pull/info (token, cold)"):
            assert figure["met"], figure
    assert any(n.startswith("list scaling") for n in names), names
    for figure in data["figures"]:
        assert {"name", "value", "unit", "goal", "met"} <= set(figure), figure
        assert isinstance(figure["met"], bool), figure
    assert "| push throughput" in proc.stdout  # the table is printed

    pids = [int(p) for p in (work / "pids").read_text().split()]
    assert len(pids) >= 5  # moto per benchmark, the app, the floor
    assert not [p for p in pids if _alive(p)], "a server the benchmark started still runs"
