"""The instructor dashboard: every switch, every scenario's probe, the lab map, reset and refresh.

    from netkit import Lab
    from netkit.dashboard import Dashboard
    Dashboard(Lab(name="dashboard"))

`notebooks/dashboard.ipynb` does just that, in JupyterLab or served alone by
Voila (``.venv/bin/voila notebooks/dashboard.ipynb``).

It is made of the same pieces as `netkit.widgets.Panel` (one toggle per
switch, a probe, the verdict and the picture), for the whole lab at once:

- every switch of the registered scenarios (`netkit.scenarios`), under its
  scenario's title; a switch added to `SWITCHES` some other way shows under
  "other switches";
- one button per probe the scenarios declare;
- the lab map of the last probe, with its verdict and reason;
- "reset to stage" over `netkit.topology.STAGES`, and "read the lab again".

Nothing shown is a flag of the dashboard's own: after every action it reads
each switch back from the lab's kernel (`lab.state()`) and sends the probe
again, so a change made from a terminal
(``netkit exec --lab NAME host -- iptables -P FORWARD ACCEPT``) shows up at
the next "read the lab again". Every control calls a Lab method a cell can
call too (`lab.set`, `lab.probe`, `lab.reset`). A refusal (a NetkitError) is
shown on the page, not lost in a log.
"""

from __future__ import annotations

import html
import time
import ipywidgets as w

from . import topology
from .errors import NetkitError
from . import scenarios as registry
from .scenarios import Probe
from .scenarios import SWITCHES
from .widgets import PICTURE_HEIGHT, outcome_html, picture_key, refusal_html, svg, switch_control
from .i18n import N_, _, translated


OTHER = N_("other switches")


