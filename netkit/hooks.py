"""Which netfilter hooks a packet passed between two points of the lab, and what acted there.

Pure code, read by the pictures (`netkit.plots`): a journey's hooks
(``journey.hooks``: kind, HOOK, in, out) and verdicts (``journey.verdicts``)
are laid out along the packet's way, one list per *step* of the ladder (from
one point where the packet was seen to the next):

- the hooks are cut into passes through the host's stack, each starting at
  PREROUTING (a packet coming in) or OUTPUT (one the host sends);
- a pass goes to the step between the points its way in and out stand for:
  in on hwchiu0 and out on eth0 is the step host:hwchiu0 -> host:eth0; a
  bridged frame (in and out on hwchiu0) the step from port to port
  (host:veth0 -> host:veth1); the host's own packets start (or end) at its
  socket (None);
- each verdict is written on the line of the hook it was met at (one in a
  user chain such as DOCKER on the hook it was jumped to from), with the
  routing (or the bridge's) decision after PREROUTING / OUTPUT, and
  conntrack undoing a NAT on the reply where the kernel does it: the
  destination in PREROUTING, the source in POSTROUTING.

Nothing here decides what happened to the probe: that is ``journey.outcome``
(`netkit.outcome`), whose rewrites and mark are read, not re-derived.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from .i18n import _
from .journey import Journey, Mark
from .netfilter import DEST_NAT, HOOKS, SOURCE_NAT, HookPass, hook_of, passes
from .topology import BRIDGE


def path(journey: Journey) -> list[str]:
    """The points on the packet's way, in order."""
    return [hop.point for hop in journey.hops if hop.on_path]


def seen_along(journey: Journey, kind: str) -> list[str]:
    """The on-path points where `kind` was seen, in the order that packet travels."""
    way = path(journey)
    if kind == "reply":
        way.reverse()
    return [p for p in way if journey.seen(p, kind)]


def _undone(journey: Journey, rewrite) -> str:
    """The request's NAT a reply's rewrite undoes (reply dst mirrors request src): ``"MASQUERADE"``."""
    mirror = "src" if rewrite.field == "dst" else "dst"
    made = [r.by for r in journey.outcome.rewrites if r.packet == "request" and r.field == mirror]
    return made[0] if made else "NAT"


def joined(items, how: str) -> str:
    """`items` joined two by two with `how`, a sentence with {first} and {second}: ``_("{first} and {second}")``
    joins ["src", "dst"] as "src and dst" (in the language in use)."""
    items = list(items)
    return reduce(lambda first, second: how.format(first=first, second=second), items) if items else ""


def tag(journey: Journey, rewrites) -> str:
    """The ◆ tag of the rewrites made at one point: ``"◆ MASQUERADE: src"``, ``"◆ conntrack undoes DNAT: src"``.
    """
    parts = []
    both = _("{first} and {second}")
    for by in dict.fromkeys(r.by for r in rewrites):
        fields = joined([r.field for r in rewrites if r.by == by], both)
        if by == "conntrack":
            undone = list(dict.fromkeys(_undone(journey, r) for r in rewrites if r.by == by))
            if len(undone) == 1:
                parts.append(_("conntrack undoes {nat}: {fields}").format(nat=undone[0], fields=fields))
            else:
                parts.append(_("conntrack undoes {nat}").format(nat=joined(undone, both)))
        else:
            parts.append(_("{by}: {fields}").format(by=by, fields=fields))
    return "◆ " + joined(parts, _("{first}; {second}"))


def made_at(journey: Journey, point: str, kind: str) -> tuple:
    """The rewrites of `kind` first seen at `point` (read from the outcome)."""
    if journey.outcome is None:
        return ()
    return tuple(r for r in journey.outcome.rewrites if r.packet == kind and r.point == point)


def local_dnat(journey: Journey):
    """A DNAT the host made on its own packet before any point saw it (a nat OUTPUT rule), as its verdict."""
    if journey.outcome is None or any(r.by in DEST_NAT for r in journey.outcome.rewrites):
        return None
    return next((v for v in journey.verdicts if v.kind == "request" and v.verdict in DEST_NAT
                 and hook_of(journey, v) == "OUTPUT"), None)


