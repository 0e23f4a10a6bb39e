"""Pictures of a probe's journey: the lab map, the packet ladder, the before/after grid.

Pure functions: a `Journey` (or a few) in, a `matplotlib.figure.Figure`
out. Nothing here touches the kernel, imports pyplot, or changes global
matplotlib state, so the same code draws a journey the lab just recorded and
one read back from ``tests/data/*.json``::

    fig = ladder(journey)               # Jupyter shows the figure
    fig.savefig("ladder.png")

Every function also draws into an Axes you give it (``ax=``) and returns
that Axes' figure, so a notebook can put two pictures side by side.

The three pictures answer the article's questions:

- `lab_map`: where is everything (nodes, interfaces, addresses), and which
  way did the probe go? The request's path is drawn over the map, the reply's
  way back beside it, and a red X marks where the probe died. Part 4's
  pieces (the host's eth1 and the outside machine below the host) are drawn
  when the journey needs them, or when asked (``outside=True``).
- `ladder`: what did the packet look like at each point? The points are
  columns in path order, the request steps down left to right, the reply
  comes back below it right to left, each arrow labelled ``src > dst`` as
  seen where it arrives; addresses NAT rewrote are red.
- `grid`: what did one step change? One column per condition (the
  journeys' labels), one row per point, each cell saying whether the request
  and the reply were seen there; the last row says delivered or not, and
  which verdict dropped it.

One colour language everywhere, safe for colour-blind eyes (Okabe-Ito blue
and bluish green, with a line style and an arrow direction as second cues):
the request is `REQUEST` blue, solid, pointing right; the reply is `REPLY`
green, dashed, pointing left; what was dropped or rewritten is `RED`;
what was not seen is `GREY`. Fonts are sized for a projector.

Artists that tests (and curious students) look for carry a gid, e.g.
``ladder:request:host:eth0`` for the arrow that arrives at host:eth0,
``died`` for the X, ``grid:MASQUERADE:host:eth0:request`` for a grid cell's
text. A gid names what an artist shows, never how it is drawn.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.path import Path
from matplotlib.textpath import text_to_path

from .journey import Journey
from .outcome import Result
from .topology import ADDRESSES, BRIDGE, POINTS

__all__ = ["lab_map", "ladder", "grid", "REQUEST", "REPLY", "RED", "GREY"]

REQUEST = "#0072B2"   # Okabe-Ito blue: the request
REPLY = "#009E73"     # Okabe-Ito bluish green: the reply
RED = "#D62728"       # dropped, died, rewritten
GREY = "#8C8C8C"      # not seen, off path
INK = "#1F1F1F"
FONT = 13             # base font size, in points: readable on a projector

_KINDS = {"request": (REQUEST, "-", "→ req"), "reply": (REPLY, "--", "← rep")}


# -- what a journey says, in the terms the pictures need ------------------------

@dataclass(frozen=True)
class _Death:
    """Where a probe died: which packet, the last point it was seen, the next it should have reached.

    `refused`: the far end answered the request with a TCP reset, so the
    probe died where the request stopped (`last`), not where the reset
    arrived. `at_host`: the host sent the probe to itself (over lo), so no
    point saw anything and it died in the host.
    """

    kind: str
    last: str | None
    expected: str | None
    refused: bool = False
    at_host: bool = False


def _path(journey: Journey) -> list[str]:
    return [hop.point for hop in journey.hops if hop.on_path]


def _seen_along(journey: Journey, kind: str) -> list[str]:
    """The on-path points where `kind` was seen, in the order that packet travels."""
    path = _path(journey)
    if kind == "reply":
        path.reverse()
    return [p for p in path if journey.seen(p, kind)]


def _reset(journey: Journey) -> bool:
    """True when the reply was a TCP reset: the connection was refused."""
    return any(hop.reply is not None and hop.reply.reset for hop in journey.hops)


def _seen_nowhere(journey: Journey) -> bool:
    return not any(hop.request or hop.reply for hop in journey.hops)


def _death(journey: Journey) -> _Death | None:
    """Where to draw the "died here" mark: read from the journey's outcome, decided in netkit.outcome."""
    o = journey.outcome
    if o is None or o.delivered:
        return None
    if o.result is Result.REFUSED:
        if journey.src == "host" and _seen_nowhere(journey):
            # the host's connection to one of its own addresses: it never touched a point of the lab
            return _Death("request", None, None, at_host=True)
        return _Death("request", o.last, None, refused=True)
    return _Death(o.packet or "request", o.last, o.next)


def _columns(journey: Journey) -> list[str]:
    """Points to draw: the packet's path in order, then any other point where something was seen."""
    return _path(journey) + [h.point for h in journey.hops if not h.on_path and (h.request or h.reply)]


def _outcome(journey: Journey) -> str:
    word = "delivered" if journey.delivered else "NOT delivered"
    return f"{journey.src} → {journey.dst} ({journey.proto}): {word}"


def _death_text(journey: Journey, width: int = 34) -> str:
    """What to write beside the X: the dropping verdict if there is one, else the reason."""
    verdict = journey.dropped_by
    if verdict is not None:
        text = f"dropped by {verdict}"
        if verdict.iif or verdict.oif:
            text += f"\n(in {verdict.iif or '?'}, out {verdict.oif or '?'})"
        return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))
    return textwrap.fill(journey.reason or "not delivered", width)


def _changed(journey: Journey, point: str, kind: str) -> bool:
    """True where `kind`'s addresses differ from those at the point it was seen just before."""
    seen = _seen_along(journey, kind)
    if point not in seen or seen.index(point) == 0:
        return False
    before = seen[seen.index(point) - 1]
    return journey.addresses(before, kind) != journey.addresses(point, kind)


def _rewrite_note(journey: Journey, point: str, kind: str) -> str:
    """What changed the addresses at `point`: ``"src rewritten by NAT (MASQUERADE)"``."""
    first = journey.first(kind)
    here = getattr(journey.hop(point), kind)
    parts = [name for name, a, b in (("src", here.src, first.src), ("dst", here.dst, first.dst)) if a != b]
    what = " and ".join(parts) or "addresses"
    if not any(entry.nat for entry in journey.conntrack):
        return f"{what} changed on the way"
    if kind == "reply":
        return f"{what} rewritten back (conntrack)"
    nat = _nat_verdicts(journey, parts)
    return f"{what} rewritten by NAT" + (f" ({nat})" if nat else "")


