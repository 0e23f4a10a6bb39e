"""Replay mode (netkit.replay): matching, labels, exercises, panels, the shipped recordings, and the live check.

Most tests here are pure: they build small recordings by hand from the
journeys in tests/data/ and drive a ReplayLab on them. The shipped recordings
(netkit/recordings/) are checked for what any recording must hold, so these
tests keep passing when the notebooks change and are recorded again. The last
test (marked lab) runs every shipped recording's calls again on a live lab
and fails when the kernel no longer does what was recorded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from netkit import BadArgument, CommandError, Lab, NotRecorded, notice, plots, provenance, recorder, replay
from netkit.dashboard import Dashboard
from netkit.exercises import ICMP_ONLY
from netkit.scenarios import EXERCISES
from netkit.journey import Journey
from netkit.lab import CommandResult
from netkit import scenarios, topology
from netkit.widgets import Panel

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
RECORDED = "Linux 6.18.44, 2026-12-01"
LABEL = "replayed: recorded on Linux 6.18.44, 2026-12-01, not your machine"


def journey(case: str) -> dict:
    data = json.loads((DATA / f"recorded-{case}.json").read_text())
    data.pop("recorded", None)
    return data


def result(node: str, command: str, stdout: str = "", returncode: int = 0, stderr: str = "") -> dict:
    return {"node": node, "command": command, "stdout": stdout, "stderr": stderr, "returncode": returncode,
            "timed_out": False, "seconds": 0.01, "cut": {}}


class Stage:
    stage = "part3-start"


def call(method: str, *args, result=None, error=None, echo=(), **kwargs) -> dict:
    """A recorded call, its arguments kept as a RecordingLab keeps them."""
    entry = {"call": method, "args": replay.call_key(method, Stage(), args, kwargs), "echo": list(echo)}
    if error is not None:
        entry["error"] = error
    else:
        entry["result"] = result
    return entry


def write(where: Path, name: str, calls: list[dict]) -> Path:
    data = {"format": replay.FORMAT, "lab": name, "recorded": RECORDED, "kernel": "6.18.44-test",
            "date": "2026-12-01", "notebook": "test", "calls": [{"call": "open", "args": {"stage": "part3-start"},
                                                                 "echo": ["[host] ip netns add c1"]}] + calls}
    (where / f"{name}.json").write_text(json.dumps(data))
    return where


ROUTE = "Kernel IP routing table\n10.55.66.0      0.0.0.0         255.255.255.0   U     0      0        0 eth0\n"

SCENARIO_1 = [
    call("run", "c1", "route -n", result=result("c1", "route -n", ROUTE)),
    call("probe", "c1", "10.55.66.3", result=journey("s1-forward-drop")),
    call("run", "c1", "ping 10.55.66.3 -c1 -W1", result=result("c1", "ping 10.55.66.3 -c1 -W1", "100% packet loss",
                                                                 returncode=1)),
    call("iptables", "-P FORWARD ACCEPT", result=result("host", "iptables -P FORWARD ACCEPT"),
         echo=["[host] iptables -P FORWARD ACCEPT"]),
    call("probe", "c1", "10.55.66.3", result=journey("s1-forward-accept")),
    call("run", "host", "false", check=True,
         error={"kind": "CommandError", "message": "[host] false failed (exit 1): ",
                "data": {"node": "host", "command": "false", "returncode": 1, "stderr": ""}}),
    call("get", "forward-policy", result="ACCEPT"),
    {"call": "check", "args": {"exercise": "icmp-only"}, "echo": [],
     "result": {"ok": True, "message": "c1 reaches c2; the request was accepted by `x`.",
                "journey": journey("s1-forward-accept")}},
]


@pytest.fixture
def recordings(tmp_path, monkeypatch):
    """A directory of hand-made recordings, replayed instead of the shipped ones (NETKIT_RECORDINGS)."""
    write(tmp_path, "t1", SCENARIO_1)
    monkeypatch.setenv(replay.RECORDINGS_ENV, str(tmp_path))
    monkeypatch.setenv(replay.ENV, "1")
    monkeypatch.delenv(replay.RECORD_ENV, raising=False)
    monkeypatch.setattr(notice, "_live_here", lambda: (False, "unshare: unshare failed: Operation not permitted"))
    return tmp_path


# -- which lab Lab(...) gives ------------------------------------------------------------------------
@pytest.mark.parametrize("value, chosen", [("", Lab), ("0", Lab), ("no", Lab), ("1", replay.ReplayLab),
                                           ("yes", replay.ReplayLab)])
def test_replay_is_switched_on_by_netkit_replay_only(monkeypatch, value, chosen):
    monkeypatch.delenv(replay.RECORD_ENV, raising=False)
    monkeypatch.setenv(replay.ENV, value)
    assert replay.lab_class(Lab) is chosen


def test_a_bad_netkit_replay_value_names_the_fix(monkeypatch):
    monkeypatch.setenv(replay.ENV, "maybe")
    with pytest.raises(BadArgument, match=r"NETKIT_REPLAY='maybe': set it to 1 .* or to 0"):
        Lab(name="t")
    monkeypatch.setenv(replay.ENV, "1")
    monkeypatch.setenv(replay.RECORD_ENV, "/tmp/x")
    with pytest.raises(BadArgument, match="both NETKIT_REPLAY and NETKIT_RECORD are set"):
        Lab(name="t")


def test_lab_gives_a_replay_lab_with_a_banner_that_says_why_and_where_to_go_live(recordings, capsys):
    lab = Lab(name="t1", trace=print)
    assert isinstance(lab, replay.ReplayLab) and lab.replayed and lab.recorded == RECORDED
    out, err = capsys.readouterr()
    assert "[host] ip netns add c1" in out                       # the build, echoed as it was recorded
    banner = str(lab.banner)
    assert banner in err                                         # outside a notebook: on stderr
    assert "REPLAY: lab 't1' is not live" in banner and LABEL in banner
    assert "NETKIT_REPLAY=1 is set" in banner and "cannot start on this machine either" in banner
    assert "Operation not permitted" in banner
    for way in ("class server", "container", "Linux laptop or VM"):
        assert way in banner and way in lab.banner._repr_html_()
    assert LABEL in repr(lab) and LABEL in lab._repr_html_()


def test_a_lab_name_or_stage_without_a_recording_is_refused_with_what_there_is(recordings):
    with pytest.raises(NotRecorded, match=r"no recording of a lab named 'nb99'; it has: t1"):
        Lab(name="nb99")
    with pytest.raises(NotRecorded, match=r"recorded lab 't1' at stage part3-start, not part4-start"):
        Lab(name="t1", stage="part4-start")


# -- matching ----------------------------------------------------------------------------------------
def test_a_subsequence_of_the_recorded_calls_replays_in_order(recordings):
    lab = Lab(name="t1")
    dropped = lab.probe("c1", "10.55.66.3", label="before")     # the route -n and nothing else skipped
    assert dropped.outcome.result.value == "dropped" and dropped.label == "before"
    lab.iptables("-P FORWARD ACCEPT")                           # the ping skipped too
    accepted = lab.probe("c1", "10.55.66.3", label="FORWARD ACCEPT")
    assert accepted.delivered and accepted.label == "FORWARD ACCEPT"
    assert lab.get("forward-policy") == "ACCEPT"


def test_a_call_that_was_not_recorded_says_so_and_how_to_get_a_live_lab(recordings):
    lab = Lab(name="t1")
    with pytest.raises(NotRecorded) as caught:
        lab.run("c1", "ip -6 route")
    said = str(caught.value)
    assert "lab.run(node='c1', command='ip -6 route'" in said and "shows only what was recorded" in said
    assert RECORDED in said and "from the top" in said
    assert "class server" in said and "container" in said and "Linux laptop or VM" in said
    lab.run("c1", "route -n")                                   # the cursor did not move: still in order


def test_replay_goes_forward_only_and_the_first_cell_again_starts_over(recordings):
    lab = Lab(name="t1")
    lab.iptables("-P FORWARD ACCEPT")
    with pytest.raises(NotRecorded):
        lab.run("c1", "route -n")           # recorded before the iptables call: it cannot be shown after it
    again = Lab(name="t1", replace=True)
    assert str(again.run("c1", "route -n")).endswith(ROUTE)


def test_a_recorded_error_is_raised_again_with_its_data(recordings):
    lab = Lab(name="t1")
    with pytest.raises(CommandError) as caught:
        lab.run("host", "false", check=True)
    assert caught.value.returncode == 1 and caught.value.command == "false"


def test_bad_input_is_refused_as_a_live_lab_refuses_it(recordings):
    lab = Lab(name="t1")
    with pytest.raises(BadArgument, match="no node"):
        lab.run("c9", "route -n")
    with pytest.raises(BadArgument):
        lab.probe("c1", "not an address")
    with pytest.raises(BadArgument, match="takes one of"):
        lab.set("forward-policy", "MAYBE")
    lab.run("c1", "route -n")               # refused calls moved nothing


def test_a_closed_replay_lab_answers_nothing(recordings):
    lab = Lab(name="t1")
    lab.close()
    assert lab.closed
    with pytest.raises(NotRecorded, match="closed"):
        lab.run("c1", "route -n")


# -- labels --------------------------------------------------------------------------------------------
def test_replayed_results_carry_the_label_in_text_and_html_and_live_ones_do_not(recordings):
    lab = Lab(name="t1")
    route = lab.run("c1", "route -n")
    assert str(route).startswith(f"({LABEL})\nc1$ route -n\n") and LABEL in route._repr_html_()
    assert route.stdout == ROUTE and route.ok                   # the data itself is as recorded
    dropped = lab.probe("c1", "10.55.66.3")
    assert str(dropped).startswith(f"({LABEL})\n") and LABEL in dropped._repr_html_()
    assert dropped.reason == "dropped by filter FORWARD policy DROP in host"   # equal to the plain text...
    assert LABEL in repr(dropped.reason)                                          # ...and labelled when shown
    live = CommandResult(**result("c1", "route -n", ROUTE))
    plain = Journey.from_dict(journey("s1-forward-drop"))
    for shown in (str(live), live._repr_html_(), str(plain), plain._repr_html_(), repr(plain.reason)):
        assert "replayed" not in shown


def test_a_replayed_journey_round_trips_through_json_with_its_provenance():
    replayed = Journey.from_dict({**journey("s2-masquerade"), "recorded": RECORDED})
    assert Journey.from_json(replayed.to_json()) == replayed and replayed.recorded == RECORDED


@pytest.mark.parametrize("draw", ["lab_map", "ladder", "grid"])
def test_pictures_of_replayed_journeys_have_the_footnote_and_live_ones_do_not(draw):
    plain = Journey.from_dict(journey("s2-masquerade"))
    replayed = Journey.from_dict({**journey("s2-masquerade"), "recorded": RECORDED})
    function = getattr(plots, draw)
    argument = (lambda j: [j, j]) if draw == "grid" else (lambda j: j)
    live, labelled = function(argument(plain)), function(argument(replayed))
    notes = [t for t in labelled.texts if t.get_gid() == provenance.FOOTNOTE_GID]
    assert [t.get_text() for t in notes] == ["⟲ " + LABEL]
    assert LABEL in repr(labelled) and "replayed" not in repr(live)
    assert not [t for t in live.texts if t.get_gid() == provenance.FOOTNOTE_GID]
    # one line taller, and the picture itself the same size, in the same place from the top
    (w0, h0), (w1, h1) = live.get_size_inches(), labelled.get_size_inches()
    assert w1 == w0 and h1 == pytest.approx(h0 + provenance.FOOTNOTE_INCHES)
    for a, b in zip(live.axes, labelled.axes):
        assert a.get_position().height * h0 == pytest.approx(b.get_position().height * h1)
        assert (1 - a.get_position().y1) * h0 == pytest.approx((1 - b.get_position().y1) * h1)
    # the footnote is drawn below everything else
    FigureCanvasAgg(labelled).draw()
    renderer = labelled.canvas.get_renderer()
    note = notes[0].get_window_extent(renderer)
    lowest = min(ax.get_position().y0 for ax in labelled.axes) * labelled.bbox.height
    assert note.y1 <= lowest + 1
    assert labelled._repr_png_()[:4] == b"\x89PNG"


def test_a_picture_drawn_into_a_given_axes_gets_the_footnote_without_resizing():
    from matplotlib.figure import Figure
    fig = Figure(figsize=(20, 8))
    ax = fig.add_subplot(121)
    plots.ladder(Journey.from_dict({**journey("s1-forward-drop"), "recorded": RECORDED}), ax=ax)
    assert tuple(fig.get_size_inches()) == (20, 8)
    assert ["⟲ " + LABEL] == [t.get_text() for t in fig.texts if t.get_gid() == provenance.FOOTNOTE_GID]


def test_a_recorded_string_is_the_plain_text():
    said = provenance.Recorded("dropped", RECORDED)
    assert said == "dropped" and said.startswith("drop") and f"{said}!" == "dropped!" and hash(said) == hash("dropped")
    assert repr(said) == f"'dropped'\n({LABEL})"
    import pickle
    again = pickle.loads(pickle.dumps(said))
    assert again == "dropped" and again.recorded == RECORDED


# -- a cell that shows something unlabelled ---------------------------------------------------------
class FakeShell:
    def __init__(self):
        self.handlers = {}

    @property
    def events(self):
        return self

    def register(self, name, handler):
        self.handlers[name] = handler


class Ran:
    def __init__(self, value):
        self.result = value


def test_a_cell_that_used_the_recording_and_printed_gets_the_label_last(recordings, capsys):
    lab = Lab(name="t1")
    capsys.readouterr()
    shell = FakeShell()
    notice._CellWatch(shell)
    cells = [
        (lambda: print(lab.run("c1", "route -n").stdout.split()[0]), True),      # a printed value
        (lambda: None, False),                                                       # no recording used
        (lambda: lab.probe("c1", "10.55.66.3"), False),                              # labelled itself
        (lambda: [lab.iptables("-P FORWARD ACCEPT"), lab.probe("c1", "10.55.66.3")], False),
        (lambda: lab.get("forward-policy"), True),                                   # a plain value shown
    ]
    for number, (cell, footer) in enumerate(cells):
        shell.handlers["pre_run_cell"](None)
        value = cell()
        shell.handlers["post_run_cell"](Ran(value))
        out = capsys.readouterr().out
        assert (f"({LABEL})" in out) is footer, (number, out)


# -- exercises -----------------------------------------------------------------------------------------
def test_an_exercise_in_a_replay_is_not_checked_and_shows_the_model_answer(recordings, tmp_path, monkeypatch):
    progress = tmp_path / "progress.jsonl"
    monkeypatch.setenv("NETKIT_PROGRESS", str(progress))
    lab = Lab(name="t1")
    said = ICMP_ONLY.check(lab)
    assert said.ok is None and not said                        # neither right nor wrong
    assert "Not checked: checking needs a live lab" in said.message
    assert 'lab.iptables("-I FORWARD -i hwchiu0 -o hwchiu0 -p icmp -j ACCEPT")' in said.message
    assert "its check said: RIGHT: c1 reaches c2" in said.message
    assert str(said).startswith(f"({LABEL})") and LABEL in said._repr_html_()
    assert said.journey.delivered and said.journey.recorded == RECORDED
    assert not progress.exists()                               # nothing pretends to the progress board


def test_an_exercise_never_recorded_still_says_it_cannot_check(recordings):
    said = EXERCISES["c2-out"].check(Lab(name="t1"))
    assert said.ok is None and said.model is None and "-t nat -I POSTROUTING" in said.message


# -- panels and the dashboard ------------------------------------------------------------------------
def board_recording(where: Path) -> None:
    """A panel of two switches over c1 -> c2, as a RecordingLab would keep it."""
    combos = {(1, "DROP"): "s1-forward-drop", (1, "ACCEPT"): "s1-forward-accept",
              (0, "DROP"): "s1-nf-call-0", (0, "ACCEPT"): "s1-nf-call-0"}
    state = {"bridge-nf-call-iptables": 1, "forward-policy": "DROP", "bridge-address": False}
    board = {"start": "part3-start", "stages": [{"stage": "part3-start", "state": state, "tables": [
        {"probe": ["c1", "10.55.66.3", None], "switches": ["bridge-nf-call-iptables", "forward-policy"],
         "combos": [{"values": list(k), "journey": journey(v)} for k, v in combos.items()]}]}],
        "typed": {"forward-policy": {json.dumps(v): [result("host", f"iptables -P FORWARD {v}")]
                                     for v in ("DROP", "ACCEPT")},
                  "bridge-nf-call-iptables": {json.dumps(v): [result("host", f"sysctl -w x={v}", f"x = {v}\n")]
                                              for v in (1, 0)}}}
    calls = [{"call": "board", "args": replay.board_key(["bridge-nf-call-iptables", "forward-policy"],
                                                         [("c1", "10.55.66.3")], False),
              "result": board, "echo": []}]
    write(where, "t2", calls)


def test_a_replayed_panel_shows_the_recorded_outcome_of_each_combination(recordings):
    board_recording(recordings)
    panel = Panel(Lab(name="t2"), ["bridge-nf-call-iptables", "forward-policy"], probe=("c1", "10.55.66.3"))
    assert panel.controls["forward-policy"].value == "DROP" and not panel.journey.delivered
    assert LABEL in panel.outcome.value and "the outcome recorded for these switches" in panel.outcome.value
    panel.controls["forward-policy"].value = "ACCEPT"                      # a click
    assert panel.journey.delivered and panel.journey.recorded == RECORDED
    assert "iptables -P FORWARD ACCEPT" in panel.typed.value
    panel.controls["bridge-nf-call-iptables"].value = 0
    assert panel.journey.hooks == () and panel.controls["bridge-nf-call-iptables"].value == 0
    panel.controls["forward-policy"].value = "DROP"
    panel.controls["bridge-nf-call-iptables"].value = 1
    assert panel.journey.dropped_by is not None
    picture = bytes(panel.picture.value).decode()
    assert LABEL in picture                                               # the footnote, in the SVG's text


def test_a_panel_the_recording_does_not_hold_is_refused(recordings):
    board_recording(recordings)
    with pytest.raises(NotRecorded):
        Panel(Lab(name="t2"), ["forward-policy"], probe=("c1", "10.55.66.3"))


def test_a_switch_outside_the_recorded_board_is_refused_on_the_page(recordings):
    board_recording(recordings)
    lab = Lab(name="t2")
    board = lab.board(["bridge-nf-call-iptables", "forward-policy"], [("c1", "10.55.66.3")])
    with pytest.raises(NotRecorded, match="masquerade"):
        board.set("masquerade", True)
    with pytest.raises(NotRecorded, match="stages part3-start only"):
        board.reset("part4-start")
    with pytest.raises(NotRecorded, match="8.8.8.8"):
        board.probe("c1", "8.8.8.8")
    assert board.state("forward-policy") == {"forward-policy": "DROP"}


# -- the recordings shipped with netkit ------------------------------------------------------------------
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.md")) + [REPO / "notebooks" / "dashboard.md"]


def notebook_labs(source: Path) -> list[str]:
    """The lab names a notebook opens with its default parameters."""
    text = source.read_text()
    default = re.search(r'^lab_name = "([^"]+)"', text, re.M)
    if not default:
        return []
    extra = re.findall(r'Lab\(name=lab_name \+ "([^"]+)"', text)
    return [default[1]] + [default[1] + suffix for suffix in extra]


def test_every_notebook_lab_has_a_shipped_recording_that_names_its_kernel_and_date():
    wanted = {name: source.stem for source in NOTEBOOKS for name in notebook_labs(source)}
    assert {"nb01", "nb02", "nb03", "nb04", "nb04-article", "dashboard"} <= set(wanted)
    assert set(replay.available(replay.RECORDINGS)) == set(wanted)
    for name, notebook in wanted.items():
        recording = replay.load(name, replay.RECORDINGS)
        assert re.fullmatch(r"Linux \d+\.\d+(\.\d+)*, \d{4}-\d\d-\d\d", recording.recorded), recording.recorded
        assert recording.notebook == notebook and recording.calls[0]["call"] == "open"
        methods = {c["call"] for c in recording.calls}
        assert methods <= set(replay.KEYS) | {"open", "check", "board"}, methods


def test_every_shipped_journey_and_result_reads_back():
    for name in replay.available(replay.RECORDINGS):
        for entry in replay.load(name, replay.RECORDINGS).calls:
            value = entry.get("result")
            if entry["call"] == "probe":
                read = Journey.from_dict(value)
                assert read.outcome is not None and Journey.from_json(read.to_json()) == read
            elif entry["call"] in ("run", "change", "iptables", "tcpdump"):
                result = CommandResult(**value)
                # the result is of the call it answers: its node and command are the call's own
                args = entry["args"]
                shown = {"iptables": f"iptables {args.get('rule')}", "tcpdump": None}.get(entry["call"],
                                                                                    args.get("command"))
                assert result.node == (args.get("point", "").split(":")[0] or args.get("node")), entry
                assert shown is None or result.command == shown, (result.command, args)
                assert result.command.startswith("tcpdump ") or entry["call"] != "tcpdump", result.command
                # a recorded failure says why; a success without a check is a plain result
                assert isinstance(result.returncode, int) and isinstance(result.stdout, str)
                assert result.ok or result.returncode != 0 and (result.stderr or result.stdout or result.timed_out), \
                    entry
                assert result.ok or not args.get("check"), entry      # check=True raises: never a failed result
            elif entry["call"] == "board":
                for stage in value["stages"]:
                    for table in stage["tables"]:
                        assert len(table["combos"]) == 2 ** len(table["switches"])
                        assert all(Journey.from_dict(row["journey"]).outcome for row in table["combos"])


def dashboard_stage():
    recording = replay.load("dashboard", replay.RECORDINGS)
    return recording.calls[0]["args"]["stage"]


def test_the_replayed_dashboard_gives_each_scenario_case_its_declared_outcome(monkeypatch):
    """Every declared case the dashboard's recording covers (its stage, only switches) reads as declared."""
    monkeypatch.setenv(replay.ENV, "1")
    monkeypatch.delenv(replay.RECORDINGS_ENV, raising=False)
    monkeypatch.setattr(notice, "_live_here", lambda: (False, "refused"))
    dash = Dashboard(Lab(name="dashboard", stage=dashboard_stage()))
    assert LABEL.split(",")[0] in dash.title.value and "replayed" in dash.outcome.value
    buttons = {p.key: p for p in dash.probes}
    wanted = [case for case in scenarios.cases() if not case.commands and case.probe.key in buttons]
    assert len(wanted) >= 8
    for case in wanted:
        dash.stage.value = case.stage
        dash.reset_button.click()
        for name, value in case.settings:
            dash.controls[name].value = value
        dash.probe_buttons[case.probe.key].click()
        assert not dash.message.value, (case.name, dash.message.value)
        assert dash.journey.outcome.result is case.result, case.name
        assert dash.journey.recorded and "replayed" in dash.outcome.value
    recorded = {entry["stage"] for entry in dash.lab._stages.values()}
    for stage in [s for s in topology.STAGES if s not in recorded][:1]:   # no case, no scenario starts there
        dash.stage.value = stage
        dash.reset_button.click()
        assert "replay recorded the dashboard at the stages" in dash.message.value


