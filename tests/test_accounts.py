"""Accounts own namespaces: attacks through Cognito itself and over HTTP.

The app client id is public and Cognito's SignUp is a public API, so an attacker signs up
straight in Cognito (boto3 against moto, whose SignUp and AdminCreateUser run the app's
PreSignUp trigger, as the pool does on AWS). Accounts forced in around the trigger (older than
it, or an operator's mistake) are made with the trigger bypassed: the API refuses them anyway.
"""
from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.helpers import push, random_bytes
from tests.jwts import claims, sign, sub_of

PASSWORD = "Xx-passw0rd1"
KELVIN_KATE = "\u212aate"  # KELVIN SIGN + "ate": reads as "kate"


@pytest.fixture
def idp(aws_env):
    return boto3.client("cognito-idp", endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                        region_name="us-east-1")


@pytest.fixture
def clock():
    """The liveness cache's clock, moved by the test instead of sleeping."""
    from chalicelib import accounts

    now = [1000.0]
    accounts.set_clock(lambda: now[0])
    yield now
    accounts.set_clock(time.monotonic)


def signup(api, username, password=PASSWORD, email="x@example.com"):
    return api.post("/v1/auth/signup", json={"username": username, "password": password,
                                             "email": email})


def cognito_sign_up(idp, env, username):
    return idp.sign_up(ClientId=env["NSHUB_CLIENT_ID"], Username=username, Password=PASSWORD,
                       UserAttributes=[{"Name": "email", "Value": "x@example.com"}])


