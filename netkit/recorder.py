"""Recording a live lab for replay mode, and checking a recording against the live kernel.

``NETKIT_RECORD=DIR`` makes ``Lab(...)`` a `RecordingLab`: a live lab that
also writes every call a notebook makes (method, arguments, result or error,
and the commands it echoed) to ``DIR/<lab name>.json``, after each call, so
a kernel that dies mid-notebook leaves what it did. Only the outermost call
is kept (``lab.set`` calling ``lab.get`` is one call). An exercise's check is
kept with its answer, and a panel or the dashboard (`board`) is recorded
with the journey of its probe for every combination of its switches.
``tools/record_replays.py`` runs the notebooks this way and ships the result
in ``netkit/recordings/`` (`netkit.replay` reads it).

`verify` runs a recording's calls again on a live lab and returns what the
kernel now does differently, compared by structured outcome (a probe's
`netkit.outcome.Outcome` and where its packets were seen), return codes, and
the output of commands whose output is the same on every run (``route -n``,
``iptables -S``): a test runs it for every shipped recording.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import re
from itertools import product
from pathlib import Path

from . import errors, replay, scenarios, topology
from .errors import BadArgument, NetkitError
from .journey import Journey
from .lab import CommandResult, Lab
from .scenarios import switch

SHARED = ("forward-policy", "bridge-nf-call-iptables")
"""Switches every scenario's probe depends on: the dashboard's board adds them to a scenario's own."""
BOARD_MOST = 6
"""At most this many switches in one of the dashboard's boards: 2**6 = 64 recorded journeys."""
PANEL_MOST = 8
"""A panel with more switches than this is not recorded (2**8 = 256 probes take a minute or more)."""


def recorded_on(release: str | None = None, day: datetime.date | None = None) -> str:
    """``"Linux 6.18.44, 2026-12-01"``: the kernel (its version numbers) and the date, for the label."""
    release = release or os.uname().release
    version = re.match(r"\d+(?:\.\d+)*", release)
    day = day or datetime.datetime.now(datetime.timezone.utc).date()
    return f"Linux {version[0] if version else release}, {day.isoformat()}"


def encode(value):
    """A call's result as plain JSON data."""
    if isinstance(value, CommandResult):
        data = dataclasses.asdict(value)
        data.pop("recorded", None)
        return data
    if isinstance(value, Journey):
        data = value.to_dict()
        data.pop("recorded", None)
        return data
    if isinstance(value, Lab):
        return None
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


def board_switches(scenario) -> list[str]:
    """The switches the dashboard's board turns for a scenario's probes: its own, then SHARED ones."""
    names = [sw.name for sw in scenario.switches]
    for name in SHARED:
        if name not in names and len(names) < BOARD_MOST:
            names.append(name)
    return names


def _flip(lab, names: list[str], values: list, now: dict, typed: dict) -> None:
    for name, value in zip(names, values):
        if now.get(name) != value:
            done = lab.set(name, value)
            if done:
                typed.setdefault(name, {}).setdefault(json.dumps(value), encode(done))
            now[name] = value


def _combos(names: list[str]) -> list[list]:
    """Every combination of the switches' values, each differing from the one before in one switch."""
    values = [switch(name).values for name in names]
    if any(len(v) != 2 for v in values):
        return [list(c) for c in product(*values)]
    order = [i ^ (i >> 1) for i in range(2 ** len(names))]
    return [[values[k][(g >> k) & 1] for k in range(len(names))] for g in order]


def forget(lab) -> None:
    """Empty every node's neighbour table and the host's conntrack, so that a board's journey depends on its
    switches only, not on the combinations probed before it (a MAC address a node still remembers would let
    a packet out that a fresh lab's ARP could not)."""
    steps = [f"nsenter --net=/run/netns/{node} -- ip neigh flush all" for node in lab.nodes if node != "host"]
    steps += ["ip neigh flush all", "conntrack -F >/dev/null 2>&1"]
    lab.run("host", " && ".join(steps), check=True)     # one round trip: a board takes hundreds


