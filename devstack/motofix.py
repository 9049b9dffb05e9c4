"""Make moto behave like AWS where nshub relies on it: DynamoDB as atomic as the real one,
and Cognito running the user pool's PreSignUp trigger (`run_sign_up_trigger`).

DynamoDB applies each write (and each transaction) atomically, so a conditional write that
races another one fails its condition. moto's server handles requests on threads and checks
conditions without a lock, so two racing conditional writes can both succeed there. The
registry relies on the real guarantee (version numbers of racing pushes), so every process
that serves moto (tests, the dev stack, the benchmarks) calls `make_dynamodb_atomic()` first.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Iterator

_LOCK = threading.RLock()
_TRIGGER_BYPASSED = threading.Event()
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def make_dynamodb_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_nshub_atomic", False):
            continue

        def locked(*args, __method=method, **kwargs):
            with _LOCK:
                return __method(*args, **kwargs)

        locked = functools.wraps(method)(locked)
        locked._nshub_atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)


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
