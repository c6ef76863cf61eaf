"""Kubernetes integration around the `kubernetes` datastore backend.

- `crds`: CustomResourceDefinitions generated from the model (`gingham k8s crds`).
- `rbac`: the node agent's least-privilege rules, derived from the backend.
- `wire`: client set-up, object conversion and API-error mapping for the backend.
- `autodetect`: the node's BGP address (first-found / interface= / can-reach=).
- `node`: `register_node`, our Node following the core Node and that address.
- `bootstrap`: `gingham node run --datastore kubernetes` registers its node
  (downward-API name, auto-detected address, core labels) before its agents start.
- `cluster`: a real control plane on this machine (etcd, kube-apiserver,
  controller manager, scheduler) for `gingham lab up --kubernetes` and the tests;
  `pki` makes its CA and certificates.
- `probe`: the DaemonSet's liveness/readiness command (felix's and the speaker's
  health endpoints at once; standard library only).
"""