def table(lab, names: list[str], probe: list, typed: dict, combos: list[list] | None = None) -> dict:
    """The journey of `probe` ([src, dst, port]) for each combination of `names`, each from forgotten
    neighbours and connections (`forget`); the switches are put back."""
    if len(names) > PANEL_MOST:
        raise NetkitError(f"a board of {len(names)} switches needs 2**{len(names)} recorded journeys: give the "
                          f"panel at most {PANEL_MOST} switches, so that it can be recorded for replay mode")
    base = lab.state()
    now = dict(base)
    src, dst, port = probe
    rows = []
    for values in (_combos(names) if combos is None else combos):
        _flip(lab, names, values, now, typed)
        forget(lab)
        journey = lab.probe(src, dst, port=port)
        rows.append({"values": list(values), "journey": encode(journey)})
    _flip(lab, names, [base[name] for name in names], now, typed)
    after = lab.state()
    if after != base:
        changed = {name: (base.get(name), after.get(name)) for name in set(base) | set(after)
                   if base.get(name) != after.get(name)}
        raise NetkitError(f"recording a board of lab {lab.name!r} left the switches changed: {changed}")
    return {"probe": probe, "switches": list(names), "combos": rows}


def board(lab, switches=None, probes=(), *, dashboard: bool = False, combos=None) -> dict:
    """What a replayed panel (or dashboard) needs: the state and, per probe, a `table` (see `netkit.replay.Board`).

    A panel's board is taken where the lab stands, and the lab is left so. The
    dashboard's is taken fresh at each stage `dashboard_stages` names: there its
    scenarios' probes get every combination of `board_switches`, and the other
    probes the journey of the stage as it is; the lab is then reset to the stage
    it was at. `combos` ((stage, probe) -> the value lists to take) picks
    fewer combinations, for `verify`.
    """
    typed: dict = {}
    stages: dict[str, dict] = {}
    start = lab.stage
    if dashboard:
        wanted = replay.probe_keys(probes)
        for stage, owners in dashboard_stages(wanted).items():
            lab.reset(stage)
            entry = stages[stage] = {"stage": stage, "state": lab.state(), "tables": []}
            for probe in wanted:
                if probe[0] not in lab.nodes:
                    continue                     # a probe from a node this stage has not
                names = owners.get(json.dumps(probe), [])
                entry["tables"].append(table(lab, names, probe, typed, _pick(combos, stage, probe)))
        lab.reset(start)
    else:
        names = list(switches)
        entry = {"stage": start, "state": lab.state(), "tables": []}
        for probe in replay.probe_keys(probes):
            entry["tables"].append(table(lab, names, probe, typed, _pick(combos, start, probe)))
        stages[start] = entry
    return {"start": start, "stages": list(stages.values()), "typed": typed}


def dashboard_stages(probes: list[list]) -> dict[str, dict[str, list[str]]]:
    """Where the dashboard's board is taken: each scenario's stage and the stages of its cases that send one of
    `probes`; at each, the probes of the scenarios found there (as JSON) and the switches they are turned with."""
    found: dict[str, dict[str, list[str]]] = {}
    for scenario in scenarios.SCENARIOS:
        mine = [p for p in replay.probe_keys(scenario.probes) if p in probes]
        if not mine:
            continue
        places = [scenario.stage] + [case.stage for case in scenario.cases
                                     if replay.probe_keys([case.probe])[0] in mine]
        for stage in dict.fromkeys(places):
            for probe in mine:
                found.setdefault(stage, {})[json.dumps(probe)] = board_switches(scenario)
    return found


def _pick(combos, stage, probe):
    return None if combos is None else combos(stage, probe)


