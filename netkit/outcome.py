"""A probe's outcome, decided in one place: what happened, where it stopped, what stopped or rewrote it.

Pure code. `decide` reads a journey's sightings, verdicts and conntrack
entries, plus the few facts only the sender and the receiver know (`Facts`:
did the reply arrive, did the sender's kernel refuse, is there a route back),
and returns one `Outcome`. Everything else reads that value: the sentence a
student reads (`netkit.explain.sentence`), the pictures (`netkit.plots`), the
exercises' checks and the dashboard. Nothing parses prose to learn what
happened; a test keeps it so.

The vocabulary:

- `Result`: what happened, one word (delivered, dropped, refused, ...).
- ``packet``: which packet stopped, the request or the reply.
- ``last`` / ``next``: the last point where that packet was seen, and the
  point it should have reached next: the "died here" mark sits between them.
- ``node``: the node where it stopped (the host for a netfilter drop, the
  sender for "no route", the receiver for "no route back").
- ``hook`` and ``verdict``: for a drop, the netfilter hook and the rule or
  policy (`netkit.journey.Verdict`); a rule in a user chain (DOCKER-USER)
  acted at the hook it was jumped to from (`netkit.netfilter.hook_of`).
- ``rewrites``: each address NAT changed, on which packet, from what to
  what, first seen where, and by which target (MASQUERADE, DNAT, or
  conntrack undoing it on the reply).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import Enum

from . import topology
from .errors import BadArgument
from .i18n import _
from .netfilter import DEST_NAT, SOURCE_NAT, hook_of


class Result(str, Enum):
    """What became of a probe, one word each (``journey.outcome.result == Result.NO_ROUTE``)."""

    DELIVERED = "delivered"          # the answer came back to the sender
    DROPPED = "dropped"              # a netfilter rule or policy dropped it
    NO_ROUTE = "no-route"            # the sender has no route to the destination
    SEND_ERROR = "send-error"        # the sender's kernel refused to send it, for another reason
    NEVER_LEFT = "never-left"        # no point saw the request leave the sender (its ARP got no answer)
    NO_ROUTE_BACK = "no-route-back"  # the receiver got the request but has no route back to its source
    REFUSED = "refused"              # TCP: the SYN was answered with a reset (nothing listens there)
    WRONG_SOURCE = "wrong-source"    # TCP: the answer came from an address the sender never called
    REPLY_LOST = "reply-lost"        # the reply was seen on its way but never reached the sender
    NO_REPLY = "no-reply"            # nothing came back in time, and nothing says why

    def __str__(self) -> str:
        return self.value


NO_ROUTE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})   # a send refused for want of a route


@dataclass(frozen=True)
class Facts:
    """What only the ends of the probe know, as the agent recorded it (no interpretation)."""

    replied: bool = False            # the sender got its answer (ICMP echo reply, or SYN-ACK)
    send_errno: int | None = None    # the errno the sender's kernel refused the send with (decides)
    send_error: str = ""             # its strerror, as the agent wrote it (shown, never read)
    refused: bool = False            # TCP: connect() failed with "Connection refused"
    no_route_back: bool = False      # the receiver's routing table has no way back to the request's source
    wrong_source: bool = False       # TCP: the sender saw an answer from an address it did not call
    timeout: float = 0.0

    @classmethod
    def from_raw(cls, raw: dict) -> "Facts":
        """The facts of a probe record (`netkit.probe`). A record from before the errno was kept (a
        `send_error` text and no `send_errno`) is refused: record it again (tests/data/record.py)."""
        if raw.get("send_error") and raw.get("send_errno") is None:
            raise BadArgument(_("a probe record with a send error ({error}) but no errno predates the errno "
                                "being recorded; record it again (tests/data/record.py, "
                                "tools/record_replays.py)").format(error=raw["send_error"]))
        return cls(replied=bool(raw.get("replied")), send_errno=raw.get("send_errno"),
                   send_error=raw.get("send_error") or "",
                   refused=bool(raw.get("refused")), no_route_back=bool(raw.get("route_back")),
                   wrong_source=bool(raw.get("mismatch")), timeout=float(raw.get("timeout") or 0.0))


@dataclass(frozen=True)
class Rewrite:
    """One address that NAT (or conntrack, undoing it) changed on the way."""

    packet: str        # "request" or "reply"
    field: str         # "src" or "dst"
    before: str
    after: str
    point: str         # the first point where the new address was seen
    by: str            # "MASQUERADE", "SNAT", "DNAT", "REDIRECT", or "conntrack" (undoing it on the reply)


@dataclass(frozen=True)
class Outcome:
    """What happened to one probe; see the module's docstring for each field."""

    result: Result
    packet: str | None = None        # "request" or "reply": the packet that stopped (None if delivered)
    last: str | None = None          # last point where that packet was seen
    next: str | None = None          # the point it should have reached next
    node: str | None = None          # the node where it stopped
    hook: str | None = None          # netfilter hook of the drop (PREROUTING, FORWARD, ...)
    verdict: object = None           # the Verdict that dropped it
    answered_by: str | None = None   # REFUSED / WRONG_SOURCE: the address that answered
    error: str = ""                  # NO_ROUTE / SEND_ERROR: what the sender's kernel said
    rewrites: tuple[Rewrite, ...] = ()

    @property
    def delivered(self) -> bool:
        return self.result is Result.DELIVERED

    @property
    def at(self) -> str | None:
        """The point where the "died here" mark goes: the last point the packet was seen, else the next."""
        return self.last or self.next

    def to_dict(self) -> dict:
        from dataclasses import asdict
        data = asdict(self)
        data["result"] = self.result.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Outcome":
        from .journey import Verdict
        data = dict(data)
        data["result"] = Result(data["result"])
        if data.get("verdict"):
            data["verdict"] = Verdict(**data["verdict"])
        data["rewrites"] = tuple(Rewrite(**r) for r in data.get("rewrites", ()))
        return cls(**data)


