"""netkit.plots, tested from recorded journeys: what each figure shows, not only that it draws.

The journeys are the synthetic ones in tests/data (written by
tests/data/make_synthetic.py); journeys recorded from the kernel have the
same shape. Figures are read back through their artists: texts, their
colours and places, the arrows (FancyArrowPatch) and the X (a Line2D with
marker "X"); artists carry a gid saying what they show (see netkit.plots).
"""

from __future__ import annotations

import ast
import importlib.util
import io
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
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle
from matplotlib.text import Annotation, Text

from netkit import plots
from netkit.journey import Journey, Sighting
from netkit.outcome import Outcome, Result
from netkit.plots import GREY, RED, REPLY, REQUEST, grid, lab_map, ladder
from netkit.topology import BRIDGE_ADDRESS

DATA = Path(__file__).parent / "data"
CASES = ("bridge-nf-on", "bridge-nf-off", "no-route", "no-masquerade", "masquerade",
         "masquerade-forward-drop")
TO_C2 = ["c1:eth0", "host:veth0", "host:veth1", "c2:eth0"]       # bridged: hwchiu0 itself sees nothing
TO_INTERNET = ["c1:eth0", "host:veth0", "host:hwchiu0", "host:eth0", "internet:eth0"]


def load(case: str) -> Journey:
    return Journey.from_json(DATA / f"synthetic-{case}.json")


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
    for word in ("c1  (container)", "c2  (container)", "host", "internet", "hwchiu0", "veth0", "veth1",
                 "10.55.66.2/24", "10.55.66.3/24", "10.0.2.15/24", "10.0.2.2/24", "8.8.8.8", "1.1.1.1"):
        assert word in shown, word
    assert texts(fig).count("eth0") == 4          # c1, c2, the host's uplink, the internet's
    assert one(fig, "map:bridge-address").get_text() == "no IP address"
    assert BRIDGE_ADDRESS not in shown
    assert not fig.findobj(FancyArrowPatch) and not died_markers(fig)


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
    assert lowest < min(veth0[1], veth1[1]) - 1.0      # not along the host's edge: down into the bridge
    assert abs(lowest - bridge[1]) < 0.8


@pytest.mark.parametrize("case, last, expected", [
    ("bridge-nf-on", "host:veth0", "host:veth1"),            # the bridged frame meets FORWARD
    ("masquerade-forward-drop", "host:hwchiu0", "host:eth0"),  # routed hwchiu0 -> eth0 meets FORWARD
    ("no-route", "c1:eth0", "host:veth0"),                   # never left c1
    ("no-masquerade", "internet:eth0", "host:eth0"),         # the reply never left the internet
])
def test_map_puts_a_red_x_where_the_probe_died(case, last, expected):
    fig = lab_map(load(case))
    (marker,) = died_markers(fig)
    assert same_color(marker.get_color(), RED)
    x, y = marker.get_xdata()[0], marker.get_ydata()[0]
    (ax, ay), (bx, by) = (centre(one(fig, f"map:interface:{p}")) for p in (last, expected))
    # on the stretch between the last point it was seen at and the one it never reached ...
    length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
    along = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length ** 2
    aside = abs((x - ax) * (by - ay) - (y - ay) * (bx - ax)) / length
    assert 0.25 < along < 0.75 and aside < 2.0
    # ... without hiding either interface's name
    assert (x - ax) ** 2 + (y - ay) ** 2 > 0.8 ** 2 and (x - bx) ** 2 + (y - by) ** 2 > 0.8 ** 2
    # ... nor the arrows of what was seen
    for arrow in fig.findobj(FancyArrowPatch):
        if arrow.get_gid().startswith("map:lost:"):
            continue      # the stub of the lost packet's way, which ends at the X
        box = arrow.get_path().get_extents()
        assert not (box.x0 - 0.35 < x < box.x1 + 0.35 and box.y0 - 0.35 < y < box.y1 + 0.35), arrow.get_gid()


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


