"""Pictures of a probe's journey: the lab map, the packet ladder, the before/after grid.

Pure functions: a `Journey` (or a few) in, a `matplotlib.figure.Figure`
out. Nothing here touches the kernel or imports pyplot, and matplotlib's
settings are left as they were (fonts are chosen per picture), so the same
code draws a journey the lab just recorded and one read back from
``tests/data/*.json``::

    fig = ladder(journey)               # Jupyter shows the figure
    fig.savefig("ladder.png")

Every function also draws into an Axes you give it (``ax=``) and returns
that Axes' figure, so a notebook can put two pictures side by side.

The three pictures answer the article's questions:

- `lab_map`: where is everything (nodes, interfaces, addresses), and which
  way did the probe go? veth0 and veth1 are drawn as ports of the bridge
  hwchiu0, whose own interface (a circle) is where the host's routing meets
  it; a legend explains every symbol drawn. Part 4's pieces (the host's eth1,
  the outside machine) and the host's ``lo`` are drawn when the journey needs
  them.
- `ladder`: what did the packet look like at each point, and what acted on
  it in between? Points are columns in path order; the request steps down
  left to right, the reply comes back below it right to left, each arrow
  labelled ``src > dst`` as seen where it arrives. Under each step, the
  netfilter hooks it passed (PREROUTING, routing, FORWARD, POSTROUTING, ...)
  with the table and verdict that acted, rules numbered and spelled out at
  the foot.
- `grid`: what did one step change? One column per condition (the
  journeys' labels), one row per point, each cell saying whether the request
  and the reply were seen there; the last row says delivered or not, and
  why. Columns wrap into bands to keep the picture narrow.

One visual language, safe for colour-blind eyes (Okabe-Ito colours, each
with a second cue that is not colour):

- the request is `REQUEST` blue, solid, pointing right (``→``); the reply is
  `REPLY` bluish green, dashed, pointing left (``←``); `GREY` is what was
  not seen or is off the path;
- an address NAT rewrote sits in a `REWRITE` orange box, with a ``◆`` tag
  naming what rewrote it (MASQUERADE, DNAT, or conntrack undoing it on the
  reply), read from ``journey.outcome.rewrites``;
- `RED` means the probe died, and nothing else: one ✘ mark, put where
  ``journey.mark`` says (the outcome's point and node) in the table, the
  ladder, the grid and the map alike. A delivered journey has no red.

Pictures are at most `WIDTH` inches wide (JupyterLab's output area at 100
dpi) with text no smaller than 10 points, for a projector. Labels fall back
to Noto Sans CJK when a glyph is missing from DejaVu Sans, so Chinese text
(the article's own words) shows.

Artists that tests (and curious students) look for carry a gid, e.g.
``ladder:request:host:eth0`` for the arrow that arrives at host:eth0,
``died`` for the ✘, ``ladder:hook:request:host:eth0:FORWARD`` for a hook's
line, ``grid:1:host:eth0:request`` for the request's text in a grid's second
column. A gid names what an artist shows, never how it is drawn.
"""

from __future__ import annotations

import functools
import glob
import io
import math
import re
import textwrap
import unicodedata
from typing import Sequence

from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.path import Path
from matplotlib.textpath import text_to_path

from .hooks import RULE, Line, between, local_dnat, made_at, seen_along, steps
from .hooks import tag as rewrite_tag
from .hooks import path as _path
from .netfilter import HOOKS
from .i18n import _, translated
from .journey import Journey, kind_word
from .topology import ADDRESSES, BRIDGE, POINTS

__all__ = ["lab_map", "ladder", "grid", "REQUEST", "REPLY", "REWRITE", "RED", "GREY", "WIDTH"]

REQUEST = "#0072B2"   # Okabe-Ito blue: the request
REPLY = "#009E73"     # Okabe-Ito bluish green: the reply
REWRITE = "#E69F00"   # Okabe-Ito orange: the box around an address NAT rewrote (never text: too light on white)
REWRITE_FACE = "#FCEBC2"
RED = "#D62728"       # the probe died here; nothing else is red
GREY = "#8C8C8C"      # not seen, off the path
INK = "#1F1F1F"
FONT = 12             # base font size, in points
SMALL = 10            # the smallest text drawn: still readable on a projector
WIDTH = 9.6           # inches: no picture is wider (JupyterLab's output area is about 980 px at 100 dpi)

_KINDS = {"request": (REQUEST, "-", "→"), "reply": (REPLY, "--", "←")}
RELAY = "#CC79A7"     # Okabe-Ito reddish purple: the second connection a program on the host opened (docker-proxy)
_REWRITE_BOX = dict(boxstyle="round,pad=0.25", facecolor=REWRITE_FACE, edgecolor=REWRITE, linewidth=2.2)
_WHITE_BOX = dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.92)


# -- fonts -----------------------------------------------------------------------------

_CJK = ("Noto Sans CJK TC", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans TC", "Noto Sans CJK")
_CJK_FILES = ("/usr/share/fonts/**/NotoSansCJK*", "/usr/local/share/fonts/**/NotoSansCJK*",
              "/opt/conda/fonts/**/NotoSansCJK*")


@functools.lru_cache(maxsize=1)
def families() -> tuple[str, ...]:
    """The font families the pictures use: DejaVu Sans, then a CJK font when one is installed.

    matplotlib falls back glyph by glyph along the list, so Chinese labels
    (封包, 橋接器) come out in Noto Sans CJK and the rest in DejaVu Sans.
    matplotlib's font cache predates fonts installed after it was built
    (``apt-get install fonts-noto-cjk``), so known files are added to it.
    """
    known = {f.name for f in font_manager.fontManager.ttflist}
    if not any(name in known for name in _CJK):
        for pattern in _CJK_FILES:
            for path in sorted(glob.glob(pattern, recursive=True)):
                if path.lower().endswith((".ttc", ".otf", ".ttf")):
                    try:
                        font_manager.fontManager.addfont(path)
                    except (OSError, RuntimeError, ValueError):
                        continue
        known = {f.name for f in font_manager.fontManager.ttflist}
    return ("DejaVu Sans",) + tuple(name for name in _CJK if name in known)[:1]


def _styled(draw):
    """Draw with the pictures' fonts; every text keeps them, and matplotlib's settings are restored after."""
    @functools.wraps(draw)
    def drawing(*args, **kwargs):
        with rc_context({"font.family": list(families()), "svg.fonttype": "none"}):
            return draw(*args, **kwargs)
    return drawing


def _inches(text: str, size: float = FONT, weight: str = "normal") -> float:
    """How wide `text` is drawn, in inches: lays out cells and columns before drawing (font metrics)."""
    prop = FontProperties(weight=weight, size=size)
    return max((text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0] if line.strip() else 0.0)
               for line in text.split("\n")) / 72


def _tall(text: str, size: float = FONT, spacing: float = 1.3) -> float:
    """How tall `text` is drawn, in inches."""
    return (text.count("\n") + 1) * size * spacing / 72


# -- wrapping text that may be Chinese ------------------------------------------------
# Chinese has no spaces between words: a line may break between any two of its characters, each as wide
# as two Latin letters, but never before a closing mark (，。：）) nor after an opening one (（「).
_WIDE = "\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
_CHUNKS = re.compile(f"\\s+|[{_WIDE}]|[^\\s{_WIDE}]+")
_CLOSING, _OPENING = "，。、：；！？）」』》", "（「『《"


def _wide(text: str) -> bool:
    return bool(re.search(f"[{_WIDE}]", text))


