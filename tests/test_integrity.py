"""Issue 14: integrity at any size.

`complete` checks what S3 stored without reading it and commits the version as `pending`;
the event path (table stream -> blob events queue -> on_blob_event) hashes the whole object
and marks it `verified`, or quarantines it. A push of the newest version's bytes is free.
Part URLs come in batches, so no answer grows with the upload. Events are driven with the
dev stack's EventPump (`pump.drain()`), never waited for.
"""
from __future__ import annotations

import copy
import json
from urllib.parse import urlparse

import pytest
import requests

from chalicelib import config, keys
from devstack.pump import FakeLambdaContext
from tests.backend import table_items
from tests.helpers import part_digests, pull, push, put_parts, random_bytes, sha, start

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.fixture
def log_lines():
    """What the service logs (its Powertools logger is the standard logger `nshub`)."""
    import logging

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Keep()
    logging.getLogger("nshub").addHandler(handler)
    yield lines
    logging.getLogger("nshub").removeHandler(handler)


def token(users, who):
    return users[who]["id_token"]


def info(api, t, name, **params):
    return api.get(f"/v1/arrays/{name}", token=t, params=params)


def lying_push(api, t, name: str, shown: bytes, sent: bytes) -> requests.Response:
    """Declare the whole sha256 of `shown` and the part digests of `sent` (same size), then
    upload `sent`: every part passes S3's checks, only the whole-object hash can tell."""
    assert len(shown) == len(sent)
    r = start(api, t, name, shown, part_size=5 * MiB, part_sha256=part_digests(sent))
    assert r.status_code == 201, r.text
    plan = r.json()
    parts = put_parts(plan, sent)
    return api.post(f"/v1/arrays/{name}/uploads/{plan['upload_id']}/complete", token=t,
                    json={"parts": parts})


# ---------------------------------------------------------------- asynchronous verification


def test_an_honest_push_is_committed_pending_then_verified(api, users, pump):
    t = token(users, "alice")
    data = random_bytes(11 * MiB)
    r = push(api, t, "alice/honest", data)
    assert r.status_code == 200, r.text
    assert r.json()["integrity"] == "pending"  # visible at once; the hash comes after
    assert pull(api, t, "alice/honest")[1] == data
    pump.drain()
    got = info(api, t, "alice/honest").json()
    assert (got["version"], got["integrity"]) == (1, "verified")
    listed = api.get("/v1/arrays/alice/honest/versions", token=t).json()["items"]
    assert [v["integrity"] for v in listed] == ["verified"]


def test_a_lying_client_ends_quarantined_and_latest_moves_back(api, users, pump, recording,
                                                                capsys, log_lines):
    alice, bob = token(users, "alice"), token(users, "bob")
    good = random_bytes(11 * MiB)
    assert push(api, alice, "alice/ds", good, visibility="public").status_code == 200
    pump.drain()

    shown, sent = random_bytes(11 * MiB), random_bytes(11 * MiB)
    r = lying_push(api, alice, "alice/ds", shown, sent)
    assert r.status_code == 200, r.text  # complete cannot tell: S3 checked every part
    assert (r.json()["version"], r.json()["integrity"]) == (2, "pending")
    pump.drain()

    # readers: latest is version 1 again, version 2 does not exist for them
    for who in (bob, None):
        got = info(api, who, "alice/ds")
        assert got.status_code == 200
        assert (got.json()["version"], got.json()["sha256"]) == (1, sha(good))
        assert requests.get(got.json()["download_url"], timeout=60).content == good
        assert info(api, who, "alice/ds", version=2).status_code == 404
        listed = api.get("/v1/arrays/alice/ds/versions", token=who).json()["items"]
        assert [v["version"] for v in listed] == [1]
    # the owner sees what happened, and gets no bytes of it
    mine = info(api, alice, "alice/ds", version=2).json()
    assert mine["integrity"] == "quarantined" and "download_url" not in mine
    assert sha(sent) in mine["quarantine_reason"] and sha(shown) in mine["quarantine_reason"]
    assert [v["integrity"] for v in api.get("/v1/arrays/alice/ds/versions",
                                            token=alice).json()["items"]] == [
        "quarantined", "verified"]
    assert any(line.startswith("version quarantined") for line in log_lines)
    assert '"VersionsQuarantined":[1.0]' in capsys.readouterr().out  # the metric (EMF)

    # at least once: the same deliveries again change nothing
    for event in recording.sqs_events:
        recording.app.on_blob_event(copy.deepcopy(event), FakeLambdaContext())
    assert info(api, bob, "alice/ds").json()["version"] == 1
    assert info(api, alice, "alice/ds", version=2).json()["integrity"] == "quarantined"


