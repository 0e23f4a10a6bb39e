"""Agent side of a probe: send one packet from a node, watch every point, trace verdicts.

Runs inside the lab's host process (`netkit.agent`), never in the notebook.

- Sockets are opened inside a node's network namespace by a thread that
  enters it with setns(2) and comes straight back; a socket stays bound to
  the namespace it was made in, so one thread can then read them all.
- Captures are AF_PACKET sockets, one per point, open *before* the probe is
  sent (no race with a capture that is still starting).
- The probe is an ICMP echo (built with scapy in the notebook's process) sent
  through a raw socket in the source node, so the node's own routing table
  and source address apply, exactly as for `ping`.
- Verdicts come from ``nft monitor trace`` in the host: a small table of the
  lab's own (``netkit_trace``, which iptables does not list) sets nftrace on
  probe packets before iptables' raw table sees them.

`probe()` returns as soon as the outcome is known: the reply arrived, a
verdict dropped the packet, or the receiver has no route back. Only when
none of these happens does it wait the full timeout.
"""

from __future__ import annotations

import ctypes
import os
import random
import re
import select
import socket
import struct
import subprocess
import threading
import time

from . import explain, topology

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
TRACE_TABLE = "netkit_trace"
HANDSHAKE_ID = 0xFFFF
HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)

_libc = ctypes.CDLL(None, use_errno=True)
_host_ns: int | None = None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def socket_in(node: str, family: int, kind: int, proto: int = 0, bind=None) -> socket.socket:
    """A socket that lives in `node`'s network namespace (optionally bound there)."""
    global _host_ns
    if _host_ns is None:
        _host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    if node == "host":
        sock = socket.socket(family, kind, proto)
        if bind is not None:
            sock.bind(bind)
        return sock
    fd = os.open(f"/run/netns/{node}", os.O_RDONLY)
    try:
        _setns(fd)
        try:
            sock = socket.socket(family, kind, proto)
            if bind is not None:
                sock.bind(bind)
        finally:
            _setns(_host_ns)
    finally:
        os.close(fd)
    return sock


def _run(argv: list[str], node: str = "host", stdin: str | None = None) -> subprocess.CompletedProcess:
    from .agent import ENV, node_argv
    return subprocess.run(node_argv(node, argv), input=stdin, capture_output=True, text=True, env=ENV)


