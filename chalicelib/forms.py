"""Request bodies that are forms: multipart/form-data and application/x-www-form-urlencoded.

The Jina clients send their fields as forms (files included), some as JSON: `read_fields`
turns any of the three into {name: Field}. Only what the Lambda request already holds is
parsed (bodies are capped before this runs): no streaming, no temporary files.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import InvalidRequest
from chalicelib.http import json_body

_BOUNDARY_RE = re.compile(r'boundary=(?:"([^"]+)"|([^;,\s]+))', re.IGNORECASE)
_PARAM_RE = re.compile(r';\s*([A-Za-z*]+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Field:
    value: Any  # bytes for a multipart part, str for a urlencoded field, any JSON value
    filename: str | None = None

    def text(self) -> str:
        if isinstance(self.value, bytes):
            try:
                return self.value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest("a form field is not UTF-8 text") from None
        return self.value if isinstance(self.value, str) else json.dumps(self.value)


def read_fields(content_type: str, body: bytes) -> dict[str, Field]:
    """The fields of a body, by its Content-Type; an empty body has none."""
    if not body:
        return {}
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        return parse_multipart(content_type, body)
    if media_type == "application/x-www-form-urlencoded":
        return parse_urlencoded(body)
    # JSON as every other route reads it: strict, no NaN, no number that overflows a float
    return {name: Field(value) for name, value in json_body(body).items()}


def parse_urlencoded(body: bytes) -> dict[str, Field]:
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                       strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidRequest("the form is not UTF-8 text") from None
    return {name: Field(value) for name, value in pairs}


def parse_multipart(content_type: str, body: bytes) -> dict[str, Field]:
    """RFC 7578 form-data: parts split on the boundary, each with its own headers. The first
    part of a name wins (the clients never repeat one)."""
    found = _BOUNDARY_RE.search(content_type)
    if not found:
        raise InvalidRequest("a multipart body needs a boundary in its Content-Type")
    delimiter = b"--" + (found.group(1) or found.group(2)).encode("latin-1")
    segments = body.split(b"\r\n" + delimiter)
    # The first delimiter starts the body (no CRLF before it), unless a preamble precedes it.
    first = segments[0]
    if not first.startswith(delimiter):
        raise InvalidRequest("the multipart body does not start with its boundary")
    segments[0] = first[len(delimiter):]
    fields: dict[str, Field] = {}
    closed = False
    for segment in segments:
        if segment.startswith(b"--"):
            closed = True
            break
        if not segment.startswith(b"\r\n"):
            raise InvalidRequest("the multipart body is malformed: a boundary is not followed by a line break")
        head, sep, content = segment[2:].partition(b"\r\n\r\n")
        if not sep:
            raise InvalidRequest("the multipart body is malformed: a part has no header end")
        name, filename = _disposition(head)
        if name is not None and name not in fields:
            fields[name] = Field(content, filename)
    if not closed:
        raise InvalidRequest("the multipart body is cut short: its closing boundary is missing")
    return fields


def _disposition(head: bytes) -> tuple[str | None, str | None]:
    for line in head.decode("utf-8", "replace").split("\r\n"):
        header, _, value = line.partition(":")
        if header.strip().lower() == "content-disposition":
            params = {k.lower(): v.replace('\\"', '"') for k, v in _PARAM_RE.findall(value)}
            return params.get("name"), params.get("filename")
    return None, None
