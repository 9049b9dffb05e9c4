"""Requests per second of `GET /v1/arrays/{ns}/{name}` through the app, against a floor.

The app: chalice's local server (`create_local_server`) in its own process. The floor: the
same server class (`chalice.local.ThreadedHTTPServer`, a thread per connection, HTTP/1.1
keep-alive) in another process, whose one handler does only the DynamoDB GetItem of the head
and the presign (`bench.serve.floor_handler_class`). Both read the same item from the same
moto server. The ratio isolates what the app adds: chalice's event conversion and routing,
the middleware, token verification, access checks, serialization.

The load: THREADS keep-alive sessions sending a bounded number of requests (REQUESTS after
WARMUP), to 127.0.0.1 only; rounds alternate floor / anonymous / signed in; medians.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.report import Figure
from bench.stack import Stack, env_int, median

NAME = "alice/api-bench"
PATH = "/v1/arrays/alice/api-bench"
THREADS = 4
DEADLINE = 120.0


def requests_per_second(url: str, headers: dict[str, str], total: int, warmup: int) -> float:
    per_thread = max(1, total // THREADS)
    deadline = time.monotonic() + DEADLINE

    def worker(_: int) -> float:
        with requests.Session() as session:
            for _ in range(warmup):
                session.get(url, headers=headers, timeout=30).raise_for_status()
            start = time.perf_counter()
            for _ in range(per_thread):
                if time.monotonic() > deadline:
                    raise RuntimeError("the API benchmark ran past its deadline")
                r = session.get(url, headers=headers, timeout=30)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {url} answered {r.status_code}: {r.text[:200]}")
            return time.perf_counter() - start

    with ThreadPoolExecutor(THREADS) as pool:
        # threads start together; the slowest one bounds the wall time
        start = time.perf_counter()
        list(pool.map(worker, range(THREADS)))
        wall = time.perf_counter() - start
    return per_thread * THREADS / wall


def run(total: int | None = None, rounds: int | None = None, log=print) -> list[Figure]:
    from nshub import Client

    total = total or env_int("BENCH_API_REQUESTS", 400)
    rounds = rounds or env_int("BENCH_ROUNDS", 3)
    warmup = max(2, total // 40)
    with Stack(api=True) as stack:
        floor = stack.start_server("floor")
        with Client(endpoint=stack.api.url, token=stack.token) as client:
            client.push_bytes(b"x" * 1024, NAME, public=True)
        signed = {"Authorization": f"Bearer {stack.token}"}
        cases = {
            "floor": (floor.url + PATH, {}),
            "anonymous": (stack.api.url + PATH, {}),
            "signed in": (stack.api.url + PATH, signed),
        }
        results: dict[str, list[float]] = {k: [] for k in cases}
        order = list(cases)
        for r in range(rounds):
            for case in order[r % 3:] + order[:r % 3]:
                url, headers = cases[case]
                rps = requests_per_second(url, headers, total, warmup)
                results[case].append(rps)
                log(f"  {case}: {rps:.0f} req/s")
    floor_rps = median(results["floor"])
    out = []
    for case in ("anonymous", "signed in"):
        ours = median(results[case])
        label = "anonymous, public" if case == "anonymous" else "signed in"
        out.append(Figure(
            f"API overhead ({label})", round(ours / floor_rps, 2), "x floor req/s", ">= 0.8",
            detail=(f"GET {PATH}: app {ours:.0f} req/s, floor (GetItem + presign) "
                    f"{floor_rps:.0f} req/s; {THREADS} keep-alive clients, {total} requests"),
        ))
    return out
