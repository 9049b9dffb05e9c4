"""`python -m devstack` end to end: starts, serves, signs alice in, and stops cleanly."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
import requests

from tests.devstack_process import (
    READY,
    REPO,
    START_TIMEOUT,
    DevStackProcess,
    base_env,
    children_of,
    free_port,
    group_is_gone,
)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM],
                         ids=["sigint", "sigterm"])
def test_dev_stack_serves_signs_in_and_stops_cleanly(stop_signal, tmp_path):
    api_port, moto_port = free_port(), free_port()
    password = "Alice-devst4ck"
    stack = DevStackProcess(base_env(tmp_path / "env.json", NSHUB_PORT=str(api_port),
                                     NSHUB_MOTO_PORT=str(moto_port),
                                     NSHUB_ALICE_PASSWORD=password))
    try:
        stack.wait_for(READY, START_TIMEOUT)
        out = "\n".join(stack.stdout)
        assert f"export NSHUB_ENDPOINT=http://127.0.0.1:{api_port}" in out
        assert "nshub login alice" in out
        assert f"alice password: {password}" in out
        bob_line = next(line for line in stack.stdout if "bob password:" in line)
        bob_password = bob_line.split("bob password:", 1)[1].strip()
        assert len(bob_password) >= 12  # generated, strong, and printed

        api = f"http://127.0.0.1:{api_port}"
        config = requests.get(f"{api}/v1/config", timeout=30)
        assert config.status_code == 200, config.text
        assert config.json()["user_pool_id"]

        for user, pw in (("alice", password), ("bob", bob_password)):
            login = requests.post(f"{api}/v1/auth/login",
                                  json={"username": user, "password": pw}, timeout=30)
            assert login.status_code == 200, login.text
            tokens = login.json()
            assert tokens["id_token"] and tokens["access_token"] and tokens["refresh_token"]

        children = children_of(stack.proc.pid)
        assert children, "chalice local should run as a child process"

        stack.proc.send_signal(stop_signal)
        assert stack.proc.wait(timeout=60) == 0
        stack.join_readers()
        assert not any("Traceback" in line for line in stack.stderr), "\n".join(stack.stderr)
        for pgid in [stack.proc.pid, *children]:
            assert group_is_gone(pgid), f"process group {pgid} outlived the dev stack"
    finally:
        stack.kill_everything()


@pytest.mark.parametrize("which", ["NSHUB_PORT", "NSHUB_MOTO_PORT"])
def test_busy_port_is_one_clear_line_and_exit_code_1(which, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = "NSHUB_MOTO_PORT" if which == "NSHUB_PORT" else "NSHUB_PORT"
        result = subprocess.run(
            [sys.executable, "-m", "devstack"], cwd=str(REPO),
            env=base_env(tmp_path / "env.json", **{which: str(port), other: str(free_port())}),
            capture_output=True, text=True, timeout=60, start_new_session=True,
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(port) in lines[0] and which in lines[0]
    assert "Traceback" not in result.stderr


def test_a_restart_right_after_a_stop_gets_the_same_ports(tmp_path):
    # Given a dev stack that served a keep-alive client until it was stopped (the server
    # closes those connections first, so their ports linger in TIME_WAIT)
    api_port, moto_port = free_port(), free_port()
    env = base_env(tmp_path / "env.json", NSHUB_PORT=str(api_port),
                   NSHUB_MOTO_PORT=str(moto_port), NSHUB_ALICE_PASSWORD="Alice-devst4ck")
    first = DevStackProcess(env)
    session = requests.Session()
    try:
        first.wait_for(READY, START_TIMEOUT)
        for _ in range(3):
            assert session.get(f"http://127.0.0.1:{api_port}/v1/config", timeout=30).ok
        first.proc.send_signal(signal.SIGINT)
        assert first.proc.wait(timeout=60) == 0
    finally:
        session.close()
        first.kill_everything()

    # When it is started again at once on the same ports
    second = DevStackProcess(env)
    try:
        # Then it starts and serves
        second.wait_for(READY, START_TIMEOUT)
        r = requests.get(f"http://127.0.0.1:{api_port}/v1/config", timeout=30)
        assert r.status_code == 200, r.text
        second.proc.send_signal(signal.SIGINT)
        assert second.proc.wait(timeout=60) == 0
    finally:
        second.kill_everything()
