"""Replay mode: the notebooks run on recordings made on a real kernel, every output labelled.

Where no lab can start (Binder, a kernel that refuses user namespaces), a
student can still read the notebooks with their pictures: with
``NETKIT_REPLAY=1`` in the environment (Binder's start script sets it),
``Lab(...)`` returns a `ReplayLab`, which has a live lab's methods and
answers each call from a recording shipped with the package
(``netkit/recordings/<lab name>.json``, made by ``tools/record_replays.py``
on a live lab). Replay is never switched on by itself when a live lab fails:
that stays a SandboxError, which names replay as one way to see the notebooks.

What a student sees is labelled, never passed off as live (DESIGN.md,
promise 7; the words are `netkit.provenance.label`):

- the lab's first cell shows a banner: why this is a replay, and the ways to
  a live lab (a class server, the container, a Linux laptop or VM);
- every `CommandResult` and `Journey` says "replayed: recorded on Linux
  6.18.44, 2026-12-01, not your machine" in its text and HTML; a journey's
  ``reason`` is labelled when shown; pictures of replayed journeys carry it
  as a footnote line; panels and the dashboard show it with each outcome;
- a cell that used the recording and shows anything else (a printed value,
  a dict) gets the label as its last line (`netkit.notice`);
- an exercise's ``check()`` says that checking needs a live lab and shows the
  recorded run of the model answer (`netkit.notice.NotChecked`); it never checks.

A recording is the lab's calls in the order the notebook made them, each
with its arguments and result (or error). A call is matched by searching
forward from a cursor for the next recorded call with the same method and
arguments, so a student's run of a notebook without the solutions, a
subsequence of the recorded run with them, finds every call. A call the
recording does not hold raises `NotRecorded`, saying why and how to get a live
lab. Panels and the dashboard (`Board`) were recorded with every combination
of their switches, so their toggles show the recorded outcome of each.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import provenance, topology
from .errors import BadArgument, NotRecorded, from_wire
from .journey import Journey
from .lab import CommandResult, Lab
from .notice import ENV, LIVE_LAB, NotChecked, announce, quietly, served
from .i18n import _, translated

RECORD_ENV = "NETKIT_RECORD"
RECORDINGS_ENV = "NETKIT_RECORDINGS"
RECORDINGS = Path(__file__).parent / "recordings"
"""The recordings shipped with netkit; NETKIT_RECORDINGS=DIR replays others (tools/record_replays.py's new ones)."""
FORMAT = 1

KEYS = {
    "run": ("node", "command", "stdin", "check"),
    "probe": ("src", "dst", "port"),
    "iptables": ("rule", "node"),
    "sysctl": ("key", "value", "node"),
    "set": ("name", "value"),
    "get": ("name",),
    "state": ("names",),
    "reset": ("stage",),
    "tcpdump": ("point", "node", "command", "expression", "verbose"),
    "start": ("node", "command", "port"),
    "change": ("node", "command"),
}
"""The Lab methods a recording holds, and the arguments a call is matched by (a probe's label and
a command's timeout do not change what the kernel did, so they are not matched)."""


# -- which lab Lab(...) gives ------------------------------------------------------------------
def switched_on(value: str) -> bool:
    """What a NETKIT_REPLAY value says: True (1, yes, true, on), False (unset, 0, no, false, off), else BadArgument."""
    word = value.strip().lower()
    if word in ("", "0", "no", "false", "off"):
        return False
    if word in ("1", "yes", "true", "on"):
        return True
    raise BadArgument(_("{ENV}={value!r}: set it to 1 to replay the recordings shipped with netkit (labelled "
                        "as such), or to 0 (or leave it unset) for a live lab")
                      .format(ENV=ENV, value=value), value=value)


def mode() -> str | None:
    """"replay" (NETKIT_REPLAY=1), "record" (NETKIT_RECORD=DIR, for tools/record_replays.py) or None: live."""
    replay = switched_on(os.environ.get(ENV, ""))
    record = os.environ.get(RECORD_ENV, "").strip()
    if replay and record:
        raise BadArgument(_("both {ENV} and {RECORD_ENV} are set: a recording needs a live lab; unset {ENV} "
                            "to record, or {RECORD_ENV} to replay")
                          .format(ENV=ENV, RECORD_ENV=RECORD_ENV))
    return "replay" if replay else "record" if record else None


def lab_class(default: type) -> type:
    """The class `Lab(...)` makes here: `ReplayLab`, `netkit.recorder.RecordingLab`, or `default`."""
    chosen = mode()
    if chosen == "replay":
        return ReplayLab
    if chosen == "record":
        from .recorder import RecordingLab
        return RecordingLab
    return default


# -- arguments, as a recording keeps them ---------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _signature(method: str) -> inspect.Signature:
    return inspect.signature(getattr(Lab, method))


def call_key(method: str, lab, args: tuple, kwargs: dict) -> dict:
    """The arguments a call of `method` is matched by, as plain JSON data."""
    bound = _signature(method).bind(lab, *args, **kwargs)
    bound.apply_defaults()
    values = bound.arguments
    key = {name: values[name] for name in KEYS[method]}
    if method == "sysctl" and key["value"] is not None:
        key["value"] = str(key["value"])
    if method == "reset":
        key["stage"] = key["stage"] or lab.stage
    return json.loads(json.dumps(key, default=repr))


def probe_keys(probes) -> list[list]:
    """Probes (Probe objects, or (src, dst[, port]) tuples) as [src, dst, port] lists."""
    found = []
    for probe in probes:
        if hasattr(probe, "src"):
            found.append([probe.src, probe.dst, probe.port])
        else:
            src, dst, *rest = probe
            found.append([src, dst, rest[0] if rest else None])
    return found


def board_key(switches, probes, dashboard: bool) -> dict:
    return {"switches": None if switches is None else list(switches), "probes": probe_keys(probes),
            "dashboard": bool(dashboard)}


# -- the recordings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Recording:
    """One lab's recorded calls (see the module's docstring), with the kernel and date they came from."""

    lab: str
    recorded: str              # "Linux 6.18.44, 2026-12-01": what every label says
    calls: tuple
    notebook: str = ""
    kernel: str = ""
    date: str = ""
    path: str = ""

    @classmethod
    def from_dict(cls, data: dict, path: str = "") -> "Recording":
        if data.get("format") != FORMAT:
            raise NotRecorded(_("the recording {name!r} has format {found!r}, not {wanted}: record it again "
                                "(tools/record_replays.py)")
                              .format(name=path or data.get("lab"), found=data.get("format"), wanted=FORMAT))
        return cls(lab=data["lab"], recorded=data["recorded"], calls=tuple(data["calls"]),
                   notebook=data.get("notebook", ""), kernel=data.get("kernel", ""), date=data.get("date", ""),
                   path=path)


def _place(where: Path | None = None) -> Path:
    if where is not None:
        return Path(where)
    chosen = os.environ.get(RECORDINGS_ENV, "").strip()
    return Path(chosen) if chosen else RECORDINGS


def available(where: Path | None = None) -> list[str]:
    """The lab names that have a recording."""
    return sorted(p.stem for p in _place(where).glob("*.json"))


def shipped_on(where: Path | None = None) -> str:
    """What the recordings here say they were recorded on ("Linux 6.18.44, 2026-12-01"), or "" if none."""
    found = sorted(_place(where).glob("*.json"), key=lambda p: p.stat().st_size)
    return load(found[0].stem, where).recorded if found else ""


@functools.lru_cache(maxsize=32)
def _read(path: str, mtime: float) -> Recording:
    return Recording.from_dict(json.loads(Path(path).read_text()), path)


def load(name: str, where: Path | None = None) -> Recording:
    """The recording of the lab called `name`; NotRecorded naming the recorded labs when there is none."""
    path = _place(where) / f"{name}.json"
    if not path.is_file():
        raise NotRecorded(
            _("replay has no recording of a lab named {name!r}; it has: {names}. Use the notebook's own lab name "
              "(its parameters cell), or {live_lab}.")
            .format(name=name, names=", ".join(available(where)) or _("none"), live_lab=translated(LIVE_LAB)),
            lab=name)
    return _read(str(path), path.stat().st_mtime)


# -- the replay lab --------------------------------------------------------------------------------
class ReplayLab(Lab):
    """A lab that answers from a recording (see the module's docstring); the same methods as `Lab`."""

    replayed = True

    def __init__(self, name: str = "netkit", stage: str = topology.DEFAULT_STAGE, *, trace=None,
                 replace: bool = False, recordings: Path | None = None) -> None:
        from .state import check_name
        check_name(name)
        topology.stage(stage)
        self.name, self.trace, self.stage = name, trace, stage
        self.recording = load(name, recordings)
        self.recorded = self.recording.recorded
        self._cursor = 0
        self._closed = False
        entry = self._match("open", {"stage": stage})
        self.banner = announce(self)
        self._echo(entry)

    # -- matching ----------------------------------------------------------------------------------
    def _match(self, call: str, key: dict) -> dict:
        calls = self.recording.calls
        for index in range(self._cursor, len(calls)):
            entry = calls[index]
            if entry["call"] == call and entry["args"] == key:
                self._cursor = index + 1
                if call != "open":          # the lab's first cell: its banner says it all
                    served(self.recorded)
                return entry
        if call == "open":
            opened = [e["args"].get("stage") for e in calls if e["call"] == "open"]
            raise NotRecorded(_("replay recorded lab {name!r} at stage {opened}, not {stage}: open it as the "
                                "notebook does (Lab(name={name!r}, stage={first!r})), or use {live_lab}.")
                              .format(name=self.name, opened=", ".join(map(str, opened)), stage=key["stage"],
                                      first=opened[0], live_lab=translated(LIVE_LAB)),
                              lab=self.name, stage=key["stage"])
        shown = ", ".join(f"{name}={value!r}" for name, value in key.items())
        raise NotRecorded(
            _("replay: the recording of lab {name!r} holds no lab.{call}({shown}) after the calls made so far. A "
              "replay shows only what was recorded on {recorded}, in the notebook's order: run the cells in order "
              "from the top (running the lab's first cell again starts over). To try this call you need "
              "{live_lab}.")
            .format(name=self.name, call=call, shown=shown, recorded=self.recorded, live_lab=translated(LIVE_LAB)),
            lab=self.name, call=call)

    def _echo(self, entry: dict) -> None:
        if self.trace:
            for line in entry.get("echo", ()):
                quietly(self.trace, line)

    def _replay(self, method: str, *args, **kwargs):
        if self._closed:
            raise NotRecorded(_("the replayed lab {name!r} is closed; run the notebook's first lab cell again")
                              .format(name=self.name))
        entry = self._match(method, call_key(method, self, args, kwargs))
        self._echo(entry)
        if "error" in entry:
            raise from_wire(entry["error"])
        return entry.get("result")

    def _command(self, data: dict) -> CommandResult:
        return CommandResult(**{**data, "recorded": self.recorded})

    def _journey(self, data: dict, label: str = "") -> Journey:
        return dataclasses.replace(Journey.from_dict(data), recorded=self.recorded, label=label)

    # -- the lab as a whole ------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        raise NotRecorded(_("the replayed lab {name!r} has no process: it runs nowhere. For a lab with a process "
                            "you need {live_lab}.").format(name=self.name, live_lab=translated(LIVE_LAB)))

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"stage {self.stage!r}"
        return f"<Lab {self.name!r} ({provenance.label(self.recorded)}): {state}>"

    def _repr_html_(self) -> str:
        shown = (_("lab {name}, closed") if self._closed else _("lab {name}, at stage {stage}")).format(
            name=self.name, stage=self.stage)
        return provenance.html_label(self.recorded) + f"<code>{html.escape(shown)}</code>"

    def _call(self, op: str, **args):
        raise NotRecorded(_("replay cannot run {op!r} in a lab: there is no lab process. You need {live_lab}.")
                          .format(op=op, live_lab=translated(LIVE_LAB)))

    def reset(self, stage: str | None = None) -> "ReplayLab":
        topology.stage(stage or self.stage)
        self._replay("reset", stage)
        self.stage = stage or self.stage
        return self

    # -- commands --------------------------------------------------------------------------------
    def run(self, node: str, command: str, *, timeout: float = 10.0, check: bool = False,
            stdin: str | None = None) -> CommandResult:
        from . import arguments
        topology.check_node(node, self.stage)
        arguments.command(command)
        arguments.timeout(timeout, maximum=arguments.RUN_TIMEOUT_MAX)
        arguments.stdin(stdin)
        return self._command(self._replay("run", node, command, timeout=timeout, check=check, stdin=stdin))

    def probe(self, src: str, dst: str, *, port: int | None = None, timeout: float | None = None,
              label: str = "") -> Journey:
        from . import arguments
        topology.check_node(src, self.stage)
        arguments.address(dst)
        if port is not None:
            arguments.port(port)
        if timeout is not None:
            arguments.timeout(timeout, maximum=arguments.PROBE_TIMEOUT_MAX)
        if not isinstance(label, str):
            self._bad_label(label)
        return self._journey(self._replay("probe", src, dst, port=port, timeout=timeout, label=label), label)

    def start(self, node: str, command: str, *, port: int | None = None) -> dict:
        from . import arguments
        topology.check_node(node, self.stage)
        arguments.command(command)
        return self._replay("start", node, command, port=port)

    def tcpdump(self, point: str, node: str, command: str, *, expression: str = "icmp",
                timeout: float = 10.0, verbose: bool = False) -> CommandResult:
        from . import arguments
        topology.check_node(topology.split_point(point)[0], self.stage)
        topology.check_node(node, self.stage)
        arguments.command(command)
        arguments.expression(expression)
        return self._command(self._replay("tcpdump", point, node, command, expression=expression,
                                          timeout=timeout, verbose=verbose))

    def state(self, *names: str) -> dict:
        from .scenarios import switch
        for name in names:
            switch(name)
        return provenance.RecordedState(self._replay("state", *names), self.recorded)

    def get(self, name: str):
        from .scenarios import switch
        topology.check_node(switch(name).node, self.stage)
        return self._replay("get", name)

    def set(self, name: str, value) -> list[CommandResult]:
        from .scenarios import switch
        sw = switch(name)
        if value not in sw.commands:
            raise BadArgument(_("the switch {name!r} takes one of {list}, not {value!r}")
                              .format(name=name, list=list(sw.commands), value=value),
                              switch=name, value=repr(value))
        return [self._command(data) for data in self._replay("set", name, value)]

    def change(self, node: str, command: str) -> CommandResult:
        topology.check_node(node, self.stage)
        return self._command(self._replay("change", node, command))

    def iptables(self, rule: str, *, node: str = "host") -> CommandResult:
        from . import arguments
        topology.check_node(node, self.stage)
        arguments.iptables_argv(rule)
        return self._command(self._replay("iptables", rule, node=node))

    def sysctl(self, key: str, value=None, *, node: str = "host") -> str:
        from . import arguments
        topology.check_node(node, self.stage)
        arguments.sysctl_key(key)
        if value is not None:
            arguments.sysctl_value(value)
        return provenance.Recorded(self._replay("sysctl", key, value, node=node), self.recorded)

    # -- exercises and panels --------------------------------------------------------------------
    def recorded_check(self, exercise) -> NotChecked:
        """What `Exercise.check` gives in a replay: no check, and the recorded check of the model answer."""
        calls = self.recording.calls
        mine = [e for e in calls if e["call"] == "check" and e["args"].get("exercise") == exercise.name
                and e["result"].get("ok")]
        ahead = [e for e in mine if calls.index(e) >= self._cursor]
        model = (ahead or mine or [None])[0]
        served(self.recorded)
        return NotChecked(exercise.name, self.recorded, exercise.show_solution(),
                          model["result"] if model else None)

    def board(self, switches=None, probes=(), *, dashboard: bool = False) -> "Board":
        """The recorded outcomes a panel (or the dashboard) shows, for every combination of its switches."""
        entry = self._match("board", board_key(switches, probes, dashboard))
        return Board(self, entry["result"])


