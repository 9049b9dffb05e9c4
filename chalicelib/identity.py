"""Accounts: sign-up, confirmation, sign-in and refresh, through the Cognito user pool.

A username is a namespace exactly as typed (DESIGN.md's grammar; chalicelib/accounts.py owns
the sign-up rules and the namespace claims). Every error Cognito answers becomes one of our
4xx errors with a one-line message; an unknown user and a wrong password get the same answer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chalicelib.config import get_aws, get_settings
from chalicelib.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NshubError,
    TooManyRequests,
    Unauthorized,
)
from chalicelib.observability import logger

BAD_LOGIN = "wrong username or password: check both and try again"
BAD_REFRESH = "the refresh token is invalid, expired or its account is gone: run `nshub login`"
# local@domain.tld: no spaces or control characters, one '@', a dotted domain without empty
# labels. Cognito takes nearly any string, and an address it cannot mail leaves the account
# unconfirmed for good.
EMAIL_RE = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s.\x00-\x1f\x7f]+(?:\.[^@\s.\x00-\x1f\x7f]+)+")


@dataclass(frozen=True)
class PasswordPolicy:
    """The user pool's password policy (infra/template.yaml, UserPool.Policies; a test keeps
    the two equal), checked here first so the message is ours and states the rule."""

    min_length: int = 8
    uppercase: bool = True
    lowercase: bool = True
    digits: bool = True
    symbols: bool = False

    def describe(self) -> str:
        wanted = [what for need, what in ((self.uppercase, "an upper-case letter"),
                                          (self.lowercase, "a lower-case letter"),
                                          (self.digits, "a digit"),
                                          (self.symbols, "a symbol")) if need]
        rule = f"at least {self.min_length} characters"
        if wanted:
            rule += ", with " + (", ".join(wanted[:-1]) + " and " + wanted[-1]
                                 if len(wanted) > 1 else wanted[0])
        return rule

    def allows(self, password: str) -> bool:
        return (len(password) >= self.min_length
                and (not self.uppercase or any(c.isupper() for c in password))
                and (not self.lowercase or any(c.islower() for c in password))
                and (not self.digits or any(c.isdigit() for c in password))
                and (not self.symbols or any(not c.isalnum() for c in password)))


PASSWORD_POLICY = PasswordPolicy()
PASSWORD_REFUSED = f"password refused: use {PASSWORD_POLICY.describe()}"


def _field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{name}' is required")
    return value


def check_email(email: str) -> str:
    if len(email) > 254 or not EMAIL_RE.fullmatch(email):
        raise InvalidRequest(f"invalid email {email[:60]!r}: use an address like name@example.com")
    return email


def check_password(password: str) -> str:
    if not PASSWORD_POLICY.allows(password):
        raise InvalidRequest(PASSWORD_REFUSED)
    return password


# Cognito's error codes -> ours. Anything not listed gets the operation's fallback: every
# answer is a 4xx with one clear line (a 500 is a bug), and the code is logged.
THROTTLED = ("TooManyRequestsException", "LimitExceededException",
             "TooManyFailedAttemptsException")


def _refused(exc: Exception, operation: str) -> NshubError:
    from chalicelib import accounts

    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    code, message = error.get("Code", type(exc).__name__), error.get("Message") or ""
    logger.info("cognito refused", extra={"operation": operation, "cognito_code": code})
    if code in THROTTLED:
        return TooManyRequests("too many attempts right now: wait a minute and try again")
    if code == "UserNotConfirmedException":
        return Forbidden("this account is not confirmed yet: run `nshub confirm USER CODE`")
    if code == "PasswordResetRequiredException":
        return Forbidden("this account must reset its password: use the console's password reset")
    if operation == "signup":
        if code in ("UsernameExistsException", "AliasExistsException"):
            return Conflict("this username is taken: choose another")
        if code == "InvalidPasswordException":
            return InvalidRequest(PASSWORD_REFUSED)
        if code == "UserLambdaValidationException":
            return accounts.refusal_of(message) or InvalidRequest(
                "sign-up refused: check the username and try again")
        if code == "InvalidParameterException":
            return InvalidRequest("sign-up refused: check the username, password and email")
        return InvalidRequest("sign-up failed: the account service did not take it; try again "
                              "in a minute")
    if operation == "confirm":
        if code in ("AliasExistsException",):
            return Conflict("this email belongs to another account: sign up with another one")
        return InvalidRequest("the confirmation code is wrong or expired: check your email, "
                              "or sign up again")
    if operation == "login":
        return Unauthorized(BAD_LOGIN)
    return Unauthorized(BAD_REFRESH)


def _cognito_errors():
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def signup(body: dict) -> dict[str, Any]:
    from chalicelib import accounts

    username = accounts.check_sign_up(body.get("username"))
    password = check_password(_field(body, "password"))
    email = check_email(_field(body, "email"))
    settings = get_settings()
    cognito = get_aws().cognito
    try:
        result = cognito.sign_up(
            ClientId=settings.client_id, Username=username, Password=password,
            UserAttributes=[{"Name": "email", "Value": email}],
        )
    except _cognito_errors() as exc:
        raise _refused(exc, "signup") from None
    # The claim, not the username, decides who owns the namespace: taken once, atomically.
    claim = accounts.claim_namespace(username, result["UserSub"])
    if claim.sub != result["UserSub"]:
        raise Conflict(f"the username '{username}' is taken: choose another")
    confirmed = False
    if settings.is_dev:
        # The dev stage has no mail: accounts are confirmed at once.
        try:
            cognito.admin_confirm_sign_up(UserPoolId=settings.user_pool_id, Username=username)
        except _cognito_errors() as exc:
            raise _refused(exc, "signup") from None
        confirmed = True
    return {"username": username, "namespace": username, "confirmed": confirmed}


def confirm(body: dict) -> dict[str, Any]:
    username = _field(body, "username").strip().lower()
    code = _field(body, "code")
    try:
        get_aws().cognito.confirm_sign_up(
            ClientId=get_settings().client_id, Username=username, ConfirmationCode=code
        )
    except _cognito_errors() as exc:
        raise _refused(exc, "confirm") from None
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
    username = body.get("username")
    password = body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise InvalidRequest("'username' and 'password' are required")
    try:
        result = get_aws().cognito.initiate_auth(
            ClientId=get_settings().client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username.strip().lower(), "PASSWORD": password},
        )
    except _cognito_errors() as exc:
        raise _refused(exc, "login") from None
    if "AuthenticationResult" not in result:
        raise Unauthorized(f"sign-in needs a further step ({result.get('ChallengeName')}): use the console")
    return _tokens(result)


def refresh(body: dict) -> dict[str, Any]:
    token = _field(body, "refresh_token")
    try:
        result = get_aws().cognito.initiate_auth(
            ClientId=get_settings().client_id, AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": token},
        )
    except _cognito_errors() as exc:
        raise _refused(exc, "refresh") from None
    if "AuthenticationResult" not in result:
        raise Unauthorized(BAD_REFRESH)
    return _tokens(result, refresh_token=token)
