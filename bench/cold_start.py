"""Cold start: a fresh interpreter importing the app, against one importing chalice and boto3.

`python -c "import app"` is what a Lambda cold start pays before the first request (the app
imports boto3 and pynamodb on first use, not at import). The floor, `import chalice, boto3`,
is what any Chalice app that talks to AWS pays. Runs alternate (app, floor, floor, app, ...)
so drift on a noisy machine hits both; the figure is the ratio of the medians.
"""
from __future__ import annotations

import subprocess
import time

from bench.report import Figure
from bench.stack import PYTHON, REPO, base_env, env_int, median

APP = "import app"
FLOOR = "import chalice, boto3"


def wall(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", code], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return time.perf_counter() - start


def run(runs: int | None = None, log=print) -> list[Figure]:
    runs = runs or env_int("BENCH_COLD_RUNS", 15)
    env = base_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Lambda imports compiled bytecode too
    for code in (APP, FLOOR):  # compile bytecode and warm the page cache, untimed
        wall(code, env)
    app, floor = [], []
    for i in range(runs):
        pair = ((APP, app), (FLOOR, floor))
        for code, into in (pair if i % 2 == 0 else pair[::-1]):
            into.append(wall(code, env))
    t_app, t_floor = median(app), median(floor)
    log(f"  import app {t_app * 1000:.0f} ms, import chalice, boto3 {t_floor * 1000:.0f} ms")
    return [Figure(
        "cold start", round(t_app / t_floor, 2), "x floor time", "<= 1.5",
        detail=(f"median of {runs}: `import app` {t_app * 1000:.0f} ms, "
                f"`import chalice, boto3` {t_floor * 1000:.0f} ms"),
    )]