def _span(text: str) -> int:
    """How many columns `text` takes where a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _chunks(text: str) -> list[str]:
    """`text` cut where a line may break: words, spaces, and each Chinese character on its own."""
    return _CHUNKS.findall(text)


def _words(text: str) -> list[str]:
    """The pieces of `text` a line never breaks: its words (in Chinese, each character with its marks)."""
    return [word for _, word in _pieces(text) if word] if _wide(text) else text.split()


def _fill(text: str, width: int, subsequent_indent: str = "", **options) -> str:
    """`textwrap.fill` (the same for English), for text that may hold Chinese: `width` in columns, a
    Chinese character two, lines breaking between Chinese characters too."""
    if not _wide(text):
        return textwrap.fill(text, width, subsequent_indent=subsequent_indent, **options)
    lines = [""]
    for chunk in _chunks(text):
        if chunk.isspace():
            lines[-1] += " " if lines[-1].strip() else ""
            continue
        if _span(lines[-1] + chunk) > width and lines[-1].strip() and chunk not in _CLOSING:
            carried = lines[-1].rstrip()
            moved = carried[-1] if carried[-1] in _OPENING and carried[:-1].strip() else ""
            lines[-1] = carried[:len(carried) - len(moved)]
            lines.append(subsequent_indent + moved)
        lines[-1] += chunk
    return "\n".join(line.rstrip() for line in lines)


# -- what a journey says, in the terms the pictures need ------------------------

def _reset(journey: Journey) -> bool:
    """True when the reply was a TCP reset: the connection was refused."""
    return any(hop.reply is not None and hop.reply.reset for hop in journey.hops)


def _outcome(journey: Journey) -> str:
    said = _("{src} → {dst} ({proto}): delivered") if journey.delivered else \
        _("{src} → {dst} ({proto}): NOT delivered")
    return said.format(src=journey.src, dst=journey.dst, proto=journey.proto)


def _why(journey: Journey) -> str:
    """What the outcome says, for the death's note: the dropping verdict (and its way), else the reason."""
    verdict = journey.dropped_by
    if verdict is not None:
        if verdict.iif or verdict.oif:
            return _("dropped by {verdict} (in {iif}, out {oif})").format(
                verdict=verdict, iif=verdict.iif or "?", oif=verdict.oif or "?")
        return _("dropped by {verdict}").format(verdict=verdict)
    return journey.reason or _("not delivered")


def _label(text: str, limit: int = 25) -> str:
    """Long ``src:port > dst:port`` labels break before the ``>``."""
    return text if len(text) <= limit else text.replace(" > ", "\n> ")


def _rewritten(journey: Journey, point: str, kind: str) -> bool:
    """Does `kind` carry an address NAT rewrote at `point` (the outcome's rewrites, or the host's own DNAT)?"""
    if point not in journey.points or not journey.seen(point, kind):
        return False
    return bool(journey.rewrites_at(point, kind)) or (kind == "request" and local_dnat(journey) is not None)


def _made(journey: Journey, point: str, kind: str) -> bool:
    """Was an address of `kind` rewritten here: first seen rewritten at `point`?"""
    first = journey.first("request")
    return bool(made_at(journey, point, kind)) or (
        kind == "request" and first is not None and first.point == point and local_dnat(journey) is not None)


class LabFigure(Figure):
    """A Figure that Jupyter shows as a picture without pyplot (nothing global is switched on)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        return buffer.getvalue()


def _new_axes(ax: Axes | None, size: tuple[float, float], title: float = 0.55) -> tuple[Figure, Axes]:
    """The caller's Axes, or a new Figure of `size` inches whose one Axes fills it but `title` inches on top."""
    if ax is not None:
        return ax.figure, ax
    fig = LabFigure(figsize=(min(size[0], WIDTH), size[1]), facecolor="white")
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - title / size[1])
    return fig, ax


def _died_marker(ax: Axes, x: float, y: float, size: float = 26) -> None:
    ax.plot([x], [y], linestyle="none", marker="X", markersize=size, color=RED,
            markeredgecolor="white", markeredgewidth=2, zorder=10, gid="died")




# -- 1. the lab map ---------------------------------------------------------------
# The map is drawn in inches (one data unit is one inch on its own figure, `WIDTH` wide). The bridge
# hwchiu0 is a box whose top edge carries its ports veth0 and veth1 (each a veth pair's host end) and
# whose bottom edge carries hwchiu0 itself, the bridge's own interface, where the host's routing meets it.

_XY = {
    "c1:eth0": (1.75, 5.7), "host:veth0": (1.75, 4.45), "host:hwchiu0": (2.95, 3.35),
    "host:veth1": (4.15, 4.45), "c2:eth0": (4.15, 5.7),
    "host:eth0": (6.15, 2.2), "internet:eth0": (7.5, 2.2),
    "host:eth1": (2.95, 0.45), "outside:eth0": (2.95, -0.6), "host:lo": (0.95, 2.05),
}
_PART4 = ("host:eth1", "outside:eth0")       # drawn only when the map shows the outside machine
_TOP, _LOW3, _LOW4 = 6.85, -0.75, -2.0       # the map's upper edge; its lower edge without / with part 4
_BRIDGED = (2.95, 3.8)                       # the bend that takes a bridged frame through hwchiu0, port to port
_LANE = -0.1                                 # each packet keeps this far to the right of its way
_PORTS = ("host:veth0", "host:veth1")
# Where the ✘ goes for a packet that stopped at a point (refused there, not sent, no route back):
# inside the node, beside the interface.
_INSIDE = {
    "c1:eth0": (2.45, 5.98), "c2:eth0": (4.85, 5.98), "internet:eth0": (8.15, 2.2),
    "host:eth0": (5.65, 1.75), "host:eth1": (3.5, 0.85), "outside:eth0": (3.6, -0.95),
    "host:lo": (1.6, 2.05), "host:hwchiu0": (2.4, 3.0), "host:veth0": (1.75, 3.95), "host:veth1": (4.15, 3.95),
}
# Where notes about rewritten addresses go (left edge, top), in the host below the bridge, with a
# leader line to the arrow that arrived where the rewrite was first seen.
_NOTE_SLOTS = ((0.25, 1.6, 2.5), (3.2, 1.6, 2.8))   # (left edge, top, widest): left of eth1's way, right of it

_BOXES = {"c": "#FFF4D6", "host": "#F3F3F3", "bridge": "#DDE6EE", "internet": "#E4F0F8", "outside": "#EEEAF6"}


def _box(ax, x0, y0, x1, y1, *, face, edge=INK, lw=1.5, style="round,pad=0,rounding_size=0.15", zorder=1, **kw):
    ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle=style,
                                facecolor=face, edgecolor=edge, linewidth=lw, zorder=zorder, **kw))


def _interface(ax, point: str, name: str, *, face: str = "white", dashed: bool = False) -> None:
    x, y = _XY[point]
    half = max(0.3, _inches(name, FONT, "bold") / 2 + 0.1)
    _box(ax, x - half, y - 0.15, x + half, y + 0.15, face=face, lw=1.8, style="round,pad=0,rounding_size=0.07",
         zorder=2.5, gid=f"map:interface:{point}", linestyle="--" if dashed else "-")
    ax.text(x, y, name, fontsize=FONT, weight="bold", ha="center", va="center", color=INK, zorder=3)


def _cable(ax, a: tuple, b: tuple, gid: str) -> None:
    ax.plot([a[0], b[0]], [a[1], b[1]], color=INK, lw=2.2, zorder=0.8, gid=gid)


def _routed(ax, a: tuple, b: tuple, gid: str) -> None:
    ax.plot([a[0], b[0]], [a[1], b[1]], color=GREY, lw=2.2, linestyle=":", zorder=1.5, gid=gid)