_SOURCE_NAT, _DEST_NAT = ("MASQUERADE", "SNAT"), ("DNAT", "REDIRECT")


def _nat_verdicts(journey: Journey, parts: Sequence[str] = ("src", "dst")) -> str:
    """The request's NAT verdicts that rewrote `parts`, in the order met: ``"DNAT, MASQUERADE"``."""
    wanted = (_SOURCE_NAT if "src" in parts else ()) + (_DEST_NAT if "dst" in parts else ())
    found = [v.verdict for v in journey.verdicts if v.kind == "request" and v.verdict in wanted]
    if not found:   # what rewrote it is not among the verdicts of that kind: name any NAT met
        found = [v.verdict for v in journey.verdicts if v.verdict in _SOURCE_NAT + _DEST_NAT][:1]
    return ", ".join(dict.fromkeys(found))


def _inches(text: str, size: float = FONT, weight: str = "normal") -> float:
    """How wide `text` is drawn, in inches: lays out cells and columns before drawing (font metrics)."""
    prop = FontProperties(weight=weight, size=size)
    return max((text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0] if line.strip() else 0.0)
               for line in text.split("\n")) / 72


def _label(text: str, limit: int = 25) -> str:
    """Long ``src:port > dst:port`` labels break before the ``>``."""
    return text if len(text) <= limit else text.replace(" > ", "\n> ")


class LabFigure(Figure):
    """A Figure that Jupyter shows as a picture without pyplot (nothing global is switched on)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        return buffer.getvalue()


def _new_axes(ax: Axes | None, size: tuple[float, float], title_lines: int = 1) -> tuple[Figure, Axes]:
    """The caller's Axes, or a new Figure whose one Axes leaves room for the title."""
    if ax is not None:
        return ax.figure, ax
    fig = LabFigure(figsize=size, facecolor="white")
    ax = fig.add_subplot()
    top = 1 - (0.25 + 0.32 * title_lines) / size[1]
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=top)
    return fig, ax


def _died_marker(ax: Axes, x: float, y: float, size: float = 30) -> None:
    ax.plot([x], [y], linestyle="none", marker="X", markersize=size, color=RED,
            markeredgecolor="white", markeredgewidth=2, zorder=10, gid="died")


# -- 1. the lab map ---------------------------------------------------------------

# Where each point sits on the map (data units; the map is 21 x 12.2, and reaches down to
# _LOW when it shows part 4's outside machine below the host).
_XY = {
    "c1:eth0": (3.5, 9.0), "host:veth0": (3.5, 7.0), "host:hwchiu0": (6.5, 5.0),
    "host:veth1": (9.5, 7.0), "c2:eth0": (9.5, 9.0),
    "host:eth0": (13.5, 2.4), "internet:eth0": (16.5, 2.4),
    "host:eth1": (6.5, 0.4), "outside:eth0": (6.5, -1.5),
}
_PART4 = ("host:eth1", "outside:eth0")   # drawn only when the map shows the outside machine
_LOW = -4.6                              # the map's lower edge with the outside machine
_UNIT = 13 * 0.96 / 21                   # inches per data unit on the map's own figure

# Where the map writes the addresses a packet had after they changed, per point and packet.
_NAT_SLOT = {
    ("host:eth0", "request"): (14.6, 3.9), ("internet:eth0", "request"): (14.6, 3.9),
    ("host:eth0", "reply"): (15.0, 1.2), ("internet:eth0", "reply"): (15.0, 1.2),
    ("host:hwchiu0", "reply"): (4.3, 3.3), ("host:veth0", "reply"): (1.8, 8.0),
    ("c1:eth0", "reply"): (1.8, 8.0), ("host:veth1", "request"): (11.3, 8.0),
    ("c2:eth0", "request"): (11.3, 8.0), ("host:hwchiu0", "request"): (4.3, 3.3),
}
# With the outside machine, notes about the bridge's side go in stacks beside the host's eth1
# link ("left", right edge at x, from y down) and right of c2 ("right", left edge at x, from y
# down); a note far from its point gets a thin red leader to the arrow that arrived there.
_STACKS = {"left": (5.8, 4.05, "right"), "right": (12.3, 10.1, "left")}
_STACKED = {
    ("host:hwchiu0", "request"): "left", ("host:hwchiu0", "reply"): "left",
    ("host:veth0", "request"): "left", ("host:veth0", "reply"): "left",
    ("c1:eth0", "request"): "left", ("c1:eth0", "reply"): "left",
    ("host:eth1", "reply"): "left", ("outside:eth0", "reply"): "left",
    ("host:veth1", "request"): "right", ("host:veth1", "reply"): "right",
    ("c2:eth0", "request"): "right", ("c2:eth0", "reply"): "right",
}
_NEAR = {"left": {"host:hwchiu0", "host:eth1", "outside:eth0"}, "right": set()}
# Where the X goes for a packet that reached a point and went no further (it was refused
# there, or the node did not take it in): inside the node, beside the interface.
_INSIDE = {
    "c1:eth0": (5.05, 9.4), "c2:eth0": (11.05, 9.4), "internet:eth0": (17.6, 3.25),
    "host:eth0": (12.6, 3.3), "host:eth1": (6.5, 1.55), "outside:eth0": (7.95, -2.15),
}


_BRIDGED = (6.5, 4.2)   # the bend that takes a bridged frame through hwchiu0
_LANE = -0.25           # each packet keeps this far to the right of its way


def _box(ax, x0, y0, x1, y1, *, face, edge=INK, lw=1.5, style="round,pad=0,rounding_size=0.25", zorder=1,
         **kw):
    ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle=style,
                                facecolor=face, edgecolor=edge, linewidth=lw, zorder=zorder, **kw))


def _interface(ax, point: str, name: str) -> None:
    x, y = _XY[point]
    _box(ax, x - 0.65, y - 0.3, x + 0.65, y + 0.3, face="white", lw=1.8,
         style="round,pad=0,rounding_size=0.12", zorder=2, gid=f"map:interface:{point}")
    ax.text(x, y, name, ha="center", va="center", fontsize=FONT, weight="bold", color=INK, zorder=3)