# -- recording ------------------------------------------------------------------------------------
class RecordingLab(Lab):
    """A live lab that writes each call it answers to ``$NETKIT_RECORD/<name>.json`` (see the module)."""

    def __init__(self, name: str = "netkit", stage: str = topology.DEFAULT_STAGE, *, trace=None,
                 replace: bool = False, where: str | Path | None = None) -> None:
        where = where or os.environ.get(replay.RECORD_ENV, "").strip()
        if not where:
            raise BadArgument(f"a recording lab needs a directory to write to: RecordingLab(where=DIR), or "
                              f"{replay.RECORD_ENV}=DIR in the environment")
        self._where = Path(where)
        self._depth = 1
        self._calls: list[dict] = []
        echoed: list[str] = []
        self._echoed = echoed

        def echo(line: str) -> None:
            echoed.append(line)
            if trace:
                trace(line)
        try:
            super().__init__(name, stage, trace=echo, replace=replace)
        finally:
            self._depth = 0
        self._header = {"format": replay.FORMAT, "lab": name, "recorded": recorded_on(),
                        "kernel": os.uname().release,
                        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat()}
        self._keep({"call": "open", "args": {"stage": stage}})

    def _keep(self, entry: dict) -> None:
        entry["echo"] = list(self._echoed)
        self._echoed.clear()
        self._calls.append(entry)
        self._where.mkdir(parents=True, exist_ok=True)
        path = self._where / f"{self.name}.json"
        part = path.with_suffix(".part")
        part.write_text(json.dumps({**self._header, "calls": self._calls}, separators=(",", ":"), default=repr))
        part.replace(path)

    def note_check(self, exercise, feedback) -> None:
        """Keep an exercise's check and its answer (`netkit.exercises.Exercise.check` calls this)."""
        self._keep({"call": "check", "args": {"exercise": exercise.name},
                    "result": {"ok": bool(feedback.ok), "message": feedback.message,
                               "journey": encode(feedback.journey) if feedback.journey else None}})

    def board(self, switches=None, probes=(), *, dashboard: bool = False):
        """Record the panel's (or dashboard's) board; the panel then drives this live lab as ever."""
        key = replay.board_key(switches, probes, dashboard)
        self._depth += 1
        try:
            data = board(self, switches, probes, dashboard=dashboard)
        finally:
            self._depth -= 1
            self._echoed.clear()         # the board's own steps: a live panel types none of them
        self._keep({"call": "board", "args": key, "result": data})
        return self


def _recorded(method: str):
    live = getattr(Lab, method)

    @functools.wraps(live)
    def call(self, *args, **kwargs):
        if self._depth:                  # made by another call of this lab: part of that one
            return live(self, *args, **kwargs)
        entry = {"call": method, "args": replay.call_key(method, self, args, kwargs)}
        self._depth += 1
        try:
            result = live(self, *args, **kwargs)
        except NetkitError as error:
            entry["error"] = errors.to_wire(error)
            self._depth -= 1
            self._keep(entry)
            raise
        except BaseException:
            self._depth -= 1
            raise
        self._depth -= 1
        entry["result"] = encode(result)
        self._keep(entry)
        return result
    return call


for _method in replay.KEYS:
    setattr(RecordingLab, _method, _recorded(_method))


# -- checking a recording against the live kernel ---------------------------------------------------
class LiveLab(Lab):
    """A live lab whatever NETKIT_REPLAY says (`verify` compares with the kernel, never with a recording)."""


STEADY = re.compile(r"route -n|ip (-4 )?route( show)?( default)?|ip route get \S+|iptables( -t \w+)? -S( \w[\w-]*)?"
                    r"( -v)?|cat /proc/sys/\S+|sysctl (-n|-w) \S+")
"""A command whose output is the same on every run of the lab (no MAC address, time or counter in it)."""
COUNTERS = re.compile(r"\[\d+:\d+\]|-c \d+ \d+")


def steady(command: str) -> bool:
    """Is `command` (each of its `;`-separated parts) one whose output `verify` compares?"""
    return all(STEADY.fullmatch(part.strip()) for part in command.split(";"))


def shape(journey: Journey) -> dict:
    """What `verify` compares of a journey: its outcome, and where its packets were seen with which addresses
    (ports left out: a probe's source port is chosen afresh each time)."""
    o = journey.outcome
    verdict = o.verdict if o is not None else None
    return {
        "result": o and o.result.value, "packet": o and o.packet, "last": o and o.last, "next": o and o.next,
        "node": o and o.node, "hook": o and o.hook,
        "verdict": verdict and (verdict.table, verdict.chain, verdict.rule, verdict.verdict, verdict.kind),
        "rewrites": o and sorted((r.packet, r.field, r.before, r.after, r.point) for r in o.rewrites),
        "seen": [(h.point, kind, s.src, s.dst) for h in journey.hops for kind, s in
                 (("request", h.request), ("reply", h.reply)) if s is not None],
    }


def _differs(recorded, live) -> list[str]:
    keys = sorted(set(recorded) | set(live))
    return [f"{k}: recorded {recorded.get(k)!r}, live {live.get(k)!r}"
            for k in keys if recorded.get(k) != live.get(k)]


