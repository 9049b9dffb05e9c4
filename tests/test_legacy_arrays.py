"""Legacy arrays: imported by an operator, pulled by their bare name, never updated."""
from __future__ import annotations

import subprocess
import sys

import requests

from chalicelib.admin import main as admin_main
from tests.helpers import sha


def import_legacy(tmp_path, name, owner, data, public):
    path = tmp_path / f"{name}.bin"
    path.write_bytes(data)
    argv = ["import-legacy", name, "--owner", owner, "--file", str(path)]
    return admin_main(argv + (["--public"] if public else []))


def test_import_then_pull_by_bare_name(api, users, tmp_path):
    data = b"legacy bytes" * 100
    assert import_legacy(tmp_path, "fashion_mnist", "alice", data, public=True) == 0
    # running it twice is harmless
    assert import_legacy(tmp_path, "fashion_mnist", "alice", data, public=True) == 0
    for token in (None, users["bob"]["id_token"], users["alice"]["id_token"]):
        r = api.get("/v1/legacy/arrays/fashion_mnist", token=token)
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["legacy"] is True
        assert info["full_name"] == "fashion_mnist"
        assert info["namespace"] == "alice"
        body = requests.get(info["download_url"], timeout=30).content
        assert sha(body) == info["sha256"] == sha(data)


def test_private_legacy_only_for_its_owner(api, users, tmp_path):
    assert import_legacy(tmp_path, "secret_set", "alice", b"x", public=False) == 0
    assert api.get("/v1/legacy/arrays/secret_set", token=users["alice"]["id_token"]).status_code == 200
    assert api.get("/v1/legacy/arrays/secret_set", token=users["bob"]["id_token"]).status_code == 404
    assert api.get("/v1/legacy/arrays/secret_set").status_code == 404


def test_import_with_other_content_is_refused(api, users, tmp_path, capsys):
    assert import_legacy(tmp_path, "frozen", "alice", b"one", public=True) == 0
    assert import_legacy(tmp_path, "frozen", "alice", b"two", public=True) == 1
    assert "already exists" in capsys.readouterr().err


def test_pushing_to_a_legacy_name_is_refused(api, users, tmp_path):
    import_legacy(tmp_path, "fashion_mnist", "alice", b"x", public=True)
    for token in (users["alice"]["id_token"], users["bob"]["id_token"], None):
        r = api.post("/v1/legacy/arrays/fashion_mnist/uploads", token=token,
                     json={"size": 1, "sha256": "0" * 64})
        assert r.status_code == 409
        assert r.headers["X-Error-Code"] == "LegacyReadOnly"
        assert "alice/fashion_mnist" not in r.json()["Message"]
        assert "your-namespace/fashion_mnist" in r.json()["Message"]
    # nobody can push into the reserved namespace that holds legacy arrays
    r = api.post("/v1/arrays/legacy/fashion_mnist/uploads", token=users["alice"]["id_token"],
                 json={"size": 1, "sha256": "0" * 64})
    assert (r.status_code, r.headers["X-Error-Code"]) == (409, "LegacyReadOnly")


def test_legacy_arrays_do_not_collide_with_namespaced_ones(api, users, tmp_path):
    from tests.helpers import pull, push

    import_legacy(tmp_path, "fashion_mnist", "alice", b"old", public=True)
    assert push(api, users["alice"]["id_token"], "alice/fashion_mnist", b"new").status_code == 200
    assert pull(api, users["alice"]["id_token"], "alice/fashion_mnist")[1] == b"new"
    r = api.get("/v1/legacy/arrays/fashion_mnist")
    assert requests.get(r.json()["download_url"], timeout=30).content == b"old"


def test_admin_command_is_installed(aws_env, tmp_path):
    """`nshub-admin` runs as its own process with the app's configuration from the env."""
    path = tmp_path / "d.bin"
    path.write_bytes(b"abc")
    exe = [sys.executable, "-m", "chalicelib.admin"]
    r = subprocess.run(exe + ["import-legacy", "old_set", "--owner", "bob", "--file", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert '"imported": true' in r.stdout
    r = subprocess.run(exe + ["import-legacy", "bad name", "--owner", "bob", "--file", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith("error: invalid name")


def test_legacy_arrays_cannot_be_changed_or_deleted_through_the_generic_routes(api, users,
                                                                               tmp_path):
    data = b"frozen legacy bytes"
    import_legacy(tmp_path, "fashion_mnist", "alice", data, public=True)
    import_legacy(tmp_path, "hidden_set", "alice", b"private", public=False)
    for token in (users["alice"]["id_token"], users["bob"]["id_token"]):
        # existing or not, public or private: the same answer, which names nobody
        for name in ("fashion_mnist", "hidden_set", "never_imported"):
            for r in (api.patch(f"/v1/arrays/legacy/{name}", token=token,
                                json={"visibility": "private"}),
                      api.delete(f"/v1/arrays/legacy/{name}", token=token)):
                assert (r.status_code, r.headers["X-Error-Code"]) == (409, "LegacyReadOnly")
                assert r.json()["Code"] == "LegacyReadOnly"
                assert "alice" not in r.json()["Message"]
                assert f"your-namespace/{name}" in r.json()["Message"]
    r = api.get("/v1/legacy/arrays/fashion_mnist")
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    assert requests.get(r.json()["download_url"], timeout=30).content == data
    r = api.get("/v1/legacy/arrays/hidden_set", token=users["alice"]["id_token"])
    assert r.status_code == 200 and r.json()["visibility"] == "private"


def test_a_legacy_array_belongs_to_an_account_namespace(api, users, tmp_path, capsys):
    for owner in ("legacy", "admin"):
        assert import_legacy(tmp_path, "orphan", owner, b"x", public=True) == 1
        assert f"the name '{owner}' is reserved" in capsys.readouterr().err
    assert api.get("/v1/legacy/arrays/orphan").status_code == 404
