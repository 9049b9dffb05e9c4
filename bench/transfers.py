"""Push and pull throughput against boto3 on the same moto server, and the pull's memory.

Each transfer runs in a fresh client process (`bench.worker`): moto, the app and the client
are three processes. boto3 gets the part size and concurrency nshub uses: the part size the
server plans for this size (`chalicelib.blobs.plan_parts`), a multipart threshold just above
the single-part limit, and NSHUB_MAX_WORKERS (8) threads. Runs rotate the sides and each
side's median is taken. The ratio is boto3's time over ours (1.0 = as fast as boto3).

nshub's push includes what boto3's does not do: hashing the file before upload, and the
server verifying size and sha256 of the stored object at `complete` (it reads it back). Its
pull verifies the sha256 of what it wrote; boto3's does not.

Two things of moto's weigh on these figures (README, Performance, says how much):
- boto3 puts a CRC32 on every part by default; nshub's presigned parts carry none, and moto
  completes a multipart upload without part checksums by building a second copy of the object.
  A third push side, boto3 with its part checksums off, makes the same requests as nshub.
- moto answers a ranged GET by copying the whole object, so boto3's parallel ranged download
  costs it the object's size per range; nshub's pull is one stream.
"""
from __future__ import annotations

from bench.report import Figure
from bench.stack import MiB, Stack, make_file, median, remove, run_worker, work_dir

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

        # ---- push
        size = push_mib * MiB
        source = make_file(work_dir("files") / f"push-{push_mib}MiB.bin", size)
        part, threshold, workers = _plan(stack, size)
        plan = [str(part), str(threshold), str(workers)]
        times: dict[str, list[float]] = {"ours": [], "floor": [], "bare": []}
        phases = []
        sides = list(times)
        for r in range(push_rounds):
            for side in sides[r % 3:] + sides[:r % 3]:
                if side == "ours":
                    res = run_worker(env, "push-nshub", str(source), PUSH_NAME)
                    _delete_prefix(s3, bucket, _blob_prefix(PUSH_NAME))
                    phases.append(res["phases"])
                else:
                    checksums = "default" if side == "floor" else "none"
                    res = run_worker(env, "push-boto3", str(source), bucket, FLOOR_KEY, *plan,
                                     checksums)
                    s3.delete_object(Bucket=bucket, Key=FLOOR_KEY)
                times[side].append(res["seconds"])
                log(f"  push {side}: {res['seconds']:.2f}s {res.get('phases', '')}")
        t_ours, t_floor, t_bare = (median(times[k]) for k in sides)
        split = {k: median([p[k] for p in phases]) for k in ("hash", "parts", "api")}
        figures.append(Figure(
            "push throughput", round(t_floor / t_ours, 2), "x boto3", ">= 0.9",
            detail=(f"{push_mib} MiB, {part // MiB} MiB parts, {workers} workers: nshub "
                    f"{t_ours:.1f} s ({_mbps(size, t_ours)}: hash {split['hash']:.1f} s, "
                    f"parts {split['parts']:.1f} s, start + complete {split['api']:.1f} s), "
                    f"boto3 upload_file {t_floor:.1f} s ({_mbps(size, t_floor)})"),
        ))
        figures.append(Figure(
            "push throughput, boto3 without part checksums", round(t_bare / t_ours, 2),
            "x boto3", "report",
            detail=(f"boto3 sending the requests nshub's parts are (no per-part checksum; moto "
                    f"then completes the upload the slower way, as for nshub): "
                    f"{t_bare:.1f} s ({_mbps(size, t_bare)})"),
        ))

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
            "pull throughput", round(t_floor / t_ours, 2), "x boto3", ">= 0.9",
            detail=(f"{pull_mib} MiB: nshub {t_ours:.1f} s ({_mbps(size, t_ours)}, one stream, "
                    f"sha256 checked), boto3 download_file {t_floor:.1f} s "
                    f"({_mbps(size, t_floor)}, {part // MiB} MiB ranges, {workers} workers)"),
        ))
        figures.append(Figure(
            "pull memory", round(max(rss), 1), "MiB", "<= 150",
            detail=f"peak RSS of the client process pulling {pull_mib} MiB (boto3's: "
                   f"{max(floor_rss):.0f} MiB)",
        ))
    return figures
