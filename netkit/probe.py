"""The probes: send one packet from a node and record what every point, netfilter and conntrack saw.

Runs inside the lab's host process (`netkit.agent`). The pieces it uses each
have a module of their own: sockets in a node's namespace (`netkit.netns`),
the packet sockets on every point (`netkit.capture`), netfilter's trace
messages (`netkit.trace`). Here are only the two probe algorithms:

- `icmp`: an ICMP echo, built by scapy in the notebook's process (the only
  place a probe packet is built) and sent through a raw socket in the source
  node, so the node's own routing table and source address apply, as for
  `ping`;
- `tcp`: a real ``connect()`` from the source node; its SYN is the probe,
  and the SYN-ACK or reset answering it is the reply.

A probe returns its records as soon as the outcome is settled
(`netkit.outcome.settled`): the answer arrived, a netfilter verdict dropped
the packet, the receiver has no route back, or an answer came from the wrong
address. Only when none of these happens does it wait the full timeout. The
records are plain data that `netkit.explain.build` turns into a Journey.
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
import struct
import subprocess
import threading
import time

from . import explain, outcome, topology
from .capture import Capture
from .netns import socket_in
from .procfs import listening_programs
from .trace import Tracer, rule_names


def _send_error(code: int | None) -> dict:
    """What the sender's kernel refused a send with, as data: its errno, the errno's symbolic name, and
    the strerror text, which is shown and never read (`netkit.outcome.Facts` decides from the number)."""
    if code is None:
        return {"send_errno": None, "send_errname": None, "send_error": None}
    return {"send_errno": code, "send_errname": errno.errorcode.get(code, str(code)), "send_error": os.strerror(code)}


def _run(argv: list[str], node: str = "host") -> subprocess.CompletedProcess:
    from .nodes import ENV, node_argv
    return subprocess.run(node_argv(node, argv), capture_output=True, text=True, env=ENV)


def _has_route(node: str, address: str) -> bool:
    return _run(["ip", "route", "get", address], node=node).returncode == 0


class Prober:
    """What a lab keeps between probes: the trace subscription and the captures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tracer: Tracer | None = None
        self.capture: Capture | None = None

    def warm(self) -> None:
        """Get ready for the first probe (called in the background once the lab is built)."""
        with self.lock:
            self._ready()

    def _ready(self, ports: set[int] = frozenset()) -> None:
        if self.tracer is None:
            self.tracer = Tracer()
        self.tracer.arm(ports)
        if self.capture is None:
            self.capture = Capture()
        else:
            self.capture.refresh()

    def tcp(self, src: str, dst: str, port: int, timeout: float = 1.0, cancel=None) -> dict:
        with self.lock:
            sport = random.randrange(40000, 60000)
            proxy = proxy_at(src, dst, port)
            self._ready({sport} | ({proxy["to_port"]} if proxy else set()))
            return tcp(self.tracer, self.capture, src, dst, port, sport, timeout, cancel, proxy=proxy)

    def icmp(self, src: str, dst: str, timeout: float, ident: int, packet: bytes, cancel=None) -> dict:
        with self.lock:
            self._ready()
            return icmp(self.tracer, self.capture, src, dst, timeout, ident, packet, cancel)


def proxy_at(src: str, dst: str, port: int) -> dict | None:
    """The docker-proxy that would accept a connection from `src` to `dst`:`port`, if one listens there.

    Only a connection the host takes in itself can reach it: to one of the host's addresses, or, from the
    host, to its loopback. Whether the kernel delivers it there (and not, through a DNAT, to a container)
    the probe learns as it goes. Read from the host's socket table and the proxy's own flags.
    """
    if not (topology.owner(dst) == "host" or (src == "host" and dst.startswith("127."))):
        return None
    for held in listening_programs(port):
        if held["program"] != "docker-proxy" or held["address"] not in ("0.0.0.0", dst):
            continue
        flags = dict(zip(held["argv"], held["argv"][1:]))
        try:
            to, to_port = flags["-container-ip"], int(flags["-container-port"])
        except (KeyError, ValueError):
            continue
        return {"program": held["program"], "pid": held["pid"], "listen": f"{held['address']}:{port}",
                "to": to, "to_port": to_port}
    return None