def test_map_shows_the_masqueraded_address_in_red_only_with_masquerade():
    fig = lab_map(load("masquerade"), bridge_address=BRIDGE_ADDRESS)
    out = one(fig, "map:rewritten:request:host:eth0", Text)
    assert out.get_text().startswith("10.0.2.15 > 8.8.8.8") and "NAT" in out.get_text()
    assert same_color(out.get_color(), RED)
    back = one(fig, "map:rewritten:reply:host:hwchiu0", Text)
    assert back.get_text().startswith("8.8.8.8 > 10.55.66.2") and same_color(back.get_color(), RED)
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
    for kind, point, text, color in [
        ("request", "host:veth0", "10.55.66.2 > 8.8.8.8", REQUEST),
        ("request", "host:hwchiu0", "10.55.66.2 > 8.8.8.8", REQUEST),
        ("request", "host:eth0", "10.0.2.15 > 8.8.8.8", RED),       # MASQUERADE rewrote the source
        ("request", "internet:eth0", "10.0.2.15 > 8.8.8.8", RED),
        ("reply", "host:eth0", "8.8.8.8 > 10.0.2.15", REPLY),
        ("reply", "host:hwchiu0", "8.8.8.8 > 10.55.66.2", RED),     # conntrack undid it
        ("reply", "c1:eth0", "8.8.8.8 > 10.55.66.2", RED),
    ]:
        label = one(fig, f"ladder:label:{kind}:{point}", Annotation)
        assert label.get_text() == text, (kind, point)
        assert same_color(label.get_color(), color), (kind, point)
    # the label sits on the hop that arrives at host:eth0: between hwchiu0's column and eth0's
    label = one(fig, "ladder:label:request:host:eth0", Annotation)
    assert label.xy[0] == pytest.approx((column_x(fig, "host:hwchiu0") + column_x(fig, "host:eth0")) / 2)
    note = one(fig, "ladder:note:request:host:eth0", Annotation)
    assert "rewritten by NAT" in note.get_text() and same_color(note.get_color(), RED)
    # said once, where it happened
    assert not with_gid(fig, "ladder:note:request:internet:eth0")


def test_ladder_without_nat_has_nothing_red():
    fig = ladder(load("bridge-nf-off"))
    labels = [a for a in fig.findobj(Annotation) if (a.get_gid() or "").startswith("ladder:label:")]
    assert len(labels) == 6
    assert not any(same_color(a.get_color(), RED) for a in labels)
    assert not gids(fig, "ladder:note:")


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
        assert "filter FORWARD policy DROP" in death.get_text().replace("\n", " ")
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
    assert marker.get_ydata()[0] == pytest.approx(max(reply_rows))
    assert one(fig, "ladder:death").get_text() == "the reply was lost after c1:eth0"


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
    title = ladder(load("bridge-nf-on")).axes[0].get_title(loc="left")
    assert "NOT delivered" in title and "filter FORWARD policy DROP" in title
    title = ladder(load("bridge-nf-off")).axes[0].get_title(loc="left")
    assert "delivered" in title and "NOT" not in title


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
    # where it died: a red X in the column of the journey that died, at host:veth1
    assert gids(fig, "grid:", Text) & {f"grid:{c}:{p}:died" for c in range(2) for p in TO_C2} == {
        f"grid:{on}:host:veth1:died"}
    assert same_color(one(fig, f"grid:{on}:host:veth1:died").get_color(), RED)
    assert one(fig, f"grid:{on}:outcome").get_text() == "✘ not delivered"
    assert one(fig, f"grid:{off}:outcome").get_text() == "✔ delivered"
    assert "filter FORWARD policy DROP" in one(fig, f"grid:{on}:verdict").get_text().replace("\n", " ")
    assert not with_gid(fig, f"grid:{off}:verdict")


def test_grid_rows_are_points_in_path_order_then_the_outcome():
    fig = grid([load("no-masquerade"), load("masquerade")])
    rows = sorted(gids(fig, "grid:row:"), key=lambda g: one(fig, g).get_position()[1])
    assert [g.removeprefix("grid:row:") for g in rows] == TO_INTERNET + ["outcome"]


def test_grid_shows_rewritten_addresses_in_red():
    fig = grid([load("no-masquerade"), load("masquerade")])
    assert cell(fig, 0, "host:eth0", "request").get_text() == "10.55.66.2 > 8.8.8.8"
    assert same_color(cell(fig, 0, "host:eth0", "request").get_color(), REQUEST)
    assert cell(fig, 1, "host:eth0", "request").get_text() == "10.0.2.15 > 8.8.8.8"
    assert same_color(cell(fig, 1, "host:eth0", "request").get_color(), RED)
    assert same_color(cell(fig, 1, "host:hwchiu0", "request").get_color(), REQUEST)
    assert cell(fig, 0, "internet:eth0", "reply").get_text() == "not seen"
    assert cell(fig, 1, "internet:eth0", "reply").get_text() == "8.8.8.8 > 10.0.2.15"
    assert "rewritten" in one(fig, "grid:key").get_text()
    assert "rewritten" not in one(grid([load("bridge-nf-on"), load("bridge-nf-off")]), "grid:key").get_text()


def test_grid_takes_four_conditions():
    cases = ["no-route", "no-masquerade", "masquerade", "masquerade-forward-drop"]
    fig = grid([load(c) for c in cases])
    assert [one(fig, f"grid:column:{c}").get_text() for c in range(4)] == [load(c).label for c in cases]
    assert [one(fig, f"grid:{c}:outcome").get_text() for c in range(4)] == [
        "✘ not delivered", "✘ not delivered", "✔ delivered", "✘ not delivered"]
    assert {g for g in gids(fig, "grid:") if g.endswith(":died")} == {
        "grid:0:c1:eth0:died", "grid:1:internet:eth0:died", "grid:3:host:eth0:died"}
    assert fig.get_figwidth() > grid([load("no-route"), load("masquerade")]).get_figwidth()