class Tracer:
    """``nft monitor trace`` in the host, read into a list of (time, line)."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.proc = None

    def arm(self, ports: set[int] = frozenset()) -> None:
        """(Re)install the trace table (tracing TCP `ports` too) and make sure the monitor is listening."""
        mark = ("    icmp type { echo-request, echo-reply } meta nftrace set 1\n"
                "    tcp sport @ports meta nftrace set 1\n    tcp dport @ports meta nftrace set 1\n")
        chains = "".join(
            f"  chain {hook} {{ type filter hook {hook} priority -310; policy accept;\n"
            + (mark if hook in ("prerouting", "output") else "") + "  }\n"
            for hook in HOOKS)
        elements = f"elements = {{ {', '.join(str(p) for p in sorted(ports))} }}; " if ports else ""
        ruleset = (f"add table ip {TRACE_TABLE}\ndelete table ip {TRACE_TABLE}\n"
                   f"table ip {TRACE_TABLE} {{\n"
                   f"  comment \"netkit: marks probe packets for nft monitor trace and notes the hooks they pass\"\n"
                   f"  set ports {{ type inet_service; {elements}}}\n{chains}}}\n")
        done = _run(["nft", "-f", "-"], stdin=ruleset)
        if done.returncode != 0:
            raise RuntimeError(f"could not install the trace table: {done.stderr.strip()}")
        if self.proc is None or self.proc.poll() is not None:
            self._start_monitor()

    def _start_monitor(self) -> None:
        from .agent import ENV
        self.proc = subprocess.Popen(["nft", "monitor", "trace"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=ENV, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()
        # Wait for state: a traced packet to 127.0.0.1 shows the monitor is subscribed.
        sock = socket_in("host", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        deadline = time.monotonic() + 5
        try:
            while time.monotonic() < deadline:
                sock.sendto(_echo(HANDSHAKE_ID, 1), ("127.0.0.1", 0))
                if self._wait_for(f"icmp id {HANDSHAKE_ID} ", 0.05):
                    return
        finally:
            sock.close()
        raise RuntimeError("nft monitor trace did not start listening within 5 s")

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def _wait_for(self, needle: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if any(needle in line for _, line in self.lines[-50:]):
                    return True
            time.sleep(0.002)
        return False

    def since(self, start: float) -> list[str]:
        with self.lock:
            return [line for t, line in self.lines if t >= start]

    def forget(self, before: float) -> None:
        """Drop lines older than `before` (they belong to earlier probes)."""
        with self.lock:
            self.lines = [(t, line) for t, line in self.lines if t >= before]


class Capture:
    """An AF_PACKET socket on every point, read by one thread for the lab's whole life.

    Binding a packet socket costs the kernel a network-wide synchronisation
    (about 10 ms each), so the sockets are opened once and kept; a point whose
    interface was deleted or re-created is re-opened at the next probe.
    """

    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.sockets: dict[str, tuple[socket.socket, int]] = {}
        self.missing: list[str] = []
        self.wanted: set[int] = set()
        self.lock = threading.Lock()
        self.refresh()
        threading.Thread(target=self._loop, daemon=True).start()

    def refresh(self) -> None:
        """Open (or re-open) a socket on every point whose interface is new."""
        missing = []
        for point in topology.POINTS:
            node, ifname = topology.split_point(point)
            try:
                index = index_in(node, ifname)
            except OSError:
                missing.append(point)  # a student deleted it: nothing to watch there
                continue
            current = self.sockets.get(point)
            if current and current[1] == index:
                continue
            sock = socket_in(node, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL),
                             bind=(ifname, ETH_P_ALL))
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            with self.lock:
                self.sockets[point] = (sock, index)
        self.missing = missing

    def _loop(self) -> None:
        while True:
            with self.lock:
                by_socket = {sock: point for point, (sock, _) in self.sockets.items()}
            ready, _, _ = select.select(list(by_socket), [], [], 0.05)
            for sock in ready:
                try:
                    frame, ancillary, _, _ = sock.recvmsg(65535, 64)
                except OSError:
                    continue
                now = _kernel_time(ancillary)
                packet = explain.parse_frame(frame)
                if packet and (packet.get("id") in self.wanted or packet.get("sport") in self.wanted
                               or packet.get("dport") in self.wanted):
                    with self.lock:
                        self.frames.append({"point": by_socket[sock], "time": now, "frame": frame.hex()})

    def watch(self, ids: set[int]) -> None:
        with self.lock:
            self.frames = []
            self.wanted = set(ids)

    def seen_at(self, point: str) -> list[dict]:
        with self.lock:
            return [f for f in self.frames if f["point"] == point]

    def done(self) -> list[dict]:
        with self.lock:
            frames, self.frames, self.wanted = self.frames, [], set()
        return frames


def _kernel_time(ancillary) -> float:
    """When the kernel saw the frame (SO_TIMESTAMPNS), as time.time() would say."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9
    return time.time()


def index_in(node: str, ifname: str) -> int:
    """The interface index of `ifname` inside `node` (OSError if there is none)."""
    global _host_ns
    if node == "host":
        return socket.if_nametoindex(ifname)
    if _host_ns is None:
        _host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    fd = os.open(f"/run/netns/{node}", os.O_RDONLY)
    try:
        _setns(fd)
        try:
            return socket.if_nametoindex(ifname)
        finally:
            _setns(_host_ns)
    finally:
        os.close(fd)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo(ident: int, seq: int, payload: bytes = b"netkit probe") -> bytes:
    """An ICMP echo request, by hand (for the monitor's handshake; probes come built by scapy)."""
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload


def rule_names(visits: list[dict]) -> dict:
    """For every chain whose rules a probe met: [handle, nft text, iptables text], in order.

    A traced rule is named by its handle when nft prints one, else by its
    nft text; either way its position in the chain gives the iptables spelling.
    """
    names = {}
    for table, chain in {(v["table"], v["chain"]) for v in visits
                         if not v["table"].startswith("netkit") and
                         any(d[0] == "rule" for d in v["decisions"])}:
        listed = _run(["nft", "-a", "list", "chain", "ip", table, chain]).stdout
        rules = re.findall(r"^\s+(?!chain |type )(.*?)\s*# handle (\d+)\s*$", listed, re.M)
        spelled = [line for line in _run(["iptables", "-t", table, "-S", chain]).stdout.splitlines()
                   if line.startswith("-A ")]
        if len(rules) == len(spelled):
            names[f"{table} {chain}"] = [[int(handle), explain.plain_rule(text), iptables]
                                         for (text, handle), iptables in zip(rules, spelled)]
    return names


