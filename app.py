"""nshub's Chalice app: routes and event handlers, thin. Parse, find the caller, call, serialize.

Everything else lives in chalicelib/. Heavy modules (boto3, the table's model) load on first use, so
a cold start imports little.
"""
from __future__ import annotations

import functools
import re
import uuid

from chalice import Chalice, Rate, Response

from chalicelib import http
from chalicelib.config import BLOB_EVENTS_QUEUE, table_stream_arn
from chalicelib.errors import NshubError, NotFound
from chalicelib.observability import logger, metrics

app = Chalice(app_name="nshub")
# Old Jina clients upload multipart bodies: API Gateway must pass them to Lambda as binary
# (base64), or bytes that are not UTF-8 would be mangled.
app.api.binary_types.append("multipart/form-data")


# ---------------------------------------------------------------- plumbing


def answer_errors(call):
    """Run `call`; a domain error becomes its response, anything else a logged 500. The Jina
    clients' routes (/v2/) answer in their own envelope."""
    request = app.current_request
    hubble_api = bool(request and request.path.startswith("/v2/"))
    try:
        return call()
    except NshubError as exc:
        logger.info("refused", extra={"code": exc.code, "status": exc.status,
                                      "path": request.path if request else None})
        if hubble_api:
            return hubble_response(*_hubble().error_body(exc), headers=exc.headers)
        body, status, headers = http.error_response(exc)
    except Exception:
        logger.exception("unhandled error")
        if hubble_api:
            return hubble_response(*_hubble().internal_error_body())
        body, status, headers = http.internal_error()
    return Response(body=body, status_code=status, headers=headers)


def _hubble():
    from chalicelib import hubble

    return hubble


def hubble_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body=body, status_code=status,
                    headers={**http.JSON_HEADERS, **(headers or {})})


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
    if response.status_code in (405, 415) and "X-Error-Code" not in response.headers:
        response = chalice_refusal(event, response)
    if metrics.metric_set:
        metrics.flush_metrics()
    response.headers["X-Request-Id"] = request_id
    response.headers.update(http.cache_headers(event.headers or {}))
    return response


def chalice_refusal(request, refused: Response) -> Response:
    """Chalice's own 405/415 (no view ran), in the error contract."""
    error = http.chalice_refusal(refused.status_code, request.method,
                                 refused.headers.get("Allow"),
                                 (request.headers or {}).get("content-type"))
    body, status, headers = http.error_response(error)
    if "Allow" in refused.headers:
        headers["Allow"] = refused.headers["Allow"]
    return Response(body=body, status_code=status, headers=headers)


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
    if not re.fullmatch(r"[0-9]{1,12}", raw) or int(raw) < 1:
        raise InvalidRequest(f"{name} must be a positive integer")
    return int(raw)


def created(payload: dict) -> Response:
    return Response(body=payload, status_code=201, headers=dict(http.JSON_HEADERS))


def upload_started(payload: dict) -> Response:
    """201 with the upload plan, or 200 with the newest version's info for an unchanged push."""
    status = 200 if payload.get("unchanged") else 201
    return Response(body=payload, status_code=status, headers=dict(http.JSON_HEADERS))


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
            "max_unpacked_executor_bytes": s.max_unpacked_executor_bytes,
            "part_size": blobs.plan_parts(s.max_upload_bytes)[0],
            "single_part_max_bytes": s.single_part_max_bytes, "min_part_size": s.min_part_size,
            "max_parts": blobs.TARGET_MAX_PARTS, "image_builds": s.image_builds}


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
    from chalicelib.access import require_caller

    who = require_caller(caller())
    return {"username": who.username, "namespace": who.namespace}


# ---------------------------------------------------------------- web console


@route("/", methods=["GET"])
def console_page():
    from chalicelib import assets

    # The page names its files relatively: behind API Gateway `/api` must become `/api/`
    # first, or `console/main.js` would resolve outside the stage.
    seen_path = (app.current_request.context or {}).get("path") or "/"
    if not seen_path.endswith("/"):
        return Response(body="", status_code=301,
                        headers={"Location": seen_path.rsplit("/", 1)[-1] + "/"})
    text, headers = assets.page()
    return Response(body=text, status_code=200, headers=headers)


@route("/console/{file}", methods=["GET"])
def console_asset(file):
    from chalicelib import assets

    text, headers = assets.asset(file)
    return Response(body=text, status_code=200, headers=headers)


# ---------------------------------------------------------------- personal access tokens


@route("/v1/tokens", methods=["POST"])
def create_token():
    from chalicelib import tokens

    return created(tokens.create_token(caller(), body(required=False)))


