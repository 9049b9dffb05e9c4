"""Test helper: `python -m devstack` as a child process (its own process group), with both
pipes drained, waited on by what it prints, and killed with everything it started."""
from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READY = "nshub dev stack ready"
START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    for task in task_dir.iterdir() if task_dir.exists() else []:
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


class DevStackProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack"], cwd=str(REPO), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        # Readers drain both pipes for the whole life of the process (a full pipe would
        # block the stack).
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False),
                             daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, pipe, sink: list[str], announce: bool) -> None:
        for line in pipe:
            sink.append(line.rstrip("\n"))
            if announce:
                self.lines.put(line.rstrip("\n"))
        if announce:
            self.lines.put(None)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} within {timeout}s; stderr:\n"
                                     + "\n".join(self.stderr[-30:]))
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("devstack exited early; stderr:\n"
                                     + "\n".join(self.stderr[-30:]))
            if text in line:
                return

    def join_readers(self) -> None:
        for t in self._threads:
            t.join(timeout=10)

    def kill_everything(self) -> None:
        for pgid in [self.proc.pid, *children_of(self.proc.pid)]:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def base_env(state: Path, **extra: str) -> dict[str, str]:
    """A clean environment (no NSHUB_ or AWS_ settings); `state` is where the stack writes
    its settings (never the repository's, which a developer's `make dev` may be using)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NSHUB_", "AWS_"))}
    env.update(PYTHONUNBUFFERED="1", NSHUB_DEVSTACK_ENV=str(state), **extra)
    return env