def test_grid_needs_a_journey():
    with pytest.raises(ValueError, match="at least one journey"):
        grid([])


# -- journeys recorded from the real kernel (tests/data/recorded-*.json, written by record.py) -------

RECORDED = sorted(DATA.glob("recorded-*.json"))


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_recorded_journeys_draw_with_one_x_exactly_when_lost(path):
    journey = Journey.from_json(path)
    for draw in (lab_map, ladder):
        fig = draw(journey)
        fig.savefig(io.BytesIO(), format="png", dpi=30)
        assert len(died_markers(fig)) == (0 if journey.delivered else 1), draw.__name__


def test_recorded_masquerade_shows_the_rewrite_where_the_kernel_made_it():
    masq = Journey.from_json(DATA / "recorded-s2-masquerade.json")
    fig = ladder(masq)
    out = one(fig, "ladder:label:request:host:eth0", Annotation)
    assert out.get_text() == "10.0.2.15 > 8.8.8.8" and same_color(out.get_color(), RED)
    inside = one(fig, "ladder:label:request:host:hwchiu0", Annotation)
    assert inside.get_text() == "10.55.66.2 > 8.8.8.8" and same_color(inside.get_color(), REQUEST)
    assert "rewritten by NAT" in one(fig, "ladder:note:request:host:eth0").get_text()


def test_recorded_scenario_1_grid():
    cases = ["s1-forward-drop", "s1-nf-call-0", "s1-forward-accept"]
    journeys = [Journey.from_json(DATA / f"recorded-{c}.json") for c in cases]
    fig = grid(journeys)
    assert [one(fig, f"grid:column:{c}").get_text() for c in range(3)] == [j.label for j in journeys]
    assert cell(fig, 0, "host:veth1", "request").get_text() == "not seen"
    assert cell(fig, 1, "host:veth1", "request").get_text() == "10.55.66.2 > 10.55.66.3"
    assert cell(fig, 2, "c1:eth0", "reply").get_text() == "10.55.66.3 > 10.55.66.2"
    assert {g for g in gids(fig, "grid:") if g.endswith(":died")} == {"grid:0:host:veth1:died"}


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
    allowed = ("__future__", "io", "textwrap", "dataclasses", "typing", "journey", "outcome", "topology",
               "provenance")
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
    assert fig.get_figheight() == pytest.approx(8.4)


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


def test_map_labels_the_dnat_in_red_beside_hwchiu0_and_eth1():
    journey = recorded("p4-dnat")
    sport = journey.first("request").sport
    fig = lab_map(journey)
    request = one(fig, "map:rewritten:request:host:hwchiu0", Text)
    words = request.get_text().replace("\n", " ")
    assert words.startswith(f"172.17.9.10:{sport} > 10.55.66.2:8000")
    assert "dst rewritten by NAT (DNAT)" in words
    assert same_color(request.get_color(), RED)
    reply = one(fig, "map:rewritten:reply:host:eth1", Text)
    assert reply.get_text().replace("\n", " ").startswith(f"172.17.9.103:2345 > 172.17.9.10:{sport}")
    assert same_color(reply.get_color(), RED)
    assert gids(fig, "map:rewritten:") == {"map:rewritten:request:host:hwchiu0", "map:rewritten:reply:host:eth1"}
    # in the host, between the bridge and eth1: the DNAT label the nearer to the bridge, the reply's to eth1
    bridge, eth1 = (centre(one(fig, f"map:interface:{p}")) for p in ("host:hwchiu0", "host:eth1"))
    host = node_box(fig, "host")
    for label in (request, reply):
        assert inside(label.get_position(), host)
        assert eth1[1] < label.get_position()[1] < bridge[1]
    assert request.get_position()[1] > reply.get_position()[1]
    assert not gids(lab_map(recorded("p4-no-dnat")), "map:rewritten:")
    assert not overlapping_texts(fig)


def test_map_notes_a_dnat_the_host_made_before_its_packet_reached_the_bridge():
    journey = recorded("p4-local-output")     # the host's own packet, DNAT'd by a nat OUTPUT rule
    fig = lab_map(journey)
    assert gids(fig, "map:request:", FancyArrowPatch) == {"map:request:host:veth0", "map:request:c1:eth0"}
    note = one(fig, "map:rewritten:request:host:hwchiu0", Text).get_text().replace("\n", " ")
    assert "dst rewritten by NAT (DNAT)" in note and "nat OUTPUT" in note and "172.17.9.103:2345" in note


