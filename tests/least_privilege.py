"""Least privilege, proved on the test suite: every AWS call a Lambda function's code makes
while the tests run is checked against that function's own role, as packaged.

- Which function: a Chalice middleware (outermost, every event type) marks the handler that
  runs: routes are the API function, each event handler its own function (the logical id
  Chalice gives it). Calls made outside any handler (test setup, the operator CLI) are not the
  functions' and are not checked.
- Which calls: every botocore client gets a `before-parameter-build` hook, which fires once
  per API call and once per presigned URL (a presigned request runs with the signer's
  permissions), whatever the session (boto3's and pynamodb's each have their own).
- Which identity: a client built with credentials from `sts:AssumeRole` acts as the assumed
  role, limited by its session policy, not as the function.
- Checked against: the roles of infra/functions.yaml and infra/template.yaml resolved for the
  stack the test runs on (names from its environment), with tests/iam_policy.py's evaluator.

A denied call fails the test that made it (conftest). With the whole suite, the grants no
call used are reported and fail the run: statements whose Sid starts with "Lambda" are the
Lambda service's (logs, event sources) and are exempt.
"""
from __future__ import annotations

import contextvars
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import iam_policy

ACCOUNT = "123456789012"  # moto's
PLATFORM_SID_PREFIX = "Lambda"
_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("nshub_function",
                                                                       default=None)
_lock = threading.Lock()
_assumed: dict[str, tuple[str, dict | None]] = {}  # access key -> (role ARN, session policy)
_violations: list[str] = []
_used: set[tuple[str, str, str]] = set()  # (role logical id, Sid, action)
_installed = False


@dataclass(frozen=True)
class Role:
    logical: str
    policies: tuple[dict, ...]


# ---------------------------------------------------------------- the stack's roles
def _stack_template() -> dict:
    import sys

    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo / "infra"))
    try:
        from package import stack_template  # infra/package.py
    finally:
        sys.path.remove(str(repo / "infra"))
    return stack_template({"Resources": {}})


def function_roles(template: dict) -> dict[str, str]:
    """Function logical id -> role logical id, from the overlays' `Role: !GetAtt X.Arn`."""
    out = {}
    for logical, res in template["Resources"].items():
        role = res.get("Properties", {}).get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role and res.get("Type") is None:
            out[logical] = role["Fn::GetAtt"][0]
    return out


def _condition(template: dict, r: Any, expr: Any) -> bool:
    if isinstance(expr, dict) and "Condition" in expr:
        return _condition(template, r, template["Conditions"][expr["Condition"]])
    (fn, args), = expr.items()
    if fn == "Fn::Equals":
        return str(r(args[0])) == str(r(args[1]))
    if fn == "Fn::Not":
        return not _condition(template, r, args[0])
    if fn == "Fn::Or":
        return any(_condition(template, r, a) for a in args)
    if fn == "Fn::And":
        return all(_condition(template, r, a) for a in args)
    raise ValueError(f"condition function {fn} not supported")


def _drop_no_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_drop_no_value(v) for v in value if v != "__NO_VALUE__"]
    if isinstance(value, dict):
        return {k: _drop_no_value(v) for k, v in value.items() if v != "__NO_VALUE__"}
    return value