def test_in_traditional_chinese_the_replay_label_and_the_dashboard_speak_chinese(monkeypatch):
    """zh-TW: the label of a replayed output, the dashboard's group titles and its buttons are Chinese; the data
    (the groups' keys, the switches' values) stays as it is."""
    import ipywidgets as w
    from netkit.i18n import translated, use_language
    han = re.compile(r"[\u4e00-\u9fff]")
    monkeypatch.setenv(replay.ENV, "1")
    monkeypatch.delenv(replay.RECORDINGS_ENV, raising=False)
    monkeypatch.setattr(notice, "_live_here", lambda: (False, "refused"))
    use_language("zh-TW")
    try:
        label = provenance.label(RECORDED)
        assert han.search(label) and RECORDED in label and "replayed" not in label
        dash = Dashboard(Lab(name="dashboard", stage=dashboard_stage()))

        def every(widget):
            yield widget
            for child in getattr(widget, "children", ()):
                yield from every(child)
        headings = [h.value for h in every(dash.widget)
                    if isinstance(h, w.HTML) and h.value.startswith('<b style="font-size:15px">')]
        assert list(dash.groups) == list(scenarios.groups())      # the data: the English titles
        for title in dash.groups:
            assert han.search(translated(title)) and any(translated(title) in h for h in headings), title
        assert han.search(headings[-1]) and "the lab" not in headings[-1]     # the heading over reset and refresh
        for button, english in [(dash.reset_button, "reset to stage"), (dash.refresh_button, "read the lab again")]:
            assert han.search(button.description) and button.description != english
        assert han.search(dash.stage.description)
        assert han.search(dash.controls["forward-policy"].description)      # "FORWARD policy", a switch's title
        assert han.search(dash.outcome.value) and "replayed: recorded" not in dash.outcome.value
    finally:
        use_language(None)


