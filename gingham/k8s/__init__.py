"""Kubernetes integration around the `kubernetes` datastore backend.

The backend itself and its wire side (client set-up, object conversion,
API-error mapping) are `gingham.datastore.kubernetes` and
`gingham.datastore.kubernetes_wire`; this package imports them, never the
reverse.

- `crds`: CustomResourceDefinitions generated from the model (`gingham k8s crds`).
- `rbac`: the node agent's least-privilege rules, derived from the backend.
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
