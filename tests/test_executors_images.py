"""Executor container images: the build trigger (table stream -> CodeBuild), the build-state
handler (EventBridge -> status), and per-repository pull credentials.

Under moto the build itself never runs: the trigger's real boto3 calls go to moto, the
parameters are read as the app's client sends them, and state changes are driven with
events of AWS's documented shape (tests/events/codebuild_state_change.json).
"""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from chalicelib import keys
from tests.backend import record, set_attributes
from tests.executor_packages import (
    Recorder,
    StreamDriver,
    build_state_event,
    package,
    push_executor,
)


def token(users, who="alice"):
    return users[who]["id_token"]


@pytest.fixture
def start_builds(aws_env):
    recorder = Recorder("codebuild", "StartBuild")
    yield recorder
    recorder.close()


@pytest.fixture
def stream(aws_env):
    return StreamDriver(aws_env)


def info(api, users, params=None, name="alice/exec"):
    r = api.get(f"/v1/executors/{name}", token=token(users), params=params or {})
    assert r.status_code == 200, r.text
    return r.json()


def env_of(call: dict) -> dict[str, str]:
    return {v["name"]: v["value"] for v in call["environmentVariablesOverride"]}


def invoke_state_handler(event: dict):
    """The deployed path: Lambda invokes `on_image_build_state` with the EventBridge event."""
    from chalice.test import Client

    import app as app_module

    with Client(app_module.app) as client:
        return client.lambda_.invoke("on_image_build_state", event).payload


def version_item(name: str, number: int):
    """alice's executor `name`, version `number`, as stored (the stack aws_env set up)."""
    pk = keys.resource_pk("alice", name)
    head = record(os.environ, pk, keys.head_sk("executor"))
    return record(os.environ, pk, keys.version_sk("executor", head.generation, number))


# ---------------------------------------------------------------- the build trigger


def test_a_new_version_starts_one_image_build(api, users, aws_env, tmp_path, start_builds, stream):
    from chalicelib.config import get_aws

    # Given alice pushed an executor with an extra tag
    r = push_executor(api, token(users), "alice/Exec", package(tmp_path), tags=["gpu"])
    assert r.status_code == 200
    # When the table stream delivers the new version
    builds = stream.run()
    # Then exactly one CodeBuild build was started, with the package and the image names
    assert len(builds) == 1 and len(start_builds.calls) == 1
    call = start_builds.calls[0]
    version = version_item("Exec", 1)
    assert call["projectName"] == aws_env["NSHUB_CODEBUILD_PROJECT"]
    assert "sourceTypeOverride" not in call  # the project's buildspec fetches PACKAGE_KEY
    env = env_of(call)
    assert env["PACKAGE_BUCKET"] == aws_env["NSHUB_BUCKET"]
    assert env["PACKAGE_KEY"] == version.blob_key
    assert env["IMAGE_REPOSITORY"] == "nshub/alice/exec"
    assert env["IMAGE_TAG"] == "v1"
    assert env["IMAGE_TAGS"].split() == ["v1", "gpu", "latest"]
    assert (env["NSHUB_VERSION_PK"], env["NSHUB_VERSION_SK"]) == (version.pk, version.sk)
    # And moto knows the build, ECR has the repository, the version records the build
    cb = get_aws().client("codebuild")
    assert [b["id"] for b in cb.batch_get_builds(ids=builds)["builds"]] == builds
    repos = get_aws().client("ecr").describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in repos] == ["nshub/alice/exec"]
    assert version.image_build_id == builds[0] and version.image_status == "building"
    assert info(api, users)["image_status"] == "building"


def test_a_redelivered_record_starts_no_second_build(api, users, aws_env, tmp_path, start_builds):
    push_executor(api, token(users), "alice/exec", package(tmp_path))
    first = StreamDriver(aws_env).run()
    again = StreamDriver(aws_env).run()  # a second reader from the stream's start
    assert len(first) == 1 and again == [] and len(start_builds.calls) == 1


def test_each_version_builds_into_the_same_repository(api, users, tmp_path, start_builds, stream):
    from chalicelib.config import get_aws

    push_executor(api, token(users), "alice/exec", package(tmp_path, "1"))
    push_executor(api, token(users), "alice/exec", package(tmp_path, "2"))
    builds = stream.run()
    assert len(builds) == 2
    tags = [env_of(c)["IMAGE_TAGS"].split() for c in start_builds.calls]
    assert tags == [["v1"], ["v2", "latest"]]  # latest had moved on when v1's build started
    repos = get_aws().client("ecr").describe_repositories()["repositories"]
    assert len(repos) == 1
    assert info(api, users)["image"].endswith("/nshub/alice/exec:v2")