def forced_account(idp, env, username) -> dict:
    """An account made around the trigger, confirmed, signed in: its tokens."""
    from devstack.motofix import sign_up_trigger_bypassed

    with sign_up_trigger_bypassed():
        idp.admin_create_user(UserPoolId=env["NSHUB_USER_POOL_ID"], Username=username,
                              MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": "x@example.com"}])
    idp.admin_set_user_password(UserPoolId=env["NSHUB_USER_POOL_ID"], Username=username,
                                Password=PASSWORD, Permanent=True)
    return login(idp, env, username)


def login(idp, env, username) -> dict:
    auth = idp.initiate_auth(ClientId=env["NSHUB_CLIENT_ID"], AuthFlow="USER_PASSWORD_AUTH",
                             AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
    return auth["AuthenticationResult"]


def every_route(owner: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", "/v1/me", None),
        ("GET", "/v1/config", None),
        ("GET", f"/v1/arrays/{owner}", None),
        ("GET", f"/v1/arrays/{owner}/secret", None),
        ("GET", f"/v1/arrays/{owner}/secret/versions", None),
        ("GET", f"/v1/arrays/{owner}/public_data", None),
        ("POST", f"/v1/arrays/{owner}/secret/uploads", {"size": 1, "sha256": "0" * 64}),
        ("PATCH", f"/v1/arrays/{owner}/secret", {"visibility": "public"}),
        ("DELETE", f"/v1/arrays/{owner}/secret", None),
        ("GET", f"/v1/executors/{owner}", None),
        ("GET", "/v1/legacy/arrays/old", None),
    ]


def assert_401_everywhere(api, tokens: dict, owner: str, label: str) -> None:
    for use in ("IdToken", "AccessToken"):
        for method, path, body in every_route(owner):
            r = api.request(method, path, token=tokens[use], json=body)
            assert (r.status_code, r.headers.get("X-Error-Code")) == (401, "Unauthorized"), (
                label, use, method, path, r.status_code, r.text)
            assert r.json()["Message"]


def owner_with_private_data(api, username, tokens_of=None) -> tuple[str, bytes]:
    if tokens_of is None:
        assert signup(api, username).status_code == 201
        tokens_of = api.post("/v1/auth/login", json={"username": username,
                                                     "password": PASSWORD}).json()
    token = tokens_of["id_token"]
    data = random_bytes(100)
    assert push(api, token, f"{username}/secret", data).status_code == 200
    assert push(api, token, f"{username}/public_data", data,
                visibility="public").status_code == 200
    return token, data


# ---------------------------------------------------------------- refused at sign-up


LOOK_ALIKES = [
    # (username, HTTP status and code at /v1/auth/signup, words of the one-line reason)
    ("ALICE", 409, "Conflict", "reads as the taken namespace 'alice'"),
    ("Alice", 409, "Conflict", "reads as the taken namespace 'alice'"),
    (KELVIN_KATE, 409, "Conflict", "reads as the taken namespace 'kate'"),
    ("alice", 409, "Conflict", "'alice' is taken"),
    ("legacy", 400, "InvalidName", "reserved"),
    ("admin", 400, "InvalidName", "reserved"),
    ("ADMIN", 400, "InvalidName", "reads as the reserved name 'admin'"),
    ("Bad_Name", 400, "InvalidName", "lowercase"),
    ("Zed", 400, "InvalidName", "lowercase"),  # not taken, still not a namespace
    ("zed\n", 400, "InvalidName", "lowercase"),  # a trailing newline is not a namespace
]


def test_look_alikes_and_reserved_names_are_refused_at_sign_up_either_way(api, idp, aws_env,
                                                                           users):
    assert signup(api, "kate").status_code == 201
    for username, status, code, reason in LOOK_ALIKES:
        r = signup(api, username)
        assert (r.status_code, r.headers.get("X-Error-Code")) == (status, code), (username, r.text)
        message = r.json()["Message"]
        assert reason in message, (username, message)
        # Straight through Cognito, as an attacker would: the trigger gives the same answer.
        with pytest.raises(ClientError) as refused:
            cognito_sign_up(idp, aws_env, username)
        error = refused.value.response["Error"]
        assert error["Code"] == "UserLambdaValidationException", (username, error)
        assert f"{code}: {message}" in error["Message"], (username, error)
        # ... and no account was made: nobody can sign in with that name.
        with pytest.raises(ClientError):
            login(idp, aws_env, username)


def test_operators_cannot_create_look_alikes_either(idp, aws_env, users):
    with pytest.raises(ClientError) as refused:
        idp.admin_create_user(UserPoolId=aws_env["NSHUB_USER_POOL_ID"], Username="Alice",
                              MessageAction="SUPPRESS")
    assert refused.value.response["Error"]["Code"] == "UserLambdaValidationException"


def test_a_direct_cognito_sign_up_of_a_free_namespace_works_and_claims_it(api, idp, aws_env):
    result = cognito_sign_up(idp, aws_env, "carol")
    idp.admin_confirm_sign_up(UserPoolId=aws_env["NSHUB_USER_POOL_ID"], Username="carol")
    tokens = login(idp, aws_env, "carol")
    me = api.get("/v1/me", token=tokens["AccessToken"])
    assert me.status_code == 200 and me.json()["namespace"] == "carol"
    assert sub_of(tokens["IdToken"]) == result["UserSub"]
    # the first token claimed it: a look-alike is now refused as taken
    r = signup(api, "Carol")
    assert (r.status_code, r.headers["X-Error-Code"]) == (409, "Conflict")


# ---------------------------------------------------------------- forced in: 401 everywhere


def test_accounts_forced_in_around_the_trigger_are_401_on_every_route(api, idp, aws_env, users):
    assert signup(api, "kate").status_code == 201
    owner_with_private_data(api, "alice", users["alice"])
    for username in ("ALICE", "Alice", KELVIN_KATE, "legacy", "admin", "Bad_Name"):
        tokens = forced_account(idp, aws_env, username)
        assert_401_everywhere(api, tokens, "alice", username)
    # alice herself is untouched
    r = api.get("/v1/arrays/alice/secret", token=users["alice"]["id_token"])
    assert r.status_code == 200


def test_a_token_whose_account_does_not_own_the_namespace_is_401(api, idp, aws_env, users):
    """Two accounts under one namespace (another pool's user, a re-made one): the claim
    decides, not the username string."""
    other_sub = "00000000-0000-0000-0000-000000000000"
    forged_but_signed = sign(claims(aws_env, sub=other_sub, iat=int(time.time())))
    r = api.get("/v1/arrays/alice", token=forged_but_signed)
    assert (r.status_code, r.headers["X-Error-Code"]) == (401, "Unauthorized")


# ---------------------------------------------------------------- deleted accounts


def test_a_deleted_accounts_tokens_stop_working_within_the_cache_time(api, idp, aws_env, users,
                                                                       clock):
    from chalicelib.accounts import LIVE_CACHE_SECONDS

    bob = users["bob"]
    owner_with_private_data(api, "bob", bob)
    assert LIVE_CACHE_SECONDS <= 60
    idp.admin_delete_user(UserPoolId=aws_env["NSHUB_USER_POOL_ID"], Username="bob")
    clock[0] += LIVE_CACHE_SECONDS
    assert_401_everywhere(api, {"IdToken": bob["id_token"], "AccessToken": bob["access_token"]},
                          "bob", "deleted bob")
    # the refresh token of a deleted account: 401 with a clear line, never a 500
    r = api.post("/v1/auth/refresh", json={"refresh_token": bob["refresh_token"]})
    assert (r.status_code, r.headers["X-Error-Code"]) == (401, "Unauthorized"), r.text
    assert "nshub login" in r.json()["Message"]


def test_a_disabled_accounts_tokens_stop_working_too(api, idp, aws_env, users, clock):
    from chalicelib.accounts import LIVE_CACHE_SECONDS

    alice = users["alice"]
    assert api.get("/v1/me", token=alice["access_token"]).status_code == 200
    idp.admin_disable_user(UserPoolId=aws_env["NSHUB_USER_POOL_ID"], Username="alice")
    clock[0] += LIVE_CACHE_SECONDS
    for token in (alice["id_token"], alice["access_token"]):
        r = api.get("/v1/arrays/alice", token=token)
        assert (r.status_code, r.headers["X-Error-Code"]) == (401, "Unauthorized"), r.text
        assert "deleted or disabled" in r.json()["Message"]
    idp.admin_enable_user(UserPoolId=aws_env["NSHUB_USER_POOL_ID"], Username="alice")
    clock[0] += LIVE_CACHE_SECONDS
    assert api.get("/v1/arrays/alice", token=alice["id_token"]).status_code == 200


def test_a_deleted_accounts_namespace_is_retired(api, idp, aws_env, users, clock):
    """Re-creating the username after deletion never gets the namespace nor its data."""
    owner_with_private_data(api, "bob", users["bob"])
    pool = aws_env["NSHUB_USER_POOL_ID"]
    idp.admin_delete_user(UserPoolId=pool, Username="bob")
    # through our sign-up and straight through Cognito: taken
    r = signup(api, "bob")
    assert (r.status_code, r.headers["X-Error-Code"]) == (409, "Conflict"), r.text
    with pytest.raises(ClientError) as refused:
        cognito_sign_up(idp, aws_env, "bob")
    assert refused.value.response["Error"]["Code"] == "UserLambdaValidationException"
    # forced in anyway: a new account under the old username gets nothing, now or later
    tokens = forced_account(idp, aws_env, "bob")
    assert_401_everywhere(api, tokens, "bob", "re-made bob")
    clock[0] += 3600
    assert_401_everywhere(api, tokens, "bob", "re-made bob, an hour later")
    # the data is still there, untouched, for nobody: anonymous sees only the public array
    assert api.get("/v1/arrays/bob/secret").status_code == 404
    assert api.get("/v1/arrays/bob/public_data").status_code == 200


# ---------------------------------------------------------------- cost


def test_a_signed_in_read_is_one_table_read_when_warm(api, aws_env, users):
    from bench import aws_calls
    from chalicelib import config

    aws_calls.install_hooks()
    config.reset()  # clients made from here on are counted
    token = users["alice"]["id_token"]
    owner_with_private_data(api, "alice", users["alice"])
    with aws_calls.counting() as cold:
        assert api.get("/v1/arrays/alice/secret", token=token).status_code == 200
    with aws_calls.counting() as warm:
        assert api.get("/v1/arrays/alice/secret", token=token).status_code == 200
    assert warm == ["dynamodb:GetItem"], warm
    assert "cognito-idp:AdminGetUser" not in cold  # pushing above warmed the cache already


# ---------------------------------------------------------------- the other sign-up rules


@pytest.mark.parametrize("email", ["x@", "@y", "@", "x@y", "x@y.", "x@.y", "x@y..z",
                                   "x y@z.io", "x@@z.io", "a" * 250 + "@x.io", "x@z.io\n"])
def test_bad_email_addresses_are_one_clear_400(api, email):
    r = signup(api, "dave", email=email)
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest"), email
    assert "name@example.com" in r.json()["Message"]


def test_the_password_policy_is_stated_and_is_the_pools():
    from chalicelib.identity import PASSWORD_POLICY, PASSWORD_REFUSED
    from devstack.bootstrap import load_template

    pool = next(r for r in load_template()["Resources"].values()
                if r["Type"] == "AWS::Cognito::UserPool")
    policy = pool["Properties"]["Policies"]["PasswordPolicy"]
    assert (policy["MinimumLength"], policy["RequireUppercase"], policy["RequireLowercase"],
            policy["RequireNumbers"], policy["RequireSymbols"]) == (
        PASSWORD_POLICY.min_length, PASSWORD_POLICY.uppercase, PASSWORD_POLICY.lowercase,
        PASSWORD_POLICY.digits, PASSWORD_POLICY.symbols)
    assert PASSWORD_REFUSED == ("password refused: use at least 8 characters, with an "
                                "upper-case letter, a lower-case letter and a digit")


@pytest.mark.parametrize("password", ["Short1A", "alllowercase1", "ALLUPPERCASE1",
                                      "NoDigitsHere"])
def test_a_weak_password_gets_the_policy(api, password):
    r = signup(api, "dave", password=password)
    assert (r.status_code, r.headers["X-Error-Code"]) == (400, "InvalidRequest")
    assert r.json()["Message"] == ("password refused: use at least 8 characters, with an "
                                   "upper-case letter, a lower-case letter and a digit")


# ---------------------------------------------------------------- Cognito's errors


ROUTES_BY_OPERATION = {
    "SignUp": ("/v1/auth/signup", {"username": "dave", "password": PASSWORD,
                                   "email": "dave@example.com"}),
    "ConfirmSignUp": ("/v1/auth/confirm", {"username": "dave", "code": "123456"}),
    "InitiateAuth": ("/v1/auth/login", {"username": "dave", "password": PASSWORD}),
}


def _every_error(client, operation: str) -> list[str]:
    return sorted(shape.name for shape in client.meta.service_model.operation_model(
        operation).error_shapes)


def test_every_cognito_error_is_a_clear_4xx(api, aws_env):
    """Every error the Cognito API model lists for each operation we call, answered by a
    stubbed client: never a 500."""
    from botocore.stub import Stubber

    from chalicelib.config import get_aws

    cognito = get_aws().cognito
    cases = [(op, path, body) for op, (path, body) in ROUTES_BY_OPERATION.items()]
    cases.append(("InitiateAuth", "/v1/auth/refresh", {"refresh_token": "r" * 40}))
    seen = 0
    for operation, path, body in cases:
        for code in _every_error(cognito, operation) + ["SomethingNewException"]:
            status = 500 if code in ("InternalErrorException", "SomethingNewException") else 400
            with Stubber(cognito) as stub:
                method = {"SignUp": "sign_up", "ConfirmSignUp": "confirm_sign_up",
                          "InitiateAuth": "initiate_auth"}[operation]
                stub.add_client_error(method, service_error_code=code,
                                      service_message=f"moto says {code}",
                                      http_status_code=status)
                r = api.post(path, json=body)
            assert 400 <= r.status_code < 500, (path, code, r.status_code, r.text)
            assert r.headers["X-Error-Code"] == r.json()["Code"], (path, code)
            message = r.json()["Message"]
            assert message and "\n" not in message and "moto says" not in message, (path, code)
            seen += 1
    assert seen > 40