def _draw_topology(ax: Axes, bridge_address: str | None, outside: bool = False) -> None:
    text = dict(ha="center", va="center", color=INK, zorder=3)
    # host
    _box(ax, 0.4, 0.4, 13.5, 7.0, face="#F3F3F3", gid="map:node:host")
    ax.text(0.8, 6.35, "host", fontsize=FONT + 5, weight="bold", ha="left", va="center", color=INK)
    # containers
    for node, point, veth in (("c1", "c1:eth0", "host:veth0"), ("c2", "c2:eth0", "host:veth1")):
        x, y = _XY[point]
        _box(ax, x - 2.1, y, x + 2.1, y + 2.7, face="#FFF4D6", gid=f"map:node:{node}")
        ax.text(x, y + 2.05, f"{node}  (container)", fontsize=FONT + 3, weight="bold", **text)
        ax.text(x, y + 0.95, ADDRESSES[point], fontsize=FONT + 1, **text)
        ax.plot([x, x], [_XY[veth][1], y], color=INK, lw=2.5, zorder=0.5)
        _interface(ax, point, "eth0")
        side = -1 if node == "c1" else 1
        ax.text(x + 0.6 * side, (y + _XY[veth][1]) / 2, "veth\npair", fontsize=FONT - 2, color=GREY,
                ha="left" if side > 0 else "right", va="center")
    # the bridge, its ports, and the bridge device itself (a point packets are seen at)
    bx, by = _XY["host:hwchiu0"]
    _box(ax, 1.6, by - 0.5, 11.4, by + 0.5, face="#DDE6EE", lw=2, gid="map:node:hwchiu0")
    ax.text(1.85, by, BRIDGE, fontsize=FONT + 2, weight="bold", ha="left", va="center", color=INK, zorder=3)
    ax.text(1.85, by - 0.75, "Linux bridge", fontsize=FONT - 2, ha="left", va="center", color=GREY)
    ax.text(11.2, by, bridge_address or "no IP address", fontsize=FONT + 1 if bridge_address else FONT - 1,
            ha="right", va="center", color=INK if bridge_address else GREY,
            style="normal" if bridge_address else "italic", zorder=3, gid="map:bridge-address")
    ax.add_patch(Circle((bx, by), 0.2, facecolor="white", edgecolor=INK, linewidth=2, zorder=4,
                        gid="map:interface:host:hwchiu0"))
    for port in ("host:veth0", "host:veth1"):
        px, py = _XY[port]
        ax.plot([px, px], [by + 0.5, py], color=INK, lw=2.5, zorder=0.5)
        _interface(ax, port, port.split(":")[1])
    # the kernel routes between the bridge and the uplink
    ex, ey = _XY["host:eth0"]
    ax.plot([bx, ex], [by, ey], color=GREY, lw=2.5, linestyle=":", zorder=1.5)
    ax.text(9.3, 2.6, "routing in the host\n(ip_forward, iptables)", fontsize=FONT - 1,
            color=GREY, ha="center", va="center", style="italic")
    _interface(ax, "host:eth0", "eth0")
    ax.text(ex - 0.15, ey - 0.7, ADDRESSES["host:eth0"], fontsize=FONT + 1, ha="right", va="center",
            color=INK)
    # the internet
    _box(ax, 16.5, 0.4, 20.9, 5.8, face="#E4F0F8", style="round,pad=0,rounding_size=0.9",
         gid="map:node:internet")
    ax.text(18.7, 5.15, "internet", fontsize=FONT + 4, weight="bold", **text)
    ax.text(19.0, 4.2, "lo  8.8.8.8\n     1.1.1.1", fontsize=FONT + 1, **text)
    ax.text(18.9, 1.2, "routes back only\nto 10.0.2.0/24", fontsize=FONT - 1, color=GREY,
            ha="center", va="center", style="italic")
    ix, iy = _XY["internet:eth0"]
    ax.plot([ex, ix], [ey, iy], color=INK, lw=2.5, zorder=0.5)
    _interface(ax, "internet:eth0", "eth0")
    ax.text(ix + 0.75, iy, ADDRESSES["internet:eth0"], fontsize=FONT + 1, ha="left", va="center", color=INK)
    if outside:
        _draw_outside(ax)


def _draw_outside(ax: Axes) -> None:
    """Part 4: the host's eth1 on its lower edge, and below it the other machine on 172.17.9.0/24."""
    bx, by = _XY["host:hwchiu0"]
    hx, hy = _XY["host:eth1"]
    ox, oy = _XY["outside:eth0"]
    ax.plot([bx, hx], [by, hy], color=GREY, lw=2.5, linestyle=":", zorder=1.5)   # routed, like eth0
    _interface(ax, "host:eth1", "eth1")
    ax.text(hx + 0.85, hy + 0.55, ADDRESSES["host:eth1"], fontsize=FONT + 1, ha="left", va="center",
            color=INK, gid="map:address:host:eth1")
    ax.plot([hx, ox], [hy, oy], color=INK, lw=2.5, zorder=0.5)
    ax.text(ox - 0.8, (hy + oy) / 2, "host-only network\n172.17.9.0/24", fontsize=FONT - 2, color=GREY,
            ha="right", va="center", style="italic")
    _box(ax, ox - 2.6, oy - 2.85, ox + 2.6, oy, face="#EEEAF6", gid="map:node:outside")
    ax.text(ox, oy - 0.95, ADDRESSES["outside:eth0"], fontsize=FONT + 1, ha="center", va="center", color=INK,
            zorder=3, gid="map:address:outside:eth0")
    ax.text(ox, oy - 1.85, "outside", fontsize=FONT + 3, weight="bold", ha="center", va="center", color=INK,
            zorder=3)
    ax.text(ox, oy - 2.45, "(the article's other machine)", fontsize=FONT - 2, ha="center", va="center",
            color=GREY, style="italic", zorder=3)
    _interface(ax, "outside:eth0", "eth0")


