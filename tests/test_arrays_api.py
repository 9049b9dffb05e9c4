"""DocumentArrays over HTTP: the upload flow, versions, integrity, lists, changes, deletes."""
from __future__ import annotations

import base64
import concurrent.futures as cf
import json
from urllib.parse import parse_qs, quote, urlparse

import pytest
import requests

from chalicelib import keys
from tests.backend import blob_keys, multipart_uploads
from tests.conftest import MiB
from tests.helpers import pull, push, put_parts, random_bytes, sha, start


def token(users, who):
    return users[who]["id_token"]


def test_push_then_pull_round_trips(api, users):
    data = random_bytes(1000)
    r = push(api, token(users, "alice"), "alice/fashion_mnist", data, metadata={"split": "train"})
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["version"] == 1
    assert info["full_name"] == "alice/fashion_mnist"
    assert info["visibility"] == "private"
    assert info["kind"] == "array"
    assert info["sha256"] == sha(data)
    assert info["metadata"] == {"split": "train"}
    got, body = pull(api, token(users, "alice"), "alice/fashion_mnist")
    assert body == data
    assert got["sha256"] == sha(body)


@pytest.mark.parametrize("size", [0, 1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 11 * MiB + 7])
def test_sizes_across_the_part_boundary(api, users, size):
    data = random_bytes(size)
    r = push(api, token(users, "alice"), "alice/sized", data)
    assert r.status_code == 200, r.text
    _, body = pull(api, token(users, "alice"), "alice/sized")
    assert sha(body) == sha(data) and len(body) == size


def test_bob_and_alice_own_the_same_name(api, users):
    a, b = random_bytes(10), random_bytes(20)
    assert push(api, token(users, "alice"), "alice/fashion_mnist", a).status_code == 200
    assert push(api, token(users, "bob"), "bob/fashion_mnist", b).status_code == 200
    assert pull(api, token(users, "alice"), "alice/fashion_mnist")[1] == a
    assert pull(api, token(users, "bob"), "bob/fashion_mnist")[1] == b


def test_versions_and_latest(api, users):
    t = token(users, "alice")
    blobs = [random_bytes(100 + i) for i in range(3)]
    for i, data in enumerate(blobs, start=1):
        assert push(api, t, "alice/ds", data).json()["version"] == i
    assert pull(api, t, "alice/ds")[1] == blobs[-1]
    assert pull(api, t, "alice/ds", version=1)[1] == blobs[0]
    r = api.get("/v1/arrays/alice/ds/versions", token=t)
    assert [v["version"] for v in r.json()["items"]] == [3, 2, 1]
    assert api.get("/v1/arrays/alice/ds", token=t, params={"version": 9}).status_code == 404
    assert api.get("/v1/arrays/alice/ds", token=t, params={"version": "x"}).status_code == 400


def test_names_are_case_insensitive_first_spelling_kept(api, users):
    t = token(users, "alice")
    push(api, t, "alice/MyData", b"one")
    r = push(api, t, "alice/mydata", b"two")
    assert r.json()["version"] == 2
    assert r.json()["name"] == "MyData"
    assert pull(api, t, "alice/MYDATA")[1] == b"two"


def test_completing_through_another_spelling_keeps_the_first(api, users):
    t = token(users, "alice")
    data = random_bytes(32)
    plan = start(api, t, "alice/MyArr", data).json()
    parts = put_parts(plan, data)
    r = api.post(f"/v1/arrays/alice/myarr/uploads/{plan['upload_id']}/complete", token=t,
                 json={"parts": parts})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["full_name"]) == ("MyArr", "alice/MyArr")
    assert api.get("/v1/arrays/alice/MYARR", token=t).json()["name"] == "MyArr"
    assert [i["name"] for i in api.get("/v1/arrays/alice", token=t).json()["items"]] == ["MyArr"]