def test_no_build_for_a_deleted_executor(api, users, tmp_path, start_builds, stream):
    push_executor(api, token(users), "alice/exec", package(tmp_path))
    assert api.delete("/v1/executors/alice/exec", token=token(users)).status_code == 204
    assert stream.run() == [] and start_builds.calls == []


def test_a_name_ecr_refuses_fails_its_image_without_a_build(api, users, tmp_path, start_builds,
                                                            stream):
    # `a__b` is a valid nshub name but not a valid ECR repository name
    push_executor(api, token(users), "alice/a__b", package(tmp_path))
    assert stream.run() == [] and start_builds.calls == []
    assert info(api, users, name="alice/a__b")["image_status"] == "failed"


def test_a_failed_start_can_be_retried(api, users, aws_env, tmp_path):
    from botocore.exceptions import ClientError

    from chalicelib import images
    from chalicelib.config import get_aws

    push_executor(api, token(users), "alice/exec", package(tmp_path))
    record = _version_insert_record(aws_env)
    events = get_aws().client("codebuild").meta.events

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                          "StartBuild")

    events.register("before-call.codebuild.StartBuild", throttled)
    try:
        with pytest.raises(ClientError):
            images.handle_stream_record(record)
    finally:
        events.unregister("before-call.codebuild.StartBuild", throttled)
    assert info(api, users)["image_status"] == "pending"  # the claim was released
    assert images.handle_stream_record(record) is not None  # the stream's retry
    assert info(api, users)["image_status"] == "building"


def _version_insert_record(env) -> dict:
    """The stream's INSERT record of the one executor version, as the stream delivers it."""
    records = []

    def collect(event, context):
        records.extend(event["Records"])
        return {"batchItemFailures": []}

    from devstack.pump import EventPump

    EventPump(env, on_sqs=None, on_stream=collect).run_once()
    found = [r for r in records if r["eventName"] == "INSERT"
             and keys.parse_sk(r["dynamodb"]["NewImage"]["sk"]["S"])["type"] == "version"]
    assert len(found) == 1
    return found[0]


def test_other_records_are_ignored(aws_env):
    from chalicelib import images

    pk = keys.resource_pk("alice", "x")
    head = {"eventName": "INSERT", "dynamodb": {"NewImage": {
        "pk": {"S": pk}, "sk": {"S": keys.head_sk("executor")}}}}
    array_version = {"eventName": "INSERT", "dynamodb": {"NewImage": {
        "pk": {"S": pk}, "sk": {"S": keys.version_sk("array", "g", 1)}}}}
    modify = {"eventName": "MODIFY", "dynamodb": {"NewImage": {
        "pk": {"S": pk}, "sk": {"S": keys.version_sk("executor", "g", 1)}}}}
    assert [images.handle_stream_record(r) for r in (head, array_version, modify)] == [None] * 3


# ---------------------------------------------------------------- build state changes


@pytest.fixture
def building(api, users, aws_env, tmp_path, start_builds, stream):
    """alice/exec v1 whose image build has started: (build id, the build's env)."""
    push_executor(api, token(users), "alice/exec", package(tmp_path))
    (build_id,) = stream.run()
    return build_id, env_of(start_builds.calls[0])


def test_build_success_makes_the_image_ready(api, users, building):
    build_id, env = building
    assert invoke_state_handler(build_state_event("IN_PROGRESS", build_id, env)) == "building"
    assert info(api, users)["image_status"] == "building"
    assert invoke_state_handler(build_state_event("SUCCEEDED", build_id, env)) == "ready"
    shown = info(api, users)
    assert shown["image_status"] == "ready" and shown["image"].endswith("/nshub/alice/exec:v1")
    assert info(api, users, {"tag": "latest"})["image_status"] == "ready"
    versions = api.get("/v1/executors/alice/exec/versions", token=token(users)).json()["items"]
    assert versions[0]["image_status"] == "ready"
    version = version_item("exec", 1)
    assert version.image_status == "ready" and version.image_build_id == build_id
    assert version.image_log_url.endswith(f"stream={build_id.split(':', 1)[1]}")


@pytest.mark.parametrize("status", ["FAILED", "FAULT", "STOPPED", "TIMED_OUT"])
def test_build_failures_fail_the_image(api, users, building, status):
    build_id, env = building
    assert invoke_state_handler(build_state_event(status, build_id, env)) == "failed"
    assert info(api, users)["image_status"] == "failed"
    assert version_item("exec", 1).image_log_url.startswith("https://console.aws.amazon.com/")


