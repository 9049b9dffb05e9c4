"""nshub.executors against the real app (served over HTTP on moto): push folders, pull URIs."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from nshub import Client, executors
from nshub.errors import InvalidName, InvalidPackage, NotFound, NotLoggedIn, TagProtected
from nshub.packaging import PackagingError
from tests.executor_packages import import_legacy_executor, make_executor


@pytest.fixture
def alice(live_api, users, home):
    client = Client()
    client.login("alice", users["alice"]["password"])
    with client:
        yield client


@pytest.fixture
def bob(live_api, users):
    with Client(token=users["bob"]["id_token"]) as client:
        yield client


def downloads(client: Client, api_endpoint: str) -> list[str]:
    """Record every request of `client` that does not go to the API (i.e. to presigned URLs)."""
    seen: list[str] = []
    client.session.hooks["response"].append(
        lambda r, *args, **kwargs: None if r.url.startswith(api_endpoint) else seen.append(r.url)
    )
    return seen


# --------------------------------------------------------------------------- names (offline)


def test_the_name_is_the_flag_else_metas_name_else_jtype(tmp_path):
    plain = make_executor(tmp_path / "a", "Plain")
    named = make_executor(tmp_path / "b", "Impl", metas_name="Pretty")

    assert executors.executor_name(plain) == "Plain"
    assert executors.executor_name(named) == "Pretty"
    assert executors.executor_name(named, "Override") == "Override"
    with pytest.raises(InvalidName):
        executors.executor_name(plain, "bad/name")
    dotted = make_executor(tmp_path / "c", "Impl", metas_name="not valid!")
    with pytest.raises(InvalidName, match="pass --name"):
        executors.executor_name(dotted)


def test_references_accept_uris_and_namespace_slash_name():
    assert executors.resolve("Alice/Enc:v1").canonical() == "jinaai://alice/Enc:v1"
    assert executors.resolve("jinahub://Enc:s3cret/v2").secret == "s3cret"
    for bad in ("Enc", "a/b/c", "alice/Enc:", "http://alice/Enc", "alice/bad name"):
        with pytest.raises(InvalidName):
            executors.resolve(bad)


def test_a_folder_without_config_is_refused_before_any_call(tmp_path, home):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackagingError, match="config.yml"):
        executors.push(tmp_path / "empty", client=Client("http://127.0.0.1:9", token=False))


def test_pushing_needs_a_login(live_api, home, tmp_path):
    with pytest.raises(NotLoggedIn):
        executors.push(make_executor(tmp_path), client=Client(token=False))


# --------------------------------------------------------------------------- push and pull


def test_push_then_pull_gives_the_same_files(alice, tmp_path, home):
    folder = make_executor(tmp_path / "src")

    info = executors.push(folder, client=alice)

    assert info["kind"] == "executor" and info["full_name"] == "alice/MyExecutor"
    assert (info["version"], info["visibility"], info["tags"]) == (1, "private", ["latest"])
    # the module function, with a default Client (NSHUB_ENDPOINT and the stored login)
    pulled = executors.pull("jinaai://alice/MyExecutor")
    assert pulled == home / "executors" / "alice" / "myexecutor" / "v1"
    for name in ("config.yml", "executor.py", "requirements.txt", "run.sh"):
        assert (pulled / name).read_bytes() == (folder / name).read_bytes()
    assert not (pulled / "__pycache__").exists()
    assert stat.S_IMODE((pulled / "run.sh").stat().st_mode) == 0o755
    assert (pulled.parent / "v1.sha256").read_text().strip() == info["sha256"]
    assert not [p for p in pulled.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_a_push_reads_config_once_and_hashes_the_package_once(alice, tmp_path, monkeypatch):
    import hashlib
    import threading

    import yaml

    folder = make_executor(tmp_path / "src")
    (folder / "manifest.yml").write_text("description: counted\n")
    parsed, hashed = [], [0]  # what this thread (the client's, not the app's) parses and hashes
    real_load, real_sha256 = yaml.safe_load, hashlib.sha256

    def safe_load(stream):
        if threading.current_thread() is threading.main_thread():
            parsed.append(Path(stream.name).name)
        return real_load(stream)

    class Counted:
        def __init__(self, data=b""):
            self._digest = real_sha256()
            self.update(data)

        def update(self, data):
            if threading.current_thread() is threading.main_thread():
                hashed[0] += len(data)
            self._digest.update(data)

        def __getattr__(self, name):
            return getattr(self._digest, name)

    monkeypatch.setattr(yaml, "safe_load", safe_load)
    monkeypatch.setattr(hashlib, "sha256", Counted)
    info = executors.push(folder, client=alice)
    monkeypatch.undo()

    assert sorted(parsed) == ["config.yml", "manifest.yml"]
    assert hashed[0] == info["size"]


def test_the_same_folder_packs_to_the_same_sha256(alice, tmp_path):
    folder = make_executor(tmp_path / "src")
    first = executors.push(folder, client=alice)
    os.utime(folder / "executor.py", (1, 1))  # mtimes do not matter
    second = executors.push(folder, client=alice, public=True)

    # the same bytes: an unchanged re-push, no new version; its visibility still applies
    assert second["sha256"] == first["sha256"] and second["size"] == first["size"]
    assert second["unchanged"] is True
    assert (first["version"], second["version"]) == (1, 1)
    assert second["visibility"] == "public"
    assert [v["version"] for v in executors.versions("alice/MyExecutor", client=alice)] == [1]


def test_tags_move_but_protected_tags_never(alice, tmp_path, home):
    folder = make_executor(tmp_path / "src", body="version = 1")
    executors.push(folder, tags=["v1"], protected_tags=["stable"], client=alice)
    (folder / "executor.py").write_text("from jina import Executor\nversion = 2\n")
    second = executors.push(folder, tags=["v1"], client=alice)
    assert second["tags"] == ["latest", "v1"]

    with pytest.raises(TagProtected) as caught:
        executors.push(folder, protected_tags=["stable"], client=alice)
    assert "\n" not in caught.value.message

    stable = executors.pull("jinaai://alice/MyExecutor:stable", client=alice)
    moved = executors.pull("jinaai://alice/MyExecutor:v1", client=alice)
    latest = executors.pull("jinaai://alice/MyExecutor:latest", client=alice)
    assert (stable.name, moved.name, latest.name) == ("v1", "v2", "v2")
    assert "version = 1" in (stable / "executor.py").read_text()
    assert "version = 2" in (moved / "executor.py").read_text()
    info = executors.info("alice/MyExecutor:stable", client=alice)
    assert (info["version"], info["protected_tags"]) == (1, ["stable"])
    with pytest.raises(NotFound):
        executors.pull("jinaai://alice/MyExecutor:nope", client=alice)


def test_a_second_pull_of_the_same_version_downloads_nothing(alice, live_api, tmp_path):
    executors.push(make_executor(tmp_path / "src"), client=alice)
    seen = downloads(alice, live_api)

    first, _, cached_first = executors.pull_source("jinaai://alice/MyExecutor", client=alice)
    assert (len(seen), cached_first) == (1, False)
    second, _, cached_second = executors.pull_source("jinaai://alice/MyExecutor", client=alice)

    assert (second, cached_second) == (first, True)
    assert len(seen) == 1


def test_the_cache_is_checked_against_the_sha256(alice, live_api, tmp_path, home):
    executors.push(make_executor(tmp_path / "a", body="first = 1"), client=alice)
    path = executors.pull("jinaai://alice/MyExecutor", client=alice)
    # the executor is deleted and pushed again with other content: v1 again, other bytes
    executors.delete("alice/MyExecutor", client=alice)
    executors.push(make_executor(tmp_path / "b", body="second = 2"), client=alice)
    seen = downloads(alice, live_api)

    again = executors.pull("jinaai://alice/MyExecutor", client=alice)

    assert again == path and len(seen) == 1
    assert "second = 2" in (again / "executor.py").read_text()
    # a folder without its marker (an interrupted install) is replaced, not trusted
    (again.parent / "v1.sha256").unlink()
    (again / "executor.py").write_text("tampered")
    executors.pull("jinaai://alice/MyExecutor", client=alice)
    assert "second = 2" in (again / "executor.py").read_text() and len(seen) == 2


def test_a_pull_applies_the_registrys_unpacked_limit(alice, live_api, tmp_path, monkeypatch):
    from chalicelib import config

    # Given v1, 30 kB unpacked, pushed under the default limit
    folder = make_executor(tmp_path / "src")
    (folder / "data.txt").write_text("x" * 30_000)
    executors.push(folder, client=alice)
    # When the registry's limit is lowered to 20 kB
    monkeypatch.setenv("NSHUB_MAX_UNPACKED_EXECUTOR_BYTES", "20000")
    config.reset()
    assert Client().config()["max_unpacked_executor_bytes"] == 20_000
    # Then the registry refuses to take such a package now, and a pull refuses v1, both with
    # the registry's number
    (folder / "data.txt").write_text("y" * 30_000)
    with pytest.raises(InvalidPackage, match="more than the 20000"):
        executors.push(folder, client=alice)
    with Client() as fresh, pytest.raises(PackagingError, match="more than 20000"):
        executors.pull("jinaai://alice/MyExecutor", client=fresh)
    assert not (executors.cache_root() / "alice" / "myexecutor" / "v1").exists()


def test_a_registry_that_does_not_say_its_unpacked_limit_gets_the_default(
        alice, live_api, tmp_path, monkeypatch):
    import nshub.client_executors

    folder = make_executor(tmp_path / "src")
    (folder / "data.txt").write_text("x" * 30_000)
    executors.push(folder, client=alice)
    with Client() as older:
        monkeypatch.setattr(older, "config", lambda: {"region": "us-east-1"})  # an older server
        with monkeypatch.context() as lowered:  # the default applies: lowered, it refuses
            lowered.setattr(nshub.client_executors, "MAX_UNPACKED_BYTES", 20_000)
            with pytest.raises(PackagingError, match="more than 20000"):
                executors.pull("jinaai://alice/MyExecutor", client=older)
        assert (executors.pull("jinaai://alice/MyExecutor", client=older) / "data.txt").is_file()


def test_a_private_executor_of_another_user_is_invisible(alice, bob, tmp_path, live_api):
    executors.push(make_executor(tmp_path / "src"), client=alice)
    anonymous = Client(token=False)

    for other in (bob, anonymous):
        with pytest.raises(NotFound):
            executors.pull("jinaai://alice/MyExecutor", client=other)
        with pytest.raises(NotFound):
            executors.info("alice/MyExecutor", client=other)
        assert executors.list_executors("alice", client=other) == []
    assert [i["name"] for i in executors.list_executors("alice", client=alice)] == ["MyExecutor"]

    executors.set_visibility("alice/MyExecutor", "public", client=alice)
    path = executors.pull("jinaai://alice/myexecutor", client=bob)  # names are case-insensitive
    assert (path / "config.yml").is_file()


def test_a_docker_uri_says_plainly_that_the_image_is_not_ready(alice, tmp_path):
    executors.push(make_executor(tmp_path / "src"), tags=["v1"], client=alice)

    with pytest.raises(executors.ImageNotReady) as caught:
        executors.pull("jinaai+docker://alice/MyExecutor:v1", client=alice)

    message = caught.value.message
    assert message.startswith("the image for alice/MyExecutor v1 is still building (status: ")
    assert message.endswith(
        "try again in a few minutes, or pull jinaai://alice/MyExecutor:v1 to run from source"
    )


# --------------------------------------------------------------------------- docker login (offline)


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    script = bin_dir / "docker"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"open({str(log)!r}, 'w').write(' '.join(sys.argv[1:]) + '|' + sys.stdin.read())\n"
        "sys.exit(1 if 'bad' in sys.argv else 0)\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def test_docker_login_sends_the_password_on_stdin(fake_docker):
    creds = {"registry": "123.dkr.ecr.us-east-1.amazonaws.com", "username": "AWS",
             "password": "pw-123"}

    assert executors.docker_login(creds) == creds["registry"]

    assert fake_docker.read_text() == (
        "login --username AWS --password-stdin 123.dkr.ecr.us-east-1.amazonaws.com|pw-123"
    )
    with pytest.raises(executors.DockerLoginFailed, match="docker login to bad failed"):
        executors.docker_login({**creds, "registry": "bad"})


def test_docker_login_without_docker_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(executors.DockerNotFound, match="docker command was not found"):
        executors.docker_login({"registry": "r", "username": "u", "password": "p"})


# --------------------------------------------------------------------------- legacy


def test_legacy_executors_pull_and_push_with_their_secret(live_api, users, home, tmp_path,
                                                          capsys):
    folder = make_executor(tmp_path / "old", "OldExecutor", body="legacy = 1")
    import_legacy_executor("OldExecutor", "alice", "s3cret-1", folder)
    capsys.readouterr()
    anonymous = Client(token=False)

    path = executors.pull("jinahub://OldExecutor:s3cret-1", client=anonymous)
    assert path == home / "executors" / "alice" / "oldexecutor" / "v1"
    assert (path / "config.yml").read_bytes() == (folder / "config.yml").read_bytes()
    for wrong in ("jinahub://OldExecutor:wrong", "jinahub://OldExecutor"):
        with pytest.raises(NotFound):
            executors.pull(wrong, client=anonymous)

    (folder / "executor.py").write_text("legacy = 2\n")
    info = executors.push(folder, legacy="OldExecutor", secret="s3cret-1", tags=["v2"],
                          client=anonymous)
    assert (info["full_name"], info["version"]) == ("alice/OldExecutor", 2)
    with pytest.raises(NotFound):
        executors.push(folder, legacy="OldExecutor", secret="wrong", client=anonymous)

    again = executors.pull("jinahub://OldExecutor:s3cret-1/v2", client=anonymous)
    assert again.name == "v2" and (again / "executor.py").read_text() == "legacy = 2\n"
    # the same executor is alice's namespaced one
    with Client(token=users["alice"]["id_token"]) as alice:
        assert executors.pull("jinaai://alice/OldExecutor", client=alice) == again
