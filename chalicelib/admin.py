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


def _env_from_devstack() -> None:
    """Outside Lambda, pick up the running dev stack's settings when none are set."""
    state = Path(os.environ.get("NSHUB_DEVSTACK_ENV", ".devstack/env.json"))
    if "NSHUB_TABLE" not in os.environ and state.is_file():
        for key, value in json.loads(state.read_text()).items():
            os.environ.setdefault(key, value)


def cmd_import_legacy(args: argparse.Namespace) -> dict:
    from chalicelib.legacy import import_array

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"error: no such file {path}")
    return import_array(args.name, args.owner.lower(), path, public=args.public)


def cmd_reconcile(args: argparse.Namespace) -> dict:
    from chalicelib.cleanup import reconcile

    return reconcile(dry_run=args.dry_run)


def cmd_import_legacy_executor(args: argparse.Namespace) -> dict:
    # An operator tool run from the repository: it may use the client's packer (the Lambda
    # functions never import nshub/).
    from chalicelib.errors import InvalidPackage
    from chalicelib.executors import import_legacy_executor
    from nshub.errors import NshubError as ClientError
    from nshub.packaging import pack_executor

    folder = Path(args.dir)
    if not folder.is_dir():
        raise SystemExit(f"error: no such folder {folder}")
    try:
        package, _, _ = pack_executor(folder)
    except ClientError as exc:
        raise InvalidPackage(exc.message) from None
    try:
        return import_legacy_executor(args.name, args.owner.lower(), args.secret, Path(package),
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
    args = build_parser().parse_args(argv)
    _env_from_devstack()
    try:
        result = args.run(args)
    except NshubError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
