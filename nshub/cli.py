"""The `nshub` command line.

    nshub signup USER --email E     nshub push FILE NAME [--public|--private] [--meta k=v ...]
    nshub confirm USER CODE         nshub pull NAME [-o FILE] [--version N]
    nshub login USER                nshub ls NAMESPACE
    nshub login --token  (stdin)    nshub info NAME [--version N]
    nshub logout                    nshub versions NAME
    nshub whoami                    nshub visibility NAME public|private
                                    nshub rm NAME [--yes]
    nshub token create NAME [--scope read|write] [--days N]
    nshub token ls                  nshub token rm ID

Every command prints a short human answer, or JSON with `--json`. A failure is one line on
stderr, `error: <message> (<Code>)`, then a `hint:` line, and exit code 1 (2 for bad usage);
NSHUB_DEBUG=1 adds the traceback. Command groups are functions that add subparsers, so more
groups (executors: `nshub hub ...`) plug into `COMMAND_GROUPS`.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
import traceback
from typing import Any, Callable, Sequence

from nshub import __version__, settings
from nshub._http import without_query
from nshub.cli_output import human_size, print_json, print_table, with_json, without_urls
from nshub.errors import InvalidRequest, NshubError
from nshub.hub_cli import add_hub_parser

# --- platform ---------------------------------------------------------------------------


def add_auth_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("signup", help="create an account (your username is your namespace)")
    p.add_argument("username")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    with_json(p).set_defaults(func=cmd_signup)

    p = sub.add_parser("confirm", help="confirm an account with the code sent by email")
    p.add_argument("username")
    p.add_argument("code")
    with_json(p).set_defaults(func=cmd_confirm)

    p = sub.add_parser("login", help="sign in and store the tokens in NSHUB_HOME (0600)")
    p.add_argument("username", nargs="?")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--token", action="store_true",
                   help="store a personal access token (read from stdin, never an argument)")
    with_json(p).set_defaults(func=cmd_login, usage_check=(p, _login_usage))

    p = sub.add_parser("logout", help="forget the stored tokens")
    p.set_defaults(func=cmd_logout)

    p = sub.add_parser("whoami", help="print who you are signed in as")
    with_json(p).set_defaults(func=cmd_whoami)


def cmd_signup(client: Any, args: argparse.Namespace) -> None:
    password = _read_password(args.password_stdin, confirm=True)
    result = client.signup(args.username, password, args.email)
    if print_json(args, result):
        return
    username = result.get("username", args.username)
    print(f"signed up as {username}")
    if not result.get("confirmed"):
        print(f"check your email for a code, then run: nshub confirm {username} CODE")


def cmd_confirm(client: Any, args: argparse.Namespace) -> None:
    result = client.confirm(args.username, args.code)
    if not print_json(args, result):
        print(f"confirmed {args.username}: now run `nshub login {args.username}`")


def cmd_login(client: Any, args: argparse.Namespace) -> None:
    if args.token:
        if args.username and args.username.startswith("nshub_"):
            raise InvalidRequest("never put a token on the command line (shell history and "
                                 "process lists keep it): pipe it in, e.g. `nshub login --token "
                                 "< token.txt`", code="TokenInArguments")
        me = client.login_with_token(_read_secret("Token: "))
        if args.username and args.username != me.get("username"):
            client.logout()
            raise InvalidRequest(f"this token belongs to {me.get('username')}, not "
                                 f"{args.username}: nothing stored", code="WrongAccount")
        if not print_json(args, me):
            print(f"logged in as {me.get('username')} at {client.endpoint} with a personal "
                  "access token")
        return
    password = _read_password(args.password_stdin, confirm=False)
    me = client.login(args.username, password)
    if not print_json(args, me):
        print(f"logged in as {me.get('username', args.username)} at {client.endpoint}")


def _login_usage(args: argparse.Namespace) -> str | None:
    if not args.username and not args.token:
        return "give your USERNAME (or --token to store a personal access token read from stdin)"
    return None


def cmd_logout(client: Any, args: argparse.Namespace) -> None:
    print("logged out" if client.logout() else "you were not logged in")


def cmd_whoami(client: Any, args: argparse.Namespace) -> None:
    me = client.whoami()
    if not print_json(args, me):
        print(me.get("username"))


# --- arrays -----------------------------------------------------------------------------


def add_array_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="push a file as a new version of an array")
    p.add_argument("file")
    p.add_argument("name", help="namespace/name")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--public", dest="public", action="store_const", const=True, default=None)
    group.add_argument("--private", dest="public", action="store_const", const=False)
    p.add_argument(
        "--meta", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
        help="metadata to record (repeatable)",
    )
    with_json(p).set_defaults(func=cmd_push)

    p = sub.add_parser("pull", help="download an array, checked against its sha256")
    p.add_argument("name", help="namespace/name, or a bare legacy name")
    p.add_argument("-o", "--output", help="file or folder to write (default: ./NAME)")
    p.add_argument("--version", type=int)
    with_json(p).set_defaults(func=cmd_pull)

    p = sub.add_parser("ls", help="list the arrays of a namespace")
    p.add_argument("namespace")
    with_json(p).set_defaults(func=cmd_ls)

    p = sub.add_parser("info", help="show an array")
    p.add_argument("name")
    p.add_argument("--version", type=int)
    with_json(p).set_defaults(func=cmd_info)

    p = sub.add_parser("versions", help="list the versions of an array")
    p.add_argument("name")
    with_json(p).set_defaults(func=cmd_versions)

    p = sub.add_parser("visibility", help="make an array public or private")
    p.add_argument("name")
    p.add_argument("visibility", choices=("public", "private"))
    with_json(p).set_defaults(func=cmd_visibility)

    p = sub.add_parser("rm", help="delete an array and all its versions")
    p.add_argument("name")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_rm)


def cmd_push(client: Any, args: argparse.Namespace) -> None:
    metadata = dict(args.meta) if args.meta else None
    info = client.push_file(args.file, args.name, public=args.public, metadata=metadata)
    if not print_json(args, info):
        done = "unchanged:" if info.get("unchanged") else "pushed"
        print(
            f"{done} {info.get('full_name', args.name)} version {info.get('version')} "
            f"({human_size(info.get('size'))}, {info.get('visibility')})"
        )


def cmd_pull(client: Any, args: argparse.Namespace) -> None:
    path, info = client.pull_to_file(args.name, args.output, version=args.version)
    result = {**without_urls(info), "path": str(path)}
    if not print_json(args, result):
        print(
            f"pulled {info.get('full_name', args.name)} version {info.get('version')} "
            f"to {path} ({human_size(info.get('size'))})"
        )


def cmd_ls(client: Any, args: argparse.Namespace) -> None:
    items = client.list(args.namespace)
    if print_json(args, {"items": items}):
        return
    if not items:
        print(f"no arrays in {args.namespace} that you can see")
        return
    print_table(
        ("NAME", "VERSION", "SIZE", "VISIBILITY", "UPDATED"),
        [
            (i.get("full_name"), i.get("version"), human_size(i.get("size")), i.get("visibility"),
             i.get("updated_at"))
            for i in items
        ],
    )


def cmd_info(client: Any, args: argparse.Namespace) -> None:
    info = client.info(args.name, version=args.version)
    if print_json(args, info):
        return
    shown = without_urls(info)
    for key in ("full_name", "version", "visibility", "size", "sha256", "created_at",
                "updated_at", "legacy"):
        if key in shown:
            value = shown[key]
            if key == "size":
                value = f"{value} ({human_size(value)})"
            print(f"{key + ':':12} {value}")
    if shown.get("metadata"):
        print(f"{'metadata:':12} {json.dumps(shown['metadata'], sort_keys=True)}")


def cmd_versions(client: Any, args: argparse.Namespace) -> None:
    items = client.versions(args.name)
    if print_json(args, {"items": items}):
        return
    print_table(
        ("VERSION", "SIZE", "SHA256", "CREATED"),
        [(i.get("version"), human_size(i.get("size")), (i.get("sha256") or "")[:12],
          i.get("created_at")) for i in items],
    )


def cmd_visibility(client: Any, args: argparse.Namespace) -> None:
    info = client.set_visibility(args.name, args.visibility)
    if not print_json(args, info):
        print(f"{info.get('full_name', args.name)} is now {info.get('visibility')}")


def cmd_rm(client: Any, args: argparse.Namespace) -> None:
    from nshub.names import writable_array_name

    name = str(writable_array_name(args.name))  # a bad name fails before the question
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidRequest(
                f"refusing to delete {name} without confirmation: pass --yes", code="NotConfirmed"
            )
        answer = input(f"Delete {name}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing deleted")
            return
    client.delete(name)
    print(f"deleted {name}")


# --- personal access tokens -------------------------------------------------------------


def add_token_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="personal access tokens for CI, scripts and Jina clients")
    tsub = p.add_subparsers(dest="token_command", metavar="COMMAND", required=True)

    c = tsub.add_parser("create", help="make a token (its secret is printed once)")
    c.add_argument("name", help="what it is for, e.g. nightly-ci")
    c.add_argument("--scope", choices=("read", "write"), default="read",
                   help="read: pull, info, list; write: also push, change, delete (default read)")
    c.add_argument("--days", type=int, help="days until it expires (1-365, default 90)")
    with_json(c).set_defaults(func=cmd_token_create)

    c = tsub.add_parser("ls", help="list your live tokens (never their secrets)")
    with_json(c).set_defaults(func=cmd_token_ls)

    c = tsub.add_parser("rm", help="revoke a token: refused from the next request on")
    c.add_argument("id", help="the token's id (see `nshub token ls`)")
    c.set_defaults(func=cmd_token_rm)


def cmd_token_create(client: Any, args: argparse.Namespace) -> None:
    made = client.create_token(args.name, scope=args.scope, days=args.days)
    if print_json(args, made):
        return
    print(made["token"])
    print(f"token '{made.get('name')}' (id {made.get('id')}): {', '.join(made.get('scopes') or [])}"
          f", expires {made.get('expires_at')}")
    print("this secret will not be shown again: store it now (as NSHUB_TOKEN or "
          "JINA_AUTH_TOKEN, or with `nshub login --token`)")


def cmd_token_ls(client: Any, args: argparse.Namespace) -> None:
    items = client.list_tokens()
    if print_json(args, {"items": items}):
        return
    if not items:
        print("no live tokens: make one with `nshub token create NAME`")
        return
    print_table(
        ("ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED"),
        [(i.get("id"), i.get("name"), ",".join(i.get("scopes") or []), i.get("created_at"),
          i.get("expires_at"), i.get("last_used_at") or "never") for i in items],
    )


def cmd_token_rm(client: Any, args: argparse.Namespace) -> None:
    client.revoke_token(args.id)
    print(f"revoked token {args.id}")


# --- the program ------------------------------------------------------------------------

# Each adds its subcommands.
COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_auth_commands,
    add_array_commands,
    add_token_commands,
    add_hub_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nshub", description="Push and pull DocumentArrays and Executors by namespace/name."
    )
    parser.add_argument("--version", action="version", version=f"nshub {__version__}")
    parser.add_argument(
        "--endpoint", help=f"API root (default: $NSHUB_ENDPOINT or {settings.DEFAULT_ENDPOINT})"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_commands in COMMAND_GROUPS:
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return int(exc.code or 0)
    check = getattr(args, "usage_check", None)  # rules argparse cannot say: (subparser, rule)
    problem = check[1](args) if check is not None else None
    if problem:
        try:
            check[0].error(problem)
        except SystemExit as exc:
            return int(exc.code or 2)

    from nshub.client import Client

    client = Client(endpoint=args.endpoint)
    try:
        args.func(client, args)
        return 0
    except NshubError as exc:
        _report(exc, exc.message, exc.code, exc.hint)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        _report(exc, f"{exc.strerror or exc}{where}", type(exc).__name__, None)
    except Exception as exc:  # a bug: still one line, the traceback on demand
        _report(exc, f"unexpected {type(exc).__name__}: {exc}", "InternalError",
                "set NSHUB_DEBUG=1 to see the traceback, and please report it")
    finally:
        client.close()
    return 1


def _report(exc: BaseException, message: str, code: str, hint: str | None) -> None:
    if settings.debug():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    # the query of a presigned URL is a credential: never on the screen or in a CI log
    print(f"error: {without_query(message)} ({code})", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)


# --- helpers ----------------------------------------------------------------------------


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _read_secret(prompt: str) -> str:
    """A secret from stdin: typed without echo at a terminal, else the first line of a pipe."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def _read_password(from_stdin: bool, *, confirm: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise InvalidRequest("the passwords do not match", code="PasswordMismatch")
    if not password:
        raise InvalidRequest("the password is empty", code="EmptyPassword")
    return password


if __name__ == "__main__":
    sys.exit(main())
