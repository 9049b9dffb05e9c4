"""The packaged stack, built offline: `make package` in a copy of the project, with Chalice's
dependency cache seeded so that no wheel is fetched (the functions' code is real, their
third-party dependencies are left out), and the SAM template expanded into plain
CloudFormation with the SAM translator, the way CloudFormation's transform does it.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent
# What `make package` reads: the app, its config and dependencies list, the overlays.
PROJECT_FILES = ("app.py", "requirements.txt", "pyproject.toml", "Makefile",
                 ".chalice/config.json", "chalicelib", "infra", "devstack")
ACCOUNT, REGION = "123456789012", "us-east-1"


def copy_project(dest: Path) -> Path:
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, copy_function=shutil.copy2,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)  # mtimes kept: make sees the venv as up to date
    return dest


def seed_dependency_cache(project: Path) -> Path:
    """Put a small zip where `chalice package` looks for its cached dependencies, so it only
    adds the app's files to it (as it does on any machine whose cache is warm)."""
    from chalice.config import Config
    from chalice.deploy.packager import LambdaDeploymentPackager
    from chalice.utils import OSUtils

    packager = LambdaDeploymentPackager(osutils=OSUtils(), dependency_builder=None, ui=None)
    version = Config.create(project_dir=str(project)).lambda_python_version
    path = Path(packager.deployment_package_filename(str(project), version))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dependencies-left-out-by-the-tests.txt", "pynamodb, powertools, ...\n")
    return path


def make(project: Path, *targets: str, env: dict | None = None, **variables: str
         ) -> subprocess.CompletedProcess:
    args = ["make", "-C", str(project), *targets, f"VENV={VENV}",
            *(f"{k}={v}" for k, v in variables.items())]
    full_env = {**os.environ, "AWS_DEFAULT_REGION": REGION, **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=full_env)


def package(project: Path, stage: str) -> dict:
    from devstack.bootstrap import load_template

    result = make(project, "package", STAGE=stage)
    assert result.returncode == 0, result.stdout + result.stderr
    return copy.deepcopy(load_template(project / "build" / "package" / "sam.yaml"))


class NoManagedPolicies:
    """The translator asks IAM for AWS managed policy ARNs only when a function names one."""

    def load(self) -> dict:
        return {}


def expand(template: dict, parameters: dict[str, Any] | None = None) -> dict:
    """Plain CloudFormation, as CloudFormation's SAM transform would make it (after `aws
    cloudformation package` has uploaded the code: CodeUri becomes an S3 URI)."""
    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(template)
    for res in sam["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"
    values = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
              "AWS::StackName": "any-Stack-Name", **(parameters or {})}
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # the translator reads it from a boto3 session
    try:
        return transform(sam, values, NoManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def of_type(template: dict, type_name: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_name}


def walk(value: Any, path: str = ""):
    """Every (path, scalar) of a template."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}/{i}")
    else:
        yield path, value
