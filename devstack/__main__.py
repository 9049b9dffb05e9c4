"""`python -m devstack` (`make dev`): the whole service on a laptop.

moto server (in-process) -> stack provisioned from infra/template.yaml -> users alice and bob
-> event pump (SQS + DynamoDB stream -> the app's handlers) -> `chalice local`.

Environment: NSHUB_MOTO_PORT (5000), NSHUB_PORT (8000), NSHUB_ALICE_PASSWORD,
NSHUB_BOB_PASSWORD (generated and printed when unset), NSHUB_REGION (us-east-1).
Ctrl-C / SIGTERM stop everything and exit 0.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READY_LINE = "nshub dev stack ready"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
LOCAL_ENV = {
    # No X-Ray daemon locally; Powertools would otherwise complain on every call.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    # No CodeBuild locally (moto would take the build and never finish it): images stay
    # pending, and /v1/config says so.
    "NSHUB_IMAGE_BUILDS": "0",
}


class StartupError(Exception):
    """A problem worth one line on stderr and exit code 1."""


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        port = int(raw) if raw else default
    except ValueError:
        raise StartupError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise StartupError(f"{name}={port} is not a port number")
    return port


def _check_free(port: int, what: str, env_name: str) -> None:
    """Fail when something listens on the port. Bound the way the servers bind it
    (SO_REUSEADDR), so the connections a stopped stack leaves in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise StartupError(
                f"port {port} ({what}) is already in use: stop what uses it or set {env_name}"
            ) from None


def _strong_password() -> str:
    # Meets the template's policy (length, upper, lower, digits) whatever token_urlsafe gives.
    return f"{secrets.token_urlsafe(12)}Aa7"


def _say(line: str = "") -> None:
    print(line, flush=True)


