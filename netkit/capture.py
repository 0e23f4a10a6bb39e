"""Where a probe's packets appear: one packet socket on every point of the lab.

Runs inside the lab's host process (`netkit.agent`). A point is
``node:ifname``; its socket is an AF_PACKET socket made in the node's network
namespace (`netkit.netns`) and bound to that interface, so every frame the
interface passes is seen, labelled with the point, and stamped by the kernel
(SO_TIMESTAMPNS) when it passed. The sockets are open *before* a probe is
sent, so nothing is missed while a capture starts.

`watch_point` is the same idea for one point while a command runs: what
``lab.tcpdump`` prints where tcpdump itself cannot run (in a user namespace).
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

from . import explain, topology
from .netns import index_in, socket_in

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


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
        self.passes = 0
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
            with self.lock:
                self.passes += 1
            for sock in ready:
                try:
                    frame, ancillary, _, _ = sock.recvmsg(65535, 64)
                except OSError:
                    continue
                now = kernel_time(ancillary)
                packet = explain.parse_frame(frame)
                if packet and (packet.get("id") in self.wanted or packet.get("sport") in self.wanted
                               or packet.get("dport") in self.wanted):
                    with self.lock:
                        self.frames.append({"point": by_socket[sock], "time": now, "frame": frame.hex()})

    def drain(self, seconds: float = 1.0) -> None:
        """Wait until every frame the kernel has queued on any point is read (the loop's current pass done)."""
        from .trace import pending
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                socks = [sock for sock, _ in self.sockets.values()]
                passes = self.passes
            if not any(pending(sock.fileno()) for sock in socks):
                time.sleep(0.001)
                with self.lock:
                    if self.passes != passes or any(pending(s.fileno()) for s in socks):
                        continue
                return
            time.sleep(0.001)

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


def kernel_time(ancillary) -> float:
    """When the kernel saw the frame (SO_TIMESTAMPNS), as time.time() would say."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9
    return time.time()


OWN_CAPTURE_FILTERS = {"": None, "icmp": socket.IPPROTO_ICMP, "tcp": socket.IPPROTO_TCP, "ip": None}
"""The filters netkit's own capture understands (where tcpdump cannot run), by IP protocol."""


def watch_point(node: str, ifname: str, expression: str, during, verbose: bool = False) -> list[str]:
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
                seen.append((kernel_time(ancillary), frame))

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
        if verbose:   # as tcpdump -vvvnn prints the IP header, on a line of its own
            names = {1: "ICMP", 6: "TCP", 17: "UDP"}
            kind = names.get(packet["proto"], str(packet["proto"]))
            lines.append(f"{stamp} IP (ttl {packet['ttl']}, proto {kind} ({packet['proto']}), "
                         f"length {packet['length'] + 20})\n    {explain.describe(packet)}\n")
        else:
            lines.append(f"{stamp} IP {explain.describe(packet)}\n")
    return lines