def _shows_outside(journey: Journey | None, outside: bool | None) -> bool:
    """Draw part 4's eth1 and outside machine? As told; else when the journey went there.

    A journey went there when a packet was seen at (or should have passed)
    host:eth1 or outside:eth0, or when it was addressed to one of their
    addresses (c2 or the host calling 172.17.9.103, the published port).
    """
    if outside is not None:
        return bool(outside)
    if journey is None:
        return False
    if any(h.point in _PART4 and (h.on_path or h.request or h.reply) for h in journey.hops):
        return True
    theirs = {ADDRESSES[p].split("/")[0] for p in _PART4}
    return journey.src == "outside" or journey.dst.split(":")[0] in theirs


def _edge(point: str, toward: tuple[float, float], gap: float = 0.18) -> tuple[float, float]:
    """Where the line from `point`'s centre to `toward` leaves its box (or the bridge's circle)."""
    (x, y), (tx, ty) = _XY[point], toward
    dx, dy = tx - x, ty - y
    length = (dx * dx + dy * dy) ** 0.5 or 1.0
    if point == "host:hwchiu0":
        reach = 0.2 + gap
    else:   # an interface box: 0.65 either side, 0.3 above and below
        reach = min(0.65 / abs(dx / length) if dx else 99, 0.3 / abs(dy / length) if dy else 99) + gap
    return x + dx / length * reach, y + dy / length * reach


def _way(a: str, b: str, offset: float) -> Path:
    """The map's drawing of a hop from point `a` to point `b`, moved `offset` to its left.

    A straight line, except that a frame bridged from one port to another
    (veth0 <-> veth1, never seen on hwchiu0 itself) bends down through the
    bridge: it is the bridge that forwards it.
    """
    (xa, ya), (xb, yb) = _XY[a], _XY[b]
    length = ((xb - xa) ** 2 + (yb - ya) ** 2) ** 0.5
    dx, dy = -(yb - ya) / length * offset, (xb - xa) / length * offset
    via = _BRIDGED if {a, b} == {"host:veth0", "host:veth1"} else None
    (sx, sy), (ex, ey) = _edge(a, via or (xb, yb)), _edge(b, via or (xa, ya))
    if via is None:
        return Path([(sx + dx, sy + dy), (ex + dx, ey + dy)])
    return Path([(sx + dx, sy + dy), (via[0] + dx, via[1] + dy), (ex + dx, ey + dy)],
                [Path.MOVETO, Path.CURVE3, Path.CURVE3])


def _halfway(path: Path) -> tuple[Path, tuple[float, float]]:
    """The first half of a hop's drawing, and the point halfway."""
    (x0, y0), *rest = path.vertices
    if len(rest) == 1:
        (x1, y1), = rest
        mid = ((x0 + x1) / 2, (y0 + y1) / 2)
        return Path([(x0, y0), mid]), mid
    (cx, cy), (x1, y1) = rest
    mid = (0.25 * x0 + 0.5 * cx + 0.25 * x1, 0.25 * y0 + 0.5 * cy + 0.25 * y1)
    return Path([(x0, y0), ((x0 + cx) / 2, (y0 + cy) / 2), mid],
                [Path.MOVETO, Path.CURVE3, Path.CURVE3]), mid


def _map_notes(journey: Journey, shown: set[str]) -> list[tuple[str, str, str, str, str | None]]:
    """The map's red notes where addresses changed: (point, kind, addresses, how, the point before).

    A rewrite the host made before the first point the request was seen at
    (a nat OUTPUT rule on the host's own packet) is noted at that point.
    """
    notes = []
    for kind in ("request", "reply"):
        points = [p for p in _seen_along(journey, kind) if p in shown]
        for before, point in zip([None] + points, points):
            if journey.rewritten(point, kind) and _changed(journey, point, kind):
                if kind == "reply":
                    how = "NAT undone by conntrack"
                else:
                    was = getattr(journey.hop(_seen_along(journey, kind)[0]), kind)
                    now = getattr(journey.hop(point), kind)
                    dst_too = (was.dst, was.dport) != (now.dst, now.dport)
                    how = _rewrite_note(journey, point, kind) if dst_too else "rewritten by NAT"
                notes.append((point, kind, _label(journey.addresses(point, kind)), how, before))
    first = journey.first("request")
    sent = (journey.dst.split(":")[0], journey.dport)
    if first is not None and first.point in shown and (first.dst, first.dport or sent[1]) != sent:
        nat = _nat_verdicts(journey, ("dst",))
        chains = ", ".join(dict.fromkeys(f"nat {v.chain}" for v in journey.verdicts
                                         if v.kind == "request" and v.verdict in _DEST_NAT))
        to = f"{sent[0]}:{sent[1]}" if sent[1] else sent[0]
        how = f"dst rewritten by NAT ({nat or 'NAT'})\nin {chains or 'the host'}, from\n{to}"
        notes.append((first.point, "request", _label(first.addresses), how, None))
    return notes


def _draw_notes(ax: Axes, journey: Journey, shown: set[str], outside: bool) -> None:
    stacks = {name: top for name, (_, top, _) in _STACKS.items()}
    if not outside:   # part 3's map: the bridge's own slot sits where the left stack would start
        stacks["left"] = 2.55
    box = dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor=RED, lw=1.5)
    for point, kind, addresses, how, before in _map_notes(journey, shown):
        gid = f"map:rewritten:{kind}:{point}"
        text = f"{addresses}\n{how}"
        stack = _STACKED.get((point, kind)) if outside or (point, kind) not in _NAT_SLOT else None
        if stack is None:
            x, y = _NAT_SLOT.get((point, kind), (10.0, 1.6))
            ax.text(x, y, text, fontsize=FONT, color=RED, ha="center", va="center", weight="bold", zorder=6,
                    linespacing=1.3, gid=gid, bbox=box)
            continue
        x, _, ha = _STACKS[stack]
        top = stacks[stack]
        for width in (26, 22, 18):   # a note in a stack keeps to its 5.4 units: wrap what rewrote it
            if _inches(text, weight="bold") / _UNIT <= 5.0:
                break
            text = addresses + "\n" + "\n".join(textwrap.fill(line, width) for line in how.split("\n"))
        width = _inches(text, weight="bold") / _UNIT + 0.4
        height = (text.count("\n") + 1) * FONT * 1.3 / 72 / _UNIT + 0.35
        stacks[stack] = top - height - 0.3
        ax.text(x, top - height / 2, text, fontsize=FONT, color=RED, ha=ha, va="center", weight="bold",
                multialignment="center", zorder=6, linespacing=1.3, gid=gid, bbox=box)
        if point in _NEAR[stack] or before is None:
            continue
        # a thin leader from the note: left of the host, to the middle of the arrow that arrived at
        # the point (a straight way up past the bridge); right of it, to the point itself
        if stack == "left":
            _, (tx, ty) = _halfway(_way(before, point, _LANE))
        else:
            tx, ty = _XY[point][0] + 0.72, _XY[point][1]
        x0, x1 = (x - width, x) if ha == "right" else (x, x + width)
        sx, sy = min(max(tx, x0), x1), min(max(ty, top - height), top)
        ax.plot([sx, tx], [sy, ty], color=RED, lw=1.5, zorder=5.5, gid=f"map:leader:{kind}:{point}")
        ax.plot([tx], [ty], "o", color=RED, markersize=5, zorder=5.5)