OWN_CAPTURE_FILTERS = {"": None, "icmp": socket.IPPROTO_ICMP, "tcp": socket.IPPROTO_TCP, "ip": None}
"""The filters netkit's own capture understands (where tcpdump cannot run), by IP protocol."""


def watch_point(node: str, ifname: str, expression: str, during) -> list[str]:
    """What one point saw while `during()` ran, as tcpdump -n prints it (icmp, tcp or all IPv4)."""
    proto = OWN_CAPTURE_FILTERS[expression.strip()]
    sock = socket_in(node, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL), bind=(ifname, ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    seen: list[tuple[float, bytes]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.02)
            if ready:
                frame, ancillary, _, _ = sock.recvmsg(65535, 64)
                seen.append((_kernel_time(ancillary), frame))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        during()
        time.sleep(0.05)
    finally:
        stop.set()
        reader.join()
        sock.close()
    lines = []
    for when, frame in seen:
        packet = explain.parse_frame(frame)
        if packet is None or (proto is not None and packet["proto"] != proto):
            continue
        stamp = time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when % 1 * 1e6):06d}"
        lines.append(f"{stamp} IP {explain.describe(packet)}\n")
    return lines


def _has_route(node: str, address: str) -> bool:
    return _run(["ip", "route", "get", address], node=node).returncode == 0