class DevStack:
    def __init__(self) -> None:
        self.moto_port = _port("NSHUB_MOTO_PORT", 5000)
        self.port = _port("NSHUB_PORT", 8000)
        self.region = os.environ.get("NSHUB_REGION") or "us-east-1"
        self.stop = threading.Event()
        self.moto = None
        self.chalice: subprocess.Popen | None = None
        self.pump_thread: threading.Thread | None = None
        self.state: tuple[Path, str] | None = None  # the state file written, and its text
        self.exit_code = 0

    # ------------------------------------------------------------ start
    def start(self) -> None:
        if self.moto_port == self.port:
            raise StartupError(f"NSHUB_MOTO_PORT and NSHUB_PORT are both {self.port}")
        _check_free(self.moto_port, "moto server", "NSHUB_MOTO_PORT")
        _check_free(self.port, "nshub API", "NSHUB_PORT")
        for key, value in DUMMY_CREDENTIALS.items():
            os.environ.setdefault(key, value)

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from moto.server import ThreadedMotoServer

        from devstack.motofix import make_moto_faithful, run_sign_up_trigger

        make_moto_faithful()
        run_sign_up_trigger()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self.moto.start()
        endpoint = f"http://127.0.0.1:{self.moto_port}"

        from devstack.bootstrap import provision, seed_users

        env = provision(endpoint, region=self.region, stage="dev")
        env.update(LOCAL_ENV)
        # The PreSignUp trigger (run in this process, see devstack/motofix.py) reads the
        # app's settings: they must name this stack before the first user is made.
        os.environ.update(env)
        from chalicelib import config

        config.reset()
        passwords = {
            "alice": os.environ.get("NSHUB_ALICE_PASSWORD") or _strong_password(),
            "bob": os.environ.get("NSHUB_BOB_PASSWORD") or _strong_password(),
        }
        seed_users(env, passwords)
        os.environ.update(env)
        self._write_state(env)

        self._start_pump(env)
        self._start_chalice(env)
        self._wait_until_serving()
        if self.stop.is_set():
            return

        api = f"http://127.0.0.1:{self.port}"
        _say(f"moto server:   {endpoint}")
        _say(f"nshub API:     {api}   (web console: {api}/)")
        _say("sign in:")
        _say(f"  export NSHUB_ENDPOINT={api}")
        _say("  nshub login alice")
        for user, password in passwords.items():
            _say(f"  {user} password: {password}")
        _say(READY_LINE)

    def _write_state(self, env: dict) -> None:
        """The stack's environment, for tools run elsewhere (devstack.state_file())."""
        from devstack import state_file

        path = state_file()
        state = {**DUMMY_CREDENTIALS, **env, "NSHUB_ENDPOINT": f"http://127.0.0.1:{self.port}"}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(state, indent=2) + "\n")
            self.state = (path, path.read_text())
        except OSError as exc:
            print(f"devstack: cannot write {path} ({exc.strerror}): nshub-admin will not find "
                  "this stack", file=sys.stderr, flush=True)

    def _remove_state(self) -> None:
        if self.state is None:
            return
        path, written = self.state
        try:
            if path.read_text() == written:  # not another stack's since
                path.unlink()
        except OSError:
            pass

    def _start_pump(self, env: dict) -> None:
        from devstack.pump import EventPump

        on_sqs = on_stream = None
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        try:
            import app as app_module  # the Chalice app, with the stack's environment set

            on_sqs = getattr(app_module, "on_blob_event", None)
            on_stream = getattr(app_module, "on_table_change", None)
        except Exception as exc:  # noqa: BLE001 - routes still work without the pump
            print(f"devstack: event pump disabled, cannot import app: {exc!r}",
                  file=sys.stderr, flush=True)
            return
        if on_sqs is None and on_stream is None:
            print("devstack: event pump disabled: app has no on_blob_event/on_table_change",
                  file=sys.stderr, flush=True)
            return
        pump = EventPump(env, on_sqs, on_stream, wait_seconds=1, stream_start="TRIM_HORIZON")
        self.pump_thread = threading.Thread(
            target=pump.run_forever, args=(self.stop,), name="event-pump", daemon=True
        )
        self.pump_thread.start()

    def _start_chalice(self, env: dict) -> None:
        # chalice local, with the 404s and HEAD answers API Gateway gives and chunked bodies
        # (devstack/local_server.py, devstack/localgateway.py)
        cmd = [sys.executable, "-m", "devstack.local_server", "--host", "127.0.0.1",
               "--port", str(self.port), "--stage", "dev"]
        child_env = {**os.environ, **DUMMY_CREDENTIALS, **env, "NSHUB_STAGE": "dev",
                     "PYTHONUNBUFFERED": "1"}
        for key in DUMMY_CREDENTIALS:  # keep real-looking values if the user set some
            child_env[key] = os.environ.get(key) or DUMMY_CREDENTIALS[key]
        self.chalice = subprocess.Popen(
            cmd, cwd=str(REPO), env=child_env, stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: we kill the whole group
        )

    def _wait_until_serving(self, timeout: float = 90.0) -> None:
        url = f"http://127.0.0.1:{self.port}/v1/config"
        deadline = time.monotonic() + timeout
        while True:
            if self.stop.is_set():
                return
            if self.chalice is not None and self.chalice.poll() is not None:
                raise StartupError(
                    f"chalice local exited with code {self.chalice.returncode} before serving"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - local
                    resp.read()
                return
            except urllib.error.HTTPError as exc:  # it answers, even if not 200
                print(f"devstack: GET /v1/config answered {exc.code}", file=sys.stderr,
                      flush=True)
                return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise StartupError(f"chalice local did not answer {url} within {timeout:.0f}s")
            self.stop.wait(0.2)

    # ------------------------------------------------------------ run / stop
    def wait(self) -> None:
        while not self.stop.wait(0.5):
            if self.chalice is not None and self.chalice.poll() is not None:
                print(f"devstack: chalice local exited with code {self.chalice.returncode}",
                      file=sys.stderr, flush=True)
                self.exit_code = 1
                self.stop.set()

    def shutdown(self) -> None:
        self.stop.set()
        child = self.chalice
        if child is not None:
            # politely first; then the whole group, which may hold more than the leader
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(child.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        if self.pump_thread is not None:
            self.pump_thread.join(timeout=5)
        if self.moto is not None:
            try:
                self.moto.stop()
            except Exception:  # noqa: BLE001
                pass
        self._remove_state()


def main() -> int:
    stack = None
    stopping = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        stopping.set()
        if stack is not None:
            stack.stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack = DevStack()
        if stopping.is_set():
            return 0
        stack.start()
        if not stopping.is_set():
            stack.wait()
        return stack.exit_code
    except StartupError as exc:
        print(f"devstack: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if stack is not None:
            stack.shutdown()


if __name__ == "__main__":
    sys.exit(main())
