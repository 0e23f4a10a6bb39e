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
  way back beside it, and a red X marks where the probe died.
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
from matplotlib.textpath import TextPath

from .journey import Journey, Sighting
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
    """Where a probe died: which packet, the last point it was seen, the next it should have reached."""

    kind: str
    last: str | None
    expected: str | None


def _path(journey: Journey) -> list[str]:
    return [hop.point for hop in journey.hops if hop.on_path]


def _seen_along(journey: Journey, kind: str) -> list[str]:
    """The on-path points where `kind` was seen, in the order that packet travels."""
    path = _path(journey)
    if kind == "reply":
        path.reverse()
    return [p for p in path if journey.seen(p, kind)]


def _death(journey: Journey) -> _Death | None:
    if journey.delivered:
        return None
    path = _path(journey)
    if not path:
        return _Death("request", None, journey.died_at)
    for kind, way in (("request", path), ("reply", path[::-1])):
        seen = [p for p in way if journey.seen(p, kind)]
        if not seen:
            return _Death(kind, None, way[0])
        if seen[-1] != way[-1]:
            return _Death(kind, seen[-1], way[way.index(seen[-1]) + 1])
    return _Death("reply", path[0], None)   # the reply came all the way back, yet no answer


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
    nat = next((v.verdict for v in journey.verdicts if v.verdict in ("MASQUERADE", "SNAT", "DNAT")), "")
    return f"{what} rewritten by NAT" + (f" ({nat})" if nat else "")


