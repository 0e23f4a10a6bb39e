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

import os
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
        self._wake, self._woken = os.pipe()      # stop() writes a byte: the loop's select returns at once
        self._stopped = False
        self.refresh()
        self._loop_thread = threading.Thread(target=self._loop, daemon=True)
        self._loop_thread.start()

    def refresh(self) -> None:
        """Open (or re-open) a socket on every point whose interface is new, all at once: each bind waits
        for the kernel's network-wide synchronisation, and waits made side by side overlap."""
        missing, todo = [], []
        for point in topology.POINTS:
            node, ifname = topology.split_point(point)
            try:
                index = index_in(node, ifname)
            except OSError:
                missing.append(point)  # a student deleted it: nothing to watch there
                continue
            current = self.sockets.get(point)
            if not (current and current[1] == index):
                todo.append((point, node, ifname, index))
        opened: dict[str, tuple[socket.socket, int]] = {}
        failed: list[BaseException] = []

        def open_one(point: str, node: str, ifname: str, index: int) -> None:
            try:
                sock = socket_in(node, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL),
                                 bind=(ifname, ETH_P_ALL))
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                opened[point] = (sock, index)
            except BaseException as exc:
                failed.append(exc)

        workers = [threading.Thread(target=open_one, args=item, daemon=True) for item in todo]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        with self.lock:
            self.sockets.update(opened)
        self.missing = missing
        if failed:
            raise failed[0]

    def stop(self) -> None:
        """End the loop and close every socket, side by side (each close waits for a synchronisation too,
        and the process's exit would close them one after another)."""
        self._stopped = True
        os.write(self._woken, b"x")
        self._loop_thread.join(1.0)
        with self.lock:
            sockets, self.sockets = [sock for sock, _ in self.sockets.values()], {}
        closing = [threading.Thread(target=sock.close, daemon=True) for sock in sockets]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(1.0)

    def _loop(self) -> None:
        while not self._stopped:
            with self.lock:
                by_socket = {sock: point for point, (sock, _) in self.sockets.items()}
            ready, _, _ = select.select([*by_socket, self._wake], [], [], 0.05)
            with self.lock:
                self.passes += 1
            for sock in ready:
                if sock == self._wake:
                    continue
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
