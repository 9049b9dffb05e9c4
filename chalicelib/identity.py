"""Accounts: sign-up, confirmation, sign-in and refresh, through the Cognito user pool.

Usernames are namespaces (lower-case, DESIGN.md's grammar). Cognito's own failures are
mapped to our error codes; an unknown user and a wrong password get the same answer.
"""
from __future__ import annotations

from typing import Any

from chalicelib.config import get_aws, get_settings
from chalicelib.errors import Conflict, Forbidden, InvalidRequest, TooManyRequests, Unauthorized
from chalicelib.names import check_new_username

BAD_LOGIN = "wrong username or password: check both and try again"


def _field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{name}' is required")
    return value


def _cognito_error(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def signup(body: dict) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    username = check_new_username(body.get("username"))
    password = _field(body, "password")
    email = _field(body, "email")
    if "@" not in email or len(email) > 254:
        raise InvalidRequest("email must be a valid address")
    settings = get_settings()
    cognito = get_aws().cognito
    try:
        cognito.sign_up(
            ClientId=settings.client_id, Username=username, Password=password,
            UserAttributes=[{"Name": "email", "Value": email}],
        )
    except ClientError as exc:
        code = _cognito_error(exc)
        if code in ("UsernameExistsException", "AliasExistsException"):
            raise Conflict(f"the username '{username}' is taken: choose another") from None
        if code == "InvalidPasswordException":
            reason = exc.response["Error"].get("Message") or "password too weak"
            raise InvalidRequest(f"password refused: {reason}") from None
        if code == "InvalidParameterException":
            raise InvalidRequest(exc.response["Error"].get("Message", "invalid sign-up")) from None
        if code in ("TooManyRequestsException", "LimitExceededException"):
            raise TooManyRequests("too many sign-ups right now: try again in a minute") from None
        raise
    confirmed = False
    if settings.is_dev:
        # The dev stage has no mail: accounts are confirmed at once.
        cognito.admin_confirm_sign_up(UserPoolId=settings.user_pool_id, Username=username)
        confirmed = True
    return {"username": username, "namespace": username, "confirmed": confirmed}


def confirm(body: dict) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    username = _field(body, "username").strip().lower()
    code = _field(body, "code")
    try:
        get_aws().cognito.confirm_sign_up(
            ClientId=get_settings().client_id, Username=username, ConfirmationCode=code
        )
    except ClientError as exc:
        err = _cognito_error(exc)
        if err in ("CodeMismatchException", "ExpiredCodeException", "UserNotFoundException",
                   "NotAuthorizedException"):
            raise InvalidRequest("the confirmation code is wrong or expired: check your email") from None
        raise
    return {"username": username, "confirmed": True}


def _tokens(result: dict, refresh_token: str | None = None) -> dict[str, Any]:
    auth = result["AuthenticationResult"]
    out = {
        "id_token": auth["IdToken"],
        "access_token": auth["AccessToken"],
        "expires_in": auth.get("ExpiresIn", 3600),
        "token_type": "Bearer",
    }
    out["refresh_token"] = auth.get("RefreshToken") or refresh_token
    return out


def login(body: dict) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    username = body.get("username")
    password = body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise InvalidRequest("'username' and 'password' are required")
    try:
        result = get_aws().cognito.initiate_auth(
            ClientId=get_settings().client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username.strip().lower(), "PASSWORD": password},
        )
    except ClientError as exc:
        code = _cognito_error(exc)
        if code in ("NotAuthorizedException", "UserNotFoundException", "InvalidParameterException"):
            raise Unauthorized(BAD_LOGIN) from None
        if code == "UserNotConfirmedException":
            raise Forbidden("this account is not confirmed yet: run `nshub confirm USER CODE`") from None
        if code in ("TooManyRequestsException", "LimitExceededException"):
            raise TooManyRequests("too many sign-in attempts: wait a minute and try again") from None
        raise
    if "AuthenticationResult" not in result:
        raise Unauthorized(f"sign-in needs a further step ({result.get('ChallengeName')}): use the console")
    return _tokens(result)


def refresh(body: dict) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    token = _field(body, "refresh_token")
    try:
        result = get_aws().cognito.initiate_auth(
            ClientId=get_settings().client_id, AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": token},
        )
    except ClientError as exc:
        if _cognito_error(exc) in ("NotAuthorizedException", "UserNotFoundException",
                                   "InvalidParameterException"):
            raise Unauthorized("the refresh token is invalid or expired: run `nshub login`") from None
        raise
    return _tokens(result, refresh_token=token)
