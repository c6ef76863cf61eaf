"""Parse a datastore URL into what a backend needs to open it.

Accepted forms (anything else is a `ValueError` that lists them):

- ``sqlite:///abs/path.db`` — an absolute file path (three slashes: empty host).
- ``etcd://host:port[,host:port...]`` — one or more etcd v3 client endpoints,
  tried in the order given.
- ``kubernetes`` or ``kubernetes://[?kubeconfig=PATH&context=NAME]`` — the
  Kubernetes API (CRDs); without a kubeconfig the usual places are used
  (in-cluster service account, ``$KUBECONFIG``, ``~/.kube/config``).

Pure: no I/O, no backend imports, so the CLI can validate a URL cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

DEFAULT_URL = "sqlite:///var/lib/gingham/gingham.db"

ACCEPTED_FORMS = (
    "sqlite:///absolute/path.db, etcd://host:port[,host:port...]"
    " or kubernetes[://?kubeconfig=PATH&context=NAME]"
)


@dataclass(frozen=True)
class SqliteURL:
    path: str


@dataclass(frozen=True)
class EtcdEndpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class EtcdURL:
    endpoints: tuple[EtcdEndpoint, ...]


@dataclass(frozen=True)
class KubernetesURL:
    # None: the usual places (in-cluster, $KUBECONFIG, ~/.kube/config).
    kubeconfig: str | None = None
    context: str | None = None


def _bad(url: str, reason: str) -> ValueError:
    return ValueError(f'invalid datastore URL "{url}": {reason} (accepted: {ACCEPTED_FORMS})')


def parse_datastore_url(url: str) -> SqliteURL | EtcdURL | KubernetesURL:
    if url == "kubernetes":
        return KubernetesURL()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise _bad(url, "missing scheme")
    if scheme == "sqlite":
        # sqlite:///abs/path → rest is "/abs/path"; a non-empty host is refused
        # because "sqlite://rel/path" is a classic typo for a relative path.
        if not rest.startswith("/") or rest == "/":
            raise _bad(url, "the path must be absolute (three slashes: sqlite:///path)")
        return SqliteURL(path=rest)
    if scheme == "etcd":
        endpoints = [_parse_endpoint(url, part) for part in rest.rstrip("/").split(",")]
        return EtcdURL(endpoints=tuple(endpoints))
    if scheme == "kubernetes":
        return _parse_kubernetes(url, rest)
    raise _bad(url, f'unknown scheme "{scheme}"')


def _parse_kubernetes(url: str, rest: str) -> KubernetesURL:
    host, _, query = rest.partition("?")
    if host.strip("/"):
        raise _bad(url, "kubernetes:// takes no host (the kubeconfig names the API server)")
    try:
        params = parse_qs(query, strict_parsing=bool(query))
    except ValueError:
        raise _bad(url, f'query "{query}" is not key=value[&key=value]') from None
    unknown = sorted(set(params) - {"kubeconfig", "context"})
    if unknown:
        raise _bad(url, f"unknown parameter {unknown[0]!r} (known: kubeconfig, context)")
    kubeconfig = params.get("kubeconfig", [None])[-1]
    context = params.get("context", [None])[-1]
    return KubernetesURL(kubeconfig=kubeconfig, context=context)


def _parse_endpoint(url: str, text: str) -> EtcdEndpoint:
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise _bad(url, f'endpoint "{text}" is not host:port')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # IPv6 literal
    if "/" in host or "/" in port_text:
        raise _bad(url, f'endpoint "{text}" is not host:port (no path allowed)')
    try:
        port = int(port_text)
    except ValueError:
        raise _bad(url, f'endpoint "{text}": port "{port_text}" is not a number') from None
    if not 0 < port < 65536:
        raise _bad(url, f'endpoint "{text}": port {port} is outside 1..65535')
    return EtcdEndpoint(host=host, port=port)