def _inches(text: str, size: float = FONT, weight: str = "normal") -> float:
    """How wide `text` is drawn, in inches: lays out cells and columns before drawing."""
    prop = FontProperties(weight=weight)
    return max((TextPath((0, 0), line, size=size, prop=prop).get_extents().width if line.strip() else 0.0)
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

# Where each point sits on the map (data units; the map is 21 x 12.6).
_XY = {
    "c1:eth0": (3.5, 9.0), "host:veth0": (3.5, 7.0), "host:hwchiu0": (6.5, 5.0),
    "host:veth1": (9.5, 7.0), "c2:eth0": (9.5, 9.0),
    "host:eth0": (13.5, 2.4), "internet:eth0": (16.5, 2.4),
}
# Where the map writes the addresses a packet had after they changed, per point and packet.
_NAT_SLOT = {
    ("host:eth0", "request"): (14.6, 3.9), ("internet:eth0", "request"): (14.6, 3.9),
    ("host:eth0", "reply"): (15.0, 1.2), ("internet:eth0", "reply"): (15.0, 1.2),
    ("host:hwchiu0", "reply"): (4.3, 3.3), ("host:veth0", "reply"): (1.8, 8.0),
    ("c1:eth0", "reply"): (1.8, 8.0), ("host:veth1", "request"): (11.3, 8.0),
    ("c2:eth0", "request"): (11.3, 8.0), ("host:hwchiu0", "request"): (4.3, 3.3),
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


def _draw_topology(ax: Axes, bridge_address: str | None) -> None:
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


def _map_path(ax: Axes, journey: Journey) -> None:
    # each packet keeps to the right of its way, so request and reply sit side by side
    for kind in ("request", "reply"):
        color, style, _ = _KINDS[kind]
        points = [p for p in _seen_along(journey, kind) if p in _XY]
        for a, b in zip(points, points[1:]):
            ax.add_patch(FancyArrowPatch(path=_way(a, b, _LANE), arrowstyle="-|>", mutation_scale=24,
                                         color=color, linewidth=4, linestyle=style, zorder=5,
                                         gid=f"map:{kind}:{b}"))
        for point in points:
            slot = _NAT_SLOT.get((point, kind))
            if slot and journey.rewritten(point, kind) and _changed(journey, point, kind):
                how = "rewritten by NAT" if kind == "request" else "NAT undone by conntrack"
                ax.text(*slot, journey.addresses(point, kind) + "\n" + how,
                        fontsize=FONT, color=RED, ha="center", va="center", weight="bold", zorder=6,
                        linespacing=1.3, gid=f"map:rewritten:{kind}:{point}",
                        bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor=RED, lw=1.5))


def _map_death(ax: Axes, journey: Journey) -> None:
    death = _death(journey)
    if death is None:
        return
    if death.last in _XY and death.expected in _XY:
        # it set off from the last point and never arrived: half its arrow, then the X
        stub, (x, y) = _halfway(_way(death.last, death.expected, _LANE))
        color, style, _ = _KINDS[death.kind]
        ax.add_patch(FancyArrowPatch(path=stub, arrowstyle="-", color=color, linewidth=4, linestyle=style,
                                     zorder=5, gid=f"map:lost:{death.kind}"))
        _died_marker(ax, x, y, size=36)
        return
    here = death.expected or death.last
    if here not in _XY:
        return
    x, y = _XY[here]
    way = _path(journey) if death.kind == "request" else _path(journey)[::-1]
    after = way[way.index(here) + 1:] if here in way else []
    if death.expected and after and after[0] in _XY:
        # it never left this point: the X sits on its way out, toward the next one
        tx, ty = _XY[after[0]]
        length = ((tx - x) ** 2 + (ty - y) ** 2) ** 0.5
        ux, uy = (tx - x) / length, (ty - y) / length
        step = min(length / 2, 1.0)
        x, y = x + ux * step, y + uy * step
        if death.kind == "reply":   # off the request's lane, onto the reply's (its right)
            x, y = x + uy * 0.6, y - ux * 0.6
    else:
        y -= 0.75
    _died_marker(ax, x, y, size=36)


def lab_map(journey: Journey | None = None, *, bridge_address: str | None = None,
            ax: Axes | None = None) -> Figure:
    """The lab as a picture: nodes, interfaces, addresses; with a journey, the probe's way.

    `bridge_address` is hwchiu0's address when the stage gave it one
    (``topology.BRIDGE_ADDRESS`` from scenario 2); None draws "no IP address".
    With `journey`, the request's path is a solid blue arrow through the
    points where it was seen, the reply a dashed green one, addresses that
    changed on the way are red, and a red X marks where the probe died, with
    the reason (and the verdict that dropped it) in the corner.
    """
    fig, ax = _new_axes(ax, (13, 8.4))
    ax.set_xlim(0, 21)
    ax.set_ylim(0.2, 12.4)
    ax.set_aspect("equal")
    ax.axis("off")
    _draw_topology(ax, bridge_address)
    if journey is None:
        ax.set_title("The lab: c1 and c2 on the bridge hwchiu0 in the host; the internet behind eth0",
                     fontsize=FONT + 3, weight="bold", loc="left")
        return fig
    _map_path(ax, journey)
    _map_death(ax, journey)
    sent, answered = journey.first("request"), journey.first("reply")
    handles = [Line2D([], [], color=REQUEST, lw=4,
                      label=f"request  {sent.addresses}" if sent else "request (never sent)"),
               Line2D([], [], color=REPLY, lw=4, linestyle="--",
                      label=f"reply  {answered.addresses}" if answered else "reply (none seen)")]
    if not journey.delivered:
        handles.append(Line2D([], [], color=RED, marker="X", markersize=18, linestyle="none",
                              markeredgecolor="white", label="where it died"))
    ax.legend(handles=handles, loc="upper right", bbox_to_anchor=(1.0, 1.0), fontsize=FONT + 1,
              frameon=False, handlelength=2.5)
    lines = [textwrap.fill(journey.reason, 32)] if journey.reason else []
    verdict = journey.dropped_by
    if verdict is not None and str(verdict) not in journey.reason:
        lines.append(textwrap.fill(f"dropped by {verdict}", 32))
    if verdict is not None and (verdict.iif or verdict.oif):
        lines.append(f"(in {verdict.iif or '?'}, out {verdict.oif or '?'})")
    color = INK if journey.delivered else RED
    ax.text(20.9, 9.2, "delivered ✔" if journey.delivered else "NOT delivered ✘", fontsize=FONT + 4,
            weight="bold", ha="right", va="top", color=color, gid="map:outcome")
    ax.text(20.9, 8.4, "\n".join(lines), fontsize=FONT, ha="right", va="top", color=color,
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
            ax.annotate(_label(journey.addresses(point, kind)), (xm, ym), xytext=(0, 9 if note else 0),
                        textcoords="offset points", fontsize=FONT, ha="center", va="center",
                        color=RED if rewritten else color, weight="bold" if rewritten else "normal",
                        zorder=6, bbox=box, gid=f"ladder:label:{kind}:{point}")
            if note:
                ax.annotate(_rewrite_note(journey, point, kind), (xm, ym), xytext=(0, -11),
                            textcoords="offset points", fontsize=FONT - 2, ha="center", va="center",
                            color=RED, style="italic", zorder=6, bbox=box, gid=f"ladder:note:{kind}:{point}")
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
    columns = _columns(journey) or ([journey.died_at] if journey.died_at else [])
    death = _death(journey)
    req_rows = max(len(_seen_along(journey, "request")) - 1, 0)
    rep_rows = max(len(_seen_along(journey, "reply")) - 1, 0)
    with_reply = journey.replied or bool(death and death.kind == "reply")
    reply_top = req_rows + (1.6 if with_reply else 0.5)
    bottom = (reply_top + rep_rows if with_reply else req_rows + 0.5) + (
        1.2 + 0.35 * _death_text(journey).count("\n") if death else 0.6)
    labels = [journey.addresses(p, k) or "" for p in journey.points for k in ("request", "reply")]
    spacing = max([2.4] + [_inches(_label(t), weight="bold") + 0.5 for t in labels])
    n = max(len(columns), 1)
    title = _outcome(journey)
    if journey.reason:
        title += "\n" + textwrap.fill(journey.reason, int(spacing * (n + 0.4) * 7))
    lines = title.count("\n") + 1
    fig, ax = _new_axes(ax, (spacing * (n + 0.4) / 0.96, 0.6 + 0.32 * lines + 0.72 * (bottom + 1.3)),
                        title_lines=lines)
    ax.set_xlim(-0.75, n - 0.35)
    ax.set_ylim(bottom, -1.3)
    ax.axis("off")

    for i, point in enumerate(columns):
        off = point in journey.points and not journey.hop(point).on_path
        ax.plot([i, i], [-0.25, bottom], color=GREY, lw=1.2, linestyle=(0, (4, 4)), zorder=1)
        ax.text(i, -0.95, point, fontsize=FONT + 2, weight="bold", ha="center", va="center",
                color=GREY if off else INK, gid=f"ladder:column:{point}")
        address = "off the path" if off else ADDRESSES.get(point, "").split("/")[0]
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
        ends = [x[p] for p in (death.last, death.expected) if p in x]
        if ends:
            cx = sum(ends) / len(ends)
            if death.last is None:
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
    order = {p: i for i, p in enumerate(POINTS)}
    rows = sorted({p for j in journeys for p in _columns(j)}, key=lambda p: order.get(p, len(order)))
    n, height = len(journeys), len(rows)
    texts = [j.addresses(p, k) or "" for j in journeys for p in j.points for k in ("request", "reply")]
    titles = [textwrap.fill(j.label or f"{j.src} → {j.dst}", 28) for j in journeys]
    cell = max([3.0] + [_inches(t, weight="bold") + 1.45 for t in texts]
               + [_inches(t, FONT + 1, "bold") + 0.2 for t in titles])      # inches
    head = max(_inches(p, FONT + 1, "bold") for p in rows + ["outcome"]) + 0.35
    fig, ax = _new_axes(ax, ((head + cell * n + 0.1) / 0.96, 1.5 + 0.95 * (height + 2.3)))
    ax.set_xlim(-head / cell, n + 0.02)
    ax.set_ylim(height + 1.95, -0.8)
    ax.axis("off")
    tag_x, text_x = 0.15 / cell, 0.85 / cell      # in cell widths

    for r, point in enumerate(rows):
        ax.text(-0.1 / cell, r + 0.5, point, fontsize=FONT + 1, weight="bold", ha="right", va="center",
                color=INK, gid=f"grid:row:{point}")
    ax.text(-0.1 / cell, height + 0.75, "outcome", fontsize=FONT + 1, weight="bold", ha="right",
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
        ax.add_patch(Rectangle((c + 0.02, height + 0.1), 0.96, 1.35, facecolor="white",
                               edgecolor="#BBBBBB", linewidth=1, zorder=1))
        word = "✔ delivered" if journey.delivered else "✘ not delivered"
        ax.text(c + 0.5, height + 0.4, word, fontsize=FONT + 3, weight="bold", ha="center", va="center",
                color=INK if journey.delivered else RED, gid=f"grid:{c}:outcome")
        why = f"dropped by {journey.dropped_by}" if journey.dropped_by else (
            "" if journey.delivered else journey.reason)
        if why:
            ax.text(c + 0.5, height + 0.68, textwrap.fill(why, int(cell * 8)), fontsize=FONT - 1,
                    ha="center", va="top", color=RED, gid=f"grid:{c}:verdict")

    key = []
    if any(j.rewritten(p, k) for j in journeys for p in j.points for k in ("request", "reply")):
        key.append("red addresses: rewritten on the way (NAT)")
    if not all(j.delivered for j in journeys):
        key.append("✘ and red frame: where the probe died")
    ax.text(-head / cell, height + 1.75, "      ".join(key), fontsize=FONT - 1, color=GREY, ha="left",
            va="center", gid="grid:key")
    first = journeys[0]
    same = all((j.src, j.dst) == (first.src, first.dst) for j in journeys)
    title = f"{first.src} → {first.dst}: what changed" if same else "what changed"
    ax.set_title(title, fontsize=FONT + 4, weight="bold", loc="left")
    return fig
