"""The deployment package: the zip `chalice package` builds, its size, and what is in it.

The zip is extracted and a fresh interpreter that sees only the zip, the standard library
and what the Lambda runtime adds (boto3, s3transfer) imports `app` and every module the
functions can import: read from the source of app.py and, through them, of the chalicelib
modules it reaches (function-level imports included). Top-level entries of the zip that
nothing loaded, and chalicelib files the functions never reach, are reported; a module the
functions import that the zip cannot provide is a failure (it would fail on Lambda).
Package metadata (`*.dist-info`, `*.data`) is counted apart.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from bench.report import Figure
from bench.stack import PYTHON, REPO, base_env

MiB = 1024 * 1024
# What the Lambda Python runtime provides that the zip does not carry.
RUNTIME_PACKAGES = ("boto3", "s3transfer")
# What the Lambda runtime also provides (boto3's dependencies): shipped anyway when a
# requirement (pynamodb -> botocore) pulls it in.
ALSO_IN_RUNTIME = ("botocore", "urllib3", "dateutil", "jmespath", "six.py", "s3transfer")

TRACE = r"""
import ast, importlib, json, os, sys
root, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [root, runtime]
os.chdir(root)

def source_of(module):
    base = os.path.join(root, *module.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None

# What the functions can import: app.py's imports, and through the project's own modules
# (chalicelib) theirs, function-level imports included.
wanted, seen, todo = set(), set(), ["app"]
while todo:
    module = todo.pop()
    path = source_of(module)
    if path is None or path in seen:
        continue
    seen.add(path)
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            wanted.add(name)
            if name.split(".")[0] in ("app", "chalicelib"):
                todo.append(name)
failed = {}
for name in ["app"] + sorted(wanted - {"app"}):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # `from x import y` where y is not a module is fine
            failed[name] = repr(exc)
    except Exception as exc:
        failed[name] = repr(exc)
used, project = set(), []
for module in list(sys.modules.values()):
    f = getattr(module, "__file__", None) or ""
    if f.startswith(root + os.sep):
        used.add(os.path.relpath(f, root).split(os.sep)[0])
for base, _, files in os.walk(os.path.join(root, "chalicelib")):
    for f in files:
        path = os.path.join(base, f)
        if f.endswith(".py") and path not in seen:
            project.append(os.path.relpath(path, root))
print(json.dumps({"used": sorted(used), "failed": failed, "project_not_imported": project}))
"""


def build(out: Path) -> Path:
    env = base_env({"AWS_DEFAULT_REGION": "us-east-1"})
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        [str(Path(PYTHON).with_name("chalice")), "package", "--stage", "dev", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"chalice package failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout)[-2000:]}")
    return out / "deployment.zip"


def _runtime_dir(into: Path) -> Path:
    """A folder with what the Lambda runtime adds to sys.path (symlinks to this venv's)."""
    import boto3

    site = Path(boto3.__file__).resolve().parent.parent
    into.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        os.symlink(site / name, into / name)
    return into


def analyse(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as z:
        sizes: Counter[str] = Counter()
        for info in z.infolist():
            sizes[info.filename.split("/")[0]] += info.compress_size
        with tempfile.TemporaryDirectory(prefix="nshub-pkg-") as tmp:
            root = Path(tmp) / "task"
            z.extractall(root)
            runtime = _runtime_dir(Path(tmp) / "runtime")
            proc = subprocess.run(
                [PYTHON, "-I", "-S", "-c", TRACE, str(root), str(runtime)],
                capture_output=True, text=True, timeout=300,
                env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"},
            )
    if proc.returncode != 0:
        raise RuntimeError(f"import trace failed: {proc.stderr[-2000:]}")
    trace = json.loads(proc.stdout.strip().splitlines()[-1])
    meta = {k for k in sizes if k.endswith((".dist-info", ".data")) or k == "__pycache__"}
    code = {k: v for k, v in sizes.items() if k not in meta}
    unused = sorted(k for k in code if k not in trace["used"])
    return {
        "bytes": zip_path.stat().st_size,
        "entries": dict(sizes.most_common()),
        "metadata_bytes": sum(sizes[k] for k in meta),
        "not_imported": unused,
        "import_failures": trace["failed"],
        "project_not_imported": sorted(trace["project_not_imported"]),
        "also_in_runtime_bytes": sum(v for k, v in code.items() if k in ALSO_IN_RUNTIME),
    }


def run(log=print) -> tuple[list[Figure], dict]:
    with tempfile.TemporaryDirectory(prefix="nshub-package-") as tmp:
        result = analyse(build(Path(tmp) / "out"))
    top = [(k, v) for k, v in result["entries"].items()
           if not k.endswith((".dist-info", ".data"))][:6]
    listing = ", ".join(f"{k} {v / MiB:.1f}" for k, v in top)
    size = result["bytes"] / MiB
    log(f"  {size:.1f} MiB: {listing}")
    for name, error in result["import_failures"].items():
        log(f"  import failed: {name}: {error}")
    figures = [
        Figure("deployment package", round(size, 1), "MiB zipped", "report",
               detail=(f"largest (MiB zipped): {listing}; of which "
                       f"{result['also_in_runtime_bytes'] / MiB:.1f} MiB (botocore and its "
                       f"dependencies, via pynamodb) the Lambda runtime also has")),
        Figure("deployment package: imports the zip lacks", len(result["import_failures"]),
               "modules", "== 0",
               detail=", ".join(sorted(result["import_failures"])) or "none"),
        Figure("deployment package: entries never imported",
               len(result["not_imported"]) + len(result["project_not_imported"]),
               "entries", "report",
               detail=", ".join(result["not_imported"] + result["project_not_imported"])
               or "none"),
    ]
    return figures, result
