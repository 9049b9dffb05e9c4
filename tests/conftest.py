"""Shared fixtures: one moto server per test session, reset and provisioned for every test.

    aws_env    moto reset, the stack provisioned from infra/template.yaml, env applied
    live_api   the Chalice app served over real HTTP (devstack.local_server) on a free port
    api        a small HTTP helper bound to live_api: api.get/post/patch/delete(path, token=...)
    users      alice and bob, confirmed, with passwords and fresh ID tokens
    home       an empty NSHUB_HOME for the client, progress bars off, no NSHUB_TOKEN
    clock      the time personal access tokens expire and cached lookups age by, moved by the
               test (clock.advance(seconds)) instead of sleeping
    recording  the real event handlers, keeping every event they got (tests/backend.py)
    pump       the dev stack's EventPump feeding this stack's queue and stream to `recording`:
               `pump.drain()` runs the events a test caused, no waiting
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import pytest
import requests

MiB = 1024 * 1024

# Small transfer sizes keep the suite fast while still crossing every boundary.
TEST_SETTINGS = {
    "NSHUB_SINGLE_PART_MAX_BYTES": str(5 * MiB),
    "NSHUB_MIN_PART_SIZE": str(5 * MiB),
}
PASSWORDS = {"alice": "Alice-passw0rd", "bob": "Bob-passw0rd1"}


# ---------------------------------------------------------------- least privilege
# Every AWS call a function's handler makes is checked against that function's role
# (tests/least_privilege.py): a denied call fails the test that made it; after the whole suite,
# a grant that no call used fails the run.
def pytest_configure(config):
    from tests import least_privilege

    least_privilege.install()
    if not hasattr(config, "workerinput") and "NSHUB_LEAST_PRIVILEGE_DIR" not in os.environ:
        import tempfile

        os.environ["NSHUB_LEAST_PRIVILEGE_DIR"] = tempfile.mkdtemp(prefix="nshub-grants-")


@pytest.fixture(autouse=True)
def _calls_within_each_functions_role():
    from tests import least_privilege

    least_privilege.take_violations()
    yield
    denied = least_privilege.take_violations()
    assert not denied, "calls outside the function's role:\n" + "\n".join(denied)


# `make test` leaves out the benchmark smoke test, which drives `python -m bench` in a
# subprocess (no handler runs in this process, so it uses no grant): still the whole suite.
WHOLE_SUITE_MARKEXPRS = ("", "not bench_smoke")


def _ran_whole_suite(session) -> bool:
    option = session.config.option
    return (session.exitstatus == 0 and not option.keyword
            and (option.markexpr or "").strip() in WHOLE_SUITE_MARKEXPRS
            and not getattr(option, "lf", False) and not getattr(option, "deselect", None)
            and [str(a).rstrip("/") for a in session.config.args] in ([], ["tests"]))


def pytest_sessionfinish(session, exitstatus):
    import json
    from pathlib import Path

    from tests import least_privilege

    folder = Path(os.environ["NSHUB_LEAST_PRIVILEGE_DIR"])
    if hasattr(session.config, "workerinput"):
        (folder / f"{os.getpid()}.json").write_text(json.dumps(sorted(least_privilege.used())))
        return
    used = set(least_privilege.used())
    for path in folder.glob("[0-9]*.json"):
        used |= {tuple(x) for x in json.loads(path.read_text())}
        path.unlink()
    (folder / "used.json").write_text(json.dumps(sorted(used), indent=0))
    if not _ran_whole_suite(session):
        return
    exempt = set(least_privilege.NOT_DRIVEN_THROUGH_HANDLERS)
    unused = sorted(least_privilege.granted() - used - exempt)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for grant in sorted(exempt & used):
        reporter.write_line(f"least privilege: {grant} is used now: remove it from "
                            "NOT_DRIVEN_THROUGH_HANDLERS")
    if unused:
        lines = [f"{role} grants {action} (statement {sid}) but no function call used it"
                 for role, sid, action in unused]
        reporter.write_sep("=", "least privilege: unused grants", red=True)
        reporter.write_line("\n".join(lines))
        session.exitstatus = 1


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    from devstack.motofix import make_moto_faithful, run_sign_up_trigger

    make_moto_faithful()
    run_sign_up_trigger()

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_REGION": "us-east-1"}.items():
        os.environ[name] = value
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch) -> dict[str, str]:
    from chalicelib import config
    from devstack.bootstrap import provision

    requests.post(f"{moto_server}/moto-api/reset", timeout=30).raise_for_status()
    env = provision(moto_server, region="us-east-1", stage="dev")
    for name, value in {**env, **TEST_SETTINGS}.items():
        monkeypatch.setenv(name, value)
    config.reset()
    yield env
    config.reset()


@pytest.fixture(scope="session")
def _http_server():
    """The app over HTTP, once per session (served as the dev stack serves it); each test's
    env reaches it via config.reset()."""
    from chalice.config import Config

    import app as app_module
    from devstack.local_server import make_server

    server = make_server(app_module.app, Config(chalice_stage="dev"), "127.0.0.1", 0)
    port = server.server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture
def live_api(aws_env, _http_server, monkeypatch) -> str:
    monkeypatch.setenv("NSHUB_ENDPOINT", _http_server)
    return _http_server


@dataclass
class Api:
    endpoint: str

    def request(self, method: str, path: str, token: str | None = None,
                headers: dict | None = None, **kwargs: Any) -> requests.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.endpoint + path, headers=all_headers,
                                timeout=60, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(live_api) -> Api:
    return Api(live_api)


@pytest.fixture
def users(api) -> dict[str, dict[str, str]]:
    out = {}
    for name, password in PASSWORDS.items():
        r = api.post("/v1/auth/signup", json={"username": name, "password": password,
                                              "email": f"{name}@example.com"})
        assert r.status_code == 201, r.text
        r = api.post("/v1/auth/login", json={"username": name, "password": password})
        assert r.status_code == 200, r.text
        out[name] = {"password": password, **r.json()}
    return out


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NSHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NSHUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("NSHUB_TOKEN", raising=False)
    return tmp_path / "home"


@pytest.fixture
def clock():
    import time

    from chalicelib import tokens

    class Clock:
        def __init__(self):
            self.now = time.time()

        def __call__(self):
            return self.now

        def advance(self, seconds):
            self.now += seconds

    fake = Clock()
    tokens.set_clock(fake)
    yield fake
    tokens.set_clock(None)


@pytest.fixture
def recording(aws_env):
    from tests.backend import Recording

    return Recording()


@pytest.fixture
def pump(aws_env, recording):
    return recording.pump(aws_env)
