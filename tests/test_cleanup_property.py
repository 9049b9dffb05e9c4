"""Issue 5, as a property: whatever users do and however events arrive (late, twice, out of
order), every live version downloads with its sha256, and after a reconcile nothing under
blobs/ is left that no record claims.

One moto stack for the whole test (the `aws_env` fixture); each example works on names of
its own, so what earlier examples left behind is still subject to the global invariants.
"""
from __future__ import annotations

import copy
import itertools
import time

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    rule,
)
from hypothesis.stateful import run_state_machine_as_test

from chalicelib import config, keys, reconciler
from devstack.pump import EventPump, FakeLambdaContext
from tests.helpers import push, put_parts, sha, start
from tests.backend import blob_keys, get_item, multipart_uploads, ttl_remove_record

MiB = 1024 * 1024
EXAMPLES = 8
STEPS = 15
_machine_ids = itertools.count()


def independently_claimed(env: dict, key: str, now: float) -> bool:
    """Does a record claim `key`? Read straight from the table, not through cleanup.py."""
    ref = keys.parse_blob_key(key)
    if ref is None:
        return False

    def get(sk):
        return get_item(env, ref.pk, sk)

    upload = get(ref.upload_sk)
    if upload is None:
        return False
    if upload["state"]["S"] == "pending":
        return int(upload["expires_at"]["N"]) > now
    generation, version = upload["generation"]["S"], int(upload["version"]["N"])
    head = get(keys.head_sk(ref.kind))
    return (head is not None and head["generation"]["S"] == generation
            and get(keys.version_sk(ref.kind, generation, version)) is not None)


