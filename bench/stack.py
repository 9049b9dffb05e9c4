"""The harness every benchmark shares: servers in their own processes, a provisioned stack,
a signed-in user, client processes, and stopping all of it.

    with Stack(api=True) as stack:          # moto (+ the app) in child processes
        stack.env                           # what a client or the app needs to reach them
        stack.token                         # alice's ID token
        result = run_worker(stack.client_env(), "pull-nshub", ...)

Everything a benchmark starts is stopped by its PID when the `with` block ends, whatever
happened inside it.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("BENCH_WORK_DIR") or REPO / "bench" / ".work")
PYTHON = sys.executable
MiB = 1024 * 1024
START_TIMEOUT = 60.0
MOTO_BUFFER = 8 * 1024 * MiB

DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
QUIET = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "NSHUB_DISABLE_PROGRESS_BARS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
USER, PASSWORD = "alice", "Alice-bench-passw0rd"


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **DUMMY_AWS, **QUIET}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("NSHUB_TOKEN", None)
    env.update(extra or {})
    return env


def work_dir(*parts: str) -> Path:
    path = WORK.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log_file(what: str) -> IO[bytes]:
    return open(work_dir("logs") / f"{what}.log", "ab")


class Server:
    """`python -m bench.serve WHAT` in a child process; stopped by its PID."""

    def __init__(self, what: str, env: dict[str, str]):
        self.what = what
        self._log = _log_file(what)
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bench.serve", what], cwd=REPO, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
        )
        with open(work_dir() / "pids", "a") as fh:  # the smoke test checks none outlives us
            fh.write(f"{self.proc.pid}\n")
        try:
            self.port = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"
        # Whatever it prints later is drained, so a full pipe never blocks it.
        threading.Thread(target=self._drain, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self) -> int:
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()),
                         daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise RuntimeError(f"{self.what} server did not start in {START_TIMEOUT:.0f}s") from None
        if not line.startswith(b"PORT "):
            raise RuntimeError(f"{self.what} server failed to start: see {self._log.name}")
        return int(line.split()[1])

    def _drain(self) -> None:
        try:
            while self.proc.stdout.read(65536):
                pass
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        """Close its stdin (it exits), then SIGTERM, then SIGKILL: always by this PID."""
        proc = self.proc
        if proc.poll() is None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError, AttributeError):
                pass
        self._log.close()


class Stack:
    """moto in a child process, provisioned from the template, alice signed in; optionally
    the app (chalice local server) in another child process."""

    def __init__(self, api: bool = False, settings: dict[str, str] | None = None):
        self.want_api = api
        self.settings = dict(settings or {})
        self.servers: list[Server] = []
        self.env: dict[str, str] = {}
        self.token = ""
        self.moto: Server | None = None
        self.api: Server | None = None

    def __enter__(self) -> "Stack":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        from devstack.bootstrap import provision, seed_users

        # moto keeps every object in memory (by default it spills objects over 5 MiB to temp
        # files): the disk's noise stays out of the figures, for nshub and boto3 alike.
        self.moto = self._server("moto", base_env({"MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(MOTO_BUFFER)}))
        with _environ(DUMMY_AWS):
            env = provision(self.moto.url, region="us-east-1", stage="dev")
        self.env = {**env, **self.settings}
        seed_users(self.env, {USER: PASSWORD})
        self.token = self.login(USER, PASSWORD)
        if self.want_api:
            self.api = self._server("api", base_env(self.env))

    def _server(self, what: str, env: dict[str, str]) -> Server:
        server = Server(what, env)
        self.servers.append(server)
        return server

    def start_server(self, what: str) -> Server:
        """Another server on this stack (the API-overhead floor)."""
        return self._server(what, base_env(self.env))

    def login(self, username: str, password: str) -> str:
        idp = self.boto("cognito-idp")
        result = idp.initiate_auth(
            ClientId=self.env["NSHUB_CLIENT_ID"], AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        return result["AuthenticationResult"]["IdToken"]

    def boto(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                     retries={"max_attempts": 3, "mode": "standard"})
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing",
            aws_session_token="testing", region_name="us-east-1")
        return session.client(service, endpoint_url=self.env["AWS_ENDPOINT_URL"], config=cfg)

    def client_env(self, token: bool = True) -> dict[str, str]:
        """The environment of a client process: the API, alice's token, the stack's AWS."""
        extra = dict(self.env)
        if self.api is not None:
            extra["NSHUB_ENDPOINT"] = self.api.url
        if token:
            extra["NSHUB_TOKEN"] = self.token
        extra["NSHUB_HOME"] = str(work_dir("home"))
        return base_env(extra)

    def apply(self) -> "_environ":
        """Point this process's chalicelib at the stack (in-process benchmarks)."""
        return _environ({**DUMMY_AWS, **QUIET, **self.env}, reset=True)

    def close(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()


class _environ:
    """Set environment variables for a block (and reset chalicelib's cached config)."""

    def __init__(self, values: dict[str, str], reset: bool = False):
        self.values = values
        self.reset = reset
        self.saved: dict[str, str | None] = {}

    def _reset(self) -> None:
        if self.reset:
            from chalicelib import config

            config.reset()

    def __enter__(self) -> "_environ":
        for name, value in self.values.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value
        self._reset()
        return self

    def __exit__(self, *exc: object) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._reset()


def run_worker(env: dict[str, str], *args: str, timeout: float = 900) -> dict[str, Any]:
    """`python -m bench.worker ARGS` in its own process; its JSON answer (last stdout line)."""
    proc = subprocess.run(
        [PYTHON, "-m", "bench.worker", *args], cwd=REPO, env=env, capture_output=True,
        timeout=timeout, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.worker {args[0]} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_file(path: Path, size: int) -> Path:
    """`size` random bytes at `path` (reused when it already has that size)."""
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        left = size
        while left:
            n = min(left, 8 * MiB)
            fh.write(os.urandom(n))
            left -= n
    os.replace(tmp, path)
    return path


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default
