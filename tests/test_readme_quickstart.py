"""README's quick start, as written, against a running `python -m devstack`, from a folder
outside the repository, with no AWS settings or credentials in the environment."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.executor_packages import executor_folder
from tests.devstack_process import READY, START_TIMEOUT, DevStackProcess, base_env, free_port

BIN = Path(sys.executable).parent
PASSWORD = "Carol-passw0rd"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("devstack") / "env.json"
    api_port, moto_port = free_port(), free_port()
    proc = DevStackProcess(base_env(state, NSHUB_PORT=str(api_port),
                                    NSHUB_MOTO_PORT=str(moto_port)))
    try:
        proc.wait_for(READY, START_TIMEOUT)
        yield {"endpoint": f"http://127.0.0.1:{api_port}", "state": state, "proc": proc}
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(timeout=60) == 0
        assert not state.exists(), "a stopped stack leaves no settings behind"
    finally:
        proc.kill_everything()


@pytest.fixture
def shell(stack, tmp_path):
    """Runs commands the way the README's second terminal does: the venv's scripts on PATH,
    NSHUB_ENDPOINT as `make dev` prints it, in a folder of its own."""
    folder = tmp_path / "work"
    folder.mkdir()
    env = base_env(stack["state"], NSHUB_ENDPOINT=stack["endpoint"],
                   NSHUB_HOME=str(tmp_path / "home"), NSHUB_DISABLE_PROGRESS_BARS="1",
                   HOME=str(tmp_path), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")

    def run(command: str, stdin: str | None = None, ok: bool = True):
        r = subprocess.run(command, shell=True, cwd=folder, env=env, input=stdin,
                           capture_output=True, text=True, timeout=120)
        if ok:
            assert r.returncode == 0, f"{command}\n{r.stdout}\n{r.stderr}"
        return r

    run.folder = folder
    run.env = env
    return run


def test_the_quick_start_as_written(shell):
    shell("nshub signup carol --email carol@example.com --password-stdin", stdin=PASSWORD)
    shell("nshub login carol --password-stdin", stdin=PASSWORD)
    assert shell("nshub whoami").stdout.strip() == "carol"

    data = os.urandom(3000)
    (shell.folder / "train.bin").write_bytes(data)
    shell("nshub push train.bin carol/fashion_mnist --public --meta split=train")
    (shell.folder / "train.bin").unlink()
    shell("nshub pull carol/fashion_mnist -o train.bin")
    assert (shell.folder / "train.bin").read_bytes() == data
    assert "carol/fashion_mnist" in shell("nshub ls carol").stdout
    assert "split" in shell("nshub info carol/fashion_mnist").stdout
    assert "private" in shell("nshub visibility carol/fashion_mnist private").stdout
    shell("nshub rm carol/fashion_mnist --yes")

    executor_folder(shell.folder / "MyExecutor")
    shell("nshub hub push ./MyExecutor --public --tag v1.0")
    pulled = Path(shell("nshub hub pull jinaai://carol/MyExecutor:v1.0").stdout.strip())
    assert (pulled / "config.yml").is_file()
    assert "logged out" in shell("nshub logout").stdout


def test_operators_import_legacy_arrays_from_any_folder(shell):
    old = os.urandom(1000)
    (shell.folder / "old.bin").write_bytes(old)
    r = shell("nshub-admin import-legacy fashion_mnist --owner alice --file old.bin --public")
    assert json.loads(r.stdout)["imported"] is True
    shell("nshub pull fashion_mnist")
    assert (shell.folder / "fashion_mnist").read_bytes() == old


def test_the_python_quick_start(shell):
    shell("nshub signup dave --email dave@example.com --password-stdin", stdin=PASSWORD)
    shell("nshub login dave --password-stdin", stdin=PASSWORD)
    executor_folder(shell.folder / "MyExecutor")
    script = '''
import os
import nshub
client = nshub.Client()
open("train.bin", "wb").write(b"x" * 100)
client.push_file("train.bin", "dave/fashion_mnist", public=True)
os.remove("train.bin")
client.pull_file("dave/fashion_mnist", "train.bin")
assert open("train.bin", "rb").read() == b"x" * 100
client.push_executor("./MyExecutor", public=True, tags=["v1.0"])
folder = client.pull_executor("jinaai://dave/MyExecutor:v1.0")
assert os.path.isfile(os.path.join(folder, "config.yml"))

from docarray import BaseDoc, DocList
from nshub.docarray import push, pull

class MyDoc(BaseDoc):
    text: str

docs = DocList[MyDoc]([MyDoc(text="hello")])
push(docs, "dave/docs", public=True)
docs = pull(DocList[MyDoc], "dave/docs")
assert docs[0].text == "hello"
print("ok")
'''
    r = shell(f"{sys.executable} -c '{script}'")
    assert r.stdout.strip() == "ok"


def test_nshub_admin_without_a_running_stack_is_one_line(tmp_path):
    env = base_env(tmp_path / "nothing.json", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "old.bin").write_bytes(b"old")
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                                 "NSHUB_TABLE": "nshub"}))
    for state in (tmp_path / "nothing.json", stale):
        r = subprocess.run(
            ["nshub-admin", "import-legacy", "x", "--owner", "alice", "--file", "old.bin"],
            cwd=tmp_path, env={**env, "NSHUB_DEVSTACK_ENV": str(state)},
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert "make dev" in lines[0]
