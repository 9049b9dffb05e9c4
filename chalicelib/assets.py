"""The web console's static files (chalicelib/console/): which exist, their types, their headers.

The console is plain HTML, CSS and JavaScript modules, no build step. Every file is text, so
API Gateway needs no binary media type for it. Pages name their assets with relative URLs and
the scripts find the API from their own URL, so the console works under a stage prefix
(`/api/`) as well as at the root of `chalice local`.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from chalicelib.errors import NotFound

CONSOLE_DIR = Path(__file__).parent / "console"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

# Only the console's own origin, no inline script or style, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # The files change with each deploy and are small: revalidate instead of going stale.
    "Cache-Control": "no-cache",
}

ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(?:css|js|svg)$")


@functools.lru_cache(maxsize=None)
def _read(name: str) -> str:
    return (CONSOLE_DIR / name).read_text(encoding="utf-8")


def asset(name: str) -> tuple[str, dict[str, str]]:
    """A console file by its bare name (`main.js`): its text and the headers to send."""
    if not ASSET_NAME.match(name) or not (CONSOLE_DIR / name).is_file():
        raise NotFound(f"the console has no file '{name[:100]}': open the console at its root")
    return _read(name), _headers(name)


def page() -> tuple[str, dict[str, str]]:
    """The console's one HTML page."""
    return _read("index.html"), _headers("index.html")


def _headers(name: str) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPES[Path(name).suffix], **SECURITY_HEADERS}
