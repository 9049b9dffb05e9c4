"""Executors over HTTP: push and pull of real packages, validation of hostile ones, size
limits, tags and protected tags (the generic /v1/executors/{ns}/{name} routes)."""
from __future__ import annotations

import hashlib
import json

import pytest

from chalicelib import keys
from tests.backend import record, set_attributes
from tests.executor_packages import (
    CONFIG_YML,
    executor_folder,
    hostile_packages,
    pack,
    package,
    pulled_zip,
    push_executor,
)
from tests.helpers import put_parts, sha, start


def token(users, who="alice"):
    return users[who]["id_token"]


# ---------------------------------------------------------------- push and pull


def test_pushed_executor_pulls_back_byte_identical(api, users, aws_env, tmp_path):
    # Given an executor folder with a config.yml
    folder = executor_folder(tmp_path / "MyExecutor")
    data = pack(folder)
    # When alice pushes it
    r = push_executor(api, token(users), "alice/MyExecutor", data)
    assert r.status_code == 200, r.text
    info = r.json()
    # Then it is version 1, tagged latest, with an image name and a pending image
    registry = aws_env["NSHUB_ECR_REGISTRY"]
    assert info["kind"] == "executor" and info["full_name"] == "alice/MyExecutor"
    assert info["version"] == 1 and info["tags"] == ["latest"]
    assert info["image"] == f"{registry}/nshub/alice/myexecutor:v1"
    assert info["image_status"] == "pending"
    # And a pull by name or by tag gets the same bytes, config.yml byte for byte
    for params in ({}, {"tag": "latest"}):
        r = api.get("/v1/executors/alice/myexecutor", token=token(users), params=params)
        assert r.status_code == 200, r.text
        pulled = r.json()
        assert pulled["sha256"] == sha(data) and pulled["version"] == 1
        assert pulled["image"] == info["image"] and pulled["image_status"] == "pending"
        with pulled_zip(pulled) as zf:
            assert zf.read("config.yml") == (folder / "config.yml").read_bytes() == CONFIG_YML
            assert zf.read("executor.py") == (folder / "executor.py").read_bytes()


def test_version_stores_the_package_summary(api, users, aws_env, tmp_path):
    data = package(tmp_path)
    assert push_executor(api, token(users), "alice/MyExecutor", data).status_code == 200
    pk = keys.resource_pk("alice", "MyExecutor")
    head = record(aws_env, pk, keys.head_sk("executor"))
    version = record(aws_env, pk, keys.version_sk("executor", head.generation, 1))
    summary = json.loads(version.package)
    assert summary == {
        "jtype": "MyExecutor", "name": "MyExecutor", "manifest": None, "files": 4,
        "unpacked_size": summary["unpacked_size"], "has_dockerfile": True,
        "md5": hashlib.md5(data).hexdigest(),  # noqa: S324 - what Jina clients check
    }
    assert summary["unpacked_size"] > 0


@pytest.mark.parametrize("case", sorted(hostile_packages()))
def test_hostile_package_is_refused_and_no_version_appears(api, users, aws_env, case):
    from chalicelib.config import get_aws

    data = hostile_packages()[case]
    # When alice pushes a hostile package
    plan = start(api, token(users), "alice/evil", data, kind="executors").json()
    parts = put_parts(plan, data)
    r = api.post(f"/v1/executors/alice/evil/uploads/{plan['upload_id']}/complete",
                 token=token(users), json={"parts": parts})
    # Then it is refused with one clear line
    assert r.status_code == 400, r.text
    assert r.json()["Code"] == "InvalidPackage" == r.headers["X-Error-Code"]
    assert "\n" not in r.json()["Message"]
    # And no version exists, and its bytes are gone
    assert api.get("/v1/executors/alice/evil", token=token(users)).status_code == 404
    listed = get_aws().s3.list_objects_v2(Bucket=aws_env["NSHUB_BUCKET"],
                                          Prefix="blobs/executor/alice/evil/")
    assert listed.get("KeyCount", 0) == 0