# -- deciding --------------------------------------------------------------------------


def _path(journey) -> list[str]:
    return [hop.point for hop in journey.hops if hop.on_path]


def rewrites(journey) -> tuple[Rewrite, ...]:
    """Every address change along the path, in the order each packet travels, named by what made it."""
    found = []
    path = _path(journey)
    for packet, way in (("request", path), ("reply", path[::-1])):
        seen = [getattr(journey.hop(p), packet) for p in way if getattr(journey.hop(p), packet) is not None]
        for before, after in zip(seen, seen[1:]):
            for field in ("src", "dst"):
                old, new = getattr(before, field), getattr(after, field)
                if old != new:
                    found.append(Rewrite(packet, field, old, new, after.point, _rewritten_by(journey, packet, field)))
    return tuple(found)


def _rewritten_by(journey, packet: str, field: str) -> str:
    if packet == "reply":
        return "conntrack"   # a reply is rewritten by conntrack undoing the request's NAT
    wanted = SOURCE_NAT if field == "src" else DEST_NAT
    met = [v.verdict for v in journey.verdicts if v.kind == "request" and v.verdict in wanted]
    return met[0] if met else ("MASQUERADE" if field == "src" else "DNAT")


def _after(way: list[str], point: str | None) -> str | None:
    if point is None:
        return way[0] if way else None
    index = way.index(point)
    return way[index + 1] if index + 1 < len(way) else None


def decide(journey, facts: Facts, dst_node: str | None) -> Outcome:
    """The one outcome of `journey` (built without one), given what the ends of the probe said."""
    changed = rewrites(journey)
    path = _path(journey)
    request_seen = [p for p in path if journey.seen(p, "request")]
    reply_seen = [p for p in path[::-1] if journey.seen(p, "reply")]
    if facts.send_errno is not None:
        result = Result.NO_ROUTE if facts.send_errno in NO_ROUTE_ERRNOS else Result.SEND_ERROR
        return Outcome(result, "request", None, path[0] if path else None, journey.src, error=facts.send_error)
    if facts.replied:
        return Outcome(Result.DELIVERED, rewrites=changed)

    dropped = next((v for v in journey.verdicts if v.dropped), None)
    if dropped is not None:
        way, seen = (path, request_seen) if dropped.kind == "request" else (path[::-1], reply_seen)
        last = seen[-1] if seen else None
        return Outcome(Result.DROPPED, dropped.kind, last, _after(way, last) if way else None, dropped.node,
                       hook=hook_of(journey, dropped), verdict=dropped, rewrites=changed)

    if journey.proto == "tcp":
        answer = _answer(journey)
        if facts.wrong_source and answer is not None:
            return Outcome(Result.WRONG_SOURCE, "reply", answer.point, None, journey.src,
                           answered_by=answer.src, rewrites=changed)
        if facts.refused:
            who = answer.src if answer is not None else journey.dst
            last = request_seen[-1] if request_seen else None
            return Outcome(Result.REFUSED, "request", last, None, topology.owner(who) or journey.src,
                           answered_by=who, rewrites=changed)

    if facts.no_route_back and dst_node:
        # The receiver never sent its reply: the reply stops before the first point of its way back.
        return Outcome(Result.NO_ROUTE_BACK, "reply", None, path[-1] if path else None, dst_node,
                       rewrites=changed)
    if reply_seen:
        last = reply_seen[-1]
        return Outcome(Result.REPLY_LOST, "reply", last, _after(path[::-1], last), rewrites=changed)
    if not request_seen:
        return Outcome(Result.NEVER_LEFT, "request", None, path[0] if path else None, journey.src,
                       rewrites=changed)
    last = request_seen[-1]
    return Outcome(Result.NO_REPLY, "request", last, _after(path, last), rewrites=changed)


def _answer(journey):
    """The answer as the sender got it (its first point), or wherever it was seen first."""
    path = _path(journey)
    if path and journey.hop(path[0]).reply is not None:
        return journey.hop(path[0]).reply
    return journey.first("reply")


def settled(*, replied: bool, dropped: bool, no_route_back: bool, wrong_source: bool, send_error: bool,
            refused: bool = False) -> bool:
    """Is the outcome known, so the agent may stop waiting? (The same facts `decide` reads.)"""
    return replied or dropped or no_route_back or wrong_source or send_error or refused