def test_presigned_urls_are_short_lived_and_bound(api, users):
    data = random_bytes(64)
    r = start(api, token(users, "alice"), "alice/urls", data)
    plan = r.json()
    assert len(plan["parts"]) == 1
    part = plan["parts"][0]
    url = urlparse(part["url"])
    q = parse_qs(url.query)
    assert int(q["X-Amz-Expires"][0]) <= 900
    assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    signed = q["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-length", "x-amz-checksum-sha256", "host"} <= set(signed)
    assert url.path.endswith(f"/blobs/array/alice/urls/{plan['upload_id']}")
    assert part["headers"]["Content-Length"] == "64"
    import base64
    assert base64.b64decode(part["headers"]["x-amz-checksum-sha256"]).hex() == sha(data)

    big = random_bytes(11 * MiB)
    plan = start(api, token(users, "alice"), "alice/urls", big).json()
    assert len(plan["parts"]) == 3
    for part in plan["parts"]:
        q = parse_qs(urlparse(part["url"]).query)
        assert int(q["X-Amz-Expires"][0]) <= 900
        assert q["partNumber"] == [str(part["part_number"])]
        assert "content-length" in q["X-Amz-SignedHeaders"][0].split(";")
    info = push(api, token(users, "alice"), "alice/urls", data).json()
    r = api.get("/v1/arrays/alice/urls", token=token(users, "alice"))
    q = parse_qs(urlparse(r.json()["download_url"]).query)
    assert int(q["X-Amz-Expires"][0]) <= 900
    assert info["version"] == 1


def test_storage_refuses_other_bytes_and_no_version_is_made(api, users, aws_env):
    """The presigned URL signs length and sha256: S3 refuses other bytes before storing them
    (400 BadDigest, 403 for another length), and complete then finds nothing to commit."""
    t = token(users, "alice")
    data = random_bytes(100)
    plan = start(api, t, "alice/bad", data).json()
    part = plan["parts"][0]
    r = requests.put(part["url"], data=random_bytes(100), headers=part["headers"], timeout=60)
    assert (r.status_code, "<Code>BadDigest</Code>" in r.text) == (400, True)
    short = {k: v for k, v in part["headers"].items() if k != "Content-Length"}
    r = requests.put(part["url"], data=data[:50], headers=short, timeout=60)
    assert (r.status_code, "<Code>SignatureDoesNotMatch</Code>" in r.text) == (403, True)
    r = api.post(f"/v1/arrays/alice/bad/uploads/{plan['upload_id']}/complete", token=t,
                 json={"parts": [{"part_number": 1, "etag": '"x"'}]})
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest")
    assert "no bytes arrived" in r.json()["Message"]
    assert api.get("/v1/arrays/alice/bad", token=t).status_code == 404


def test_complete_checks_what_s3_stored_without_reading_it(api, users, aws_env):
    """Bytes written at an upload's key some other way (not through its URL) carry no
    matching S3 checksum or length: complete refuses them, discards the upload, commits
    nothing."""
    import boto3

    t = token(users, "alice")
    s3 = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    data = random_bytes(100)

    def planted(body: bytes) -> requests.Response:
        plan = start(api, t, "alice/bad", data).json()
        key = requests.utils.urlparse(plan["parts"][0]["url"]).path.split("/", 2)[2]
        s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key=key, Body=body)
        r = api.post(f"/v1/arrays/alice/bad/uploads/{plan['upload_id']}/complete", token=t,
                     json={"parts": [{"part_number": 1, "etag": '"x"'}]})
        again = api.post(f"/v1/arrays/alice/bad/uploads/{plan['upload_id']}/complete",
                         token=t, json={"parts": [{"part_number": 1, "etag": '"x"'}]})
        assert again.status_code == 404  # the upload id is gone
        return r

    r = planted(random_bytes(100))
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "ChecksumMismatch")
    r = planted(data[:50])
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "SizeMismatch")
    assert api.get("/v1/arrays/alice/bad", token=t).status_code == 404
    # nothing stays behind in the bucket
    assert s3.list_objects_v2(Bucket=aws_env["NSHUB_BUCKET"]).get("KeyCount", 0) == 0


def test_complete_twice_is_idempotent(api, users):
    t = token(users, "alice")
    data = random_bytes(10)
    plan = start(api, t, "alice/idem", data).json()
    parts = put_parts(plan, data)
    url = f"/v1/arrays/alice/idem/uploads/{plan['upload_id']}/complete"
    first = api.post(url, token=t, json={"parts": parts})
    second = api.post(url, token=t, json={"parts": parts})
    assert first.status_code == second.status_code == 200
    assert first.json()["version"] == second.json()["version"] == 1


