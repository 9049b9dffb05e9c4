"""Legacy executors (`jinahub://NAME:SECRET`): imported by an operator, pulled and pushed with
their secret or the owner's token, and the same executor as `jinaai://OWNER/NAME`."""
from __future__ import annotations

import json

import pytest

from chalicelib import keys
from tests.backend import record
from tests.executor_packages import executor_folder, package, pulled_zip
from tests.helpers import put_parts, sha, start

SECRET = "0f2c1d6e-legacy-secret"


def token(users, who="alice"):
    return users[who]["id_token"]


def admin(*argv: str, capsys) -> tuple[int, dict | str]:
    """Run `nshub-admin`: (exit code, its JSON answer or its error line)."""
    from chalicelib.admin import main

    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, (json.loads(captured.out) if rc == 0 else captured.err)


@pytest.fixture
def imported(users, tmp_path, capsys):
    """OldExec, owned by alice, private, imported from a folder."""
    folder = executor_folder(tmp_path / "OldExec")
    rc, out = admin("import-legacy-executor", "OldExec", "--owner", "alice", "--secret", SECRET,
                    "--dir", str(folder), capsys=capsys)
    assert rc == 0 and out["pushed"] and out["alias_created"], out
    return folder


def legacy_get(api, name="OldExec", secret=None, tok=None, **params):
    headers = {"X-Executor-Secret": secret} if secret is not None else {}
    return api.get(f"/v1/legacy/executors/{name}", token=tok, headers=headers, params=params)


def missing_message(api):
    r = legacy_get(api, "NoSuchExec", secret=SECRET)
    assert r.status_code == 404
    return r.json()["Message"].replace("'NoSuchExec'", "'X'")


# ---------------------------------------------------------------- import


def test_import_makes_a_normal_executor_and_a_hashed_alias(api, users, aws_env, imported,
                                                          capsys):
    # The executor is alice/OldExec, a normal (private) executor of hers
    r = api.get("/v1/executors/alice/OldExec", token=token(users))
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["visibility"] == "private"
    with pulled_zip(r.json()) as zf:
        assert zf.read("config.yml") == (imported / "config.yml").read_bytes()
    # The alias holds the owner and a salted slow hash, never the secret
    alias = record(aws_env, keys.resource_pk(keys.LEGACY_NS, "OldExec"), keys.legacy_executor_sk())
    assert alias.owner == "alice"
    scheme, n, r_, p, salt, digest = alias.secret_hash.split("$")
    assert scheme == "scrypt" and int(n) >= 2**14 and salt and digest
    assert SECRET not in json.dumps(vars(alias), default=str)


def test_import_twice_is_harmless(api, users, imported, capsys):
    rc, out = admin("import-legacy-executor", "OldExec", "--owner", "alice", "--secret", SECRET,
                    "--dir", str(imported), capsys=capsys)
    assert rc == 0 and out["pushed"] is False and out["alias_created"] is False
    assert out["version"] == 1
    versions = api.get("/v1/executors/alice/OldExec/versions", token=token(users)).json()
    assert [v["version"] for v in versions["items"]] == [1]


@pytest.mark.parametrize("owner,secret", [("bob", SECRET), ("alice", "another-secret")])
def test_import_refuses_another_owner_or_secret(api, users, imported, capsys, owner, secret):
    rc, err = admin("import-legacy-executor", "OldExec", "--owner", owner, "--secret", secret,
                    "--dir", str(imported), capsys=capsys)
    assert rc == 1 and "(Conflict)" in err and "\n" not in err.strip()
    assert legacy_get(api, secret=SECRET).status_code == 200


def test_import_refuses_a_folder_without_config(users, tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "executor.py").write_text("x = 1\n")
    rc, err = admin("import-legacy-executor", "Broken", "--owner", "alice", "--secret", SECRET,
                    "--dir", str(folder), capsys=capsys)
    assert rc == 1 and "(InvalidPackage)" in err


def test_secret_hashes():
    from chalicelib.legacy_executors import hash_secret, verify_secret

    first, second = hash_secret("s3cret"), hash_secret("s3cret")
    assert first != second  # salted
    assert verify_secret("s3cret", first) and verify_secret("s3cret", second)
    assert not verify_secret("s3cret!", first) and not verify_secret("s3cret", None)
    assert not verify_secret("s3cret", "pbkdf2_sha256$1$AA==$AA==")


