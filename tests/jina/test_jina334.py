"""jina 3.34, unmodified: `jina auth login`, `jina hub push/pull`, legacy `jinahub://`
executors with their secret, Executor.from_hub and a Deployment serving a request from
`jinaai://alice/Name` (issue 12, flow 4)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.admin import main as admin_main

pytestmark = pytest.mark.jina_clients

JINA = "jina334"

CONFIG = """jtype: Greeter
metas:
  name: {name}
py_modules:
  - executor.py
"""

CODE = """from docarray import DocList
from docarray.documents import TextDoc
from jina import Executor, requests


class Greeter(Executor):
    @requests
    def greet(self, docs: DocList[TextDoc], **kwargs) -> DocList[TextDoc]:
        for doc in docs:
            doc.text = f"hello {{doc.text}} from {version}"
        return docs
"""


def executor_folder(root: Path, name: str = "Greeter", version: str = "v1") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text(CONFIG.format(name=name))
    (root / "executor.py").write_text(CODE.format(version=version))
    return root


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_line(text: str) -> str:
    """rich wraps and boxes what jina prints: compare words, not layout."""
    return " ".join(re.sub(r"[│┃─━╭╮╰╯┏┓┗┛]", " ", text).split())


def test_auth_login_with_a_token(jina_client):
    run = jina_client(JINA, "alice").cli(["jina", "auth", "login"])
    assert run.returncode == 0, run
    assert "alice" in run.output


def test_push_public_with_a_tag_then_pull_and_use(jina_client, tmp_path, api, users):
    alice = jina_client(JINA, "alice")
    folder = executor_folder(tmp_path / "Greeter")
    run = alice.cli(["jina", "hub", "push", str(folder), "--public", "-t", "v1"])
    assert run.returncode == 0, run
    assert "jinaai://alice/Greeter:v1" in one_line(run.output)

    # An ordinary nshub executor version, visible through /v1.
    info = api.get("/v1/executors/alice/Greeter", token=users["bob"]["id_token"]).json()
    assert info["visibility"] == "public" and info["tags"] == ["latest", "v1"]  # latest: always the newest

    bob = jina_client(JINA, "bob")
    run = bob.cli(["jina", "hub", "pull", "jinaai://alice/Greeter:v1"])
    assert run.returncode == 0, run
    assert "jinaai://alice/Greeter:v1" in one_line(run.output)

    run = bob.run("""
from jina import Executor
executor = Executor.from_hub("jinaai://alice/Greeter")
report(type(executor).__name__)
""")
    assert run.returncode == 0, run
    assert run.result == "Greeter"

    run = bob.run("""
from docarray import DocList
from docarray.documents import TextDoc
from jina import Deployment
import os
with Deployment(uses="jinaai://alice/Greeter", port=int(os.environ["PORT"]),
                timeout_ready=120000) as dep:
    docs = dep.post("/", inputs=DocList[TextDoc]([TextDoc(text="bob")]),
                    return_type=DocList[TextDoc])
report([d.text for d in docs])
""", timeout=400, PORT=str(free_port()))
    assert run.returncode == 0, run
    assert run.result == ["hello bob from v1"]


def test_legacy_executor_push_with_secret_and_pull(jina_client, tmp_path):
    folder = executor_folder(tmp_path / "Old", name="OldGreeter", version="old")
    argv = ["import-legacy-executor", "OldGreeter", "--owner", "alice", "--secret", "s3cret",
            "--dir", str(folder)]
    assert admin_main(argv) == 0

    # Whoever holds the secret pushes an update the old way (jina wants a login to push)...
    executor_folder(folder, name="OldGreeter", version="new")
    run = jina_client(JINA, "bob").cli(["jina", "hub", "push", str(folder), "--force-update",
                                        "OldGreeter", "--secret", "s3cret"])
    assert run.returncode == 0, run
    assert "jinahub://OldGreeter:s3cret/latest" in one_line(run.output)

    # ... and anyone pulls it by jinahub:// with the secret, signed in or not.
    carol = jina_client(JINA, None)

    run = carol.cli(["jina", "hub", "pull", "jinahub://OldGreeter:s3cret"], token="")
    assert run.returncode == 0, run
    assert "jinahub://OldGreeter:s3cret" in one_line(run.output)
    pulled = [p.read_text() for p in (carol.home / ".cache" / "jina").rglob("executor.py")]
    assert len(pulled) == 1 and "from new" in pulled[0]

    # A wrong secret (from a home without jina's offline cache of the earlier pull)
    run = jina_client(JINA, "bob").cli(["jina", "hub", "pull", "jinahub://OldGreeter:wrong"])
    assert run.returncode != 0
    assert "does not exist or is private" in one_line(run.output)
