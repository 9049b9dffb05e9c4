"""One conformance suite, two S3s: the dev stack's moto (made faithful by devstack/motofix.py)
must refuse and answer exactly what LocalStack's S3 does, for the requests nshub's presigned
URLs make. What nshub's integrity relies on:

- a presigned PUT signs Content-Length and x-amz-checksum-sha256: another body is 400
  BadDigest, another length 403, a tampered or expired URL 403;
- the checksum of a presigned PUT is stored (HEAD with ChecksumMode returns it);
- a multipart upload with SHA-256 part checksums completes with the composite `...-N`;
- a ranged GET returns exactly the range.

LocalStack runs from its own virtualenv under ~/.cache (devstack/localstack.py installs it once).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os

import pytest
import requests
from botocore.exceptions import ClientError

MiB = 1024 * 1024


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture(scope="session")
def localstack_endpoint(tmp_path_factory):
    from devstack.localstack import LocalStack

    with LocalStack(log_path=tmp_path_factory.mktemp("localstack") / "log.txt") as stack:
        yield stack.endpoint


@pytest.fixture(params=["moto", "localstack"])
def s3(request, moto_server):
    import boto3
    from botocore.config import Config

    if request.param == "moto":
        endpoint, secret = moto_server, "testing"
    else:
        endpoint, secret = request.getfixturevalue("localstack_endpoint"), "test"
    client = boto3.session.Session(
        aws_access_key_id=secret, aws_secret_access_key=secret, region_name="us-east-1",
    ).client("s3", endpoint_url=endpoint, config=Config(
        signature_version="s3v4", s3={"addressing_style": "path"}))
    bucket = f"conformance-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    return client


def presigned_put(s3, key: str, data: bytes, **extra) -> tuple[str, dict]:
    url = s3.generate_presigned_url("put_object", Params={
        "Bucket": s3.bucket, "Key": key, "ContentLength": len(data),
        "ChecksumSHA256": b64sha(data)}, **extra)
    return url, {"Content-Length": str(len(data)), "x-amz-checksum-sha256": b64sha(data)}


def code(response: requests.Response) -> tuple[int, str]:
    text = response.text
    found = text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else ""
    return response.status_code, found


def test_a_presigned_put_stores_exactly_the_signed_bytes(s3):
    data = os.urandom(1000)
    url, headers = presigned_put(s3, "k", data)
    assert requests.put(url, data=data, headers=headers, timeout=30).status_code == 200
    head = s3.head_object(Bucket=s3.bucket, Key="k", ChecksumMode="ENABLED")
    assert (head["ContentLength"], head["ChecksumSHA256"]) == (1000, b64sha(data))


def test_other_bytes_are_refused(s3):
    data = os.urandom(1000)
    url, headers = presigned_put(s3, "k", data)
    r = requests.put(url, data=os.urandom(1000), headers=headers, timeout=30)
    assert code(r) == (400, "BadDigest")
    shorter = {"x-amz-checksum-sha256": headers["x-amz-checksum-sha256"]}
    r = requests.put(url, data=data[:999], headers=shorter, timeout=30)
    assert r.status_code == 403
    r = requests.put(url.replace("/k?", "/other?"), data=data, headers=headers, timeout=30)
    assert code(r) == (403, "SignatureDoesNotMatch")
    missing = {"Content-Length": headers["Content-Length"]}
    assert requests.put(url, data=data, headers=missing, timeout=30).status_code == 403
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        s3.head_object(Bucket=s3.bucket, Key="k")


def test_an_expired_url_is_refused(s3, monkeypatch):
    import botocore.auth

    an_hour_ago = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(hours=1)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: an_hour_ago)
    data = os.urandom(100)
    url, headers = presigned_put(s3, "k", data, ExpiresIn=900)
    monkeypatch.undo()
    r = requests.put(url, data=data, headers=headers, timeout=30)
    assert r.status_code == 403


def test_multipart_parts_are_checked_and_complete_returns_the_composite(s3):
    data = os.urandom(11 * MiB)
    size = 5 * MiB
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    upload = s3.create_multipart_upload(Bucket=s3.bucket, Key="m",
                                        ChecksumAlgorithm="SHA256")["UploadId"]
    parts = []
    for number, chunk in enumerate(chunks, 1):
        url = s3.generate_presigned_url("upload_part", Params={
            "Bucket": s3.bucket, "Key": "m", "UploadId": upload, "PartNumber": number,
            "ContentLength": len(chunk), "ChecksumSHA256": b64sha(chunk)})
        headers = {"Content-Length": str(len(chunk)), "x-amz-checksum-sha256": b64sha(chunk)}
        wrong = os.urandom(len(chunk))
        assert code(requests.put(url, data=wrong, headers=headers, timeout=60)) == (
            400, "BadDigest")
        r = requests.put(url, data=chunk, headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        parts.append({"PartNumber": number, "ETag": r.headers["ETag"],
                      "ChecksumSHA256": b64sha(chunk)})
    # the complete request names each part's checksum, the one the part was stored with
    wrong_checksum = [{**parts[0], "ChecksumSHA256": b64sha(b"other")}, *parts[1:]]
    no_checksum = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
    for listed, refusal in ((wrong_checksum, "InvalidPart"), (no_checksum, "InvalidRequest"),
                            (parts[::-1], "InvalidPartOrder")):
        with pytest.raises(ClientError) as refused:
            s3.complete_multipart_upload(Bucket=s3.bucket, Key="m", UploadId=upload,
                                         MultipartUpload={"Parts": listed})
        assert refused.value.response["Error"]["Code"] == refusal
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    done = s3.complete_multipart_upload(Bucket=s3.bucket, Key="m", UploadId=upload,
                                        MultipartUpload={"Parts": parts})
    joined = b"".join(hashlib.sha256(c).digest() for c in chunks)
    composite = f"{base64.b64encode(hashlib.sha256(joined).digest()).decode()}-{len(chunks)}"
    got = done["ChecksumSHA256"]
    assert (got if "-" in got else f"{got}-{len(chunks)}") == composite
    head = s3.head_object(Bucket=s3.bucket, Key="m", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == composite and head["ContentLength"] == len(data)

    url = s3.generate_presigned_url("get_object", Params={"Bucket": s3.bucket, "Key": "m"})
    r = requests.get(url, headers={"Range": f"bytes={6 * MiB}-{6 * MiB + 99}"}, timeout=60)
    assert r.status_code == 206 and r.content == data[6 * MiB: 6 * MiB + 100]
    assert r.headers["Content-Range"] == f"bytes {6 * MiB}-{6 * MiB + 99}/{len(data)}"


@pytest.mark.parametrize("algorithm", [None, "CRC32", "SHA256"])
def test_a_completed_multipart_object_reads_back_whole_and_by_range(s3, algorithm):
    """moto completes without copying the parts (devstack/s3parts.py): the object still reads
    back byte for byte, across part boundaries, with S3's ETag, and is replaced like any other."""
    data = os.urandom(11 * MiB + 123)
    chunks = [data[i:i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    asked = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    upload = s3.create_multipart_upload(Bucket=s3.bucket, Key="w", **asked)["UploadId"]
    parts = []
    for number, chunk in enumerate(chunks, 1):
        r = s3.upload_part(Bucket=s3.bucket, Key="w", UploadId=upload, PartNumber=number,
                           Body=chunk, **asked)
        part = {"PartNumber": number, "ETag": r["ETag"]}
        if algorithm:
            part[f"Checksum{algorithm}"] = r[f"Checksum{algorithm}"]
        parts.append(part)
    done = s3.complete_multipart_upload(Bucket=s3.bucket, Key="w", UploadId=upload,
                                        MultipartUpload={"Parts": parts})
    md5s = b"".join(hashlib.md5(c).digest() for c in chunks)
    assert done["ETag"].strip('"') == f"{hashlib.md5(md5s).hexdigest()}-{len(chunks)}"
    whole = s3.get_object(Bucket=s3.bucket, Key="w")
    assert whole["ContentLength"] == len(data) and whole["Body"].read() == data
    for start, stop in [(5 * MiB - 10, 5 * MiB + 9), (0, 0), (len(data) - 5, len(data) - 1),
                        (MiB, 10 * MiB + 7)]:
        got = s3.get_object(Bucket=s3.bucket, Key="w", Range=f"bytes={start}-{stop}")
        assert got["Body"].read() == data[start:stop + 1]
    s3.put_object(Bucket=s3.bucket, Key="w", Body=b"replaced")
    assert s3.get_object(Bucket=s3.bucket, Key="w")["Body"].read() == b"replaced"
