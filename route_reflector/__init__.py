"""route_reflector: RFC 4456 route reflection for a node's single BGP speaker.

ExaBGP has no RIB and no reflection; this package is the decision engine.
bird_agent (the node's one ExaBGP) feeds it what each iBGP peer sent and
sends what it answers, through `route_reflector.api` alone:

- `api.messages`: the vocabulary (attributes, peers, the stream's inputs
  and outputs), plain data.
- `api.convert`: protobuf (gingham/v1/reflector.proto) <-> `api.messages`.
- `api.client`: `ReflectorLink`, the speaker's side of the stream (driven by
  `bird_agent.reflection`, which feeds it the node's iBGP sessions and turns
  its answers into per-neighbor ExaBGP announcements).

The engine and the daemon, behind it, pure first:

- `rib`: the Adj-RIB-In.
- `decision`: best path per prefix (RFC 4271 §9.1.2.2 + RFC 4456 §9).
- `reflect`: `Reflector`, the engine: events in, per-peer Adj-RIB-Out diffs out.
- `feed`: the Reflect stream protocol (snapshot, then deltas), pure.
- `server`, `main`: the `gingham-rr` daemon (gRPC on a unix socket, probes
  and Prometheus metrics on localhost HTTP through `gingham.probes`).
"""
