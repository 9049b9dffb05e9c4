"""The app over HTTP on a laptop: Chalice's local server, with the answers API Gateway gives
once the stack's gateway responses are deployed (infra/functions.yaml).

`chalice local` mimics a bare API Gateway: an unknown route is 403 `{"message": "Missing
Authentication Token"}`, and a HEAD request gets its answer's body, which corrupts the next
answer on a keep-alive connection. Here an unknown route is 404 `NotFound` with the error
contract, a HEAD answer never has a body, and the listen backlog holds a crowd of clients
(socketserver's default of 5 resets the sixth connection that arrives at once).

    python -m devstack.local_server [--host 127.0.0.1] [--port 8000] [--stage dev]

The dev stack runs it; the tests serve the app in-process with `make_server`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    ThreadedHTTPServer,
)

REPO = Path(__file__).resolve().parent.parent


class UnknownRoute(LocalGatewayException):
    CODE = 404


class ContractGateway(LocalGateway):
    def _generate_lambda_event(self, method: str, path: str, headers: Any,
                               body: bytes | None) -> Any:
        try:
            return super()._generate_lambda_event(method, path, headers, body)
        except ValueError:  # no route has this path
            from chalicelib import http

            payload, _, response_headers = http.unknown_route()
            raise UnknownRoute(dict(response_headers), json.dumps(payload).encode()) from None


class ContractRequestHandler(ChaliceRequestHandler):
    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any,
                 config: Config) -> None:
        self.local_gateway = ContractGateway(app_object, config)
        # ChaliceRequestHandler.__init__ would replace the gateway: skip to the base class.
        super(ChaliceRequestHandler, self).__init__(request, client_address, server)

    def _send_http_response(self, code: int, headers: Any, body: Any) -> None:
        if self.command == "HEAD":  # headers only, or the next answer on this connection breaks
            body = None
        super()._send_http_response(code, headers, body)


class CrowdedHTTPServer(ThreadedHTTPServer):
    request_queue_size = 128


def make_server(app_obj: Any, config: Config, host: str, port: int) -> LocalDevServer:
    """A server for `app_obj` (not started): `serve_forever()` in a thread, `shutdown()`."""
    from devstack.localgateway import accept_chunked_bodies

    accept_chunked_bodies()  # chunked request bodies reach the app whole, as on API Gateway
    # what chalice.local.create_local_server does to the app before serving it
    if not isinstance(app_obj, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
        app_obj.__class__ = CustomLocalChalice
    return LocalDevServer(app_obj, config, host, port, handler_cls=ContractRequestHandler,
                          server_cls=CrowdedHTTPServer)


def main(argv: list[str] | None = None) -> int:
    from chalice.cli.factory import CLIFactory

    parser = argparse.ArgumentParser(prog="python -m devstack.local_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    config = CLIFactory(project_dir=str(REPO)).create_config_obj(chalice_stage_name=args.stage)
    server = make_server(config.chalice_app, config, args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
