"""Netfilter's verdicts on probe packets, read as netlink messages in the lab's host.

Runs inside the lab's host process (`netkit.agent`). A small nftables table
of the lab's own (``netkit_trace``; iptables does not list it) sets
``nftrace`` on probe packets before any other chain sees them and notes each
hook they pass. The kernel then reports every rule and policy those packets
meet as an ``NFT_MSG_TRACE`` message to the netlink group NFNLGRP_NFTRACE:
what ``nft monitor trace`` prints as text. netkit subscribes to that group
itself, with a plain netlink socket, and keeps each message as plain data
(`event`):

    {"time", "id", "table", "chain", "type": "rule"|"policy"|"return",
     "handle", "verdict": "accept"|"drop"|"continue"|"jump"|..., "target",
     "iif", "oif", "network", "transport"}

(``network`` and ``transport`` are the packet's headers as hex, present on
the first message of each hook.) No text is parsed, and there is no
``nft monitor`` process to start and wait for: the subscription is in place
the moment the socket is bound. (Debian 12's nft 1.0.6 prints trace events
as text even with ``-j``.)

Why not pyroute2, which the tests use as the reference parser of the same
bytes (tests/test_trace.py): its package imports every part of itself at
once, about 120 ms of CPU and 19 MiB for each lab's host, twice what the
rest of the host needs. The messages need only a walk over netlink's
type-length-value attributes (`attributes`), done here with `struct`.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
import time

from . import netfilter
from .errors import TraceError
from .i18n import _
from .netns import name_of
from .waiting import wait_until

TABLE = "netkit_trace"
HOOKS = tuple(hook.lower() for hook in netfilter.HOOKS)   # as nft spells them
TRACE_TYPES = {1: "policy", 2: "return", 3: "rule"}
VERDICTS = {0: "drop", 1: "accept", 2: "stolen", 3: "queue", 4: "repeat", 5: "stop",
            -1: "continue", -2: "break", -3: "jump", -4: "goto", -5: "return"}


NETLINK_NETFILTER = 12
NFNLGRP_NFTRACE = 9
NFT_MSG_TRACE = 10 << 8 | 17          # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_TRACE
NLMSG_HEADER = struct.Struct("=IHHII")   # nlmsghdr: length, type, flags, seq, pid (the machine's byte order)
NLA_HEADER = struct.Struct("=HH")        # nlattr: length, type
NLA_TYPE_MASK = 0x3FFF                   # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

# include/uapi/linux/netfilter/nf_tables.h: enum nft_trace_attributes and enum nft_verdict_attributes
TRACE_TABLE, TRACE_CHAIN, TRACE_RULE_HANDLE, TRACE_TYPE, TRACE_VERDICT, TRACE_ID = 1, 2, 3, 4, 5, 6
TRACE_NETWORK_HEADER, TRACE_TRANSPORT_HEADER, TRACE_IIF, TRACE_OIF, TRACE_POLICY = 8, 9, 10, 12, 16
VERDICT_CODE, VERDICT_CHAIN = 1, 2


def attributes(data: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """The netlink attributes in data[offset:end] as {type: payload} (nested ones stay bytes)."""
    end = len(data) if end is None else end
    found = {}
    while offset + NLA_HEADER.size <= end:
        length, kind = NLA_HEADER.unpack_from(data, offset)
        if length < NLA_HEADER.size or offset + length > end:
            break                                  # a truncated attribute: keep what came before it
        found[kind & NLA_TYPE_MASK] = data[offset + NLA_HEADER.size:offset + length]
        offset += (length + 3) & ~3                # attributes are 4-byte aligned
    return found


def messages(data: bytes):
    """The (type, payload) of each netlink message in one datagram."""
    offset = 0
    while offset + NLMSG_HEADER.size <= len(data):
        length, kind = NLMSG_HEADER.unpack_from(data, offset)[:2]
        if length < NLMSG_HEADER.size or offset + length > len(data):
            break
        yield kind, data[offset + NLMSG_HEADER.size:offset + length]
        offset += (length + 3) & ~3


def _be(value: bytes | None) -> int | None:
    return None if value is None else int.from_bytes(value, "big")


def _text(value: bytes | None) -> str:
    return "" if value is None else value.split(b"\0", 1)[0].decode(errors="replace")


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def event(payload: bytes, now: float) -> dict:
    """One NFT_MSG_TRACE message (its payload: nfgenmsg, then attributes) as plain data (see above)."""
    get = attributes(payload, 4)                   # after struct nfgenmsg (family, version, res_id)
    kind = TRACE_TYPES.get(_be(get.get(TRACE_TYPE)), "unknown")
    verdict = target = None
    if kind == "policy":
        verdict = VERDICTS.get(_be(get.get(TRACE_POLICY)), "unknown")
    elif TRACE_VERDICT in get:
        nested = attributes(get[TRACE_VERDICT])
        verdict = VERDICTS.get(_signed(_be(nested.get(VERDICT_CODE)) or 0), "unknown")
        target = _text(nested[VERDICT_CHAIN]) if VERDICT_CHAIN in nested else None
    found = {"time": now, "id": f"{_be(get.get(TRACE_ID)) or 0:08x}", "table": _text(get.get(TRACE_TABLE)),
             "chain": _text(get.get(TRACE_CHAIN)), "type": kind, "handle": _be(get.get(TRACE_RULE_HANDLE)),
             "verdict": verdict, "target": target}
    for key, attr in (("iif", TRACE_IIF), ("oif", TRACE_OIF)):
        index = _be(get.get(attr))
        if index:
            found[key] = name_of(index) or str(index)
    for key, attr in (("network", TRACE_NETWORK_HEADER), ("transport", TRACE_TRANSPORT_HEADER)):
        if get.get(attr):
            found[key] = get[attr].hex()
    return found


class Tracer:
    """The lab's subscription to netfilter's trace messages, kept in a list of events."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.batches = 0
        self.fileno = -1
        self._ready = threading.Event()
        self._error: BaseException | None = None
        threading.Thread(target=self._read, daemon=True, name="netkit-trace").start()
        self._ready.wait(30)
        if self._error is not None:
            raise TraceError(_("could not subscribe to netfilter's trace messages: {error}; `netkit doctor` "
                               "checks the kernel and the tools the lab needs").format(error=self._error),
                             error=str(self._error))

    def _subscribe(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((0, 1 << (NFNLGRP_NFTRACE - 1)))
        return sock

    def _read(self) -> None:
        try:
            sock = self._subscribe()
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self.fileno = sock.fileno()
        self._ready.set()
        while True:
            try:
                data = sock.recv(1 << 16)
            except OSError as exc:   # ENOBUFS: a burst overflowed the buffer; say so in the agent's log, go on
                print(f"netkit agent: trace messages lost: {exc}", flush=True)
                continue
            now = time.monotonic()
            found = [event(payload, now) for kind, payload in messages(data) if kind == NFT_MSG_TRACE]
            with self.lock:
                self.events.extend(found)
                self.batches += 1

    def drain(self, seconds: float = 1.0) -> None:
        """Wait until every message the kernel has queued so far is read: the kernel reports a packet's
        verdicts while it handles the packet, so after a probe's outcome they are all queued already."""
        def drained() -> bool:
            with self.lock:
                seen = self.batches
            if pending(self.fileno):
                return False
            time.sleep(0.001)          # a batch just taken off the socket may still be in parsing
            with self.lock:
                return self.batches == seen and not pending(self.fileno)
        wait_until(drained, seconds, interval=0.001)

    def arm(self, ports: set[int] = frozenset()) -> None:
        """(Re)install the lab's trace table, tracing ICMP echoes and TCP `ports` (as source or destination)."""
        from .nodes import ENV
        mark = ("    icmp type { echo-request, echo-reply } meta nftrace set 1\n"
                "    tcp sport @ports meta nftrace set 1\n    tcp dport @ports meta nftrace set 1\n")
        chains = "".join(
            f"  chain {hook} {{ type filter hook {hook} priority -310; policy accept;\n"
            + (mark if hook in ("prerouting", "output") else "") + "  }\n"
            for hook in HOOKS)
        elements = f"elements = {{ {', '.join(str(p) for p in sorted(ports))} }}; " if ports else ""
        ruleset = (f"add table ip {TABLE}\ndelete table ip {TABLE}\n"
                   f"table ip {TABLE} {{\n"
                   f"  comment \"netkit: marks probe packets for netfilter's trace and notes the hooks they pass\"\n"
                   f"  set ports {{ type inet_service; {elements}}}\n{chains}}}\n")
        done = subprocess.run(["nft", "-f", "-"], input=ruleset, capture_output=True, text=True, env=ENV)
        if done.returncode != 0:
            raise TraceError(_("could not install the lab's trace table (nft said: {said}); `netkit doctor` "
                               "checks the kernel and the tools the lab needs").format(said=done.stderr.strip()),
                             returncode=done.returncode)

    def since(self, start: float) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["time"] >= start]

    def forget(self, before: float) -> None:
        """Drop events older than `before` (they belong to earlier probes)."""
        with self.lock:
            self.events = [e for e in self.events if e["time"] >= before]