def test_doctor_names_replay_where_the_lab_cannot_run(monkeypatch):
    from netkit import doctor
    refused = doctor.check_replay(False, "")
    assert refused.ok is None and "NETKIT_REPLAY=1" in refused.fix
    on = doctor.check_replay(False, "1")
    assert "cannot run live here" in on.found and "replay recordings made on Linux" in on.found
    assert all(way in on.fix for way in ("class server", "container", "Linux laptop or VM"))
    assert doctor.check_replay(True, "") is None
    assert "unset NETKIT_REPLAY" in doctor.check_replay(True, "1").fix
    assert on.replaying and doctor.check_replay(True, "1").replaying and not refused.replaying
    missing = doctor.Check("namespaces", False, "user namespaces are refused", "sysctl ...")
    text = doctor.format_checks([missing, on])
    assert "cannot run the lab yet: the notebooks replay recordings instead" in text
    # the state is read from the field, in every language (the sentence is translated; its text decides nothing)
    from netkit.i18n import use_language
    use_language("zh-TW")
    try:
        chinese = doctor.check_replay(False, "1")
        assert chinese.replaying and chinese.found != on.found
        assert doctor._state([missing, chinese]) == "replay"
        assert doctor._state([missing, refused]) == "cannot"
    finally:
        use_language(None)


