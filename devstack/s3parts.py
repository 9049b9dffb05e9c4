"""moto's CompleteMultipartUpload at S3's cost: it no longer copies the object.

S3 completes a multipart upload without reading it back, in a time that does not depend on its
size: the parts' checksums were computed as they arrived, and the object is made of the parts.
moto concatenates every part into one new buffer (and, without a requested algorithm, checksums
the whole of it), so locally a 512 MiB complete cost seconds and the benchmark could not tell
nshub's O(1) complete from an O(n) one. Here:

- a part's checksum, in the algorithm its upload asked for, is computed when the part arrives
  (the presigned-PUT check in devstack/motofix.py hands over the SHA-256 it already computed);
- the completed object is a read-only view of its parts' buffers in order (`PartsBuffer`),
  which every read of a FakeKey (`value`, a ranged GET, the ETag) goes through unchanged; the
  parts live as long as the object (moto would dispose them with the finished upload).

What moto checks at complete stays: unknown or stale part ETags (InvalidPart), a part other than
the last below 5 MiB (EntityTooSmall), no part at all (MalformedXML), parts out of order
(InvalidPartOrder). Added, as S3 (and LocalStack) does: each part's checksum in the complete
request must be the one stored with the part (InvalidPart), and must be there when the upload
asked for an algorithm (InvalidRequest); parts uploaded but not listed are discarded. A FULL_OBJECT checksum
(CRC64NVME, moto's default when no algorithm was asked for) needs the whole object: it is
computed by streaming the parts, still without a copy.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import threading
from typing import Any, Iterator

_SENT_SHA256 = threading.local()  # the part body's SHA-256, base64, as just checked


def remember_body_sha256(value: str | None) -> None:
    """The presigned-PUT check verified this body's SHA-256: the part need not hash it again."""
    _SENT_SHA256.value = value


def _take_body_sha256() -> str | None:
    value = getattr(_SENT_SHA256, "value", None)
    _SENT_SHA256.value = None
    return value


class Parts:
    """What the patched complete hands to put_object instead of the concatenated bytes."""

    def __init__(self, parts: list[Any]):
        self.parts = parts
        self.size = sum(int(p.contentsize) for p in parts)


class PartsBuffer:
    """The completed object's bytes: its parts' buffers read in order, never copied into one."""

    def __init__(self, parts: list[Any]):
        self._parts = parts
        self._starts = []
        offset = 0
        for part in parts:
            self._starts.append(offset)
            offset += int(part.contentsize)
        self._size = offset
        self._pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        chunks = []
        for part, start in zip(self._parts, self._starts):
            stop = start + int(part.contentsize)
            if stop <= self._pos or start >= end:
                continue
            part._value_buffer.seek(max(self._pos, start) - start)
            chunks.append(part._value_buffer.read(min(end, stop) - max(self._pos, start)))
        self._pos = max(self._pos, end)
        return b"".join(chunks)

    def close(self) -> None:
        """The object is gone (FakeKey.dispose): so are its parts."""
        for part in self._parts:
            part.dispose()


def _part_checksum(part: Any, algorithm: str) -> bytes:
    from moto.s3.utils import compute_checksum

    cached = getattr(part, "_nshub_checksum", None)
    if cached is not None and cached[0] == algorithm:
        return cached[1]
    return compute_checksum(part.value, algorithm, encode_base64=False)


CHECKSUM_NAMES = ("SHA256", "SHA1", "CRC32", "CRC32C", "CRC64NVME")


def _check_part_checksum(part: Any, number: int, requested: str | None, kind: str,
                         sent: dict[str, str]) -> None:
    """S3's rules for the checksums a complete request lists for a part: none unless the
    upload asked for an algorithm; then, for a composite checksum, that algorithm's, equal to
    the one stored with the part."""
    from moto.s3.exceptions import InvalidPart, S3ClientError

    if not requested:
        if sent:
            raise InvalidPart()
        return
    algorithm = requested.upper()
    if kind != "COMPOSITE":
        return
    value = sent.get(algorithm)
    if value is None:
        if sent:
            raise S3ClientError("BadDigest", f"The {next(iter(sent)).lower()} you specified "
                                f"for part {number} did not match what we received.")
        raise S3ClientError("InvalidRequest", f"The upload was created using a "
                            f"{algorithm.lower()} checksum. The complete request must include "
                            f"the checksum for each part. It was missing for part {number} in "
                            "the request.")
    if value != base64.b64encode(_part_checksum(part, algorithm)).decode():
        raise InvalidPart()


