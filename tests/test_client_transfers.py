"""Push and pull against a fake hub: parts, retries, resumes and integrity."""
from __future__ import annotations

import hashlib
import logging
import os
import traceback

import pytest

from nshub import Client, Retry
from nshub.errors import (
    IntegrityError,
    InvalidRequest,
    NshubError,
    ServerUnreachable,
    StorageError,
    UnexpectedResponse,
)
from tests.fake_http import alice, hub, waits  # noqa: F401  (fixtures)

# The fake hub: one part up to 64 bytes, then parts of 32 bytes.
SIZES = [0, 1, 63, 64, 65, 96, 97, 300]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", SIZES)
def test_push_and_pull_round_trip(alice, hub, tmp_path, size):
    data = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    info = alice.push_file(source, "alice/blob", metadata={"size": size})

    assert (info["size"], info["sha256"], info["metadata"]) == (size, sha(data), {"size": size})
    plan = hub.uploads[max(hub.uploads, key=lambda k: int(k[2:]))]["plan"]
    assert len(plan) == (1 if size <= 64 else -(-size // 32))
    target = alice.pull_file("alice/blob", tmp_path / "out" / "copy.bin")
    assert target == tmp_path / "out" / "copy.bin" and target.read_bytes() == data
    assert alice.pull_bytes("alice/blob") == data
    assert not (tmp_path / "out" / "copy.bin.part").exists()


def test_push_sends_size_sha_visibility_and_metadata(alice, hub):
    info = alice.push_bytes(b"hello", "alice/greeting", public=True, metadata={"lang": "en"})
    request = next(iter(hub.uploads.values()))["request"]
    assert request == {"size": 5, "sha256": sha(b"hello"), "visibility": "public",
                       "metadata": {"lang": "en"}}
    assert info["visibility"] == "public"
    alice.push_bytes(b"hello again", "alice/greeting")
    assert "visibility" not in list(hub.uploads.values())[-1]["request"]  # unchanged


def test_pull_into_a_folder_uses_the_array_name(alice, tmp_path, monkeypatch):
    alice.push_bytes(b"abc", "alice/letters")
    assert alice.pull_file("alice/letters", tmp_path).read_bytes() == b"abc"
    assert (tmp_path / "letters").exists()
    (tmp_path / "letters").unlink()
    monkeypatch.chdir(tmp_path)
    assert alice.pull_file("alice/letters") == tmp_path / "letters"


def test_versions_and_pull_of_an_older_version(alice):
    alice.push_bytes(b"one", "alice/v")
    alice.push_bytes(b"two", "alice/v")
    assert [v["version"] for v in alice.versions("alice/v")] == [2, 1]
    assert alice.pull_bytes("alice/v", version=1) == b"one"
    assert alice.info("alice/v")["version"] == 2


def test_list_follows_every_page(alice, hub, monkeypatch):
    import nshub.client

    monkeypatch.setattr(nshub.client, "_PAGE_LIMIT", 2)
    for i in range(5):
        alice.push_bytes(b"x", f"alice/a{i}")
    assert [i["name"] for i in alice.list("alice")] == [f"a{i}" for i in range(5)]
    assert len(hub.calls("GET", "/v1/arrays/alice?")) == 3
    assert [i["name"] for i in alice.list("alice", limit=3)] == ["a0", "a1", "a2"]


def test_visibility_metadata_and_delete(alice):
    alice.push_bytes(b"x", "alice/thing")
    assert alice.set_visibility("alice/thing", "public")["visibility"] == "public"
    assert alice.set_metadata("alice/thing", {"k": "v"})["metadata"] == {"k": "v"}
    anonymous = Client(token=False)
    assert anonymous.pull_bytes("alice/thing") == b"x"
    alice.delete("alice/thing")
    assert alice.list("alice") == []


def test_legacy_arrays_are_pulled_by_bare_name(alice, hub):
    hub.add_legacy("fashion_mnist", b"old bytes")
    assert Client(token=False).pull_bytes("fashion_mnist") == b"old bytes"
    assert alice.info("fashion_mnist")["legacy"] is True
    assert [v["version"] for v in alice.versions("fashion_mnist")] == [1]


# --- retries -------------------------------------------------------------------------


def test_an_api_503_is_retried_honouring_retry_after(alice, hub, waits):
    alice.push_bytes(b"x", "alice/r")
    hub.fail("GET", "/v1/arrays/alice/r", 503, times=2, retry_after="7")
    assert alice.info("alice/r")["size"] == 1
    assert waits == [7.0, 7.0]


def test_backoff_grows_and_gives_up(hub, alice, waits):
    hub.fail("GET", "/v1/arrays/alice", 502, times=10)
    with pytest.raises(NshubError) as caught:
        alice.list("alice")
    assert caught.value.status == 502 and caught.value.code == "ServiceUnavailable"
    assert len(waits) == 4  # five attempts
    assert all(0 <= w <= Retry().base_delay * 2**i for i, w in enumerate(waits))


def test_a_post_is_not_retried_after_a_5xx_but_is_after_a_429(alice, hub, waits):
    hub.fail("POST", "/uploads", 503)
    with pytest.raises(NshubError):
        alice.push_bytes(b"x", "alice/p")
    assert waits == [] and len(hub.calls("POST", "/uploads")) == 1
    hub.fail("POST", "/uploads", 429, retry_after="1")
    alice.push_bytes(b"x", "alice/p")
    assert waits == [1.0]


def test_a_failing_part_is_retried_on_its_own(alice, hub, waits):
    data = os.urandom(200)
    hub.fail("PUT", "/s3/put/", 500, times=2)
    alice.push_bytes(data, "alice/parts")
    assert alice.pull_bytes("alice/parts") == data
    assert len(hub.calls("PUT")) == 7 + 2 and len(waits) == 2


def test_an_expired_part_url_is_renewed_once(alice, hub, waits):
    data = os.urandom(200)
    hub.fail("PUT", "/s3/put/", 403, times=1)
    alice.push_bytes(data, "alice/slow")
    assert len(hub.renewed) == 1
    assert alice.pull_bytes("alice/slow") == data


def test_large_pushes_declare_a_digest_per_part(alice, hub):
    data = os.urandom(200)
    alice.push_bytes(data, "alice/parted")
    request = next(iter(hub.uploads.values()))["request"]
    assert request["part_size"] == 32
    assert request["part_sha256"] == [sha(data[i:i + 32]) for i in range(0, 200, 32)]


def test_a_push_that_fails_midway_is_aborted(alice, hub, waits):
    hub.fail("PUT", "/s3/put/", 403, times=100)
    with pytest.raises(StorageError, match="403"):
        alice.push_bytes(os.urandom(200), "alice/broken")
    upload = next(iter(hub.uploads.values()))
    assert upload["state"] == "aborted" and hub.calls("DELETE", "/uploads/")
    assert hub.calls("POST", "/complete") == []


def test_a_server_that_never_answers(tmp_path):
    waited = []
    client = Client(endpoint="http://127.0.0.1:9", token=False,
                    retry=Retry(attempts=2, sleep=waited.append))
    with pytest.raises(ServerUnreachable, match="cannot reach http://127.0.0.1:9"):
        client.info("alice/x")
    assert len(waited) == 1


def test_a_file_rewritten_during_its_push_is_not_completed(alice, hub, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(200))
    os.utime(source, (1_000_000_000, 1_000_000_000))  # written long ago

    def rewrite_in_place(_url):  # same size, other bytes, while the parts go out
        with open(source, "r+b") as fh:
            fh.write(os.urandom(200))

    hub.on("PUT", "/s3/put/", rewrite_in_place)
    with pytest.raises(IntegrityError) as caught:
        alice.push_file(source, "alice/moving")
    assert caught.value.message == ("the file changed while it was being pushed: push it again "
                                    "once nothing writes to it")
    assert caught.value.hint == "no new version was made"
    assert hub.calls("POST", "/complete") == [] and hub.calls("DELETE", "/uploads/")


def test_the_whole_and_part_digests_are_of_the_same_bytes():
    # A file rewritten between two reads must not get the whole sha256 of one content and the
    # part digests of another: the registry would quarantine what the CLI said was pushed.
    import io

    from nshub.upload import hash_source_parts

    opened = []

    def rewritten_between_reads():  # each read of the "file" finds other bytes
        opened.append(os.urandom(100))
        return io.BytesIO(opened[-1])

    size, whole, parts = hash_source_parts(rewritten_between_reads, 32)
    data = opened[0]
    assert size == 100 and whole == sha(data)
    assert parts == [sha(data[i:i + 32]) for i in range(0, 100, 32)]


def test_a_failing_transfer_never_shows_the_presigned_query(alice, hub, tmp_path, caplog):
    # The query of a presigned URL is a credential; requests quotes it in its errors.
    caplog.set_level(logging.DEBUG, logger="nshub")
    alice.push_bytes(os.urandom(300), "alice/big")
    hub.storage_endpoint = "http://127.0.0.1:9"  # the store is down (nothing listens there)
    with pytest.raises(ServerUnreachable) as pulled:
        alice.pull_file("alice/big", tmp_path / "big")
    with pytest.raises(ServerUnreachable) as pushed:
        alice.push_bytes(os.urandom(300), "alice/big")
    hub.storage_endpoint = ""
    hub.fail("PUT", "/s3/put/", 500, times=2)
    alice.push_bytes(os.urandom(300), "alice/big")  # retried: logged at DEBUG

    # what an uncaught error prints in a script or a notebook: the whole chain
    printed = ["".join(traceback.format_exception(e.value)) for e in (pulled, pushed)]
    shown = [str(pulled.value), pulled.value.message, str(pushed.value), caplog.text, *printed]
    assert "keeps failing" in shown[0] and "cannot reach http://127.0.0.1:9" in shown[2]
    assert "/s3/put/" in caplog.text and "answered 500" in caplog.text
    assert not [text for text in shown if "X-Amz-" in text or "secret" in text]


def test_a_renewal_answer_without_the_part_is_one_clear_error(alice, hub):
    hub.fail("PUT", "/s3/put/", 403, times=1)  # the URL expired: ask for a new one
    hub.fail("POST", "/parts", 200, body=b'{"parts": []}')
    with pytest.raises(UnexpectedResponse, match="the server handed out no URL for part"):
        alice.push_bytes(os.urandom(200), "alice/slow")
    assert hub.calls("POST", "/complete") == [] and hub.calls("DELETE", "/uploads/")


# --- downloads -----------------------------------------------------------------------


def test_a_dropped_download_resumes_with_range(alice, hub, tmp_path):
    data = os.urandom(300)
    alice.push_bytes(data, "alice/big")
    hub.drop_after = [100, 50]

    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data

    ranges = [h.get("Range") for _, _, h in hub.calls("GET", "/s3/get/")]
    assert ranges == [None, "bytes=100-", "bytes=150-"]


def test_a_partial_file_from_an_earlier_pull_is_resumed(alice, hub, tmp_path):
    data = os.urandom(300)
    alice.push_bytes(data, "alice/big")
    (tmp_path / "big.part").write_bytes(data[:120])

    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data
    assert [h.get("Range") for _, _, h in hub.calls("GET", "/s3/get/")] == ["bytes=120-"]


def test_a_stale_partial_file_is_replaced(alice, hub, tmp_path):
    data = os.urandom(300)
    alice.push_bytes(data, "alice/big")
    (tmp_path / "big.part").write_bytes(os.urandom(120))  # bytes of something else

    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data
    assert [h.get("Range") for _, _, h in hub.calls("GET", "/s3/get/")] == ["bytes=120-", None]


def test_a_server_ignoring_range_makes_the_pull_start_over(alice, hub, tmp_path):
    data = os.urandom(300)
    alice.push_bytes(data, "alice/big")
    hub.drop_after = [100]
    hub.ignore_range = True
    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data


def test_an_expired_url_is_renewed_for_the_same_version(alice, hub, tmp_path):
    data = os.urandom(300)
    alice.push_bytes(data, "alice/big")
    hub.drop_after = [100]
    info_calls = len(hub.calls("GET", "/v1/arrays/alice/big"))

    # the URL expires while the download is cut, and meanwhile a new version lands
    def expire_then_push(*_):
        hub.expire_urls()
        hub._commit("alice", "big", b"newer", None, {})

    alice.retry = Retry(sleep=expire_then_push)
    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data
    refetches = hub.calls("GET", "/v1/arrays/alice/big")[info_calls + 1:]
    assert len(refetches) == 1 and "version=1" in refetches[0][1]


def test_a_version_quarantined_during_the_pull_stops_it_with_one_line(alice, hub, tmp_path):
    alice.push_bytes(os.urandom(300), "alice/big")
    hub.drop_after = [100]

    def quarantined_meanwhile(_seconds):  # the URL expires, and the event path quarantines
        hub.expire_urls()
        hub.quarantine("alice", "big", 1)

    alice.retry = Retry(sleep=quarantined_meanwhile)
    with pytest.raises(IntegrityError) as caught:
        alice.pull_file("alice/big", tmp_path / "big")
    assert caught.value.message == ("alice/big version 1 is quarantined (sha256 mismatch): "
                                    "push it again")
    assert not (tmp_path / "big").exists()


def test_a_second_pull_to_the_same_path_is_refused_while_one_writes(alice, hub, tmp_path):
    import threading

    from nshub.errors import Conflict

    data = os.urandom(300)
    alice.push_bytes(data, "alice/big")
    downloading, go_on = threading.Event(), threading.Event()

    def hold_the_first_download(_url):
        if not downloading.is_set():
            downloading.set()
            go_on.wait(10)

    hub.on("GET", "/s3/get/", hold_the_first_download)
    first: list = []
    puller = threading.Thread(target=lambda: first.append(
        Client().pull_file("alice/big", tmp_path / "big")))
    puller.start()
    try:
        assert downloading.wait(10)
        with pytest.raises(Conflict) as caught:
            alice.pull_file("alice/big", tmp_path / "big")
    finally:
        go_on.set()
        puller.join(10)
    assert caught.value.message == (f"another pull is writing {tmp_path / 'big'}: wait for it or "
                                    "choose another path")
    assert first == [tmp_path / "big"] and (tmp_path / "big").read_bytes() == data
    assert len(hub.calls("GET", "/s3/get/")) == 1  # the second pull fetched nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "nshub-home"]  # no lock left


def test_a_filesystem_without_locks_still_pulls(alice, hub, tmp_path, monkeypatch):
    """Some network filesystems refuse flock (ENOLCK, ENOSYS): the pull goes on unlocked."""
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    data = os.urandom(300)
    alice.push_bytes(data, "alice/big")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert alice.pull_file("alice/big", tmp_path / "big") == tmp_path / "big"
    assert (tmp_path / "big").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "nshub-home"]
    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data  # free again


def test_a_corrupted_download_is_refused_and_leaves_nothing(alice, hub, tmp_path):
    alice.push_bytes(os.urandom(300), "alice/big")
    hub.corrupt = True

    with pytest.raises(IntegrityError, match="sha256"):
        alice.pull_file("alice/big", tmp_path / "out" / "big")
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(IntegrityError):
        alice.pull_bytes("alice/big")


def test_a_download_that_never_completes_gives_up(alice, hub, tmp_path, waits):
    alice.push_bytes(os.urandom(300), "alice/big")
    hub.fail("GET", "/s3/get/", 503, times=100)
    with pytest.raises(ServerUnreachable):
        alice.pull_file("alice/big", tmp_path / "big")
    assert len(waits) == Retry().attempts - 1


# --- parts ---------------------------------------------------------------------------


def test_parts_cover_the_file_exactly():
    from nshub.upload import part_ranges

    assert part_ranges(3, 10, 25) == [(1, 0, 10), (2, 10, 10), (3, 20, 5)]
    assert part_ranges(1, 10, 7) == [(1, 0, 7)]
    with pytest.raises(InvalidRequest):
        part_ranges(4, 10, 25)  # a part beyond the end of the file


def test_a_part_is_read_lazily_in_bounded_pieces():
    import io

    from nshub import settings
    from nshub.upload import FileSlice

    reads = []

    class Recording(io.BytesIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    data = os.urandom(3 * settings.CHUNK_SIZE)
    part = FileSlice(lambda: Recording(data), settings.CHUNK_SIZE // 2, 2 * settings.CHUNK_SIZE)
    assert len(part) == 2 * settings.CHUNK_SIZE and reads == []
    body = b"".join(part)
    assert body == data[settings.CHUNK_SIZE // 2: settings.CHUNK_SIZE // 2 + len(part)]
    assert reads and max(reads) <= settings.CHUNK_SIZE and -1 not in reads
    part.close()


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bytes_in_memory_are_pushed_without_copying_them(kind):
    # io.BytesIO(bytearray or memoryview) copies it whole: once per part and attempt
    import tracemalloc

    from nshub.upload import FileSlice, bytes_opener, hash_source_parts

    MiB = 1024 * 1024
    data = kind(os.urandom(32 * MiB))
    opener = bytes_opener(data)
    tracemalloc.start()
    try:
        size, whole, _ = hash_source_parts(opener, 4 * MiB)
        for offset in range(0, size, 4 * MiB):
            part = FileSlice(opener, offset, 4 * MiB)
            assert sum(len(chunk) for chunk in part) == 4 * MiB
            part.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert whole == sha(bytes(data))
    assert peak < 20 * MiB  # the two 8 MiB hashing buffers and a chunk, never the 32 MiB


def test_a_pushed_bytearray_is_the_callers_again(alice):
    data = bytearray(os.urandom(200))
    alice.push_bytes(memoryview(data)[10:], "alice/view")
    assert alice.pull_bytes("alice/view") == data[10:]
    data.extend(b"more")  # no view of it is left behind (BufferError if one were)


# --- parallel ranged pulls -------------------------------------------------------------


@pytest.fixture
def mib_ranges(hub, monkeypatch):
    """Pulls of more than 1 MiB go as parallel ranged GETs of 1 MiB (and pushes in 1 MiB parts,
    not hundreds of thousands of 32-byte ones)."""
    monkeypatch.setenv("NSHUB_PULL_RANGE_BYTES", str(1024 * 1024))
    hub.part_size = 1024 * 1024


def windows(size: int, step: int = 1024 * 1024) -> list[tuple[int, int]]:
    return [(s, min(s + step, size) - 1) for s in range(0, size, step)]


def test_a_large_pull_is_parallel_ranges_written_in_place(alice, hub, tmp_path, mib_ranges):
    data = os.urandom(5 * 1024 * 1024 + 321)
    alice.push_bytes(data, "alice/big")
    assert alice.pull_file("alice/big", tmp_path / "out" / "big").read_bytes() == data
    assert sorted(hub.ranges) == windows(len(data))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["big"]  # no .part/.ranges


def test_an_interrupted_ranged_pull_resumes_with_the_ranges_it_lacks(alice, hub, tmp_path,
                                                                     mib_ranges, monkeypatch):
    monkeypatch.setenv("NSHUB_MAX_WORKERS", "1")  # ranges in order: two land, the third drops
    data = os.urandom(5 * 1024 * 1024 + 321)
    alice.push_bytes(data, "alice/big")
    hub.drop_after = [10**9, 10**9, 1000]

    def interrupted(_seconds):
        raise KeyboardInterrupt

    alice.retry = Retry(sleep=interrupted)
    with pytest.raises(KeyboardInterrupt):
        alice.pull_file("alice/big", tmp_path / "big")
    assert (tmp_path / "big.part.ranges").exists() and not (tmp_path / "big").exists()

    hub.ranges.clear()
    alice.retry = Retry(sleep=lambda _s: None)
    monkeypatch.setenv("NSHUB_MAX_WORKERS", "8")
    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data
    assert sorted(hub.ranges) == windows(len(data))[2:]


@pytest.mark.parametrize("done", [["one"], [None], 7, [10**6], "12"])
def test_a_corrupt_ranges_file_means_starting_over(alice, hub, tmp_path, mib_ranges, done):
    import json

    data = os.urandom(3 * 1024 * 1024 + 5)
    alice.push_bytes(data, "alice/big")
    (tmp_path / "big.part").write_bytes(os.urandom(len(data)))
    (tmp_path / "big.part.ranges").write_text(json.dumps(
        {"sha256": sha(data), "size": len(data), "range_size": 1024 * 1024, "done": done}))
    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data
    assert sorted(hub.ranges) == windows(len(data))


def test_a_store_ignoring_ranges_gets_one_stream(alice, hub, tmp_path, mib_ranges):
    data = os.urandom(3 * 1024 * 1024)
    alice.push_bytes(data, "alice/big")
    hub.ignore_range = True
    assert alice.pull_file("alice/big", tmp_path / "big").read_bytes() == data


def test_a_corrupted_ranged_pull_is_refused_and_leaves_nothing(alice, hub, tmp_path,
                                                              mib_ranges):
    alice.push_bytes(os.urandom(3 * 1024 * 1024), "alice/big")
    hub.corrupt = True
    with pytest.raises(IntegrityError, match="sha256"):
        alice.pull_file("alice/big", tmp_path / "out" / "big")
    assert list((tmp_path / "out").iterdir()) == []