def _draw_topology(ax: Axes, bridge_address: str | None, outside: bool, lo: bool) -> None:
    text = dict(ha="center", va="center", color=INK, zorder=3)
    low = 0.45
    # the host
    _box(ax, 0.1, low, _XY["host:eth0"][0], 5.15, face=_BOXES["host"], gid="map:node:host")
    ax.text(0.25, 4.92, "host", fontsize=FONT + 3, weight="bold", ha="left", va="center", color=INK)
    # the containers, each a veth pair's far end
    for node, point, port in (("c1", "c1:eth0", "host:veth0"), ("c2", "c2:eth0", "host:veth1")):
        x, y = _XY[point]
        _box(ax, x - 1.05, y, x + 1.05, _TOP, face=_BOXES["c"], gid=f"map:node:{node}")
        ax.text(x, y + 0.85, _("{node} (container)").format(node=node), fontsize=FONT + 1, weight="bold", **text)
        ax.text(x, y + 0.45, ADDRESSES[point], fontsize=FONT - 1, **text)
        _cable(ax, (x, y), _XY[port], f"map:cable:{node}")
        _interface(ax, point, "eth0")
    ax.text(1.6, 5.42, _("veth pair"), fontsize=SMALL, color=GREY, ha="right", va="center", style="italic")
    # the bridge: its ports on top, its own interface below
    bx, by = _XY["host:hwchiu0"]
    _box(ax, 0.35, by, 5.0, _XY["host:veth0"][1], face=_BOXES["bridge"], lw=2, gid="map:node:hwchiu0")
    ax.text(0.5, 4.1, BRIDGE, fontsize=FONT + 1, weight="bold", ha="left", va="center", color=INK, zorder=3)
    ax.text(0.5, 3.72, _("Linux bridge"), fontsize=SMALL, ha="left", va="center", color=GREY, zorder=3)
    for port in _PORTS:
        _interface(ax, port, port.split(":")[1], face=_BOXES["bridge"])
    ax.add_patch(Circle((bx, by), 0.14, facecolor="white", edgecolor=INK, linewidth=2, zorder=4,
                        gid="map:interface:host:hwchiu0"))
    ax.text(bx - 0.22, by - 0.2, bridge_address or _("no IP address"), fontsize=FONT - 1 if bridge_address else SMALL,
            ha="right", va="top", color=INK if bridge_address else GREY,
            style="normal" if bridge_address else "italic", zorder=3, gid="map:bridge-address")
    # the host's routing joins hwchiu0, eth0 (and eth1, lo)
    ex, ey = _XY["host:eth0"]
    _routed(ax, (bx, by), (ex, ey), "map:routed:eth0")
    ax.text(4.75, 2.3, _("routing + iptables"), fontsize=SMALL, color=GREY, ha="center", va="center",
            style="italic", zorder=1.6)
    _interface(ax, "host:eth0", "eth0")
    ax.text(ex - 0.1, ey - 0.36, ADDRESSES["host:eth0"], fontsize=FONT - 1, ha="right", va="center", color=INK)
    # the internet
    _box(ax, 7.5, 0.9, 9.5, 3.55, face=_BOXES["internet"], style="round,pad=0,rounding_size=0.45",
         gid="map:node:internet")
    ax.text(8.5, 3.2, "internet", fontsize=FONT + 2, weight="bold", **text)
    ax.text(8.5, 2.75, "lo: 8.8.8.8, 1.1.1.1", fontsize=FONT - 1, **text)
    ax.text(7.6, 1.82, ADDRESSES["internet:eth0"], fontsize=FONT - 1, ha="left", va="center", color=INK)
    ax.text(8.5, 1.25, _("routes back only\nto 10.0.2.0/24"), fontsize=SMALL, color=GREY, ha="center", va="center",
            style="italic", linespacing=1.2)
    _cable(ax, (ex, ey), _XY["internet:eth0"], "map:cable:internet")
    _interface(ax, "internet:eth0", "eth0")
    if lo:
        lx, ly = _XY["host:lo"]
        _routed(ax, (bx, by), (lx, ly), "map:routed:lo")
        _interface(ax, "host:lo", "lo", dashed=True)
        ax.text(lx, ly - 0.32, _("its own addresses"), fontsize=SMALL, color=GREY, ha="center", va="center",
                style="italic", gid="map:lo-caption")
    if outside:
        _draw_outside(ax)


