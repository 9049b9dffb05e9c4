"""`nshub hub ...` against the real app (served over HTTP on moto)."""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from nshub import Client
from tests.backend import get_item
from tests.cli_runner import run
from tests.executor_packages import import_legacy_executor, make_executor


@pytest.fixture
def alice(live_api, users, home):
    """alice's login stored in NSHUB_HOME, as `nshub login alice` leaves it."""
    with Client() as client:
        client.login("alice", users["alice"]["password"])
    return users["alice"]


def mark_image_ready(env: dict, namespace: str, name: str, version: int) -> None:
    """What CodeBuild's `SUCCEEDED` state change does to a version (via EventBridge)."""
    from chalicelib import images
    from chalicelib import keys
    from chalicelib.config import get_settings

    pk = keys.resource_pk(namespace, name)
    generation = get_item(env, pk, keys.head_sk("executor"))["generation"]["S"]
    sk = keys.version_sk("executor", generation, version)
    event = {"detail": {
        "project-name": get_settings().codebuild_project,
        "build-status": "SUCCEEDED",
        "build-id": f"arn:aws:codebuild:us-east-1:123456789012:build/{get_settings().codebuild_project}:b1",
        "additional-information": {"environment": {"environment-variables": [
            {"name": images.ENV_VERSION_PK, "value": pk},
            {"name": images.ENV_VERSION_SK, "value": sk},
        ]}},
    }}
    assert images.record_build_state(event) == "ready"


