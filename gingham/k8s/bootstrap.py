"""`gingham node run` in Kubernetes mode: the node registers itself before its agents start.

In a DaemonSet nobody has written our Node resource for the machine a pod
lands on: the node name comes from the downward API (``--node $(NODE_NAME)``,
i.e. ``spec.nodeName``), the BGP address is auto-detected
(``GINGHAM_IP_AUTODETECTION_METHOD``, `gingham.k8s.autodetect`) and our Node is
written with `gingham.k8s.node.register_node`, carrying the core Node's labels
(so pool and peer selectors such as ``rack == "rack1"`` see them).

`bootstrap_node` does that on a `KubernetesDatastore`; on any other backend it
does nothing (sqlite and etcd Nodes are written by an operator or the lab), so
the hook in `gingham node run` is one call. Everything a person can get wrong
is a `BootstrapError` naming what to fix: a name that is not a core Node (the
downward API not wired), an unknown detection method, no address found.

Invariants: the core Node is only listed (the RBAC grants ``list`` on nodes,
nothing more); detection sends no packet (`autodetect`); registration is
idempotent, so a restarted pod rewrites nothing when nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from gingham.datastore.base import Datastore
from gingham.k8s.autodetect import DetectionError, Method, detect, parse_method
from gingham.k8s.node import register_node
from gingham.model.bgp import Node

log = logging.getLogger("gingham.k8s")

ENV_METHOD = "GINGHAM_IP_AUTODETECTION_METHOD"


class BootstrapError(Exception):
    """This node cannot register itself; the message says what to fix."""


def method_from_environment(environ: dict[str, str] | None = None) -> Method:
    text = (os.environ if environ is None else environ).get(ENV_METHOD, "")
    try:
        return parse_method(text)
    except ValueError as exc:
        raise BootstrapError(f"{ENV_METHOD}={text!r}: {exc}") from None


async def bootstrap_node(store: Datastore, name: str, method: Method | None = None) -> Node | None:
    """Register node `name` when `store` is the Kubernetes API; None on other backends.

    `method` defaults to ``$GINGHAM_IP_AUTODETECTION_METHOD`` (first-found when
    unset); detection reads this network namespace (the host's, in a DaemonSet).
    """
    # A Kubernetes store implies its module was imported; checking sys.modules
    # keeps `node run` on sqlite/etcd from importing the backend just to say no.
    backend = sys.modules.get("gingham.datastore.kubernetes")
    if backend is None or not isinstance(store, backend.KubernetesDatastore):
        return None
    chosen = method if method is not None else method_from_environment()
    cores = {core.name: core for core in await store.core_nodes()}
    core = cores.get(name)
    if core is None:
        known = ", ".join(sorted(cores)) or "none"
        raise BootstrapError(
            f'node "{name}" is not a Node of this cluster (nodes: {known}); in the DaemonSet '
            "--node must be $(NODE_NAME) from the downward API (fieldPath: spec.nodeName)"
        )
    try:
        # `ip -j` subprocesses: off the event loop.
        address = await asyncio.to_thread(detect, chosen)
    except DetectionError as exc:
        raise BootstrapError(
            f'node "{name}": no BGP address ({ENV_METHOD}={_describe(chosen)}): {exc}'
        ) from None
    node = await register_node(store, name, address, core.labels)
    log.info(
        "node %s registered: BGP address %s (%s), %d labels from the core Node",
        name,
        address,
        _describe(chosen),
        len(core.labels),
    )
    return node


def _describe(method: Method) -> str:
    return method.name if not method.argument else f"{method.name}={method.argument}"