def _draw_outside(ax: Axes) -> None:
    """Part 4: the host's eth1 on its lower edge, and below it the other machine on 172.17.9.0/24."""
    bx, by = _XY["host:hwchiu0"]
    hx, hy = _XY["host:eth1"]
    ox, oy = _XY["outside:eth0"]
    _routed(ax, (bx, by), (hx, hy), "map:routed:eth1")
    _interface(ax, "host:eth1", "eth1")
    ax.text(hx - 0.42, hy + 0.17, ADDRESSES["host:eth1"], fontsize=FONT - 1, ha="right", va="center", color=INK,
            zorder=3, gid="map:address:host:eth1")
    _cable(ax, (hx, hy), (ox, oy), "map:cable:outside")
    ax.text(ox - 0.3, (hy + oy) / 2, _("host-only network\n172.17.9.0/24"), fontsize=SMALL, color=GREY,
            ha="right", va="center", style="italic", linespacing=1.15)
    _box(ax, ox - 1.35, _LOW4 + 0.1, ox + 1.35, oy, face=_BOXES["outside"], gid="map:node:outside")
    ax.text(ox, oy - 0.42, ADDRESSES["outside:eth0"], fontsize=FONT - 1, ha="center", va="center", color=INK,
            zorder=3, gid="map:address:outside:eth0")
    ax.text(ox, oy - 0.8, "outside", fontsize=FONT + 1, weight="bold", ha="center", va="center", color=INK,
            zorder=3)
    ax.text(ox, oy - 1.12, _("(the article's other machine)"), fontsize=SMALL, ha="center", va="center",
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


def _edge(point: str, toward: tuple[float, float], gap: float = 0.08) -> tuple[float, float]:
    """Where the line from `point`'s centre to `toward` leaves its box (or the bridge's circle)."""
    (x, y), (tx, ty) = _XY[point], toward
    dx, dy = tx - x, ty - y
    length = (dx * dx + dy * dy) ** 0.5 or 1.0
    if point == "host:hwchiu0":
        reach = 0.14 + gap
    else:   # an interface box: about 0.32 either side, 0.15 above and below
        reach = min(0.32 / abs(dx / length) if dx else 99, 0.15 / abs(dy / length) if dy else 99) + gap
    return x + dx / length * reach, y + dy / length * reach


def _way(a: str, b: str, offset: float = _LANE) -> Path:
    """The map's drawing of a hop from point `a` to point `b`, moved `offset` to its left.

    A straight line, except that a frame bridged from one port to another
    (veth0 <-> veth1, never seen on hwchiu0 itself) bends down through the
    bridge: it is the bridge that forwards it.
    """
    (xa, ya), (xb, yb) = _XY[a], _XY[b]
    length = ((xb - xa) ** 2 + (yb - ya) ** 2) ** 0.5
    dx, dy = -(yb - ya) / length * offset, (xb - xa) / length * offset
    via = _BRIDGED if {a, b} == set(_PORTS) else None
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
    """The map's notes where NAT rewrote an address: (point, kind, addresses, ◆ tag, the point seen before).

    Read from the outcome's rewrites, at the point each was first seen; a
    DNAT the host made on its own packet before any point saw it (nat
    OUTPUT) is noted at the first point, from its verdict.
    """
    notes = []
    for kind in ("request", "reply"):
        points = [p for p in seen_along(journey, kind) if p in shown]
        for before, point in zip([None] + points, points):
            made = made_at(journey, point, kind)
            if made:
                notes.append((point, kind, _label(journey.addresses(point, kind)), rewrite_tag(journey, made), before))
    first = journey.first("request")
    local = local_dnat(journey)
    if local is not None and first is not None and first.point in shown:
        sent = f"{journey.dst}:{journey.dport}" if journey.dport else journey.dst
        tag = _("◆ DNAT in nat {chain}: dst\n(sent to {sent})").format(chain=local.chain, sent=sent)
        notes.append((first.point, "request", _label(first.addresses), tag, None))
    return notes


def _draw_notes(ax: Axes, journey: Journey, shown: set[str]) -> None:
    notes = [(note, _halfway(_way(note[4], note[0]) if note[4] else Path([_XY[note[0]]] * 2))[1])
             for note in _map_notes(journey, shown)]
    notes.sort(key=lambda n: n[1][0])   # the note about the leftmost arrow in the left slot: no leaders cross
    taken = [0.0, 0.0]
    for i, ((point, kind, addresses, tag, before), (tx, ty)) in enumerate(notes):
        slot = (0 if tx < _XY["host:hwchiu0"][0] else 1) if len(notes) == 1 else min(i, 1)
        x, top, widest = _NOTE_SLOTS[slot]
        top -= taken[slot]
        size = FONT - 1
        text = f"{addresses}\n{tag}"
        for width in range(40, 12, -2):   # wrap what rewrote it to the slot's width
            text = addresses + "\n" + "\n".join(_fill(line, width, subsequent_indent="   ")
                                                for line in tag.split("\n"))
            if _inches(text, size, "bold") <= widest:
                break
        tall = _tall(text, size, 1.25)
        taken[slot] += tall + 0.3
        ax.text(x, top - tall / 2, text, fontsize=size, color=_KINDS[kind][0], ha="left", va="center",
                weight="bold", zorder=6, linespacing=1.25, gid=f"map:rewritten:{kind}:{point}",
                bbox=_REWRITE_BOX)
        # a leader line from the note to the middle of the arrow that arrived there (or to the point)
        wide = _inches(text, size, "bold") + 0.1
        sx = min(max(tx, x), x + wide)
        sy = min(max(ty, top - tall), top)
        ax.plot([sx, tx], [sy, ty], color=REWRITE, lw=1.8, zorder=5.5, gid=f"map:leader:{kind}:{point}")
        ax.plot([tx], [ty], "o", color=REWRITE, markersize=6, zorder=6.5)


def _map_path(ax: Axes, journey: Journey, shown: set[str]) -> None:
    # each packet keeps to the right of its way, so request and reply sit side by side
    for kind in ("request", "reply"):
        color, style, arrow = _KINDS[kind]
        points = [p for p in seen_along(journey, kind) if p in shown]
        for a, b in zip(points, points[1:]):
            ax.add_patch(FancyArrowPatch(path=_way(a, b), arrowstyle="-|>", mutation_scale=18,
                                         color=color, linewidth=3, linestyle=style, zorder=5,
                                         gid=f"map:{kind}:{b}"))
    _draw_notes(ax, journey, shown)


def _map_relay(ax: Axes, journey: Journey, shown: set[str]) -> None:
    """The second connection of a relayed probe (docker-proxy's, from the host to the container), thinner and
    in its own colour, on the other side of its way; the legend names it."""
    onward = journey.relay.journey if journey.relay is not None else None
    if onward is None:
        return
    for kind in ("request", "reply"):
        style = _KINDS[kind][1]
        points = [p for p in seen_along(onward, kind) if p in shown]
        for a, b in zip(points, points[1:]):
            ax.add_patch(FancyArrowPatch(path=_way(a, b, offset=-_LANE), arrowstyle="-|>", mutation_scale=14,
                                         color=RELAY, linewidth=2.2, linestyle=style, zorder=5,
                                         gid=f"map:relay:{kind}:{b}"))


def _map_death(ax: Axes, journey: Journey, shown: set[str]) -> bool:
    """The ✘ where `journey.mark` says: on the way between two points, or inside a node beside its point."""
    mark = journey.mark
    if mark is None or mark.point not in shown:
        return False
    if mark.then in shown:
        # it set off from the point and never arrived at the next: half its way, then the ✘, and the hook
        stub, (x, y) = _halfway(_way(mark.point, mark.then))
        color, style, arrow = _KINDS[mark.packet]
        ax.add_patch(FancyArrowPatch(path=stub, arrowstyle="-", color=color, linewidth=3, linestyle=style,
                                     zorder=5, gid=f"map:lost:{mark.packet}"))
        _died_marker(ax, x, y, size=30)
        _map_hook(ax, journey, mark, x, y)
        return True
    x, y = _INSIDE.get(mark.point, _XY[mark.point])
    _died_marker(ax, x, y, size=30)
    _map_hook(ax, journey, mark, x, y)
    return True


def _map_hook(ax: Axes, journey: Journey, mark, x: float, y: float) -> None:
    """Beside the ✘ of a drop, the hook that dropped it and the verdict: ``FORWARD: DROP``. The hook is the
    outcome's (`netkit.netfilter.hook_of`): a drop in DOCKER-USER says FORWARD, as the ladder does."""
    if mark.hook:
        ax.annotate(f"{mark.hook}: {journey.dropped_by.verdict}" if journey.dropped_by else mark.hook,
                    (x, y), xytext=(17, 0), textcoords="offset points", fontsize=FONT - 1, color=RED,
                    weight="bold", ha="left", va="center", zorder=11, gid="map:death", bbox=_WHITE_BOX)


def _legend(ax: Axes, outside: bool, journey: Journey | None = None) -> None:
    """Explain every symbol the map drew, and only those (read back from the artists' gids)."""
    drawn = {(a.get_gid() or "") for a in ax.get_children()}

    def has(prefix: str) -> bool:
        return any(g.startswith(prefix) for g in drawn)

    def box(face):
        return Line2D([], [], linestyle="none", marker="s", markersize=13, markerfacecolor=face,
                      markeredgecolor=INK, markeredgewidth=1.6)
    entries = [
        (box("white"), _("interface: a point where packets are watched"), "interface"),
        (box(_BOXES["bridge"]), _("port of the bridge hwchiu0 (veth0, veth1)"), "port"),
        (Line2D([], [], linestyle="none", marker="o", markersize=11, markerfacecolor="white", markeredgecolor=INK,
                markeredgewidth=2), _("hwchiu0 itself: the bridge's own interface"), "bridge"),
        (Line2D([], [], color=INK, lw=2.2), _("cable: a veth pair or a link"), "cable"),
        (Line2D([], [], color=GREY, lw=2.2, linestyle=":"), _("routed by the host (ip_forward, iptables)"), "routed"),
    ]
    if has("map:interface:host:lo"):
        entries.append((Patch(facecolor="white", edgecolor=INK, linewidth=1.6, linestyle="--"),
                        _("lo: the host's loopback, for its own addresses (not watched)"), "lo"))
    if has("map:request") or has("map:lost:request"):
        entries.append((Line2D([], [], color=REQUEST, lw=3), _("→ request"), "request"))
    if has("map:reply") or has("map:lost:reply"):
        entries.append((Line2D([], [], color=REPLY, lw=3, linestyle="--"), _("← reply"), "reply"))
    if has("map:relay:request") and journey is not None and journey.relay is not None:
        onward = journey.relay.journey
        entries.append((Line2D([], [], color=RELAY, lw=2.2),
                        _("→ {program}'s own connection, {src} → {dst}:{port}").format(
                            program=journey.relay.program, src=onward.src_address, dst=onward.dst,
                            port=onward.dport), "relay"))
    if has("map:rewritten:"):
        entries.append((Patch(facecolor=REWRITE_FACE, edgecolor=REWRITE, linewidth=2.2),
                        _("◆ address rewritten by NAT (or undone)"), "rewrite"))
    if "died" in drawn:
        entries.append((Line2D([], [], color=RED, marker="X", markersize=15, linestyle="none",
                               markeredgecolor="white"), _("✘ where the probe died"), "died"))
    handles, labels, names = zip(*entries)
    spot, columns = ((4.55, 0.15), 1) if outside else ((0.1, 0.3), 2)
    legend = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=spot, bbox_transform=ax.transData,
                       ncol=columns, fontsize=SMALL, frameon=False, handlelength=2.2, columnspacing=1.2,
                       labelspacing=0.45, borderaxespad=0, borderpad=0)
    legend.set_gid("map:legend")
    for text, name in zip(legend.get_texts(), names):
        text.set_gid(f"map:legend:{name}")