def _compare(call: str, args: dict, entry: dict, live, error) -> list[str]:
    """What differs between a recorded call and the same call on the live lab."""
    if "error" in entry or error is not None:
        kinds = (entry.get("error", {}).get("kind"), error and type(error).__name__)
        return [] if kinds[0] == kinds[1] else [f"recorded error {kinds[0]}, live error {kinds[1]}"]
    recorded = entry.get("result")
    if call == "probe":
        return _differs(shape(Journey.from_dict(recorded)), shape(live))
    if call in ("run", "change", "iptables", "tcpdump"):
        found = []
        if recorded["returncode"] != live.returncode:
            found.append(f"exit {recorded['returncode']} recorded, {live.returncode} live")
        if call != "tcpdump" and steady(live.command) and \
                COUNTERS.sub("", recorded["stdout"]) != COUNTERS.sub("", live.stdout):
            found.append(f"output recorded {recorded['stdout']!r}, live {live.stdout!r}")
        return found
    if call == "set":
        was = [(r["node"], r["command"], r["returncode"]) for r in recorded]
        now = [(r.node, r.command, r.returncode) for r in live]
        return [] if was == now else [f"typed {was} recorded, {now} live"]
    if call in ("get", "state", "sysctl"):
        return [] if recorded == encode(live) else [f"recorded {recorded!r}, live {encode(live)!r}"]
    return []


def _neighbours(table_entry: dict, base: dict):
    """The combinations `verify` probes: the switches as they were, and each one turned alone."""
    names = table_entry["switches"]
    first = [base[name] for name in names]
    picked = [first]
    for index, name in enumerate(names):
        other = [v for v in switch(name).values if v != first[index]]
        picked += [first[:index] + [value] + first[index + 1:] for value in other]
    return picked


def _verify_board(lab, entry: dict) -> list[str]:
    args, recorded = entry["args"], entry["result"]
    by_probe = {}
    for stage in recorded["stages"]:
        for t in stage["tables"]:
            by_probe[stage["stage"], json.dumps(t["probe"])] = (t, stage["state"])
    picks = {key: _neighbours(t, state) for key, (t, state) in by_probe.items()}
    live = board(lab, args["switches"], args["probes"], dashboard=args["dashboard"],
                 combos=lambda stage, probe: picks.get((stage, json.dumps(probe)), []))
    now = sorted((s["stage"], json.dumps(t["probe"])) for s in live["stages"] for t in s["tables"])
    if sorted(by_probe) != now:
        return [f"the board's stages and probes changed: recorded {sorted(by_probe)}, live {now}"]
    found = []
    for stage in live["stages"]:
        for t in stage["tables"]:
            old, state = by_probe[stage["stage"], json.dumps(t["probe"])]
            rows = {json.dumps(r["values"]): r["journey"] for r in old["combos"]}
            for row in t["combos"]:
                where = f"board {t['probe']} at {stage['stage']} with {dict(zip(t['switches'], row['values']))}"
                was = rows.get(json.dumps(row["values"]))
                if was is None:
                    found.append(f"{where}: not recorded")
                    continue
                found += [f"{where}: {d}" for d in _differs(shape(Journey.from_dict(was)),
                                                           shape(Journey.from_dict(row["journey"])))]
            if state != stage["state"]:
                found.append(f"board at {stage['stage']}: switches recorded {state}, live {stage['state']}")
    return found


def verify(recording: "replay.Recording", name: str) -> list[str]:
    """Run `recording`'s calls again on a live lab called `name`; return every difference found (none: it holds)."""
    from .scenarios import EXERCISES
    lab = None
    found = []
    try:
        for number, entry in enumerate(recording.calls):
            call, args = entry["call"], entry["args"]
            where = f"{recording.lab} call {number} {call}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
            if call == "open":
                lab = LiveLab(name=name, stage=args["stage"])
                continue
            if call == "check":
                feedback = EXERCISES[args["exercise"]].checker(lab)
                if bool(feedback.ok) != entry["result"]["ok"]:
                    found.append(f"{where}: recorded {entry['result']['ok']}, live {feedback.ok}: "
                                 f"{feedback.message}")
                continue
            if call == "board":
                found += [f"{where}: {d}" for d in _verify_board(lab, entry)]
                continue
            kwargs = dict(args)
            positional = kwargs.pop("names", ())
            live, error = None, None
            try:
                live = getattr(lab, call)(*positional, **kwargs)
            except NetkitError as exc:
                error = exc
            found += [f"{where}: {d}" for d in _compare(call, args, entry, live, error)]
    finally:
        if lab is not None:
            lab.close()
    return found