@route("/v1/tokens", methods=["GET"])
def list_tokens():
    from chalicelib import tokens

    return tokens.list_tokens(caller())


@route("/v1/tokens/{token_id}", methods=["DELETE"])
def revoke_token(token_id):
    from chalicelib import tokens

    tokens.revoke_token(caller(), token_id=token_id)
    return no_content()


# ---------------------------------------------------------------- resources


@route("/v1/{kind}/{ns}", methods=["GET"])
def list_resources(kind, ns):
    from chalicelib import resources

    return resources.list_resources(caller(), kind_of(kind), ns, query("limit"), query("cursor"))


@route("/v1/{kind}/{ns}/{name}", methods=["GET"])
def get_resource(kind, ns, name):
    from chalicelib import resources

    return resources.get_resource(caller(), kind_of(kind), ns, name,
                                 version=int_query("version"), tag=query("tag"))


@route("/v1/{kind}/{ns}/{name}/versions", methods=["GET"])
def list_versions(kind, ns, name):
    from chalicelib import resources

    return resources.list_versions(caller(), kind_of(kind), ns, name, query("limit"), query("cursor"))


@route("/v1/{kind}/{ns}/{name}", methods=["PATCH"])
def update_resource(kind, ns, name):
    from chalicelib import resources

    return resources.update_resource(caller(), kind_of(kind), ns, name, body())


@route("/v1/{kind}/{ns}/{name}", methods=["DELETE"])
def delete_resource(kind, ns, name):
    from chalicelib import resources

    resources.delete_resource(caller(), kind_of(kind), ns, name)
    return no_content()


@route("/v1/{kind}/{ns}/{name}/uploads", methods=["POST"])
def start_upload(kind, ns, name):
    from chalicelib import uploads

    return upload_started(uploads.start_upload(caller(), kind_of(kind), ns, name, body()))


@route("/v1/{kind}/{ns}/{name}/uploads/{upload_id}/complete", methods=["POST"])
def complete_upload(kind, ns, name, upload_id):
    from chalicelib import uploads

    return uploads.complete_upload(caller(), kind_of(kind), ns, name, upload_id, body())


@route("/v1/{kind}/{ns}/{name}/uploads/{upload_id}/parts", methods=["POST"])
def refresh_part_urls(kind, ns, name, upload_id):
    from chalicelib import uploads

    return uploads.refresh_part_urls(caller(), kind_of(kind), ns, name, upload_id,
                                      body(required=False))


@route("/v1/{kind}/{ns}/{name}/uploads/{upload_id}", methods=["DELETE"])
def abort_upload(kind, ns, name, upload_id):
    from chalicelib import uploads

    uploads.abort_upload(caller(), kind_of(kind), ns, name, upload_id)
    return no_content()


# ---------------------------------------------------------------- Jina clients
# The Hubble API subset of shared/HUBBLE.md (chalicelib/hubble/): unmodified docarray,
# jina-hubble-sdk and jina clients, with JINA_HUBBLE_REGISTRY pointing here.

HUBBLE_CONTENT_TYPES = ["application/json", "multipart/form-data",
                        "application/x-www-form-urlencoded", "text/plain",
                        "application/octet-stream"]


@route("/v2/rpc/{method}", methods=["GET", "POST"], content_types=HUBBLE_CONTENT_TYPES)
def hubble_rpc(method):
    hubble = _hubble()
    request = app.current_request
    result = hubble.call(hubble.RpcRequest(
        method=method, caller=caller(), content_type=request.headers.get("content-type", ""),
        body=request.raw_body or b"", query=dict(request.query_params or {})))
    if isinstance(result, hubble.Lines):
        return Response(body=result.body(), status_code=200,
                        headers={"Content-Type": "application/x-ndjson"})
    return hubble_response(result)


# ---------------------------------------------------------------- legacy arrays


@route("/v1/legacy/arrays/{name}", methods=["GET"])
def get_legacy_array(name):
    from chalicelib import legacy

    return legacy.get_array(caller(), name)


@route("/v1/legacy/arrays/{name}/uploads", methods=["POST"])
def push_legacy_array(name):
    from chalicelib import legacy

    legacy.refuse_array_push(name)


# ---- executors
# Pushes, pulls, tags and versions of executors go through the generic /v1/{kind} routes.
# Here: registry credentials for their images, legacy (pre-namespace) executors with their
# secret, and the image builds' state changes.


def executor_secret() -> str | None:
    """The legacy executor secret of a request (never logged)."""
    return (app.current_request.headers or {}).get("x-executor-secret") or None


