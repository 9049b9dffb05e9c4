"""The server's error codes come back as typed exceptions with a message and a hint."""
from __future__ import annotations

import pytest

from tests.fake_http import alice, hub, waits  # noqa: F401  (fixtures)
from nshub import errors
from nshub.errors import NotFound, NshubError, error_from_response

SERVER_CODES = {
    "InvalidName": 400, "InvalidRequest": 400, "ChecksumMismatch": 400, "SizeMismatch": 400,
    "InvalidPackage": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404,
    "Conflict": 409, "LegacyReadOnly": 409, "TagProtected": 409, "TooLarge": 413,
    "TooManyRequests": 429,
}


@pytest.mark.parametrize("code, status", SERVER_CODES.items())
def test_every_server_code_has_its_class(code, status):
    err = error_from_response(status, {"X-Error-Code": code}, {"Code": code, "Message": "m"})
    assert type(err) is getattr(errors, code)
    assert (err.code, err.message, err.status) == (code, "m", status)
    assert isinstance(err, NshubError)


def test_the_header_wins_and_unknown_codes_stay_generic():
    err = error_from_response(409, {"X-Error-Code": "Conflict"}, {"Code": "Other"})
    assert type(err) is errors.Conflict
    err = error_from_response(418, {"X-Error-Code": "Teapot"}, {"Message": "short and stout"})
    assert type(err) is NshubError and err.code == "Teapot" and err.message == "short and stout"


def test_a_bare_500_is_reported_as_a_bug():
    err = error_from_response(500, {}, None)
    assert type(err) is NshubError and err.code == "InternalError" and "bug" in err.message
    err = error_from_response(503, {}, None)
    assert err.code == "ServiceUnavailable" and "try again later" in err.message


def test_answers_without_a_code_are_typed_by_status():
    # e.g. API Gateway's own throttling: {"message": "Too Many Requests"}
    err = error_from_response(429, {}, {"message": "Too Many Requests"})
    assert type(err) is errors.TooManyRequests and err.message == "Too Many Requests"
    assert type(error_from_response(403, {}, None)) is errors.Forbidden


def test_hints_tell_what_to_do():
    assert "nshub login" in errors.Unauthorized.hint
    assert "private resources of others are invisible" in errors.NotFound.hint
    assert "namespace/name" in errors.LegacyReadOnly.hint
    assert issubclass(errors.NotLoggedIn, errors.Unauthorized)


def test_a_missing_array_raises_not_found(alice):
    with pytest.raises(NotFound) as caught:
        alice.info("alice/nothing")
    assert caught.value.status == 404 and "does not exist" in caught.value.message


def test_another_users_private_array_is_not_found(hub, alice):
    alice.push_bytes(b"secret", "alice/diary")
    from nshub import Client

    bob = Client()
    bob.login("bob", "bob-pw")
    with pytest.raises(NotFound):
        bob.pull_bytes("alice/diary")
    with pytest.raises(errors.Forbidden):
        bob.push_bytes(b"x", "alice/diary")


def test_the_api_never_follows_a_redirect_with_credentials(hub, alice):
    # requests drops Authorization on a redirect to another host, not X-Executor-Secret.
    from tests.fake_http import FakeHub, serve

    elsewhere = FakeHub()
    server, thread = serve(elsewhere)
    try:
        hub.fail("GET", "/v1/legacy/executors/", 302,
                 headers={"Location": f"{elsewhere.endpoint}/collect?X-Amz-Signature=x"})
        with pytest.raises(errors.InvalidEndpoint) as caught:
            alice.executor_info("jinahub://MyExecutor:s3cret")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert elsewhere.requests == []
    assert caught.value.message == (
        f"GET /v1/legacy/executors/MyExecutor was redirected (HTTP 302) to "
        f"{elsewhere.endpoint}/collect: nshub does not follow redirects with your credentials; "
        "if that is the API, set NSHUB_ENDPOINT (or --endpoint) to it")


def test_a_2xx_answer_that_is_not_json_is_one_clear_error(hub, alice):
    # e.g. a proxy's or a web server's page where the API should be
    hub.fail("GET", "/v1/arrays/alice/x", 200, headers={"Content-Type": "text/html"},
             body=b"<html>welcome</html>")
    with pytest.raises(errors.UnexpectedResponse) as caught:
        alice.info("alice/x")
    assert caught.value.message == (
        f"GET /v1/arrays/alice/x answered HTTP 200 with a body that is not JSON (text/html): "
        f"is {hub.endpoint} an nshub server?")
    assert "NSHUB_ENDPOINT" in caught.value.hint