def test_late_and_repeated_events_never_move_status_back(api, users, building):
    build_id, env = building
    assert invoke_state_handler(build_state_event("SUCCEEDED", build_id, env)) == "ready"
    # a repeat, a late IN_PROGRESS and a contradicting FAILED change nothing
    for late in ("SUCCEEDED", "IN_PROGRESS", "FAILED"):
        assert invoke_state_handler(build_state_event(late, build_id, env)) is None
        assert info(api, users)["image_status"] == "ready"


def test_events_of_other_builds_and_projects_are_ignored(api, users, building):
    build_id, env = building
    project = build_id.split(":", 1)[0]
    other_build = f"{project}:00000000-0000-0000-0000-000000000000"
    assert invoke_state_handler(build_state_event("FAILED", other_build, env)) is None
    other_project = build_state_event("FAILED", build_id, env, project="someone-elses-project")
    assert invoke_state_handler(other_project) is None
    no_env = build_state_event("FAILED", build_id, {"PACKAGE_KEY": env["PACKAGE_KEY"]})
    assert invoke_state_handler(no_env) is None
    assert info(api, users)["image_status"] == "building"


def test_an_older_version_build_does_not_touch_the_latest(api, users, tmp_path, building,
                                                          start_builds, stream):
    build_id, env = building
    push_executor(api, token(users), "alice/exec", package(tmp_path, "2"))
    assert invoke_state_handler(build_state_event("SUCCEEDED", build_id, env)) == "ready"
    assert info(api, users)["version"] == 2 and info(api, users)["image_status"] == "pending"
    assert info(api, users, {"version": 1})["image_status"] == "ready"
    (second,) = stream.run()
    env2 = env_of(start_builds.calls[-1])
    assert invoke_state_handler(build_state_event("FAILED", second, env2)) == "failed"
    assert info(api, users)["image_status"] == "failed"
    assert info(api, users, {"version": 1})["image_status"] == "ready"


def test_the_event_can_arrive_before_the_build_id_is_recorded(api, users, aws_env, tmp_path):
    """EventBridge may deliver before the trigger writes the build id: the version is found
    by the environment variables alone, and the trigger's own write cannot regress it."""
    from chalicelib.store import builds

    push_executor(api, token(users), "alice/exec", package(tmp_path))
    version = version_item("exec", 1)
    env = {"NSHUB_VERSION_PK": version.pk, "NSHUB_VERSION_SK": version.sk}
    build_id = "nshub-executor-images-dev:11111111-2222-3333-4444-555555555555"
    assert invoke_state_handler(build_state_event("SUCCEEDED", build_id, env)) == "ready"
    assert builds.set_status(version.pk, version.sk, "building", build_id, None) is False
    assert info(api, users)["image_status"] == "ready"


# ---------------------------------------------------------------- pull credentials


def test_pull_session_policy_names_exactly_one_repository(aws_env):
    from chalicelib import pulls

    policy = pulls.pull_session_policy("nshub/alice/exec")
    text = json.dumps(policy)
    arn = "arn:aws:ecr:us-east-1:123456789012:repository/nshub/alice/exec"
    login, pull = policy["Statement"]
    assert login == {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
                     "Resource": "*"}
    assert pull["Effect"] == "Allow" and pull["Resource"] == arn
    assert sorted(pull["Action"]) == ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                      "ecr:GetDownloadUrlForLayer"]
    # one repository ARN, no wildcard but GetAuthorizationToken's "*", nothing else allowed
    assert text.count(":repository/") == 1 and text.count("*") == 1
    assert "nshub/alice/other" not in text and "nshub/bob/exec" not in text
    assert all(s["Effect"] == "Allow" for s in policy["Statement"]) and len(policy["Statement"]) == 2
    assert pulls.pull_session_policy("nshub/bob/exec")["Statement"][1]["Resource"] != arn


def test_pull_credentials_over_http(api, users, aws_env, tmp_path):
    sts = Recorder("sts", "AssumeRole")
    try:
        push_executor(api, token(users), "alice/Exec", package(tmp_path), tags=["gpu"])
        before = dt.datetime.now(dt.timezone.utc)
        r = api.post("/v1/executors/alice/exec/pull-credentials", token=token(users),
                     params={"tag": "gpu"})
    finally:
        sts.close()
    assert r.status_code == 200, r.text
    creds = r.json()
    registry = aws_env["NSHUB_ECR_REGISTRY"]
    assert creds["registry"] == registry and creds["repository"] == "nshub/alice/exec"
    assert creds["image"] == f"{registry}/nshub/alice/exec:v1"
    assert creds["username"] == "AWS" and creds["password"]
    expires = dt.datetime.fromisoformat(creds["expires_at"].replace("Z", "+00:00"))
    assert before < expires <= before + dt.timedelta(seconds=900 + 5)
    # the role was assumed for 15 minutes with the one-repository session policy
    (call,) = sts.calls
    assert call["RoleArn"] == aws_env["NSHUB_ECR_PULL_ROLE_ARN"]
    assert call["DurationSeconds"] == 900
    from chalicelib import pulls

    assert json.loads(call["Policy"]) == pulls.pull_session_policy("nshub/alice/exec")
    assert "alice" in call["RoleSessionName"]


