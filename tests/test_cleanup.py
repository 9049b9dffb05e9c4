"""Issue 5: event-driven cleanup and integrity. Nothing lost, nothing left behind.

The real handlers (app.on_blob_event, app.on_table_change, reconciler.reconcile) run against the
test's moto, fed by the dev stack's EventPump: push over HTTP, then `pump.drain()`.
"""
from __future__ import annotations

import copy
import json
import time
import uuid

import pytest
import requests

from chalicelib import cleanup, config, keys, reconciler
from devstack.pump import FakeLambdaContext
from tests.backend import (
    blob_keys,
    client,
    get_item,
    item_key,
    load_event,
    multipart_uploads,
    set_attributes,
    table_items,
    ttl_remove_record,
)
from tests.helpers import pull, push, put_parts, random_bytes, sha, start

MiB = 1024 * 1024


def ok_push(api, token, full_name, data) -> dict:
    r = push(api, token, full_name, data)
    assert r.status_code == 200, r.text
    return r.json()


def versions(api, token, full_name) -> list[int]:
    r = api.get(f"/v1/arrays/{full_name}/versions", token=token)
    assert r.status_code == 200, r.text
    return sorted(i["version"] for i in r.json()["items"])


@pytest.fixture
def grace(monkeypatch):
    """Set the orphan grace period (seconds) for the rest of the test."""
    def set_grace(seconds: int) -> None:
        monkeypatch.setenv("NSHUB_ORPHAN_GRACE_SECONDS", str(seconds))
        config.reset()

    return set_grace


# ---------------------------------------------------------------- delete


def test_deleting_an_array_removes_its_bytes_and_frees_the_name(api, users, pump, aws_env):
    # Given alice's array with two versions
    token = users["alice"]["id_token"]
    for _ in range(2):
        ok_push(api, token, "alice/ds", random_bytes(1000))
    pump.drain()
    old_keys = blob_keys(aws_env, "blobs/array/alice/ds/")
    assert len(old_keys) == 2

    # When she deletes it and the events are processed
    assert api.delete("/v1/arrays/alice/ds", token=token).status_code == 204
    pump.drain()

    # Then its bytes and records are gone, and the name can be pushed again
    assert blob_keys(aws_env, "blobs/array/alice/ds/") == set()
    assert table_items(aws_env, keys.resource_pk("alice", "ds")) == []
    data = random_bytes(500)
    assert ok_push(api, token, "alice/ds", data)["version"] == 1
    pump.drain()
    assert pull(api, token, "alice/ds")[1] == data


def test_a_repush_right_after_a_delete_keeps_its_bytes_through_the_old_cleanup(
        api, users, pump, aws_env):
    token = users["alice"]["id_token"]
    ok_push(api, token, "alice/ds", random_bytes(1000))
    ok_push(api, token, "alice/ds", random_bytes(1000))
    old_keys = blob_keys(aws_env, "blobs/array/alice/ds/")

    # Deleted and pushed again before any event is processed
    assert api.delete("/v1/arrays/alice/ds", token=token).status_code == 204
    data = random_bytes(700)
    assert ok_push(api, token, "alice/ds", data)["version"] == 1
    pump.drain()
    pump.drain()  # and nothing changes on a second round

    new_keys = blob_keys(aws_env, "blobs/array/alice/ds/")
    assert new_keys.isdisjoint(old_keys) and len(new_keys) == 1
    info, got = pull(api, token, "alice/ds")
    assert got == data and info["sha256"] == sha(data)
    assert versions(api, token, "alice/ds") == [1]


# ---------------------------------------------------------------- abandoned uploads


