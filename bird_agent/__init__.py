"""bird_agent: the BGP speaker that drives ExaBGP and feeds learned routes to felix.

Pure core (no I/O):
- `peers`      — who to peer with (mesh, global, node-specific, peerSelector).
- `policy`     — import filter (pools, tunnel /32s, never default or node-covering
                 prefixes, own prefixes dropped; counters) and export set.
- `learned`    — post-policy Adj-RIB-In, one selected route per prefix,
                 graceful-restart stale handling; yields `RouteChange`s.
- `model_view` — gingham.model resources → the views above.
- `events`     — typed BGP events (the adapter's output vocabulary).

The one ExaBGP adapter (nothing else knows ExaBGP):
- `exabgp_wire`    — config text, environment, commands, JSON → events (pure).
- `exabgp_process` — start/stop the ExaBGP process.
- `exabgp_main`    — ExaBGP's entry point: a 100 ms idle loop, peers accepted
                     ahead of queued API work, and the wrapped ExaBGP methods
                     that cost Gingham most (per-neighbor deep copies, per-call
                     Family objects, per-route command handling, NLRI sorting
                     and packing); each pinned by a unit test against ExaBGP's
                     own result.
- `exabgp_cease`   — what `exabgp_process` runs: `exabgp_main` plus a
                     `teardown` that sends its Cease even under graceful
                     restart (a node stopping for good, not restarting).
- `exabgp_bridge`  — the API process ExaBGP runs (pipes ↔ our unix socket).
- `exabgp`         — `ExaBGPAdapter`: desired peers/exports in, events out.
- `exabgp_reflect` — full path attributes from ExaBGP's JSON, and the
                     per-neighbor commands for reflected routes.

Route reflection: `reflection` feeds gingham-rr (route_reflector/) on RR
nodes and applies its per-peer answers; every node screens routes that loop
back (ORIGINATOR_ID / CLUSTER_LIST).

Daemon: `speaker` (datastore → plan → adapter → learned routes → sink),
`main` (`gingham-bgp` / `python -m bird_agent`).
"""