def test_abort_and_unknown_uploads(api, users):
    t = token(users, "alice")
    plan = start(api, t, "alice/ab", b"xyz").json()
    assert api.delete(f"/v1/arrays/alice/ab/uploads/{plan['upload_id']}", token=t).status_code == 204
    r = api.post(f"/v1/arrays/alice/ab/uploads/{plan['upload_id']}/complete", token=t,
                 json={"parts": [{"part_number": 1, "etag": "x"}]})
    assert r.status_code == 404
    for bad in ("0" * 32, "nope", "..%2F..%2Fx"):
        r = api.post(f"/v1/arrays/alice/ab/uploads/{bad}/complete", token=t, json={"parts": []})
        assert r.status_code == 404, bad
    # someone else's upload id: 403 for the namespace, and 404 even for the id in bob's space
    plan = start(api, t, "alice/ab", b"xyz").json()
    r = api.post(f"/v1/arrays/alice/ab/uploads/{plan['upload_id']}/complete",
                 token=token(users, "bob"), json={"parts": []})
    assert r.status_code == 403
    r = api.post(f"/v1/arrays/bob/ab/uploads/{plan['upload_id']}/complete",
                 token=token(users, "bob"), json={"parts": []})
    assert r.status_code == 404


def test_aborting_a_multipart_upload_frees_its_parts(api, users, aws_env):
    """An abort leaves nothing behind in S3: the parts already sent go with the upload."""
    t = token(users, "alice")
    data = random_bytes(11 * MiB)
    plan = start(api, t, "alice/gone", data).json()
    assert len(plan["parts"]) > 1
    put_parts(plan, data)
    assert len(multipart_uploads(aws_env)) == 1
    r = api.delete(f"/v1/arrays/alice/gone/uploads/{plan['upload_id']}", token=t)
    assert r.status_code == 204
    assert multipart_uploads(aws_env) == set() and blob_keys(aws_env) == set()
    assert api.get("/v1/arrays/alice/gone", token=t).status_code == 404


def test_expired_upload_is_404(api, users, monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("NSHUB_UPLOAD_TTL_SECONDS", "-1")
    config.reset()
    t = token(users, "alice")
    plan = start(api, t, "alice/late", b"abc").json()
    parts = put_parts(plan, b"abc")
    r = api.post(f"/v1/arrays/alice/late/uploads/{plan['upload_id']}/complete", token=t,
                 json={"parts": parts})
    assert r.status_code == 404
    assert "expired" in r.json()["Message"]


def test_bad_input_is_400_never_500(api, users):
    t = token(users, "alice")
    bad_names = ["", "a" * 101, "a..b", "-x", "x-", "a b", "a#b", "a:b", "a@b",
                 "f\u0430shion", "x%2Fy", "x\n", "a\n"]
    for name in bad_names:
        r = api.post(f"/v1/arrays/alice/{quote(name, safe='')}/uploads", token=t, json={"size": 1, "sha256": "0" * 64})
        assert r.status_code in (400, 403, 404), (name, r.status_code)
        if r.status_code == 400:
            assert r.headers["X-Error-Code"] == "InvalidName"
    bodies = [
        {}, {"size": -1, "sha256": "0" * 64}, {"size": "1", "sha256": "0" * 64},
        {"size": 1, "sha256": "xyz"}, {"size": 1, "sha256": "0" * 64, "visibility": "secret"},
        {"size": 1, "sha256": "0" * 64, "metadata": [1]},
        {"size": 1, "sha256": "0" * 64, "metadata": {"k": "v" * 17000}},
        {"size": True, "sha256": "0" * 64},
    ]
    for b in bodies:
        r = api.post("/v1/arrays/alice/x/uploads", token=t, json=b)
        assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest"), b
    r = api.post("/v1/arrays/alice/x/uploads", token=t, data=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = api.post("/v1/arrays/alice/x/uploads", token=t, json={"size": 51 * 1024**3, "sha256": "0" * 64})
    assert (r.status_code, r.headers["X-Error-Code"]) == (413, "TooLarge")
    for q in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "garbage!"}):
        assert api.get("/v1/arrays/alice", token=t, params=q).status_code == 400, q
    assert api.get("/v1/widgets/alice", token=t).status_code == 404
    assert api.get("/v1/arrays/Not_A_NS", token=t).status_code == 400


