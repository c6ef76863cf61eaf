"""The wire side of the kubernetes backend: client set-up, our objects ⇄
custom objects, and API errors → datastore errors.

- `make_api_client`: an explicit kubeconfig (and context), else the in-cluster
  service account, else ``$KUBECONFIG`` / ``~/.kube/config``; only connection
  set-up is retried (the request was never sent, so it is safe for writes).
- `to_k8s` sends name, labels, annotations and (for CAS) resourceVersion;
  `from_k8s` keeps only the metadata our `Metadata` has (the API server adds
  generation, managedFields, ...) and sets the revision from resourceVersion.
- `translate`: 404 → NotFound; 409 → AlreadyExists on create, else Conflict;
  410 → RevisionCompacted; 422 → Rejected; 401/403 → Forbidden (an
  Unavailable, with the server's words: who, which verb, which resource); no
  HTTP status (connection failures, timeouts), 5xx, 429 → Unavailable.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import ValidationError

from gingham.datastore.base import (
    AlreadyExists,
    Conflict,
    DatastoreError,
    NotFound,
    RevisionCompacted,
    Unavailable,
)
from gingham.datastore.codec import StoredValueInvalid
from gingham.model.base import API_VERSION, KINDS, Resource

_KEPT_METADATA = ("name", "labels", "annotations", "uid", "creationTimestamp")


class Rejected(DatastoreError):
    """The API server refused the object (422: the CRD's schema)."""


class Forbidden(Unavailable):
    """The API server refused who we are (401) or what we asked (403, RBAC).

    An `Unavailable` so agents retry it like an outage (the RBAC may be
    applied after the DaemonSet starts); the message is the API server's,
    which names the user (the service account), the verb and the resource.
    """


# --- conversion ------------------------------------------------------------------


def to_k8s(obj: Resource, revision: str | None) -> dict[str, Any]:
    """The custom object we send: our document, metadata trimmed to what we own."""
    document = obj.to_document()
    source = document.get("metadata", {})
    metadata: dict[str, Any] = {"name": obj.name}
    for key in ("labels", "annotations"):
        if source.get(key):
            metadata[key] = source[key]
    if revision is not None:
        metadata["resourceVersion"] = revision
    document["metadata"] = metadata
    return document


def from_k8s(kind: str, body: dict[str, Any]) -> Resource:
    cls = KINDS[kind]
    source = body.get("metadata") or {}
    name = str(source.get("name", "?"))
    metadata = {k: source[k] for k in _KEPT_METADATA if source.get(k) is not None}
    document = {
        "apiVersion": body.get("apiVersion", API_VERSION),
        "metadata": metadata,
        "spec": body.get("spec", {}),
    }
    try:
        obj = cls.model_validate(document)
    except (ValueError, ValidationError) as exc:
        raise StoredValueInvalid(f'{kind} "{name}": stored object does not decode: {exc}') from exc
    revision = source.get("resourceVersion")
    return obj.with_revision(None if revision is None else str(revision))


# --- client setup and errors -------------------------------------------------------


def make_api_client(kubeconfig: str | None, context: str | None) -> Any:
    """An ApiClient from the usual places: an explicit kubeconfig, else the
    in-cluster service account, else $KUBECONFIG / ~/.kube/config."""
    from kubernetes import client, config
    from urllib3.util.retry import Retry

    configuration = client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
    except (config.ConfigException, OSError, TypeError, ValueError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise Unavailable(f"cannot load the Kubernetes configuration ({where}): {exc}") from exc
    # Retry only connection set-up (the request was never sent, so safe for
    # writes); anything later surfaces as Unavailable and the caller decides.
    configuration.retries = Retry(total=2, connect=2, read=0, status=0, redirect=0, other=0)
    return client.ApiClient(configuration)


def translate(what: str, exc: Exception, *, create: bool) -> Exception:
    status = getattr(exc, "status", None)
    if status is None:  # urllib3 / socket failure: never reached a server answer
        return Unavailable(f"{what}: Kubernetes API unreachable: {exc}")
    message = _status_message(exc)
    if status == 404:
        return NotFound(f"{what} not found")
    if status == 409:
        if create:
            return AlreadyExists(f"{what} already exists")
        return Conflict(f"{what} changed since it was read: {message}")
    if status == 410:
        return RevisionCompacted(f"{what}: {message}")
    if status == 422:
        return Rejected(f"{what}: refused by the API server: {message}")
    if status == 403:
        return Forbidden(
            f"{what}: denied by the API server: {message}"
            " (the node agent's rights are the ClusterRole in manifests/rbac.yaml)"
        )
    if status == 401:
        return Forbidden(
            f"{what}: the API server does not accept our credentials ({message}):"
            " check the kubeconfig's token or certificate"
        )
    return Unavailable(f"{what}: Kubernetes API error {status}: {message}")


def _status_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    try:
        return str(json.loads(body if isinstance(body, (str, bytes)) else "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(getattr(exc, "reason", "") or exc)