def groups(scenarios: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Every switch of SWITCHES (now) under its scenario; the ones no scenario names under OTHER."""
    scenarios = registry.groups() if scenarios is None else scenarios
    placed: dict[str, list[str]] = {title: [] for title in scenarios}
    for name in SWITCHES:
        title = next((t for t, names in scenarios.items() if name in names), OTHER)
        placed.setdefault(title, []).append(name)
    return {title: names for title, names in placed.items() if names}


def _heading(text: str) -> w.HTML:
    return w.HTML(f'<b style="font-size:15px">{html.escape(text)}</b>')


class Dashboard:
    """Every switch, the scenarios' probes, the lab map, reset and refresh, for one lab."""

    def __init__(self, lab, *, probes: list[Probe] | None = None,
                 scenarios: dict[str, list[str]] | None = None) -> None:
        from .replay import panel_lab
        self.probes = list(registry.probes() if probes is None else probes)
        if not self.probes:
            raise NetkitError(_("the dashboard needs at least one probe, e.g. Probe('c1', '10.55.66.3')"))
        self.lab = lab = panel_lab(lab, None, self.probes, dashboard=True)   # a replay's recorded board, or the lab
        self.current = self.probes[0]
        self.journey = None
        self.state: dict = {}
        self._updating = False

        self.groups = groups(scenarios)
        self.controls: dict[str, w.ToggleButtons] = {}
        rows: list[w.Widget] = []
        for title, names in self.groups.items():
            rows.append(_heading(translated(title)))
            for name in names:
                control = switch_control(name)
                control.observe(self._flipped(name), names="value")
                self.controls[name] = control
                rows.append(control)

        self.probe_buttons: dict[tuple, w.Button] = {}
        for probe in self.probes:
            button = w.Button(description=f"{probe.src} → {probe.target}", tooltip=translated(probe.title),
                              icon="paper-plane", layout=w.Layout(width="auto"))
            button.on_click(lambda click, probe=probe: self._act(lambda: self.probe(probe)))
            self.probe_buttons[probe.key] = button

        stages = list(topology.STAGES)
        self.stage = w.Dropdown(options=stages, value=lab.stage if lab.stage in stages else stages[0],
                                description=_("stage"), style={"description_width": "60px"},
                                layout=w.Layout(width="300px"))
        self.reset_button = w.Button(description=_("reset to stage"), icon="undo", button_style="warning",
                                     layout=w.Layout(width="160px"))
        self.reset_button.on_click(lambda click: self._act(lambda: self.reset(self.stage.value)))
        self.refresh_button = w.Button(description=_("read the lab again"), icon="refresh",
                                       layout=w.Layout(width="200px"))
        self.refresh_button.on_click(lambda click: self._act(self._read_again))

        self.title = w.HTML()
        self.message = w.HTML()
        self.refusal = w.HTML()          # a switch or probe the lab refused, shown where the click was
        self.outcome = w.HTML()
        self.typed = w.HTML()
        self.picture = w.Image(format="svg+xml", layout=w.Layout(
            max_width="100%", max_height="100%", object_fit="contain", object_position="left top"))
        # a fixed frame: on a projected screen nothing below the picture jumps when a toggle redraws it
        self.frame = w.Box([self.picture], layout=w.Layout(
            height=PICTURE_HEIGHT, width="100%", max_width="900px", overflow="hidden", align_items="flex-start"))
        self._drawn = None
        switches = w.VBox(rows + [self.refusal, _heading(_("the lab")), w.HBox([self.stage, self.reset_button]),
                                  self.refresh_button],
                          layout=w.Layout(min_width="480px"))
        view = w.VBox([w.HBox(list(self.probe_buttons.values()), layout=w.Layout(flex_flow="row wrap")),
                       self.outcome, self.frame, self.typed])
        self.widget = w.VBox([self.title, self.message, w.HBox([switches, view])])
        self.widget.add_class("netkit-dashboard")
        self.refresh()

    # -- what the controls do -----------------------------------------------------
    def _act(self, action, where=None) -> None:
        """Run a button's action; show a refusal on the page, next to what was clicked, in plain words."""
        self.message.value = self.refusal.value = ""
        try:
            action()
        except NetkitError as error:
            (where or self.message).value = refusal_html(error)

    def _flipped(self, name: str):
        def on_change(change) -> None:
            if self._updating:
                return

            def flip() -> None:
                try:
                    typed = self.lab.set(name, change["new"])
                    self.typed.value = "".join(
                        f"<code>[{html.escape(r.node)}] {html.escape(r.command)}</code><br>" for r in typed)
                except NetkitError as error:
                    raise NetkitError(_("{title}: the lab refused it at stage {stage} ({error}). The toggle "
                                        "shows what the lab has now.")
                                      .format(title=translated(SWITCHES[name].title), stage=self.lab.stage,
                                              error=error)) from None
                finally:
                    self.refresh()   # whatever happened, show what the kernel says now
            self._act(flip, where=self.refusal)
        return on_change

    def read(self) -> dict:
        """Set every toggle to what the lab's kernel says now; returns every switch's value."""
        self.state = self.lab.state()
        self._updating = True
        try:
            for name, control in self.controls.items():
                if name in self.state:
                    control.value = self.state[name]
        finally:
            self._updating = False
        heading = _("netkit lab {name}").format(name=self.lab.name)
        when = _("built at stage {stage}, read at {time}").format(stage=self.lab.stage, time=time.strftime("%H:%M:%S"))
        self.title.value = (f'<b style="font-size:18px">{html.escape(heading)}</b> '
                            f'<span style="color:#555">{html.escape(when)}</span>')
        if getattr(self.lab, "replayed", False):
            from .provenance import html_label
            self.title.value += html_label(self.lab.recorded)
        return self.state

    def refresh(self) -> dict:
        """Read every switch back from the lab and send the current probe again."""
        state = self.read()
        if self.current.src not in self.lab.nodes:   # a reset to a stage without that probe's node
            self.current = next((p for p in self.probes if p.src in self.lab.nodes), self.current)
        self.probe(self.current)
        return state

    def probe(self, probe: Probe | None = None):
        """Send `probe` (default: the last one sent) and draw its journey on the lab map.

        A probe from a node the lab does not have at its stage is refused in plain words, and the last
        probe that could be sent stays the one the toggles send again.
        """
        from . import plots
        probe = probe or self.current
        if probe.src not in self.lab.nodes:
            joins = next((st.name for st in topology.STAGES.values() if probe.src in st.adds), "?")
            raise NetkitError(_('{src} is not in the lab at stage {stage}: it joins at stage {joins}. Choose '
                                'that stage below and press "{button}".')
                              .format(src=probe.src, stage=self.lab.stage, joins=joins, button=_("reset to stage")))
        extra = {} if probe.port is None else {"port": probe.port}
        self.journey = self.lab.probe(probe.src, probe.dst, **extra)
        self.current = probe
        self.outcome.value = outcome_html(self.journey, probe.src, probe.target)
        bridge = topology.BRIDGE_ADDRESS if self.state.get("bridge-address") else None
        key = picture_key(self.journey, bridge)
        if key != self._drawn:                     # redraw only what changed
            self.picture.value = svg(plots.lab_map(self.journey, bridge_address=bridge))
            self._drawn = key
        self._mark_buttons()
        return self.journey

    def _mark_buttons(self) -> None:
        """The current probe's button highlighted; a probe whose node this stage lacks disabled, saying why."""
        for probe in self.probes:
            button = self.probe_buttons[probe.key]
            button.button_style = "primary" if probe.key == self.current.key else ""
            button.disabled = probe.src not in self.lab.nodes
            title = translated(probe.title)
            button.tooltip = title if not button.disabled else \
                _("{title} (needs {src}, which this stage does not have)").format(title=title, src=probe.src)

    def _read_again(self) -> None:
        self.typed.value = ""     # nothing typed: what shows now is what the lab says
        self.refresh()

    def reset(self, stage: str) -> None:
        """Rebuild the lab at `stage` (see `Lab.reset`), then read it and probe again."""
        self.lab.reset(stage)
        self.typed.value = f"<code>{html.escape(_('(lab rebuilt at stage {stage})').format(stage=stage))}</code>"
        self.refresh()

    def _ipython_display_(self) -> None:
        from .provenance import show_widget
        show_widget(self.widget, getattr(self.lab, "recorded", ""), "dashboard")   # a replay says so
