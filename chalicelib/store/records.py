"""What the table stores, as typed records: one dataclass per kind of item, each converted to
and from the table's item here and nowhere else.

The service works with these records and the store's intent-named operations
(chalicelib/store/*.py); only the store knows pynamodb, conditions and transactions. This
module imports nothing heavy: the conversions read attributes of whatever item they are given
(`from_item`) and hand back plain attribute values (`attributes`) for the table to write.
Every record carries its item's key (`pk`, `sk`), built with chalicelib/keys.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from chalicelib import keys
from chalicelib.times import epoch, iso


class ConditionFailed(Exception):
    """A conditional write found the item changed meanwhile (or gone): read it again."""


class UploadNotPending(Exception):
    """A commit found its upload no longer pending (completed, aborted or expired)."""


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _values(record: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The record's fields that are set, as item attributes (pk and sk included)."""
    out = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name not in skip and value is not None:
            out[f.name] = value
    return out


def _read(cls: Any, item: Any, **overrides: Any) -> Any:
    values = {f.name: getattr(item, f.name, None) for f in fields(cls) if f.name not in overrides}
    return cls(**values, **overrides)


# ---------------------------------------------------------------- resources


@dataclass
class Version:
    """One immutable version of a resource (its item, or the head's copy of the latest)."""

    pk: str
    sk: str
    kind: str
    namespace: str | None
    name: str | None
    version: int
    size: int
    sha256: str
    blob_key: str
    created_at: str | None = None
    metadata: dict | None = None
    upload_id: str | None = None
    package: dict | None = None  # executor: the validated package's summary
    # pending (committed, whole-object sha256 not yet checked) | verified | quarantined (its
    # bytes are not the declared ones: hidden from readers). None: verified before commit.
    integrity: str | None = None
    integrity_reason: str | None = None
    image_status: str | None = None  # executor: pending | building | ready | failed
    image_build_id: str | None = None
    image_log_url: str | None = None

    @classmethod
    def new(cls, kind: str, ns: str, name: str, generation: str, version: int,
            **values: Any) -> Version:
        return cls(keys.resource_pk(ns, name), keys.version_sk(kind, generation, version),
                   kind, ns, name, version, **values)

    @classmethod
    def from_item(cls, item: Any) -> Version:
        return _read(cls, item, version=int(item.version or 0), size=int(item.size or 0),
                     kind=item.kind or keys.parse_sk(item.sk)["kind"])

    @property
    def generation(self) -> str:
        return keys.parse_sk(self.sk)["generation"]

    def attributes(self) -> dict[str, Any]:
        return _values(self)

    def summary(self) -> dict[str, Any]:
        """The version as the head keeps its copy of the latest (`Head.current`)."""
        return {
            "version": self.version, "size": self.size, "sha256": self.sha256,
            "blob_key": self.blob_key, "created_at": self.created_at, "metadata": self.metadata,
            "upload_id": self.upload_id, "package": self.package,
            "image_status": self.image_status, "integrity": self.integrity,
            "integrity_reason": self.integrity_reason,
        }