@route("/v1/executors/{ns}/{name}/pull-credentials", methods=["POST"])
def executor_pull_credentials(ns, name):
    from chalicelib import pulls

    return pulls.pull_credentials(caller(), ns, name, tag=query("tag"))


@route("/v1/legacy/executors/{name}", methods=["GET"])
def get_legacy_executor(name):
    from chalicelib import legacy_executors

    return legacy_executors.get_legacy_executor(caller(), name, executor_secret(), tag=query("tag"))


@route("/v1/legacy/executors/{name}/pull-credentials", methods=["POST"])
def legacy_executor_pull_credentials(name):
    from chalicelib import legacy_executors

    return legacy_executors.legacy_pull_credentials(caller(), name, executor_secret(),
                                                    tag=query("tag"))


@route("/v1/legacy/executors/{name}/uploads", methods=["POST"])
def start_legacy_executor_upload(name):
    from chalicelib import legacy_executors

    return upload_started(legacy_executors.start_legacy_upload(caller(), name,
                                                               executor_secret(), body()))


@route("/v1/legacy/executors/{name}/uploads/{upload_id}/complete", methods=["POST"])
def complete_legacy_executor_upload(name, upload_id):
    from chalicelib import legacy_executors

    return legacy_executors.complete_legacy_upload(caller(), name, executor_secret(), upload_id,
                                                   body())


@route("/v1/legacy/executors/{name}/uploads/{upload_id}/parts", methods=["POST"])
def refresh_legacy_executor_part_urls(name, upload_id):
    from chalicelib import legacy_executors

    return legacy_executors.refresh_legacy_part_urls(caller(), name, executor_secret(),
                                                     upload_id, body(required=False))


@route("/v1/legacy/executors/{name}/uploads/{upload_id}", methods=["DELETE"])
def abort_legacy_executor_upload(name, upload_id):
    from chalicelib import legacy_executors

    legacy_executors.abort_legacy_upload(caller(), name, executor_secret(), upload_id)
    return no_content()


# The project name depends on the stage and Chalice needs the pattern at package time: match
# the projects' common prefix; the handler ignores every project but the configured one.
@app.on_cw_event({"source": ["aws.codebuild"], "detail-type": ["CodeBuild Build State Change"],
                  "detail": {"project-name": [{"prefix": "nshub-executor-images-"}]}})
def on_image_build_state(event):
    from chalicelib import images

    return images.record_build_state(event.to_dict())


# ---- Cognito triggers
# The user pool's PreSignUp trigger (wired in infra/functions.yaml; the dev stack and the
# tests run it on moto's SignUp and AdminCreateUser, see devstack/motofix.py): refuses
# usernames that could not own their namespace, however the account is made.


@app.lambda_function(name="pre_sign_up")
def pre_sign_up(event, context):
    from chalicelib import accounts

    return accounts.pre_sign_up(event)


# ---- events
# S3 notifications (via SQS), the table stream and the hourly reconciler. Thin: parse the
# event, call chalicelib/cleanup.py (or reconciler.py), return the partial batch response.
# Lambda honours that response only with FunctionResponseTypes: [ReportBatchItemFailures] on
# the mapping, which Chalice cannot set, and Chalice wants literal event sources at package
# time (the queue of stage dev; the stream ARN from the packaging environment): `make
# package` merges infra/functions.yaml, which sets both mappings' FunctionResponseTypes, the
# queue's stage and `Stream: !GetAtt Table.StreamArn`. The dev stack's pump calls these
# directly.


def _flushed(result):
    if metrics.metric_set:
        metrics.flush_metrics()
    return result


@app.on_sqs_message(queue=BLOB_EVENTS_QUEUE, batch_size=10)
def on_blob_event(event):
    from chalicelib import cleanup

    context = event.context
    remaining = (lambda: context.get_remaining_time_in_millis() / 1000) \
        if hasattr(context, "get_remaining_time_in_millis") else None
    return _flushed(cleanup.handle_blob_events(event.to_dict()["Records"], remaining))


@app.on_dynamodb_record(stream_arn=table_stream_arn(), batch_size=100,
                        starting_position="TRIM_HORIZON")
def on_table_change(event):
    from chalicelib import cleanup, images, integrity

    return _flushed(cleanup.handle_table_changes(
        event.to_dict()["Records"],
        also=[images.handle_stream_record, integrity.handle_stream_record]))


@app.schedule(Rate(1, unit=Rate.HOURS))
def reconcile(event):
    from chalicelib import images, reconciler

    summary = reconciler.reconcile(dry_run=False, time_budget_seconds=45, resume=True)
    summary["stuck_builds"] = images.settle_stuck_builds()
    return _flushed(summary)