def _relay_frames(capture: Capture, proxy: dict, sport: int) -> tuple[int | None, bool, bool, bool]:
    """What hwchiu0 saw on the way to the proxy's container: the source port of the proxy's own connection,
    whether it was answered, whether it was refused, and whether the probe's own SYN went there (DNATed)."""
    relay_port, answered, refused, own = None, False, False, False
    for f in capture.seen_at("host:hwchiu0"):
        packet = explain.parse_frame(bytes.fromhex(f["frame"]))
        if not packet or "sport" not in packet:
            continue
        syn, ack, rst = packet["flags"] & 0x02, packet["flags"] & 0x10, packet["flags"] & 0x04
        if packet["sport"] == sport and packet["dst"] == proxy["to"]:
            own = True
        elif (relay_port is None and syn and not ack and packet["dst"] == proxy["to"]
                and packet["dport"] == proxy["to_port"]):
            relay_port = packet["sport"]
        elif relay_port is not None and packet["src"] == proxy["to"] and packet["dport"] == relay_port:
            answered = answered or bool(syn and ack)
            refused = refused or bool(rst)
    return relay_port, answered, refused, own


def _finish(tracer: Tracer, capture: Capture, started: float, wall_start: float, path, first_kind) -> dict:
    """What every probe returns once its outcome is known: frames, trace events, rule names."""
    capture.drain()       # the decisive moment's last frames and trace messages are queued: read them all
    tracer.drain()
    frames = capture.done()
    events = tracer.since(started)
    tracer.forget(started)
    src_address = ""
    for f in frames:
        packet = explain.parse_frame(bytes.fromhex(f["frame"]))
        if path and f["point"] == path[0] and packet and first_kind(packet):
            src_address = packet["src"]
            break
    for f in frames:
        f["time"] = round(f["time"] - wall_start, 6)
    frames.sort(key=lambda f: f["time"])
    for e in events:
        e["time"] = round(e["time"] - started, 6)
    return {"frames": frames, "trace": events, "rules": rule_names(events),
            "src_address": src_address, "started": wall_start, "missing_points": capture.missing,
            "points": [p for p in topology.POINTS if p not in capture.missing]}


