"""LocalStack's S3, the reference the dev stack's S3 is held to (tests/test_storage_conformance.py).

moto is the dev stack's and the tests' AWS; its S3 is made to refuse what S3 refuses by
devstack/motofix.py. Those checks are our own code, so a conformance test runs the same real
presigned URLs against LocalStack's S3, which implements them (signature, expiry, signed
length, BadDigest, composite multipart checksums), and both must answer alike.

LocalStack pins its own boto3 and ships its own moto, so it lives in a virtualenv of its own,
outside the clone (`~/.cache/nshub/localstack-4.13.1`, or $NSHUB_CACHE), made once by
`ensure_installed()` from PyPI and reused. `LocalStack().start()` runs it without Docker on a
free port and stops it by PID.

    python -m devstack.localstack install    # make the virtualenv (what the tests do first)
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

VERSION = "4.13.1"
# localstack-core 4.13.1 needs these bounds to install and start on Python 3.11 (DESIGN.md)
REQUIREMENTS = [f"localstack-core[runtime]=={VERSION}", "cbor2<6", "pyopenssl<26",
                "cryptography<47", "service_identity"]


def venv_dir() -> Path:
    base = os.environ.get("NSHUB_CACHE") or Path.home() / ".cache" / "nshub"
    return Path(base) / f"localstack-{VERSION}"


def python() -> Path:
    return venv_dir() / "bin" / "python"


def ensure_installed() -> Path:
    """The LocalStack virtualenv's python, installing it first when it is missing."""
    stamp = venv_dir() / ".installed"
    if stamp.exists():
        return python()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv_dir())], check=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   check=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
                   check=True)
    stamp.write_text(VERSION)
    return python()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalStack:
    """LocalStack's S3 (and SQS) on 127.0.0.1, signature validation on."""

    def __init__(self, log_path: Path | None = None):
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "LocalStack":
        exe = ensure_installed()
        env = {**os.environ, "GATEWAY_LISTEN": f"127.0.0.1:{self.port}", "SERVICES": "s3,sqs",
               "S3_SKIP_SIGNATURE_VALIDATION": "0", "LOCALSTACK_HOST": f"127.0.0.1:{self.port}",
               "DISABLE_EVENTS": "1", "SKIP_SSL_CERT_DOWNLOAD": "1"}
        env.pop("AWS_ENDPOINT_URL", None)
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen([str(exe), "-m", "localstack.runtime.main"], env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"LocalStack exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_localstack/health", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"LocalStack did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(ensure_installed())
    else:
        print("usage: python -m devstack.localstack install", file=sys.stderr)
        sys.exit(2)
