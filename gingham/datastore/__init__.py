"""Datastore backends behind one async contract (see base.py).

`open_datastore(url)` is the one way programs get a store:

- ``sqlite:///abs/path.db`` → `SqliteDatastore` (the embedded default,
  `DEFAULT_URL`); parent directories are created on first use.
- ``etcd://host:port[,host:port...]`` → `EtcdDatastore` (etcd v3 over gRPC).
- ``kubernetes[://?kubeconfig=PATH&context=NAME]`` → `KubernetesDatastore`
  (our kinds as gingham.io/v1 custom resources).

Backend modules are imported lazily, so a sqlite user never pays for grpc.
Opening does no I/O: a backend that is down surfaces as `Unavailable` on the
first operation, not here. `import gingham.model` happens here so every kind is
registered before anything is decoded.
"""

from __future__ import annotations

from gingham.datastore.base import (
    AlreadyExists,
    Conflict,
    Datastore,
    DatastoreError,
    EventType,
    Listing,
    NotFound,
    RevisionCompacted,
    Unavailable,
    WatchEvent,
    when_available,
)
from gingham.datastore.codec import StoredValueInvalid
from gingham.datastore.url import (
    ACCEPTED_FORMS,
    DEFAULT_URL,
    EtcdURL,
    KubernetesURL,
    parse_datastore_url,
)

__all__ = [
    "ACCEPTED_FORMS",
    "DEFAULT_URL",
    "AlreadyExists",
    "Conflict",
    "Datastore",
    "DatastoreError",
    "EventType",
    "Listing",
    "NotFound",
    "RevisionCompacted",
    "StoredValueInvalid",
    "Unavailable",
    "WatchEvent",
    "open_datastore",
    "when_available",
]


def open_datastore(url: str) -> Datastore:
    """A store for `url`; `ValueError` (listing the accepted forms) if it is not one."""
    import gingham.model  # noqa: F401  (registers every kind)

    parsed = parse_datastore_url(url)
    if isinstance(parsed, EtcdURL):
        from gingham.datastore.etcd import EtcdDatastore

        return EtcdDatastore(parsed.endpoints)
    if isinstance(parsed, KubernetesURL):
        from gingham.datastore.kubernetes import KubernetesDatastore

        return KubernetesDatastore(parsed.kubeconfig, parsed.context)
    from gingham.datastore.sqlite import SqliteDatastore

    return SqliteDatastore(parsed.path)
