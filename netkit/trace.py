"""Netfilter's verdicts on probe packets, read as netlink messages in the lab's host.

Runs inside the lab's host process (`netkit.agent`). A small nftables table
of the lab's own (``netkit_trace``; iptables does not list it) sets
``nftrace`` on probe packets before any other chain sees them and notes each
hook they pass. The kernel then reports every rule and policy those packets
meet as an ``NFT_MSG_TRACE`` message to the netlink group NFNLGRP_NFTRACE:
what ``nft monitor trace`` prints as text. netkit subscribes to that group
itself, through pyroute2's netlink socket and its attribute parser, and keeps
each message as plain data (`event`):

    {"time", "id", "table", "chain", "type": "rule"|"policy"|"return",
     "handle", "verdict": "accept"|"drop"|"continue"|"jump"|..., "target",
     "iif", "oif", "network", "transport"}

(``network`` and ``transport`` are the packet's headers as hex, present on
the first message of each hook.) No text is parsed, and there is no
``nft monitor`` process to start and wait for: the subscription is in place
the moment the socket is bound. (Debian 12's nft 1.0.6 prints trace events
as text even with ``-j``.)

pyroute2 is imported here, in the background after a lab is built, never
on the way to the lab's first command.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
import time

from .netns import name_of

TABLE = "netkit_trace"
HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
TRACE_TYPES = {1: "policy", 2: "return", 3: "rule"}
VERDICTS = {0: "drop", 1: "accept", 2: "stolen", 3: "queue", 4: "repeat", 5: "stop",
            -1: "continue", -2: "break", -3: "jump", -4: "goto", -5: "return"}


def _message_class():
    """pyroute2's description of an NFT_MSG_TRACE message (its attributes, as the kernel sends them)."""
    from pyroute2.netlink import nla
    from pyroute2.netlink.nfnetlink import nfgen_msg

    class nft_trace_msg(nfgen_msg):
        # include/uapi/linux/netfilter/nf_tables.h: enum nft_trace_attributes, in order
        nla_map = (
            ("NFTA_TRACE_UNSPEC", "none"),
            ("NFTA_TRACE_TABLE", "asciiz"),
            ("NFTA_TRACE_CHAIN", "asciiz"),
            ("NFTA_TRACE_RULE_HANDLE", "be64"),
            ("NFTA_TRACE_TYPE", "be32"),
            ("NFTA_TRACE_VERDICT", "verdict"),
            ("NFTA_TRACE_ID", "be32"),
            ("NFTA_TRACE_LL_HEADER", "cdata"),
            ("NFTA_TRACE_NETWORK_HEADER", "cdata"),
            ("NFTA_TRACE_TRANSPORT_HEADER", "cdata"),
            ("NFTA_TRACE_IIF", "be32"),
            ("NFTA_TRACE_IIFTYPE", "be16"),
            ("NFTA_TRACE_OIF", "be32"),
            ("NFTA_TRACE_OIFTYPE", "be16"),
            ("NFTA_TRACE_MARK", "be32"),
            ("NFTA_TRACE_NFPROTO", "be32"),
            ("NFTA_TRACE_POLICY", "be32"),
            ("NFTA_TRACE_PAD", "hex"),
        )

        class verdict(nla):
            nla_map = (("NFTA_VERDICT_UNSPEC", "none"), ("NFTA_VERDICT_CODE", "be32"),
                       ("NFTA_VERDICT_CHAIN", "asciiz"))

    return nft_trace_msg


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def event(msg, now: float) -> dict:
    """One trace message as plain data (see the module's docstring)."""
    get = msg.get_attr
    kind = TRACE_TYPES.get(get("NFTA_TRACE_TYPE"), "unknown")
    verdict = target = None
    if kind == "policy":
        verdict = VERDICTS.get(get("NFTA_TRACE_POLICY"), "unknown")
    elif get("NFTA_TRACE_VERDICT") is not None:
        nested = get("NFTA_TRACE_VERDICT")
        verdict = VERDICTS.get(_signed(nested.get_attr("NFTA_VERDICT_CODE") or 0), "unknown")
        target = nested.get_attr("NFTA_VERDICT_CHAIN")
    found = {"time": now, "id": f"{get('NFTA_TRACE_ID') or 0:08x}", "table": get("NFTA_TRACE_TABLE") or "",
             "chain": get("NFTA_TRACE_CHAIN") or "", "type": kind, "handle": get("NFTA_TRACE_RULE_HANDLE"),
             "verdict": verdict, "target": target}
    for key, attr in (("iif", "NFTA_TRACE_IIF"), ("oif", "NFTA_TRACE_OIF")):
        index = get(attr)
        if index:
            found[key] = name_of(index) or str(index)
    for key, attr in (("network", "NFTA_TRACE_NETWORK_HEADER"), ("transport", "NFTA_TRACE_TRANSPORT_HEADER")):
        data = get(attr)
        if data:
            found[key] = bytes(data).hex()
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
            raise RuntimeError(f"could not subscribe to netfilter's trace messages: {self._error}")

    def _subscribe(self):
        from pyroute2.netlink import NETLINK_NETFILTER
        from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, NFNLGRP_NFTRACE
        from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_TRACE
        from pyroute2.netlink.nlsocket import NetlinkSocket

        sock = NetlinkSocket(NETLINK_NETFILTER)
        sock.register_policy(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_TRACE, _message_class())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(groups=1 << (NFNLGRP_NFTRACE - 1))
        return sock

    def _read(self) -> None:
        # pyroute2's synchronous socket belongs to the thread that made it: this one makes and reads it.
        try:
            sock = self._subscribe()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self.fileno = sock.fileno()
        self._ready.set()
        while True:
            try:
                messages = sock.get()
            except Exception as exc:   # a burst overflowed the buffer: say so in the agent's log, go on
                print(f"netkit agent: trace messages lost: {exc}", flush=True)
                continue
            now = time.monotonic()
            found = [event(m, now) for m in messages]
            with self.lock:
                self.events.extend(found)
                self.batches += 1

    def drain(self, seconds: float = 1.0) -> None:
        """Wait until every message the kernel has queued so far is read: the kernel reports a packet's
        verdicts while it handles the packet, so after a probe's outcome they are all queued already."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                seen = self.batches
            if not pending(self.fileno):
                time.sleep(0.001)      # a batch just taken off the socket may still be in parsing
                with self.lock:
                    if self.batches == seen and not pending(self.fileno):
                        return
            time.sleep(0.001)

    def arm(self, ports: set[int] = frozenset()) -> None:
        """(Re)install the lab's trace table, tracing ICMP echoes and TCP `ports` (as source or destination)."""
        from .agent import ENV
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
            raise RuntimeError(f"could not install the trace table: {done.stderr.strip()}")

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
    from .agent import ENV
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


def parse_ip(hexdata: str) -> dict:
    """The fields of an IPv4 header (and what follows) given as hex, as `explain` needs them."""
    data = bytes.fromhex(hexdata)
    if len(data) < 20 or data[0] >> 4 != 4:
        return {}
    return {"proto": data[9], "saddr": socket.inet_ntoa(data[12:16]), "daddr": socket.inet_ntoa(data[16:20])}


def parse_transport(proto: int | None, hexdata: str) -> dict:
    data = bytes.fromhex(hexdata)
    if proto == socket.IPPROTO_ICMP and len(data) >= 8:
        kind, _, _, ident, _ = struct.unpack_from("!BBHHH", data)
        return {"icmp_type": {8: "echo-request", 0: "echo-reply"}.get(kind, str(kind)), "icmp_id": ident}
    if proto == socket.IPPROTO_TCP and len(data) >= 14:
        sport, dport, _, _, _, flags = struct.unpack_from("!HHIIBB", data)
        return {"sport": sport, "dport": dport, "tcp_flags": flags}
    return {}
