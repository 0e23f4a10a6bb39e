"""Waiting until the host's links report their state, woken by netlink's link events.

Runs inside the lab's host process, in the background after a build. The
kernel tells a link's operational state late: a bridge's carrier change is
batched by linkwatch for up to a second, machine-wide, so right after the
build ``ip link`` may still print ``hwchiu0 ... state UNKNOWN``. Traffic
does not wait for that report, and neither does `Lab()`; only a command that
prints link states waits for it (see `netkit.agent`), so the student reads
``state UP`` as the article shows.

The wait subscribes to the link events first (RTMGRP_LINK, on a plain
netlink socket), then reads every link's state afresh from the lab's own
/sys after each event until none that is up is waiting: an event only says
"look again", so its content is never parsed.
"""

from __future__ import annotations

import os
import select
import socket
import time

IFF_UP = 0x1
NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
SYS_NET = "/sys/class/net"


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read().strip()
    except OSError:
        return ""       # the link went away while we looked


def waiting(root: str = SYS_NET) -> list[str]:
    """The links that are up (administratively) but do not report operstate up yet; lo never does."""
    names = []
    for name in sorted(os.listdir(root)):
        flags = _read(f"{root}/{name}/flags")
        if name != "lo" and flags and int(flags, 16) & IFF_UP and _read(f"{root}/{name}/operstate") != "up":
            names.append(name)
    return names


def wait_until_up(seconds: float = 2.0, root: str = SYS_NET) -> list[str]:
    """Wait until every link of this namespace that is up reports it; returns the ones still waiting."""
    deadline = time.monotonic() + seconds
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as events:
        events.bind((0, RTMGRP_LINK))    # subscribed before the first look: no change falls in between
        while True:
            left = waiting(root)
            remaining = deadline - time.monotonic()
            if not left or remaining <= 0:
                return left
            ready, _, _ = select.select([events], [], [], remaining)
            if ready:
                events.recv(1 << 16)     # the events themselves are not trusted: look again