def test_push_pull_and_manage_an_executor(alice, home, tmp_path, capsys, monkeypatch):
    folder = make_executor(tmp_path / "src")

    code, out, err = run(capsys, "hub", "push", str(folder), "--tag", "v1", "--protected-tag",
                         "stable", "--json")
    assert code == 0, err
    pushed = json.loads(out)
    assert (pushed["full_name"], pushed["version"]) == ("alice/MyExecutor", 1)
    assert pushed["tags"] == ["latest", "stable", "v1"]

    code, out, err = run(capsys, "hub", "push", str(folder), "--name", "Other", "--public")
    assert code == 0, err
    assert out.splitlines() == [
        f"pushed alice/Other version 1 ({out.split('(')[1].split(',')[0]}, public; tags: latest)",
        "use it as jinaai://alice/Other",
    ]

    # pull prints the folder only, so that `cd "$(nshub hub pull ...)"` works
    code, out, err = run(capsys, "hub", "pull", "jinaai://alice/MyExecutor:v1")
    assert code == 0, err
    path = Path(out.strip())
    assert path == home / "executors" / "alice" / "myexecutor" / "v1"
    assert (path / "config.yml").read_bytes() == (folder / "config.yml").read_bytes()
    code, out, _ = run(capsys, "hub", "pull", "jinaai://alice/MyExecutor", "--json")
    assert json.loads(out) == {"path": str(path), "full_name": "alice/MyExecutor", "version": 1,
                               "sha256": pushed["sha256"], "cached": True}

    # a protected tag never moves: one line, no traceback
    with open(folder / "executor.py", "a") as fh:  # other bytes: a new version
        fh.write("# changed\n")
    code, out, err = run(capsys, "hub", "push", str(folder), "--protected-tag", "stable")
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ") and err.rstrip().endswith("(TagProtected)")

    code, out, _ = run(capsys, "hub", "ls", "alice")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:3] == ["NAME", "VERSION", "TAGS"]
    assert sorted(r[0] for r in rows[1:]) == ["alice/MyExecutor", "alice/Other"]

    code, out, _ = run(capsys, "hub", "info", "alice/MyExecutor:stable")
    assert code == 0 and "protected_tags: stable" in out and "version:        1" in out
    code, out, _ = run(capsys, "hub", "info", "jinaai://alice/MyExecutor", "--json")
    assert code == 0 and "download_url" not in json.loads(out)
    code, out, _ = run(capsys, "hub", "versions", "alice/MyExecutor", "--json")
    assert [v["version"] for v in json.loads(out)["items"]] == [1]

    assert run(capsys, "hub", "visibility", "alice/MyExecutor", "public")[:2] == (
        0, "alice/MyExecutor is now public\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = run(capsys, "hub", "rm", "alice/Other")
    assert code == 1 and "pass --yes" in err
    assert run(capsys, "hub", "rm", "alice/Other", "--yes")[:2] == (0, "deleted alice/Other\n")
    code, _, err = run(capsys, "hub", "info", "alice/Other")
    assert code == 1 and err.splitlines()[0].endswith("(NotFound)")


def test_what_others_see(alice, users, tmp_path, capsys, monkeypatch):
    assert run(capsys, "hub", "push", str(make_executor(tmp_path / "src")))[0] == 0
    monkeypatch.setenv("NSHUB_TOKEN", users["bob"]["id_token"])

    code, out, err = run(capsys, "hub", "pull", "jinaai://alice/MyExecutor")
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == (
        "error: executor 'alice/MyExecutor' does not exist or is private: check the name and "
        "your login (NotFound)"
    )
    assert run(capsys, "hub", "ls", "alice")[:2] == (0, "no executors in alice that you can see\n")
    code, _, err = run(capsys, "hub", "push", str(tmp_path / "src"), "--secret", "x")
    assert code == 1 and "--secret goes with --legacy NAME" in err


def test_docker_uris(alice, aws_env, tmp_path, capsys, monkeypatch):
    assert run(capsys, "hub", "push", str(make_executor(tmp_path / "src")))[0] == 0

    code, out, err = run(capsys, "hub", "pull", "jinaai+docker://alice/MyExecutor")
    assert (code, out) == (1, "")
    assert err == (
        "error: the image for alice/MyExecutor v1 is still building (status: pending): try "
        "again in a few minutes, or pull jinaai://alice/MyExecutor to run from source "
        "(ImageNotReady)\n"
    )

    mark_image_ready(aws_env, "alice", "MyExecutor", 1)
    code, out, err = run(capsys, "hub", "pull", "jinaai+docker://alice/MyExecutor", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["image_status"] == "ready"
    assert shown["image"].endswith("/nshub/alice/myexecutor:v1")

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    (bin_dir / "docker").write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"open({str(log)!r}, 'w').write(' '.join(sys.argv[1:]) + '|' + sys.stdin.read())\n"
    )
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    code, out, err = run(capsys, "hub", "pull", "jinaai+docker://alice/MyExecutor",
                         "--docker-login")
    assert code == 0, err
    assert out == shown["image"] + "\n"
    args, _, password = log.read_text().partition("|")
    assert args.startswith("login --username ") and "--password-stdin" in args
    assert password and password not in out + err
    assert err.startswith("docker is logged in to ")


def test_legacy_push_and_pull_with_the_secret(live_api, users, home, tmp_path, capsys):
    folder = make_executor(tmp_path / "old", "OldExecutor")
    import_legacy_executor("OldExecutor", "alice", "s3cret-1", folder, public=False)
    capsys.readouterr()

    code, out, err = run(capsys, "hub", "pull", "jinahub://OldExecutor:s3cret-1")
    assert code == 0, err
    assert Path(out.strip()) == home / "executors" / "alice" / "oldexecutor" / "v1"
    code, out, err = run(capsys, "hub", "pull", "jinahub://OldExecutor:wrong")
    assert code == 1 and err.splitlines()[0].endswith("(NotFound)")
    assert "wrong" not in err

    with open(folder / "executor.py", "a") as fh:  # other bytes: a new version
        fh.write("# changed\n")
    code, out, err = run(capsys, "hub", "push", str(folder), "--legacy", "OldExecutor",
                         "--secret", "s3cret-1", "--tag", "v2", "--json")
    assert code == 0, err
    assert (json.loads(out)["full_name"], json.loads(out)["version"]) == ("alice/OldExecutor", 2)
    code, _, err = run(capsys, "hub", "push", str(folder), "--legacy", "OldExecutor",
                       "--secret", "wrong")
    assert code == 1 and err.splitlines()[0].endswith("(NotFound)")
