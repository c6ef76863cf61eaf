"""route_reflector.api: the part of the route reflector its clients import.

The node's BGP speaker (bird_agent) talks to `gingham-rr` through this
package alone, so it never loads the decision engine:

- `messages`: the vocabulary, plain data (attributes, peers, the stream's
  inputs and outputs, folding outputs into a per-peer view).
- `convert`: protobuf (gingham/v1/reflector.proto) <-> `messages`.
- `client`: `ReflectorLink`, the speaker's side of the Reflect stream.

The engine (`route_reflector.rib`, `decision`, `reflect`, `feed`) and the
daemon (`server`, `main`) import this package; it imports none of them.
"""