@pytest.mark.parametrize("case, near, node", [
    ("p4-hairpin-broken", "c2:eth0", "c2"),          # the reply reached c2, which could not match it
    ("p4-local-refused", "host:eth1", "host"),       # the host refused its own probe, over lo
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
    assert (x - px) ** 2 + (y - py) ** 2 > 0.8 ** 2          # beside the interface, not over its name
    reason = one(fig, "map:reason").get_text().replace("\n", " ")
    assert reason == recorded(case).reason
    assert not overlapping_texts(fig)


def test_map_says_the_local_probe_never_left_the_host():
    fig = lab_map(recorded("p4-local-refused"))
    assert not fig_arrows(fig)
    said = one(fig, "map:local").get_text().replace("\n", " ")
    assert "172.17.9.103:2345" in said and "lo" in said and same_color(one(fig, "map:local").get_color(), RED)


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
    assert [g.split(":", 2)[2] for g in shown] == (path_points or ["host"])


def test_ladder_of_a_refused_connection_crosses_out_where_the_request_ended():
    journey = recorded("p4-no-dnat")
    fig = ladder(journey)
    (marker,) = died_markers(fig)
    assert marker.get_xdata()[0] == pytest.approx(column_x(fig, "host:eth1"))
    seen = {g: one(fig, g).get_ydata()[0] for g in gids(fig, "ladder:seen:")}
    assert marker.get_ydata()[0] == pytest.approx(seen["ladder:seen:request:host:eth1"])
    assert marker.get_ydata()[0] < min(y for g, y in seen.items() if ":reply:" in g)   # above the reset
    assert "RST" in one(fig, "ladder:reset").get_text()
    assert "connection refused" in one(fig, "ladder:death").get_text().replace("\n", " ")


def test_ladder_of_the_hosts_probe_to_itself_has_the_host_and_an_x():
    fig = ladder(recorded("p4-local-refused"))
    (marker,) = died_markers(fig)
    assert marker.get_xdata()[0] == pytest.approx(column_x(fig, "host"))
    assert "connection refused" in one(fig, "ladder:death").get_text().replace("\n", " ")


def test_ladder_names_every_nat_that_rewrote_the_hairpin():
    fig = ladder(recorded("p4-hairpin-masquerade"))
    note = one(fig, "ladder:note:request:host:veth0").get_text()
    assert note == "src and dst rewritten by NAT (DNAT, MASQUERADE)"
    assert one(ladder(recorded("p4-dnat")), "ladder:note:request:host:hwchiu0").get_text() == (
        "dst rewritten by NAT (DNAT)")


def test_recorded_hairpin_grid():
    journeys = [recorded(c) for c in HAIRPIN]
    fig = grid(journeys)
    assert [one(fig, f"grid:column:{c}").get_text() for c in range(3)] == [
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
    assert cell(fig, 1, "c2:eth0", "reply").get_text() == f"10.55.66.2:8000 > 10.55.66.3:{sport}"
    assert {g for g in gids(fig, "grid:") if g.endswith(":died")} == {"grid:1:c2:eth0:died"}
    assert "hairpin NAT is missing" in one(fig, "grid:1:verdict").get_text().replace("\n", " ")
    assert not with_gid(fig, "grid:0:verdict") and not with_gid(fig, "grid:2:verdict")
    # where each one's reply was rewritten back: by the bridge's conntrack, by nothing, by the host's
    assert same_color(cell(fig, 0, "c2:eth0", "reply").get_color(), RED)
    assert same_color(cell(fig, 1, "c2:eth0", "reply").get_color(), REPLY)
    assert cell(fig, 2, "c1:eth0", "request").get_text().startswith("10.55.66.1:")
    assert not overlapping_texts(fig)
    # the explanation stays inside its outcome cell
    renderer = fig.canvas.get_renderer()
    verdict = one(fig, "grid:1:verdict").get_window_extent(renderer)
    box = [r for r in fig.findobj(Rectangle) if r.get_y() > len(rows) - 1.5 and r.get_x() > 0.5
           and r.get_x() < 1.5][0].get_window_extent(renderer)
    assert box.x0 <= verdict.x0 and verdict.x1 <= box.x1 and box.y0 <= verdict.y0 and verdict.y1 <= box.y1


def test_grid_rows_merge_paths_that_run_different_ways():
    fig = grid([recorded("p4-no-dnat"), recorded("p4-dnat"), recorded("p4-local-output")])
    rows = sorted(gids(fig, "grid:row:"), key=lambda g: one(fig, g).get_position()[1])
    assert [g.removeprefix("grid:row:") for g in rows] == [
        "outside:eth0", "host:eth1", "host:hwchiu0", "host:veth0", "c1:eth0", "outcome"]
    assert {g for g in gids(fig, "grid:") if g.endswith(":died")} == {"grid:0:host:eth1:died"}
    assert not overlapping_texts(fig)
