"""felix: the node dataplane agent, the only writer of kernel state on a node.

Map (pure core first, then adapters, then the daemon):

- `dataplane`  plain data: Route/NextHop/Neighbour/FdbEntry, ops, ownership
               constants (rtnetlink protocol 77, `gh` veth prefix,
               `vxlan.gingham`), `host_interface_name`.
- `feed`       the BGP speaker's route feed state (snapshot, then deltas).
- `desired`    pools + blocks + workloads + nodes + feed → desired KernelState.
- `reconcile`  desired vs programmed → ops; sync gating; a failed op retried
               with its own backoff (never holding the others back).
- `nat`        natOutgoing → the `ip gingham_nat` nftables table (text).
- `rtnl`       bulk IPv4 routes over raw rtnetlink (struct-packed, chunked).
- `links`      VXLAN device, tunl0, forwarding; reads pod veths back (pyroute2).
- `kernel`/`host`  the KernelPort/HostPort adapters over a namespace.
- `nft`        applies the NAT table with `nft -f`.
- `netns`      sockets/sysctls inside another netns via a setns'd thread.
- `agent`      asyncio reconcile loop over all of the above.
- `sync`       datastore list+watch of IPPool, Node, BlockAffinity.
- `workloads`  AddWorkload/DeleteWorkload: IPAM, plumbing, WorkloadEndpoint.
- `pod_addresses` the IPAM felix needs, CNI pool choices, IPAM errors' kinds.
- `veth`       the pod veth: made, checked (CHECK) and deleted over `netlink`.
- `netlink`    one raw rtnetlink socket: ACKed batches, lookups, dumps.
- `attachments` `Attachment`, its sandbox identity and WorkloadEndpoint record.
- `tunnels`    claims and publishes this node's VXLAN/IPIP tunnel addresses.
- `server`     gRPC servicers (Dataplane, RouteFeed); `http` the metrics
               (served with the probes by gingham.probes).
- `main`       `gingham-felix --node N --datastore URL --run-dir DIR`.
"""
