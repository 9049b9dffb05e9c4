"""Virtualenvs for the unmodified Jina clients, built from PyPI by the test setup.

Each client gets a venv of its own (they conflict with each other and with the project's
docarray), cached outside the clone under `~/.cache/nshub-test-venvs/<name>-<hash>` (or
$NSHUB_TEST_VENVS), keyed by the hash of its requirements: a second run, or CI on a machine
that already built them, installs nothing. Builds take a file lock per venv, so parallel
pytest workers (and parallel checkouts) build each venv once; a venv counts only once its
stamp is written, so an interrupted build is redone.

    python -m tests.jina.clientenv [NAME...]   builds them ahead of the tests
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE / "jina3-constraints.txt"

# name -> pip arguments. The pins are the releases HUBBLE.md was read from.
CLIENTS: dict[str, list[str]] = {
    "docarray021": ["docarray==0.21.1", "jina-hubble-sdk==0.39.0", "protobuf", "pydantic<2"],
    "docarray038": ["docarray[jac]==0.38.0", "protobuf", "pydantic<2"],
    "hubble039": ["jina-hubble-sdk==0.39.0"],
    # A plain install of jina in a fresh venv does not resolve its opentelemetry pins.
    "jina334": ["jina==3.34.0", "-c", str(CONSTRAINTS)],
}


def cache_root() -> Path:
    return Path(os.environ.get("NSHUB_TEST_VENVS")
                or Path.home() / ".cache" / "nshub-test-venvs")


def _key(name: str) -> str:
    spec = "\n".join(CLIENTS[name])
    if CONSTRAINTS.as_posix() in CLIENTS[name]:
        spec += "\n" + CONSTRAINTS.read_text()
    spec += f"\n{sys.version_info[:2]}"
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def venv_path(name: str) -> Path:
    return cache_root() / f"{name}-{_key(name)}"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(name: str) -> Path:
    """The venv of client `name`, built first if needed; returns its folder."""
    venv = venv_path(name)
    stamp = venv / ".nshub-built"
    if stamp.is_file():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if stamp.is_file():  # another worker built it while we waited
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        log = venv / "install.log"
        with log.open("w") as out:
            result = subprocess.run(
                [str(python_of(venv)), "-m", "pip", "install", "--quiet", *CLIENTS[name]],
                stdout=out, stderr=subprocess.STDOUT,
            )
        if result.returncode != 0:
            raise RuntimeError(f"installing the {name} client failed: see {log}\n"
                               + log.read_text()[-3000:])
        stamp.write_text(" ".join(CLIENTS[name]) + "\n")
    return venv


if __name__ == "__main__":
    for wanted in sys.argv[1:] or list(CLIENTS):
        print(ensure_venv(wanted))
