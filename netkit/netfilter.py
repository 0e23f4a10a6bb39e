"""Netfilter's words, defined once, and the one answer to "at which hook did this verdict act?".

Pure code, standard library only: the model (`netkit.outcome`, `netkit.journey`),
the ladder (`netkit.hooks`) and the agent's trace (`netkit.trace`) all read it.

A journey records the hooks a packet passed in the host (``journey.hooks``:
kind, HOOK, in, out) and the verdicts it met (``journey.verdicts``), in the
order the kernel's trace gave them. `passes` lays the verdicts on the hooks:
one in a built-in chain belongs to the next hook of that name, one in a user
chain (DOCKER-USER, DOCKER, an nft chain) to the hook it was jumped to from.
`hook_of` reads that: the outcome's ``hook``, the map's hook label, the ✘'s
words and the ladder's lines all ask it, so a drop in DOCKER-USER is a drop
in FORWARD everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
"""The netfilter hooks of the IPv4 stack, in the order a forwarded packet passes them (OUTPUT aside)."""
SOURCE_NAT = ("MASQUERADE", "SNAT")
"""The targets that rewrite a packet's source address."""
DEST_NAT = ("DNAT", "REDIRECT")
"""The targets that rewrite a packet's destination address."""


@dataclass(frozen=True)
class HookPass:
    """One hook a packet passed in the host, with the verdicts it met there (in user chains too)."""

    kind: str                      # "request" or "reply"
    hook: str                      # one of HOOKS
    iif: str                       # the device it came in on ("" for the host's own packet)
    oif: str                       # the device it goes out on ("" when not yet routed)
    verdicts: tuple[Any, ...] = ()  # the `netkit.journey.Verdict`s met at this hook, in order


def passes(journey, kind: str) -> list[HookPass]:
    """Each hook `kind` ("request" or "reply") passed in the host, in order, with the verdicts met there.

    With no hook list recorded, the verdicts' own built-in chains say which hooks were passed.
    Each verdict is met at the hook of its built-in chain; one in another chain at the hook where the
    packet was when it got there, unless that hook comes before routing and the verdict already has an
    output device (see below).
    """
    found: list[list] = [[hook, iif, oif, []] for k, hook, iif, oif in journey.hooks if k == kind]
    verdicts = [v for v in journey.verdicts if v.kind == kind]
    if not found:
        for v in verdicts:
            if v.chain in HOOKS and not (found and found[-1][0] == v.chain):
                found.append([v.chain, v.iif, v.oif, []])
    at = 0
    for v in verdicts:
        if v.chain in HOOKS:
            later = [i for i in range(at, len(found)) if found[i][0] == v.chain]
            at = later[0] if later else next((i for i, h in enumerate(found) if h[0] == v.chain), at)
        elif found and v.oif and not found[at][2]:
            # A user chain's verdict with an output device cannot belong to a hook before routing
            # (PREROUTING, INPUT): it was met at the next hook that has the same devices. (A base chain
            # iptables does not name, as in Docker's nftables table, is met so: its filter-FORWARD.)
            at = next((i for i in range(at, len(found)) if (found[i][1], found[i][2]) == (v.iif, v.oif)), at)
        if found:
            found[at][3].append(v)
    return [HookPass(kind, hook, iif, oif, tuple(met)) for hook, iif, oif, met in found]


def hook_of(journey, verdict) -> str | None:
    """The hook `verdict` (one of ``journey.verdicts``) acted at: its chain, or for a user chain the hook it
    was jumped to from; None when neither is known (a user chain and no hook recorded)."""
    found = passes(journey, verdict.kind)
    for same in (lambda v: v is verdict, lambda v: v == verdict):   # the very verdict, else an equal one
        for one in found:                                         # (an outcome read back from JSON)
            if any(same(v) for v in one.verdicts):
                return one.hook
    return verdict.chain if verdict.chain in HOOKS else None
