"""Waiting until the host's links report their state, by netlink events (through pyroute2).

Runs inside the lab's host process, in the background after a build. The
kernel tells a link's operational state late: a bridge's carrier change is
batched by linkwatch for up to a second, machine-wide, so right after the
build ``ip link`` may still print ``hwchiu0 ... state UNKNOWN``. Traffic
does not wait for that report, and neither does `Lab()`; only a command that
prints link states waits for it (see `netkit.agent`), so the student reads
``state UP`` as the article shows.

The wait subscribes to the link events first, then reads every link's state
afresh after each event until none that is up is waiting: an event says
"look again", never what to believe, since changes can arrive merged.
"""

from __future__ import annotations

import select
import time

IFF_UP = 0x1


def waiting(ipr) -> list[str]:
    """The links that are up (administratively) but do not report operstate UP yet; lo never does."""
    names = []
    for link in ipr.get_links():
        name = link.get_attr("IFLA_IFNAME")
        if name != "lo" and link["flags"] & IFF_UP and link.get_attr("IFLA_OPERSTATE") != "UP":
            names.append(name)
    return names


def wait_until_up(seconds: float = 2.0) -> list[str]:
    """Wait until every link of this namespace that is up reports it; returns the ones still waiting."""
    from pyroute2 import IPRoute

    deadline = time.monotonic() + seconds
    with IPRoute() as ipr:
        ipr.bind()                       # subscribed before the first look: no change falls in between
        while True:
            left = waiting(ipr)
            remaining = deadline - time.monotonic()
            if not left or remaining <= 0:
                return left
            ready, _, _ = select.select([ipr.fileno()], [], [], remaining)
            if ready:
                ipr.get()                # the events themselves are not trusted: look again