def test_an_abandoned_multipart_upload_is_aborted_when_its_record_expires(
        api, users, pump, aws_env):
    import app

    # Given a client that started a multipart upload, PUT one part, then went away
    token = users["alice"]["id_token"]
    data = random_bytes(6 * MiB)
    r = start(api, token, "alice/big", data)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert len(plan["parts"]) == 2
    part = plan["parts"][0]
    assert requests.put(part["url"], data=data[:plan["part_size"]], headers=part["headers"],
                        timeout=60).status_code == 200
    pump.drain()
    assert len(multipart_uploads(aws_env)) == 1  # a pending upload keeps its parts

    # When its record expires (TTL delete, synthesized: moto never expires items)
    record = ttl_remove_record(aws_env, keys.resource_pk("alice", "big"),
                               keys.upload_sk("array", plan["upload_id"]))
    assert record["dynamodb"]["OldImage"]["state"] == {"S": "pending"}
    result = app.on_table_change({"Records": [record]}, FakeLambdaContext())

    # Then the multipart upload is aborted, and nothing of it is left
    assert result == {"batchItemFailures": []}
    assert multipart_uploads(aws_env) == set()
    pump.drain()  # moto's own REMOVE record arrives too: a no-op
    assert blob_keys(aws_env) == set()
    assert api.get("/v1/arrays/alice/big", token=token).status_code == 404


def test_an_expired_single_part_upload_loses_the_bytes_it_put(api, users, pump, aws_env):
    import app

    token = users["alice"]["id_token"]
    data = random_bytes(1000)
    r = start(api, token, "alice/small", data)
    plan = r.json()
    put_parts(plan, data)  # PUT, never completed
    pump.drain()
    assert len(blob_keys(aws_env)) == 1  # pending: its object stays

    record = ttl_remove_record(aws_env, keys.resource_pk("alice", "small"),
                               keys.upload_sk("array", plan["upload_id"]))
    app.on_table_change({"Records": [record]}, FakeLambdaContext())
    assert blob_keys(aws_env) == set()
    # and the same event again changes nothing
    assert app.on_table_change({"Records": [record]}, FakeLambdaContext()) == {
        "batchItemFailures": []}


def test_an_expired_record_event_never_deletes_bytes_a_completed_record_claims(
        api, users, pump, aws_env):
    import app

    token = users["alice"]["id_token"]
    data = random_bytes(1000)
    r = start(api, token, "alice/done", data)
    plan = r.json()
    parts = put_parts(plan, data)
    # the record as it was while pending...
    pk, sk = keys.resource_pk("alice", "done"), keys.upload_sk("array", plan["upload_id"])
    pending = get_item(aws_env, pk, sk)
    # ...then completed
    assert api.post(f"/v1/arrays/alice/done/uploads/{plan['upload_id']}/complete", token=token,
                    json={"parts": parts}).status_code == 200
    record = load_event("ttl_remove_pending_upload.json")
    record["dynamodb"].update(Keys=item_key(pk, sk), OldImage=pending)
    app.on_table_change({"Records": [record]}, FakeLambdaContext())
    assert pull(api, token, "alice/done")[1] == data


# ---------------------------------------------------------------- retention


def test_retention_keeps_the_newest_five_versions(api, users, pump, aws_env):
    token = users["alice"]["id_token"]
    pushed = {}
    for _ in range(7):
        data = random_bytes(300)
        pushed[ok_push(api, token, "alice/ds", data)["version"]] = data
    pump.drain()

    assert versions(api, token, "alice/ds") == [3, 4, 5, 6, 7]
    for n in (1, 2):
        assert api.get("/v1/arrays/alice/ds", token=token, params={"version": n}).status_code == 404
    for n in range(3, 8):
        info, got = pull(api, token, "alice/ds", version=n)
        assert got == pushed[n] and info["sha256"] == sha(got)
    assert len(blob_keys(aws_env, "blobs/array/alice/ds/")) == 5
    uploads = [i for i in table_items(aws_env, keys.resource_pk("alice", "ds"))
               if i["sk"]["S"].startswith(keys.upload_prefix("array"))]
    assert sorted(int(u["version"]["N"]) for u in uploads) == [3, 4, 5, 6, 7]