def test_pull_credentials_for_a_missing_tag_or_executor_are_404(api, users, aws_env, tmp_path):
    push_executor(api, token(users), "alice/exec", package(tmp_path))
    r = api.post("/v1/executors/alice/exec/pull-credentials", token=token(users),
                 params={"tag": "nope"})
    assert r.status_code == 404
    assert api.post("/v1/executors/alice/nothing/pull-credentials",
                    token=token(users)).status_code == 404


# ---------------------------------------------------------------- builds whose event was lost


def run_reconciler(monkeypatch=None, hours_later: bool = False) -> dict:
    """The scheduled reconciler, as Lambda invokes it; `hours_later`: once builds have had
    all their time (the threshold drops to 0 instead of the clock moving on)."""
    import app as app_module
    from chalicelib import config
    from devstack.pump import FakeLambdaContext

    if hours_later:
        monkeypatch.setenv("NSHUB_STUCK_BUILD_SECONDS", "0")
        config.reset()
    event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
             "resources": [], "detail": {}}
    return app_module.reconcile(event, FakeLambdaContext())


def test_a_build_whose_state_event_was_lost_is_settled_by_the_reconciler(
        api, users, building, monkeypatch):
    build_id, _ = building
    # Within a build's lifetime the reconciler leaves it alone
    assert run_reconciler()["stuck_builds"] == {"checked": 0, "ready": 0, "failed": 0,
                                                "still_running": 0}
    assert info(api, users)["image_status"] == "building"
    # Later, no event came: CodeBuild is asked (moto's builds have all succeeded)
    assert run_reconciler(monkeypatch, hours_later=True)["stuck_builds"]["ready"] == 1
    assert info(api, users)["image_status"] == "ready"
    assert version_item("exec", 1).image_build_id == build_id
    # Settled once: the next run finds nothing to check
    assert run_reconciler(monkeypatch, hours_later=True)["stuck_builds"]["checked"] == 0


def test_a_build_codebuild_does_not_know_fails(api, users, aws_env, tmp_path, stream,
                                               monkeypatch):
    push_executor(api, token(users), "alice/exec", package(tmp_path))
    stream.run()
    # CodeBuild forgot the build (deleted): the version and its watch name an unknown id
    gone = aws_env["NSHUB_CODEBUILD_PROJECT"] + ":0000-gone"
    version_pk, version_sk = _version_key("exec", 1)
    for key in ((version_pk, version_sk), (version_pk, keys.head_sk("executor")),
                keys.build_watch_key(version_pk, version_sk)):
        set_attributes(aws_env, *key, image_build_id={"S": gone})
    assert run_reconciler(monkeypatch, hours_later=True)["stuck_builds"]["failed"] == 1
    assert info(api, users)["image_status"] == "failed"


def test_a_recorded_outcome_stops_the_watch(api, users, building, monkeypatch):
    build_id, env = building
    assert invoke_state_handler(build_state_event("FAILED", build_id, env)) == "failed"
    assert run_reconciler(monkeypatch, hours_later=True)["stuck_builds"]["checked"] == 0
    assert info(api, users)["image_status"] == "failed"


def _version_key(name: str, number: int) -> tuple[str, str]:
    version = version_item(name, number)
    return version.pk, version.sk



def test_a_server_without_image_builds_starts_none_and_says_so(
        api, users, tmp_path, start_builds, stream, monkeypatch):
    from chalicelib import config

    # Given a server configured as the dev stack is (no CodeBuild)
    monkeypatch.setenv("NSHUB_IMAGE_BUILDS", "0")
    config.reset()
    assert api.get("/v1/config").json()["image_builds"] is False

    # When an executor is pushed and the stream delivers it
    assert push_executor(api, token(users), "alice/exec", package(tmp_path)).status_code == 200
    assert stream.run() == []

    # Then no build started, and the image stays pending
    assert start_builds.calls == []
    assert info(api, users)["image_status"] == "pending"


def test_config_says_images_are_built_by_default(api):
    assert api.get("/v1/config").json()["image_builds"] is True
