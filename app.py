"""nshub's Chalice app: routes and event handlers, thin. Parse, find the caller, call, serialize.

Everything else lives in chalicelib/. Heavy modules (boto3, pynamodb) load on first use, so
a cold start imports little.
"""
from __future__ import annotations

import functools
import uuid

from chalice import Chalice, Response

from chalicelib import http
from chalicelib.errors import NshubError, NotFound
from chalicelib.observability import logger, metrics

app = Chalice(app_name="nshub")


# ---------------------------------------------------------------- plumbing


def answer_errors(call):
    """Run `call`; a domain error becomes its response, anything else a logged 500."""
    try:
        return call()
    except NshubError as exc:
        request = app.current_request
        logger.info("refused", extra={"code": exc.code, "status": exc.status,
                                      "path": request.path if request else None})
        body, status, headers = http.error_response(exc)
    except Exception:
        logger.exception("unhandled error")
        body, status, headers = http.internal_error()
    return Response(body=body, status_code=status, headers=headers)


def route(path: str, **options):
    """app.route, with the one error mapping around the view (Chalice catches view errors
    itself, before any middleware sees them)."""
    def register(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            return answer_errors(lambda: view(*args, **kwargs))

        return app.route(path, **options)(guarded)

    return register


@app.middleware("http")
def request_context(event, get_response):
    """Find the caller (a bad token is 401, never anonymous); request id and caller on
    every log line; metrics flushed per request."""
    from chalicelib.auth import identify

    request_id = (event.context or {}).get("requestId") or uuid.uuid4().hex
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(request_id=request_id, username=None)

    def identified():
        event.caller = identify(event.headers or {})
        logger.thread_safe_append_keys(username=event.caller.username if event.caller else None)
        return None

    refused = answer_errors(identified)
    response = refused if refused is not None else get_response(event)
    if metrics.metric_set:
        metrics.flush_metrics()
    response.headers["X-Request-Id"] = request_id
    return response


def caller():
    return getattr(app.current_request, "caller", None)


def body(required: bool = True) -> dict:
    return http.json_body(app.current_request.raw_body, required=required)


def query(name: str) -> str | None:
    return (app.current_request.query_params or {}).get(name)


def kind_of(kind: str) -> str:
    from chalicelib.names import KINDS

    if kind not in KINDS:
        raise NotFound(f"no such resource kind '{kind}': use 'arrays' or 'executors'")
    return KINDS[kind]


def int_query(name: str) -> int | None:
    from chalicelib.errors import InvalidRequest

    raw = query(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidRequest(f"{name} must be a positive integer")
    return int(raw)


def created(payload: dict) -> Response:
    return Response(body=payload, status_code=201, headers=dict(http.JSON_HEADERS))


def no_content() -> Response:
    return Response(body="", status_code=204)


# ---------------------------------------------------------------- platform


@route("/v1/config", methods=["GET"])
def get_config():
    from chalicelib import blobs
    from chalicelib.config import get_settings

    s = get_settings()
    return {"region": s.region, "user_pool_id": s.user_pool_id, "client_id": s.client_id,
            "max_upload_bytes": s.max_upload_bytes, "max_executor_bytes": s.max_executor_bytes,
            "part_size": blobs.plan_parts(s.max_upload_bytes)[0],
            "single_part_max_bytes": s.single_part_max_bytes}


@route("/v1/auth/signup", methods=["POST"])
def signup():
    from chalicelib import identity

    return created(identity.signup(body()))


@route("/v1/auth/confirm", methods=["POST"])
def confirm():
    from chalicelib import identity

    return identity.confirm(body())


@route("/v1/auth/login", methods=["POST"])
def login():
    from chalicelib import identity

    return identity.login(body())


@route("/v1/auth/refresh", methods=["POST"])
def refresh():
    from chalicelib import identity

    return identity.refresh(body())


@route("/v1/me", methods=["GET"])
def me():
    from chalicelib.registry import require_caller

    who = require_caller(caller())
    return {"username": who.username, "namespace": who.namespace}


# ---------------------------------------------------------------- resources


@route("/v1/{kind}/{ns}", methods=["GET"])
def list_resources(kind, ns):
    from chalicelib import registry

    return registry.list_resources(caller(), kind_of(kind), ns, query("limit"), query("cursor"))


@route("/v1/{kind}/{ns}/{name}", methods=["GET"])
def get_resource(kind, ns, name):
    from chalicelib import registry

    return registry.get_resource(caller(), kind_of(kind), ns, name,
                                 version=int_query("version"), tag=query("tag"))


@route("/v1/{kind}/{ns}/{name}/versions", methods=["GET"])
def list_versions(kind, ns, name):
    from chalicelib import registry

    return registry.list_versions(caller(), kind_of(kind), ns, name, query("limit"), query("cursor"))


@route("/v1/{kind}/{ns}/{name}", methods=["PATCH"])
def update_resource(kind, ns, name):
    from chalicelib import registry

    return registry.update_resource(caller(), kind_of(kind), ns, name, body())


@route("/v1/{kind}/{ns}/{name}", methods=["DELETE"])
def delete_resource(kind, ns, name):
    from chalicelib import registry

    registry.delete_resource(caller(), kind_of(kind), ns, name)
    return no_content()


@route("/v1/{kind}/{ns}/{name}/uploads", methods=["POST"])
def start_upload(kind, ns, name):
    from chalicelib import registry

    return created(registry.start_upload(caller(), kind_of(kind), ns, name, body()))


@route("/v1/{kind}/{ns}/{name}/uploads/{upload_id}/complete", methods=["POST"])
def complete_upload(kind, ns, name, upload_id):
    from chalicelib import registry

    return registry.complete_upload(caller(), kind_of(kind), ns, name, upload_id, body())


@route("/v1/{kind}/{ns}/{name}/uploads/{upload_id}", methods=["DELETE"])
def abort_upload(kind, ns, name, upload_id):
    from chalicelib import registry

    registry.abort_upload(caller(), kind_of(kind), ns, name, upload_id)
    return no_content()


# ---------------------------------------------------------------- legacy arrays


@route("/v1/legacy/arrays/{name}", methods=["GET"])
def get_legacy_array(name):
    from chalicelib import legacy

    return legacy.get_array(caller(), name)


@route("/v1/legacy/arrays/{name}/uploads", methods=["POST"])
def push_legacy_array(name):
    from chalicelib import legacy

    legacy.refuse_array_push(name)
