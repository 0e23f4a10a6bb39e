"""netkit.plots, tested from recorded journeys: what each figure shows, not only that it draws.

The journeys are the synthetic ones in tests/data (written by
tests/data/make_synthetic.py) and those recorded from the kernel
(recorded-*.json). Figures are read back through their artists: texts, their
colours, boxes and places, the arrows (FancyArrowPatch) and the ✘ (a Line2D
with marker "X"); artists carry a gid saying what they show (see
netkit.plots). The visual language is tested for every journey at once: one
"died here" mark where ``journey.mark`` says, in the table, the ladder, the
grid and the map; red only for a death; the rewrite colour on exactly the
addresses NAT rewrote; every hook the packet passed named on its step; no
picture wider than `plots.WIDTH`; Chinese text drawn without missing glyphs.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import io
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import same_color
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, Patch, Rectangle
from matplotlib.text import Annotation, Text

from netkit import plots
from netkit.journey import Journey, Sighting
from netkit.outcome import Outcome, Result
from netkit.plots import GREY, RED, RELAY, REPLY, REQUEST, REWRITE, WIDTH, grid, lab_map, ladder
from netkit.topology import BRIDGE_ADDRESS

pytestmark = pytest.mark.pure   # recorded data only: no lab, no root (./quickstart test --fast)

DATA = Path(__file__).parent / "data"
HAN = re.compile(r"[\u4e00-\u9fff]")
CASES = ("bridge-nf-on", "bridge-nf-off", "no-route", "no-masquerade", "masquerade",
         "masquerade-forward-drop", "forward-one-way")
EVERY = sorted(DATA.glob("recorded-*.json")) + sorted(DATA.glob("synthetic-*.json"))
TO_C2 = ["c1:eth0", "host:veth0", "host:veth1", "c2:eth0"]       # bridged: hwchiu0 itself sees nothing
TO_INTERNET = ["c1:eth0", "host:veth0", "host:hwchiu0", "host:eth0", "internet:eth0"]


def load(case: str) -> Journey:
    return Journey.from_json(DATA / f"synthetic-{case}.json")


@functools.lru_cache(maxsize=None)
def picture(draw: str, path: Path) -> Figure:
    """The `draw` picture ("ladder", "map" or a one-column "grid") of the journey at `path`, laid out once and
    shared by the tests that only read it."""
    journey = Journey.from_json(path)
    fig = {"ladder": ladder, "map": lab_map, "grid": lambda j: grid([j])}[draw](journey)
    FigureCanvasAgg(fig).draw()
    return fig


# -- reading a figure back --------------------------------------------------------

def with_gid(fig: Figure, gid: str, kind=object) -> list:
    return [a for a in fig.findobj(lambda a: isinstance(a, kind) and a.get_gid() == gid)]


def gids(fig: Figure, prefix: str, kind=object) -> set[str]:
    return {a.get_gid() for a in fig.findobj(lambda a: isinstance(a, kind)
                                             and (a.get_gid() or "").startswith(prefix))}


def one(fig: Figure, gid: str, kind=object):
    found = with_gid(fig, gid, kind)
    assert len(found) == 1, f"expected one artist {gid!r}, found {len(found)}"
    return found[0]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


def died_markers(fig: Figure) -> list[Line2D]:
    return [line for line in fig.findobj(Line2D) if line.get_marker() == "X" and line.get_gid() == "died"]


def centre(patch) -> tuple[float, float]:
    if isinstance(patch, Circle):
        return tuple(patch.center)
    return patch.get_x() + patch.get_width() / 2, patch.get_y() + patch.get_height() / 2


def column_x(fig: Figure, point: str) -> float:
    return one(fig, f"ladder:column:{point}", Text).get_position()[0]


def said(fig: Figure, gid: str) -> str:
    """The text of the artist `gid`, with the lines it was wrapped onto (gid:more) joined, spaces as one."""
    parts = [t.get_text() for t in fig.findobj(Text) if t.get_gid() in (gid, f"{gid}:more")]
    assert parts, f"no text {gid!r}"
    return " ".join(" ".join(parts).split())


def boxed(text: Text, color: str = REWRITE) -> bool:
    """Is `text` drawn in a box edged in `color` (the rewrite colour, by default)?"""
    box = text.get_bbox_patch()
    return box is not None and box.get_linewidth() > 0 and same_color(box.get_edgecolor(), color)


def colours(fig: Figure) -> list[tuple[str, object]]:
    """(gid, colour) for every colour an artist is drawn in (once drawn): texts, their boxes, lines, markers,
    patches."""
    found = []
    for artist in fig.findobj():
        gid = artist.get_gid() or type(artist).__name__
        if not artist.get_visible():
            continue
        if isinstance(artist, Text) and artist.get_text().strip():
            found.append((gid, artist.get_color()))
            if artist.get_bbox_patch() is not None:
                found.append((gid, artist.get_bbox_patch().get_edgecolor()))
        elif isinstance(artist, Line2D):
            found += [(gid, artist.get_color()), (gid, artist.get_markerfacecolor())]
        elif isinstance(artist, Patch):
            found += [(gid, artist.get_edgecolor()), (gid, artist.get_facecolor())]
    return [(g, c) for g, c in found if not (isinstance(c, str) and c == "none")]


# -- the recorded journeys themselves --------------------------------------------------

def test_synthetic_files_are_what_the_script_builds():
    spec = importlib.util.spec_from_file_location("make_synthetic", DATA / "make_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.journeys()
    assert sorted(built) == sorted(CASES)
    for case, journey in built.items():
        assert load(case) == journey, f"tests/data/synthetic-{case}.json is stale: run make_synthetic.py"


def test_synthetic_journeys_tell_the_article_story():
    on, off = load("bridge-nf-on"), load("bridge-nf-off")
    assert str(on.dropped_by) == "filter FORWARD policy DROP in host"
    assert not on.seen("host:veth1") and off.seen("host:veth1") and off.seen("c1:eth0", "reply")
    masq = load("masquerade")
    assert masq.addresses("host:eth0") == "10.0.2.15 > 8.8.8.8"
    assert masq.addresses("host:hwchiu0", "reply") == "8.8.8.8 > 10.55.66.2"
    assert masq.conntrack[0].nat and masq.delivered
    assert not any(load("no-route").seen(p) for p in TO_INTERNET)
    for case in CASES:   # the shape the kernel records: the path in order, then the other points
        journey = load(case)
        path = TO_C2 if journey.dst == "10.55.66.3" else TO_INTERNET
        assert [h.point for h in journey.hops if h.on_path] == path
        assert list(journey.points[:len(path)]) == path and len(journey.points) == 7


# -- 1. the lab map ----------------------------------------------------------------------

def test_map_shows_every_node_interface_and_address():
    fig = lab_map()
    shown = "\n".join(texts(fig))
    for word in ("c1 (container)", "c2 (container)", "host", "internet", "hwchiu0", "veth0", "veth1",
                 "10.55.66.2/24", "10.55.66.3/24", "10.0.2.15/24", "10.0.2.2/24", "8.8.8.8", "1.1.1.1"):
        assert word in shown, word
    assert texts(fig).count("eth0") == 4          # c1, c2, the host's uplink, the internet's
    assert one(fig, "map:bridge-address").get_text() == "no IP address"
    assert BRIDGE_ADDRESS not in shown
    assert not fig.findobj(FancyArrowPatch) and not died_markers(fig)
    assert "map:interface:host:lo" not in gids(fig, "map:interface:")    # lo only for the host's own probe


def test_map_draws_veth0_and_veth1_as_ports_of_hwchiu0():
    fig = lab_map()
    bridge = node_box(fig, "hwchiu0")
    for port in ("host:veth0", "host:veth1"):      # on the bridge's upper edge, inside its width
        x, y = centre(one(fig, f"map:interface:{port}"))
        assert bridge.x0 < x < bridge.x1 and y == pytest.approx(bridge.y1)
    x, y = centre(one(fig, "map:interface:host:hwchiu0"))   # the bridge's own interface, on its lower edge
    assert bridge.x0 < x < bridge.x1 and y == pytest.approx(bridge.y0)
    host = node_box(fig, "host")
    assert host.x0 < bridge.x0 and bridge.x1 < host.x1 and host.y0 < bridge.y0 and bridge.y1 < host.y1
    # each container's cable runs to its port, and the legend says what a port and the circle are
    for node, port in (("c1", "host:veth0"), ("c2", "host:veth1")):
        (cable,) = with_gid(fig, f"map:cable:{node}", Line2D)
        assert centre(one(fig, f"map:interface:{port}"))[0] == pytest.approx(cable.get_xdata()[1])
    legend = {t.get_gid(): t.get_text() for t in fig.findobj(Text) if (t.get_gid() or "").startswith("map:legend:")}
    assert "port of the bridge hwchiu0" in legend["map:legend:port"]
    assert "hwchiu0 itself" in legend["map:legend:bridge"]


# what the map draws (the gid of its artists) -> the legend's entry that explains it
SYMBOLS = {"map:interface:": "interface", "map:cable:": "cable", "map:routed:": "routed", "map:request:": "request",
           "map:reply:": "reply", "map:lost:request": "request", "map:lost:reply": "reply",
           "map:rewritten:": "rewrite", "died": "died", "map:interface:host:lo": "lo", "map:relay:": "relay"}


@pytest.mark.parametrize("case", ["d29-proxy-local", "d29-proxy-hairpin"])
def test_map_draws_docker_proxys_second_connection_in_its_own_colour(case):
    journey = Journey.from_json(DATA / f"recorded-{case}.json")
    fig = lab_map(journey)
    arrows = {a.get_gid(): a for a in fig.findobj(FancyArrowPatch) if (a.get_gid() or "").startswith("map:relay:")}
    assert set(arrows) == {"map:relay:request:host:veth0", "map:relay:request:c1:eth0",
                           "map:relay:reply:host:veth0", "map:relay:reply:host:hwchiu0"}
    assert all(same_color(a.get_edgecolor(), RELAY) for a in arrows.values())
    assert one(fig, "map:legend:relay").get_text() == "→ docker-proxy's own connection, 10.55.66.1 → 10.55.66.2:8000"
    assert one(fig, "map:bridge-address").get_text() == "10.55.66.1/24"   # the proxy spoke from the bridge


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
def test_the_map_legend_explains_every_symbol_it_draws_and_no_other(path):
    journey = Journey.from_json(path)
    fig = picture("map", path)
    drew = {a.get_gid() or "" for a in fig.findobj()}
    explained = {g.removeprefix("map:legend:") for g in drew if g.startswith("map:legend:")}
    needed = {name for prefix, name in SYMBOLS.items() if any(g.startswith(prefix) for g in drew)}
    needed |= {"port", "bridge"}
    assert explained == needed
    assert ("lo" in explained) == journey.local


def test_map_shows_the_bridge_address_only_when_the_stage_has_it():
    fig = lab_map(load("masquerade"), bridge_address=BRIDGE_ADDRESS)
    assert one(fig, "map:bridge-address").get_text() == BRIDGE_ADDRESS
    assert "no IP address" not in texts(fig)


def test_map_draws_the_request_and_the_reply_where_they_were_seen():
    fig = lab_map(load("bridge-nf-off"))
    assert gids(fig, "map:request:", FancyArrowPatch) == {
        "map:request:host:veth0", "map:request:host:veth1", "map:request:c2:eth0"}
    assert gids(fig, "map:reply:", FancyArrowPatch) == {
        "map:reply:host:veth1", "map:reply:host:veth0", "map:reply:c1:eth0"}
    assert all(same_color(a.get_edgecolor(), REQUEST) for a in fig.findobj(FancyArrowPatch)
               if a.get_gid().startswith("map:request"))
    assert all(same_color(a.get_edgecolor(), REPLY) for a in fig.findobj(FancyArrowPatch)
               if a.get_gid().startswith("map:reply"))
    assert not died_markers(fig)
    assert one(fig, "map:outcome").get_text().startswith("delivered")

    dropped = lab_map(load("bridge-nf-on"))
    assert gids(dropped, "map:request:", FancyArrowPatch) == {"map:request:host:veth0"}
    assert not gids(dropped, "map:reply:", FancyArrowPatch)

    routed = lab_map(load("masquerade"))
    assert gids(routed, "map:request:", FancyArrowPatch) == {
        "map:request:host:veth0", "map:request:host:hwchiu0", "map:request:host:eth0",
        "map:request:internet:eth0"}


def test_map_bends_a_bridged_frame_through_the_bridge():
    fig = lab_map(load("bridge-nf-off"))
    arrow = one(fig, "map:request:host:veth1", FancyArrowPatch)
    lowest = arrow.get_path().get_extents().y0
    veth0, veth1, bridge = (centre(one(fig, f"map:interface:{p}")) for p in ("host:veth0", "host:veth1",
                                                                               "host:hwchiu0"))
    assert lowest < min(veth0[1], veth1[1]) - 0.4      # not along the bridge's edge: down into the bridge
    assert lowest > bridge[1] + 0.15                    # ... and never through hwchiu0 itself
    assert node_box(fig, "hwchiu0").y0 < lowest


@pytest.mark.parametrize("case, last, expected", [
    ("bridge-nf-on", "host:veth0", "host:veth1"),            # the bridged frame meets FORWARD
    ("masquerade-forward-drop", "host:hwchiu0", "host:eth0"),  # routed hwchiu0 -> eth0 meets FORWARD
    ("forward-one-way", "host:eth0", "host:hwchiu0"),        # the reply meets FORWARD's DROP policy
])
def test_map_puts_a_red_x_where_the_probe_died_in_the_host(case, last, expected):
    fig = lab_map(load(case))
    (marker,) = died_markers(fig)
    assert same_color(marker.get_color(), RED)
    x, y = marker.get_xdata()[0], marker.get_ydata()[0]
    (ax, ay), (bx, by) = (centre(one(fig, f"map:interface:{p}")) for p in (last, expected))
    # on the stretch between the last point it was seen at and the one it never reached ...
    length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
    along = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length ** 2
    aside = abs((x - ax) * (by - ay) - (y - ay) * (bx - ax)) / length
    assert 0.25 < along < 0.75 and aside < 0.6
    assert inside((x, y), node_box(fig, "host"))
    # ... without hiding either interface's name
    assert (x - ax) ** 2 + (y - ay) ** 2 > 0.4 ** 2 and (x - bx) ** 2 + (y - by) ** 2 > 0.4 ** 2
    assert one(fig, "map:death").get_text().startswith("FORWARD")
    # ... nor the arrows of what was seen (the X sits on the lost packet's lane, beside the other's)
    for arrow in fig.findobj(FancyArrowPatch):
        if arrow.get_gid().startswith("map:lost:"):
            continue      # the stub of the lost packet's way, which ends at the X
        way = arrow.get_path().interpolated(20).vertices
        assert min(((px - x) ** 2 + (py - y) ** 2) ** 0.5 for px, py in way) > 0.15, arrow.get_gid()


@pytest.mark.parametrize("case, point, node", [
    ("no-route", "c1:eth0", "c1"),                 # c1 had no route: it never sent it, at the sender
    ("no-masquerade", "internet:eth0", "internet"),  # 8.8.8.8 got the request and had no route back
])
def test_map_puts_a_red_x_inside_the_node_where_the_probe_stopped(case, point, node):
    fig = lab_map(load(case))
    (marker,) = died_markers(fig)
    x, y = marker.get_xdata()[0], marker.get_ydata()[0]
    assert inside((x, y), node_box(fig, node))
    interfaces = {g.removeprefix("map:interface:"): centre(one(fig, g)) for g in gids(fig, "map:interface:")}
    assert min(interfaces, key=lambda p: (interfaces[p][0] - x) ** 2 + (interfaces[p][1] - y) ** 2) == point
    # not on the wire: no link (cable or routed way) passes under it
    for line in fig.findobj(Line2D):
        if (line.get_gid() or "").startswith(("map:cable:", "map:routed:")):
            (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
            length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
            t = max(0, min(1, ((x - x0) * (x1 - x0) + (y - y0) * (y1 - y0)) / length ** 2))
            assert ((x0 + t * (x1 - x0) - x) ** 2 + (y0 + t * (y1 - y0) - y) ** 2) ** 0.5 > 0.2, line.get_gid()


def test_map_writes_the_reason_and_the_verdict_in_red():
    fig = lab_map(load("bridge-nf-on"))
    reason = one(fig, "map:reason")
    assert "filter FORWARD policy DROP" in reason.get_text().replace("\n", " ")
    assert same_color(reason.get_color(), RED)
    assert one(fig, "map:outcome").get_text().startswith("NOT delivered")
    # a bridged frame meets FORWARD with the bridge as both ways in and out; a routed one, hwchiu0 -> eth0
    assert "(in hwchiu0, out hwchiu0)" in reason.get_text()
    assert "(in hwchiu0, out eth0)" in one(lab_map(load("masquerade-forward-drop")), "map:reason").get_text()
    no_reply = one(lab_map(load("no-masquerade")), "map:reason").get_text().replace("\n", " ")
    assert "no route to 10.55.66.2" in no_reply


def test_map_notes_the_masqueraded_address_in_the_rewrite_colour_only_with_masquerade():
    fig = lab_map(load("masquerade"), bridge_address=BRIDGE_ADDRESS)
    out = one(fig, "map:rewritten:request:host:eth0", Text)
    assert out.get_text().startswith("10.0.2.15 > 8.8.8.8") and "◆ MASQUERADE: src" in out.get_text()
    assert boxed(out) and same_color(out.get_color(), REQUEST)
    back = one(fig, "map:rewritten:reply:host:hwchiu0", Text)
    assert back.get_text().startswith("8.8.8.8 > 10.55.66.2") and boxed(back) and same_color(back.get_color(), REPLY)
    assert "conntrack undoes MASQUERADE" in " ".join(back.get_text().split())
    # each note has a leader line, in the rewrite colour, to the arrow that arrived where it happened
    for kind, point, before in (("request", "host:eth0", "host:hwchiu0"), ("reply", "host:hwchiu0", "host:eth0")):
        (leader,) = with_gid(fig, f"map:leader:{kind}:{point}", Line2D)
        assert same_color(leader.get_color(), REWRITE)
        arrow = one(fig, f"map:{kind}:{point}", FancyArrowPatch).get_path().get_extents()
        end = leader.get_xdata()[1], leader.get_ydata()[1]
        assert arrow.x0 - 0.05 <= end[0] <= arrow.x1 + 0.05 and arrow.y0 - 0.05 <= end[1] <= arrow.y1 + 0.05
    assert not gids(lab_map(load("no-masquerade")), "map:rewritten:")


# -- 2. the packet ladder ---------------------------------------------------------------------

@pytest.mark.parametrize("case, columns", [("bridge-nf-off", TO_C2), ("bridge-nf-on", TO_C2),
                                           ("masquerade", TO_INTERNET), ("no-route", TO_INTERNET)])
def test_ladder_columns_are_the_path_in_order(case, columns):
    fig = ladder(load(case))
    shown = sorted(gids(fig, "ladder:column:"), key=lambda g: column_x(fig, g.split(":", 2)[2]))
    assert [g.split(":", 2)[2] for g in shown] == columns


def test_ladder_labels_each_hop_as_seen_where_it_arrives():
    fig = ladder(load("masquerade"))
    for kind, point, text, rewritten in [
        ("request", "host:veth0", "10.55.66.2 > 8.8.8.8", False),
        ("request", "host:hwchiu0", "10.55.66.2 > 8.8.8.8", False),
        ("request", "host:eth0", "10.0.2.15 > 8.8.8.8", True),       # MASQUERADE rewrote the source
        ("request", "internet:eth0", "10.0.2.15 > 8.8.8.8", True),
        ("reply", "host:eth0", "8.8.8.8 > 10.0.2.15", False),
        ("reply", "host:hwchiu0", "8.8.8.8 > 10.55.66.2", True),     # conntrack undid it
        ("reply", "c1:eth0", "8.8.8.8 > 10.55.66.2", True),
    ]:
        label = one(fig, f"ladder:label:{kind}:{point}", Annotation)
        assert label.get_text() == text, (kind, point)
        assert same_color(label.get_color(), REQUEST if kind == "request" else REPLY), (kind, point)
        assert boxed(label) == rewritten, (kind, point)
    # the label sits on the step that arrives at host:eth0: between hwchiu0's column and eth0's
    label = one(fig, "ladder:label:request:host:eth0", Annotation)
    assert column_x(fig, "host:hwchiu0") < label.xy[0] < column_x(fig, "host:eth0")
    # what rewrote it is named on that step, once: the hook and the rule, in the rewrite colour
    hook = one(fig, "ladder:hook:request:host:eth0:POSTROUTING", Text)
    assert hook.get_text() == "◆ POSTROUTING  nat MASQUERADE [1]" and boxed(hook)
    rule = "iptables -t nat -A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"
    assert f"[1] {rule}" in one(fig, "ladder:rules").get_text()
    assert not gids(fig, "ladder:hook:request:internet:eth0")
    back = one(fig, "ladder:hook:reply:host:hwchiu0:PREROUTING", Text)
    assert said(fig, back.get_gid()) == "◆ PREROUTING conntrack undoes MASQUERADE: dst" and boxed(back)


def test_ladder_without_nat_has_nothing_red_or_rewritten():
    fig = ladder(load("bridge-nf-off"))
    labels = [a for a in fig.findobj(Annotation) if (a.get_gid() or "").startswith("ladder:label:")]
    assert len(labels) == 6
    assert not any(same_color(a.get_color(), RED) or boxed(a) for a in labels)
    assert not [g for g, c in colours(fig) if same_color(c, RED) or same_color(c, REWRITE)]


@pytest.mark.parametrize("case, requests, replies", [
    ("bridge-nf-off", 3, 3), ("masquerade", 4, 4), ("bridge-nf-on", 1, 0),
    ("masquerade-forward-drop", 2, 0), ("no-masquerade", 4, 0), ("no-route", 0, 0),
])
def test_ladder_draws_one_arrow_per_hop_and_replies_only_when_seen(case, requests, replies):
    fig = ladder(load(case))
    arrows = [a.get_gid() for a in fig.findobj(FancyArrowPatch)]
    assert sum(g.startswith("ladder:request:") for g in arrows) == requests
    assert sum(g.startswith("ladder:reply:") for g in arrows) == replies
    reply_label = [t for t in fig.findobj(Text) if t.get_text() == "reply"]
    assert bool(reply_label) == bool(replies or case == "no-masquerade")


@pytest.mark.parametrize("case, between", [
    ("bridge-nf-on", ("host:veth0", "host:veth1")),
    ("masquerade-forward-drop", ("host:hwchiu0", "host:eth0")),
    ("no-route", ("c1:eth0",)),
    ("no-masquerade", ("internet:eth0",)),
])
def test_ladder_crosses_out_the_place_it_died(case, between):
    fig = ladder(load(case))
    (marker,) = died_markers(fig)
    assert same_color(marker.get_color(), RED)
    expected_x = sum(column_x(fig, p) for p in between) / len(between)
    assert marker.get_xdata()[0] == pytest.approx(expected_x)
    death = one(fig, "ladder:death", Annotation)
    assert same_color(death.get_color(), RED)
    if load(case).dropped_by:
        assert "dropped in FORWARD: filter policy DROP" in death.get_text().replace("\n", " ")
        # the ✘ ends the list of what the packet met on that step, right under the hook that dropped it
        hook = one(fig, f"ladder:hook:request:{between[1]}:FORWARD", Text)
        assert same_color(hook.get_color(), RED) and "filter policy DROP" in hook.get_text()
        assert 0 < marker.get_ydata()[0] - hook.get_position()[1] < 0.5
    if case == "no-masquerade":   # the reply never came: the X is in the reply half, below every request
        request_rows = [line.get_ydata()[0] for line in fig.findobj(Line2D)
                        if (line.get_gid() or "").startswith("ladder:seen:request:")]
        assert marker.get_ydata()[0] > max(request_rows)


def test_ladder_crosses_out_a_reply_lost_after_its_last_point():
    # the reply came all the way back to c1:eth0, yet ping saw nothing (say c1's INPUT dropped it)
    journey = load("masquerade")
    journey = journey.decided(Outcome(Result.REPLY_LOST, "reply", "c1:eth0", None, "c1"))
    fig = ladder(journey)
    (marker,) = died_markers(fig)
    assert marker.get_xdata()[0] == pytest.approx(column_x(fig, "c1:eth0"))
    reply_rows = [line.get_ydata()[0] for line in fig.findobj(Line2D)
                  if (line.get_gid() or "").startswith("ladder:seen:reply:")]
    assert marker.get_ydata()[0] > max(reply_rows)      # after the last point the reply was seen at
    assert one(fig, "ladder:death").get_text() == "the reply was lost"


def test_ladder_shows_a_point_off_the_path_where_the_packet_showed_up():
    journey = load("masquerade")
    flooded = Sighting(point="host:veth1", kind="request", src="10.55.66.2", dst="8.8.8.8", time=0.00004)
    hops = tuple(replace(h, request=flooded) if h.point == "host:veth1" else h for h in journey.hops)
    fig = ladder(replace(journey, hops=hops))
    # after the path's own columns, greyed; a dotted branch from the bridge, the last point before it
    assert column_x(fig, "host:veth1") > max(column_x(fig, p) for p in TO_INTERNET)
    assert same_color(one(fig, "ladder:column:host:veth1").get_color(), GREY)
    assert gids(fig, "ladder:request-offpath:", FancyArrowPatch) == {"ladder:request-offpath:host:veth1"}
    branch = one(fig, "ladder:request-offpath:host:veth1").get_path().get_extents()
    assert branch.x0 == pytest.approx(column_x(fig, "host:hwchiu0"), abs=0.2)
    assert branch.x1 == pytest.approx(column_x(fig, "host:veth1"), abs=0.2)
    assert one(fig, "ladder:label:request:host:veth1").get_text() == "10.55.66.2 > 8.8.8.8"
    assert "ladder:column:host:veth1" not in gids(ladder(journey), "ladder:column:")


@pytest.mark.parametrize("case", ["bridge-nf-off", "masquerade"])
def test_ladder_has_no_cross_when_delivered(case):
    assert not died_markers(ladder(load(case)))


def test_ladder_title_says_the_outcome_in_plain_words():
    fig = ladder(load("bridge-nf-on"))
    assert fig.axes[0].get_title(loc="left") == "c1 → 10.55.66.3 (icmp): NOT delivered"
    assert "filter FORWARD policy DROP" in one(fig, "ladder:reason").get_text()
    fig = ladder(load("bridge-nf-off"))
    title = fig.axes[0].get_title(loc="left")
    assert "delivered" in title and "NOT" not in title
    assert "answered" in one(fig, "ladder:reason").get_text()


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
def test_each_ladder_step_names_the_hooks_the_packet_passed(path):
    journey = Journey.from_json(path)
    fig = picture("ladder", path)
    written = [t.get_gid() for t in fig.findobj(Text) if (t.get_gid() or "").startswith("ladder:hook:")]
    for kind in ("request", "reply"):
        passed = [hook for k, hook, _, _ in journey.hooks if k == kind]
        named = [g.rsplit(":", 1)[1] for g in written if g.startswith(f"ladder:hook:{kind}:")]
        assert [h for h in named if h in passed] == passed, kind   # each hook once, in the order passed
    # every verdict that decided something is on the line of the hook it was met at, its rule at the foot
    rules = one(fig, "ladder:rules").get_text() if with_gid(fig, "ladder:rules") else ""
    for v in journey.verdicts:
        if v.verdict in ("ACCEPT", "DROP", "MASQUERADE", "DNAT") and (v.table == "filter" or v.rule != "policy"):
            lines = [t.get_text() for t in fig.findobj(Text)
                     if (t.get_gid() or "").startswith(f"ladder:hook:{v.kind}:") and v.verdict in t.get_text()]
            assert any(f"{v.table} " in line for line in lines), str(v)
            if v.rule != "policy":
                assert v.command.split(" -j ")[0] in rules.replace("\n      ", " "), v.command


def test_ladder_steps_read_like_the_articles_flow():
    fig = ladder(load("masquerade"))
    step = sorted((t for t in fig.findobj(Text) if (t.get_gid() or "").startswith("ladder:hook:request:host:eth0:")),
                  key=lambda t: t.get_position()[1])
    assert [t.get_text() for t in step] == [
        "PREROUTING", "routing → eth0", "FORWARD  filter policy ACCEPT", "◆ POSTROUTING  nat MASQUERADE [1]"]
    # between hwchiu0's column and eth0's, beside the arrow that bends down between them
    arrow = one(fig, "ladder:request:host:eth0", FancyArrowPatch).get_path().get_extents()
    assert column_x(fig, "host:hwchiu0") < arrow.x0 + 0.05 and arrow.x1 < column_x(fig, "host:eth0") + 0.05
    assert all(arrow.y0 < t.get_position()[1] < arrow.y1 for t in step)
    # a bridged frame: the bridge decides, port to port, where a routed packet is routed
    bridged = sorted((t for t in ladder(recorded("s1-forward-accept")).findobj(Text)
                      if (t.get_gid() or "").startswith("ladder:hook:request:host:veth1:")),
                     key=lambda t: t.get_position()[1])
    assert [t.get_text() for t in bridged] == [
        "PREROUTING", "bridge: port to port, by MAC (fdb)", "FORWARD  filter policy ACCEPT", "POSTROUTING"]
    assert "no iptables hook met" in [t.get_text() for t in ladder(recorded("s1-nf-call-0")).findobj(Text)]


# -- 3. the before/after grid -------------------------------------------------------------------

def cell(fig, column: int, point: str, kind: str) -> Text:
    return one(fig, f"grid:{column}:{point}:{kind}", Text)


@pytest.mark.parametrize("order", [("bridge-nf-on", "bridge-nf-off"), ("bridge-nf-off", "bridge-nf-on")])
def test_grid_has_one_column_per_journey_and_marks_what_was_seen(order):
    journeys = [load(case) for case in order]
    fig = grid(journeys)
    titles = [one(fig, f"grid:column:{c}", Text) for c in range(2)]
    assert [t.get_text() for t in titles] == [j.label for j in journeys]
    assert titles[0].get_position()[0] < titles[1].get_position()[0]
    on, off = order.index("bridge-nf-on"), order.index("bridge-nf-off")
    for point in TO_C2:
        assert cell(fig, off, point, "request").get_text() == "10.55.66.2 > 10.55.66.3"
        assert same_color(cell(fig, off, point, "request").get_color(), REQUEST)
        assert cell(fig, off, point, "reply").get_text() == "10.55.66.3 > 10.55.66.2"
        assert same_color(cell(fig, off, point, "reply").get_color(), REPLY)
        assert cell(fig, on, point, "reply").get_text() == "not seen"
    for point in ("c1:eth0", "host:veth0"):
        assert cell(fig, on, point, "request").get_text() == "10.55.66.2 > 10.55.66.3"
    for point in ("host:veth1", "c2:eth0"):
        assert cell(fig, on, point, "request").get_text() == "not seen"
        assert same_color(cell(fig, on, point, "request").get_color(), GREY)
    # where it died: a red ✘ in the column of the journey that died, on the row of the last point the
    # request was seen at (host:veth0), on its edge toward host:veth1, with the hook that dropped it
    assert gids(fig, "grid:", Text) & {f"grid:{c}:{p}:died" for c in range(2) for p in TO_C2} == {
        f"grid:{on}:host:veth0:died"}
    died = one(fig, f"grid:{on}:host:veth0:died")
    assert same_color(died.get_color(), RED)
    veth0, veth1 = (one(fig, f"grid:cell:{on}:{p}", Rectangle) for p in ("host:veth0", "host:veth1"))
    assert veth0.get_y() + veth0.get_height() <= died.get_position()[1] <= veth1.get_y()
    assert same_color(veth0.get_edgecolor(), RED) and not same_color(veth1.get_edgecolor(), RED)
    assert one(fig, f"grid:{on}:host:veth0:hook").get_text() == "FORWARD"
    assert one(fig, f"grid:{on}:outcome").get_text() == "✘ not delivered"
    assert one(fig, f"grid:{off}:outcome").get_text() == "✔ delivered"
    assert "filter FORWARD policy DROP" in one(fig, f"grid:{on}:verdict").get_text().replace("\n", " ")
    assert not with_gid(fig, f"grid:{off}:verdict")


def test_grid_rows_are_points_in_path_order_then_the_outcome():
    fig = grid([load("no-masquerade"), load("masquerade")])
    rows = sorted(gids(fig, "grid:row:"), key=lambda g: one(fig, g).get_position()[1])
    assert [g.removeprefix("grid:row:") for g in rows] == TO_INTERNET + ["outcome"]


def test_grid_shows_rewritten_addresses_in_the_rewrite_colour():
    fig = grid([load("no-masquerade"), load("masquerade")])
    assert cell(fig, 0, "host:eth0", "request").get_text() == "10.55.66.2 > 8.8.8.8"
    assert same_color(cell(fig, 0, "host:eth0", "request").get_color(), REQUEST)
    assert not boxed(cell(fig, 0, "host:eth0", "request"))
    assert cell(fig, 1, "host:eth0", "request").get_text() == "10.0.2.15 > 8.8.8.8 ◆"     # rewritten here
    assert cell(fig, 1, "internet:eth0", "request").get_text() == "10.0.2.15 > 8.8.8.8"   # and still
    for point in ("host:eth0", "internet:eth0"):
        text = cell(fig, 1, point, "request")
        assert same_color(text.get_color(), REQUEST) and boxed(text)
    assert not boxed(cell(fig, 1, "host:hwchiu0", "request"))
    assert cell(fig, 0, "internet:eth0", "reply").get_text() == "not seen"
    assert cell(fig, 1, "internet:eth0", "reply").get_text() == "8.8.8.8 > 10.0.2.15"
    assert cell(fig, 1, "host:hwchiu0", "reply").get_text() == "8.8.8.8 > 10.55.66.2 ◆"   # conntrack undid it
    assert "rewritten" in one(fig, "grid:key").get_text()
    assert "rewritten" not in one(grid([load("bridge-nf-on"), load("bridge-nf-off")]), "grid:key").get_text()


def test_grid_takes_four_conditions():
    cases = ["no-route", "no-masquerade", "masquerade", "masquerade-forward-drop"]
    fig = grid([load(c) for c in cases])
    assert [said(fig, f"grid:column:{c}") for c in range(4)] == [load(c).label for c in cases]
    assert [one(fig, f"grid:{c}:outcome").get_text() for c in range(4)] == [
        "✘ not delivered", "✘ not delivered", "✔ delivered", "✘ not delivered"]
    assert {g for g in gids(fig, "grid:") if g.endswith(":died")} == {
        "grid:0:c1:eth0:died", "grid:1:internet:eth0:died", "grid:3:host:hwchiu0:died"}
    assert fig.get_figwidth() > grid([load("no-route"), load("masquerade")]).get_figwidth()
    assert fig.get_figwidth() <= WIDTH
    # four in one band: the titles side by side, the addresses written on two lines to make room
    assert len({round(one(fig, f"grid:column:{c}").get_position()[1], 3) for c in range(4)}) == 1
    assert cell(fig, 2, "host:eth0", "request").get_text() == "10.0.2.15\n> 8.8.8.8 ◆"


def test_grid_needs_a_journey():
    with pytest.raises(ValueError, match="at least one journey"):
        grid([])


# -- journeys recorded from the real kernel (tests/data/recorded-*.json, written by record.py) -------

RECORDED = sorted(DATA.glob("recorded-*.json"))


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_recorded_journeys_draw_with_one_x_exactly_when_lost(path):
    journey = Journey.from_json(path)
    for draw in ("map", "ladder"):
        fig = picture(draw, path)           # drawn by Agg once, shared with the tests that only read it
        assert len(died_markers(fig)) == (0 if journey.delivered else 1), draw


def test_recorded_masquerade_shows_the_rewrite_where_the_kernel_made_it():
    masq = Journey.from_json(DATA / "recorded-s2-masquerade.json")
    fig = ladder(masq)
    out = one(fig, "ladder:label:request:host:eth0", Annotation)
    assert out.get_text() == "10.0.2.15 > 8.8.8.8" and same_color(out.get_color(), REQUEST) and boxed(out)
    inside = one(fig, "ladder:label:request:host:hwchiu0", Annotation)
    assert inside.get_text() == "10.55.66.2 > 8.8.8.8" and same_color(inside.get_color(), REQUEST)
    assert not boxed(inside)
    assert "nat MASQUERADE" in one(fig, "ladder:hook:request:host:eth0:POSTROUTING").get_text()


def test_recorded_scenario_1_grid():
    cases = ["s1-forward-drop", "s1-nf-call-0", "s1-forward-accept"]
    journeys = [Journey.from_json(DATA / f"recorded-{c}.json") for c in cases]
    fig = grid(journeys)
    assert [one(fig, f"grid:column:{c}").get_text() for c in range(3)] == [j.label for j in journeys]
    assert cell(fig, 0, "host:veth1", "request").get_text() == "not seen"
    assert said(fig, "grid:1:host:veth1:request") == "10.55.66.2 > 10.55.66.3"
    assert said(fig, "grid:2:c1:eth0:reply") == "10.55.66.3 > 10.55.66.2"
    assert {g for g in gids(fig, "grid:") if g.endswith(":died")} == {"grid:0:host:veth0:died"}


# -- every figure ----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("draw", [lab_map, ladder, lambda j: grid([j, load("masquerade")])],
                         ids=["lab_map", "ladder", "grid"])
def test_every_figure_renders_to_png_without_warnings(draw, case):
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # a missing glyph or a layout problem fails here
        fig = draw(load(case))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=50)
    data = buffer.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_chinese_labels_draw_without_missing_glyphs():
    # the article's words: packet, bridge; matplotlib warns "Glyph ... missing from font(s)" when one is missing
    assert len(plots.families()) > 1, ("no CJK font: apt-get install fonts-noto-cjk "
                                       "(./quickstart installs it), then draw again")
    journey = replace(load("bridge-nf-on"), label="封包經過橋接器 hwchiu0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for fig in (grid([journey, load("bridge-nf-off")]), ladder(replace(journey, src="c1（容器）"))):
            fig.savefig(io.BytesIO(), format="png", dpi=50)
            fig.savefig(io.BytesIO(), format="svg")
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing, missing
    title = one(grid([journey]), "grid:column:0")
    assert "封包" in title.get_text() and "橋接器" in title.get_text()
    assert plots.families()[0] == "DejaVu Sans" and "CJK" in plots.families()[1]
    assert list(title.get_fontfamily()) == list(plots.families())
    import matplotlib
    assert "Noto Sans CJK" not in " ".join(matplotlib.rcParams["font.family"])   # matplotlib's own settings kept


@pytest.mark.parametrize("draw", [lambda j, ax: lab_map(j, ax=ax), lambda j, ax: ladder(j, ax=ax),
                                  lambda j, ax: grid([j, j], ax=ax)])
def test_draws_into_the_axes_it_is_given(draw):
    fig = Figure(figsize=(20, 8))
    left, right = fig.subplots(1, 2)
    assert draw(load("masquerade"), right) is fig
    assert right.patches and not left.patches and not left.texts


def test_a_journey_with_nothing_recorded_still_draws_and_says_why():
    journey = Journey(src="c1", dst="8.8.8.8").decided(Outcome(Result.SEND_ERROR, "request", error="Bad address"))
    for fig in (lab_map(journey), ladder(journey), grid([journey, load("masquerade")])):
        fig.savefig(io.BytesIO(), format="png", dpi=30)
        assert any("c1 could not reach 8.8.8.8: Bad address" in t.replace("\n", " ") for t in texts(fig))
        assert not died_markers(fig)     # nowhere to put it: no point was recorded
    # with only the point it died at (a probe the sender's kernel refused)
    fig = ladder(journey.decided(Outcome(Result.SEND_ERROR, "request", None, "c1:eth0", error="Bad address")))
    (marker,) = died_markers(fig)
    assert marker.get_xdata()[0] == pytest.approx(column_x(fig, "c1:eth0"))


def test_the_module_is_pure():
    tree = ast.parse(Path(plots.__file__).read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    allowed = ("__future__", "io", "textwrap", "dataclasses", "typing", "journey", "outcome", "topology", "hooks", "netfilter",
               "functools", "glob", "math", "matplotlib", "provenance", "i18n", "re", "unicodedata")
    assert all(m.startswith("matplotlib.") or m in allowed for m in imported), imported
    assert "matplotlib.pyplot" not in imported
    code = ("import sys, netkit.plots; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('pyroute2', 'scapy') or m in ('matplotlib.pyplot', 'netkit.agent')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert set(plots.__all__) >= {"lab_map", "ladder", "grid"}
    assert all(getattr(plots, name).__doc__ for name in ("lab_map", "ladder", "grid"))


# -- part 4: the outside machine, DNAT, TCP (tests/data/recorded-p4-*.json) -------------------------------

PART4 = sorted(DATA.glob("recorded-p4-*.json"))
PART3 = sorted(DATA.glob("recorded-s*.json")) + sorted(DATA.glob("synthetic-*.json"))
HAIRPIN = ["p4-hairpin-br-netfilter", "p4-hairpin-broken", "p4-hairpin-masquerade"]


def recorded(case: str) -> Journey:
    return Journey.from_json(DATA / f"recorded-{case}.json")


def drawn(fig: Figure) -> Figure:
    FigureCanvasAgg(fig).draw()      # lays out every artist (the legend's texts too) on a canvas that measures
    return fig


def overlapping_texts(fig: Figure) -> list[tuple[str, str]]:
    renderer = drawn(fig).canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:]
            if min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > 0.5
            and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > 0.5]


def inside(point_xy, box) -> bool:
    x, y = point_xy
    return box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1


def node_box(fig: Figure, node: str):
    return one(fig, f"map:node:{node}").get_bbox()


PART4_PIECES = ("map:node:outside", "map:interface:host:eth1", "map:interface:outside:eth0",
                "map:address:host:eth1", "map:address:outside:eth0")


@pytest.mark.parametrize("path", PART4, ids=[p.stem for p in PART4])
def test_map_shows_eth1_and_the_outside_machine_for_a_part_4_journey(path):
    fig = lab_map(Journey.from_json(path))
    for gid in PART4_PIECES:
        assert with_gid(fig, gid), gid
    assert one(fig, "map:address:host:eth1").get_text() == "172.17.9.103/24"
    assert one(fig, "map:address:outside:eth0").get_text() == "172.17.9.10/24"
    assert "eth1" in texts(fig) and "outside" in texts(fig)
    # below the host, clear of everything part 3 draws
    outside, host = node_box(fig, "outside"), node_box(fig, "host")
    assert outside.y1 < host.y0
    for node in ("c1", "c2", "internet"):
        assert not outside.overlaps(node_box(fig, node)), node
    eth1 = centre(one(fig, "map:interface:host:eth1"))
    assert host.x0 < eth1[0] < host.x1 and eth1[1] == pytest.approx(host.y0)   # on the host's edge


@pytest.mark.parametrize("path", PART3, ids=[p.stem for p in PART3])
def test_map_of_a_part_3_journey_has_no_part_4_pieces(path):
    fig = lab_map(Journey.from_json(path))
    assert not any(with_gid(fig, gid) for gid in PART4_PIECES)
    assert not {"eth1", "172.17.9.103/24", "172.17.9.10/24"} & set(texts(fig))
    assert fig.get_figheight() == pytest.approx(lab_map().get_figheight())   # part 3's maps: one size


def test_map_outside_keyword_forces_the_part_4_pieces_either_way():
    assert not with_gid(lab_map(), "map:node:outside")
    empty = lab_map(outside=True)
    assert all(with_gid(empty, gid) for gid in PART4_PIECES) and not fig_arrows(empty)
    assert empty.get_figheight() > lab_map().get_figheight()       # the canvas grows to hold it
    forced = lab_map(load("masquerade"), outside=True)
    assert with_gid(forced, "map:node:outside")
    assert gids(forced, "map:request:", FancyArrowPatch) == gids(lab_map(load("masquerade")), "map:request:")
    hidden = lab_map(recorded("p4-dnat"), outside=False)
    assert not any(with_gid(hidden, gid) for gid in PART4_PIECES)
    assert gids(hidden, "map:request:", FancyArrowPatch) == {"map:request:host:veth0", "map:request:c1:eth0"}


def fig_arrows(fig: Figure) -> list:
    return [a for a in fig.findobj(FancyArrowPatch) if (a.get_gid() or "").startswith("map:")]


def test_map_draws_the_published_port_from_outside_to_c1():
    fig = drawn(lab_map(recorded("p4-dnat")))
    way = ["outside:eth0", "host:eth1", "host:hwchiu0", "host:veth0", "c1:eth0"]
    assert gids(fig, "map:request:", FancyArrowPatch) == {f"map:request:{p}" for p in way[1:]}
    assert gids(fig, "map:reply:", FancyArrowPatch) == {f"map:reply:{p}" for p in way[:-1]}
    for kind, order in (("request", way), ("reply", way[::-1])):
        for a, b in zip(order, order[1:]):   # each arrow runs from a's interface to b's
            arrow = one(fig, f"map:{kind}:{b}", FancyArrowPatch)
            assert same_color(arrow.get_edgecolor(), REQUEST if kind == "request" else REPLY)
            box = arrow.get_path().get_extents()
            (xa, ya), (xb, yb) = centre(one(fig, f"map:interface:{a}")), centre(one(fig, f"map:interface:{b}"))
            middle = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
            assert (middle[0] - (xa + xb) / 2) ** 2 + (middle[1] - (ya + yb) / 2) ** 2 < 0.6 ** 2, (kind, a, b)
            assert box.width + box.height > 0.5 * (abs(xb - xa) + abs(yb - ya)), (kind, a, b)
    assert not died_markers(fig)
    assert one(fig, "map:outcome").get_text().startswith("delivered")


def test_map_labels_the_dnat_with_leader_lines_beside_hwchiu0_and_eth1():
    journey = recorded("p4-dnat")
    sport = journey.first("request").sport
    fig = lab_map(journey)
    request = one(fig, "map:rewritten:request:host:hwchiu0", Text)
    words = request.get_text().replace("\n", " ")
    assert words.startswith(f"172.17.9.10:{sport} > 10.55.66.2:8000")
    assert "◆ DNAT: dst" in words
    assert boxed(request) and same_color(request.get_color(), REQUEST)
    reply = one(fig, "map:rewritten:reply:host:eth1", Text)
    assert reply.get_text().replace("\n", " ").startswith(f"172.17.9.103:2345 > 172.17.9.10:{sport}")
    assert "conntrack undoes DNAT: src" in " ".join(reply.get_text().split())
    assert boxed(reply) and same_color(reply.get_color(), REPLY)
    assert gids(fig, "map:rewritten:") == {"map:rewritten:request:host:hwchiu0", "map:rewritten:reply:host:eth1"}
    # in the host, below the bridge and above eth1, each with a leader line to the arrow it is about
    bridge, eth1 = (centre(one(fig, f"map:interface:{p}")) for p in ("host:hwchiu0", "host:eth1"))
    host = node_box(fig, "host")
    for kind, label, point in (("request", request, "host:hwchiu0"), ("reply", reply, "host:eth1")):
        assert inside(label.get_position(), host)
        assert eth1[1] < label.get_position()[1] < bridge[1]
        (leader,) = with_gid(fig, f"map:leader:{kind}:{point}", Line2D)
        assert same_color(leader.get_color(), REWRITE)
        arrow = one(fig, f"map:{kind}:{point}", FancyArrowPatch).get_path().get_extents()
        end = leader.get_xdata()[1], leader.get_ydata()[1]
        assert arrow.x0 - 0.05 <= end[0] <= arrow.x1 + 0.05 and arrow.y0 - 0.05 <= end[1] <= arrow.y1 + 0.05
    assert not gids(lab_map(recorded("p4-no-dnat")), "map:rewritten:")
    assert not overlapping_texts(fig)


def test_map_notes_a_dnat_the_host_made_before_its_packet_reached_the_bridge():
    journey = recorded("p4-local-output")     # the host's own packet, DNAT'd by a nat OUTPUT rule
    fig = lab_map(journey)
    assert gids(fig, "map:request:", FancyArrowPatch) == {"map:request:host:veth0", "map:request:c1:eth0"}
    note = one(fig, "map:rewritten:request:host:hwchiu0", Text)
    words = note.get_text().replace("\n", " ")
    assert "◆ DNAT in nat OUTPUT: dst" in words and "(sent to 172.17.9.103:2345)" in words and boxed(note)
    assert with_gid(fig, "map:interface:host:lo")      # the host called one of its own addresses


@pytest.mark.parametrize("case, near, node", [
    ("p4-hairpin-broken", "c2:eth0", "c2"),          # the reply reached c2, which could not match it
    ("p4-local-refused", "host:lo", "host"),         # the host refused its own probe, over lo
    ("p4-no-dnat", "host:eth1", "host"),             # the host itself refused the SYN from outside
])
def test_map_crosses_out_where_a_part_4_probe_died(case, near, node):
    fig = lab_map(recorded(case))
    (marker,) = died_markers(fig)
    assert same_color(marker.get_color(), RED)
    x, y = marker.get_xdata()[0], marker.get_ydata()[0]
    assert inside((x, y), node_box(fig, node))
    interfaces = {g.removeprefix("map:interface:"): centre(one(fig, g)) for g in gids(fig, "map:interface:")}
    nearest = min(interfaces, key=lambda p: (interfaces[p][0] - x) ** 2 + (interfaces[p][1] - y) ** 2)
    assert nearest == near
    px, py = interfaces[near]
    assert (x - px) ** 2 + (y - py) ** 2 > 0.4 ** 2          # beside the interface, not over its name
    reason = one(fig, "map:reason").get_text().replace("\n", " ")
    assert reason == recorded(case).reason
    assert not overlapping_texts(fig)


def test_map_draws_lo_for_the_hosts_probe_to_itself():
    fig = lab_map(recorded("p4-local-refused"))
    assert not fig_arrows(fig)
    lo = one(fig, "map:interface:host:lo")
    assert lo.get_linestyle() == "--"                   # dashed: no point watches it
    assert inside(centre(lo), node_box(fig, "host"))
    assert "lo: the host's loopback" in one(fig, "map:legend:lo").get_text()
    assert "172.17.9.103 (the host itself)" in one(fig, "map:reason").get_text().replace("\n", " ")
    for other in ("p4-dnat", "p4-no-dnat", "s2-masquerade"):
        assert not with_gid(lab_map(recorded(other)), "map:interface:host:lo"), other


@pytest.mark.parametrize("path", PART4, ids=[p.stem for p in PART4])
def test_part_4_figures_have_no_overlapping_text(path):
    journey = Journey.from_json(path)
    for draw in (lab_map, ladder):
        assert not overlapping_texts(draw(journey)), draw.__name__


@pytest.mark.parametrize("path", PART4, ids=[p.stem for p in PART4])
def test_part_4_ladder_columns_are_the_path_in_order(path):
    journey = Journey.from_json(path)
    fig = ladder(journey)
    shown = sorted(gids(fig, "ladder:column:"), key=lambda g: column_x(fig, g.split(":", 2)[2]))
    path_points = [h.point for h in journey.hops if h.on_path]
    assert [g.split(":", 2)[2] for g in shown] == (path_points or ["host:lo"])


def test_ladder_of_a_refused_connection_crosses_out_where_the_request_ended():
    journey = recorded("p4-no-dnat")
    fig = ladder(journey)
    (marker,) = died_markers(fig)
    assert marker.get_xdata()[0] == pytest.approx(column_x(fig, "host:eth1"))
    seen = {g: one(fig, g).get_ydata()[0] for g in gids(fig, "ladder:seen:")}
    # below where the request arrived (after INPUT handed it to the host's TCP), above the reset
    assert seen["ladder:seen:request:host:eth1"] < marker.get_ydata()[0]
    assert one(fig, "ladder:hook:request:host:eth1:INPUT").get_position()[1] < marker.get_ydata()[0]
    assert marker.get_ydata()[0] < min(y for g, y in seen.items() if ":reply:" in g)
    assert "RST" in one(fig, "ladder:reset").get_text()
    assert one(fig, "ladder:death").get_text() == "refused: nothing listens on 2345"
    assert "connection refused" in one(fig, "ladder:reason").get_text().replace("\n", " ")


def test_the_hosts_reset_is_its_own_line_in_every_language():
    """The reset line is a Line of its own kind ("reset"), not a socket line whose words say RST."""
    from netkit.i18n import use_language
    use_language("zh-TW")
    try:
        fig = ladder(recorded("p4-no-dnat"))
        assert one(fig, "ladder:reset").get_text() == "宿主機自己送出：TCP reset（RST）"
    finally:
        use_language(None)


def test_ladder_of_the_hosts_probe_to_itself_has_lo_its_hooks_and_an_x():
    fig = ladder(recorded("p4-local-refused"))
    (marker,) = died_markers(fig)
    assert marker.get_xdata()[0] == pytest.approx(column_x(fig, "host:lo"))
    assert one(fig, "ladder:death").get_text() == "refused: nothing listens on 2345"
    request = sorted((t for t in fig.findobj(Text) if (t.get_gid() or "").startswith("ladder:hook:request:")),
                     key=lambda t: t.get_position()[1])
    assert [t.get_text() for t in request] == [
        "sent by the host itself", "OUTPUT", "routing → lo", "POSTROUTING", "PREROUTING", "routing: to this host",
        "INPUT", "to the host's own socket"]
    assert request[-1].get_position()[1] < marker.get_ydata()[0]


def test_ladder_names_every_nat_that_rewrote_the_hairpin():
    fig = ladder(recorded("p4-hairpin-masquerade"))
    assert one(fig, "ladder:hook:request:host:veth0:PREROUTING").get_text() == "◆ PREROUTING  nat DNAT [1]"
    assert one(fig, "ladder:hook:request:host:veth0:POSTROUTING").get_text() == "◆ POSTROUTING  nat MASQUERADE [3]"
    rules = one(fig, "ladder:rules").get_text()
    assert "[1] iptables -t nat -A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT" in rules
    assert "[3] iptables -t nat -A POSTROUTING -s 10.55.66.0/24" in rules
    back = one(fig, "ladder:hook:reply:host:veth1:POSTROUTING").get_text()
    assert back == "◆ POSTROUTING  conntrack undoes DNAT: src"      # the reply's source, as the kernel does it
    dnat = ladder(recorded("p4-dnat"))
    assert one(dnat, "ladder:hook:request:host:hwchiu0:PREROUTING").get_text() == "◆ PREROUTING  nat DNAT [1]"
    # br_netfilter DNATs in the bridge, before hwchiu0 sees the frame: the hook sits on that step
    bridged = ladder(recorded("p4-hairpin-br-netfilter"))
    assert with_gid(bridged, "ladder:hook:request:host:hwchiu0:PREROUTING")
    assert with_gid(bridged, "ladder:hook:request:host:veth0:FORWARD")


def test_recorded_hairpin_grid():
    journeys = [recorded(c) for c in HAIRPIN]
    fig = grid(journeys)
    assert [said(fig, f"grid:column:{c}") for c in range(3)] == [
        "bridge-nf-call-iptables=1", "bridge-nf-call-iptables=0", "hairpin MASQUERADE"]
    assert [one(fig, f"grid:{c}:outcome").get_text() for c in range(3)] == [
        "✔ delivered", "✘ not delivered", "✔ delivered"]
    # rows follow the path, c2 -> c1, then the outcome
    rows = sorted(gids(fig, "grid:row:"), key=lambda g: one(fig, g).get_position()[1])
    assert [g.removeprefix("grid:row:") for g in rows] == [
        "c2:eth0", "host:veth1", "host:hwchiu0", "host:veth0", "c1:eth0", "outcome"]
    # the broken one: the reply reached c2 from 10.55.66.2:8000, not from the address c2 called
    broken = journeys[1]
    sport = broken.first("request").sport
    assert said(fig, "grid:1:c2:eth0:reply") == f"10.55.66.2:8000 > 10.55.66.3:{sport}"
    assert {g for g in gids(fig, "grid:") if g.endswith(":died")} == {"grid:1:c2:eth0:died"}
    assert "hairpin NAT is missing" in one(fig, "grid:1:verdict").get_text().replace("\n", " ")
    assert not with_gid(fig, "grid:0:verdict") and not with_gid(fig, "grid:2:verdict")
    # where each one's reply was rewritten back: by the bridge's conntrack, by nothing, by the host's
    assert boxed(cell(fig, 0, "c2:eth0", "reply")) and not boxed(cell(fig, 1, "c2:eth0", "reply"))
    assert cell(fig, 0, "host:veth1", "reply").get_text().endswith(" ◆")
    assert same_color(cell(fig, 1, "c2:eth0", "reply").get_color(), REPLY)
    assert cell(fig, 2, "c1:eth0", "request").get_text().startswith("10.55.66.1:")
    assert not overlapping_texts(fig)
    # the explanation stays inside its outcome cell
    renderer = fig.canvas.get_renderer()
    verdict = one(fig, "grid:1:verdict").get_window_extent(renderer)
    box = one(fig, "grid:cell:1:outcome", Rectangle).get_window_extent(renderer)
    assert box.x0 <= verdict.x0 and verdict.x1 <= box.x1 and box.y0 <= verdict.y0 and verdict.y1 <= box.y1


def test_grid_rows_merge_paths_that_run_different_ways():
    fig = grid([recorded("p4-no-dnat"), recorded("p4-dnat"), recorded("p4-local-output")])
    rows = sorted(gids(fig, "grid:row:"), key=lambda g: one(fig, g).get_position()[1])
    assert [g.removeprefix("grid:row:") for g in rows] == [
        "outside:eth0", "host:eth1", "host:hwchiu0", "host:veth0", "c1:eth0", "outcome"]
    assert {g for g in gids(fig, "grid:") if g.endswith(":died")} == {"grid:0:host:eth1:died"}
    assert not overlapping_texts(fig)


# -- one visual language, for every journey ----------------------------------------------------------

def journeys_every() -> list[Journey]:
    return [Journey.from_json(p) for p in EVERY]


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
def test_one_died_here_mark_in_the_same_place_in_every_view(path):
    journey = Journey.from_json(path)
    mark, outcome = journey.mark, journey.outcome
    figures = {draw: picture(draw, path) for draw in ("ladder", "map", "grid")}
    table = journey.table().splitlines()
    html = journey._repr_html_()
    if journey.delivered:
        assert mark is None
        assert all(not died_markers(fig) for fig in figures.values())
        assert not [g for g in gids(figures["grid"], "grid:") if g.endswith(":died")]
        assert "✘" not in journey.table() and "✘" not in html
        return
    # the place, read from the outcome: its point (or the host's lo for its probe to itself) and its node
    assert mark.point == (outcome.at or "host:lo") and mark.node == outcome.node and mark.packet == outcome.packet
    # the table: one row marked, the mark's point
    marked = [row for row in table if "✘" in row]
    assert len(marked) == 1 and marked[0].split()[0] == mark.point
    assert html.count("✘") == 1
    assert f"<td>{mark.point}</td>" in html.split("✘")[0].rsplit("<tr>", 1)[1]
    # the grid: one ✘, on the mark's row
    assert [g for g in gids(figures["grid"], "grid:") if g.endswith(":died")] == [f"grid:0:{mark.point}:died"]
    # the ladder: one ✘, on the mark's column, or halfway to the point it never reached
    (x,) = died_markers(figures["ladder"])
    fig = figures["ladder"]
    expected = column_x(fig, mark.point) if not mark.then else (
        column_x(fig, mark.point) + column_x(fig, mark.then)) / 2
    assert x.get_xdata()[0] == pytest.approx(expected)
    # the map: one ✘, inside the mark's node, beside its point (or on the way to the next)
    (x,) = died_markers(figures["map"])
    fig, here = figures["map"], (x.get_xdata()[0], x.get_ydata()[0])
    assert inside(here, node_box(fig, mark.node))
    interfaces = {g.removeprefix("map:interface:"): centre(one(fig, g)) for g in gids(fig, "map:interface:")}

    def distance(point):
        return ((interfaces[point][0] - here[0]) ** 2 + (interfaces[point][1] - here[1]) ** 2) ** 0.5
    if mark.then:
        assert abs(distance(mark.point) - distance(mark.then)) < 0.6 * max(distance(mark.point), 0.5)
    else:
        assert min(interfaces, key=distance) == mark.point


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
def test_red_means_died_and_nothing_else(path):
    journey = Journey.from_json(path)
    for draw in ("ladder", "map", "grid"):
        red = [g for g, c in colours(picture(draw, path)) if same_color(c, RED)]
        if journey.delivered:
            assert not red, red
        else:
            assert any(g == "died" or g.endswith(":died") for g in red), red


@pytest.mark.parametrize("path", EVERY, ids=[p.stem for p in EVERY])
def test_rewritten_addresses_and_only_those_are_in_the_rewrite_colour(path):
    journey = Journey.from_json(path)
    path_points = [h.point for h in journey.hops if h.on_path]
    rewritten = set()     # (kind, point) carrying an address NAT rewrote, read from the outcome
    for r in journey.outcome.rewrites:
        way = path_points if r.packet == "request" else path_points[::-1]
        rewritten |= {(r.packet, p) for p in way[way.index(r.point):] if journey.seen(p, r.packet)}
    expected = set(rewritten)
    if journey.src == "host" and any(entry.dnat for entry in journey.conntrack):
        # the host's own connection, DNATed in nat OUTPUT (or a chain it jumps to, Docker's DOCKER)
        expected |= {("request", p) for p in path_points if journey.seen(p)}
    steps, cells = picture("ladder", path), picture("grid", path)
    for kind in ("request", "reply"):
        for point in path_points:
            if not journey.seen(point, kind):
                continue
            if (kind, point) != (kind, _seen_first(journey, kind)):
                label = one(steps, f"ladder:label:{kind}:{point}")
                assert boxed(label) == ((kind, point) in expected), ("ladder", kind, point)
            text = one(cells, f"grid:0:{point}:{kind}")
            assert boxed(text) == ((kind, point) in expected), ("grid", kind, point)
            assert same_color(text.get_color(), REQUEST if kind == "request" else REPLY)
    # the map notes each rewrite where it was first seen, naming what made it
    notes = {g.removeprefix("map:rewritten:"): t.get_text() for t in picture("map", path).findobj(Text)
             for g in [t.get_gid() or ""] if g.startswith("map:rewritten:")}
    for r in journey.outcome.rewrites:
        words = " ".join(notes[f"{r.packet}:{r.point}"].split())
        assert ("conntrack undoes" if r.by == "conntrack" else r.by) in words
    assert all(boxed(t) for t in picture("map", path).findobj(Text)
               if (t.get_gid() or "").startswith("map:rewritten:"))
    # the table boxes the same cells (from the outcome's rewrites: the host's own nat OUTPUT DNAT is not one)
    assert journey._repr_html_().count("◆") == len(rewritten)


def _seen_first(journey: Journey, kind: str) -> str | None:
    """The point `kind` was first seen at: no ladder arrow arrives there, so it has no label."""
    path = [h.point for h in journey.hops if h.on_path]
    way = path if kind == "request" else path[::-1]
    return next((p for p in way if journey.seen(p, kind)), None)


NOTEBOOK_GRIDS = {   # the grids notebooks 01-04 draw, from the recorded journeys that stand for them
    "01": ["s1-forward-drop", "s1-nf-call-0", "s1-forward-accept"],
    "02": ["s2-no-route", "s2-no-masquerade", "s2-forward-drop", "s2-forward-rules"],
    "03": ["p4-no-dnat", "s2-forward-drop", "p4-dnat", "p4-local-refused", "p4-local-output"],
    "03-hairpin": HAIRPIN,
    "04": ["d29-published", "p4-dnat", "s2-masquerade"],
}


def pictures():
    for path in sorted(DATA.glob("recorded-*.json")):
        journey = Journey.from_json(path)
        yield f"ladder:{path.stem}", lambda j=journey: ladder(j)
        yield f"map:{path.stem}", lambda j=journey: lab_map(j, bridge_address=BRIDGE_ADDRESS)
    for name, cases in NOTEBOOK_GRIDS.items():
        yield f"grid:{name}", lambda cases=cases: grid([recorded(c) for c in cases])
    yield "map:empty", lambda: lab_map()
    yield "map:outside", lambda: lab_map(outside=True)


@pytest.mark.parametrize("name, draw", list(pictures()), ids=[n for n, _ in pictures()])
def test_no_picture_is_wider_than_the_notebook(name, draw):
    fig = drawn(draw())
    assert fig.get_figwidth() <= WIDTH + 1e-9
    # what Jupyter shows (a tight box around everything drawn) fits too, at 100 dpi in 980 px
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    assert tight.x0 >= -0.05 and tight.x1 <= WIDTH + 0.05, (tight.x0, tight.x1)
    assert tight.width * 100 <= 980
    # and every text can be read on a projector
    small = {t.get_text()[:30]: t.get_fontsize() for t in fig.findobj(Text)
             if t.get_text().strip() and t.get_fontsize() < plots.SMALL}
    assert not small, small


def test_a_grid_of_five_journeys_wraps_into_bands_that_fit():
    fig = drawn(grid([recorded(c) for c in NOTEBOOK_GRIDS["03"]]))
    tops = [round(one(fig, f"grid:column:{c}").get_position()[1], 3) for c in range(5)]
    assert tops[0] == tops[1] == tops[2] and tops[3] == tops[4] and tops[3] > tops[0]   # 3, then 2 below
    assert gids(fig, "grid:row:outcome")          # each band has its outcome row
    assert with_gid(fig, "grid:row:host:lo:band1") or with_gid(fig, "grid:row:host:lo")
    assert not overlapping_texts(fig)


def test_the_panels_picture_keeps_its_height_when_the_picture_changes():
    from netkit import widgets

    class Recorded:
        """A lab that answers with recorded journeys: c1 -> c2 dropped, then (FORWARD ACCEPT) delivered."""

        def __init__(self):
            self.policy = "DROP"

        def state(self, *names):
            return {name: {"forward-policy": self.policy, "bridge-nf-call-iptables": 1}.get(name, False)
                    for name in names}

        def set(self, name, value):
            self.policy = value
            return []

        def probe(self, src, dst, port=None):
            return recorded("s1-forward-drop" if self.policy == "DROP" else "s1-forward-accept")

    panel = widgets.Panel(Recorded(), ["forward-policy"], probe=("c1", "10.55.66.3"))
    frame = panel.frame.layout.height
    assert frame == widgets.PICTURE_HEIGHT and panel.picture in panel.frame.children
    assert panel.frame in panel.widget.children and panel.picture not in panel.widget.children
    pictures = [panel.picture.value]
    panel.view.value = "map"
    pictures.append(panel.picture.value)
    panel.controls["forward-policy"].value = "ACCEPT"
    pictures.append(panel.picture.value)
    assert len(set(pictures)) == 3 and all(b"<svg" in bytes(p)[:400] for p in pictures)
    assert panel.frame.layout.height == frame and panel.picture.layout.object_fit == "contain"


@pytest.mark.parametrize("path", sorted(DATA.glob("recorded-*.json")) + sorted(DATA.glob("synthetic-*.json")),
                         ids=lambda p: p.stem)
def test_every_journey_draws_in_traditional_chinese_without_missing_glyphs(path):
    """The ladder, the map and the grid of every journey in zh-TW: titles in Chinese, no glyph drawn as an
    empty box (matplotlib warns "Glyph ... missing from font(s)"), no picture wider than WIDTH."""
    import warnings
    from netkit.i18n import use_language
    assert len(plots.families()) > 1, "no CJK font: sudo apt-get install fonts-noto-cjk"
    use_language("zh-TW")
    try:
        journey = Journey.from_json(path)
        other = Journey.from_json(DATA / "synthetic-masquerade.json")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            figures = [plots.ladder(journey), plots.lab_map(journey), plots.grid([journey, other])]
            for figure in figures:
                figure.savefig(io.BytesIO(), format="png", dpi=40)
                figure.savefig(io.BytesIO(), format="svg")
        missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
        assert not missing, missing
        assert all(figure.get_size_inches()[0] <= plots.WIDTH + 1e-6 for figure in figures)
        titles = [figure.axes[0].get_title(loc="left") for figure in figures]
        assert all(HAN.search(title) for title in titles), titles
    finally:
        use_language(None)
