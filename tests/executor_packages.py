"""Test helpers for executors: users' executor folders, real packages (packed by the client's
packer), hostile zips, an operator's legacy import, the table stream driven into the
image-build trigger, and CodeBuild state-change events."""
from __future__ import annotations

import copy
import io
import json
import os
import stat
import warnings
import zipfile
from pathlib import Path
from typing import Any

import requests

from tests.helpers import push

EVENTS = Path(__file__).resolve().parent / "events"
CONFIG_YML = b"jtype: MyExecutor\nmetas:\n  name: MyExecutor\n# kept byte for byte\n"


def executor_folder(root: Path, config: bytes = CONFIG_YML, code: str = "v1",
                    dockerfile: bool = True) -> Path:
    """An executor folder: config.yml, code, requirements, a Dockerfile."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_bytes(config)
    (root / "executor.py").write_text(f"class MyExecutor:\n    VERSION = {code!r}\n")
    (root / "requirements.txt").write_text("numpy\n")
    if dockerfile:
        (root / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY . /app\n")
    return root


def make_executor(root: Path, jtype: str = "MyExecutor", *, metas_name: str | None = None,
                  body: str = "pass") -> Path:
    """A user's executor folder as `nshub hub push` takes it: a Jina Executor class, its
    config, a script that keeps its mode, and a __pycache__ the packer leaves out."""
    folder = root / (metas_name or jtype)
    folder.mkdir(parents=True)
    config = f"jtype: {jtype}\npy_modules:\n  - executor.py\n"
    if metas_name:
        config += f"metas:\n  name: {metas_name}\n"
    (folder / "config.yml").write_text(config)
    (folder / "executor.py").write_text(
        f"from jina import Executor\n\n\nclass {jtype}(Executor):\n    {body}\n"
    )
    (folder / "requirements.txt").write_text("numpy\n")
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(folder / "run.sh", 0o755)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "executor.cpython-311.pyc").write_bytes(b"junk")
    return folder


def import_legacy_executor(name: str, owner: str, secret: str, folder: Path, public: bool = False) -> None:
    """What an operator's `nshub-admin import-legacy-executor` does."""
    from chalicelib import admin

    argv = ["import-legacy-executor", name, "--owner", owner, "--secret", secret,
            "--dir", str(folder)] + (["--public"] if public else [])
    assert admin.main(argv) == 0


def pack(folder: Path) -> bytes:
    from nshub.packaging import pack_executor

    path, _, _ = pack_executor(folder)
    try:
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


def package(tmp_path: Path, code: str = "v1", **kw) -> bytes:
    return pack(executor_folder(tmp_path / f"pkg-{code}", code=code, **kw))


def build_zip(entries: list[tuple[str, Any]]) -> bytes:
    """A zip written by hand (hostile packages): name -> data or (data, unix mode)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, value in entries:
                data, mode = value if isinstance(value, tuple) else (value, None)
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                if mode is not None:
                    info.external_attr = mode << 16
                zf.writestr(info, data)
    return buf.getvalue()


def push_executor(api, token, full_name, data, **extra):
    return push(api, token, full_name, data, kind="executors", **extra)


def pulled_zip(info: dict) -> zipfile.ZipFile:
    data = requests.get(info["download_url"], timeout=60).content
    return zipfile.ZipFile(io.BytesIO(data))


def hostile_packages() -> dict[str, bytes]:
    config = ("config.yml", CONFIG_YML)
    return {
        "zip slip": build_zip([config, ("../evil.py", "x = 1\n")]),
        "absolute path": build_zip([config, ("/etc/cron.d/evil", "* * * * * root true\n")]),
        "symlink": build_zip([config, ("passwd", ("/etc/passwd", stat.S_IFLNK | 0o777))]),
        "zip bomb": build_zip([config, ("zeros.bin", b"\0" * (20 * 1024 * 1024))]),
        "missing config.yml": build_zip([("executor.py", "class MyExecutor: pass\n")]),
        "python yaml tags": build_zip([
            ("config.yml", "jtype: !!python/object/apply:os.system ['touch /tmp/pwned']\n"),
        ]),
        "not a zip": b"just some bytes, no zip at all",
    }


# ---------------------------------------------------------------- events


class StreamDriver:
    """Delivers the table's real stream records (moto) to the image-build trigger, the way
    the stream handler does (`executors.handle_stream_record` per record)."""

    def __init__(self, env: dict):
        from devstack.pump import EventPump

        self.started: list[str | None] = []
        self.pump = EventPump(env, on_sqs=None, on_stream=self._deliver)

    def _deliver(self, event: dict, context: Any) -> dict:
        from chalicelib import images

        for record in event["Records"]:
            build = images.handle_stream_record(record)
            if build is not None:
                self.started.append(build)
        return {"batchItemFailures": []}

    def run(self) -> list[str | None]:
        before = len(self.started)
        self.pump.run_once()
        return self.started[before:]


class Recorder:
    """Records the parameters of one AWS operation as the app's own boto3 client sends them
    (botocore's public event hooks; the call still goes to moto)."""

    def __init__(self, service: str, operation: str):
        from chalicelib.config import get_aws

        self.calls: list[dict] = []
        self.client = get_aws().client(service)
        service_id = self.client.meta.service_model.service_id.hyphenize()
        self.event = f"provide-client-params.{service_id}.{operation}"
        self.client.meta.events.register(self.event, self._record)

    def _record(self, params, **kwargs):
        self.calls.append(copy.deepcopy(params))

    def close(self):
        self.client.meta.events.unregister(self.event, self._record)


def build_state_event(status: str, build_id: str, env: dict[str, str] | None = None,
                      project: str | None = None) -> dict:
    """A `CodeBuild Build State Change` event (AWS's documented shape) for one of our builds."""
    event = json.loads((EVENTS / "codebuild_state_change.json").read_text())
    project = project or build_id.split(":", 1)[0]
    arn = f"arn:aws:codebuild:us-east-1:123456789012:build/{build_id}"
    detail = event["detail"]
    detail["build-status"] = status
    detail["project-name"] = project
    detail["build-id"] = arn
    detail["current-phase"] = "COMPLETED" if status != "IN_PROGRESS" else "BUILD"
    detail["additional-information"]["build-complete"] = status != "IN_PROGRESS"
    detail["additional-information"]["environment"]["environment-variables"] = [
        {"name": k, "type": "PLAINTEXT", "value": v} for k, v in (env or {}).items()
    ]
    stream = build_id.split(":", 1)[1]
    detail["additional-information"]["logs"]["deep-link"] = (
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:"
        f"group=/aws/codebuild/{project};stream={stream}"
    )
    event["resources"] = [arn]
    return event
