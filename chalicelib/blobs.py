"""Bytes in S3: presigned transfers, multipart bookkeeping, server-side verification.

Clients move bytes straight to and from S3 with presigned URLs (SigV4, at most 15 minutes,
bound to one key). Presigning is local computation: no S3 call. Every PUT URL signs its
Content-Length and its SHA-256, so S3 refuses other bytes; what S3 stored is then checked
without reading it: a single object's SHA-256 (one HEAD), a multipart object's composite
checksum (returned by CompleteMultipartUpload). The whole-object SHA-256 of a multipart
object is not an S3 checksum: `digest_object` streams it, on the event path.
"""
from __future__ import annotations

import base64
import hashlib
import math
import tempfile
from dataclasses import dataclass
from typing import IO, Any, Callable

from chalicelib.config import MiB, get_aws, get_settings

# The most parts the server plans (at 50 GiB: 13 MiB parts, 3,939 of them). Part URLs are
# handed out in batches of PART_URL_BATCH, so no answer grows with the upload's size.
TARGET_MAX_PARTS = 4_000
PART_URL_BATCH = 64
READ_CHUNK = 8 * MiB


MAX_PART_SIZE = 5 * 1024**3  # S3's limit for one part


def plan_parts(size: int, requested: int | None = None) -> tuple[int, int]:
    """(part_size, part_count) for an upload of `size` bytes: one part for small ones, else
    the client's part size when it asked for a valid one (it hashed each part with it)."""
    from chalicelib.errors import InvalidRequest

    settings = get_settings()
    if size <= settings.single_part_max_bytes:
        return max(size, 1), 1
    if requested is None:
        part_size = max(settings.min_part_size, math.ceil(size / TARGET_MAX_PARTS))
        part_size = math.ceil(part_size / MiB) * MiB if part_size >= MiB else part_size
    else:
        part_size = requested
        if not settings.min_part_size <= part_size <= MAX_PART_SIZE or \
                math.ceil(size / part_size) > TARGET_MAX_PARTS:
            raise InvalidRequest(
                f"part_size must be between {settings.min_part_size} and {MAX_PART_SIZE} bytes "
                f"and give at most {TARGET_MAX_PARTS} parts: leave it out to let the server choose"
            )
    return part_size, math.ceil(size / part_size)


def part_length(size: int, part_size: int, part_number: int) -> int:
    start = (part_number - 1) * part_size
    return max(0, min(part_size, size - start))


def hex_to_b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def _presign(method: str, params: dict[str, Any]) -> str:
    settings = get_settings()
    return get_aws().s3.generate_presigned_url(
        method, Params={"Bucket": settings.bucket_name, **params},
        ExpiresIn=settings.url_expires_seconds,
    )


def presign_single_put(key: str, size: int, sha256_hex: str) -> dict[str, Any]:
    """One presigned PUT; S3 enforces the signed length and sha256 of the body."""
    checksum = hex_to_b64(sha256_hex)
    url = _presign("put_object", {"Key": key, "ContentLength": size, "ChecksumSHA256": checksum})
    headers = {"Content-Length": str(size), "x-amz-checksum-sha256": checksum}
    return {"part_number": 1, "url": url, "headers": headers}


def start_multipart(key: str, part_checksums: bool = False) -> str:
    settings = get_settings()
    extra = {"ChecksumAlgorithm": "SHA256"} if part_checksums else {}
    resp = get_aws().s3.create_multipart_upload(Bucket=settings.bucket_name, Key=key, **extra)
    return resp["UploadId"]


def presign_part_urls(key: str, s3_upload_id: str, size: int, part_size: int,
                      numbers: list[int] | None = None,
                      part_sha256: list[str] | None = None) -> list[dict]:
    """One presigned PUT per part, signing its length and, when the client declared them,
    its sha256 (then S3 refuses a part whose bytes differ)."""
    count = math.ceil(size / part_size)
    parts = []
    for number in numbers or range(1, count + 1):
        length = part_length(size, part_size, number)
        params: dict[str, Any] = {"Key": key, "UploadId": s3_upload_id, "PartNumber": number,
                                  "ContentLength": length}
        headers = {"Content-Length": str(length)}
        if part_sha256:
            params["ChecksumSHA256"] = headers["x-amz-checksum-sha256"] = \
                hex_to_b64(part_sha256[number - 1])
        parts.append({"part_number": number, "url": _presign("upload_part", params),
                      "headers": headers})
    return parts


def presign_get(key: str) -> str:
    return _presign("get_object", {"Key": key})


def composite_sha256(part_sha256: list[str]) -> str:
    """S3's checksum of a multipart object uploaded with SHA-256 part checksums: the SHA-256 of
    the concatenated part digests, base64, with `-N` (N parts)."""
    joined = b"".join(bytes.fromhex(h) for h in part_sha256)
    return f"{base64.b64encode(hashlib.sha256(joined).digest()).decode()}-{len(part_sha256)}"


