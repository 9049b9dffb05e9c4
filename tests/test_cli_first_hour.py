"""A new user's first hour with the `nshub` command, against the real app: every failure is
one line that fits what went wrong, and a hint that fits too."""
from __future__ import annotations

import requests
import pytest

from chalicelib import config
from tests.executor_packages import executor_folder
from tests.helpers import push
from tests.cli_runner import run
from tests.devstack_process import free_port

PASSWORD = "Alice-passw0rd"


@pytest.fixture
def alice(live_api, users, home, monkeypatch, capsys):
    """alice, signed in with `nshub login`."""
    code, _, err = run(capsys, "login", "alice", "--password-stdin", stdin=PASSWORD + "\n",
                       monkeypatch=monkeypatch)
    assert code == 0, err
    return live_api


def error_and_hint(err: str) -> tuple[str, str | None]:
    lines = err.splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), err
    hint = lines[1] if len(lines) == 2 else None
    assert hint is None or hint.startswith("hint: ")
    return lines[0], hint


def test_a_push_without_a_namespace_says_the_namespace_is_missing(alice, tmp_path, capsys):
    (tmp_path / "train.bin").write_bytes(b"data")
    code, _, err = run(capsys, "push", str(tmp_path / "train.bin"), "carol")
    assert code == 1
    line, hint = error_and_hint(err)
    assert "push to 'namespace/name', e.g. 'alice/carol'" in line
    assert "legacy" not in err


def test_an_executor_uri_typo_gets_a_hint_about_executors(alice, capsys):
    code, _, err = run(capsys, "hub", "pull", "jinaai:/alice/MyExecutor:v1")
    assert code == 1
    _, hint = error_and_hint(err)
    assert hint == "hint: did you mean jinaai://alice/MyExecutor:v1?"
    assert "arrays" not in err


@pytest.mark.parametrize("uri, meant", [
    ("jinahub:/MyExec:s3cr3t/v1", "jinahub://MyExec:<secret>/v1"),
    ("jinahub+docker:MyExec:s3cr3t", "jinahub+docker://MyExec:<secret>"),
])
def test_a_mistyped_legacy_uri_never_echoes_its_secret(alice, capsys, uri, meant):
    code, out, err = run(capsys, "hub", "pull", uri)
    assert code == 1
    line, hint = error_and_hint(err)
    assert hint == f"hint: did you mean {meant}?"
    assert "s3cr3t" not in out + err and "MyExec:<secret>" in line


def test_a_bad_array_name_gets_no_hint_about_the_form(alice, capsys):
    code, _, err = run(capsys, "pull", "alice/bad_")
    assert code == 1
    line, hint = error_and_hint(err)
    assert "invalid name 'bad_'" in line and hint is None


def test_a_missing_tag_or_version_points_at_the_versions(alice, tmp_path, capsys):
    executor_folder(tmp_path / "MyExecutor")
    assert run(capsys, "hub", "push", str(tmp_path / "MyExecutor"), "--tag", "v1")[0] == 0
    code, _, err = run(capsys, "hub", "info", "alice/MyExecutor:v9")
    assert code == 1
    line, hint = error_and_hint(err)
    assert "(NotFound)" in line
    assert "`nshub hub versions alice/MyExecutor` lists its versions and tags" in hint

    (tmp_path / "d.bin").write_bytes(b"data")
    assert run(capsys, "push", str(tmp_path / "d.bin"), "alice/ds")[0] == 0
    code, _, err = run(capsys, "info", "alice/ds", "--version", "9")
    assert code == 1
    _, hint = error_and_hint(err)
    assert "`nshub versions alice/ds` lists its versions" in hint


def test_a_wrong_password_does_not_say_run_nshub_login(live_api, users, home, monkeypatch,
                                                      capsys):
    code, _, err = run(capsys, "login", "alice", "--password-stdin", stdin="Wrong-passw0rd\n",
                       monkeypatch=monkeypatch)
    assert code == 1
    line, hint = error_and_hint(err)
    assert "wrong username or password" in line
    assert "nshub signup" in hint and "nshub login" not in hint


def test_whoami_against_an_unreachable_endpoint_says_so(home, capsys):
    code, _, err = run(capsys, "--endpoint", f"http://127.0.0.1:{free_port()}", "whoami")
    assert code == 1
    line, hint = error_and_hint(err)
    assert "(ServerUnreachable)" in line and "not logged in" not in err


def test_whoami_with_a_login_for_another_endpoint_names_it(alice, capsys, monkeypatch):
    monkeypatch.setenv("NSHUB_ENDPOINT", alice.replace("127.0.0.1", "localhost"))
    code, _, err = run(capsys, "whoami")
    assert code == 1
    line, hint = error_and_hint(err)
    assert f"your login as alice is for {alice}" in line
    assert f"NSHUB_ENDPOINT={alice}" in hint


@pytest.mark.parametrize("endpoint", ["127.0.0.1:8000", "localhost", "ftp://127.0.0.1"])
def test_an_endpoint_without_a_scheme_is_one_clear_line(home, capsys, endpoint):
    code, _, err = run(capsys, "--endpoint", endpoint, "info", "alice/x")
    assert code == 1
    line, hint = error_and_hint(err)
    assert line.startswith(f"error: invalid endpoint '{endpoint}': use http://HOST:PORT")
    assert "(InvalidEndpoint)" in line and "NSHUB_ENDPOINT" in hint
    assert "adapters" not in err


def test_after_a_restart_a_stale_login_says_how_to_sign_in_again(
        alice, moto_server, api, capsys, monkeypatch):
    # Given alice signed in, then the dev stack restarted (all of its state is in memory)
    from devstack.bootstrap import provision

    requests.post(f"{moto_server}/moto-api/reset", timeout=30).raise_for_status()
    for name, value in provision(moto_server, region="us-east-1", stage="dev").items():
        monkeypatch.setenv(name, value)
    config.reset()
    assert api.post("/v1/auth/signup", json={"username": "bob", "password": "Bob-passw0rd1",
                                             "email": "bob@example.com"}).status_code == 201
    bob = api.post("/v1/auth/login", json={"username": "bob", "password": "Bob-passw0rd1"})
    assert push(api, bob.json()["id_token"], "bob/pub", b"public bytes",
                visibility="public").status_code == 200

    # When she reads a public array with her stored login
    code, _, err = run(capsys, "info", "bob/pub")

    # Then she is told that her login is stale and how to sign in again
    assert code == 1
    line, hint = error_and_hint(err)
    assert "no longer accepts your login as alice" in line
    assert "run `nshub login alice` again" in line
    assert "nshub logout" in hint
    # and after `nshub logout` the public read works
    assert run(capsys, "logout")[0] == 0
    assert run(capsys, "info", "bob/pub")[0] == 0


def test_hub_info_on_a_server_without_image_builds_says_so(alice, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.setenv("NSHUB_IMAGE_BUILDS", "0")  # what the dev stack sets
    config.reset()
    executor_folder(tmp_path / "MyExecutor")
    assert run(capsys, "hub", "push", str(tmp_path / "MyExecutor"))[0] == 0
    code, out, _ = run(capsys, "hub", "info", "alice/MyExecutor")
    assert code == 0
    status = next(line for line in out.splitlines() if line.startswith("image_status:"))
    assert "pending (this server builds no images: a dev stack has no CodeBuild" in status
    assert "jinaai://alice/MyExecutor" in status