def test_a_quarantined_first_version_hides_the_array_and_an_honest_push_replaces_it(
        api, users, pump, home):
    from nshub import Client
    from nshub.errors import IntegrityError

    alice, bob = token(users, "alice"), token(users, "bob")
    shown, sent = random_bytes(11 * MiB), random_bytes(11 * MiB)
    assert lying_push(api, alice, "alice/only", shown, sent).status_code == 200
    api.patch("/v1/arrays/alice/only", token=alice, json={"visibility": "public"})
    pump.drain()
    assert info(api, bob, "alice/only").status_code == 404
    assert info(api, None, "alice/only").status_code == 404
    assert "alice/only" not in [i["full_name"] for i in
                                api.get("/v1/arrays/alice", token=bob).json()["items"]]
    mine = info(api, alice, "alice/only").json()
    assert (mine["version"], mine["integrity"]) == (1, "quarantined")
    assert "download_url" not in mine
    with pytest.raises(IntegrityError, match="alice/only version 1 is quarantined"):
        Client(token=alice).pull_bytes("alice/only")
    # the Jina clients' download route says the same, in their envelope (no bytes to give)
    r = api.post("/v2/rpc/artifact.getDownloadUrl", token=alice, data={"id": "alice/only"})
    assert (r.status_code, r.json()["status"]) == (409, 40901), r.text
    assert "alice/only version 1 is quarantined" in r.json()["readableMessage"]

    # the declared bytes, honestly: not "unchanged" (version 1 never held them)
    r = push(api, alice, "alice/only", shown)
    assert r.status_code == 200 and "unchanged" not in r.json()
    pump.drain()
    got = info(api, bob, "alice/only").json()
    assert (got["version"], got["integrity"]) == (2, "verified")


def test_a_verification_the_function_cannot_finish_in_time_is_left_for_later(aws_env):
    """A verification request whose object cannot be hashed in the function's remaining time
    is reported failed (SQS hands it out again) instead of running into the timeout."""
    from chalicelib import cleanup, integrity

    message = {"messageId": "m1", "body": integrity.verification_request(
        keys.resource_pk("alice", "big"), keys.version_sk("array", "g", 1), 50 * GiB)}
    assert cleanup.handle_blob_events([message], lambda: 60.0) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert cleanup.handle_blob_events([message], lambda: 900.0) == {"batchItemFailures": []}