def _fit_reason(journey: Journey, widest: float, tallest: float) -> tuple[str, float]:
    """The reason (and the dropping verdict's way in and out), wrapped to fit `widest` x `tallest` inches."""
    lines = [journey.reason] if journey.reason else []
    verdict = journey.dropped_by
    if verdict is not None and (verdict.iif or verdict.oif):
        lines.append(_("(in {iif}, out {oif})").format(iif=verdict.iif or "?", oif=verdict.oif or "?"))
    for size in (FONT - 1, SMALL + 0.5, SMALL):
        for width in range(60, 20, -2):
            text = "\n".join(_fill(line, width) for line in lines)
            if _inches(text, size) <= widest:
                break
        if _tall(text, size) <= tallest:
            return text, size
    return text, SMALL


@_styled
def lab_map(journey: Journey | None = None, *, bridge_address: str | None = None,
            outside: bool | None = None, ax: Axes | None = None) -> Figure:
    """The lab as a picture: nodes, interfaces, addresses; with a journey, the probe's way.

    veth0 and veth1 are ports on the bridge hwchiu0's top edge; hwchiu0's own
    interface (a circle on its lower edge) is where the host's routing meets
    the bridge, so a frame bridged from port to port (scenario 1) never
    reaches it while one routed to eth0 (scenario 2) does. A legend explains
    every symbol drawn. `bridge_address` is hwchiu0's address when the stage
    gave it one (``topology.BRIDGE_ADDRESS`` from scenario 2); None draws
    "no IP address".

    With `journey`, the request's way is a solid blue arrow through the
    points where it was seen, the reply a dashed green one; an address NAT
    rewrote is noted in an orange box, with a leader line to the arrow where
    it was first seen; the red ✘ sits where ``journey.mark`` says (between
    two points for a drop in the host, inside the node for one that stopped
    there), with the reason in the corner.

    `outside` draws part 4's pieces: the host's eth1 (172.17.9.103/24) and,
    below the host, the other machine ``outside`` (172.17.9.10/24). None
    (the default) draws them when the journey needs them. The host's ``lo``
    is drawn for the host's probe to one of its own addresses.
    """
    outside = _shows_outside(journey, outside)
    lo = journey is not None and journey.local
    if bridge_address is None and journey is not None and journey.relay is not None and journey.relay.journey:
        bridge_address = f"{journey.relay.journey.src_address}/24"   # the proxy spoke from the bridge's address
    low = _LOW4 if outside else _LOW3
    height = _TOP - low + 0.1
    fig, ax = _new_axes(ax, (WIDTH, height + 0.55), 0.55)
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(low, _TOP + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    _draw_topology(ax, bridge_address, outside, lo)
    shown = set(_XY) - (set() if outside else set(_PART4)) - (set() if lo else {"host:lo"})
    if journey is None:
        title = _("The lab: c1 and c2 on the bridge hwchiu0, in the host; the internet behind eth0")
        if outside:
            title = _("The lab, and part 4's other machine (outside) behind the host's eth1")
        ax.set_title(title, fontsize=FONT + 2, weight="bold", loc="left", x=0.01)
        _legend(ax, outside)
        return fig
    _map_path(ax, journey, shown)
    _map_relay(ax, journey, shown)
    _map_death(ax, journey, shown)
    _legend(ax, outside, journey)
    color = INK if journey.delivered else RED
    reason, size = _fit_reason(journey, 3.9, 2.2)
    ax.text(9.5, _TOP, _("delivered ✔") if journey.delivered else _("NOT delivered ✘"), fontsize=FONT + 3,
            weight="bold", ha="right", va="top", color=color, gid="map:outcome")
    ax.text(9.5, _TOP - 0.42, reason, fontsize=size, ha="right", va="top", color=color,
            linespacing=1.3, gid="map:reason")
    ax.set_title(_outcome(journey), fontsize=FONT + 3, weight="bold", loc="left", x=0.01)
    return fig


# -- 2. the packet ladder -----------------------------------------------------------

_HOOK_FONT = SMALL + 0.5          # the lines beside a step
_LINE = _HOOK_FONT * 1.45 / 72    # inches from one line to the next
_BEND = 0.18                      # a step's arrow leaves its point and bends down this far into the gap


def _columns(journey: Journey) -> list[str]:
    """Points to draw: the packet's path in order, then any other point where something was seen."""
    return _path(journey) + [h.point for h in journey.hops if not h.on_path and (h.request or h.reply)]


class _Rules:
    """The rules a ladder's lines name, numbered in the order they are first written."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def write(self, line: Line) -> str:
        text = line.text
        for command in line.rules:
            if command not in self.commands:
                self.commands.append(command)
            text = text.replace(RULE, f"[{self.commands.index(command) + 1}]", 1)
        return text


def _wrap(text: str, room: float, size: float = _HOOK_FONT) -> list[str]:
    """`text` in lines no wider than `room` inches (a first break after the hook's name), the rest indented."""
    if _inches(text, size, "bold") <= room:
        return [text]
    head, gap, rest = text.partition("  ")
    pieces = ([("", head)] + [(gap if i == 0 else sep, word) for i, (sep, word) in enumerate(_pieces(rest))]
              if gap else _pieces(text))
    lines = [pieces[0][1]]
    for sep, word in pieces[1:]:
        joined = f"{lines[-1]}{sep}{word}"
        if _inches(joined, size, "bold") > room and lines[-1].strip():
            lines.append(f"   {word}")
        else:
            lines[-1] = joined
    return lines


def _pieces(text: str) -> list[tuple[str, str]]:
    """`text` as (what comes before it, a piece a line never breaks): words after a space, and in Chinese each
    character (with its marks) after nothing."""
    if not _wide(text):
        return [("" if i == 0 else " ", word) for i, word in enumerate(text.split(" "))]
    pieces: list[tuple[str, str]] = []
    sep = ""
    for chunk in _chunks(text):
        if chunk.isspace():
            sep = " "
        elif pieces and not sep and (chunk in _CLOSING or pieces[-1][1][-1] in _OPENING):
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + chunk)
        else:
            pieces.append(("" if not pieces else sep, chunk))
            sep = ""
    return pieces or [("", "")]


def _laid_out(lines: list[Line], rules: _Rules, room: float) -> list[tuple[Line, str]]:
    """Each line's text, numbered and wrapped to `room`: (line, one printed line) in order."""
    return [(line, part) for line in lines for part in _wrap(rules.write(line), room)]


def _write_lines(ax, printed: list[tuple[Line, str]], x: float, y: float, color: str, gid: str,
                 stations: float | None, width: float = WIDTH) -> None:
    """Write a step's lines from (x, y) down, left-aligned, or right-aligned left of `stations` when they
    would not fit the picture's `width`; a small station on the arrow (at `stations`) marks each hook."""
    wide = max((_inches(text, _HOOK_FONT, "bold") for _, text in printed), default=0)
    ha = "left"
    if stations is not None and x + wide > width - 0.05 and stations - 0.15 - wide > 0.05:
        x, ha = stations - 0.15, "right"
    done = set()
    for i, (line, text) in enumerate(printed):
        style = dict(color=INK, weight="normal", style="normal", bbox=_WHITE_BOX)
        if line.dropped:
            style.update(color=RED, weight="bold")
        elif line.rewrote:
            style.update(weight="bold", bbox=dict(_REWRITE_BOX, pad=0.12, linewidth=1.6))
        elif line.hook not in HOOKS:
            style.update(color=GREY, style="italic")
        yy = y + (i + 0.5) * _LINE
        first = id(line) not in done
        done.add(id(line))
        name = "ladder:reset" if line.hook == "reset" else f"{gid}:{line.hook}" if first else f"{gid}:{line.hook}:more"
        ax.text(x, yy, text, fontsize=_HOOK_FONT, ha=ha, va="center", zorder=7, gid=name, **style)
        if stations is not None and first and line.hook in HOOKS:
            ax.plot([stations], [yy], "o", markersize=6, color=color, markerfacecolor="white", markeredgecolor=color,
                    markeredgewidth=1.8, zorder=6)


def _address_label(ax, journey: Journey, point: str, kind: str, x: float, y: float, size: float) -> None:
    """`kind`'s addresses at `point`, right-aligned at x, centred on y; an orange box if NAT rewrote them."""
    text = journey.addresses(point, kind)
    if _inches(text, size) > 1.9:
        text = _label(text)
    rewritten = _rewritten(journey, point, kind)
    x = max(x, _inches(text, size, "bold" if rewritten else "normal") + 0.15)
    ax.annotate(text, (x, y), fontsize=size, ha="right", va="center", color=_KINDS[kind][0],
                weight="bold" if rewritten else "normal", zorder=7, linespacing=1.25,
                bbox=_REWRITE_BOX if rewritten else _WHITE_BOX, gid=f"ladder:label:{kind}:{point}")


@_styled
def ladder(journey: Journey, *, ax: Axes | None = None) -> Figure:
    """The packet ladder: points as columns, the request stepping right, the reply coming back.

    Columns are the points on the packet's path (plus any other point where
    it was seen), in path order. Each arrow is one step of the request
    (solid blue, down to the right) or, below it, of the reply (dashed green,
    right to left); it bends down through the gap between its points, with
    the addresses it arrived with on its left (``src > dst``, in an orange
    box where NAT rewrote them) and on its right what acted on it on the way:
    the host's netfilter hooks, the routing (or the bridge's) decision, and
    the tables and verdicts, their rules spelled out at the foot. The host's
    own packets get the same list above their first point or below their
    last. The red ✘ sits where ``journey.mark`` says; the title says the
    outcome.
    """
    mark = journey.mark
    columns = _columns(journey) or ([mark.point] if mark else [])
    n = max(len(columns), 1)
    spacing = min(max((WIDTH - 0.8) / n, 1.3), 2.6)
    left = 0.45
    wide = min(max(left + spacing * n + 0.25, 6.2), WIDTH)
    x = {p: left + spacing * (i + 0.5) for i, p in enumerate(columns)}
    lines = {kind: between(journey, kind, mark) for kind in ("request", "reply")}
    with_reply = journey.replied or bool(mark and mark.packet == "reply") or any(
        any(v) for v in lines["reply"].values())
    size = FONT if spacing >= 1.6 else FONT - 1

    def room(at: float) -> float:
        return max(wide - at - 0.1, 1.6)

    # lay out the rows (inches down from the top), then draw; rules are numbered in reading order
    reason = _fill(journey.reason, int(wide * 8.2)) if journey.reason else ""
    said_h = _tall(reason, FONT, 1.3) + 0.12 if reason else 0.0
    heads = said_h + 0.2             # the columns' names
    rules = _Rules()
    plan: list[tuple] = []            # (what, kind, (a, b), top, height, printed lines)
    y = heads + 0.75
    for kind in ("request", "reply") if with_reply else ("request",):
        top = y
        for a, b in steps(journey, kind, mark):
            said = lines[kind].get((a, b), [])
            if a is None or b is None:                # the host's own stack: above the first point, below the last
                at = x.get(b or a or (mark.point if mark else ""), left + spacing / 2)
                if said and a is None:
                    said = [Line("reset", _("sent by the host itself: a TCP reset (RST)"))
                            if kind == "reply" and _reset(journey) else Line("socket", _("sent by the host itself"))] + said
                if said and b is None and said[-1].hook == "INPUT":
                    said = said + [Line("socket", _("to the host's own socket"))]
                printed = _laid_out(said, rules, max(room(at + 0.15), at - 0.25))
                if b is not None:
                    if printed:
                        plan.append(("sent", kind, (a, b), y, len(printed) * _LINE + 0.2, printed))
                        y += len(printed) * _LINE + 0.2
                    plan.append(("dot", kind, (a, b), y, 0, []))
                elif printed:
                    plan.append(("kept", kind, (a, b), y, len(printed) * _LINE + 0.2, printed))
                    y += len(printed) * _LINE + 0.2
                continue
            printed = _laid_out(said, rules, room((x[a] + x[b]) / 2 + 0.15))
            seen_as = journey.addresses(b, kind) or ""
            tall = _tall(_label(seen_as) if _inches(seen_as, size) > 1.9 else "", size, 1.25)
            need = max(0.62, 2 * _BEND + len(printed) * _LINE + 0.06, 2 * _BEND + tall + 0.1)
            if mark and mark.packet == kind and mark.then == b:
                plan.append(("lost", kind, (a, b), y, _BEND + len(printed) * _LINE + 0.35, printed))
                y += _BEND + len(printed) * _LINE + 0.55
            else:
                plan.append(("step", kind, (a, b), y, need, printed))
                y += need
                plan.append(("dot", kind, (a, b), y, 0, []))
        if mark and mark.packet == kind and not mark.then:
            drawn = [p for p in plan if p[1] == kind and p[0] != "dot"]
            y = top + 0.25 if not drawn and not seen_along(journey, kind) else y + 0.3
            plan.append(("died", kind, (mark.point, None), y, 0, []))
            y += 0.45
        y += 0.3
        if kind == "request" and with_reply:
            plan.append(("split", kind, (None, None), y, 0, []))
            y += 0.4
    foot = "\n".join(textwrap.fill(f"[{i + 1}] {c}", int((wide - 0.3) / (SMALL * 0.6 / 72)),
                                   subsequent_indent="      ") for i, c in enumerate(rules.commands))
    low = y + (_tall(foot, SMALL) + 0.15 if foot else 0)
    title = _outcome(journey)
    title_h = 0.55
    fig, ax = _new_axes(ax, (wide, low + title_h), title_h)
    ax.set_xlim(0, wide)
    ax.set_ylim(low, 0)
    ax.axis("off")

    for point in columns:
        off = point in journey.points and not journey.hop(point).on_path
        head = FONT + 1 if _inches(point, FONT + 1, "bold") < spacing - 0.08 else FONT - 1
        ax.text(x[point], heads, point, fontsize=head, weight="bold", ha="center", va="center",
                color=GREY if off else INK, gid=f"ladder:column:{point}")
        address = _("off the path") if off else ADDRESSES.get(point, "").split("/")[0]
        if point == "host:lo":
            address = _("the host's own addresses")
        if address:
            ax.text(x[point], heads + 0.3, address, fontsize=SMALL, ha="center", va="center", color=GREY)
        ax.plot([x[point]] * 2, [heads + 0.5, y - 0.2], color=GREY, lw=1.1, linestyle=(0, (4, 4)), zorder=1)

    sections = set()
    for what, kind, (a, b), y0, h, printed in plan:
        color, style, arrow = _KINDS[kind]
        gid = f"ladder:hook:{kind}:{b or a}"
        if what == "split":
            ax.plot([0.1, wide - 0.1], [y0] * 2, color="#CCCCCC", lw=1.2)
            continue
        if kind not in sections:
            sections.add(kind)
            ax.text(0.16, y0, kind_word(kind), fontsize=FONT, weight="bold", color=color, rotation=90, ha="center", va="top",
                    gid=f"ladder:section:{kind}")
        if what == "dot":
            ax.plot([x[b]], [y0], "o", color=color, markersize=9, zorder=5, gid=f"ladder:seen:{kind}:{b}")
        elif what in ("sent", "kept"):         # down the column, through the host's own hooks
            at = x.get(b or a or (mark.point if mark else ""), left + spacing / 2)
            ends = (y0, y0 + h - 0.04) if what == "sent" else (y0 + 0.04, y0 + h)
            ax.add_patch(FancyArrowPatch((at, ends[0]), (at, ends[1]), arrowstyle="-|>", mutation_scale=18,
                                         color=color, lw=2.6, linestyle=style, zorder=4, shrinkA=0, shrinkB=0,
                                         gid=f"ladder:{kind}-{'sent' if what == 'sent' else 'kept'}:{b or a}"))
            _write_lines(ax, printed, at + 0.15, y0 + 0.1, color, gid, at, wide)
        elif what in ("step", "lost"):
            xa, xb = x[a], x[b]
            xm = (xa + xb) / 2
            if what == "step":
                y1 = y0 + h
                way = [(xa + (xm - xa) * 0.06, y0 + _BEND * 0.06), (xm, y0 + _BEND), (xm, y1 - _BEND),
                       (xb - (xb - xm) * 0.06, y1 - _BEND * 0.06)]
                ax.add_patch(FancyArrowPatch(path=Path(way), arrowstyle="-|>", mutation_scale=20, color=color,
                                             linewidth=2.6, linestyle=style, zorder=4, joinstyle="round",
                                             gid=f"ladder:{kind}:{b}"))
                _address_label(ax, journey, b, kind, xm - 0.13, (y0 + y1) / 2, size)
            else:   # it set off for `b` and died on the way, at the hook that dropped it
                yx = y0 + h
                ax.plot([xa, xm, xm], [y0, y0 + _BEND, yx], color=color, lw=2.6, linestyle=style, zorder=4,
                        gid=f"ladder:lost:{kind}")
                _died_marker(ax, xm, yx)
                words = mark.words
                verdict = journey.dropped_by
                if verdict is not None:
                    said = _("{words}: {table} policy {verdict}") if verdict.rule == "policy" else \
                        _("{words}: {table} rule {verdict}")
                    words = said.format(words=words, table=verdict.table, verdict=verdict.verdict)
                ax.annotate(_fill(words, 30), (xm, yx), xytext=(17, 0), textcoords="offset points",
                            fontsize=FONT, ha="left", va="center", color=RED, weight="bold", zorder=11,
                            gid="ladder:death", bbox=_WHITE_BOX)
            if printed:
                _write_lines(ax, printed, xm + 0.15, y0 + _BEND + 0.02, color, gid, xm, wide)
        elif what == "died":
            if a in x:
                _died_marker(ax, x[a], y0)
                ha = "left" if x[a] < wide / 2 else "right"
                ax.annotate(mark.words, (x[a], y0), xytext=(18 if ha == "left" else -18, 0),
                            textcoords="offset points", fontsize=FONT, ha=ha, va="center", color=RED,
                            weight="bold", zorder=11, gid="ladder:death", bbox=_WHITE_BOX)
    # points off the path where this packet showed up anyway (a flooded frame, say): a dotted branch
    order = {p: i for i, p in enumerate(POINTS)}
    for kind in ("request", "reply"):
        seen = [p for p in seen_along(journey, kind) if p in x]
        dots = {b: y0 for what, k, (a, b), y0, h, _ in plan if what == "dot" and k == kind}
        for hop in journey.hops:
            if not hop.on_path and getattr(hop, kind) is not None and hop.point in x:
                before = [p for p in seen if order.get(p, -1) < order.get(hop.point, -1)]
                origin = before[-1] if before else (seen[-1] if seen else hop.point)
                yo = dots.get(origin, 1.0)
                ax.add_patch(FancyArrowPatch((x[origin], yo), (x[hop.point], yo + 0.4), arrowstyle="-|>",
                                             mutation_scale=16, color=GREY, linewidth=2, linestyle=":",
                                             shrinkA=5, shrinkB=5, zorder=3,
                                             gid=f"ladder:{kind}-offpath:{hop.point}"))
                ax.text(x[hop.point], yo + 0.5, getattr(hop, kind).addresses, fontsize=SMALL, color=GREY,
                        ha="center", va="top", gid=f"ladder:label:{kind}:{hop.point}", bbox=_WHITE_BOX)
    if foot:
        ax.text(0.12, low - 0.08, foot, fontsize=SMALL, ha="left", va="bottom", color=INK, linespacing=1.3,
                gid="ladder:rules")
    ax.set_title(title, fontsize=FONT + 3, loc="left", color=INK if journey.delivered else RED,
                 weight="bold", x=0.012)
    if reason:
        ax.text(0.12, 0.0, reason, fontsize=FONT, ha="left", va="top", linespacing=1.3,
                color=INK if journey.delivered else RED, gid="ladder:reason")
    return fig


# -- 3. the before/after grid ----------------------------------------------------------

_CELL_FONT = FONT - 1
_TAG = 0.28          # inches for a cell's → / ← tag


def _grid_rows(journeys: Sequence[Journey]) -> list[str]:
    """The grid's rows: the points on the journeys' paths in path order, then the others seen, then a mark's
    place that is no point of theirs (host:lo).

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
    rows += sorted(seen, key=rank)
    marks = [j.mark.point for j in journeys if j.mark is not None and j.mark.point not in rows]
    return rows + list(dict.fromkeys(marks))


def _cell_text(journey: Journey, point: str, kind: str, split: bool) -> tuple[str, str]:
    """What a cell says about `kind` at `point`, and how: "seen", "rewritten", "made" (rewritten here),
    "lo" (passed the host's lo, which no point watches) or "unseen"."""
    if point not in journey.points:
        passed = point == "host:lo" and any(h[0] == kind for h in journey.hooks)
        return (_("over lo, not watched"), "lo") if passed else (_("not seen"), "unseen")
    addresses = journey.addresses(point, kind)
    if addresses is None:
        return _("not seen"), "unseen"
    text = addresses.replace(" > ", "\n> ") if split else addresses
    if _made(journey, point, kind):
        return text + " ◆", "made"
    return text, "rewritten" if _rewritten(journey, point, kind) else "seen"


def _title(label: str, width: int) -> str:
    """A column's title in lines of about `width` characters, never breaking a word (nor at its hyphens)."""
    return _fill(label, width, break_on_hyphens=False, break_long_words=False)


def _grid_why(journey: Journey, inches: float) -> str:
    """What the outcome cell says under "not delivered", wrapped to `inches`."""
    why = "" if journey.delivered else _why(journey)
    if not why:
        return ""
    width = 20
    while width < 120 and _inches(_fill(why, width + 2), SMALL) <= inches:
        width += 2
    return _fill(why, width)


@_styled
def grid(journeys: Sequence[Journey], *, ax: Axes | None = None) -> Figure:
    """One column per condition, one row per point: was the request / the reply seen there?

    Columns are titled with each journey's label (what the step changed,
    e.g. ``bridge-nf-call-iptables=1``); cells show ``→`` (request) and ``←``
    (reply) with the addresses seen, an orange box where NAT rewrote them (and
    ◆ where it did), or "not seen" in grey. The red ✘ and frame sit where
    each journey's ``mark`` says. The last row says delivered or not, and
    why. More conditions than fit `WIDTH` wrap into bands, each with only
    the rows its journeys need.
    """
    journeys = list(journeys)
    if not journeys:
        raise ValueError(_("grid() needs at least one journey, one per condition to compare"))
    everything = _grid_rows(journeys)
    outcome = _("outcome")
    head = max(_inches(p, FONT - 1, "bold") for p in everything + [outcome]) + 0.22
    labels = [translated(j.label) or f"{j.src} → {j.dst}" for j in journeys]   # what each step changed
    titles = [_title(label, 24) for label in labels]

    def cell_for(split: bool) -> float:
        shown = [_cell_text(j, p, k, split) for j in journeys for p in everything for k in ("request", "reply")]
        return max([1.8] + [_inches(t, _CELL_FONT, "normal" if how == "seen" else "bold") + _TAG + 0.38
                            for t, how in shown]
                   + [max(_inches(word, FONT, "bold") for word in _words(t)) + 0.2 for t in titles])

    def fits(cell: float) -> int:
        return max(1, min(len(journeys), int((WIDTH - head - 0.15) // cell)))

    # addresses on one line each, unless writing them on two lines saves a band
    split, cell = False, cell_for(False)
    if math.ceil(len(journeys) / fits(cell)) > math.ceil(len(journeys) / fits(cell_for(True))):
        split, cell = True, cell_for(True)
    bands = math.ceil(len(journeys) / fits(cell))
    per = math.ceil(len(journeys) / bands)
    for c, label in enumerate(labels):   # titles wrapped to their column
        width = 30
        while width > 8 and _inches(_title(label, width), FONT, "bold") > cell - 0.2:
            width -= 2
        titles[c] = _title(label, width)
    lane = (2 if split else 1) * _CELL_FONT * 1.25 / 72 + 0.1    # inches for one packet's line(s) in a cell
    row_h = 0.14 + 2 * lane
    whys = [_grid_why(j, cell - 0.25) for j in journeys]

    # lay out each band: its rows, their tops (inches down), its outcome row's height
    layout = []
    y = 0.0
    for b in range(bands):
        members = list(range(b * per, min((b + 1) * per, len(journeys))))
        rows = _grid_rows([journeys[c] for c in members])
        title_h = max(_tall(titles[c], FONT) for c in members) + 0.15
        tall = max([0.5] + [0.55 + _tall(whys[c], SMALL, 1.25 * 1.17) for c in members if whys[c]])
        layout.append((members, rows, y, title_h, tall))
        y += title_h + row_h * len(rows) + tall + 0.35
    wide = head + cell * per + 0.15
    key = [_("→ request   ← reply")]
    if any(_rewritten(j, p, k) for j in journeys for p in j.points for k in ("request", "reply")):
        key.append(_("orange box: address rewritten by NAT (◆ where)"))
    if any(j.mark is not None for j in journeys):
        key.append(_("✘ and red frame: where the probe died"))
    lines = [key[0]]
    for part in key[1:]:   # as many parts on a line as fit the picture's width
        joined = f"{lines[-1]}      {part}"
        lines[-1:] = [joined] if _inches(joined, SMALL) <= wide - 0.2 else [lines[-1], part]
    key_text = "\n".join(lines)
    key_h = _tall(key_text, SMALL) + 0.15
    total = y + key_h
    fig, ax = _new_axes(ax, (wide, total + 0.5), 0.5)
    ax.set_xlim(0, head + cell * per + 0.15)
    ax.set_ylim(total, 0)
    ax.axis("off")

    for members, rows, top, title_h, tall in layout:
        body = top + title_h
        for r, point in enumerate(rows):
            ax.text(head - 0.1, body + (r + 0.5) * row_h, point, fontsize=FONT - 1, weight="bold", ha="right",
                    va="center", color=INK, gid=f"grid:row:{point}" if members[0] == 0 else
                    f"grid:row:{point}:band{layout.index((members, rows, top, title_h, tall))}")
        ax.text(head - 0.1, body + len(rows) * row_h + tall / 2, outcome, fontsize=FONT - 1, weight="bold",
                ha="right", va="center", color=INK,
                gid="grid:row:outcome" if members[0] == 0 else f"grid:row:outcome:band{members[0]}")
        for slot, c in enumerate(members):
            journey, x0 = journeys[c], head + slot * cell
            ax.text(x0 + cell / 2, top + title_h / 2, titles[c], fontsize=FONT, weight="bold", ha="center",
                    va="center", color=INK, gid=f"grid:column:{c}", linespacing=1.2)
            mark = journey.mark
            for r, point in enumerate(rows):
                y0 = body + r * row_h
                hop = journey.hop(point) if point in journey.points else None
                on_path = bool(hop and (hop.on_path or hop.request or hop.reply)) or (
                    mark is not None and mark.point == point)
                seen_any = bool(hop and (hop.request or hop.reply))
                here = mark is not None and mark.point == point
                ax.add_patch(Rectangle((x0 + 0.03, y0 + 0.03), cell - 0.06, row_h - 0.06,
                                       facecolor="white" if seen_any or here else "#EFEFEF",
                                       edgecolor=RED if here else "#BBBBBB", linewidth=3 if here else 1, zorder=1,
                                       gid=f"grid:cell:{c}:{point}"))
                if not on_path:
                    ax.text(x0 + cell / 2, y0 + row_h / 2, _("off the path"), fontsize=SMALL, color=GREY,
                            ha="center", va="center", style="italic", gid=f"grid:{c}:{point}:offpath")
                    continue
                for k, kind in enumerate(("request", "reply")):
                    color, dash, tag = _KINDS[kind]
                    text, how = _cell_text(journey, point, kind, split)
                    yy = y0 + 0.07 + (k + 0.5) * lane
                    seen = how in ("seen", "rewritten", "made")
                    ax.text(x0 + 0.12, yy, tag, fontsize=FONT + 1, weight="bold", ha="left", va="center",
                            color=color if seen else GREY, gid=f"grid:{c}:{point}:{kind}:tag")
                    style = dict(color=color if seen else GREY, weight="normal",
                                 style="normal" if seen else "italic")
                    if how in ("rewritten", "made"):
                        style.update(weight="bold", bbox=dict(_REWRITE_BOX, pad=0.15, linewidth=1.8))
                    ax.text(x0 + 0.12 + _TAG, yy, text, fontsize=_CELL_FONT, ha="left", va="center",
                            linespacing=1.2, gid=f"grid:{c}:{point}:{kind}", zorder=3, **style)
                if here:
                    k = 0 if mark.packet == "request" else 1
                    yy = y0 + 0.07 + (k + 0.5) * lane
                    after = rows.index(mark.then) if mark.then in rows else None
                    if after is not None:   # on its way to the next row's point: on the edge between them
                        yy = y0 + (row_h if after > r else 0)
                    ax.text(x0 + cell - 0.12, yy, "✘", fontsize=FONT + 9, color=RED, ha="right", va="center",
                            weight="bold", zorder=6, gid=f"grid:{c}:{point}:died")
                    if after is not None and mark.hook:
                        ax.text(x0 + cell - 0.5, yy, mark.hook, fontsize=SMALL, color=RED, ha="right",
                                va="center", weight="bold", zorder=6, bbox=_WHITE_BOX, gid=f"grid:{c}:{point}:hook")
            # the outcome row
            y0 = body + len(rows) * row_h
            ax.add_patch(Rectangle((x0 + 0.03, y0 + 0.05), cell - 0.06, tall - 0.05, facecolor="white",
                                   edgecolor="#BBBBBB", linewidth=1, zorder=1, gid=f"grid:cell:{c}:outcome"))
            word = _("✔ delivered") if journey.delivered else _("✘ not delivered")
            ax.text(x0 + cell / 2, y0 + 0.27, word, fontsize=FONT + 1, weight="bold", ha="center", va="center",
                    color=INK if journey.delivered else RED, gid=f"grid:{c}:outcome")
            if whys[c]:
                ax.text(x0 + cell / 2, y0 + 0.47, whys[c], fontsize=SMALL, linespacing=1.25, ha="center",
                        va="top", color=RED, gid=f"grid:{c}:verdict")

    ax.text(0.1, total - key_h / 2, key_text, fontsize=SMALL, color=GREY, ha="left", va="center",
            linespacing=1.3, gid="grid:key")
    first = journeys[0]
    same = all((j.src, j.dst) == (first.src, first.dst) for j in journeys)
    title = _("{src} → {dst}: what changed").format(src=first.src, dst=first.dst) if same else _("what changed")
    ax.set_title(title, fontsize=FONT + 3, weight="bold", loc="left", x=0.01)
    return fig


# A picture of a replayed journey carries the replay label as a footnote line (netkit.provenance).
from .provenance import labels_pictures as _labels_pictures  # noqa: E402

lab_map, ladder, grid = _labels_pictures(lab_map), _labels_pictures(ladder), _labels_pictures(grid)
