"""Instructor controls: switches that flip the lab, a probe button, and a picture that follows.

    from netkit.widgets import Panel
    Panel(lab, ["bridge-nf-call-iptables", "forward-policy"], probe=("c1", "10.55.66.3"))

Every control calls a Lab method a cell can call too (`lab.set`, `lab.probe`),
and shows what the lab's kernel says afterwards (`lab.get`), never a flag of
its own: a change made from a terminal shows up at the next refresh. Tests
drive a panel by setting its widgets' values, exactly as a click does.
"""

from __future__ import annotations

import html
import io

import ipywidgets as w

from .errors import NetkitError
from .i18n import N_, _, translated
from .scenarios import SWITCHES, switch

VIEWS = ("ladder", "map")
VIEW_LABELS = {"ladder": N_("ladder"), "map": N_("map")}
"""What the picture toggle's buttons say for each of VIEWS (its values stay the words above)."""
PICTURE_HEIGHT = "760px"
"""The panel's picture area is this tall whatever it shows, so the page does not jump when a tall ladder
gives way to a map (or a short ladder): the picture is scaled to fit it, never cropped."""


def png(fig, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (for a file, or a page that wants pixels)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def svg(fig) -> bytes:
    """A figure as SVG with its text kept as text: what the panels show. The browser draws the letters,
    so a picture is ready in a third of the time a PNG takes, and stays sharp on a projector."""
    import matplotlib
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "netkit"}):
        fig.savefig(buffer, format="svg")
    return buffer.getvalue()


def picture_key(journey, *extra) -> tuple:
    """What a picture of `journey` shows (not when it was taken): a new picture is drawn only when it changes."""
    seen = tuple((h.point, h.request and h.request.addresses, h.reply and h.reply.addresses) for h in journey.hops)
    verdicts = tuple((v.table, v.chain, v.rule, v.verdict, v.kind) for v in journey.verdicts)
    return (journey.src, journey.dst, journey.dport, journey.outcome, seen, verdicts, journey.hooks) + extra


def _label(value) -> str:
    if value is True or value is False:
        return _("on") if value else _("off")
    return str(value)


def typed(command) -> str:
    """A switch's command as a person types it (a `topology.Step` that starts a program, or a command line)."""
    return getattr(command, "command", command)


def switch_control(name: str) -> w.ToggleButtons:
    """The toggle for one switch of `netkit.switches`: one button per value, titled as the switch."""
    sw = switch(name)
    return w.ToggleButtons(options=[(_label(v), v) for v in sw.values], description=translated(sw.title),
                           tooltips=[" / ".join(typed(c) for c in sw.commands[v]) for v in sw.values],
                           style={"description_width": "190px", "button_width": "80px"})


def refusal_html(error: Exception) -> str:
    """What a panel shows instead of an outcome when the lab refuses (or has ended)."""
    return f'<span style="color:#D62728;font-size:14px">{html.escape(str(error))}</span>'


def outcome_html(journey, source: str, target: str) -> str:
    """A probe's verdict and reason, as the panels show it: "c1 → 10.55.66.3: NOT delivered"."""
    color = "#009E73" if journey.delivered else "#D62728"
    line = (_("{source} → {target}: delivered") if journey.delivered else
            _("{source} → {target}: NOT delivered")).format(source=source, target=target)
    told = ""
    if journey.recorded:     # a replay: the recorded outcome of this combination of switches
        from .provenance import html_label
        told = (html_label(journey.recorded)
                + f'<span style="font-size:13px">{html.escape(_("the outcome recorded for these switches"))}</span><br>')
    return told + (f'<b style="color:{color};font-size:15px">{html.escape(line)}</b><br>'
                   f'<span style="font-size:14px">{html.escape(journey.reason)}</span>')


