"""Sockets in a node's network namespace, made from the agent without moving the agent.

Runs inside the lab's host process (`netkit.agent`). A socket stays bound to
the network namespace it was created in, so the calling thread enters the
node's namespace with setns(2), makes the socket, and comes straight back;
afterwards any thread may use it. Python's ctypes reaches setns directly.
(pyroute2's NetNS would do this through a helper process per namespace, one
more process for each node; here a socket is all that is needed.)
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.Lock()        # one thread in a foreign namespace at a time, and always back
_host: int | None = None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def inside(node: str, make):
    """`make()`, called while this thread is in `node`'s network namespace (host: as it is)."""
    global _host
    if node == "host":
        return make()
    with _lock:
        if _host is None:
            _host = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{node}", os.O_RDONLY)
        try:
            _setns(fd)
            try:
                return make()
            finally:
                _setns(_host)
        finally:
            os.close(fd)


def socket_in(node: str, family: int, kind: int, proto: int = 0, bind=None) -> socket.socket:
    """A socket that lives in `node`'s network namespace (optionally bound there).

    Only the socket is made inside the namespace: a socket binds in its own namespace, whichever the
    thread is in, so the bind (for a packet socket, a network-wide synchronisation of about 10 ms) runs
    back in the host, and several threads can bind at once."""
    sock = inside(node, lambda: socket.socket(family, kind, proto))
    if bind is not None:
        try:
            sock.bind(bind)
        except BaseException:
            sock.close()
            raise
    return sock


def index_in(node: str, ifname: str) -> int:
    """The interface index of `ifname` inside `node` (OSError if there is none)."""
    return inside(node, lambda: socket.if_nametoindex(ifname))


def name_of(index: int, node: str = "host") -> str:
    """The name of interface `index` in `node` ("" if there is none)."""
    try:
        return inside(node, lambda: socket.if_indextoname(index))
    except OSError:
        return ""
