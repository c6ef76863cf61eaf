"""`gingham node run`: one supervisor per node for felix, the BGP speaker and the route reflector.

`restart` is the pure restart policy (backoff, crash-loop detection, clock
injected); `supervisor` is the asyncio process adapter that applies it;
`launch` is the lean process `node run` execs into to supervise (no CLI,
model or datastore driver kept for the node's lifetime).
"""