def test_concurrent_pushes_get_distinct_versions(api, users):
    t = token(users, "alice")
    payloads = [random_bytes(200 + i) for i in range(6)]
    plans = [start(api, t, "alice/race", d).json() for d in payloads]
    parts = [put_parts(p, d) for p, d in zip(plans, payloads)]

    def complete(i):
        return api.post(f"/v1/arrays/alice/race/uploads/{plans[i]['upload_id']}/complete",
                        token=t, json={"parts": parts[i]})

    with cf.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(complete, range(6)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    versions = sorted(r.json()["version"] for r in results)
    assert versions == [1, 2, 3, 4, 5, 6]
    last = max(results, key=lambda r: r.json()["version"])
    info, body = pull(api, t, "alice/race")
    assert info["version"] == 6 and sha(body) == last.json()["sha256"]


def test_sixteen_racing_pushes_of_one_name_all_land(api, users):
    """Whole pushes from 16 threads, their completes released together: none is refused."""
    import threading

    t = token(users, "alice")
    n = 16
    payloads = [random_bytes(100 + i) for i in range(n)]
    together = threading.Barrier(n)

    def push_one(i):
        plan = start(api, t, "alice/crowd", payloads[i]).json()
        parts = put_parts(plan, payloads[i])
        together.wait(timeout=120)
        return api.post(f"/v1/arrays/alice/crowd/uploads/{plan['upload_id']}/complete",
                        token=t, json={"parts": parts})

    with cf.ThreadPoolExecutor(n) as pool:
        results = list(pool.map(push_one, range(n)))
    assert [r.status_code for r in results] == [200] * n, [r.text for r in results]
    by_version = {r.json()["version"]: r.json()["sha256"] for r in results}
    assert sorted(by_version) == list(range(1, n + 1))
    assert sorted(by_version.values()) == sorted(sha(d) for d in payloads)
    listed = api.get("/v1/arrays/alice/crowd/versions", token=t).json()["items"]
    assert {v["version"]: v["sha256"] for v in listed} == by_version
    info, body = pull(api, t, "alice/crowd")
    assert info["version"] == n and sha(body) == by_version[n]


def test_listing_pages_and_cursor_scope(api, users):
    ta, tb = token(users, "alice"), token(users, "bob")
    for i in range(5):
        push(api, ta, f"alice/pub{i}", b"x", visibility="public")
    for i in range(3):
        push(api, ta, f"alice/priv{i}", b"x")
    seen, cursor = [], None
    while True:
        r = api.get("/v1/arrays/alice", token=ta, params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        seen += [i["name"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted([f"pub{i}" for i in range(5)] + [f"priv{i}" for i in range(3)])
    r = api.get("/v1/arrays/alice", token=tb, params={"limit": 2})
    names = [i["name"] for i in r.json()["items"]]
    assert names == ["pub0", "pub1"]
    # bob cannot reuse alice's owner cursor to see her private arrays, nor a cursor elsewhere
    owner_cursor = api.get("/v1/arrays/alice", token=ta, params={"limit": 6}).json()["next_cursor"]
    assert api.get("/v1/arrays/alice", token=tb, params={"cursor": owner_cursor}).status_code == 400
    assert api.get("/v1/arrays/bob", token=ta, params={"cursor": owner_cursor}).status_code == 400
    anon = api.get("/v1/arrays/alice").json()["items"]
    assert {i["visibility"] for i in anon} == {"public"}


def _forged_cursor(cursor: str, change) -> str:
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    change(data["k"])
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_forged_cursor_is_400_not_a_store_error(api, users):
    """A cursor is the store's start key in base64: one edited to a key DynamoDB would refuse
    (another type, an extra type, a key outside the listing) is the caller's 400."""
    ta = token(users, "alice")
    for i in range(3):
        push(api, ta, f"alice/c{i}", b"x", visibility="public")
        push(api, ta, "alice/versioned", f"v{i}".encode())
    lists = [("/v1/arrays/alice", ta), ("/v1/arrays/alice", None),
             ("/v1/arrays/alice/versioned/versions", ta)]
    edits = [
        lambda k: k["sk"].update({"N": "1"}),
        lambda k: k.update({"sk": {"N": "1"}}),
        lambda k: k.update({"sk": {"S": "other#" + k["sk"]["S"]}}),
        lambda k: k.update({"pk": {"S": "bob#" + k["pk"]["S"].split("#", 1)[1]}}),
        lambda k: k.update({"sk": {"S": ["x"]}}),
    ]
    for path, t in lists:
        cursor = api.get(path, token=t, params={"limit": 1}).json()["next_cursor"]
        assert api.get(path, token=t, params={"cursor": cursor}).status_code == 200
        for edit in edits:
            r = api.get(path, token=t, params={"cursor": _forged_cursor(cursor, edit)})
            assert r.status_code == 400, (path, edits.index(edit), r.text)
            assert r.json()["Code"] == "InvalidRequest"


def test_patch_visibility_and_metadata(api, users):
    ta, tb = token(users, "alice"), token(users, "bob")
    push(api, ta, "alice/vis", b"data")
    assert api.get("/v1/arrays/alice/vis", token=tb).status_code == 404
    r = api.patch("/v1/arrays/alice/vis", token=ta, json={"visibility": "public", "metadata": {"a": 1}})
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    assert r.json()["metadata"] == {"a": 1}
    assert api.get("/v1/arrays/alice/vis", token=tb).status_code == 200
    assert [i["name"] for i in api.get("/v1/arrays/alice", token=tb).json()["items"]] == ["vis"]
    for b in ({}, {"visibility": "x"}, {"size": 3}, {"metadata": "x"}):
        assert api.patch("/v1/arrays/alice/vis", token=ta, json=b).status_code == 400, b


def test_delete_then_push_again(api, users):
    t = token(users, "alice")
    push(api, t, "alice/gone", b"old")
    assert api.delete("/v1/arrays/alice/gone", token=t).status_code == 204
    assert api.get("/v1/arrays/alice/gone", token=t).status_code == 404
    r = push(api, t, "alice/gone", b"new")
    assert r.status_code == 200 and r.json()["version"] == 1
    assert pull(api, t, "alice/gone")[1] == b"new"


def test_part_urls_can_be_renewed(api, users):
    """Part URLs live 15 minutes; a long upload asks for fresh ones and still completes."""
    t = token(users, "alice")
    data = random_bytes(11 * MiB)
    plan = start(api, t, "alice/slow", data).json()
    path = f"/v1/arrays/alice/slow/uploads/{plan['upload_id']}"
    r = api.post(path + "/parts", token=t, json={"part_numbers": [2, 3]})
    assert r.status_code == 200, r.text
    fresh = r.json()["parts"]
    assert [p["part_number"] for p in fresh] == [2, 3]
    renewed = {**plan, "parts": [plan["parts"][0], *fresh]}
    parts = put_parts(renewed, data)
    assert api.post(path + "/complete", token=t, json={"parts": parts}).status_code == 200
    # refusals: other users, bad numbers, a finished upload
    assert api.post(path + "/parts", token=token(users, "bob"), json={}).status_code == 403
    assert api.post(path + "/parts", token=t, json={}).status_code == 409
    plan = start(api, t, "alice/slow", random_bytes(11 * MiB)).json()  # other bytes: a new upload
    path = f"/v1/arrays/alice/slow/uploads/{plan['upload_id']}"
    for bad in ([0], [4], ["1"], [], "x"):
        assert api.post(path + "/parts", token=t, json={"part_numbers": bad}).status_code == 400, bad
    assert len(api.post(path + "/parts", token=t).json()["parts"]) == 3


def test_declared_part_digests_are_signed_into_each_part(api, users, aws_env):
    """With part_size and part_sha256, every part URL signs its own sha256 (S3 enforces it),
    the multipart upload is a SHA256 one, and the object still round-trips."""
    import base64
    import boto3

    t = token(users, "alice")
    part_size = 6 * MiB
    data = random_bytes(13 * MiB)
    chunks = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    r = start(api, t, "alice/parts", data, part_size=part_size,
              part_sha256=[sha(c) for c in chunks])
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["part_size"] == part_size and len(plan["parts"]) == 3
    for part, chunk in zip(plan["parts"], chunks):
        q = parse_qs(urlparse(part["url"]).query)
        assert "x-amz-checksum-sha256" in q["X-Amz-SignedHeaders"][0].split(";")
        assert base64.b64decode(part["headers"]["x-amz-checksum-sha256"]).hex() == sha(chunk)
    s3 = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    uploads = s3.list_multipart_uploads(Bucket=aws_env["NSHUB_BUCKET"])["Uploads"]
    assert [u.get("ChecksumAlgorithm") for u in uploads] == ["SHA256"]
    parts = put_parts(plan, data)
    r = api.post(f"/v1/arrays/alice/parts/uploads/{plan['upload_id']}/complete", token=t,
                 json={"parts": parts})
    assert r.status_code == 200, r.text
    assert pull(api, t, "alice/parts")[1] == data
    # a part size or digest list that does not fit is refused before anything is stored
    for extra in ({"part_size": 1024}, {"part_size": 6 * MiB, "part_sha256": ["0" * 64]},
                  {"part_sha256": "x"}):
        r = start(api, t, "alice/parts", data, **extra)
        assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest"), extra


def test_hostile_requests_are_400_never_500(api, users):
    """Inputs found in review: each once answered 500."""
    import base64
    import json

    t = token(users, "alice")
    push(api, t, "alice/ds", b"x", visibility="public")
    deep = b"[" * 100_000 + b"]" * 100_000
    r = api.post("/v1/auth/signup", data=deep, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest")
    for version in ("\u00b2", "9" * 5000, "-1", "1.0"):
        assert api.get("/v1/arrays/alice/ds", token=t, params={"version": version}).status_code == 400
    assert api.get("/v1/arrays/" + "a" * 3000 + "/ds", token=t).status_code == 400

    def cursor(scope, key):
        raw = json.dumps({"s": scope, "k": key}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def head_key(ns, visibility):
        return {"pk": {"S": keys.resource_pk(ns, "x")}, "sk": {"S": keys.head_sk("array")},
                "gsi1pk": {"S": keys.list_gsi_pk("array", ns)},
                "gsi1sk": {"S": keys.list_gsi_sk(visibility, "x")}}

    # the scope is what a listing's cursor says it lists: bob's listing of alice's public arrays
    forged = [
        cursor("array#alice#public", {"x": {"S": "1"}}),
        cursor("array#alice#public", head_key("bob", "public")),
        cursor("array#alice#public", head_key("alice", "private")),
        cursor("array#alice#public", {"pk": {"N": "1"}, "sk": {"S": "a"}, "gsi1pk": {"S": "b"},
                                      "gsi1sk": {"S": "c"}}),
    ]
    for c in forged:
        r = api.get("/v1/arrays/alice", token=users["bob"]["id_token"], params={"cursor": c})
        assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest"), c
    r = api.get("/v1/arrays/alice/ds/versions", token=t,
                params={"cursor": cursor("array#G#x#V#alice#ds",
                                         {"pk": {"S": keys.resource_pk("bob", "ds")}})})
    assert r.status_code == 400


def test_a_push_without_visibility_keeps_the_current_one(api, users):
    """A push that does not ask for a visibility leaves the resource's as it is, including a
    change made while its bytes were in flight (the commit writes only what the push
    changes)."""
    t = token(users, "alice")
    push(api, t, "alice/kept", b"one", visibility="public")
    plan = start(api, t, "alice/kept", b"two").json()
    parts = put_parts(plan, b"two")
    assert api.patch("/v1/arrays/alice/kept", token=t, json={"visibility": "private"}).status_code == 200
    r = api.post(f"/v1/arrays/alice/kept/uploads/{plan['upload_id']}/complete", token=t,
                 json={"parts": parts})
    assert r.status_code == 200
    assert api.get("/v1/arrays/alice/kept", token=t).json()["visibility"] == "private"
    assert api.get("/v1/arrays/alice/kept", token=users["bob"]["id_token"]).status_code == 404