def test_a_verification_whose_write_fails_is_handed_out_again(api, users, aws_env, monkeypatch):
    """A throttled or failed write of the verdict is not taken for "already judged": the
    message is reported failed, and the next delivery records the verdict."""
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import UpdateError
    from pynamodb.models import Model

    from chalicelib import cleanup, integrity

    t = token(users, "alice")
    data = random_bytes(1024)
    assert push(api, t, "alice/flaky", data).status_code == 200
    pk = keys.resource_pk("alice", "flaky")
    sk = next(i["sk"]["S"] for i in table_items(aws_env, pk) if "#V#" in i["sk"]["S"])
    message = {"messageId": "m1", "body": integrity.verification_request(pk, sk, len(data))}

    def throttled(self, *args, **kwargs):
        raise UpdateError("Failed to update item", cause=ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
            "UpdateItem"))

    with monkeypatch.context() as patched:
        patched.setattr(Model, "update", throttled)
        assert cleanup.handle_blob_events([message]) == {
            "batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert info(api, t, "alice/flaky").json()["integrity"] == "pending"
    assert cleanup.handle_blob_events([message]) == {"batchItemFailures": []}
    assert info(api, t, "alice/flaky").json()["integrity"] == "verified"


# ---------------------------------------------------------------- unchanged re-push


def test_an_unchanged_push_sends_nothing_and_makes_no_version(api, users, aws_env):
    t = token(users, "alice")
    data = random_bytes(11 * MiB)
    first = push(api, t, "alice/nightly", data).json()
    r = start(api, t, "alice/nightly", data, visibility="public")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unchanged"] is True and "upload_id" not in body and "parts" not in body
    assert (body["version"], body["sha256"], body["visibility"]) == (1, sha(data), "public")
    assert body["created_at"] == first["created_at"]
    assert [v["version"] for v in api.get("/v1/arrays/alice/nightly/versions",
                                          token=t).json()["items"]] == [1]
    # nothing pending was recorded either
    items = table_items(aws_env, keys.resource_pk("alice", "nightly"))
    assert sorted(keys.parse_sk(i["sk"]["S"])["type"] for i in items) == [
        "head", "upload", "version"]
    # other bytes are a new version
    assert push(api, t, "alice/nightly", random_bytes(100)).json()["version"] == 2


def test_the_client_pushes_unchanged_bytes_for_free(live_api, users, home, tmp_path):
    from nshub import Client

    path = tmp_path / "data.bin"
    path.write_bytes(random_bytes(6 * MiB))
    client = Client(token=token(users, "alice"))
    first = client.push_file(path, "alice/free")
    sent = []
    client.session.hooks["response"].append(lambda r, *a, **k: sent.append(
        (r.request.method, urlparse(r.request.url).path)))
    again = client.push_file(path, "alice/free")
    assert again["unchanged"] is True and again["version"] == first["version"] == 1
    assert sent == [("POST", "/v1/arrays/alice/free/uploads")]  # one request, no bytes


@pytest.fixture
def hashed(monkeypatch):
    """How many times the client hashed a file (whole, or whole and per part)."""
    from nshub import client as client_module

    counted: list[str] = []
    for name in ("hash_source", "hash_source_parts"):
        real = getattr(client_module, name)
        monkeypatch.setattr(client_module, name,
                            lambda *a, _real=real, **k: counted.append("hash") or _real(*a, **k))
    return counted


def test_a_file_pushed_again_untouched_is_not_hashed_again(live_api, users, home, tmp_path,
                                                           hashed, monkeypatch):
    """Its digests are remembered with its inode, size and times (nshub/digests.py): a
    nightly re-push of a large file costs one request, not a second sha256 of it."""
    from nshub import Client, digests

    monkeypatch.setattr(digests, "RACY_SECONDS", 0)  # the file is not written again here
    path = tmp_path / "data.bin"
    data = random_bytes(11 * MiB)
    path.write_bytes(data)
    client = Client(token=token(users, "alice"))
    assert client.push_file(path, "alice/cached")["version"] == 1
    assert client.push_file(path, "alice/cached")["unchanged"] is True
    assert client.push_file(path, "alice/cached-too")["sha256"] == sha(data)  # a new name
    assert hashed == ["hash"]

    # the same size, other bytes: its ctime moved, so it is hashed again and pushed
    changed = random_bytes(11 * MiB)
    path.write_bytes(changed)
    info = client.push_file(path, "alice/cached")
    assert (info["version"], info["sha256"]) == (2, sha(changed)) and len(hashed) == 2
    assert client.pull_bytes("alice/cached") == changed


def test_a_file_written_just_now_or_with_the_cache_off_is_hashed_every_time(
        live_api, users, home, tmp_path, hashed, monkeypatch):
    """A file changed within RACY_SECONDS could change again within the same timestamp tick
    unseen: it is not remembered. NSHUB_HASH_CACHE=0 remembers nothing; a damaged cache file
    means hashing again."""
    from nshub import Client, settings

    path = tmp_path / "data.bin"
    path.write_bytes(random_bytes(11 * MiB))
    client = Client(token=token(users, "alice"))
    client.push_file(path, "alice/fresh")
    assert client.push_file(path, "alice/fresh")["unchanged"] is True
    assert len(hashed) == 2 and not (settings.home() / "digests.json").exists()

    monkeypatch.setattr("nshub.digests.RACY_SECONDS", 0)
    monkeypatch.setenv("NSHUB_HASH_CACHE", "0")
    client.push_file(path, "alice/fresh")
    client.push_file(path, "alice/fresh")
    assert len(hashed) == 4 and not (settings.home() / "digests.json").exists()

    monkeypatch.delenv("NSHUB_HASH_CACHE")
    settings.home().mkdir(parents=True, exist_ok=True)
    (settings.home() / "digests.json").write_text("{not json")
    assert client.push_file(path, "alice/fresh")["unchanged"] is True
    assert len(hashed) == 5 and (settings.home() / "digests.json").stat().st_mode & 0o077 == 0


# ---------------------------------------------------------------- part URLs in batches


@pytest.fixture
def session_token_1k(monkeypatch):
    """Real Lambda credentials carry a session token of about 1 KiB, signed into every URL."""
    monkeypatch.setenv("AWS_SESSION_TOKEN", "T" * 1024)
    config.reset()


def test_a_50_gib_start_answer_stays_small(api, users, session_token_1k):
    t = token(users, "alice")
    size = 50 * GiB
    part_size = 16 * MiB
    count = -(-size // part_size)
    r = api.post("/v1/arrays/alice/huge/uploads", token=t, json={
        "size": size, "sha256": "a" * 64, "part_size": part_size,
        "part_sha256": ["b" * 64] * count})
    assert r.status_code == 201, r.text
    assert len(r.content) < 256 * 1024
    plan = r.json()
    assert plan["parts_total"] == count == 3200
    assert [p["part_number"] for p in plan["parts"]] == list(range(1, 65))
    assert "X-Amz-Security-Token" in plan["parts"][0]["url"]
    path = f"/v1/arrays/alice/huge/uploads/{plan['upload_id']}/parts"
    r = api.post(path, token=t, json={"part_numbers": list(range(3137, 3201))})
    assert r.status_code == 200 and len(r.content) < 256 * 1024
    assert r.json()["parts"][-1]["headers"]["Content-Length"] == str(size - 3199 * part_size)
    r = api.post(path, token=t, json={"part_numbers": list(range(1, 66))})
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest")


@pytest.fixture
def tiny_parts(monkeypatch):
    """The shape of a 50 GiB upload (3,200 parts), with parts of 1 KiB: the server's part
    sizes and the local S3's smallest part are lowered by configuration."""
    import moto.s3.models

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1024)
    monkeypatch.setenv("NSHUB_SINGLE_PART_MAX_BYTES", "1024")
    monkeypatch.setenv("NSHUB_MIN_PART_SIZE", "1024")
    config.reset()


def test_an_upload_shaped_like_50_gib_goes_end_to_end(live_api, users, home, tmp_path, pump,
                                                      tiny_parts):
    from nshub import Client

    data = random_bytes(3200 * 1024 - 100)
    path = tmp_path / "huge.bin"
    path.write_bytes(data)
    client = Client(token=token(users, "alice"))
    calls = []
    client.session.hooks["response"].append(lambda r, *a, **k: calls.append(
        (r.request.method, urlparse(r.request.url).path, len(r.content or b""))))
    pushed = client.push_file(path, "alice/huge")
    client.session.hooks["response"].clear()  # (reading bodies would consume the download)
    assert (pushed["version"], pushed["integrity"]) == (1, "pending")
    api_calls = [c for c in calls if c[1].startswith("/v1/")]
    assert [c[1].rsplit("/", 1)[-1] for c in api_calls].count("parts") == 3200 // 64 - 1
    assert max(c[2] for c in api_calls) < 256 * 1024
    assert len([c for c in calls if c[0] == "PUT"]) == 3200
    pump.drain()
    assert client.info("alice/huge")["integrity"] == "verified"
    assert client.pull_bytes("alice/huge") == data


def test_parts_route_answers_one_batch_by_default(api, users, tiny_parts):
    t = token(users, "alice")
    data = random_bytes(100 * 1024)
    r = start(api, t, "alice/many", data, part_size=1024,
              part_sha256=part_digests(data, 1024))
    plan = r.json()
    assert (plan["parts_total"], len(plan["parts"])) == (100, 64)
    path = f"/v1/arrays/alice/many/uploads/{plan['upload_id']}"
    assert len(api.post(path + "/parts", token=t).json()["parts"]) == 64

    def more(numbers):
        return api.post(path + "/parts", token=t, json={"part_numbers": numbers}).json()["parts"]

    parts = put_parts(plan, data, more)
    r = api.post(path + "/complete", token=t, json={"parts": parts})
    assert r.status_code == 200, r.text
    assert pull(api, t, "alice/many")[1] == data


def test_a_multipart_array_must_declare_its_part_digests(api, users):
    t = token(users, "alice")
    r = api.post("/v1/arrays/alice/x/uploads", token=t, json={"size": 11 * MiB,
                                                               "sha256": "a" * 64})
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest")
    assert "part_sha256" in r.json()["Message"]


def test_metadata_only_change_in_an_unchanged_push(api, users):
    t = token(users, "alice")
    data = random_bytes(1000)
    push(api, t, "alice/meta", data, metadata={"a": 1})
    r = start(api, t, "alice/meta", data, metadata={"a": 2})
    assert r.status_code == 200 and r.json()["metadata"] == {"a": 2}
    assert json.loads(json.dumps(info(api, t, "alice/meta").json()["metadata"])) == {"a": 2}
