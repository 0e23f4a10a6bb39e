"""netkit.trace reads netfilter's trace messages with its own attribute walk; pyroute2 is the reference.

The lab's host no longer imports pyroute2 (see netkit/trace.py for why). These tests hold its parser to
pyroute2's decoding of the very same bytes: live, from messages the kernel sent for real probes, and from
a recording of such messages, so a change to the parser is caught without a lab too.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from netkit import Lab, trace

RECORDED = Path(__file__).parent / "data" / "nftrace-datagrams.json"

# A program run in the lab's host (the machine's python3, no netkit, no pyroute2): it joins netfilter's
# trace group, says so with a file, and prints every datagram it gets, as hex, for `seconds`.
LISTENER = r"""
import select, socket, sys, time
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
sock.bind((0, 1 << 8))
print("listening", flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    if select.select([sock], [], [], 0.05)[0]:
        print(sock.recv(1 << 16).hex(), flush=True)
"""


def reference_event(data: bytes) -> dict | None:
    """What netkit.trace.event must say about one NFT_MSG_TRACE message, as decoded by pyroute2."""
    from pyroute2.netlink import nla
    from pyroute2.netlink.nfnetlink import nfgen_msg

    class nft_trace_msg(nfgen_msg):
        # include/uapi/linux/netfilter/nf_tables.h: enum nft_trace_attributes, in order
        nla_map = (
            ("NFTA_TRACE_UNSPEC", "none"), ("NFTA_TRACE_TABLE", "asciiz"), ("NFTA_TRACE_CHAIN", "asciiz"),
            ("NFTA_TRACE_RULE_HANDLE", "be64"), ("NFTA_TRACE_TYPE", "be32"), ("NFTA_TRACE_VERDICT", "verdict"),
            ("NFTA_TRACE_ID", "be32"), ("NFTA_TRACE_LL_HEADER", "cdata"), ("NFTA_TRACE_NETWORK_HEADER", "cdata"),
            ("NFTA_TRACE_TRANSPORT_HEADER", "cdata"), ("NFTA_TRACE_IIF", "be32"), ("NFTA_TRACE_IIFTYPE", "be16"),
            ("NFTA_TRACE_OIF", "be32"), ("NFTA_TRACE_OIFTYPE", "be16"), ("NFTA_TRACE_MARK", "be32"),
            ("NFTA_TRACE_NFPROTO", "be32"), ("NFTA_TRACE_POLICY", "be32"), ("NFTA_TRACE_PAD", "hex"),
        )

        class verdict(nla):
            nla_map = (("NFTA_VERDICT_UNSPEC", "none"), ("NFTA_VERDICT_CODE", "be32"),
                       ("NFTA_VERDICT_CHAIN", "asciiz"))

    msg = nft_trace_msg(data)
    msg.decode()
    if msg["header"]["type"] != trace.NFT_MSG_TRACE:
        return None
    get = msg.get_attr
    kind = trace.TRACE_TYPES.get(get("NFTA_TRACE_TYPE"), "unknown")
    verdict = target = None
    if kind == "policy":
        verdict = trace.VERDICTS.get(get("NFTA_TRACE_POLICY"), "unknown")
    elif get("NFTA_TRACE_VERDICT") is not None:
        nested = get("NFTA_TRACE_VERDICT")
        code = nested.get_attr("NFTA_VERDICT_CODE") or 0
        verdict = trace.VERDICTS.get(code - (1 << 32) if code >= 1 << 31 else code, "unknown")
        target = nested.get_attr("NFTA_VERDICT_CHAIN")
    found = {"id": f"{get('NFTA_TRACE_ID') or 0:08x}", "table": get("NFTA_TRACE_TABLE") or "",
             "chain": get("NFTA_TRACE_CHAIN") or "", "type": kind, "handle": get("NFTA_TRACE_RULE_HANDLE"),
             "verdict": verdict, "target": target}
    for key, attr in (("iif", "NFTA_TRACE_IIF"), ("oif", "NFTA_TRACE_OIF")):
        if get(attr):
            found[key] = get(attr)            # an index: the test compares indexes, not names
    for key, attr in (("network", "NFTA_TRACE_NETWORK_HEADER"), ("transport", "NFTA_TRACE_TRANSPORT_HEADER")):
        if get(attr):
            found[key] = bytes(get(attr)).hex()
    return found


def split(datagram: bytes) -> list[bytes]:
    """The netlink messages of one datagram, each with its header (pyroute2 decodes one at a time)."""
    out, offset = [], 0
    while offset + 16 <= len(datagram):
        length = int.from_bytes(datagram[offset:offset + 4], "little")
        out.append(datagram[offset:offset + length])
        offset += (length + 3) & ~3
    return out


def ours(datagram: bytes, monkeypatch) -> list[dict]:
    """netkit.trace's events of one datagram, with interface indexes kept as numbers for the comparison."""
    monkeypatch.setattr(trace, "name_of", lambda index: index)
    events = [trace.event(payload, 0.0) for kind, payload in trace.messages(datagram) if kind == trace.NFT_MSG_TRACE]
    for e in events:
        del e["time"]
    return events


class Listener:
    """LISTENER in the lab's host network namespace, started from here (the lab's host serves one request at
    a time, so it cannot run the listener and the probes at once)."""

    def __init__(self, lab, seconds: float) -> None:
        self.proc = subprocess.Popen(["nsenter", f"--net=/proc/{lab.pid}/ns/net", "--", "python3", "-c",
                                      LISTENER, str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        ready = self.proc.stdout.readline()
        if ready.strip() != "listening":
            self.proc.kill()
            pytest.fail(f"the listener did not subscribe: {ready!r} {self.proc.stderr.read()}")

    def datagrams(self) -> list[str]:
        out, err = self.proc.communicate(timeout=15)
        assert self.proc.returncode == 0, err
        return out.split()


def reference(datagram: bytes) -> list[dict]:
    return [e for e in map(reference_event, split(datagram)) if e is not None]


def test_recorded_messages_parse_as_pyroute2_parsed_them(monkeypatch):
    recorded = json.loads(RECORDED.read_text())
    assert len(recorded["datagrams"]) >= 3
    events = [e for hexdata in recorded["datagrams"] for e in ours(bytes.fromhex(hexdata), monkeypatch)]
    assert events == recorded["events"]
    # the recording holds what the probes need: a rule's verdict, a jump with its target, a policy drop
    assert {"rule", "policy"} <= {e["type"] for e in events}
    assert any(e["verdict"] == "drop" and e["type"] == "policy" for e in events)
    assert any(e.get("network") and e.get("transport") for e in events)


def test_a_truncated_attribute_ends_the_walk_and_keeps_what_came_before():
    good = (8).to_bytes(2, "little") + (2).to_bytes(2, "little") + b"ab\0\0"
    cut = (40).to_bytes(2, "little") + (1).to_bytes(2, "little") + b"xy"
    assert trace.attributes(good + cut) == {2: b"ab\0\0"}
    assert list(trace.messages(b"\x10\x00")) == []


@pytest.mark.lab
def test_live_messages_parse_as_pyroute2_parses_them(monkeypatch):
    with Lab(name=f"trace-{uuid.uuid4().hex[:6]}") as lab:
        listener = Listener(lab, 1.5)
        dropped = lab.probe("c1", "10.55.66.3")                 # FORWARD policy DROP
        lab.iptables("-P FORWARD ACCEPT")
        delivered = lab.probe("c1", "10.55.66.3")
        datagrams = [bytes.fromhex(line) for line in listener.datagrams()]
        assert not dropped.delivered and delivered.delivered
        assert datagrams
        events = [e for d in datagrams for e in ours(d, monkeypatch)]
        assert events == [e for d in datagrams for e in reference(d)]
        assert len(events) >= 10
        assert any(e["type"] == "policy" and e["verdict"] == "drop" and e["chain"] == "FORWARD" for e in events)