def pending(fd: int) -> bool:
    """Is anything waiting to be read on socket `fd`? (netlink sockets have no FIONREAD; select says.)"""
    import select
    return bool(select.select([fd], [], [], 0)[0])


def rule_names(events: list[dict]) -> dict:
    """For every chain whose rules a probe met: {"<table> <chain>": [[handle, iptables spelling], ...]}.

    `nft -j` lists a chain's rules with their handles, in order; `iptables -S`
    lists the same rules in the same order, as a person types them.
    """
    from .nodes import ENV
    names = {}
    for table, chain in {(e["table"], e["chain"]) for e in events
                         if e["type"] == "rule" and e.get("handle") and not e["table"].startswith("netkit")}:
        listed = subprocess.run(["nft", "-j", "-a", "list", "chain", "ip", table, chain], capture_output=True,
                                text=True, env=ENV)
        spelled = subprocess.run(["iptables", "-t", table, "-S", chain], capture_output=True, text=True,
                                 env=ENV).stdout
        try:
            handles = [item["rule"]["handle"] for item in json.loads(listed.stdout)["nftables"] if "rule" in item]
        except (ValueError, KeyError):
            continue
        rules = [line for line in spelled.splitlines() if line.startswith("-A ")]
        if len(handles) == len(rules):
            names[f"{table} {chain}"] = [[handle, rule] for handle, rule in zip(handles, rules)]
        elif not rules:
            # a table iptables does not know (Docker's nftables backend writes `ip docker-bridges`): the rule
            # as nft lists it, which is what a person types in `nft add rule`
            # (-s: stateless, so a counter is listed as `counter`, without the kernel's running count)
            text = subprocess.run(["nft", "-s", "-a", "list", "chain", "ip", table, chain], capture_output=True,
                                  text=True, env=ENV).stdout
            listed_rules = {int(handle): rule for rule, handle in
                            (line.strip().rsplit(" # handle ", 1) for line in text.splitlines() if " # handle " in line)
                            if handle.isdigit()}     # (the table's and chain's own lines carry a handle too)
            names[f"{table} {chain}"] = [[handle, listed_rules[handle]] for handle in handles if handle in listed_rules]
    return names
