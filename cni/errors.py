"""CNI error codes and the one exception type the plugin raises for them.

Owns the numeric vocabulary of CNI errors (spec 1.1.0, "Error" section) plus our
own codes (100 and up). Every failure the plugin can report is a `CniError`;
`plugin.main` prints it as the spec's error JSON on stdout and exits non-zero.

Invariant: this module imports nothing but the standard library's `typing`
machinery, so the cheapest commands (VERSION, malformed input) stay cheap.

| code | meaning |
|---|---|
| 1 | incompatible CNI version |
| 2 | unsupported field in the network configuration |
| 3 | container unknown or does not exist |
| 4 | invalid necessary environment variable (CNI_*, CNI_ARGS) |
| 5 | I/O failure (reading stdin) |
| 6 | failed to decode content (malformed JSON) |
| 7 | invalid network configuration |
| 11 | try again later (felix or its datastore unavailable, felix not in sync) |
| 50 | plugin not available (STATUS: felix unreachable or not ready) |
| 100 | felix failed internally (a bug or a kernel refusal; see felix's log) |
| 101 | no free address in the pool, or the requested address is taken |
| 102 | CHECK found the attachment different from what prevResult says |
| 103 | felix answered something this plugin does not understand |
| 104 | internal error in the plugin itself (traceback in the plugin's log) |
"""

from __future__ import annotations

INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODING_FAILURE = 6
INVALID_NETWORK_CONFIG = 7
TRY_AGAIN_LATER = 11
PLUGIN_NOT_AVAILABLE = 50

FELIX_INTERNAL = 100
ADDRESS_EXHAUSTED = 101
CHECK_MISMATCH = 102
FELIX_PROTOCOL = 103
PLUGIN_INTERNAL = 104


class CniError(Exception):
    """A failure reported to the runtime as `{"code", "msg", "details"}`."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json_dict(self, cni_version: str) -> dict[str, object]:
        out: dict[str, object] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out