@dataclass
class Head:
    """A resource: owner, visibility, generation, version counter, tags, and a copy of its
    latest version (`current`), so a pull is one read."""

    pk: str
    sk: str
    kind: str
    namespace: str
    name: str  # the first spelling, for display
    generation: str
    visibility: str = "private"
    counter: int | None = None  # the highest committed version number
    current: dict = field(default_factory=dict)  # Version.summary() of the latest
    # the latest version's size and sha256 again, as plain attributes: an unchanged re-push
    # is recognised by a condition on them (DynamoDB cannot look inside `current`)
    current_size: int | None = None
    current_sha256: str | None = None
    metadata: dict | None = None
    owner: str | None = None  # legacy resources: the account that owns them
    legacy: bool = False
    tags: dict[str, int] = field(default_factory=dict)  # executor: {tag: version}, as stored
    protected_tags: set[str] = field(default_factory=set)
    created_at: str | None = None
    updated_at: str | None = None
    image_status: str | None = None  # executor: the latest version's image
    image_build_id: str | None = None
    image_log_url: str | None = None

    @classmethod
    def key(cls, kind: str, ns: str, name: str) -> tuple[str, str]:
        return keys.resource_pk(ns, name), keys.head_sk(kind)

    @classmethod
    def from_item(cls, item: Any) -> Head:
        return _read(cls, item, kind=item.kind or keys.parse_sk(item.sk)["kind"],
                     counter=_int(item.counter), current=dict(item.current or {}),
                     current_size=_int(item.current_size), legacy=bool(item.legacy),
                     tags={t: int(v) for t, v in (item.tags or {}).items()},
                     protected_tags=set(item.protected_tags or ()))

    def attributes(self) -> dict[str, Any]:
        values = _values(self, skip=("legacy", "tags", "protected_tags"))
        if self.legacy:
            values["legacy"] = 1
        if self.tags:
            values["tags"] = dict(self.tags)
        if self.protected_tags:
            values["protected_tags"] = set(self.protected_tags)
        values["gsi1pk"] = keys.list_gsi_pk(self.kind, self.namespace)
        values["gsi1sk"] = keys.list_gsi_sk(self.visibility, self.name)
        return values

    @property
    def latest_version(self) -> int | None:
        version = self.current.get("version")
        return int(version) if version is not None else None


@dataclass
class Upload:
    """An upload: pending until its version is committed (then completed, naming it)."""

    pk: str
    sk: str
    kind: str
    namespace: str
    name: str
    owner: str  # the namespace that pushes (a legacy import: the legacy resource's owner)
    upload_id: str
    size: int
    sha256: str
    blob_key: str
    part_size: int
    part_count: int
    state: str = "pending"  # pending | completed
    request: dict = field(default_factory=dict)  # visibility, metadata, tags asked for
    part_sha256: list[str] | None = None  # the client's per-part digests, if any
    s3_upload_id: str | None = None  # a multipart upload's id
    created_at: str | None = None
    expires_at: int | None = None  # TTL of a pending upload (epoch seconds)
    version: int | None = None  # completed: the version it became, of `generation`
    generation: str | None = None

    @classmethod
    def new(cls, kind: str, ns: str, name: str, upload_id: str, **values: Any) -> Upload:
        return cls(keys.resource_pk(ns, name), keys.upload_sk(kind, upload_id), kind, ns, name,
                   upload_id=upload_id, **values)

    @classmethod
    def from_item(cls, item: Any) -> Upload:
        return _read(cls, item, kind=item.kind or keys.parse_sk(item.sk)["kind"],
                     size=int(item.size or 0), part_size=int(item.part_size or 0),
                     part_count=int(item.part_count or 0), request=dict(item.request or {}),
                     expires_at=_int(item.expires_at), version=_int(item.version))

    def attributes(self) -> dict[str, Any]:
        return _values(self)


@dataclass
class Page:
    """One page of a listing and the key to start the next one from (None: the last)."""

    records: list[Any]
    last_key: dict | None


# ---------------------------------------------------------------- legacy executors


@dataclass
class LegacyAlias:
    """A legacy executor's bare name: its owner's namespace and the salted hash of its
    secret (the executor itself is a normal one, `owner/name`)."""

    pk: str
    sk: str
    name: str
    owner: str
    secret_hash: str
    created_at: str | None = None

    @classmethod
    def new(cls, name: str, owner: str, secret_hash: str, created_at: str) -> LegacyAlias:
        return cls(keys.resource_pk(keys.LEGACY_NS, name), keys.legacy_executor_sk(), name,
                   owner, secret_hash, created_at)

    @classmethod
    def from_item(cls, item: Any) -> LegacyAlias:
        return _read(cls, item)

    def attributes(self) -> dict[str, Any]:
        # kind and namespace as every resource item has them
        return {**_values(self), "kind": keys.EXECUTOR, "namespace": self.owner}


# ---------------------------------------------------------------- accounts and tokens