def resolved_roles(env: dict[str, str]) -> tuple[dict[str, str], dict[str, Role], dict[str, str]]:
    """(function -> role logical id, role logical id -> Role, role ARN -> role logical id) for
    the stack described by `env` (the provisioned stack's environment)."""
    from devstack.bootstrap import Resolver

    template = _stack_template()
    region = env["AWS_REGION"]
    r = Resolver({"Stage": env["NSHUB_STAGE"], "AWS::Region": region,
                  "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": "__NO_VALUE__",
                  **{p: str(s.get("Default", "")) for p, s in template["Parameters"].items()
                     if p != "Stage"}})
    pool_arn = f"arn:aws:cognito-idp:{region}:{ACCOUNT}:userpool/{env['NSHUB_USER_POOL_ID']}"
    r.refs.update(Table=env["NSHUB_TABLE"], Bucket=env["NSHUB_BUCKET"],
                  UserPool=env["NSHUB_USER_POOL_ID"], EventsQueue=env["NSHUB_EVENTS_QUEUE_URL"],
                  ExecutorImageBuild=env["NSHUB_CODEBUILD_PROJECT"])
    r.atts.update({
        ("Table", "Arn"): f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{env['NSHUB_TABLE']}",
        ("Table", "StreamArn"): env["NSHUB_TABLE_STREAM_ARN"],
        ("UserPool", "Arn"): pool_arn,
        ("EventsQueue", "Arn"): iam_policy._queue_arn(env["NSHUB_EVENTS_QUEUE_URL"], region),
        ("EventsDeadLetterQueue", "Arn"): iam_policy._queue_arn(env["NSHUB_EVENTS_DLQ_URL"],
                                                                 region),
        ("ExecutorImageBuild", "Arn"):
            f"arn:aws:codebuild:{region}:{ACCOUNT}:project/{env['NSHUB_CODEBUILD_PROJECT']}",
    })
    for logical, res in template["Resources"].items():
        if res.get("Type") == "AWS::Logs::LogGroup":
            name = r(res["Properties"]["LogGroupName"])
            r.atts[(logical, "Arn")] = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{name}:*"
    r.conditions.update({name: _condition(template, r, expr)
                         for name, expr in template.get("Conditions", {}).items()})
    roles, by_arn = {}, {}
    for logical, res in template["Resources"].items():
        if res.get("Type") != "AWS::IAM::Role" or "RoleName" not in res["Properties"]:
            continue
        props = res["Properties"]
        policies = tuple(_drop_no_value(r(p["PolicyDocument"])) for p in props.get("Policies", []))
        roles[logical] = Role(logical, policies)
        by_arn[f"arn:aws:iam::{ACCOUNT}:role/{r(props['RoleName'])}"] = logical
    return function_roles(template), roles, by_arn


_cache: dict[tuple, tuple] = {}


def _roles_now() -> tuple[dict[str, str], dict[str, Role], dict[str, str]]:
    keys = ("AWS_REGION", "NSHUB_STAGE", "NSHUB_TABLE", "NSHUB_BUCKET", "NSHUB_USER_POOL_ID",
            "NSHUB_EVENTS_QUEUE_URL", "NSHUB_EVENTS_DLQ_URL", "NSHUB_CODEBUILD_PROJECT",
            "NSHUB_TABLE_STREAM_ARN")
    env = {k: os.environ.get(k, "") for k in keys}
    key = tuple(env.values())
    if key not in _cache:
        _cache.clear()
        _cache[key] = resolved_roles(env)
    return _cache[key]


# ---------------------------------------------------------------- recording
def _check(function: str, service: str, operation: str, params: dict, region: str,
           access_key: str | None) -> None:
    functions, roles, by_arn = _roles_now()
    assumed = _assumed.get(access_key or "")
    if assumed is not None:
        role_arn, session_policy = assumed
        logical = by_arn.get(role_arn)
        who = f"{function}, as {role_arn}"
        policies_sets = [roles[logical].policies] if logical else [()]
        if session_policy is not None:
            policies_sets.append((session_policy,))
    else:
        logical = functions.get(function)
        who = f"{function} (role {logical})"
        policies_sets = [roles[logical].policies] if logical in roles else [()]
    for action, resource in iam_policy.required(service, operation, params, region, ACCOUNT):
        if not all(iam_policy.allows(policies, action, resource) for policies in policies_sets):
            with _lock:
                _violations.append(f"{who} called {service}:{operation}: {action} on "
                                   f"{resource} is not allowed by its policy")
            continue
        if logical is None:
            continue
        for policy in roles[logical].policies:
            for statement in iam_policy.statements(policy):
                if statement["Effect"] == "Allow" and iam_policy.statement_applies(
                        statement, action, resource):
                    with _lock:
                        _used.add((logical, statement.get("Sid", ""), action.lower()))