def _full_object_checksum(algorithm: str, buffers: Iterator[bytes]) -> str:
    """The whole object's checksum, streamed, computed as moto's `compute_checksum` would (which
    falls back to CRC32 where awscrt or crc32c is not installed)."""
    if algorithm not in ("SHA1", "CRC32", "CRC32C", "CRC64NVME"):
        algorithm = "SHA256"
    if algorithm in ("SHA1", "SHA256"):
        digest = hashlib.new(algorithm.lower())
        for chunk in buffers:
            digest.update(chunk)
        return base64.b64encode(digest.digest()).decode()
    step, width = (lambda chunk, crc: binascii.crc32(chunk, crc)), 4
    try:
        if algorithm == "CRC64NVME":
            from awscrt import checksums

            step, width = checksums.crc64nvme, 8
        elif algorithm == "CRC32C":
            import crc32c

            step = crc32c.crc32c
    except ImportError:
        pass
    crc = 0
    for chunk in buffers:
        crc = step(chunk, crc)
    return base64.b64encode(crc.to_bytes(width, "big")).decode()


def _chunks(parts: list[Any], size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    buffer = PartsBuffer(parts)
    while chunk := buffer.read(size):
        yield chunk


def install() -> None:
    from moto.s3.exceptions import EntityTooSmall, InvalidPart, InvalidPartOrder, MalformedXML
    from moto.s3.responses import S3Response
    from moto.s3 import models as s3_models
    from moto.s3.models import FakeKey, FakeMultipart
    from moto.utilities.utils import md5_hash

    if getattr(FakeMultipart.complete, "_nshub_cheap", False):
        return
    stored_value = FakeKey.value
    original_set_part = FakeMultipart.set_part
    original_dispose = FakeMultipart.dispose

    def set_part(self, part_id: int, value: bytes):
        key = original_set_part(self, part_id, value)
        algorithm = self.metadata.get("x-amz-checksum-algorithm")
        sent = _take_body_sha256()
        if algorithm and (self.metadata.get("x-amz-checksum-type") or "COMPOSITE") != "FULL_OBJECT":
            from moto.s3.utils import compute_checksum

            algorithm = algorithm.upper()
            raw = (base64.b64decode(sent) if sent and algorithm == "SHA256"
                   else compute_checksum(value, algorithm, encode_base64=False))
            key._nshub_checksum = (algorithm, raw)
        key.etag  # S3 answers each part with its ETag: computed now, not at complete
        return key

    def complete(self, body):
        requested = self.metadata.get("x-amz-checksum-algorithm")
        algorithm = (requested or "CRC64NVME").upper()
        kind = self.metadata.get("x-amz-checksum-type") or (
            "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE")
        decode_hex = codecs.getdecoder("hex_codec")
        md5s, checksums, parts, last = bytearray(), bytearray(), [], None
        for number, etag, *sent in body:
            part = self.parts.get(number)
            if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
                raise InvalidPart()
            _check_part_checksum(part, number, requested, kind, sent[0] if sent else {})
            if last is not None and last.contentsize < s3_models.S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            md5s.extend(decode_hex(part.etag.replace('"', ""))[0])
            if kind == "COMPOSITE":
                checksums.extend(_part_checksum(part, algorithm))
            parts.append(part)
            last = part
        if not parts:
            raise MalformedXML
        full_etag = md5_hash()
        full_etag.update(bytes(md5s))
        if kind == "COMPOSITE":
            from moto.s3.utils import compute_checksum

            checksum = (kind, compute_checksum(bytes(checksums), algorithm).decode(), len(parts))
        else:
            checksum = (kind, _full_object_checksum(algorithm, _chunks(parts)), 1)
        listed = {id(part) for part in parts}
        for unlisted in [p for p in self.parts.values() if id(p) not in listed]:
            unlisted.dispose()  # S3 discards the parts a complete leaves out
        self._nshub_completed = True  # its parts are the object's now, see dispose
        return Parts(parts), f"{full_etag.hexdigest()}-{len(parts)}", checksum

    def dispose(self):
        """moto disposes a multipart upload as it completes: its parts are the object now, and
        the object's buffer (PartsBuffer.close) disposes them when the object goes."""
        if not getattr(self, "_nshub_completed", False):
            original_dispose(self)

    def value_setter(self, new_value):
        if isinstance(new_value, Parts):
            self._value_buffer.close()
            self._value_buffer = PartsBuffer(new_value.parts)
            self.contentsize = new_value.size
            return
        stored_value.fset(self, new_value)

    def complete_multipart_body(self, body: bytes):
        """moto's parser of the complete request, which also reads each part's checksums."""
        from xml.dom import minidom

        previous = 0
        for element in minidom.parseString(body).getElementsByTagName("Part"):
            def text(tag: str) -> str | None:
                found = element.getElementsByTagName(tag)
                return found[0].firstChild.wholeText if found and found[0].firstChild else None

            number = int(text("PartNumber") or 0)
            if number <= previous:
                raise InvalidPartOrder()
            previous = number
            sent = {name: text(f"Checksum{name}") for name in CHECKSUM_NAMES}
            yield number, text("ETag") or "", {k: v for k, v in sent.items() if v}

    complete._nshub_cheap = True  # type: ignore[attr-defined]
    S3Response._complete_multipart_body = complete_multipart_body
    FakeMultipart.set_part = set_part
    FakeMultipart.complete = complete
    FakeMultipart.dispose = dispose
    FakeKey.value = property(stored_value.fget, value_setter)