class Board:
    """What a panel or the dashboard holds in a replay: the switches as recorded, set by clicks, and the
    recorded journey of each combination (see `netkit.recorder.board`)."""

    replayed = True

    def __init__(self, lab: ReplayLab, data: dict) -> None:
        self.lab = lab
        self.name = lab.name
        self.recorded = lab.recorded
        self._stages = {entry["stage"]: entry for entry in data["stages"]}
        self._typed = data.get("typed", {})
        self.stage = data["start"]
        self._state = dict(self._stages[self.stage]["state"])

    @property
    def closed(self) -> bool:
        return self.lab.closed

    def _alive(self) -> None:
        if self.lab.closed:
            raise NotRecorded(_("the replayed lab {name!r} is closed; run the notebook's first lab cell again")
                              .format(name=self.name))

    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes the recorded lab has at its stage, as `Lab.nodes` says."""
        return topology.nodes_at(self.stage)

    def state(self, *names: str) -> dict:
        from .scenarios import switch
        self._alive()
        chosen = [switch(name).name for name in names] if names else list(self._state)
        return {name: self._state[name] for name in chosen if name in self._state}

    def get(self, name: str):
        from .scenarios import switch
        self._alive()
        topology.check_node(switch(name).node, self.stage)
        return self._state[name]

    def set(self, name: str, value) -> list[CommandResult]:
        from .scenarios import switch
        self._alive()
        sw = switch(name)
        if value not in sw.commands:
            raise BadArgument(_("the switch {name!r} takes one of {list}, not {value!r}")
                              .format(name=name, list=list(sw.commands), value=value),
                              switch=name, value=repr(value))
        if self._state.get(name) == value:
            return []
        typed = self._typed.get(name, {}).get(json.dumps(value))
        if typed is None:
            raise NotRecorded(_("replay recorded this panel with the switches {switches} only; {name!r} cannot be "
                                "turned here. You need {live_lab}.")
                              .format(switches=", ".join(self._switches()), name=name,
                                      live_lab=translated(LIVE_LAB)), switch=name)
        self._state[name] = value
        served(self.recorded)
        return [CommandResult(**{**data, "recorded": self.recorded}) for data in typed]

    def _switches(self) -> list[str]:
        return sorted({name for table in self._stages[self.stage]["tables"] for name in table["switches"]})

    def probe(self, src: str, dst: str, *, port: int | None = None, timeout: float | None = None,
              label: str = "") -> Journey:
        self._alive()
        wanted = [src, dst, port]
        tables = [t for t in self._stages[self.stage]["tables"] if t["probe"] == wanted]
        target = dst if port is None else f"{dst}:{port}"
        if not tables:
            raise NotRecorded(_("replay recorded no probe {src} → {target} at stage {stage}. You need {live_lab}.")
                              .format(src=src, target=target, stage=self.stage, live_lab=translated(LIVE_LAB)))
        table = tables[0]
        base = self._stages[self.stage]["state"]
        moved = [name for name, value in self._state.items()
                 if name not in table["switches"] and base.get(name) != value]
        if moved:
            raise NotRecorded(
                _("replay recorded {src} → {target} for every combination of {switches}, with the other switches "
                  "as they were; {moved} changed: set it back to see a recorded outcome, or use {live_lab}.")
                .format(src=src, target=target, switches=", ".join(table["switches"]), moved=", ".join(moved),
                        live_lab=translated(LIVE_LAB)))
        values = [self._state[name] for name in table["switches"]]
        for row in table["combos"]:
            if row["values"] == values:
                served(self.recorded)
                return dataclasses.replace(Journey.from_dict(row["journey"]), recorded=self.recorded, label=label)
        settings = dict(zip(table["switches"], values))
        raise NotRecorded(_("replay holds no recording of {src} → {target} with {settings}; you need {live_lab}.")
                          .format(src=src, target=target, settings=settings, live_lab=translated(LIVE_LAB)))

    def reset(self, stage: str | None = None) -> "Board":
        self._alive()
        stage = stage or self.stage
        topology.stage(stage)
        if stage not in self._stages:
            raise NotRecorded(_("replay recorded the dashboard at the stages {stages} only, not {stage}. You need "
                                "{live_lab}.")
                              .format(stages=", ".join(self._stages), stage=stage, live_lab=translated(LIVE_LAB)),
                              stage=stage)
        self.stage = stage
        self._state = dict(self._stages[stage]["state"])
        served(self.recorded)
        return self


def panel_lab(lab, switches=None, probes=(), *, dashboard: bool = False):
    """What a panel or the dashboard should drive: the lab itself, or in a replay (or a recording) its board."""
    board = getattr(lab, "board", None)
    return lab if board is None else board(switches, probes, dashboard=dashboard)
