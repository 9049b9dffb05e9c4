"""Servers the benchmarks start, each in its own process: `python -m bench.serve WHAT`.

    moto    the moto server (DynamoDB made atomic, as in the tests and the dev stack)
    api     the Chalice app on chalice's local server (`create_local_server`)
    floor   the floor for the API overhead: the same server class and threading model, one
            handler that does only the DynamoDB read and the presign of
            `GET /v1/arrays/{ns}/{name}` (no routing, middleware, auth or error mapping)

Each prints `PORT <n>` on its first stdout line once it accepts connections, then serves until
its stdin closes (the benchmark that started it stopped or died) or it is terminated. Only
127.0.0.1 is ever bound.
"""
from __future__ import annotations

import json
import os
import sys
import threading

HOST = "127.0.0.1"


def _ready(port: int) -> None:
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


def _exit_when_stdin_closes() -> None:
    """The parent holds our stdin: when it goes away, so do we (never an orphan server)."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(65536):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def serve_moto() -> None:
    from moto.server import ThreadedMotoServer

    from devstack.motofix import make_moto_faithful

    make_moto_faithful()
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    _ready(port)
    threading.Event().wait()


def serve_api() -> None:
    import logging

    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, create_local_server

    import app as app_module

    logging.getLogger().setLevel(logging.WARNING)
    # chalice's handler logs every request line to stderr; the floor logs nothing either.
    ChaliceRequestHandler.log_message = lambda *a, **k: None  # type: ignore[assignment]
    # It writes the headers and then the body: with Nagle's algorithm on, every keep-alive
    # response waits for the client's delayed ACK (~40 ms). Off, for the app and the floor.
    ChaliceRequestHandler.disable_nagle_algorithm = True
    server = create_local_server(app_module.app, Config(chalice_stage="dev"), HOST, 0)
    _ready(server.server.server_address[1])
    server.server.serve_forever()


def floor_handler_class():
    """One handler with only the work of a pull's info: GetItem of the head, then a presign."""
    import datetime as dt
    from http.server import BaseHTTPRequestHandler
    from urllib.parse import unquote

    from chalicelib import blobs, keys
    from chalicelib.config import get_settings
    from chalicelib.store import resources

    class FloorHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as chalice's handler
        disable_nagle_algorithm = True  # as the app's (see serve_api)

        def log_message(self, *args) -> None:  # noqa: D401 - quiet
            return None

        def do_GET(self) -> None:  # noqa: N802
            parts = self.path.split("?", 1)[0].split("/")  # /v1/arrays/{ns}/{name}
            ns, name = unquote(parts[3]), unquote(parts[4])
            head = resources.read_head(keys.resource_pk(ns, name), "array")
            if head is None:
                self._send(404, {"Code": "NotFound"})
                return
            current = head.current
            settings = get_settings()
            expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(
                seconds=settings.url_expires_seconds)
            body = {
                "kind": "array", "namespace": head.namespace, "name": head.name,
                "full_name": f"{head.namespace}/{head.name}", "visibility": head.visibility,
                "version": current["version"], "size": current["size"],
                "sha256": current["sha256"], "created_at": head.created_at,
                "updated_at": head.updated_at, "metadata": head.metadata or {},
                "download_url": blobs.presign_get(current["blob_key"]),
                "download_expires_at": expires.isoformat(timespec="seconds"),
            }
            self._send(200, body)

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

    return FloorHandler


def serve_floor() -> None:
    from chalice.local import ThreadedHTTPServer

    server = ThreadedHTTPServer((HOST, 0), floor_handler_class())
    _ready(server.server_address[1])
    server.serve_forever()


SERVERS = {"moto": serve_moto, "api": serve_api, "floor": serve_floor}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVERS:
        print(f"usage: python -m bench.serve {{{'|'.join(SERVERS)}}}", file=sys.stderr)
        return 2
    _exit_when_stdin_closes()
    SERVERS[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