def test_retention_keeps_versions_a_tag_points_to(api, users, pump, aws_env):
    """Tags are an executor feature; the cleanup reads them off any head, so an array head
    given a tag directly stands in for an executor here (see also the selection test)."""
    token = users["alice"]["id_token"]
    for _ in range(6):
        ok_push(api, token, "alice/ds", random_bytes(300))
    set_attributes(aws_env, keys.resource_pk("alice", "ds"), keys.head_sk("array"),
                   tags={"S": json.dumps({"stable": 1})})
    ok_push(api, token, "alice/ds", random_bytes(300))
    pump.drain()
    assert versions(api, token, "alice/ds") == [1, 3, 4, 5, 6, 7]
    assert len(blob_keys(aws_env, "blobs/array/alice/ds/")) == 6


def test_retention_keeps_tagged_executor_versions(api, users, pump, aws_env, tmp_path):
    from tests.executor_packages import package, push_executor

    token = users["alice"]["id_token"]
    r = push_executor(api, token, "alice/exec", package(tmp_path, "1"), tags=["stable"])
    assert r.status_code == 200, r.text
    for n in range(2, 8):
        assert push_executor(api, token, "alice/exec", package(tmp_path, str(n))).status_code == 200
    pump.drain()

    listed = api.get("/v1/executors/alice/exec/versions", token=token).json()["items"]
    assert sorted(i["version"] for i in listed) == [1, 3, 4, 5, 6, 7]
    stable = api.get("/v1/executors/alice/exec", token=token, params={"tag": "stable"}).json()
    assert stable["version"] == 1
    assert sha(requests.get(stable["download_url"], timeout=60).content) == stable["sha256"]
    assert len(blob_keys(aws_env, "blobs/executor/alice/exec/")) == 6
    # the same stream handler started the image builds
    latest = api.get("/v1/executors/alice/exec", token=token).json()
    assert latest["version"] == 7 and latest["image_status"] == "building"


@pytest.mark.parametrize("existing,retention,keep,expected", [
    (range(1, 8), 5, (), [1, 2]),
    (range(1, 8), 5, (1,), [2]),  # tagged
    (range(1, 8), 5, (2, 7), [1]),  # tagged and current
    (range(1, 4), 5, (), []),
    ([3, 4, 5, 6, 7, 8], 5, (), [3]),
    (range(1, 8), 1, (4,), [1, 2, 3, 5, 6]),
    ([], 5, (1,), []),
])
def test_retention_selection(existing, retention, keep, expected):
    assert cleanup.select_expired(existing, retention, keep) == expected


# ---------------------------------------------------------------- at-least-once delivery


def test_duplicate_and_out_of_order_events_change_nothing_twice(
        api, users, pump, recording, aws_env, grace):
    import app

    grace(0)
    token = users["alice"]["id_token"]
    for _ in range(7):
        ok_push(api, token, "alice/ds", random_bytes(300))
    ok_push(api, token, "alice/gone", random_bytes(300))
    assert api.delete("/v1/arrays/alice/gone", token=token).status_code == 204
    data = random_bytes(300)
    ok_push(api, token, "alice/gone", data)  # a re-push of the deleted name
    pump.drain()
    keys_after, listing = blob_keys(aws_env), versions(api, token, "alice/ds")
    assert recording.sqs_events and recording.stream_events

    # Every event again, twice, newest first
    for _ in range(2):
        for event in reversed(recording.stream_events):
            assert app.on_table_change(copy.deepcopy(event), FakeLambdaContext()) == {
                "batchItemFailures": []}
        for event in reversed(recording.sqs_events):
            assert app.on_blob_event(copy.deepcopy(event), FakeLambdaContext()) == {
                "batchItemFailures": []}

    assert blob_keys(aws_env) == keys_after
    assert versions(api, token, "alice/ds") == listing == [3, 4, 5, 6, 7]
    assert pull(api, token, "alice/gone")[1] == data


