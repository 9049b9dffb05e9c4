"""`chalice local`, plus what API Gateway does that it does not: a request body sent with
`Transfer-Encoding: chunked` (docarray's push streams its upload that way) reaches the app
whole, as API Gateway buffers it before Lambda runs. chalice local reads only
Content-Length bodies and would hand the app an empty one.

    python -m devstack.localgateway local --port 8000 ...   (the dev stack runs this)
"""
from __future__ import annotations

import sys
from typing import BinaryIO

MAX_CHUNKED_BODY = 64 * 1024 * 1024  # far above anything Lambda accepts


def read_chunked(stream: BinaryIO) -> bytes:
    """The body of a chunked request (RFC 9112 7.1), trailers skipped."""
    body = bytearray()
    while True:
        line = stream.readline(1024)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return bytes(body)
        if len(body) + size > MAX_CHUNKED_BODY:
            raise ValueError("chunked body too large")
        body += stream.read(size)
        stream.readline(1024)  # the CRLF after each chunk


def accept_chunked_bodies() -> None:
    """Teach chalice local's request handler to read chunked bodies (idempotent)."""
    from chalice.local import ChaliceRequestHandler

    if getattr(ChaliceRequestHandler, "_reads_chunked_bodies", False):
        return
    read_with_length = ChaliceRequestHandler._parse_payload

    def parse_payload(self):
        if "chunked" not in self.headers.get("transfer-encoding", "").lower():
            return read_with_length(self)
        body = read_chunked(self.rfile)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        headers["Content-Length"] = str(len(body))
        return headers, body or None

    ChaliceRequestHandler._parse_payload = parse_payload
    ChaliceRequestHandler._reads_chunked_bodies = True


def main() -> int:
    accept_chunked_bodies()
    from chalice.cli import main as chalice_main

    sys.argv[0] = "chalice"
    return chalice_main()


if __name__ == "__main__":
    sys.exit(main())