def test_the_sandbox_error_names_replay_as_a_way_to_read_the_notebooks():
    from netkit import SandboxError
    shown = "\n".join(SandboxError("user namespaces are refused")._render_traceback_())
    assert "NETKIT_REPLAY=1" in shown and "00-check-your-machine.ipynb" in shown


# -- the recordings against the live kernel -----------------------------------------------------------
@pytest.mark.lab
@pytest.mark.parametrize("name", replay.available(replay.RECORDINGS))
def test_the_recording_matches_what_the_live_kernel_does(name, monkeypatch):
    """Every call of the recording, made again on a live lab, gives the recorded outcome (probes by their
    structured outcome and where they were seen; commands by exit code, and by output where it is steady);
    each board by its switches as recorded and each switch turned alone."""
    from helpers import lab_name
    monkeypatch.delenv(replay.ENV, raising=False)
    differences = recorder.verify(replay.load(name, replay.RECORDINGS), lab_name("replay"))
    assert not differences, "\n".join(differences[:20]) + \
        "\n(the kernel no longer does what was recorded: record again with tools/record_replays.py)"


@pytest.mark.lab
def test_the_live_check_catches_a_recording_the_kernel_disagrees_with(monkeypatch):
    """A recording changed by hand (a probe's outcome, a route table) fails the live check, naming both."""
    import dataclasses
    from helpers import lab_name
    monkeypatch.delenv(replay.ENV, raising=False)
    def first(calls, wanted):
        return next((i for i, c in enumerate(calls) if wanted(c) and "error" not in c), None)

    for name in replay.available(replay.RECORDINGS):      # a recording with a steady command and a probe
        recording = replay.load(name, replay.RECORDINGS)
        calls = [dict(c) for c in recording.calls]
        route = first(calls, lambda c: c["call"] == "run" and recorder.steady(c["args"]["command"]))
        probe = first(calls, lambda c: c["call"] == "probe" and c["result"]["outcome"]["result"] != "no-reply")
        if route is not None and probe is not None:
            break
    result = calls[probe]["result"]
    calls[probe] = {**calls[probe], "result": {**result, "outcome": {**result["outcome"], "result": "no-reply"}}}
    calls[route] = {**calls[route], "result": {**calls[route]["result"], "stdout": "Kernel IP routing table\n"}}
    tampered = dataclasses.replace(recording, calls=tuple(calls[:max(probe, route) + 1]))
    found = recorder.verify(tampered, lab_name("replay"))
    assert any(f"call {probe} probe" in d and "result: recorded 'no-reply'" in d for d in found), found
    assert any(f"call {route} run" in d and "output recorded" in d for d in found), found
    assert len(found) == 2, found


