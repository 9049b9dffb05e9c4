"""docarray 0.38's `jac://` store, unmodified: DocList push/pull, JACDocStore list/delete
(issue 12, flow 2)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.jina_clients

DOCARRAY = "docarray038"

SCHEMA = """
from docarray import BaseDoc, DocList
from docarray.store import JACDocStore

class Review(BaseDoc):
    text: str
    stars: int
"""


def nshub_pull(endpoint, users, name):
    """The same array through nshub's own docarray integration (docarray >= 0.40)."""
    from docarray import BaseDoc, DocList

    from nshub import docarray as nsda
    from nshub.client import Client

    class Review(BaseDoc):
        text: str
        stars: int

    client = Client(endpoint=endpoint, token=users["alice"]["id_token"])
    return nsda.pull(DocList[Review], name, client=client)


def test_push_pull_list_delete(jina_client, api, users, live_api):
    alice = jina_client(DOCARRAY, "alice")
    run = alice.run(SCHEMA + """
docs = DocList[Review](Review(text="review %d" % i, stars=i % 5) for i in range(7))
DocList[Review].push(docs, "jac://alice/reviews")
pulled = DocList[Review].pull("jac://alice/reviews", local_cache=False)
listed = JACDocStore.list(show_table=True)
report({"texts": [d.text for d in pulled], "stars": [d.stars for d in pulled],
        "listed": listed})
""")
    assert run.returncode == 0, run
    assert run.result["texts"] == [f"review {i}" for i in range(7)]
    assert run.result["stars"] == [i % 5 for i in range(7)]
    assert run.result["listed"] == ["alice/reviews"]
    assert "You have 1 DocList on the cloud" in run.stdout

    # An ordinary nshub array, in the streaming format nshub.docarray reads.
    info = api.get("/v1/arrays/alice/reviews", token=users["alice"]["id_token"]).json()
    assert info["metadata"]["format"] == "docarray-protobuf-gzip"
    assert info["metadata"]["num_docs"] == 7
    assert [d.text for d in nshub_pull(live_api, users, "alice/reviews")] == \
        [f"review {i}" for i in range(7)]

    # Another user pulls it (docarray pushes public by default); then alice deletes it.
    run = jina_client(DOCARRAY, "bob").run(SCHEMA + """
pulled = DocList[Review].pull("jac://alice/reviews", local_cache=False)
report(len(pulled))
""")
    assert run.returncode == 0, run
    assert run.result == 7

    run = alice.run(SCHEMA + """
deleted = JACDocStore.delete("alice/reviews")
missing = JACDocStore.delete("alice/reviews", missing_ok=True)
try:
    JACDocStore.delete("alice/reviews", missing_ok=False)
    refused = None
except Exception as exc:
    refused = type(exc).__name__ + ": " + str(exc)
report({"deleted": deleted, "missing": missing, "refused": refused,
        "listed": JACDocStore.list()})
""")
    assert run.returncode == 0, run
    assert run.result == {
        "deleted": True, "missing": False, "listed": [],
        "refused": "RequestedEntityNotFoundError: 40403: array 'alice/reviews' does not "
                   "exist or is private: check the name and your login"}


def test_push_into_another_namespace_is_refused(jina_client):
    run = jina_client(DOCARRAY, "bob").run(SCHEMA + """
try:
    DocList[Review].push(DocList[Review]([Review(text="x", stars=1)]), "jac://alice/reviews")
except Exception as exc:
    report(str(exc))
""")
    assert run.returncode == 0, run
    assert "you can only push into your own namespace 'bob'" in run.result