# ---------------------------------------------------------------- pull


def test_pull_with_the_secret(api, users, imported):
    r = legacy_get(api, secret=SECRET)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["legacy"] is True and info["full_name"] == "alice/OldExec"
    assert info["kind"] == "executor" and info["tags"] == ["latest"] and "image" in info
    with pulled_zip(info) as zf:
        assert zf.read("config.yml") == (imported / "config.yml").read_bytes()
    # by tag, and the name is case-insensitive
    assert legacy_get(api, "oldexec", secret=SECRET, tag="latest").json()["version"] == 1
    assert legacy_get(api, secret=SECRET, tag="nope").status_code == 404


@pytest.mark.parametrize("who", ["owner", "other", "anonymous"])
def test_pull_without_the_secret(api, users, imported, who):
    tok = {"owner": token(users), "other": token(users, "bob"), "anonymous": None}[who]
    r = legacy_get(api, tok=tok)
    if who == "owner":
        assert r.status_code == 200 and r.json()["full_name"] == "alice/OldExec"
    else:  # private: exactly like a missing executor, the owner is not revealed
        assert r.status_code == 404
        assert r.json()["Message"].replace("'OldExec'", "'X'") == missing_message(api)
        assert "alice" not in r.text


@pytest.mark.parametrize("tok_of", [None, "alice", "bob"])
def test_a_wrong_secret_is_404_like_a_missing_executor(api, users, imported, tok_of):
    tok = token(users, tok_of) if tok_of else None
    r = legacy_get(api, secret="wrong", tok=tok)
    assert r.status_code == 404 and r.json()["Code"] == "NotFound"
    assert r.json()["Message"].replace("'OldExec'", "'X'") == missing_message(api)
    assert "download_url" not in r.text


def test_a_public_legacy_executor_pulls_without_a_secret(api, users, tmp_path, capsys):
    folder = executor_folder(tmp_path / "PubExec")
    rc, _ = admin("import-legacy-executor", "PubExec", "--owner", "alice", "--secret", SECRET,
                  "--dir", str(folder), "--public", capsys=capsys)
    assert rc == 0
    r = legacy_get(api, "PubExec")
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    assert legacy_get(api, "PubExec", tok=token(users, "bob")).status_code == 200
    assert legacy_get(api, "PubExec", secret="wrong").status_code == 404


def test_legacy_pull_credentials(api, users, imported):
    r = api.post("/v1/legacy/executors/OldExec/pull-credentials",
                 headers={"X-Executor-Secret": SECRET})
    assert r.status_code == 200 and r.json()["repository"] == "nshub/alice/oldexec"
    r = api.post("/v1/legacy/executors/OldExec/pull-credentials",
                 headers={"X-Executor-Secret": "wrong"})
    assert r.status_code == 404
    assert api.post("/v1/legacy/executors/OldExec/pull-credentials").status_code == 404


# ---------------------------------------------------------------- push


def legacy_push(api, data, secret=None, tok=None, name="OldExec", **extra):
    headers = {"X-Executor-Secret": secret} if secret is not None else {}
    base = f"/v1/legacy/executors/{name}/uploads"
    r = api.post(base, token=tok, headers=headers,
                 json={"size": len(data), "sha256": sha(data), **extra})
    if r.status_code != 201:
        return r
    plan = r.json()
    parts = put_parts(plan, data)
    return api.post(f"{base}/{plan['upload_id']}/complete", token=tok, headers=headers,
                    json={"parts": parts})


def test_push_with_the_secret_adds_a_version_in_the_owners_namespace(api, users, imported,
                                                                     tmp_path):
    data = package(tmp_path, "2")
    r = legacy_push(api, data, secret=SECRET, tags=["v2"])
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["full_name"] == "alice/OldExec"
    # the same executor, both ways
    namespaced = api.get("/v1/executors/alice/OldExec", token=token(users)).json()
    assert namespaced["version"] == 2 and namespaced["sha256"] == sha(data)
    assert legacy_get(api, secret=SECRET, tag="v2").json()["sha256"] == sha(data)
    assert legacy_get(api, secret=SECRET, tag="latest").json()["version"] == 2


