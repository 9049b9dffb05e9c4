"""Make moto behave like AWS where nshub relies on it: DynamoDB as atomic as the real one,
streams included, Cognito running the user pool's PreSignUp trigger (`run_sign_up_trigger`),
and S3 refusing what S3 refuses (`make_s3_faithful`, below).

DynamoDB applies each write (and each transaction) atomically, so a conditional write that
races another one fails its condition. moto's server handles requests on threads and checks
conditions without a lock, so two racing conditional writes can both succeed there. The
registry relies on the real guarantee (version numbers of racing pushes), so every process
that serves moto (tests, the dev stack, the benchmarks) calls `make_dynamodb_atomic()` first.

A failed transaction leaves no trace in DynamoDB, stream included. moto rolls one back by
putting a deep copy of the table (taken before the transaction) in its place: the copy
brings a new stream shard object with the same id, while the old one keeps the records of
the writes that were undone and stays behind every iterator taken before. Here the rollback
keeps the table's own shard, without the undone writes' records, and stream reads take the
same lock, so no reader ever sees a record of a transaction that did not happen.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Iterator

_LOCK = threading.RLock()
_TRIGGER_BYPASSED = threading.Event()
WRITES = ("put_item", "update_item", "delete_item", "batch_write_item")
STREAM_READS = ("describe_stream", "get_shard_iterator", "get_records")


def _locked(method):
    def locked(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    locked = functools.wraps(method)(locked)
    locked._nshub_atomic = True  # type: ignore[attr-defined]
    return locked


def _transaction_keeping_streams(method):
    def transact_write_items(self, *args, **kwargs):
        with _LOCK:
            shards = {name: (table.stream_shard, len(table.stream_shard.items))
                      for name, table in self.tables.items() if table.stream_shard is not None}
            try:
                return method(self, *args, **kwargs)
            except Exception:
                for name, (shard, length) in shards.items():
                    table = self.tables.get(name)
                    if table is not None and table.stream_shard is not shard:
                        del shard.items[length:]
                        shard.table = table
                        table.stream_shard = shard
                raise

    transact_write_items = functools.wraps(method)(transact_write_items)
    transact_write_items._nshub_atomic = True  # type: ignore[attr-defined]
    return transact_write_items


def make_dynamodb_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    patches = [(DynamoDBBackend, name, _locked) for name in WRITES]
    patches += [(DynamoDBStreamsBackend, name, _locked) for name in STREAM_READS]
    patches.append((DynamoDBBackend, "transact_write_items", _transaction_keeping_streams))
    for cls, name, wrap in patches:
        method = getattr(cls, name)
        if not getattr(method, "_nshub_atomic", False):
            setattr(cls, name, wrap(method))


def run_sign_up_trigger() -> None:
    """Make moto's Cognito run the app's PreSignUp trigger, as the user pool does on AWS.

    moto runs no Lambda triggers. Here SignUp and AdminCreateUser call `app.pre_sign_up`
    (the same function the packaged template wires to the pool) for the pool the app in this
    process is configured with (`NSHUB_USER_POOL_ID`); a refusal becomes Cognito's
    `UserLambdaValidationException: PreSignUp failed with error ...`. So signing up through
    `/v1/auth/signup` and straight through moto's Cognito give the same answer. Called next to
    `make_dynamodb_atomic()` wherever the app and moto share a process (tests, dev stack)."""
    from moto.cognitoidp.models import CognitoIdpBackend
    from moto.core.exceptions import JsonRESTError

    if getattr(CognitoIdpBackend.sign_up, "_nshub_trigger", False):
        return
    original_sign_up = CognitoIdpBackend.sign_up
    original_admin_create_user = CognitoIdpBackend.admin_create_user

    def trigger(backend: Any, pool_id: str, username: str, attributes: Any, source: str,
                client_id: str) -> None:
        from chalicelib.config import get_settings

        if _TRIGGER_BYPASSED.is_set():
            return
        if not pool_id or pool_id != get_settings().user_pool_id:
            return  # not the app's pool: no trigger is wired to it
        import app

        event = {
            "version": "1", "region": backend.region_name, "userPoolId": pool_id,
            "userName": username, "triggerSource": source,
            "callerContext": {"awsSdkVersion": "moto", "clientId": client_id},
            "request": {"userAttributes": {a["Name"]: a["Value"] for a in attributes or []},
                        "validationData": None},
            "response": {"autoConfirmUser": False, "autoVerifyEmail": False,
                         "autoVerifyPhone": False},
        }
        try:
            app.pre_sign_up(event, None)
        except Exception as exc:  # noqa: BLE001 - Cognito refuses on any error of the trigger
            raise JsonRESTError("UserLambdaValidationException",
                                f"PreSignUp failed with error {exc}.") from None

    def sign_up(self: Any, client_id: str, username: str, password: str,
                attributes: Any) -> Any:
        pool = next((p for p in self.user_pools.values() if client_id in p.clients), None)
        if pool is not None:
            trigger(self, pool.id, username, attributes, "PreSignUp_SignUp", client_id)
        return original_sign_up(self, client_id, username, password, attributes)

    def admin_create_user(self: Any, user_pool_id: str, username: str, message_action: str,
                          temporary_password: str, attributes: Any) -> Any:
        if message_action != "RESEND":
            trigger(self, user_pool_id, username, attributes, "PreSignUp_AdminCreateUser",
                    "CLIENT_ID_NOT_APPLICABLE")
        return original_admin_create_user(self, user_pool_id, username, message_action,
                                          temporary_password, attributes)

    sign_up._nshub_trigger = True  # type: ignore[attr-defined]
    CognitoIdpBackend.sign_up = sign_up  # type: ignore[method-assign]
    CognitoIdpBackend.admin_create_user = admin_create_user  # type: ignore[method-assign]


@contextlib.contextmanager
def sign_up_trigger_bypassed() -> Iterator[None]:
    """Make accounts as if no trigger were wired (accounts older than the trigger, or an
    operator's mistake): the tests use it to show that the API refuses them anyway."""
    _TRIGGER_BYPASSED.set()
    try:
        yield
    finally:
        _TRIGGER_BYPASSED.clear()


# ---------------------------------------------------------------- S3 that refuses what S3 refuses
#
# moto's S3 checks no presigned signature, expiry, length or checksum, and keeps no checksum
# sent with a presigned PUT. Real S3 (and LocalStack's S3, see tests/test_storage_conformance.py)
# refuses such requests, and nshub's integrity rests on it: `complete` trusts the SHA-256 S3
# stored. So every process that serves moto makes it check what S3 checks on a presigned
# request (the URL's signature and expiry, which cover the signed Content-Length; the body
# against `x-amz-checksum-sha256`), keep that checksum, answer CompleteMultipartUpload with
# its composite checksum, serve a ranged GET without copying the whole object, and complete a
# multipart upload without copying its parts (devstack/s3parts.py).

def make_moto_faithful(secret_key: str | None = None) -> None:
    """Both fixes, for every process that serves moto (tests, the dev stack, benchmarks)."""
    make_dynamodb_atomic()
    make_s3_faithful(secret_key)


_S3_PATCHED = {"secret": None}


def make_s3_faithful(secret_key: str | None = None) -> None:
    import os

    from devstack import s3parts
    from devstack.s3parts import remember_body_sha256

    from moto.s3.responses import S3Response

    _S3_PATCHED["secret"] = secret_key  # None: this process's AWS_SECRET_ACCESS_KEY, when asked
    if getattr(S3Response._key_response, "_nshub_faithful", False):
        return
    original_key_response = S3Response._key_response
    original_get_checksum = S3Response._get_checksum
    original_complete = S3Response._key_response_post
    original_get_object = S3Response.get_object
    original_head = S3Response.head_object

    def _key_response(self, request, full_url):
        if request.method == "PUT":
            secret = _S3_PATCHED["secret"] or os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
            _check_presigned(request, full_url, secret)
            remember_body_sha256(_check_body_checksum(request.headers, self.body))
        try:
            return original_key_response(self, request, full_url)
        finally:  # a PUT that stored no part must not hand its digest to the next one
            remember_body_sha256(None)

    def _get_checksum(self, response_headers):
        algorithm, value = original_get_checksum(self, response_headers)
        sent = self.headers.get("x-amz-checksum-sha256")
        if not algorithm and sent:  # a presigned PUT: no SDK header, the checksum alone
            response_headers["x-amz-checksum-sha256"] = sent
            return "SHA256", sent
        return algorithm, value

    def _key_response_post(self, request, body, bucket_name, query, key_name):
        status, headers, content = original_complete(self, request, body, bucket_name, query,
                                                     key_name)
        if status == 200 and "uploadId" in query and b"<ETag>" in _as_bytes(content):
            key = self.backend.get_object(bucket_name, key_name)
            if key is not None and key.checksum_algorithm and key.checksum_type == "COMPOSITE":
                name = f"Checksum{key.checksum_algorithm.upper()}"
                element = f"<{name}>{key.checksum_value}-{key.checksum_parts}</{name}>".encode()
                content = _as_bytes(content).replace(
                    b"</CompleteMultipartUploadResult>",
                    element + b"</CompleteMultipartUploadResult>")
                headers.pop("content-length", None)
        return status, headers, content

    def head_object(self, bucket_name, query, key_name, headers):
        status, response_headers, content = original_head(self, bucket_name, query, key_name,
                                                          headers)
        sent = response_headers.get("x-amz-checksum-sha256")
        if status == 200 and sent and "-" not in sent:  # S3 qualifies a composite: `...-N`
            key = self.backend.get_object(bucket_name, key_name)
            if key is not None and key.checksum_type == "COMPOSITE" and key.checksum_parts:
                response_headers["x-amz-checksum-sha256"] = f"{sent}-{key.checksum_parts}"
        return status, response_headers, content

    def get_object(self):
        if _single_range(self.headers.get("range")) is None:
            return original_get_object(self)
        _LAZY.on = True  # FakeKey.value hands out a lazy view; the range reads only its slice
        try:
            return original_get_object(self)
        finally:
            _LAZY.on = False

    _key_response._nshub_faithful = True  # type: ignore[attr-defined]
    S3Response._key_response = _key_response
    S3Response._get_checksum = _get_checksum
    S3Response._key_response_post = _key_response_post
    S3Response.get_object = get_object
    S3Response.head_object = head_object
    _make_value_lazy_on_demand()
    s3parts.install()


def _as_bytes(content) -> bytes:
    return content.encode() if isinstance(content, str) else bytes(content or b"")


def _single_range(value: str | None) -> str | None:
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    return value


_LAZY = threading.local()


class _LazyBody:
    """A stored object's bytes, read only where sliced (moto copies the whole object for
    every GET, ranged or not: 16 ranges of 256 MiB cost seconds)."""

    def __init__(self, key):
        self._key = key

    def __len__(self) -> int:
        return int(self._key.size)

    def __getitem__(self, window: slice) -> bytes:
        start, stop, _ = window.indices(len(self))
        with self._key.lock:
            self._key._value_buffer.seek(start)
            return self._key._value_buffer.read(max(0, stop - start))


def _make_value_lazy_on_demand() -> None:
    from moto.s3.models import FakeKey

    stored = FakeKey.value
    if getattr(stored.fget, "_nshub_lazy", False):
        return

    def value(self):
        if getattr(_LAZY, "on", False):
            return _LazyBody(self)
        return stored.fget(self)

    value._nshub_lazy = True  # type: ignore[attr-defined]
    FakeKey.value = property(value, stored.fset)


def _check_body_checksum(headers, body: bytes | None) -> str | None:
    """S3 refuses a body whose SHA-256 is not the `x-amz-checksum-sha256` sent with it; the
    checked checksum, if one was sent."""
    import base64
    import hashlib

    from moto.s3.exceptions import S3ClientError

    sent = headers.get("x-amz-checksum-sha256")
    if not sent:
        return None
    actual = base64.b64encode(hashlib.sha256(body or b"").digest()).decode()
    if actual != sent:
        raise S3ClientError("BadDigest", "The SHA256 you specified did not match the calculated "
                                         "checksum.")
    return actual


def _check_presigned(request, full_url: str, secret: str) -> None:
    """A presigned (SigV4 query) request: refused with 403 when expired or when its signature,
    which covers every signed header (Content-Length, the checksum), does not match."""
    import datetime as dt
    import hashlib
    import hmac
    from urllib.parse import parse_qsl, quote, urlsplit

    from moto.s3.exceptions import S3ClientError

    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or full_url
    parts = urlsplit(raw)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    if "X-Amz-Signature" not in params:
        return
    denied = S3ClientError("AccessDenied", "Request has expired")
    try:
        signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.timezone.utc)
        expires = int(params["X-Amz-Expires"])
        scope = params["X-Amz-Credential"].split("/", 1)[1]
        signed_headers = params["X-Amz-SignedHeaders"]
    except (KeyError, ValueError, IndexError):
        raise S3ClientError("AuthorizationQueryParametersError",
                            "Query-string authentication requires the X-Amz parameters") from None
    if dt.datetime.now(dt.timezone.utc) > signed_at + dt.timedelta(seconds=expires):
        raise denied

    def enc(value: str) -> str:
        return quote(value, safe="-_.~")

    canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(
        (k, v) for k, v in query if k != "X-Amz-Signature"))
    canonical_headers = "".join(
        f"{name}:{' '.join(str(request.headers.get(name, '')).split())}\n"
        for name in signed_headers.split(";"))
    canonical = "\n".join([request.method, parts.path or "/", canonical_query, canonical_headers,
                           signed_headers, "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for piece in scope.split("/"):
        key = hmac.new(key, piece.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        from moto.s3.exceptions import S3SignatureDoesNotMatchError

        raise S3SignatureDoesNotMatchError()
