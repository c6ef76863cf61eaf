"""One raw rtnetlink socket in one namespace: requests in ACKed batches, lookups, dumps.

felix.veth writes and reads a pod's veth pair through this: each namespace
gets one socket and one batch of hand-packed messages (`struct`), where
pyroute2 spends ~0.7 ms of Python per call. Messages are built with `attr`
and the `*MSG` structs; what comes back is taken apart with `attributes`.

Invariants:
- Every request of a `batch` is ACKed, so each gets its own (errno, kernel
  message) answer, in order; `check_answers` turns the first failure into an
  `RtnlError` that names the step.
- A wedged kernel cannot hold a caller forever: every receive has a timeout
  (`ANSWER_TIMEOUT`), reported as an `RtnlError`.
- Nothing here decides what to write: the callers own their messages.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass

from felix.netns import netns_path, socket_in_netns

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
RTM_GETNSID = 90
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLM_F_ACK_TLVS, NLMSGERR_ATTR_MSG = 0x200, 1
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK, IFLA_MTU, IFLA_LINKINFO, IFLA_IFALIAS = 1, 3, 5, 4, 18, 20
IFLA_NET_NS_FD, IFLA_LINK_NETNSID = 28, 37
NETNSA_NSID, NETNSA_FD = 1, 3
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
NDA_DST, NDA_LLADDR = 1, 2
IFF_UP = 0x1
NUD_PERMANENT = 0x80
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253

ANSWER_TIMEOUT = 10.0

NLMSG = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")
NDMSG = struct.Struct("=BxxxiHBB")
RTATTR = struct.Struct("=HH")


class RtnlError(RuntimeError):
    """rtnetlink refused a request or did not answer; the message names the step and why."""


@dataclass(frozen=True)
class Link:
    index: int
    mac: str
    # IFF_* flags (IFF_UP: administratively up).
    flags: int = 0
    # IFLA_LINK: a veth's peer index (in the peer's namespace); 0 when absent.
    peer: int = 0
    # IFLA_LINK_NETNSID: the peer's namespace as this one numbers it; None: the same.
    peer_netnsid: int | None = None


def attr(kind: int, payload: bytes) -> bytes:
    length = RTATTR.size + len(payload)
    return RTATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def attributes(body: bytes, offset: int) -> dict[int, bytes]:
    """The attributes of a message from `offset` (after its fixed header): type -> payload."""
    found: dict[int, bytes] = {}
    while offset + RTATTR.size <= len(body):
        length, kind = RTATTR.unpack_from(body, offset)
        if length < RTATTR.size:
            break
        found[kind & 0x3FFF] = body[offset + RTATTR.size : offset + length]
        offset += (length + 3) & ~3
    return found


def name_attr(name: str) -> bytes:
    return name.encode() + b"\0"


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def i32_of(payload: bytes) -> int:
    return int(struct.unpack_from("=i", payload)[0]) if len(payload) >= 4 else 0


def mac_bytes(mac: str) -> bytes:
    return bytes(int(octet, 16) for octet in mac.split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def ifinfo(index: int = 0, up: bool | None = None) -> bytes:
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    return IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


class Rtnl:
    """One rtnetlink socket in one namespace; requests go in ACKed batches."""

    def __init__(self, netns: str | None) -> None:
        self.sock = socket_in_netns(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
            self.sock.setsockopt(SOL_NETLINK, opt, 1)
        # The kernel always answers; the timeout only bounds a wedged kernel, which
        # must not hold an attachment's lock (and the runtime's call) forever.
        self.sock.settimeout(ANSWER_TIMEOUT)
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, kind: int, flags: int, body: bytes) -> tuple[int, bytes]:
        self._seq += 1
        header = NLMSG.pack(NLMSG.size + len(body), kind, NLM_F_REQUEST | flags, self._seq, 0)
        return self._seq, header + body

    def batch(self, requests: list[tuple[int, int, bytes]]) -> list[tuple[int, str]]:
        """Send (type, flags, body) requests in one datagram; (errno, kernel message) each."""
        seqs, wire = [], []
        for kind, flags, body in requests:
            seq, message = self._message(kind, flags | NLM_F_ACK, body)
            seqs.append(seq)
            wire.append(message)
        self.sock.send(b"".join(wire))
        answers: dict[int, tuple[int, str]] = {}
        while len(answers) < len(seqs):
            for kind, flags, seq, body in self._receive():
                if kind == NLMSG_ERROR and seq in seqs:
                    answers[seq] = _error(flags, body)
        return [answers[seq] for seq in seqs]

    def dump(self, kind: int, body: bytes, what: str) -> list[bytes]:
        """The bodies of every message a dump request answers with."""
        seq, message = self._message(kind, NLM_F_DUMP, body)
        self.sock.send(message)
        out: list[bytes] = []
        while True:
            for got_kind, flags, got, payload in self._receive():
                if got != seq:
                    continue
                if got_kind == NLMSG_DONE:
                    return out
                if got_kind == NLMSG_ERROR:
                    code, text = _error(flags, payload)
                    if code:
                        raise RtnlError(f"listing {what}: {os.strerror(code)} {text}".rstrip())
                    return out
                out.append(payload)

    def get_link(self, name: str) -> Link | None:
        """The link `name` (index, MAC, flags, peer), or None when there is none."""
        seq, message = self._message(RTM_GETLINK, 0, ifinfo() + attr(IFLA_IFNAME, name_attr(name)))
        self.sock.send(message)
        while True:
            for kind, flags, got, body in self._receive():
                if got != seq:
                    continue
                if kind == NLMSG_ERROR:
                    code, text = _error(flags, body)
                    if code in (errno.ENODEV, errno.ENOENT):
                        return None
                    raise RtnlError(f"looking up {name}: {os.strerror(code)} {text}".rstrip())
                _family, _type, index, link_flags, _change = IFINFOMSG.unpack_from(body)
                found = attributes(body, IFINFOMSG.size)
                netnsid = found.get(IFLA_LINK_NETNSID)
                return Link(
                    index,
                    mac_text(found.get(IFLA_ADDRESS, b"")),
                    link_flags,
                    i32_of(found.get(IFLA_LINK, b"")),
                    None if netnsid is None else i32_of(netnsid),
                )

    def netnsid(self, netns: str) -> int | None:
        """How this socket's namespace numbers `netns` (None: it has no number for it,
        so no link here has a peer there)."""
        fd = os.open(netns_path(netns), os.O_RDONLY)
        try:
            body = struct.pack("=Bxxx", socket.AF_UNSPEC) + attr(NETNSA_FD, u32(fd))
            seq, message = self._message(RTM_GETNSID, 0, body)
            self.sock.send(message)
            while True:
                for kind, flags, got, payload in self._receive():
                    if got != seq:
                        continue
                    if kind == NLMSG_ERROR:
                        code, text = _error(flags, payload)
                        raise RtnlError(f"numbering netns {netns}: {os.strerror(code)} {text}")
                    nsid = attributes(payload, 4).get(NETNSA_NSID)
                    if nsid is None or i32_of(nsid) < 0:
                        return None
                    return i32_of(nsid)
        finally:
            os.close(fd)

    def _receive(self) -> list[tuple[int, int, int, bytes]]:
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            raise RtnlError(f"no answer from rtnetlink in {ANSWER_TIMEOUT:g}s") from None
        out, offset = [], 0
        while offset + NLMSG.size <= len(data):
            length, kind, flags, seq, _pid = NLMSG.unpack_from(data, offset)
            if length < NLMSG.size:
                break
            out.append((kind, flags, seq, data[offset + NLMSG.size : offset + length]))
            offset += (length + 3) & ~3
        return out


def _error(flags: int, body: bytes) -> tuple[int, str]:
    code = -i32_of(body)
    text = ""
    if code and flags & NLM_F_ACK_TLVS:
        # NETLINK_CAP_ACK: only the request's header is echoed before the TLVs.
        message = attributes(body, 4 + NLMSG.size).get(NLMSGERR_ATTR_MSG)
        if message is not None:
            text = message.rstrip(b"\0").decode(errors="replace")
    return code, text


def check_answers(
    step: str, answers: list[tuple[int, str]], tolerated: tuple[int, ...] = ()
) -> None:
    """Raise `RtnlError` naming `step` for the first answer that is an error."""
    for code, text in answers:
        if code and code not in tolerated:
            detail = f"{os.strerror(code)}{': ' + text if text else ''}"
            raise RtnlError(f"{step}: {detail}")