def test_push_with_the_owners_token(api, users, imported, tmp_path):
    r = legacy_push(api, package(tmp_path, "2"), tok=token(users))
    assert r.status_code == 200 and r.json()["version"] == 2


@pytest.mark.parametrize("secret,who,status", [
    ("wrong", None, 404),        # wrong secret: like a missing executor
    ("wrong", "alice", 404),     # even with the owner's token
    (None, None, 401),           # nothing at all: sign in or send the secret
    (None, "bob", 404),          # another user, private executor: invisible
])
def test_push_refused(api, users, imported, tmp_path, secret, who, status):
    tok = token(users, who) if who else None
    r = legacy_push(api, package(tmp_path, "2"), secret=secret, tok=tok)
    assert r.status_code == status, r.text
    assert legacy_get(api, secret=SECRET).json()["version"] == 1


def test_push_to_a_public_one_by_another_user_is_403(api, users, tmp_path, capsys):
    folder = executor_folder(tmp_path / "PubExec")
    assert admin("import-legacy-executor", "PubExec", "--owner", "alice", "--secret", SECRET,
                 "--dir", str(folder), "--public", capsys=capsys)[0] == 0
    r = legacy_push(api, package(tmp_path, "2"), name="PubExec", tok=token(users, "bob"))
    assert r.status_code == 403 and r.json()["Code"] == "Forbidden"


def test_push_to_a_missing_legacy_executor_is_404(api, users, tmp_path):
    r = legacy_push(api, package(tmp_path), secret=SECRET, name="NoSuchExec")
    assert r.status_code == 404


def test_complete_and_abort_need_the_secret_too(api, users, imported, tmp_path):
    data = package(tmp_path, "2")
    ok, bad = {"X-Executor-Secret": SECRET}, {"X-Executor-Secret": "wrong"}
    base = "/v1/legacy/executors/OldExec/uploads"
    plan = api.post(base, headers=ok, json={"size": len(data), "sha256": sha(data)}).json()
    parts = put_parts(plan, data)
    r = api.post(f"{base}/{plan['upload_id']}/complete", headers=bad, json={"parts": parts})
    assert r.status_code == 404
    assert api.delete(f"{base}/{plan['upload_id']}", headers=bad).status_code == 404
    assert api.delete(f"{base}/{plan['upload_id']}").status_code == 401
    assert api.delete(f"{base}/{plan['upload_id']}", headers=ok).status_code == 204
    r = api.post(f"{base}/{plan['upload_id']}/complete", headers=ok, json={"parts": parts})
    assert r.status_code == 404  # aborted
    assert legacy_get(api, secret=SECRET).json()["version"] == 1


def test_a_hostile_legacy_push_is_refused(api, users, imported):
    from tests.executor_packages import hostile_packages

    r = legacy_push(api, hostile_packages()["symlink"], secret=SECRET)
    assert r.status_code == 400 and r.json()["Code"] == "InvalidPackage"
    assert legacy_get(api, secret=SECRET).json()["version"] == 1


def test_protected_tags_hold_for_legacy_pushes(api, users, imported, tmp_path):
    assert legacy_push(api, package(tmp_path, "2"), secret=SECRET,
                       protected_tags=["stable"]).status_code == 200
    r = legacy_push(api, package(tmp_path, "3"), secret=SECRET, tags=["stable"])
    assert r.status_code == 409 and r.json()["Code"] == "TagProtected"


def test_a_namespaced_push_is_seen_by_legacy_pulls(api, users, imported, tmp_path):
    from tests.executor_packages import push_executor

    data = package(tmp_path, "ns")
    assert push_executor(api, token(users), "alice/OldExec", data).status_code == 200
    assert legacy_get(api, secret=SECRET).json()["sha256"] == sha(data)


def test_start_with_the_secret_goes_through_the_owners_upload_rules(api, users, imported):
    r = start(api, None, "alice/OldExec", b"x" * 10, kind="executors")
    assert r.status_code == 401  # the namespaced route still needs alice's token


