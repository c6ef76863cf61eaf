"""A raw ExaBGP test peer: sends hand-written routes with any path attribute.

BIRD, FRR and GoBGP set ORIGINATOR_ID and CLUSTER_LIST themselves and will
not let a test forge them; ExaBGP's static routes will
(`route P next-hop H originator-id X cluster-list [ A B ]`). `ExaBGPPeer`
is a `bgpd.BgpDaemon` (same start/stop-by-PID lifecycle) running PyPI's
ExaBGP from this venv in the peer's namespace: it connects out to its one
neighbour (ExaBGP does not listen unless told to), announces its static
routes once Established, and runs as root without dropping privileges (it
has no files nobody could write, but the default drop is a needless trap).
"""

from __future__ import annotations

import os
import sys

from tests.support import bgpd


class ExaBGPPeer(bgpd.BgpDaemon):
    """`routes` are ExaBGP `route …` statements without the trailing `;`."""

    name = "exabgp"

    def __init__(self, peering: bgpd.DaemonPeering, routes: list[str]) -> None:
        super().__init__(peering)
        self.static_routes = list(routes)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "exabgp", str(self.dir / "exabgp.conf")]

    def write_config(self) -> None:
        p = self.peering
        routes = "".join(f"    {route};\n" for route in self.static_routes)
        (self.dir / "exabgp.conf").write_text(
            f"neighbor {p.neighbor} {{\n"
            f"  router-id {p.address};\n"
            f"  local-address {p.address};\n"
            f"  local-as {p.asn};\n"
            f"  peer-as {p.neighbor_asn};\n"
            f"  hold-time {p.hold_time};\n"
            "  family { ipv4 unicast; }\n"
            f"  static {{\n{routes}  }}\n"
            "}\n"
        )

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "exabgp_daemon_user": "root",
            "exabgp_daemon_drop": "false",
            "exabgp_api_cli": "false",
            "exabgp_log_level": "INFO",
        }

    def ready(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def established(self) -> bool:
        """A TCP session to the neighbour's port 179 is established (ss in our netns)."""
        out = bgpd.run(
            "ss", "-Htn", "state", "established", "dst", str(self.peering.neighbor),
            netns=self.peering.netns,
        )  # fmt: skip
        return bool(out.strip())