def _map_path(ax: Axes, journey: Journey, shown: set[str], outside: bool) -> None:
    # each packet keeps to the right of its way, so request and reply sit side by side
    for kind in ("request", "reply"):
        color, style, _ = _KINDS[kind]
        points = [p for p in _seen_along(journey, kind) if p in shown]
        for a, b in zip(points, points[1:]):
            ax.add_patch(FancyArrowPatch(path=_way(a, b, _LANE), arrowstyle="-|>", mutation_scale=24,
                                         color=color, linewidth=4, linestyle=style, zorder=5,
                                         gid=f"map:{kind}:{b}"))
    _draw_notes(ax, journey, shown, outside)


def _map_death(ax: Axes, journey: Journey, shown: set[str]) -> None:
    death = _death(journey)
    if death is None:
        return
    if death.at_host:
        # it never left the host: the X sits in the host, by the interface owning the address it was sent to
        owner = next((p for p in shown if p.startswith("host:")
                      and ADDRESSES.get(p, "").split("/")[0] == journey.dst.split(":")[0]), None)
        (x, y), side = (_INSIDE[owner], -1) if owner in _INSIDE else ((2.0, 2.0), 1)
        _died_marker(ax, x, y, size=36)
        to = f"{journey.dst}:{journey.dport}" if journey.dport else journey.dst
        ax.text(x + 0.7 * side, y, f"sent to its own address\n{to} over lo:\nit never left the host",
                fontsize=FONT - 1, color=RED, weight="bold", ha="right" if side < 0 else "left", va="center",
                zorder=6, linespacing=1.2, gid="map:local")
        return
    if death.last in shown and death.expected in shown:
        # it set off from the last point and never arrived: half its arrow, then the X
        stub, (x, y) = _halfway(_way(death.last, death.expected, _LANE))
        color, style, _ = _KINDS[death.kind]
        ax.add_patch(FancyArrowPatch(path=stub, arrowstyle="-", color=color, linewidth=4, linestyle=style,
                                     zorder=5, gid=f"map:lost:{death.kind}"))
        _died_marker(ax, x, y, size=36)
        return
    here = death.expected or death.last
    if here not in shown:
        return
    x, y = _XY[here]
    way = _path(journey) if death.kind == "request" else _path(journey)[::-1]
    after = way[way.index(here) + 1:] if here in way else []
    if death.expected and after and after[0] in shown:
        # it never left this point: the X sits on its way out, toward the next one
        tx, ty = _XY[after[0]]
        length = ((tx - x) ** 2 + (ty - y) ** 2) ** 0.5
        ux, uy = (tx - x) / length, (ty - y) / length
        step = min(length / 2, 1.0)
        x, y = x + ux * step, y + uy * step
        if death.kind == "reply":   # off the request's lane, onto the reply's (its right)
            x, y = x + uy * 0.6, y - ux * 0.6
    elif here in _INSIDE and not death.expected:
        x, y = _INSIDE[here]    # it got there and went no further: inside, beside the interface
    else:
        y -= 0.75
    _died_marker(ax, x, y, size=36)


def _reason_lines(journey: Journey, width: int) -> list[str]:
    lines = [textwrap.fill(journey.reason, width)] if journey.reason else []
    verdict = journey.dropped_by      # the sentence names it; its interfaces go on a line of their own
    if verdict is not None and (verdict.iif or verdict.oif):
        lines.append(f"(in {verdict.iif or '?'}, out {verdict.oif or '?'})")
    return lines


def _fit_reason(journey: Journey, widest: float, tallest: float, narrowest: int = 32) -> tuple[str, float]:
    """The reason, wrapped to fit `widest` x `tallest` inches: `narrowest` columns if it can, else wider,
    else in a smaller font."""
    for size in (FONT, FONT - 1, FONT - 2):
        for width in range(narrowest, 90, 4):
            text = "\n".join(_reason_lines(journey, width))
            if _inches(text, size) > widest:
                break
            if (text.count("\n") + 1) * size * 1.3 / 72 <= tallest:
                return text, size
    return "\n".join(_reason_lines(journey, 32)), FONT - 2