def test_hostile_package_leaves_latest_untouched(api, users, tmp_path):
    good = package(tmp_path)
    assert push_executor(api, token(users), "alice/exec", good).status_code == 200
    r = push_executor(api, token(users), "alice/exec", hostile_packages()["zip slip"])
    assert r.status_code == 400 and r.json()["Code"] == "InvalidPackage"
    info = api.get("/v1/executors/alice/exec", token=token(users)).json()
    assert info["version"] == 1 and info["sha256"] == sha(good)
    versions = api.get("/v1/executors/alice/exec/versions", token=token(users)).json()["items"]
    assert [v["version"] for v in versions] == [1]


def test_executor_over_the_size_limit_is_413(api, users, aws_env):
    from chalicelib.config import get_settings

    limit = get_settings().max_executor_bytes
    assert limit == 100 * 1024 * 1024
    body = {"size": limit + 1, "sha256": "0" * 64}
    r = api.post("/v1/executors/alice/big/uploads", token=token(users), json=body)
    assert r.status_code == 413 and r.json()["Code"] == "TooLarge"
    # at the limit it is accepted (an array of that size is nowhere near its own limit)
    r = api.post("/v1/executors/alice/big/uploads", token=token(users),
                 json={"size": limit, "sha256": "0" * 64})
    assert r.status_code == 201, r.text
    parts = -(-(limit + 1) // (5 * 1024 * 1024))  # an array in parts declares their digests
    r = api.post("/v1/arrays/alice/big/uploads", token=token(users), json={
        **body, "part_size": 5 * 1024 * 1024, "part_sha256": ["0" * 64] * parts})
    assert r.status_code == 201, r.text


def test_names_are_case_insensitive(api, users, tmp_path):
    assert push_executor(api, token(users), "alice/MyExecutor", package(tmp_path, "a")).status_code == 200
    r = push_executor(api, token(users), "alice/myexecutor", package(tmp_path, "b"))
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.json()["name"] == "MyExecutor"  # the first spelling is kept


# ---------------------------------------------------------------- tags


def tag_of(api, users, tag):
    r = api.get("/v1/executors/alice/exec", token=token(users), params={"tag": tag})
    return r.status_code, (r.json() if r.status_code == 200 else r.json()["Code"])


def test_tags_move_to_the_new_version_and_info_lists_its_own(api, users, tmp_path):
    t = token(users)
    r = push_executor(api, t, "alice/exec", package(tmp_path, "1"), tags=["beta"])
    assert r.json()["tags"] == ["beta", "latest"]
    r = push_executor(api, t, "alice/exec", package(tmp_path, "2"))  # newest: latest
    assert r.json()["version"] == 2 and r.json()["tags"] == ["latest"]
    status, info = tag_of(api, users, "beta")
    assert status == 200 and info["version"] == 1 and info["tags"] == ["beta"]
    status, info = tag_of(api, users, "latest")
    assert info["version"] == 2 and info["tags"] == ["latest"]
    with pulled_zip(info) as zf:
        assert "'2'" in zf.read("executor.py").decode()
    assert tag_of(api, users, "nope") == (404, "NotFound")
    assert tag_of(api, users, "-bad")[1] == "InvalidName"


def test_invalid_tag_at_push_is_400(api, users, tmp_path):
    r = start(api, token(users), "alice/exec", package(tmp_path), kind="executors",
              tags=["has space"])
    assert r.status_code == 400 and r.json()["Code"] == "InvalidName"


def test_protected_tag_never_moves(api, users, tmp_path):
    t = token(users)
    # Given v1 pushed with a protected tag `stable`
    r = push_executor(api, t, "alice/exec", package(tmp_path, "1"), protected_tags=["stable"])
    assert r.status_code == 200
    assert r.json()["tags"] == ["latest", "stable"] and r.json()["protected_tags"] == ["stable"]
    # When v2 is pushed with default tags, latest moves and stable stays
    assert push_executor(api, t, "alice/exec", package(tmp_path, "2")).json()["version"] == 2
    assert tag_of(api, users, "stable")[1]["version"] == 1
    # When a push asks to move `stable`, either as a tag or as a protected tag: 409
    for extra in ({"tags": ["stable"]}, {"protected_tags": ["stable"]},
                  {"tags": ["v3", "stable"]}):
        r = start(api, t, "alice/exec", package(tmp_path, "3"), kind="executors", **extra)
        assert r.status_code == 409 and r.json()["Code"] == "TagProtected", r.text
    # Then nothing changed
    assert tag_of(api, users, "stable")[1]["version"] == 1
    assert tag_of(api, users, "latest")[1]["version"] == 2
    versions = api.get("/v1/executors/alice/exec/versions", token=t).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    # And a new protected tag is fine
    r = push_executor(api, t, "alice/exec", package(tmp_path, "4"), protected_tags=["v4"])
    assert r.status_code == 200 and r.json()["tags"] == ["latest", "v4"]
    assert r.json()["protected_tags"] == ["stable", "v4"]


def test_latest_is_always_the_newest_version(api, users, tmp_path):
    t = token(users)
    assert push_executor(api, t, "alice/exec", package(tmp_path, "1")).json()["version"] == 1
    # a push with its own tag: `latest` still moves to it
    r = push_executor(api, t, "alice/exec", package(tmp_path, "2"), tags=["v2"])
    assert (r.json()["version"], r.json()["tags"]) == (2, ["latest", "v2"])
    no_tag = api.get("/v1/executors/alice/exec", token=t).json()
    status, latest = tag_of(api, users, "latest")
    assert status == 200 and no_tag["version"] == latest["version"] == 2
    assert no_tag["sha256"] == latest["sha256"] == r.json()["sha256"]
    versions = api.get("/v1/executors/alice/exec/versions", token=t).json()["items"]
    assert [(v["version"], v["tags"]) for v in versions] == [(2, ["latest", "v2"]), (1, [])]


@pytest.mark.parametrize("extra", [{"tags": ["latest"]}, {"protected_tags": ["latest"]},
                                   {"tags": ["v1", "latest"]}])
def test_nobody_sets_or_protects_latest(api, users, tmp_path, extra):
    r = start(api, token(users), "alice/exec", package(tmp_path), kind="executors", **extra)
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest"), r.text
    assert "'latest' always names the newest version" in r.json()["Message"]


def test_latest_stored_by_the_old_rule_is_ignored(api, users, aws_env, tmp_path):
    t = token(users)
    assert push_executor(api, t, "alice/exec", package(tmp_path, "1")).status_code == 200
    # Given a head written before the rule: `latest` a stored, protected tag of v1
    set_attributes(aws_env, keys.resource_pk("alice", "exec"), keys.head_sk("executor"),
                   tags={"S": json.dumps({"latest": 1, "old": 1})},
                   protected_tags={"SS": ["latest"]})
    info = api.get("/v1/executors/alice/exec", token=t).json()
    assert (info["tags"], info["protected_tags"]) == (["latest", "old"], [])
    # When v2 is pushed: not blocked, and `latest` names it
    r = push_executor(api, t, "alice/exec", package(tmp_path, "2"))
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["tags"], r.json()["protected_tags"]) == (2, ["latest"], [])
    assert tag_of(api, users, "latest")[1]["version"] == 2
    assert tag_of(api, users, "old")[1]["version"] == 1


def test_protected_tag_taken_during_an_upload_refuses_its_completion(api, users, tmp_path):
    t = token(users)
    first, second = package(tmp_path, "1"), package(tmp_path, "2")
    # Two pushes ask for the new protected tag `gold` at the same time
    plan_a = start(api, t, "alice/exec", first, kind="executors", protected_tags=["gold"]).json()
    plan_b = start(api, t, "alice/exec", second, kind="executors", protected_tags=["gold"]).json()
    parts_a, parts_b = put_parts(plan_a, first), put_parts(plan_b, second)
    r = api.post(f"/v1/executors/alice/exec/uploads/{plan_a['upload_id']}/complete",
                 token=t, json={"parts": parts_a})
    assert r.status_code == 200
    r = api.post(f"/v1/executors/alice/exec/uploads/{plan_b['upload_id']}/complete",
                 token=t, json={"parts": parts_b})
    assert r.status_code == 409 and r.json()["Code"] == "TagProtected"
    info = api.get("/v1/executors/alice/exec", token=t).json()
    assert info["version"] == 1 and info["sha256"] == sha(first)
