"""Push and pull throughput against boto3 on the same moto server, and the pull's memory.

Each transfer runs in a fresh client process (`bench.worker`): moto, the app and the client
are three processes. boto3 gets the part size and concurrency nshub uses: the part size the
server plans for this size (`chalicelib.blobs.plan_parts`), a multipart threshold just above
the single-part limit, and NSHUB_MAX_WORKERS (8) threads. Runs rotate the sides and each
side's median is taken. The ratio is boto3's time over ours (1.0 = as fast as boto3).

nshub's push includes what boto3's does not do: hashing the file (whole and per part) before
upload, and `complete` comparing S3's stored checksums with the declared ones (it never reads
the object). Its pull verifies the sha256 of what it wrote; boto3's does not. The moto
server is made faithful (devstack/motofix.py): it checks presigned signatures and
checksums, and serves a ranged GET without copying the object.

Also measured: an unchanged re-push of the same file (each push is cold: no digests remembered
from a last round; the re-push after it uses the ones it remembered, nshub/digests.py),
`complete`'s time at two sizes, and the asynchronous verification (hashing the stored object, as the blob event function does).
"""
from __future__ import annotations

import time

from bench.report import Figure
from bench.stack import MiB, Stack, make_file, median, remove, run_worker, work_dir
from nshub.digests import RACY_SECONDS


def paired_ratio(floor: list[float], ours: list[float]) -> float:
    """The median of the rounds' ratios, each of two runs back to back: moto slows and speeds
    up over a run (its memory, the machine's other work), which a ratio of the two sides'
    medians, taken at different times, would count as a difference between them."""
    return median([f / o for f, o in zip(floor, ours)])

PUSH_NAME = "alice/bench-push"
PULL_NAME = "alice/bench-pull"
FLOOR_KEY = "bench/floor"


def _plan(stack: Stack, size: int) -> tuple[int, int, int]:
    """(part_size, multipart_threshold, workers) nshub uses for `size` bytes."""
    from chalicelib import blobs
    from chalicelib.config import get_settings
    from nshub import settings as client_settings

    with stack.apply():
        part_size, _ = blobs.plan_parts(size)
        threshold = get_settings().single_part_max_bytes + 1
    return part_size, threshold, client_settings.max_workers()