def lab_map(journey: Journey | None = None, *, bridge_address: str | None = None,
            outside: bool | None = None, ax: Axes | None = None) -> Figure:
    """The lab as a picture: nodes, interfaces, addresses; with a journey, the probe's way.

    `bridge_address` is hwchiu0's address when the stage gave it one
    (``topology.BRIDGE_ADDRESS`` from scenario 2); None draws "no IP address".
    With `journey`, the request's path is a solid blue arrow through the
    points where it was seen, the reply a dashed green one, addresses that
    changed on the way are red, and a red X marks where the probe died, with
    the reason (and the verdict that dropped it) in the corner.

    `outside` draws part 4's pieces: the host's eth1 (172.17.9.103/24) and,
    below the host, the other machine ``outside`` (172.17.9.10/24). None
    (the default) draws them when the journey needs them: a packet was seen
    there or should have passed there, or it was addressed to them (the
    published port 172.17.9.103:2345); part 3's map is left as it was.
    """
    outside = _shows_outside(journey, outside)
    low = _LOW if outside else 0.2
    fig, ax = _new_axes(ax, (13, 8.4 + (0.2 - low) * _UNIT), title_lines=1 if journey or not outside else 2)
    ax.set_xlim(0, 21)
    ax.set_ylim(low, 12.4)
    ax.set_aspect("equal")
    ax.axis("off")
    _draw_topology(ax, bridge_address, outside)
    shown = set(_XY) - (set() if outside else set(_PART4))
    if journey is None:
        title = "The lab: c1 and c2 on the bridge hwchiu0 in the host; the internet behind eth0"
        if outside:
            title += "\nand, for part 4, the other machine (outside) behind eth1"
        ax.set_title(title, fontsize=FONT + 3, weight="bold", loc="left")
        return fig
    _map_path(ax, journey, shown, outside)
    _map_death(ax, journey, shown)
    sent, answered = journey.first("request"), journey.first("reply")
    unseen = "request (in the host only: on no point)" if journey.src == "host" else "request (never sent)"
    handles = [Line2D([], [], color=REQUEST, lw=4, label=f"request  {sent.addresses}" if sent else unseen),
               Line2D([], [], color=REPLY, lw=4, linestyle="--",
                      label=f"reply  {answered.addresses}" if answered else "reply (none seen)")]
    if not journey.delivered:
        handles.append(Line2D([], [], color=RED, marker="X", markersize=18, linestyle="none",
                              markeredgecolor="white", label="where it died"))
    ax.legend(handles=handles, loc="upper right", bbox_to_anchor=(1.0, 1.0), fontsize=FONT + 1,
              frameon=False, handlelength=2.5)
    color = INK if journey.delivered else RED
    if outside:   # the corner under the internet is free: the outcome goes there, with room to explain
        (x, y), room, narrowest = (20.9, 0.0), (11.6 * _UNIT, (-0.8 - _LOW) * _UNIT), 48
    else:
        (x, y), room, narrowest = (20.9, 9.2), (8.6 * _UNIT, 2.5 * _UNIT), 32
    reason, size = _fit_reason(journey, *room, narrowest)
    ax.text(x, y, "delivered ✔" if journey.delivered else "NOT delivered ✘", fontsize=FONT + 4,
            weight="bold", ha="right", va="top", color=color, gid="map:outcome")
    ax.text(x, y - 0.8, reason, fontsize=size, ha="right", va="top", color=color,
            linespacing=1.3, gid="map:reason")
    ax.set_title(_outcome(journey), fontsize=FONT + 4, weight="bold", loc="left")
    return fig


# -- 2. the packet ladder -----------------------------------------------------------

def _ladder_arrows(ax, journey, kind, columns, top) -> float:
    """Draw `kind`'s arrows from row `top` down; return the row where it ended."""
    color, style, _ = _KINDS[kind]
    x = {p: i for i, p in enumerate(columns)}
    seen = [p for p in _seen_along(journey, kind) if p in x]
    row = top
    for i, point in enumerate(seen):
        if i:
            xa, xb = x[seen[i - 1]], x[point]
            ax.add_patch(FancyArrowPatch((xa, row), (xb, row + 1), arrowstyle="-|>", mutation_scale=24,
                                         color=color, linewidth=3, linestyle=style, shrinkA=6, shrinkB=6,
                                         zorder=4, gid=f"ladder:{kind}:{point}"))
            row += 1
            rewritten = journey.rewritten(point, kind)
            note = rewritten and _changed(journey, point, kind)
            xm, ym = (xa + xb) / 2, row - 0.5
            box = dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="none", alpha=0.95)
            text = _label(journey.addresses(point, kind))
            lift = (13 if "\n" in text else 9) if note else 0     # a two-line label clears the note under it
            ax.annotate(text, (xm, ym), xytext=(0, lift),
                        textcoords="offset points", fontsize=FONT, ha="center", va="center",
                        color=RED if rewritten else color, weight="bold" if rewritten else "normal",
                        zorder=6, bbox=box, gid=f"ladder:label:{kind}:{point}")
            if note:
                ax.annotate(_rewrite_note(journey, point, kind), (xm, ym), xytext=(0, -11),
                            textcoords="offset points", fontsize=FONT - 2, ha="center", va="center",
                            color=RED, style="italic", zorder=6, bbox=box, gid=f"ladder:note:{kind}:{point}")
            elif kind == "reply" and i == 1 and _reset(journey):
                ax.annotate("a TCP reset (RST): refused", (xm, ym), xytext=(0, 29), textcoords="offset points",
                            fontsize=FONT - 2, ha="center", va="center", color=RED, style="italic", zorder=6,
                            bbox=box, gid="ladder:reset")
        ax.plot([x[point]], [row], "o", color=color, markersize=10, zorder=5,
                gid=f"ladder:seen:{kind}:{point}")
    # points off the path where this packet showed up anyway (a flooded frame, say): a dotted
    # branch from the last point before it in the lab's order
    order = {p: i for i, p in enumerate(POINTS)}
    for hop in journey.hops:
        if not hop.on_path and getattr(hop, kind) is not None and hop.point in x:
            before = [p for p in seen if order.get(p, -1) < order.get(hop.point, -1)]
            origin = before[-1] if before else (seen[-1] if seen else hop.point)
            y = top + (seen.index(origin) if origin in seen else 0)
            ax.add_patch(FancyArrowPatch((x[origin], y), (x[hop.point], y + 0.6), arrowstyle="-|>",
                                         mutation_scale=18, color=GREY, linewidth=2, linestyle=":",
                                         shrinkA=6, shrinkB=6, zorder=3, gid=f"ladder:{kind}-offpath:{hop.point}"))
            ax.text(x[hop.point], y + 0.75, getattr(hop, kind).addresses, fontsize=FONT - 2,
                    color=GREY, ha="center", va="top", gid=f"ladder:label:{kind}:{hop.point}")
    return row