def _unsigned(model: Any) -> bool:
    return getattr(model, "auth_type", None) == "none" or "smithy.api#noAuth" in (
        getattr(model, "auth", None) or [])


def install() -> None:
    """Hook every botocore client created from now on, and mark handlers in the app."""
    global _installed
    if _installed:
        return
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        access_key = kwargs.get("aws_access_key_id")
        if access_key is None:  # boto3 hands a Session's own credentials over this way
            credentials = self.get_credentials()
            access_key = credentials.access_key if credentials else None
        region = client.meta.region_name
        service = client.meta.service_model.service_name

        def before(params: dict, model: Any, context: dict, **_: Any) -> None:
            function = _function.get()
            if function is None or _unsigned(model):
                return
            if service == "sts" and model.name == "AssumeRole":
                context["nshub_assume"] = (params["RoleArn"], params.get("Policy"))
            _check(function, service, model.name, params, region, access_key)

        def after_assume(parsed: dict, context: dict, **_: Any) -> None:
            asked = context.get("nshub_assume")
            if asked and "Credentials" in parsed:
                role_arn, policy = asked
                with _lock:
                    _assumed[parsed["Credentials"]["AccessKeyId"]] = (
                        role_arn, json.loads(policy) if policy else None)

        client.meta.events.register("before-parameter-build.*.*", before)
        client.meta.events.register("after-call.sts.AssumeRole", after_assume)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    _mark_handlers()
    _installed = True


def _mark_handlers() -> None:
    from chalice.app import MiddlewareHandler, Request
    from chalice.utils import to_cfn_resource_name

    import app as app_module

    app = app_module.app
    names = {}
    for source in [*app.event_sources, *app.pure_lambda_functions]:
        handler = getattr(app_module, source.handler_string.split(".", 1)[1])
        names[id(handler.func)] = to_cfn_resource_name(source.name)

    def mark(event: Any, get_response: Any) -> Any:
        inner = get_response
        while isinstance(inner, MiddlewareHandler):
            inner = inner.next_handler
        function = "APIHandler" if isinstance(event, Request) else names[id(inner)]
        token = _function.set(function)
        try:
            return get_response(event)
        finally:
            _function.reset(token)

    app.middleware_handlers.insert(0, (mark, "all"))  # outermost: sees the auth middleware too


# Grants for code paths the suite does not drive through a handler (it tests them by calling
# chalicelib directly): exempt from "unused", reported if a test starts to use them.
NOT_DRIVEN_THROUGH_HANDLERS = {
    ("ReconcileRole", "Table", "dynamodb:putitem"):
        "saving the cursor when a scheduled run's 45 s budget runs out",
    ("BlobEventsRole", "Table", "dynamodb:deleteitem"):
        "an S3 event for an expired or dead upload (records go with the bytes)",
    ("BlobEventsRole", "Blobs", "s3:abortmultipartupload"):
        "an S3 event for a part of an expired multipart upload",
}


def take_violations() -> list[str]:
    with _lock:
        found = list(_violations)
        _violations.clear()
    return found


def used() -> set[tuple[str, str, str]]:
    with _lock:
        return set(_used)


def granted() -> set[tuple[str, str, str]]:
    """(role, Sid, action) of every code statement of the functions' roles (dev stage)."""
    template = _stack_template()
    out = set()
    for role in set(function_roles(template).values()):
        for policy in template["Resources"][role]["Properties"]["Policies"]:
            for statement in iam_policy.statements(policy["PolicyDocument"]):
                if "Fn::If" in statement:
                    statement = statement["Fn::If"][1]  # true in the dev stage the tests run
                if statement.get("Sid", "").startswith(PLATFORM_SID_PREFIX):
                    continue
                for action in iam_policy._listed(statement["Action"]):
                    out.add((role, statement.get("Sid", ""), action.lower()))
    return out