RULE = "\x00"   # where a line names a rule: the picture writes its number there, and the rule at its foot
_DECISIVE = ("ACCEPT", "DROP", "REJECT") + SOURCE_NAT + DEST_NAT


@dataclass(frozen=True)
class Line:
    """One line of a step's list: a hook and what acted there, or the routing (bridging) decision."""

    hook: str                  # PREROUTING ... POSTROUTING, "routing", "bridge", "nat", or the host's own
                               # socket: "socket" (sent or received), "reset" (the host's TCP reset)
    text: str
    dropped: bool = False      # the hook that dropped the packet
    rewrote: bool = False      # a NAT (or conntrack undoing it) rewrote an address here
    rules: tuple[str, ...] = ()   # the iptables commands of the rules that acted (for the foot of the ladder)


def _trips(journey: Journey, kind: str) -> list[list[HookPass]]:
    """The hooks (`netkit.netfilter.passes`) split into trips through the host's stack: each starts at
    PREROUTING (in) or OUTPUT (sent)."""
    trips: list[list[HookPass]] = []
    for one in passes(journey, kind):
        if not trips or one.hook in ("PREROUTING", "OUTPUT"):
            trips.append([])
        trips[-1].append(one)
    return trips


def _device(point: str | None) -> tuple[str, bool] | None:
    """The host device a point stands for, and whether it is only a port of it (veth0, veth1 -> hwchiu0)."""
    if point is None or not point.startswith("host:"):
        return None
    name = point.split(":", 1)[1]
    return (BRIDGE, True) if name in ("veth0", "veth1") else (name, False)


def _fits(point: str | None, device: str) -> int:
    """How well a step's end fits a pass's way in or out: 2 the very device, 1 a port of it, 0 not."""
    if not device or device == "lo":      # the host's own socket (or lo, which no point watches)
        return 2 if point is None else 0
    found = _device(point)
    if found is None:
        return 0
    name, port = found
    return 0 if name != device else (1 if port else 2)


def steps(journey: Journey, kind: str, mark: Mark | None) -> list[tuple[str | None, str | None]]:
    """`kind`'s steps: (from, to) between the points it was seen at, with None for the host's own socket
    at either end; the dying packet's last step runs to the point it never reached."""
    seen = seen_along(journey, kind)
    dying = mark is not None and mark.packet == kind
    end = mark.then if dying and mark.then and seen and mark.point == seen[-1] else None
    if not seen:
        return [(None, None)]
    return [(None, seen[0])] + list(zip(seen, seen[1:])) + [(seen[-1], end)]


def between(journey: Journey, kind: str, mark: Mark | None) -> dict[tuple, list[Line]]:
    """What to write under each step of `kind`: the hooks passed there, the routing (or bridging), the verdicts.

    Each pass through the host's stack (PREROUTING or OUTPUT onwards) goes
    to the step between the points its way in and out stand for: in on
    hwchiu0 and out on eth0 is the step from host:hwchiu0 to host:eth0; a
    bridged frame (in and out on hwchiu0) is the step from port to port; the
    host's own packets start (or end) at its socket. A NAT rewrite first seen
    at a point pulls its hook to the step arriving there.
    """
    ways = steps(journey, kind, mark)
    lines: dict[tuple, list[Line]] = {step: [] for step in ways}
    made: dict[tuple, list] = {}
    for hooks in _trips(journey, kind):
        way_in = hooks[0].iif if hooks[0].hook != "OUTPUT" else ""
        way_out = hooks[-1].oif if hooks[-1].hook not in ("INPUT", "PREROUTING") else (
            "" if hooks[-1].hook == "INPUT" else None)
        best, score = ways[0], -1
        for a, b in ways:
            fit_in, fit_out = _fits(a, way_in), (1 if way_out is None else _fits(b, way_out))
            if fit_in and fit_out and fit_in * 10 + fit_out > score:
                best, score = (a, b), fit_in * 10 + fit_out
        # a NAT rewrite first seen at an earlier point was made on the step arriving there (br_netfilter's
        # PREROUTING DNAT rewrites a frame before the bridge hands it up to hwchiu0)
        for i, one in enumerate(hooks):
            seen_at = [r.point for v in one.verdicts for r in journey.outcome.rewrites
                       if r.packet == kind and r.by == v.verdict] if journey.outcome else []
            earlier = [s for s in ways[:ways.index(best)] if s[1] in seen_at]
            if earlier:
                made.setdefault(earlier[0], []).extend(hooks[:i + 1])
                hooks = hooks[i + 1:]
                break
        made.setdefault(best, []).extend(hooks)
    for step, hooks in made.items():
        lines[step] = _describe(journey, kind, step, hooks)
    for a, b in ways:   # the bridge's part, and a rewrite no hook line names (no hooks recorded)
        lines[(a, b)] = _bridge_lines(journey, a, b, lines[(a, b)])
        made_here = made_at(journey, b, kind) if b else ()
        if made_here and not any(line.rewrote for line in lines[(a, b)]):
            lines[(a, b)].append(Line("nat", tag(journey, made_here), rewrote=True))
    return lines