class Panel:
    """Switches, a probe button and the probe's picture, for one lab."""

    def __init__(self, lab, switches=("bridge-nf-call-iptables", "forward-policy"), *,
                 probe: tuple = ("c1", "10.55.66.3"), view: str = "ladder",
                 auto_probe: bool = True) -> None:
        """`probe` is (src, dst) for a ping, or (src, dst, port) for a TCP connection."""
        from .replay import panel_lab
        self.lab = panel_lab(lab, list(switches), [probe])   # a replay's recorded board, or the lab itself
        self.source, self.target, *rest = probe
        self.port = rest[0] if rest else None
        self.auto_probe = auto_probe
        self.journey = None
        self.state: dict = {}
        self._updating = False
        self.controls: dict[str, w.ToggleButtons] = {}
        for name in switches:
            control = switch_control(name)
            control.observe(self._flipped(name), names="value")
            self.controls[name] = control
        self.view = w.ToggleButtons(options=[(translated(VIEW_LABELS[v]), v) for v in VIEWS], value=view,
                                    description=_("picture"),
                                    style={"description_width": "190px", "button_width": "80px"})
        self.view.observe(lambda change: self.draw(), names="value")
        shown = f"{self.target}:{self.port}" if self.port else self.target
        self.probe_button = w.Button(description=_("probe {source} → {target}").format(source=self.source,
                                                                                         target=shown),
                                     button_style="primary", icon="paper-plane",
                                     layout=w.Layout(width="260px"))
        self.probe_button.on_click(lambda click: self._safely(self.probe))
        self.refresh_button = w.Button(description=_("read the lab again"), icon="refresh",
                                       layout=w.Layout(width="200px"))
        self.refresh_button.on_click(lambda click: self._safely(self.refresh))
        self.outcome = w.HTML()
        self.typed = w.HTML()
        self.picture = w.Image(format="svg+xml", layout=w.Layout(
            max_width="100%", max_height="100%", object_fit="contain", object_position="left top"))
        self.frame = w.Box([self.picture], layout=w.Layout(
            height=PICTURE_HEIGHT, width="100%", max_width="980px", overflow="hidden", align_items="flex-start"))
        self._drawn = None
        self.widget = w.VBox([*self.controls.values(), self.view,
                              w.HBox([self.probe_button, self.refresh_button]),
                              self.outcome, self.typed, self.frame])
        self.refresh()
        if auto_probe:
            self.probe()

    # -- what the controls do -----------------------------------------------------
    def _flipped(self, name: str):
        def on_change(change) -> None:
            if self._updating:
                return
            self._safely(lambda: self._turn(name, change["new"]))
        return on_change

    def _turn(self, name: str, value) -> None:
        typed = self.lab.set(name, value)
        self.typed.value = "".join(
            f"<code>[{html.escape(r.node)}] {html.escape(r.command)}</code><br>" for r in typed)
        self.refresh()
        if self.auto_probe:
            self.probe()

    def _safely(self, action) -> None:
        """Run a click's action; a refusal (the lab has ended, ...) is shown where the outcome is."""
        try:
            action()
        except NetkitError as error:
            self.outcome.value = refusal_html(error)

    def refresh(self) -> dict:
        """Set every control to what the lab's kernel says now (one read of the lab)."""
        names = list(self.controls)
        if "bridge-address" in SWITCHES and "bridge-address" not in names:
            names.append("bridge-address")        # the map draws hwchiu0's address when it has one
        self.state = self.lab.state(*names)
        state = {name: self.state[name] for name in self.controls}
        self._updating = True
        try:
            for name, value in state.items():
                self.controls[name].value = value
        finally:
            self._updating = False
        return state

    def probe(self):
        """Send the panel's probe and draw its journey."""
        self.journey = self.lab.probe(self.source, self.target, port=self.port)
        target = f"{self.target}:{self.port}" if self.port else self.target
        self.outcome.value = outcome_html(self.journey, self.source, target)
        self.draw()
        return self.journey

    def draw(self) -> None:
        if self.journey is None:
            return
        from . import plots
        bridge = "10.55.66.1/24" if self.state.get("bridge-address") else None
        key = picture_key(self.journey, self.view.value, bridge)
        if key == self._drawn:
            return                                 # the same picture: nothing to redraw
        if self.view.value == "map":
            fig = plots.lab_map(self.journey, bridge_address=bridge)
        else:
            fig = plots.ladder(self.journey)
        self.picture.value = svg(fig)
        self._drawn = key

    def _ipython_display_(self) -> None:
        from .provenance import show_widget
        show_widget(self.widget, getattr(self.lab, "recorded", ""), "panel")   # a replay says so
