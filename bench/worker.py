"""The client side of a transfer benchmark, in its own process: `python -m bench.worker CMD ...`.

    push-nshub FILE NAME [again]                          nshub Client.push_file (again: then
                                                          push the same file once more)
    pull-nshub NAME OUT                                   nshub Client.pull_file (sha256 checked)
    push-boto3 FILE BUCKET KEY PART THRESHOLD WORKERS [CHECKSUMS]   boto3 upload_file
    pull-boto3 BUCKET KEY OUT PART THRESHOLD WORKERS      boto3 download_file

Prints one JSON line: `{"seconds": wall time of the transfer call alone, "peak_rss_mib": the
process's VmHWM at the end (imports included)}`. The endpoint, token and AWS settings come
from the environment the benchmark gives it.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time

MiB = 1024 * 1024


def peak_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _s3(checksums: str = "default"):
    """boto3 as it comes (its default part checksums included), SigV4 and path style as
    nshub's. `checksums="none"`: no checksum on the parts, the requests nshub's make."""
    import boto3
    from botocore.config import Config

    extra = {}
    if checksums == "none":
        extra = {"request_checksum_calculation": "when_required",
                 "response_checksum_validation": "when_required"}
    return boto3.session.Session().client(
        "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **extra),
    )


def _transfer_config(part: str, threshold: str, workers: str):
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=int(threshold), multipart_chunksize=int(part),
                          max_concurrency=int(workers), use_threads=True)


def push_nshub(path: str, name: str, again: str = "") -> dict:
    """Also times the phases: hashing the file, PUTting the parts, the `complete` request
    (as the client saw it) and the rest; with `again`, a second push of the same file (an
    unchanged re-push): its time and the bytes it sent to storage."""
    from nshub import Client, settings
    from nshub import client as client_module
    from nshub.digests import CACHE_FILE

    # A cold push, as of a file never pushed before: no digests remembered from a last round
    # (the re-push after it finds the ones this push remembers, as a user's would).
    (settings.home() / CACHE_FILE).unlink(missing_ok=True)

    phases: dict[str, float] = {}

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = time.perf_counter() - t0
        return wrapper

    # small files are hashed whole, large ones whole and per part in the same pass
    client_module.hash_source = timed("hash", client_module.hash_source)
    client_module.hash_source_parts = timed("hash", client_module.hash_source_parts)
    client_module.upload_parts = timed("parts", client_module.upload_parts)
    sent = [0]
    completes: list[float] = []

    def observe(response, *args, **kwargs):
        request = response.request
        if request.method == "PUT":
            sent[0] += int(request.headers.get("Content-Length") or 0)
        elif request.url.split("?")[0].endswith("/complete"):
            completes.append(response.elapsed.total_seconds())

    with Client() as client:
        client.session.hooks["response"].append(observe)
        start = time.perf_counter()
        info = client.push_file(path, name)
        seconds = time.perf_counter() - start
        phases["complete"] = sum(completes)
        phases["api"] = seconds - sum(phases.values())
        result = {"seconds": seconds, "version": info["version"], "size": info["size"],
                  "sent": sent[0], "phases": {k: round(v, 3) for k, v in phases.items()}}
        if again:
            sent[0] = 0
            start = time.perf_counter()
            same = client.push_file(path, name)
            result["again"] = {"seconds": time.perf_counter() - start, "sent": sent[0],
                               "unchanged": bool(same.get("unchanged"))}
    return result


def pull_nshub(name: str, out: str) -> dict:
    from nshub import Client

    with Client() as client:
        start = time.perf_counter()
        client.pull_file(name, out)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "size": os.path.getsize(out)}


def push_boto3(path: str, bucket: str, key: str, part: str, threshold: str, workers: str,
               checksums: str = "default") -> dict:
    s3 = _s3(checksums)
    config = _transfer_config(part, threshold, workers)
    start = time.perf_counter()
    s3.upload_file(path, bucket, key, Config=config)
    return {"seconds": time.perf_counter() - start}


def pull_boto3(bucket: str, key: str, out: str, part: str, threshold: str, workers: str) -> dict:
    s3 = _s3()
    config = _transfer_config(part, threshold, workers)
    start = time.perf_counter()
    s3.download_file(bucket, key, out, Config=config)
    return {"seconds": time.perf_counter() - start, "size": os.path.getsize(out)}


COMMANDS = {"push-nshub": push_nshub, "pull-nshub": pull_nshub,
            "push-boto3": push_boto3, "pull-boto3": pull_boto3}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m bench.worker {{{'|'.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    result = COMMANDS[argv[0]](*argv[1:])
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