class Prober:
    """What a lab keeps between probes: the trace monitor and the captures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tracer: Tracer | None = None
        self.capture: Capture | None = None

    def warm(self) -> None:
        """Get ready for the first probe (called in the background once the lab is built)."""
        with self.lock:
            self._ready()

    def _ready(self) -> None:
        if self.tracer is None:
            self.tracer = Tracer()
        self.tracer.arm()
        if self.capture is None:
            self.capture = Capture()
        else:
            self.capture.refresh()

    def tcp(self, src: str, dst: str, port: int, timeout: float = 1.0, cancel=None) -> dict:
        with self.lock:
            self._ready()
            return tcp(self.tracer, self.capture, src, dst, port, timeout, cancel)

    def icmp(self, src: str, dst: str, timeout: float = 0.5, ident: int | None = None,
             packet: bytes | None = None, cancel=None) -> dict:
        with self.lock:
            self._ready()
            return icmp(self.tracer, self.capture, src, dst, timeout, ident, packet, cancel)


def _finish(tracer: Tracer, capture: Capture, trace_start: float, wall_start: float, path, first_kind) -> dict:
    """What every probe returns once its outcome is known: frames, trace lines, rule names."""
    time.sleep(0.02)  # let the last sightings and trace lines of the decisive moment arrive
    frames = capture.done()
    trace = tracer.since(trace_start)
    tracer.forget(trace_start)
    src_address = ""
    for f in frames:
        packet = explain.parse_frame(bytes.fromhex(f["frame"]))
        if path and f["point"] == path[0] and packet and first_kind(packet):
            src_address = packet["src"]
            break
    for f in frames:
        f["time"] = round(f["time"] - wall_start, 6)
    frames.sort(key=lambda f: f["time"])
    return {"frames": frames, "trace": trace, "rules": rule_names(explain.parse_trace(trace)),
            "src_address": src_address, "started": wall_start, "missing_points": capture.missing,
            "points": [p for p in topology.POINTS if p not in capture.missing]}


def tcp(tracer: Tracer, capture: Capture, src: str, dst: str, dport: int, timeout: float = 1.0,
        cancel: threading.Event | None = None) -> dict:
    """Open a TCP connection from `src` to `dst`:`dport` (the SYN is the probe) and record its way."""
    import errno
    topology.check_node(src)
    sport = random.randrange(40000, 60000)
    tracer.arm({sport})
    capture.watch({sport})
    path = topology.path(src, topology.owner(dst))
    sock = socket_in(src, socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setblocking(False)
    send_error = refused = None
    replied = mismatch = False
    started, wall_start = time.monotonic(), time.time()
    trace_start = started - 0.001
    try:
        sock.bind(("0.0.0.0", sport))
        code = sock.connect_ex((dst, dport))
    except OSError as exc:
        code = exc.errno
    if code not in (0, errno.EINPROGRESS):
        send_error = os.strerror(code)
    deadline = started + timeout
    while send_error is None and time.monotonic() < deadline and not (cancel and cancel.is_set()):
        _, writable, _ = select.select([], [sock], [], 0.003)
        if writable:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0:
                replied = True
            elif code == errno.ECONNREFUSED:
                refused = os.strerror(code)
            else:
                send_error = os.strerror(code)
            break
        visits = explain.parse_trace(tracer.since(trace_start))
        if any(sport in (v.get("sport"), v.get("dport")) and not v["table"].startswith("netkit")
               and any(d[-1] in ("DROP", "REJECT") for d in v["decisions"]) for v in visits):
            break
        if path:
            answers = [explain.parse_frame(bytes.fromhex(f["frame"])) for f in capture.seen_at(path[0])]
            if any(p and p.get("dport") == sport and p["src"] != dst for p in answers):
                mismatch = True  # an answer from an address the sender did not call: it cannot match it
                break
    elapsed = time.monotonic() - started
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, so the connection is gone at once
    record = _finish(tracer, capture, trace_start, wall_start, path, lambda p: p.get("sport") == sport)
    conntrack = [line for line in _run(["conntrack", "-L", "-p", "tcp"]).stdout.splitlines()
                 if f" sport={sport} " in line.split(" src=", 2)[1] if line.count(" src=") >= 2]
    return {"src": src, "dst": dst, "proto": "tcp", "sport": sport, "dport": dport, "timeout": timeout,
            "conntrack": conntrack, "send_error": send_error, "refused": refused, "replied": replied,
            "mismatch": mismatch, "route_back": False, "seconds": round(elapsed, 4), **record}


def icmp(tracer: Tracer, capture: Capture, src: str, dst: str, timeout: float = 0.5,
         ident: int | None = None, packet: bytes | None = None, cancel: threading.Event | None = None) -> dict:
    """Send one ICMP echo from `src` to `dst`; the records `explain.build` turns into a Journey."""
    topology.check_node(src)
    if ident is None:
        ident = random.randrange(1, 0xFFFE)
    if packet is None:
        packet = _echo(ident, 1)
    ids = {ident}
    capture.watch(ids)
    dst_node = topology.owner(dst)
    path = topology.path(src, dst_node)
    dst_point = path[-1] if path and dst_node else None
    sender = socket_in(src, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    send_error = None
    replied = route_back = False
    started = time.monotonic()
    wall_start = time.time()
    try:
        sender.sendto(packet, (dst, 0))
    except OSError as exc:
        send_error = exc.strerror
    trace_start = started - 0.001
    checked_back = False
    deadline = started + timeout
    while send_error is None and time.monotonic() < deadline and not (cancel and cancel.is_set()):
        ready, _, _ = select.select([sender], [], [], 0.003)
        if ready:
            data = sender.recv(65535)
            ihl = (data[0] & 0x0F) * 4
            icmp_type, _, _, got_id = struct.unpack_from("!BBHH", data, ihl)
            if icmp_type == 0 and got_id == ident:
                replied = True
                break
        visits = explain.parse_trace(tracer.since(trace_start))
        if any(v.get("icmp_id") in ids and not v["table"].startswith("netkit")
               and any(d[-1] in ("DROP", "REJECT") for d in v["decisions"]) for v in visits):
            break
        if dst_point and not checked_back and dst_node != src:
            seen = [explain.parse_frame(bytes.fromhex(f["frame"])) for f in capture.seen_at(dst_point)]
            seen = [p for p in seen if p and p.get("icmp_type") == 8]
            if seen:
                checked_back = True
                if not _has_route(dst_node, seen[0]["src"]):
                    route_back = True
                    break
    elapsed = time.monotonic() - started
    sender.close()
    record = _finish(tracer, capture, trace_start, wall_start, path, lambda p: p.get("icmp_type") == 8)
    conntrack = [line for line in _run(["conntrack", "-L", "-p", "icmp"]).stdout.splitlines()
                 if f" id={ident} " in line]
    return {"src": src, "dst": dst, "proto": "icmp", "id": ident, "timeout": timeout,
            "conntrack": conntrack, "send_error": send_error, "replied": replied,
            "route_back": route_back, "seconds": round(elapsed, 4), **record}
