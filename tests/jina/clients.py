"""Run an unmodified Jina client against the live app, as a user would: a Python script in
the client's own venv (tests/jina/clientenv.py), with only JINA_HUBBLE_REGISTRY and
JINA_AUTH_TOKEN pointing it at nshub, in a home of its own (the clients cache under ~).

A script reports what the user would see by printing one JSON line starting with `RESULT `.
"""
from __future__ import annotations

import json
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.jina.clientenv import ensure_venv, python_of

RESULT_PREFIX = "RESULT "

# Printed results: scripts call `report(value)`.
PRELUDE = """
import json as _json, sys as _sys
def report(value):
    print("RESULT " + _json.dumps(value, default=str), flush=True)
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Any:
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX):])
        raise AssertionError(f"the script reported nothing:\n{self}")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class JinaClient:
    """One client venv, one server, one home: `run(script)` or `cli(args)`."""

    venv_name: str
    registry: str
    home: Path
    token: str | None = None

    def env(self, token: str | None = None, **extra: str) -> dict[str, str]:
        token = self.token if token is None else token
        env = {
            "PATH": f"{python_of(self.venv).parent}:/usr/bin:/bin",
            "HOME": str(self.home),
            "JINA_HUBBLE_REGISTRY": self.registry,
            "JINA_HUB_ROOT": str(self.home / ".jina"),
            "JINA_HUB_CACHE_DIR": str(self.home / ".cache" / "jina"),
            "JINA_LOG_LEVEL": "WARNING",
            "JINA_OPTOUT_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
            "TERM": "dumb",
            "COLUMNS": "200",
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
        }
        if token:
            env["JINA_AUTH_TOKEN"] = token
        env.update(extra)
        return env

    @property
    def venv(self) -> Path:
        return ensure_venv(self.venv_name)

    def run(self, script: str, token: str | None = None, timeout: float = 300,
            cwd: Path | None = None, **env: str) -> Run:
        source = PRELUDE + textwrap.dedent(script)
        return self._exec([str(python_of(self.venv)), "-c", source], token, timeout, cwd, env)

    def cli(self, args: list[str], token: str | None = None, timeout: float = 300,
            cwd: Path | None = None, **env: str) -> Run:
        return self._exec([str(python_of(self.venv).parent / args[0]), *args[1:]], token,
                          timeout, cwd, env)

    def _exec(self, argv: list[str], token, timeout, cwd, env) -> Run:
        self.home.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(argv, env=self.env(token, **env), cwd=str(cwd or self.home),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return Run(done.returncode, done.stdout, done.stderr)