def _describe(journey: Journey, kind: str, step: tuple, hooks: list[HookPass]) -> list[Line]:
    """One line per hook in `hooks`, with the routing decision after PREROUTING / OUTPUT."""
    a, b = step
    bridged = _device(a) == (BRIDGE, True) and _device(b) == (BRIDGE, True)
    undo = {r.field: r for r in made_at(journey, b, kind) if r.by == "conntrack"} if b else {}
    out: list[Line] = []
    for i, one in enumerate(hooks):
        hook = one.hook
        words, dropped, rewrote, rules = [], False, False, []
        for v in one.verdicts:
            if v.verdict not in _DECISIVE or (v.rule == "policy" and v.table != "filter" and not v.dropped):
                continue   # a jump to a user chain, or a nat / raw chain that let it pass untouched
            if v.rule == "policy":
                words.append(_("{table} policy {verdict}").format(table=v.table, verdict=v.verdict))
            else:
                rules.append(v.command)
                words.append(f"{v.table} {v.verdict} {RULE}")
            dropped |= v.dropped
            rewrote |= v.verdict in SOURCE_NAT + DEST_NAT
        # conntrack undoes a NAT on the reply: the destination in PREROUTING (or OUTPUT), the source in
        # POSTROUTING (or INPUT), as the kernel's nat hooks do
        field = {"PREROUTING": "dst", "OUTPUT": "dst", "POSTROUTING": "src", "INPUT": "src"}.get(hook)
        if field in undo:
            words.append(_("conntrack undoes {nat}: {fields}").format(nat=_undone(journey, undo[field]), fields=field))
            rewrote = True
        text = hook + ("  " + joined(words, _("{first}, {second}")) if words else "")
        out.append(Line(hook, ("◆ " if rewrote else "") + text + (" ✘" if dropped else ""), dropped, rewrote,
                         tuple(rules)))
        following = hooks[i + 1].hook if i + 1 < len(hooks) else None
        if hook in ("PREROUTING", "OUTPUT") and (following in ("FORWARD", "INPUT", "POSTROUTING")):
            if bridged:
                out.append(Line("bridge", _("bridge: port to port, by MAC (fdb)")))
            elif following == "INPUT":
                out.append(Line("routing", _("routing: to this host")))
            else:
                rest = hooks[i + 1:]
                ends = [j for j, h in enumerate(rest) if h.hook in ("PREROUTING", "OUTPUT")]
                this = rest[:ends[0]] if ends else rest
                to = this[-1].oif if this else ""
                out.append(Line("routing", _("routing → {device}").format(device=to) if to else _("routing")))
    return out


def _bridge_lines(journey: Journey, a: str | None, b: str | None, lines: list[Line]) -> list[Line]:
    """Add what the bridge does on a step between its ports and hwchiu0, where no hook line says it."""
    da, db = _device(a), _device(b)
    if da == (BRIDGE, True) and db == (BRIDGE, True):
        if not any(line.hook == "bridge" for line in lines):
            lines = lines + [Line("bridge", _("bridge: port to port, by MAC (fdb)"))]
        if not any(line.hook in HOOKS for line in lines):
            lines = lines + [Line("bridge", _("no iptables hook met"))]
    elif da == (BRIDGE, True) and db == (BRIDGE, False):
        lines = [Line("bridge", _("bridge: up to hwchiu0 itself"))] + lines
    elif da == (BRIDGE, False) and db == (BRIDGE, True):
        lines = lines + [Line("bridge", _("bridge: out of port {port}").format(port=b.split(":")[1]))]
    return lines
