"""`nshub hub ...`: executors on the command line (the Python API: the executor methods of
`nshub.Client`, nshub/client_executors.py).

    nshub hub push DIR [--name N] [--public|--private] [--tag T ...] [--protected-tag T ...]
                       [--legacy NAME --secret SECRET] [--json]
    nshub hub pull URI [--docker-login] [--json]     prints the folder (or the image reference)
    nshub hub ls NAMESPACE [--json]
    nshub hub info URI|NAMESPACE/NAME[:TAG] [--json]
    nshub hub versions URI|NAMESPACE/NAME [--json]
    nshub hub visibility NAMESPACE/NAME public|private [--json]
    nshub hub rm NAMESPACE/NAME [--yes]

`pull` prints only the path (or the image), so `cd "$(nshub hub pull jinaai://alice/Enc)"` and
`docker pull "$(nshub hub pull jinaai+docker://alice/Enc)"` work. Errors are printed by
nshub.cli.main like every other command: one line, then a hint.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nshub import executors
from nshub.cli_output import human_size, print_json, print_table, with_json, without_urls
from nshub.errors import InvalidRequest


def add_hub_parser(sub: argparse._SubParsersAction) -> None:
    hub = sub.add_parser(
        "hub",
        help="push, pull and manage executors",
        description="Executors: push a folder, pull jinaai://NAMESPACE/NAME[:TAG] and friends.",
    )
    hs = hub.add_subparsers(dest="hub_command", metavar="COMMAND", required=True)

    p = hs.add_parser("push", help="push an executor folder as a new version")
    p.add_argument("folder", metavar="DIR", help="a folder with config.yml")
    p.add_argument("--name", help="executor name (default: config.yml metas.name, else jtype)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--public", dest="public", action="store_const", const=True, default=None)
    group.add_argument("--private", dest="public", action="store_const", const=False)
    p.add_argument("-t", "--tag", dest="tags", action="append", default=[], metavar="TAG",
                   help="tag the new version (repeatable; `latest` is always the newest version)")
    p.add_argument("--protected-tag", dest="protected_tags", action="append", default=[],
                   metavar="TAG", help="a tag that can never move again (repeatable)")
    p.add_argument("--legacy", metavar="NAME", help="push the legacy executor jinahub://NAME")
    p.add_argument("--secret", help="the legacy executor's secret (with --legacy)")
    with_json(p).set_defaults(func=cmd_push)

    p = hs.add_parser("pull", help="pull an executor; prints its folder (or image)")
    p.add_argument("uri", help="jinaai://NS/NAME[:TAG], jinahub://NAME[:SECRET][/TAG], or +docker")
    p.add_argument("--docker-login", action="store_true",
                   help="for a docker URI: log docker in to the registry with short-lived credentials")
    with_json(p).set_defaults(func=cmd_pull)

    p = hs.add_parser("ls", help="list the executors of a namespace")
    p.add_argument("namespace")
    with_json(p).set_defaults(func=cmd_ls)

    p = hs.add_parser("info", help="show an executor")
    p.add_argument("target", metavar="URI_OR_NS/NAME")
    with_json(p).set_defaults(func=cmd_info)

    p = hs.add_parser("versions", help="list the versions of an executor")
    p.add_argument("target", metavar="URI_OR_NS/NAME")
    with_json(p).set_defaults(func=cmd_versions)

    p = hs.add_parser("visibility", help="make an executor public or private")
    p.add_argument("target", metavar="NS/NAME")
    p.add_argument("visibility", choices=("public", "private"))
    with_json(p).set_defaults(func=cmd_visibility)

    p = hs.add_parser("rm", help="delete an executor, all its versions and tags")
    p.add_argument("target", metavar="NS/NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_rm)


def _uri(info: dict, tag: str | None = None) -> str:
    return f"jinaai://{info.get('full_name')}" + (f":{tag}" if tag else "")


def cmd_push(client: Any, args: argparse.Namespace) -> None:
    if args.secret and not args.legacy:
        raise InvalidRequest("--secret goes with --legacy NAME", code="InvalidUsage")
    info = client.push_executor(
        args.folder,
        name=args.name,
        public=args.public,
        tags=args.tags,
        protected_tags=args.protected_tags,
        legacy=args.legacy,
        secret=args.secret,
    )
    if print_json(args, info):
        return
    tags = ", ".join(info.get("tags") or []) or "none"
    done = "unchanged:" if info.get("unchanged") else "pushed"
    print(
        f"{done} {info.get('full_name')} version {info.get('version')} "
        f"({human_size(info.get('size'))}, {info.get('visibility')}; tags: {tags})"
    )
    print(f"use it as {_uri(info)}")


def cmd_pull(client: Any, args: argparse.Namespace) -> None:
    ref = executors.resolve(args.uri)
    if ref.docker:
        info = client.executor_image(ref)
        if args.docker_login:
            registry = executors.docker_login(client.executor_pull_credentials(ref))
            print(f"docker is logged in to {registry}", file=sys.stderr)
        result = {"image": info["image"], "image_status": info.get("image_status")}
        if not print_json(args, result):
            print(info["image"])
        return
    if args.docker_login:
        raise InvalidRequest(
            "--docker-login is for docker URIs (jinaai+docker://, jinahub+docker://)",
            code="InvalidUsage",
        )
    path, info, cached = client.pull_executor_source(ref)
    result = {"path": str(path), "full_name": info.get("full_name"),
              "version": info.get("version"), "sha256": info.get("sha256"), "cached": cached}
    if not print_json(args, result):
        print(path)


def cmd_ls(client: Any, args: argparse.Namespace) -> None:
    items = client.list_executors(args.namespace)
    if print_json(args, {"items": items}):
        return
    if not items:
        print(f"no executors in {args.namespace} that you can see")
        return
    print_table(
        ("NAME", "VERSION", "TAGS", "SIZE", "VISIBILITY", "UPDATED"),
        [
            (i.get("full_name"), i.get("version"), ",".join(i.get("tags") or []),
             human_size(i.get("size")), i.get("visibility"), i.get("updated_at"))
            for i in items
        ],
    )


def cmd_info(client: Any, args: argparse.Namespace) -> None:
    info = without_urls(client.executor_info(args.target))
    if print_json(args, info):
        return
    for key in ("full_name", "version", "tags", "protected_tags", "visibility", "size", "sha256",
                "image", "image_status", "created_at", "updated_at", "legacy"):
        if key not in info:
            continue
        value = info[key]
        if key == "size":
            value = f"{value} ({human_size(value)})"
        elif isinstance(value, list):
            value = ", ".join(value) or "-"
        elif key == "image_status" and value == "pending" and not _builds_images(client):
            value = ("pending (this server builds no images: a dev stack has no CodeBuild; "
                     f"pull the source, {_source_uri(info)})")
        print(f"{key + ':':15} {value}")
    if info.get("metadata"):
        print(f"{'metadata:':15} {json.dumps(info['metadata'], sort_keys=True)}")


def _source_uri(info: dict) -> str:
    return f"jinahub://{info.get('name')}" if info.get("legacy") else _uri(info)


def _builds_images(client: Any) -> bool:
    """What /v1/config says (servers that do not say build them)."""
    return client.config().get("image_builds", True) is not False


def cmd_versions(client: Any, args: argparse.Namespace) -> None:
    items = client.list_executor_versions(args.target)
    if print_json(args, {"items": items}):
        return
    print_table(
        ("VERSION", "TAGS", "SIZE", "SHA256", "CREATED"),
        [(i.get("version"), ",".join(i.get("tags") or []), human_size(i.get("size")),
          (i.get("sha256") or "")[:12], i.get("created_at")) for i in items],
    )


def cmd_visibility(client: Any, args: argparse.Namespace) -> None:
    info = client.set_executor_visibility(args.target, args.visibility)
    if not print_json(args, info):
        print(f"{info.get('full_name', args.target)} is now {info.get('visibility')}")


def cmd_rm(client: Any, args: argparse.Namespace) -> None:
    ref = executors.resolve_writable(args.target)  # a bad name fails before the question
    name = ref.full_name
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidRequest(
                f"refusing to delete {name} without confirmation: pass --yes", code="NotConfirmed"
            )
        answer = input(f"Delete {name} and all its versions? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing deleted")
            return
    client.delete_executor(ref)
    print(f"deleted {name}")
