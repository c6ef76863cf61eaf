"""The DaemonSet's liveness/readiness probe: felix's and the speaker's health endpoints at once.

A container has one liveness and one readiness probe, and the node container
runs both agents (under `gingham node run`), so an ``httpGet`` probe could
only ever look at one of them. Like ``calico-node -felix-live -bird-live``,
the probe is a command::

    python3 -m gingham.k8s.probe liveness     # or readiness

It GETs ``/liveness`` (or ``/readiness``) from felix (``127.0.0.1:9099``, felix's
``--http`` default) and from the BGP speaker (``127.0.0.1:9098``, gingham-bgp's
``--http`` default); exit 0 when every endpoint answers 200, else 1 with one
line per failing endpoint on stderr (the kubelet puts it in the pod's events).

Invariants: standard library only (the kubelet runs this every period: it
must start in tens of milliseconds, and must not import the agents); a probe
never takes longer than its timeout per endpoint; only loopback endpoints
are the defaults.
"""

from __future__ import annotations

import argparse
import http.client
import sys
from collections.abc import Sequence

FELIX = "127.0.0.1:9099"
SPEAKER = "127.0.0.1:9098"


def check(kind: str, name: str, endpoint: str, timeout: float) -> str | None:
    """None when `endpoint` answers 200 on /`kind`, else what went wrong."""
    host, _, port = endpoint.rpartition(":")
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            connection.request("GET", f"/{kind}")
            response = connection.getresponse()
            body = response.read(200).decode(errors="replace").strip()
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return f"{name} {kind} at {endpoint}: no answer ({exc})"
    if response.status != 200:
        return f"{name} {kind} at {endpoint}: {response.status} {body}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m gingham.k8s.probe",
        description="Probe felix's and the BGP speaker's health endpoints (exit 0: all healthy).",
    )
    parser.add_argument("kind", choices=("liveness", "readiness"))
    parser.add_argument("--felix", default=FELIX, metavar="HOST:PORT", help=f"default {FELIX}")
    parser.add_argument(
        "--speaker", default=SPEAKER, metavar="HOST:PORT", help=f"default {SPEAKER}"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per endpoint")
    args = parser.parse_args(argv)
    failures = [
        failure
        for name, endpoint in (("felix", args.felix), ("speaker", args.speaker))
        if (failure := check(args.kind, name, endpoint, args.timeout)) is not None
    ]
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