def test_a_poison_message_lands_in_the_dead_letter_queue_without_blocking_others(
        api, users, pump, aws_env, grace):
    grace(0)
    sqs, s3 = client(aws_env, "sqs"), client(aws_env, "s3")
    queue = aws_env["NSHUB_EVENTS_QUEUE_URL"]
    sqs.send_message(QueueUrl=queue, MessageBody="this is not JSON")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": "nope"}))
    # alongside real work: an object nobody claims, and a real push
    s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key="blobs/array/alice/ghost/x1", Body=b"boo")
    token = users["alice"]["id_token"]
    data = random_bytes(400)
    ok_push(api, token, "alice/ds", data)

    pump.drain()

    (kept,) = blob_keys(aws_env)  # the orphan went, the pushed bytes stayed
    assert kept.startswith("blobs/array/alice/ds/")
    assert pull(api, token, "alice/ds")[1] == data
    dead = sqs.receive_message(QueueUrl=aws_env["NSHUB_EVENTS_DLQ_URL"],
                               MaxNumberOfMessages=10).get("Messages", [])
    assert sorted(m["Body"] for m in dead) == sorted(
        ["this is not JSON", json.dumps({"Records": "nope"})])
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []


def test_blob_events_skip_the_s3_test_event_and_decode_keys(aws_env, grace):
    import app

    grace(0)
    s3 = client(aws_env, "s3")
    key = "blobs/array/alice/odd name+/u1"
    s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key=key, Body=b"x")
    test_event = load_event("s3_test_event.json")
    created = load_event("s3_object_created.json")
    record = created["Records"][0]
    record["s3"]["bucket"]["name"] = aws_env["NSHUB_BUCKET"]
    record["s3"]["object"]["key"] = "blobs/array/alice/odd+name%2B/u1"
    record["eventTime"] = "2020-01-01T00:00:00.000Z"
    event = {"Records": [
        {"messageId": "m1", "receiptHandle": "r1", "body": json.dumps(test_event)},
        {"messageId": "m2", "receiptHandle": "r2", "body": json.dumps(created)},
        {"messageId": "m3", "receiptHandle": "r3", "body": json.dumps(created)},  # duplicate
    ]}
    assert app.on_blob_event(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert blob_keys(aws_env) == set()


def test_a_young_orphan_survives_its_event(aws_env, pump):
    # default grace (a day): the reconciler takes it later, never the event handler now
    client(aws_env, "s3").put_object(Bucket=aws_env["NSHUB_BUCKET"],
                                     Key="blobs/array/alice/ghost/x1", Body=b"boo")
    pump.drain()
    assert blob_keys(aws_env) == {"blobs/array/alice/ghost/x1"}


# ---------------------------------------------------------------- reconciler


def test_reconciler_dry_run_lists_and_a_real_run_deletes_exactly_the_orphans(
        api, users, pump, aws_env, grace, capsys):
    from chalicelib import admin

    bucket = aws_env["NSHUB_BUCKET"]
    s3 = client(aws_env, "s3")
    token = users["alice"]["id_token"]
    # What must stay: a live version, a pending upload's bytes, a pending multipart upload
    live = random_bytes(500)
    ok_push(api, token, "alice/live", live)
    pending = random_bytes(100)
    plan = start(api, token, "alice/pending", pending).json()
    pending_parts = put_parts(plan, pending)
    mp_plan = start(api, token, "alice/pendingmp", random_bytes(6 * MiB)).json()
    # What must go: objects no record claims, multipart uploads no record claims
    orphans = {"blobs/array/alice/ghost/" + uuid.uuid4().hex, "blobs/junk.bin",
               "blobs/executor/bob/thing/" + uuid.uuid4().hex}
    for key in orphans:
        s3.put_object(Bucket=bucket, Key=key, Body=b"orphan!")
    pump.drain()
    before = blob_keys(aws_env)
    assert orphans <= before

    # A fresh orphan is kept while the grace period is long
    summary = reconciler.reconcile()
    assert summary["deleted"] == 0 and {o["key"] for o in summary["orphans"]} == set()
    assert blob_keys(aws_env) == before
    # (A multipart upload's age is S3's Initiated, only ever a reason to keep it; moto reports
    # 2010 for every upload, so a record-less one is always old enough here.)
    stray_mp = s3.create_multipart_upload(Bucket=bucket, Key="blobs/array/alice/ghost/mp1")

    grace(0)
    capsys.readouterr()
    assert admin.main(["reconcile", "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] is True and dry["deleted"] == 0 and dry["aborted"] == 0
    assert {o["key"] for o in dry["orphans"]} == orphans
    assert [m["upload_id"] for m in dry["orphan_multipart_uploads"]] == [stray_mp["UploadId"]]
    assert blob_keys(aws_env) == before
    assert len(multipart_uploads(aws_env)) == 2

    summary = reconciler.reconcile()
    assert summary["deleted"] == len(orphans) and summary["aborted"] == 1
    assert summary["bytes_reclaimed"] == len(orphans) * len(b"orphan!")
    assert blob_keys(aws_env) == before - orphans
    assert {k for k, _ in multipart_uploads(aws_env)} == {
        f"blobs/array/alice/pendingmp/{mp_plan['upload_id']}"}
    assert pull(api, token, "alice/live")[1] == live
    # pending uploads are still completable
    r = api.post(f"/v1/arrays/alice/pending/uploads/{plan['upload_id']}/complete", token=token,
                 json={"parts": pending_parts})
    assert r.status_code == 200, r.text
    assert reconciler.reconcile()["orphans_found"] == 0


def test_reconciler_reclaims_uploads_expired_beyond_the_grace_period(
        api, users, aws_env, grace):
    token = users["alice"]["id_token"]
    data = random_bytes(100)
    plan = start(api, token, "alice/late", data).json()
    put_parts(plan, data)
    mp_plan = start(api, token, "alice/latemp", random_bytes(6 * MiB)).json()
    for name, upload_id in (("late", plan["upload_id"]), ("latemp", mp_plan["upload_id"])):
        set_attributes(aws_env, keys.resource_pk("alice", name),
                       keys.upload_sk("array", upload_id),
                       expires_at={"N": str(int(time.time()) - 3600)})
    grace(7200)  # expired an hour ago: still within the grace period
    assert reconciler.reconcile()["orphans_found"] == 0
    grace(600)
    summary = reconciler.reconcile()
    assert {o["reason"] for o in summary["orphans"]} == {"expired"}
    assert {m["reason"] for m in summary["orphan_multipart_uploads"]} == {"expired"}
    assert blob_keys(aws_env) == set() and multipart_uploads(aws_env) == set()
    assert table_items(aws_env, keys.resource_pk("alice", "late")) == []
    assert table_items(aws_env, keys.resource_pk("alice", "latemp")) == []
    # too late to complete now
    r = api.post(f"/v1/arrays/alice/late/uploads/{plan['upload_id']}/complete", token=token,
                 json={"parts": [{"part_number": 1, "etag": '"x"'}]})
    assert r.status_code == 404


def test_reconciler_reclaims_what_a_lost_stream_event_left_behind(api, users, aws_env, grace):
    # No pump: the head's REMOVE never reaches the handler
    token = users["alice"]["id_token"]
    ok_push(api, token, "alice/ds", random_bytes(100))
    assert api.delete("/v1/arrays/alice/ds", token=token).status_code == 204
    grace(0)
    summary = reconciler.reconcile()
    assert [o["reason"] for o in summary["orphans"]] == ["dead"]
    assert blob_keys(aws_env) == set()
    assert table_items(aws_env, keys.resource_pk("alice", "ds")) == []


def test_the_scheduled_reconciler_runs(aws_env, grace):
    import app

    grace(0)
    s3 = client(aws_env, "s3")
    s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key="blobs/x", Body=b"1")
    s3.create_multipart_upload(Bucket=aws_env["NSHUB_BUCKET"], Key="blobs/y")
    event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
             "resources": [], "detail": {}}
    summary = app.reconcile(event, FakeLambdaContext())
    assert summary["deleted"] == 1 and blob_keys(aws_env) == set()
    assert summary["aborted"] == 1 and summary["complete"] is True
    assert s3.list_multipart_uploads(Bucket=aws_env["NSHUB_BUCKET"]).get("Uploads", []) == []


def test_the_reconciler_resumes_where_its_budget_stopped_it(aws_env, grace):
    """A run whose budget runs out saves where it stopped; the next one continues after the
    last key it judged (an object that appeared before that key waits for the next pass),
    and a finished pass clears the cursor so the following run starts over."""
    grace(0)
    s3 = client(aws_env, "s3")
    names = [f"blobs/array/alice/x/u{i}" for i in range(5)]  # nothing claims them: orphans
    for key in names:
        s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key=key, Body=b"1")

    first = reconciler.reconcile(resume=True, max_items=2)
    assert (first["complete"], first["resumed_from"]) == (False, None)
    assert [o["key"] for o in first["orphans"]] == names[:2]
    early = "blobs/array/alice/x/a0"  # sorts before the cursor
    s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key=early, Body=b"1")

    second = reconciler.reconcile(resume=True, max_items=2)
    assert second["resumed_from"] == {"phase": "objects", "after": names[1]}
    assert [o["key"] for o in second["orphans"]] == names[2:4]
    assert second["complete"] is False

    third = reconciler.reconcile(resume=True, max_items=2)
    assert [o["key"] for o in third["orphans"]] == names[4:]
    assert third["complete"] is True and reconciler.load_cursor() == {}
    assert blob_keys(aws_env) == {early}

    fourth = reconciler.reconcile(resume=True, max_items=2)  # a new pass, from the first key
    assert fourth["resumed_from"] is None
    assert [o["key"] for o in fourth["orphans"]] == [early]
    assert blob_keys(aws_env) == set()