def test_cleanup_keeps_every_live_version_and_leaves_nothing_behind(
        api, users, aws_env, monkeypatch):
    import app

    monkeypatch.setenv("NSHUB_ORPHAN_GRACE_SECONDS", "0")  # the harshest: nothing is young
    config.reset()
    token = users["alice"]["id_token"]
    env = aws_env
    feed = {"duplicate": False, "sqs": [], "stream": []}

    def on_sqs(event, context):
        feed["sqs"].append(copy.deepcopy(event))
        result = app.on_blob_event(event, context)
        if feed["duplicate"]:
            result = app.on_blob_event(copy.deepcopy(event), context)
        return result

    def on_stream(event, context):
        feed["stream"].append(copy.deepcopy(event))
        result = app.on_table_change(event, context)
        if feed["duplicate"]:
            result = app.on_table_change(copy.deepcopy(event), context)
        return result

    pump = EventPump(env, on_sqs, on_stream, wait_seconds=0, failed_visibility_timeout=0)

    class Registry(RuleBasedStateMachine):
        uploads = Bundle("uploads")  # pending (maybe half-sent) uploads: (name, plan, data, parts)

        @initialize()
        def fresh_names(self):
            n = next(_machine_ids)
            self.names = [f"p{n}a", f"p{n}b"]
            self.latest: dict[str, bytes | None] = {name: None for name in self.names}
            feed["sqs"].clear()
            feed["stream"].clear()

        # ------------------------------------------------------------ users
        @rule(i=st.integers(0, 1), data=st.binary(min_size=1, max_size=300))
        def push(self, i, data):
            name = self.names[i]
            r = push(api, token, f"alice/{name}", data)
            assert r.status_code == 200, r.text
            self.latest[name] = data

        @rule(target=uploads, i=st.integers(0, 1), data=st.binary(min_size=1, max_size=300),
              put=st.booleans())
        def start_upload(self, i, data, put):
            name = self.names[i]
            r = start(api, token, f"alice/{name}", data)
            assert r.status_code == 201, r.text
            plan = r.json()
            parts = put_parts(plan, data) if put else None
            return (name, plan, data, parts)

        @rule(target=uploads, i=st.integers(0, 1))
        def abandon_multipart(self, i):
            """A client starts a large upload, sends a bit of one part, and goes away."""
            name = self.names[i]
            r = api.post(f"/v1/arrays/alice/{name}/uploads", token=token,
                         json={"size": 6 * MiB, "sha256": "0" * 64, "part_size": 5 * MiB,
                               "part_sha256": ["0" * 64] * 2})
            assert r.status_code == 201, r.text
            plan = r.json()
            # S3 refuses a body shorter than the part's signed length: the multipart upload
            # stays, with no part
            assert requests.put(plan["parts"][0]["url"], data=b"partial",
                                timeout=60).status_code == 403
            return (name, plan, None, None)

        @rule(upload=consumes(uploads))
        def complete(self, upload):
            name, plan, data, parts = upload
            if data is None or parts is None:
                return  # never sent (or abandoned): nothing to complete
            r = api.post(f"/v1/arrays/alice/{name}/uploads/{plan['upload_id']}/complete",
                         token=token, json={"parts": parts})
            if r.status_code == 404:  # expired (TTL) before completion
                return
            assert r.status_code == 200, r.text
            self.latest[name] = data

        @rule(upload=consumes(uploads))
        def abort(self, upload):
            name, plan, _, _ = upload
            r = api.delete(f"/v1/arrays/alice/{name}/uploads/{plan['upload_id']}", token=token)
            assert r.status_code in (204, 404), r.text

        @rule(upload=consumes(uploads))
        def ttl_expiry(self, upload):
            name, plan, _, _ = upload
            try:
                record = ttl_remove_record(env, keys.resource_pk("alice", name),
                                           keys.upload_sk("array", plan["upload_id"]))
            except KeyError:
                return  # already gone
            assert app.on_table_change({"Records": [record]}, FakeLambdaContext()) == {
                "batchItemFailures": []}

        @rule(i=st.integers(0, 1))
        def delete(self, i):
            name = self.names[i]
            r = api.delete(f"/v1/arrays/alice/{name}", token=token)
            assert r.status_code == (404 if self.latest[name] is None else 204), r.text
            self.latest[name] = None

        # ------------------------------------------------------------ events
        @rule(duplicate=st.booleans())
        def deliver_events(self, duplicate):
            feed["duplicate"] = duplicate
            try:
                pump.drain()
            finally:
                feed["duplicate"] = False

        @rule(data=st.data())
        def replay_an_old_event(self, data):
            """Deliver again something delivered before, now out of order."""
            sources = [k for k in ("sqs", "stream") if feed[k]]
            if not sources:
                return
            source = data.draw(st.sampled_from(sources))
            event = copy.deepcopy(data.draw(st.sampled_from(feed[source])))
            handler = app.on_blob_event if source == "sqs" else app.on_table_change
            assert handler(event, FakeLambdaContext()) == {"batchItemFailures": []}

        @rule()
        def reconcile(self):
            reconciler.reconcile()
            now = time.time()
            for key in blob_keys(env):
                assert independently_claimed(env, key, now), f"{key} is left behind"
            for key, upload_id in multipart_uploads(env):
                ref = keys.parse_blob_key(key)
                item = get_item(env, ref.pk, ref.upload_sk)
                assert item is not None and item["state"]["S"] == "pending", key
                assert item["s3_upload_id"]["S"] == upload_id, key

        # ------------------------------------------------------------ what users see
        @rule()
        def check(self):
            self.every_live_version_downloads()

        def every_live_version_downloads(self):
            for name, latest in self.latest.items():
                r = api.get(f"/v1/arrays/alice/{name}", token=token)
                if latest is None:
                    assert r.status_code == 404, r.text
                    continue
                assert r.status_code == 200, r.text
                assert r.json()["sha256"] == sha(latest)
                listed = api.get(f"/v1/arrays/alice/{name}/versions", token=token).json()["items"]
                for info in listed:
                    got = api.get(f"/v1/arrays/alice/{name}", token=token,
                                  params={"version": info["version"]})
                    assert got.status_code == 200, got.text
                    body = requests.get(got.json()["download_url"], timeout=60)
                    assert body.status_code == 200, f"{name} v{info['version']} lost its bytes"
                    assert sha(body.content) == info["sha256"]

        def teardown(self):
            pump.drain()
            self.every_live_version_downloads()
            self.reconcile()
            self.every_live_version_downloads()

    run_state_machine_as_test(Registry, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
        suppress_health_check=list(HealthCheck), derandomize=False, database=None,
    ))