def _delete_prefix(s3, bucket: str, prefix: str) -> None:
    """Free moto's memory/disk between runs: drop what the last run stored."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])


def _blob_prefix(name: str) -> str:
    from chalicelib import keys

    ns, short = name.split("/")
    return keys.blob_key("array", ns, short, "x")[:-1]


def _mbps(size: int, seconds: float) -> str:
    return f"{size / MiB / seconds:.0f} MiB/s"


def _verification(stack: Stack, source, size: int, log) -> Figure:
    """Push once more, then run the event path's verification of that version here (what
    on_blob_event does for the request the table stream queued), timed."""
    import time

    from chalicelib import integrity, keys
    from chalicelib.store import resources

    name = f"{PUSH_NAME}-verify"
    res = run_worker(stack.client_env(), "push-nshub", str(source), name)
    ns, short = name.split("/")
    with stack.apply():
        pk = keys.resource_pk(ns, short)
        head = resources.read_head(pk, "array", consistent=True)
        sk = keys.version_sk("array", head.generation, int(res["version"]))
        start = time.perf_counter()
        state = integrity.verify_version(pk, sk)
        seconds = time.perf_counter() - start
    log(f"  verification: {state} in {seconds:.2f} s")
    assert state == "verified", state
    return Figure(
        "complete to verified (asynchronous)", round(seconds, 2), "s", "report",
        detail=(f"{size // MiB} MiB: the blob event function streams and hashes the object "
                f"({_mbps(size, seconds)}); add the queue's delivery (the table stream, then "
                f"SQS: about a second on AWS)"))


def run(push_mib: int, pull_mib: int, push_rounds: int = 5, pull_rounds: int = 3,
        log=print) -> list[Figure]:
    try:
        return _run(push_mib, pull_mib, push_rounds, pull_rounds, log)
    finally:
        remove(work_dir("files"))  # GiBs of random bytes: not left behind


def _run(push_mib: int, pull_mib: int, push_rounds: int, pull_rounds: int,
         log) -> list[Figure]:
    figures: list[Figure] = []
    with Stack(api=True) as stack:
        env = stack.client_env()
        bucket = stack.env["NSHUB_BUCKET"]
        s3 = stack.boto("s3")
        # The app's first push imports boto3 and pynamodb: a cold start, not throughput.
        warm = make_file(work_dir("files") / "warm.bin", 1024)
        run_worker(env, "push-nshub", str(warm), "alice/bench-warm")

        # ---- push (a fresh name per round: the same bytes again would be unchanged)
        size = push_mib * MiB
        source = make_file(work_dir("files") / f"push-{push_mib}MiB.bin", size)
        # a file written less than RACY_SECONDS ago is not remembered (nshub/digests.py)
        time.sleep(max(0.0, RACY_SECONDS + 0.5 - (time.time() - source.stat().st_ctime)))
        part, threshold, workers = _plan(stack, size)
        plan = [str(part), str(threshold), str(workers)]
        times: dict[str, list[float]] = {"ours": [], "floor": []}
        phases, agains = [], []
        for r in range(push_rounds):
            for side in (("ours", "floor") if r % 2 == 0 else ("floor", "ours")):
                if side == "ours":
                    name = f"{PUSH_NAME}-{r}"
                    res = run_worker(env, "push-nshub", str(source), name, "again")
                    _delete_prefix(s3, bucket, _blob_prefix(name))
                    phases.append(res["phases"])
                    agains.append(res["again"])
                else:
                    res = run_worker(env, "push-boto3", str(source), bucket, FLOOR_KEY, *plan)
                    s3.delete_object(Bucket=bucket, Key=FLOOR_KEY)
                times[side].append(res["seconds"])
                log(f"  push {side}: {res['seconds']:.2f}s {res.get('phases', '')} "
                    f"{res.get('again', '')}")
        t_ours, t_floor = median(times["ours"]), median(times["floor"])
        split = {k: median([p[k] for p in phases]) for k in ("hash", "parts", "complete", "api")}
        figures.append(Figure(
            "push throughput", round(paired_ratio(times["floor"], times["ours"]), 2),
            "x boto3", ">= 0.95",
            detail=(f"{push_mib} MiB, {part // MiB} MiB parts, {workers} workers: nshub "
                    f"{t_ours:.1f} s ({_mbps(size, t_ours)}: hash {split['hash']:.1f} s, "
                    f"parts {split['parts']:.1f} s, complete {split['complete']:.2f} s, start "
                    f"{split['api']:.2f} s), boto3 upload_file {t_floor:.1f} s "
                    f"({_mbps(size, t_floor)})"),
        ))
        t_again = median([a["seconds"] for a in agains])
        sent_again = max(a["sent"] for a in agains)
        assert all(a["unchanged"] for a in agains), agains
        figures.append(Figure(
            "unchanged re-push", round(t_again / t_ours, 3), "x push time", "<= 0.15",
            detail=(f"the same {push_mib} MiB pushed again: {t_again:.2f} s (its digests "
                    f"remembered from the push, one request), {sent_again} bytes sent; a push "
                    f"{t_ours:.1f} s"),
        ))
        if sent_again:
            figures[-1].met = False

        # ---- complete at two sizes: it checks S3's checksums, never reads the object
        small = make_file(work_dir("files") / "push-16MiB.bin", 16 * MiB)
        small_completes = []
        for r in range(push_rounds):
            name = f"{PUSH_NAME}-small-{r}"
            res = run_worker(env, "push-nshub", str(small), name)
            _delete_prefix(s3, bucket, _blob_prefix(name))
            small_completes.append(res["phases"]["complete"])
        c_small = median(small_completes)
        figures.append(Figure(
            "complete wall time, large vs 16 MiB", round(split["complete"] / c_small, 2),
            "x", "<= 1.5",
            detail=(f"{push_mib} MiB ({-(-size // part)} parts): {split['complete']:.3f} s, "
                    f"16 MiB (one part): {c_small:.3f} s, medians as the client saw them; the "
                    f"large one includes the store's CompleteMultipartUpload"),
        ))

        # ---- asynchronous verification of the large push: the event path's hashing
        figures.append(_verification(stack, source, size, log))

        # ---- pull
        size = pull_mib * MiB
        source = make_file(work_dir("files") / f"pull-{pull_mib}MiB.bin", size)
        part, threshold, workers = _plan(stack, size)
        plan = [str(part), str(threshold), str(workers)]
        run_worker(env, "push-nshub", str(source), PULL_NAME)
        keys = [o["Key"] for o in s3.list_objects_v2(
            Bucket=bucket, Prefix=_blob_prefix(PULL_NAME)).get("Contents", [])]
        assert len(keys) == 1, keys
        out = work_dir("files") / "pulled.bin"
        ours, floor, rss, floor_rss = [], [], [], []
        try:
            for r in range(pull_rounds):
                for side in (("ours", "floor") if r % 2 == 0 else ("floor", "ours")):
                    remove(out)
                    if side == "ours":
                        res = run_worker(env, "pull-nshub", PULL_NAME, str(out))
                        ours.append(res["seconds"])
                        rss.append(res["peak_rss_mib"])
                    else:
                        res = run_worker(env, "pull-boto3", bucket, keys[0], str(out), *plan)
                        floor.append(res["seconds"])
                        floor_rss.append(res["peak_rss_mib"])
                    assert res["size"] == size, res
                    log(f"  pull {side}: {res['seconds']:.2f}s, peak RSS "
                        f"{res['peak_rss_mib']:.0f} MiB")
        finally:
            remove(out)
            _delete_prefix(s3, bucket, _blob_prefix(PULL_NAME))
        t_ours, t_floor = median(ours), median(floor)
        figures.append(Figure(
            "pull throughput", round(paired_ratio(floor, ours), 2), "x boto3", ">= 0.9",
            detail=(f"{pull_mib} MiB: nshub {t_ours:.1f} s ({_mbps(size, t_ours)}, 16 MiB ranges,"
                    f" {workers} workers, sha256 checked in order), boto3 download_file "
                    f"{t_floor:.1f} s ({_mbps(size, t_floor)}, {part // MiB} MiB ranges, "
                    f"{workers} workers); moto serves a range without copying the object"),
        ))
        figures.append(Figure(
            "pull memory", round(max(rss), 1), "MiB", "<= 150",
            detail=f"peak RSS of the client process pulling {pull_mib} MiB (boto3's: "
                   f"{max(floor_rss):.0f} MiB)",
        ))
    return figures
