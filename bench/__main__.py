"""`python -m bench` (`make bench`): every benchmark, one table, bench/results.json.

Every figure is measured against a floor in the same run on the same machine. Each benchmark
starts its own moto server (and the app, when it needs one) in child processes and stops
them by PID when it ends.

Environment (defaults are the full run; the smoke test uses tiny ones):

    BENCH_PUSH_MIB=512     size pushed by the push throughput benchmark
    BENCH_PULL_MIB=1024    size pulled by the pull throughput and memory benchmarks
    BENCH_ROUNDS=3         alternating rounds of ours / the floor (medians are compared)
    BENCH_PUSH_ROUNDS=5    rounds of the push benchmark (its floor varies most)
    BENCH_LIST_SIZES=100,1000,10000
    BENCH_API_REQUESTS=400 requests per API measurement
    BENCH_COLD_RUNS=15     fresh interpreters per side for the cold start
    BENCH_ONLY=a,b         run only these benchmarks (names below); BENCH_SKIP=a,b skips
    BENCH_RESULTS=path     where the JSON goes (bench/results.json)
    BENCH_WORK_DIR=path    scratch files and server logs (bench/.work)
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from bench import report
from bench.stack import env_int, remove, work_dir


def _cold_start(log) -> list[report.Figure]:
    from bench import cold_start

    return cold_start.run(env_int("BENCH_COLD_RUNS", 15), log=log)


def _package(log) -> list[report.Figure]:
    from bench import package

    return package.run(log=log)[0]


def _aws_calls(log) -> list[report.Figure]:
    from bench import aws_calls

    return aws_calls.run(log=log)


def _list_scaling(log) -> list[report.Figure]:
    from bench import list_scaling

    return list_scaling.run(log=log)


def _api_overhead(log) -> list[report.Figure]:
    from bench import api_overhead

    return api_overhead.run(env_int("BENCH_API_REQUESTS", 400), env_int("BENCH_ROUNDS", 3),
                            log=log)


def _transfers(log) -> list[report.Figure]:
    from bench import transfers

    return transfers.run(
        env_int("BENCH_PUSH_MIB", 512), env_int("BENCH_PULL_MIB", 1024),
        push_rounds=env_int("BENCH_PUSH_ROUNDS", 5), pull_rounds=env_int("BENCH_ROUNDS", 3),
        log=log,
    )


# In this order: the quiet, short ones first; the transfers (GiBs through moto) last.
BENCHMARKS: dict[str, Callable] = {
    "cold_start": _cold_start,
    "package": _package,
    "aws_calls": _aws_calls,
    "list_scaling": _list_scaling,
    "api_overhead": _api_overhead,
    "transfers": _transfers,
}


def _names(var: str) -> set[str]:
    return {n.strip() for n in os.environ.get(var, "").split(",") if n.strip()}


def main() -> int:
    only, skip = _names("BENCH_ONLY"), _names("BENCH_SKIP")
    unknown = (only | skip) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}: choose from {list(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    results = Path(os.environ.get("BENCH_RESULTS") or report.RESULTS)

    def log(line: str) -> None:
        print(line, flush=True)

    remove(work_dir("logs"))  # server logs and started PIDs are this run's only
    remove(work_dir() / "pids")
    machine = report.machine()
    log(f"machine: {report.machine_line(machine)}")
    figures: list[report.Figure] = []
    failed = []
    started = time.monotonic()
    for name, bench in BENCHMARKS.items():
        if (only and name not in only) or name in skip:
            continue
        log(f"== {name}")
        t0 = time.monotonic()
        try:
            figures.extend(bench(log))
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the rest
            traceback.print_exc()
            failed.append(name)
            figures.append(report.Figure(f"{name}: did not run", type(exc).__name__, "",
                                         "report", detail=str(exc).splitlines()[0][:200]))
            figures[-1].met = False
        log(f"   ({time.monotonic() - t0:.0f}s)")

    print()
    print(report.table(figures))
    print()
    report.write(figures, machine, results, extra={
        "settings": {k: v for k, v in os.environ.items() if k.startswith("BENCH_")},
        "seconds": round(time.monotonic() - started),
    })
    missed = [f.name for f in figures if not f.met]
    print(f"{len(figures) - len(missed)}/{len(figures)} figures meet their goal"
          + (f"; missed: {', '.join(missed)}" if missed else "") + f". Written to {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