def ladder(journey: Journey, *, ax: Axes | None = None) -> Figure:
    """The packet ladder: points as columns, the request stepping right, the reply coming back.

    Columns are the points on the packet's path (plus any other point where
    it was seen), in path order. Each arrow is one hop of the request (solid
    blue, downward to the right) or, below it, of the reply (dashed green,
    right to left), labelled ``src > dst`` as seen at the point it arrives
    at; addresses that differ from those the packet started with are red,
    with what rewrote them. A red X marks where the probe died, with the
    verdict that dropped it (or the reason). The title says the outcome.

    On its own figure each column gets the room its widest label needs; an
    Axes passed as `ax` should allow about 2.6 inches per column.
    """
    death = _death(journey)
    columns = _columns(journey) or ([journey.died_at] if journey.died_at else []) or (
        ["host"] if death and death.at_host else [])   # the host's probe to itself: the host is all there is
    req_rows = max(len(_seen_along(journey, "request")) - 1, 0)
    rep_rows = max(len(_seen_along(journey, "reply")) - 1, 0)
    with_reply = journey.replied or bool(death and death.kind == "reply")
    told = 1.2 + 0.35 * _death_text(journey).count("\n") if death else 0.6   # room for what the X says
    refused = bool(death and death.refused and with_reply)   # the X ends the request, above the reply
    reply_top = req_rows + (1.6 if with_reply else 0.5) + (told if refused else 0)
    bottom = (reply_top + rep_rows if with_reply else req_rows + 0.5) + (0.6 if refused else told)
    labels = [journey.addresses(p, k) or "" for p in journey.points for k in ("request", "reply")]
    spacing = max([2.4] + [_inches(_label(t), weight="bold") + 0.5 for t in labels])
    n = max(len(columns), 1)
    wide = max(spacing * (n + 0.4), 6.0)     # inches: a ladder of one or two columns still has room to explain
    title = _outcome(journey)
    if journey.reason:
        title += "\n" + textwrap.fill(journey.reason, int(wide * 7))
    lines = title.count("\n") + 1
    fig, ax = _new_axes(ax, (wide / 0.96, 0.6 + 0.32 * lines + 0.72 * (bottom + 1.3)), title_lines=lines)
    ax.set_xlim(-0.75, -0.75 + wide / spacing)
    ax.set_ylim(bottom, -1.3)
    ax.axis("off")

    for i, point in enumerate(columns):
        off = point in journey.points and not journey.hop(point).on_path
        ax.plot([i, i], [-0.25, bottom], color=GREY, lw=1.2, linestyle=(0, (4, 4)), zorder=1)
        ax.text(i, -0.95, point, fontsize=FONT + 2, weight="bold", ha="center", va="center",
                color=GREY if off else INK, gid=f"ladder:column:{point}")
        address = "off the path" if off else ADDRESSES.get(point, "").split("/")[0]
        if point not in journey.points and point == "host":
            address = "sent to itself (lo): on no point"
        if address:
            ax.text(i, -0.5, address, fontsize=FONT - 1, ha="center", va="center", color=GREY)
    ax.text(-0.6, 0, "request", fontsize=FONT + 1, weight="bold", color=REQUEST, rotation=90,
            ha="center", va="top")
    end = _ladder_arrows(ax, journey, "request", columns, 0)
    if with_reply:
        ax.plot([-0.7, n - 0.4], [reply_top - 0.55] * 2, color="#CCCCCC", lw=1.2)
        ax.text(-0.6, reply_top, "reply", fontsize=FONT + 1, weight="bold", color=REPLY, rotation=90,
                ha="center", va="top")
        end = _ladder_arrows(ax, journey, "reply", columns, reply_top)

    if death is not None:
        x = {p: i for i, p in enumerate(columns)}
        ends = [x[p] for p in (death.last, death.expected, "host" if death.at_host else None) if p in x]
        if ends:
            cx = sum(ends) / len(ends)
            if refused:   # the far end turned the request away: the X where the request ended
                cy = req_rows
            elif death.last is None:
                cy = 0 if death.kind == "request" else reply_top
            elif death.expected:   # it set off for the next point and never got there
                cy = end + 0.5
                color, style, _ = _KINDS[death.kind]
                ax.plot([x[death.last], cx], [end, cy], color=color, lw=3, linestyle=style, zorder=4)
            else:
                cy = end
            _died_marker(ax, cx, cy)
            ha = "left" if cx < 0.5 else "right" if cx > n - 1.5 else "center"
            ax.annotate(_death_text(journey), (cx, cy), xytext=(-8 if ha == "right" else 0, -26),
                        textcoords="offset points", fontsize=FONT, ha=ha, va="top", color=RED,
                        weight="bold", zorder=11, gid="ladder:death",
                        bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="none", alpha=0.9))

    ax.set_title(title, fontsize=FONT + 3, loc="left", color=INK if journey.delivered else RED,
                 weight="bold", linespacing=1.4)
    return fig


# -- 3. the before/after grid ----------------------------------------------------------

def _grid_rows(journeys: Sequence[Journey]) -> list[str]:
    """The grid's rows: the points on the journeys' paths in path order, then the others seen.

    Paths are merged keeping each one's order (c2 -> c1 reads c2:eth0 first);
    where they leave the order open, or disagree, the lab's order decides.
    """
    order = {p: i for i, p in enumerate(POINTS)}

    def rank(point: str) -> int:
        return order.get(point, len(order))

    after: dict[str, set[str]] = {}
    for journey in journeys:
        path = _path(journey)
        for a, b in zip(path, path[1:]):
            after.setdefault(b, set()).add(a)
        for p in path:
            after.setdefault(p, set())
    rows: list[str] = []
    while len(rows) < len(after):
        left = [p for p in after if p not in rows]
        ready = [p for p in left if after[p] <= set(rows)] or left   # a loop: let the lab's order break it
        rows.append(min(ready, key=rank))
    seen = {p for j in journeys for p in _columns(j)} - set(rows)
    return rows + sorted(seen, key=rank)


def _grid_why(journey: Journey, inches: float) -> str:
    """What the outcome cell says under "not delivered", wrapped to `inches`."""
    why = f"dropped by {journey.dropped_by}" if journey.dropped_by else (
        "" if journey.delivered else journey.reason)
    if not why:
        return ""
    width = 24
    while width < 120 and _inches(textwrap.fill(why, width + 2), FONT - 1) <= inches:
        width += 2
    return textwrap.fill(why, width)