def test_legacy_push_can_renew_its_part_urls(api, users, imported, tmp_path):
    data = package(tmp_path, "3")
    headers = {"X-Executor-Secret": SECRET}
    plan = api.post("/v1/legacy/executors/OldExec/uploads", headers=headers,
                    json={"size": len(data), "sha256": sha(data)}).json()
    path = f"/v1/legacy/executors/OldExec/uploads/{plan['upload_id']}"
    r = api.post(path + "/parts", headers=headers, json={"part_numbers": [1]})
    assert r.status_code == 200 and len(r.json()["parts"]) == 1
    assert api.post(path + "/parts", headers={"X-Executor-Secret": "wrong"}, json={}).status_code == 404
    parts = put_parts({**plan, "parts": r.json()["parts"]}, data)
    assert api.post(path + "/complete", headers=headers, json={"parts": parts}).status_code == 200


# ---------------------------------------------------------------- secrets: cost and limit


@pytest.fixture
def scrypt_calls(monkeypatch):
    """Every scrypt the process runs (the server runs in this process), counted."""
    import hashlib

    calls = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):
        calls.append(kwargs.get("n"))
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def test_a_missing_name_costs_what_a_wrong_secret_costs(api, users, imported, scrypt_calls):
    from chalicelib.legacy_executors import SCRYPT_N

    wrong = legacy_get(api, "OldExec", secret="not-the-secret")
    assert wrong.status_code == 404
    wrong_work = list(scrypt_calls)
    scrypt_calls.clear()
    missing = legacy_get(api, "NoSuchExec", secret="not-the-secret")
    assert missing.status_code == 404
    # the same work: one scrypt with the same cost parameter, and the same answer
    assert wrong_work == list(scrypt_calls) == [SCRYPT_N]
    assert wrong.json()["Message"].replace("'OldExec'", "'X'") == \
        missing.json()["Message"].replace("'NoSuchExec'", "'X'")


@pytest.mark.parametrize("name", ["OldExec", "NoSuchExec"])
def test_wrong_secrets_are_limited_per_name(api, users, imported, scrypt_calls, name):
    from chalicelib.legacy_executors import SECRET_FAILURE_LIMIT, SECRET_FAILURE_WINDOW_SECONDS

    for i in range(SECRET_FAILURE_LIMIT):
        assert legacy_get(api, name, secret=f"guess-{i}").status_code == 404
    assert len(scrypt_calls) == SECRET_FAILURE_LIMIT
    # Then every secret for that name is refused unhashed, the right one too (existing or
    # not: the same answer), on every legacy route that takes a secret
    for secret in ("guess-again", SECRET):
        for r in (legacy_get(api, name, secret=secret),
                  api.post(f"/v1/legacy/executors/{name}/uploads", json={"size": 1,
                           "sha256": "0" * 64}, headers={"X-Executor-Secret": secret})):
            assert (r.status_code, r.headers["X-Error-Code"]) == (429, "TooManyRequests"), r.text
            assert 1 <= int(r.headers["Retry-After"]) <= 2 * SECRET_FAILURE_WINDOW_SECONDS
            assert "sign in as its owner" in r.json()["Message"]
        # the Jina clients' route too, in their envelope, with the same Retry-After
        r = api.post("/v2/rpc/executor.getPackage", data={"id": name, "secret": secret})
        assert r.status_code == 429 and "sign in as its owner" in r.json()["readableMessage"]
        assert 1 <= int(r.headers["Retry-After"]) <= 2 * SECRET_FAILURE_WINDOW_SECONDS
    assert len(scrypt_calls) == SECRET_FAILURE_LIMIT
    # Other names are not affected, nor is the owner's login
    assert legacy_get(api, "Other", secret="guess").status_code == 404
    if name == "OldExec":
        assert legacy_get(api, "OldExec", tok=token(users)).status_code == 200


@pytest.mark.parametrize("owner", ["legacy", "admin"])
def test_an_imported_executor_belongs_to_an_account_namespace(aws_env, tmp_path, capsys, owner):
    """Reserved words are namespaces no account can own: an operator's import into one (the
    read-only `legacy` namespace among them) is refused, and nothing is written."""
    folder = executor_folder(tmp_path / "OldExec")
    rc, err = admin("import-legacy-executor", "OldExec", "--owner", owner, "--secret", SECRET,
                    "--dir", str(folder), capsys=capsys)
    assert rc == 1 and f"the name '{owner}' is reserved" in err
    assert record(aws_env, keys.resource_pk(owner, "OldExec"), keys.head_sk("executor")) is None