def test_the_recordings_are_package_data():
    import tomllib
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "recordings/*.json" in data["tool"]["setuptools"]["package-data"]["netkit"]


def test_a_replayed_lab_takes_the_same_arguments_as_a_live_one():
    """A notebook cell replays only if ReplayLab accepts what Lab accepts (a new keyword on Lab.tcpdump, say)."""
    import inspect
    from netkit.lab import Lab as LiveLab
    for method in replay.KEYS:
        live = inspect.signature(getattr(LiveLab, method)).parameters
        replayed = inspect.signature(getattr(replay.ReplayLab, method)).parameters
        assert [(p.name, p.kind, p.default) for p in replayed.values()] == \
               [(p.name, p.kind, p.default) for p in live.values()], method


def test_a_hint_that_describes_a_replayed_probe_is_labelled():
    from netkit.exercises import Hint
    replayed = Hint(1, 4, "What the probe sees now: ...", recorded=RECORDED)
    assert str(replayed).endswith(f"({LABEL})") and repr(replayed) == str(replayed)
    assert LABEL in replayed._repr_html_()
    live = Hint(1, 4, "What the probe sees now: ...")
    assert "replayed" not in str(live) and "replayed" not in live._repr_html_()


def test_replayed_switch_values_are_the_same_dict_with_the_label():
    import pickle
    values = provenance.RecordedState({"icc-false": False, "bridge-nf-call-iptables": 1}, RECORDED)
    assert values == {"icc-false": False, "bridge-nf-call-iptables": 1} and values["bridge-nf-call-iptables"] == 1
    assert repr(values).endswith(f"({LABEL})")
    assert pickle.loads(pickle.dumps(values)) == values