def grid(journeys: Sequence[Journey], *, ax: Axes | None = None) -> Figure:
    """One column per condition, one row per point: was the request / the reply seen there?

    Columns are titled with each journey's label (what the step changed,
    e.g. ``bridge-nf-call-iptables=1``); cells show ``→ req`` and ``← rep``
    with the addresses seen (red where rewritten), or "not seen" in grey;
    a red frame and X mark the point the probe never reached. The last row
    says delivered or not, and the verdict that dropped the probe.
    """
    journeys = list(journeys)
    if not journeys:
        raise ValueError("grid() needs at least one journey, one per condition to compare")
    rows = _grid_rows(journeys)
    n, height = len(journeys), len(rows)
    texts = [j.addresses(p, k) or "" for j in journeys for p in j.points for k in ("request", "reply")]
    titles = [textwrap.fill(j.label or f"{j.src} → {j.dst}", 28) for j in journeys]
    cell = max([3.0] + [_inches(t, weight="bold") + 1.45 for t in texts]
               + [_inches(t, FONT + 1, "bold") + 0.2 for t in titles])      # inches
    head = max(_inches(p, FONT + 1, "bold") for p in rows + ["outcome"]) + 0.35
    whys = [_grid_why(j, cell - 0.3) for j in journeys]
    # the outcome row is as tall as its longest explanation (a row is 0.95 inches)
    tall = max([1.35] + [0.68 + (w.count("\n") + 1) * (FONT - 1) * 1.25 / 72 / 0.95 + 0.15 for w in whys if w])
    fig, ax = _new_axes(ax, ((head + cell * n + 0.1) / 0.96, 1.5 + 0.95 * (height + tall + 0.95)))
    ax.set_xlim(-head / cell, n + 0.02)
    ax.set_ylim(height + tall + 0.6, -0.8)
    ax.axis("off")
    tag_x, text_x = 0.15 / cell, 0.85 / cell      # in cell widths

    for r, point in enumerate(rows):
        ax.text(-0.1 / cell, r + 0.5, point, fontsize=FONT + 1, weight="bold", ha="right", va="center",
                color=INK, gid=f"grid:row:{point}")
    ax.text(-0.1 / cell, height + 0.1 + tall / 2, "outcome", fontsize=FONT + 1, weight="bold", ha="right",
            va="center", color=INK, gid="grid:row:outcome")

    for c, journey in enumerate(journeys):
        ax.text(c + 0.5, -0.4, titles[c], fontsize=FONT + 1, weight="bold", ha="center", va="center",
                color=INK, gid=f"grid:column:{c}")
        death = _death(journey)
        died_here = death.expected or death.last if death else None
        for r, point in enumerate(rows):
            hop = journey.hop(point) if point in journey.points else None
            on_path = bool(hop and (hop.on_path or hop.request or hop.reply))
            seen_any = bool(hop and (hop.request or hop.reply))
            edge, lw = (RED, 3.5) if point == died_here else ("#BBBBBB", 1)
            ax.add_patch(Rectangle((c + 0.02, r + 0.04), 0.96, 0.92,
                                   facecolor="white" if seen_any else "#EFEFEF", edgecolor=edge, linewidth=lw, zorder=1, gid=f"grid:cell:{c}:{point}"))
            if not on_path:
                ax.text(c + 0.5, r + 0.5, "off the path", fontsize=FONT - 1, color=GREY,
                        ha="center", va="center", style="italic", gid=f"grid:{c}:{point}:offpath")
                continue
            for k, kind in enumerate(("request", "reply")):
                color, _, tag = _KINDS[kind]
                y = r + 0.3 + 0.4 * k
                seen = getattr(hop, kind) is not None
                rewritten = journey.rewritten(point, kind)
                ax.text(c + tag_x, y, tag, fontsize=FONT, weight="bold", ha="left", va="center",
                        color=color if seen else GREY, gid=f"grid:{c}:{point}:{kind}:tag")
                ax.text(c + text_x, y, journey.addresses(point, kind) if seen else "not seen",
                        fontsize=FONT, ha="left", va="center",
                        color=(RED if rewritten else color) if seen else GREY,
                        weight="bold" if rewritten else "normal", style="normal" if seen else "italic",
                        gid=f"grid:{c}:{point}:{kind}")
            if point == died_here:
                ax.text(c + 0.96, r + (0.3 if death.kind == "request" else 0.7), "✘", fontsize=FONT + 10,
                        color=RED, ha="right", va="center",
                        weight="bold", gid=f"grid:{c}:{point}:died")
        # the outcome row
        ax.add_patch(Rectangle((c + 0.02, height + 0.1), 0.96, tall, facecolor="white",
                               edgecolor="#BBBBBB", linewidth=1, zorder=1))
        word = "✔ delivered" if journey.delivered else "✘ not delivered"
        ax.text(c + 0.5, height + 0.4, word, fontsize=FONT + 3, weight="bold", ha="center", va="center",
                color=INK if journey.delivered else RED, gid=f"grid:{c}:outcome")
        if whys[c]:
            ax.text(c + 0.5, height + 0.68, whys[c], fontsize=FONT - 1, linespacing=1.25,
                    ha="center", va="top", color=RED, gid=f"grid:{c}:verdict")

    key = []
    if any(j.rewritten(p, k) for j in journeys for p in j.points for k in ("request", "reply")):
        key.append("red addresses: rewritten on the way (NAT)")
    if not all(j.delivered for j in journeys):
        key.append("✘ and red frame: where the probe died")
    ax.text(-head / cell, height + tall + 0.4, "      ".join(key), fontsize=FONT - 1, color=GREY, ha="left",
            va="center", gid="grid:key")
    first = journeys[0]
    same = all((j.src, j.dst) == (first.src, first.dst) for j in journeys)
    title = f"{first.src} → {first.dst}: what changed" if same else "what changed"
    ax.set_title(title, fontsize=FONT + 4, weight="bold", loc="left")
    return fig


# A picture of a replayed journey carries the replay label as a footnote line (netkit.provenance).
from .provenance import labels_pictures as _labels_pictures  # noqa: E402

lab_map, ladder, grid = _labels_pictures(lab_map), _labels_pictures(ladder), _labels_pictures(grid)
