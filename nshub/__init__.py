"""nshub client: push and pull DocumentArrays (and Executors) by `namespace/name`.

    import nshub
    nshub.push_file("data.bin", "alice/fashion_mnist", public=True)
    nshub.pull_file("alice/fashion_mnist", "data.bin")
    nshub.push_executor("MyExecutor/", public=True, tags=["v1"])

The module functions are the methods of a default `Client()`, which reads NSHUB_ENDPOINT,
NSHUB_TOKEN and the credentials of `nshub login` at call time. Imports are lazy so that
`import nshub` stays cheap for the CLI and for tools that only need names or URIs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# module function -> Client method
_ALIASES = {
    "config": "config",
    "signup": "signup",
    "confirm": "confirm",
    "login": "login",
    "logout": "logout",
    "whoami": "whoami",
    "push_file": "push_file",
    "push_bytes": "push_bytes",
    "pull_file": "pull_file",
    "pull_to_file": "pull_to_file",
    "pull_bytes": "pull_bytes",
    "info": "info",
    "list_arrays": "list",
    "list_versions": "versions",
    "set_visibility": "set_visibility",
    "set_metadata": "set_metadata",
    "delete": "delete",
    "login_with_token": "login_with_token",
    "create_token": "create_token",
    "list_tokens": "list_tokens",
    "revoke_token": "revoke_token",
    "push_executor": "push_executor",
    "pull_executor": "pull_executor",
    "executor_info": "executor_info",
    "list_executors": "list_executors",
    "list_executor_versions": "list_executor_versions",
}

__all__ = ["Client", "NshubError", "Retry", "__version__", *_ALIASES]

if TYPE_CHECKING:
    from nshub._http import Retry
    from nshub.client import Client
    from nshub.errors import NshubError

_default_client = None


def _client() -> Any:
    global _default_client
    if _default_client is None:
        from nshub.client import Client

        _default_client = Client()  # endpoint and token are resolved per call
    return _default_client


def __getattr__(name: str) -> Any:
    if name == "Client":
        from nshub.client import Client

        return Client
    if name == "NshubError":
        from nshub.errors import NshubError

        return NshubError
    if name == "Retry":
        from nshub._http import Retry

        return Retry
    if name in _ALIASES:
        return getattr(_client(), _ALIASES[name])
    raise AttributeError(f"module 'nshub' has no attribute {name!r}")