@dataclass(frozen=True)
class NamespaceClaim:
    """The account (its Cognito `sub`) that owns a namespace, for ever."""

    namespace: str
    sub: str
    claimed_at: str

    @classmethod
    def from_item(cls, item: Any) -> NamespaceClaim:
        return cls(namespace=item.namespace, sub=item.account_sub,
                   claimed_at=item.created_at or "")

    def attributes(self) -> dict[str, Any]:
        return {"pk": keys.claim_pk(self.namespace), "sk": keys.CLAIM_SK,
                "namespace": self.namespace, "account_sub": self.sub,
                "created_at": self.claimed_at}


@dataclass(frozen=True)
class Token:
    """A personal access token (never its secret: the secret's SHA-256 is its key)."""

    token_id: str
    secret_hash: str  # hex SHA-256 of the secret; the secret itself is never stored
    owner: str  # the account's username (its namespace)
    owner_sub: str | None  # the account's Cognito sub
    name: str
    scopes: tuple[str, ...]
    created_at: int  # epoch seconds
    expires_at: int  # epoch seconds: refused from then on
    last_used_at: int | None = None
    revoked_at: int | None = None

    @classmethod
    def from_item(cls, item: Any) -> Token:
        return cls(
            token_id=item.token_id, secret_hash=keys.token_hash_of(item.pk), owner=item.owner,
            owner_sub=item.owner_sub, name=item.name, scopes=tuple(item.scopes or ()),
            created_at=epoch(item.created_at), expires_at=int(item.valid_until),
            last_used_at=_int(item.last_used_at), revoked_at=_int(item.revoked_at),
        )

    def attributes(self, tombstone_seconds: int) -> dict[str, Any]:
        return {"pk": keys.token_pk(self.secret_hash), "sk": keys.token_sk(),
                "token_id": self.token_id, "owner": self.owner, "owner_sub": self.owner_sub,
                "name": self.name, "scopes": list(self.scopes),
                "created_at": iso(self.created_at), "valid_until": self.expires_at,
                "expires_at": self.expires_at + tombstone_seconds}


@dataclass(frozen=True)
class IndexEntry:
    secret_hash: str
    name: str
    expires_at: int


@dataclass(frozen=True)
class TokenIndex:
    """An account's live tokens, with the revision every change is conditional on."""

    owner: str
    revision: int = 0  # 0: no index item yet
    entries: dict[str, IndexEntry] = field(default_factory=dict)  # token_id -> entry

    def live(self, now: float) -> dict[str, IndexEntry]:
        return {tid: e for tid, e in self.entries.items() if e.expires_at > now}

    @classmethod
    def from_item(cls, owner: str, item: Any | None) -> TokenIndex:
        if item is None:
            return cls(owner=owner)
        entries = {
            tid: IndexEntry(secret_hash=e["hash"], name=e["name"],
                            expires_at=int(e["expires_at"]))
            for tid, e in (item.live_tokens or {}).items()
        }
        return cls(owner=owner, revision=int(item.revision or 0), entries=entries)

    def next_attributes(self, entries: dict[str, IndexEntry]) -> dict[str, Any]:
        """The index item after a change to `entries` (the next revision)."""
        return {"pk": keys.token_index_pk(self.owner), "sk": keys.token_index_sk(),
                "owner": self.owner, "revision": self.revision + 1,
                "live_tokens": {tid: {"hash": e.secret_hash, "name": e.name,
                                      "expires_at": e.expires_at}
                                for tid, e in entries.items()}}


# ---------------------------------------------------------------- background jobs


@dataclass(frozen=True)
class BuildWatch:
    """An image build started and not yet finished: the reconciler asks CodeBuild about the
    ones whose state change never arrived."""

    version_pk: str
    version_sk: str
    build_id: str
    created_at: str

    @classmethod
    def from_item(cls, item: Any) -> BuildWatch:
        version_pk, version_sk = keys.parse_build_watch_sk(item.sk)
        return cls(version_pk, version_sk, item.image_build_id, item.created_at)

    def attributes(self) -> dict[str, Any]:
        pk, sk = keys.build_watch_key(self.version_pk, self.version_sk)
        return {"pk": pk, "sk": sk, "image_build_id": self.build_id,
                "created_at": self.created_at}
