"""`nshub-admin`: operator commands that talk to the table and bucket directly, with the same
configuration as the app (the environment), so they work against the dev stack's moto and AWS.

    nshub-admin import-legacy NAME --owner USER --file PATH [--public]
    nshub-admin import-legacy-executor NAME --owner USER --secret SECRET --dir DIR [--public]
    nshub-admin reconcile [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from chalicelib.errors import NshubError


class AdminError(Exception):
    """One line on stderr and exit code 1."""


def _env_from_devstack() -> None:
    """Without NSHUB_TABLE (a deployed stack's settings), use the running dev stack's, found
    where `make dev` writes them (devstack.state_file()), whatever the current folder."""
    if os.environ.get("NSHUB_TABLE"):
        return
    from devstack import state_file  # an operator tool in the repository, never on Lambda

    path = state_file()
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise AdminError(
            "no dev stack is running (start one with `make dev`) and NSHUB_TABLE is not set "
            "(for a deployed stack, set the NSHUB_* variables of its functions)"
        ) from None
    except (OSError, ValueError) as exc:
        raise AdminError(f"cannot read the dev stack's settings in {path}: {exc}") from None
    if not isinstance(state, dict) or not _listening(str(state.get("AWS_ENDPOINT_URL", ""))):
        raise AdminError(f"the dev stack recorded in {path} is not running: start it with "
                         "`make dev`")
    # The stack's dummy AWS keys too: moto accepts any, and real ones have no business here.
    os.environ.update({key: str(value) for key, value in state.items()})


def _listening(url: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


def cmd_import_legacy(args: argparse.Namespace) -> dict:
    from chalicelib.legacy import import_array

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"error: no such file {path}")
    return import_array(args.name, args.owner.lower(), path, public=args.public)


def cmd_reconcile(args: argparse.Namespace) -> dict:
    from chalicelib.reconciler import reconcile

    return reconcile(dry_run=args.dry_run)


def cmd_import_legacy_executor(args: argparse.Namespace) -> dict:
    from chalicelib.errors import InvalidPackage
    from chalicelib.legacy_executors import import_legacy_executor
    from chalicelib.packages import validate_executor_package

    # The client's packer (`nshub hub push`), so that pushing the same folder later is an
    # unchanged re-push; an operator tool, run where the client is installed, never on Lambda.
    from nshub.packaging import PackagingError, pack_executor_file

    folder = Path(args.dir)
    if not folder.is_dir():
        raise SystemExit(f"error: no such folder {folder}")
    try:
        package = Path(pack_executor_file(folder))
    except PackagingError as exc:
        raise InvalidPackage(str(exc)) from None
    try:
        validate_executor_package(package)  # refused before anything is uploaded
        return import_legacy_executor(args.name, args.owner.lower(), args.secret, package,
                                      public=args.public)
    finally:
        os.unlink(package)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nshub-admin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import-legacy", help="register a DocumentArray that predates namespaces")
    p.add_argument("name")
    p.add_argument("--owner", required=True, help="the user who owned it")
    p.add_argument("--file", required=True, help="the array's bytes")
    p.add_argument("--public", action="store_true")
    p.set_defaults(run=cmd_import_legacy)

    p = sub.add_parser("import-legacy-executor",
                       help="register an Executor that predates namespaces, with its secret")
    p.add_argument("name")
    p.add_argument("--owner", required=True, help="the user who owns it (its namespace)")
    p.add_argument("--secret", required=True, help="the secret its users pull and push with")
    p.add_argument("--dir", required=True, help="the executor's folder (with config.yml)")
    p.add_argument("--public", action="store_true")
    p.set_defaults(run=cmd_import_legacy_executor)

    p = sub.add_parser("reconcile", help="delete blobs and multipart uploads no record claims "
                                         "(older than NSHUB_ORPHAN_GRACE_SECONDS)")
    p.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    p.set_defaults(run=cmd_reconcile)
    return parser


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    args = build_parser().parse_args(argv)
    try:
        _env_from_devstack()
        result = args.run(args)
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except NshubError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        where = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
        print(f"error: the call to {where} failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
