"""docarray DocLists pushed and pulled as arrays (against the fake hub)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pytest
from docarray import BaseDoc, DocList
from docarray.typing import NdArray

from nshub import docarray as nsda
from nshub.errors import InvalidRequest
from tests.fake_http import alice, hub, waits  # noqa: F401  (fixtures)


class Review(BaseDoc):
    text: str
    stars: int = 0
    embedding: Optional[NdArray[4]] = None


def reviews(n: int) -> DocList[Review]:
    return DocList[Review](
        Review(text=f"review {i}", stars=i % 5, embedding=np.arange(4, dtype=np.float32) * i)
        for i in range(n)
    )


def assert_same(got: DocList, want: DocList) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert (a.id, a.text, a.stars) == (b.id, b.text, b.stars)
        np.testing.assert_array_equal(a.embedding, b.embedding)


@pytest.mark.parametrize("compress", ["zlib", None])
def test_round_trip(alice, compress):
    docs = reviews(25)
    info = nsda.push(docs, "alice/reviews", metadata={"source": "test"}, compress=compress,
                     client=alice)
    assert info["metadata"] == {
        "source": "test", "num_docs": 25, "schema": "Review",
        "format": "docarray-protobuf" + (f"-{compress}" if compress else ""),
    }
    got = nsda.pull(DocList[Review], "alice/reviews", client=alice)
    assert isinstance(got, DocList) and got.doc_type is Review
    assert_same(got, docs)
    assert_same(nsda.pull(Review, "alice/reviews", version=1, client=alice), docs)


def test_an_empty_list(alice):
    nsda.push(DocList[Review]([]), "alice/empty", client=alice)
    assert len(nsda.pull(Review, "alice/empty", client=alice)) == 0


def test_module_functions_use_the_default_client(alice):
    docs = reviews(3)
    nsda.push(docs, "alice/default")  # the login that `alice` stored is used
    assert_same(nsda.pull(Review, "alice/default"), docs)


def test_arrays_not_pushed_by_nshub_docarray_are_refused(alice):
    alice.push_bytes(b"not docs", "alice/raw")
    with pytest.raises(InvalidRequest, match="not pushed with nshub.docarray"):
        nsda.pull(Review, "alice/raw", client=alice)


def test_push_wants_a_doclist_and_pull_a_doc_class(alice):
    with pytest.raises(InvalidRequest):
        nsda.push([Review(text="x")], "alice/x", client=alice)
    with pytest.raises(InvalidRequest):
        nsda.pull(dict, "alice/x", client=alice)


class Image(BaseDoc):
    url: str
    width: int


def test_pulling_with_another_document_class_names_both(alice):
    # Given reviews pushed with their class
    nsda.push(reviews(3), "alice/reviews", client=alice)

    # When they are pulled as another class
    with pytest.raises(InvalidRequest) as caught:
        nsda.pull(DocList[Image], "alice/reviews", client=alice)

    # Then the one-line error names the stored schema and the class given
    err = caught.value
    assert err.code == "SchemaMismatch"
    assert "Review" in err.message and "Image" in err.message
    assert "\n" not in err.message
