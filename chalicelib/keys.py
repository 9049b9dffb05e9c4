"""Every key nshub stores anything under, DynamoDB and S3 alike. Nothing else formats a key.

DynamoDB: one table, partition key `pk`, sort key `sk`, one GSI `gsi1` (`gsi1pk`, `gsi1sk`)
for listing, TTL on `expires_at`. Names are lower-cased in keys (names are case-insensitive);
the first spelling is kept in the item for display.

    pk                       sk                              item
    -----------------------  ------------------------------  ----------------------------------
    {ns}#{name}              {kind}#HEAD                     resource head: owner, visibility,
                                                             generation, version counter, tags,
                                                             and a copy of the latest version
    {ns}#{name}              {kind}#G#{gen}#V#{version:010}  one immutable version of generation
                                                             `gen` (size, sha256, blob key, ...)
    {ns}#{name}              {kind}#U#{upload_id}            an upload: pending (TTL expires_at)
                                                             or completed (-> its version)
    legacy#{name}            array#HEAD, array#G#...         legacy arrays: the reserved
                                                             namespace `legacy` holds them
    legacy#{name}            executor#ALIAS                  legacy executor: owner namespace
                                                             and the salted hash of its secret
    legacy#{name}            executor#SECRETFAILS#{window}   wrong secrets sent for `name` in
                                                             one time window (TTL expires_at),
                                                             whether or not `name` exists
    NAMESPACE#{ns}           CLAIM                           the account (Cognito `sub`) that owns
                                                             namespace `ns`: written once with a
                                                             conditional put, never deleted, so a
                                                             deleted account's namespace stays
                                                             retired (chalicelib/accounts.py)
    TOKEN#{sha256(secret)}   TOKEN                           personal access token: its id, owner
                                                             (username and sub), name, scopes,
                                                             expiry, last use, revocation; TTL
                                                             expires_at a while after it ends
    TOKENS#{username}        TOKENS                          the account's live tokens: {id: hash,
                                                             name, expiry} and a revision that
                                                             every change is conditional on
    RECONCILER               CURSOR                          where the last scheduled
                                                             reconciler run stopped
    BUILDS                   {version pk}/{version sk}       an image build started and not
                                                             yet finished (build id, start)

    A token is checked with one GetItem of its own key (the SHA-256 of the secret: the secret
    is never stored); an account's tokens are listed from its one TOKENS item (then one
    BatchGetItem of their records), never by a Scan.

    GSI gsi1 (listing, one query per page, never a Scan):
    gsi1pk                   gsi1sk
    {kind}#{ns}              {visibility}#{name}             resource heads only

A generation is a random id given to a resource when its head is created: deleting the head
lets cleanup remove exactly that generation's versions, so a re-push right after a delete
(new generation) is never touched by the old cleanup.

S3: one bucket.

    blobs/{kind}/{ns}/{name}/{upload_id}     the bytes of one upload, later one version

Upload ids are unique, so a re-push never overwrites bytes a live record points to, and an
object's key alone finds the upload record that claims it.

ECR: one repository per executor, its images tagged `v{version}` (immutable) plus its tags.

    nshub/{ns}/{name}                        the container images of executor `ns/name`
"""
from __future__ import annotations

from dataclasses import dataclass

ARRAY, EXECUTOR = "array", "executor"  # the kinds of resource
LEGACY_NS = "legacy"
HEAD = "HEAD"
BLOB_PREFIX = "blobs/"


def resource_pk(ns: str, name: str) -> str:
    return f"{ns}#{name.lower()}"


def parse_resource_pk(pk: str) -> tuple[str, str]:
    """(namespace, lower-cased name) of a resource partition key."""
    ns, _, name = pk.partition("#")
    return ns, name


def head_sk(kind: str) -> str:
    return f"{kind}#{HEAD}"


def version_prefix(kind: str, generation: str) -> str:
    return f"{kind}#G#{generation}#V#"