def complete_multipart(key: str, s3_upload_id: str, parts: list[dict],
                       part_sha256: list[str] | None = None) -> str | None:
    """Complete a multipart upload; returns the composite checksum S3 computed from the parts
    it holds (None when the upload was completed by an earlier attempt: ask `stored_checksum`)."""
    from botocore.exceptions import ClientError

    from chalicelib.errors import InvalidRequest

    settings = get_settings()
    try:
        resp = get_aws().s3.complete_multipart_upload(
            Bucket=settings.bucket_name, Key=key, UploadId=s3_upload_id,
            MultipartUpload={"Parts": [
                {"PartNumber": p["part_number"], "ETag": p["etag"],
                 **({"ChecksumSHA256": hex_to_b64(part_sha256[p["part_number"] - 1])}
                    if part_sha256 else {})}
                for p in parts
            ]},
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchUpload" and object_size(key) is not None:
            return None  # completed by an earlier attempt of this same request
        if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload"):
            raise InvalidRequest(
                f"S3 refused the parts ({code}): upload every part and report each ETag"
            ) from None
        raise
    return _qualified(resp.get("ChecksumSHA256"), len(parts))


def _qualified(checksum: str | None, parts: int) -> str | None:
    if checksum and "-" not in checksum:
        return f"{checksum}-{parts}"
    return checksum


@dataclass
class Stored:
    size: int
    checksum_sha256: str | None  # base64; `...-N` for a multipart object


def stored_checksum(key: str) -> Stored | None:
    """What S3 holds at `key`, from one HEAD: size and SHA-256 checksum (None: no object)."""
    from botocore.exceptions import ClientError

    try:
        resp = get_aws().s3.head_object(Bucket=get_settings().bucket_name, Key=key,
                                        ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return Stored(int(resp["ContentLength"]), resp.get("ChecksumSHA256"))


def abort_multipart(key: str, s3_upload_id: str) -> None:
    from botocore.exceptions import ClientError

    try:
        get_aws().s3.abort_multipart_upload(
            Bucket=get_settings().bucket_name, Key=key, UploadId=s3_upload_id
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
            raise


def object_size(key: str) -> int | None:
    from botocore.exceptions import ClientError

    try:
        resp = get_aws().s3.head_object(Bucket=get_settings().bucket_name, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return int(resp["ContentLength"])


def delete_object(key: str) -> None:
    get_aws().s3.delete_object(Bucket=get_settings().bucket_name, Key=key)


def file_digest(path: Any) -> tuple[int, str]:
    """(size, sha256 hex) of a local file, read in bounded pieces."""
    hasher, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(READ_CHUNK), b""):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()


@dataclass
class Digest:
    size: int
    sha256: str
    copy: IO[bytes] | None = None  # a local copy, when one was asked for


def digest_object(key: str, keep_copy: bool = False) -> Digest | None:
    """Stream the stored object once: its real size and sha256 (None when it is missing)."""
    from botocore.exceptions import ClientError

    try:
        resp = get_aws().s3.get_object(Bucket=get_settings().bucket_name, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    hasher, size = hashlib.sha256(), 0
    copy = tempfile.TemporaryFile() if keep_copy else None
    for chunk in _read_ahead(resp["Body"]):
        hasher.update(chunk)
        size += len(chunk)
        if copy is not None:
            copy.write(chunk)
    if copy is not None:
        copy.seek(0)
    return Digest(size=size, sha256=hasher.hexdigest(), copy=copy)


def _read_ahead(body: Any, depth: int = 4) -> Any:
    """The body's chunks, read on a second thread while the caller hashes the previous ones
    (socket reads and sha256 both release the GIL); at most `depth` chunks wait in memory."""
    import queue
    import threading

    chunks: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone

    def reader() -> None:
        try:
            for chunk in iter(lambda: body.read(READ_CHUNK), b""):
                if not offer(chunk):
                    return
            offer(None)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        body.close()
        thread.join(timeout=5)


def put_planned_parts(plan: dict, read: Callable[[int, int], bytes],
                      timeout: float) -> list[dict]:
    """PUT the bytes of an upload to its presigned part URLs from here, as a client would,
    for the server's own pushes (old clients' bodies, operators' imports): `read(offset,
    length)` gives each part's bytes. -> the parts to complete with. Only small uploads come
    this way: every part's URL must be in the start answer."""
    import urllib.request

    if len(plan["parts"]) != plan["parts_total"]:
        raise ValueError(f"{plan['parts_total']} parts is more than one batch of part URLs")
    parts = []
    for part in plan["parts"]:
        length = int(part["headers"]["Content-Length"])
        data = read((part["part_number"] - 1) * plan["part_size"], length)
        # urllib would label the body a form otherwise (and a form is not what was signed)
        headers = {"Content-Type": "application/octet-stream", **part["headers"]}
        put = urllib.request.Request(part["url"], data=data, method="PUT", headers=headers)
        with urllib.request.urlopen(put, timeout=timeout) as resp:  # noqa: S310 - presigned
            parts.append({"part_number": part["part_number"], "etag": resp.headers["ETag"]})
    return parts