def tcp(tracer: Tracer, capture: Capture, src: str, dst: str, dport: int, sport: int, timeout: float = 1.0,
        cancel: threading.Event | None = None, proxy: dict | None = None) -> dict:
    """Open a TCP connection from `src` to `dst`:`dport` (the SYN is the probe) and record its way.

    With `proxy` (see `proxy_at`), a connection the host took in itself was accepted by docker-proxy, which
    opens a second one to the container: the probe waits for that one's answer too, and records it as the
    journey's relay."""
    topology.check_node(src)
    capture.watch({sport} | ({proxy["to_port"]} if proxy else set()))
    path = topology.path(src, topology.owner(dst))
    sock = socket_in(src, socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setblocking(False)
    send_error = None      # the errno the sender's kernel refused the connection with
    replied = refused = wrong_source = False
    started, wall_start = time.monotonic(), time.time()
    trace_start = started - 0.001
    try:
        sock.bind(("0.0.0.0", sport))
        code = sock.connect_ex((dst, dport))
    except OSError as exc:
        code = exc.errno
    if code not in (0, errno.EINPROGRESS):
        send_error = code
    deadline = started + timeout
    while send_error is None and time.monotonic() < deadline and not (cancel and cancel.is_set()):
        _, writable, _ = select.select([], [sock], [], 0.003)
        if writable:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0:
                replied = True
            elif code == errno.ECONNREFUSED:
                refused = True
            else:
                send_error = code
            break
        if path:
            answers = [explain.parse_frame(bytes.fromhex(f["frame"])) for f in capture.seen_at(path[0])]
            # an answer from an address the sender did not call: it cannot match it to its connection
            wrong_source = any(p and p.get("dport") == sport and p["src"] != dst for p in answers)
        dropped = explain.dropped({"proto": "tcp", "sport": sport, "trace": tracer.since(trace_start)}, set())
        if outcome.settled(replied=False, dropped=dropped, no_route_back=False, wrong_source=wrong_source,
                           send_error=False):
            break
    elapsed = time.monotonic() - started
    onward = None
    if replied and proxy is not None:
        onward = _follow_relay(tracer, capture, proxy, sport, deadline, cancel)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, so the connection is gone at once
    record = _finish(tracer, capture, trace_start, wall_start, path, lambda p: p.get("sport") == sport)
    relay = None
    if onward is not None:
        relay_port, answered, refused, seconds = onward
        relay = {key: proxy[key] for key in ("program", "pid", "listen")}
        relay["raw"] = {
            "src": "host", "dst": proxy["to"], "proto": "tcp", "sport": relay_port, "dport": proxy["to_port"],
            "timeout": timeout, **_send_error(None), "refused": refused, "replied": answered,
            "mismatch": False, "route_back": False, "seconds": seconds,
            "conntrack": _conntrack_of(relay_port), **record, "src_address": _source_of(record, relay_port)}
    return {"src": src, "dst": dst, "proto": "tcp", "sport": sport, "dport": dport, "timeout": timeout,
            "conntrack": _conntrack_of(sport), **_send_error(send_error), "refused": refused, "replied": replied,
            "mismatch": wrong_source, "route_back": False, "seconds": round(elapsed, 4), **record,
            **({"relay": relay} if relay is not None else {})}


def _source_of(record: dict, sport: int | None) -> str:
    """The source address of the first frame of the connection from port `sport`, as captured."""
    for f in record["frames"]:
        packet = explain.parse_frame(bytes.fromhex(f["frame"]))
        if packet and sport is not None and packet.get("sport") == sport:
            return packet["src"]
    return ""


def _conntrack_of(sport: int | None) -> list[str]:
    """The conntrack entries of the TCP connection from source port `sport`."""
    if sport is None:
        return []
    return [line for line in _run(["conntrack", "-L", "-p", "tcp"]).stdout.splitlines()
            if line.count(" src=") >= 2 and f" sport={sport} " in line.split(" src=", 2)[1]]


def _follow_relay(tracer: Tracer, capture: Capture, proxy: dict, sport: int, deadline: float,
                  cancel: threading.Event | None) -> tuple[int | None, bool, bool, float] | None:
    """After docker-proxy accepted the probe's connection: wait for its second connection to be answered
    (or refused, or dropped). Returns that connection's (source port, answered, refused, seconds), or None
    when the probe's connection was not the proxy's (a DNAT took it on to the container)."""
    capture.drain()
    if _relay_frames(capture, proxy, sport)[3]:
        return None
    started = time.monotonic()
    while time.monotonic() < deadline and not (cancel and cancel.is_set()):
        relay_port, answered, refused, _own = _relay_frames(capture, proxy, sport)
        dropped = relay_port is not None and explain.dropped(
            {"proto": "tcp", "sport": relay_port, "trace": tracer.since(started - 0.05)}, set())
        if answered or refused or dropped:
            break
        time.sleep(0.003)
    capture.drain()
    relay_port, answered, refused, _own = _relay_frames(capture, proxy, sport)
    return relay_port, answered, refused, round(time.monotonic() - started, 4)


def icmp(tracer: Tracer, capture: Capture, src: str, dst: str, timeout: float, ident: int, packet: bytes,
         cancel: threading.Event | None = None) -> dict:
    """Send one ICMP echo (`packet`, with identifier `ident`) from `src` to `dst`, and record its way."""
    topology.check_node(src)
    ids = {ident}
    capture.watch(ids)
    dst_node = topology.owner(dst)
    path = topology.path(src, dst_node)
    dst_point = path[-1] if path and dst_node else None
    sender = socket_in(src, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    send_error = None      # the errno the sender's kernel refused the packet with
    replied = no_route_back = False
    started = time.monotonic()
    wall_start = time.time()
    try:
        sender.sendto(packet, (dst, 0))
    except OSError as exc:
        send_error = exc.errno
    trace_start = started - 0.001
    checked_back = False
    deadline = started + timeout
    while send_error is None and time.monotonic() < deadline and not (cancel and cancel.is_set()):
        ready, _, _ = select.select([sender], [], [], 0.003)
        if ready:
            data = sender.recv(65535)
            ihl = (data[0] & 0x0F) * 4
            icmp_type, _, _, got_id = struct.unpack_from("!BBHH", data, ihl)
            replied = icmp_type == 0 and got_id == ident
        if dst_point and not checked_back and dst_node != src:
            seen = [explain.parse_frame(bytes.fromhex(f["frame"])) for f in capture.seen_at(dst_point)]
            seen = [p for p in seen if p and p.get("icmp_type") == 8]
            if seen:
                checked_back = True
                no_route_back = not _has_route(dst_node, seen[0]["src"])
        dropped = explain.dropped({"proto": "icmp", "trace": tracer.since(trace_start)}, ids)
        if outcome.settled(replied=replied, dropped=dropped, no_route_back=no_route_back, wrong_source=False,
                           send_error=False):
            break
    elapsed = time.monotonic() - started
    sender.close()
    record = _finish(tracer, capture, trace_start, wall_start, path, lambda p: p.get("icmp_type") == 8)
    conntrack = [line for line in _run(["conntrack", "-L", "-p", "icmp"]).stdout.splitlines()
                 if f" id={ident} " in line]
    return {"src": src, "dst": dst, "proto": "icmp", "id": ident, "timeout": timeout,
            "conntrack": conntrack, **_send_error(send_error), "replied": replied,
            "route_back": no_route_back, "seconds": round(elapsed, 4), **record}