def version_sk(kind: str, generation: str, version: int) -> str:
    return f"{version_prefix(kind, generation)}{version:010d}"


def upload_prefix(kind: str) -> str:
    return f"{kind}#U#"


def upload_sk(kind: str, upload_id: str) -> str:
    return f"{upload_prefix(kind)}{upload_id}"


def claim_pk(ns: str) -> str:
    # Upper case: never a resource key, whose namespace part is always lower case.
    return f"NAMESPACE#{ns}"


CLAIM_SK = "CLAIM"


def legacy_executor_sk() -> str:
    return "executor#ALIAS"


TOKEN_PREFIX = "TOKEN#"


def token_pk(secret_hash: str) -> str:
    return f"{TOKEN_PREFIX}{secret_hash}"


def token_hash_of(pk: str) -> str:
    """The secret's SHA-256 (hex) that a token item's partition key carries."""
    return pk[len(TOKEN_PREFIX):]


def token_sk() -> str:
    return "TOKEN"


def token_index_pk(username: str) -> str:
    return f"TOKENS#{username}"


def token_index_sk() -> str:
    return "TOKENS"


def secret_failures_sk(window: int) -> str:
    return f"executor#SECRETFAILS#{window}"


def list_gsi_pk(kind: str, ns: str) -> str:
    return f"{kind}#{ns}"


def list_gsi_sk(visibility: str, name: str) -> str:
    return f"{visibility}#{name.lower()}"


def list_gsi_visibility_prefix(visibility: str) -> str:
    """What every gsi1sk of a head with `visibility` starts with."""
    return list_gsi_sk(visibility, "")


def reconciler_cursor_key() -> tuple[str, str]:
    return "RECONCILER", "CURSOR"


def build_watch_key(version_pk: str, version_sk: str) -> tuple[str, str]:
    # Resource pks hold no "/" (names never do), so the first "/" splits the two back.
    return "BUILDS", f"{version_pk}/{version_sk}"


def parse_build_watch_sk(sk: str) -> tuple[str, str]:
    version_pk, _, version_sk = sk.partition("/")
    return version_pk, version_sk


def image_repository(ns: str, name: str) -> str:
    return f"nshub/{ns}/{name.lower()}"


def image_tag(version: int) -> str:
    return f"v{version}"


def blob_key(kind: str, ns: str, name: str, upload_id: str) -> str:
    return f"{BLOB_PREFIX}{kind}/{ns}/{name.lower()}/{upload_id}"


@dataclass(frozen=True)
class BlobRef:
    kind: str
    ns: str
    name: str
    upload_id: str

    @property
    def pk(self) -> str:
        return resource_pk(self.ns, self.name)

    @property
    def upload_sk(self) -> str:
        return upload_sk(self.kind, self.upload_id)


def parse_blob_key(key: str) -> BlobRef | None:
    """The record that should claim an S3 object, or None for a key nshub never writes."""
    if not key.startswith(BLOB_PREFIX):
        return None
    parts = key[len(BLOB_PREFIX):].split("/")
    if len(parts) != 4 or not all(parts):
        return None
    kind, ns, name, upload_id = parts
    return BlobRef(kind, ns, name, upload_id)


def parse_sk(sk: str) -> dict[str, str]:
    """Split a sort key into what it says: kind, and one of head/version/upload/alias."""
    kind, _, rest = sk.partition("#")
    if rest == HEAD:
        return {"kind": kind, "type": "head"}
    if rest == "ALIAS":
        return {"kind": kind, "type": "alias"}
    if rest.startswith("U#"):
        return {"kind": kind, "type": "upload", "upload_id": rest[2:]}
    if rest.startswith("G#"):
        generation, _, version = rest[2:].partition("#V#")
        return {"kind": kind, "type": "version", "generation": generation, "version": version}
    return {"kind": kind, "type": "unknown"}
