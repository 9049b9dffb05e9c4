"""Push and pull docarray `DocList`s (docarray >= 0.40).

    from docarray import BaseDoc, DocList
    from nshub import docarray as nsda

    class Review(BaseDoc):
        text: str

    nsda.push(DocList[Review]([Review(text="good")]), "alice/reviews", public=True)
    docs = nsda.pull(DocList[Review], "alice/reviews")      # or nsda.pull(Review, ...)

On the wire an array is docarray's streaming binary format (`load_binary(..., protocol=
"protobuf", streaming=True)` reads it): a version byte, the number of documents, then each
document as its own compressed protobuf message prefixed by its length. Both directions go
through a temporary file one document at a time, so a big list is never in memory twice.
The metadata records `format`, `num_docs` and `schema` (the document class name).
"""
from __future__ import annotations

import tempfile
import typing
from pathlib import Path
from typing import Any

from nshub.errors import InvalidRequest

FORMAT_PREFIX = "docarray-protobuf"
DEFAULT_COMPRESS = "zlib"  # in the standard library; lz4 needs an extra package
COMPRESSIONS = ("zlib", "gzip", "bz2", "lzma", "lz4")
_STREAM_VERSION = 2  # the framing version docarray's load_binary(streaming=True) accepts


def push(
    docs: Any,
    name: str,
    *,
    public: bool | None = None,
    metadata: dict | None = None,
    compress: str | None = DEFAULT_COMPRESS,
    client: Any = None,
) -> dict:
    """Push a DocList as a new version of the array `name`; returns its info."""
    from docarray import DocList

    if not isinstance(docs, DocList):
        raise InvalidRequest(f"push expects a docarray DocList, not {type(docs).__name__}")
    if compress is not None and compress not in COMPRESSIONS:
        raise InvalidRequest(f"compress must be one of {', '.join(COMPRESSIONS)} or None")
    client = client or _default_client()
    doc_type = docs.doc_type
    recorded = {
        **(metadata or {}),
        "format": FORMAT_PREFIX + (f"-{compress}" if compress else ""),
        "num_docs": len(docs),
        "schema": doc_type.__name__,
    }
    with tempfile.TemporaryDirectory(prefix="nshub-docarray-") as tmp:
        path = Path(tmp) / "docs.bin"
        with open(path, "wb") as fh:
            _write_stream(docs, fh, compress)
        return client.push_file(path, name, public=public, metadata=recorded)


def pull(
    doc_cls: Any,
    name: str,
    *,
    version: int | None = None,
    client: Any = None,
) -> Any:
    """Pull an array pushed by `push` as a `DocList` of `doc_cls` (a DocList[...] or a doc class)."""
    from docarray import DocList

    from pydantic import ValidationError

    doc_type = _doc_type(doc_cls)
    list_cls = DocList[doc_type]
    client = client or _default_client()
    with tempfile.TemporaryDirectory(prefix="nshub-docarray-") as tmp:
        path, info = client.pull_to_file(name, Path(tmp) / "docs.bin", version=version)
        metadata = info.get("metadata") or {}
        compress = _compression_of(metadata, name)
        docs = list_cls.load_binary(
            path, protocol="protobuf", compress=compress, streaming=True
        )
        try:
            return list_cls(docs)
        except ValidationError as exc:
            raise _schema_mismatch(name, metadata.get("schema"), doc_type, exc) from None


def _schema_mismatch(name: str, schema: Any, doc_type: type, exc: Any) -> InvalidRequest:
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(part) for part in first.get("loc", ())) or "?"
    stored = schema if isinstance(schema, str) and schema else "an unrecorded class"
    return InvalidRequest(
        f"{name} holds {stored} documents, which do not load as {doc_type.__name__} "
        f"(field {field!r}: {first.get('msg', 'invalid')}): pull it with a class shaped "
        f"like {stored}",
        code="SchemaMismatch",
    )


def _doc_type(doc_cls: Any) -> type:
    """`Review` from `Review` or `DocList[Review]` (an alias, or a class in some versions)."""
    from docarray import BaseDoc, DocList

    if isinstance(doc_cls, type) and issubclass(doc_cls, BaseDoc):
        return doc_cls
    origin, args = typing.get_origin(doc_cls), typing.get_args(doc_cls)
    if isinstance(origin, type) and issubclass(origin, DocList) and args:
        return _doc_type(args[0])
    inner = getattr(doc_cls, "doc_type", None)
    if isinstance(doc_cls, type) and issubclass(doc_cls, DocList) and isinstance(inner, type):
        if issubclass(inner, BaseDoc) and inner is not BaseDoc:
            return inner
    raise InvalidRequest(
        f"pull expects a document class or DocList[DocClass], not {doc_cls!r}"
    )


def _write_stream(docs: Any, fh: Any, compress: str | None) -> None:
    # DocList.save_binary joins every document in memory first; write the same frames as we go.
    fh.write(_STREAM_VERSION.to_bytes(1, "big") + len(docs).to_bytes(8, "big"))
    for doc in docs:
        data = doc.to_bytes(protocol="protobuf", compress=compress)
        fh.write(len(data).to_bytes(4, "big") + data)


def _compression_of(metadata: dict, name: str) -> str | None:
    fmt = metadata.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise InvalidRequest(
            f"{name} was not pushed with nshub.docarray (format {fmt!r}): "
            "use nshub.pull_file and load it yourself",
            code="UnsupportedFormat",
        )
    compress = fmt[len(FORMAT_PREFIX) :].lstrip("-") or None
    if compress is not None and compress not in COMPRESSIONS:
        raise InvalidRequest(f"{name} uses an unknown compression {compress!r}",
                             code="UnsupportedFormat")
    return compress


def _default_client() -> Any:
    from nshub import _client

    return _client()


__all__ = ["push", "pull"]