def test_a_dry_run_or_an_unbudgeted_run_leaves_the_cursor_alone(aws_env, grace):
    grace(0)
    s3 = client(aws_env, "s3")
    for i in range(3):
        s3.put_object(Bucket=aws_env["NSHUB_BUCKET"], Key=f"blobs/array/a/b/u{i}", Body=b"1")
    assert reconciler.reconcile(resume=True, max_items=1)["complete"] is False
    saved = reconciler.load_cursor()
    assert saved == {"phase": "objects", "after": "blobs/array/a/b/u0"}
    assert reconciler.reconcile(dry_run=True, resume=True, max_items=1)["resumed_from"] == saved
    assert reconciler.load_cursor() == saved  # a dry run reads the cursor, never moves it
    full = reconciler.reconcile()  # the operator's run: the whole bucket, no cursor
    assert full["objects_scanned"] == 2 and full["complete"] is True
    assert reconciler.load_cursor() == saved


def test_images_of_dropped_executor_versions_go(api, users, pump, aws_env, tmp_path):
    """Retention untags the images of the versions it drops; deleting the executor deletes its
    repository, so a re-push of the name never exposes the old generation's images."""
    from chalicelib.config import get_aws
    from tests.executor_packages import package, push_executor

    ecr = get_aws().client("ecr")
    token = users["alice"]["id_token"]

    def image_tags():
        found = ecr.list_images(repositoryName="nshub/alice/exec")["imageIds"]
        return sorted(i["imageTag"] for i in found if "imageTag" in i)

    for n in range(1, 8):
        assert push_executor(api, token, "alice/exec", package(tmp_path, str(n))).status_code == 200
        pump.drain()  # the build trigger creates the repository; stand in for CodeBuild's push
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": 1, "digest": f"sha256:{n:064x}"},
            "layers": []})
        ecr.put_image(repositoryName="nshub/alice/exec", imageManifest=manifest,
                      imageTag=f"v{n}")
    assert image_tags() == ["v3", "v4", "v5", "v6", "v7"]
    assert api.delete("/v1/executors/alice/exec", token=token).status_code == 204
    pump.drain()
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert "nshub/alice/exec" not in names
