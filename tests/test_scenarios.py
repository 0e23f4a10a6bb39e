"""The scenario registry: each scenario declared once, and everything derived from it."""

from __future__ import annotations

import importlib.util
import re
import subprocess

import pytest

from helpers import REPO
from netkit import Lab, exercises, scenarios
from netkit.dashboard import Dashboard
from netkit.outcome import Result
from netkit.rules import Rule
from netkit.scenarios import EXERCISES, SWITCHES, Case, Probe, Scenario
from netkit.switches import rule_switch


def _module(path: str):
    spec = importlib.util.spec_from_file_location(path.replace("/", "_"), REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_name_is_declared_once():
    names = [sw.name for s in scenarios.SCENARIOS for sw in s.switches]
    assert len(names) == len(set(names)) == len(SWITCHES) and set(names) == set(SWITCHES)
    cases = [c.name for c in scenarios.cases()]
    assert len(cases) == len(set(cases))
    # the exercises, as the README lists them, each in the scenario whose notebook uses it
    assert list(EXERCISES) == ["icmp-only", "c2-out", "replies-only", "publish-c2", "local-access", "docker-user"]
    constants = {name: value for name, value in vars(exercises).items()
                 if name.isupper() and isinstance(value, exercises.Exercise)}
    for scenario in scenarios.SCENARIOS:
        source = (REPO / "notebooks" / f"{scenario.notebook}.md").read_text()
        taught = {value.name for name, value in constants.items() if re.search(rf"\b{name}\b", source)}
        assert {e.name for e in scenario.exercises} == taught, scenario.title
        assert all(EXERCISES[e.name] is e for e in scenario.exercises)
    from netkit import topology
    for case in scenarios.cases():
        assert case.stage in topology.STAGES and case.probe.src in topology.nodes_at(case.stage)
        assert all(name in SWITCHES for name, _ in case.settings)


def test_the_recordings_are_the_registrys_cases():
    recorded = {p.name[len("raw-"):-len(".json")] for p in (REPO / "tests" / "data").glob("raw-*.json")}
    assert recorded == {case.name for case in scenarios.cases()}


TEST_RULE = Rule("filter", "FORWARD -s 10.55.66.3/32 -p icmp -j DROP")
NEW = Scenario(
    "5 · a scenario added in a test", "05-test", "part3-start",
    switches=(rule_switch("test-drop-c2", "drop ICMP from c2", (TEST_RULE,)),),
    probes=(Probe("c2", "10.55.66.2", "c2 to c1"),),
    cases=(Case("t-c2-dropped", "part3-start", Probe("c2", "10.55.66.2", "c2 to c1"), "c2's ICMP dropped",
                Result.DROPPED, settings=(("forward-policy", "ACCEPT"), ("test-drop-c2", True))),),
)


@pytest.mark.lab
def test_a_scenario_added_to_the_registry_appears_everywhere(name):
    bench = _module("bench/bench_probe.py")
    record = _module("tests/data/record.py")
    assert "test-drop-c2" not in SWITCHES
    with scenarios.registered(NEW), Lab(name=name) as lab:
        # the switches, read from and set in the kernel
        assert "test-drop-c2" in SWITCHES and lab.get("test-drop-c2") is False
        lab.set("test-drop-c2", True)
        assert lab.state()["test-drop-c2"] is True
        assert TEST_RULE.line in lab.run("host", "iptables -S FORWARD").stdout
        # the dashboard: its group, toggle and probe button
        dash = Dashboard(lab)
        assert dash.groups[NEW.title] == ["test-drop-c2"] and dash.controls["test-drop-c2"].value is True
        dash.probe_buttons[("c2", "10.55.66.2")].click()
        assert "c2 → 10.55.66.2: NOT delivered" in dash.outcome.value
        # the recordings and the bench's replay take its case, and the kernel gives it its outcome
        assert "t-c2-dropped" in [c.name for c in record.plan()]
        assert "t-c2-dropped" in [c.name for c in bench.replay_plan()]
        journey = scenarios.run_case(lab, NEW.cases[0])
        assert journey.outcome.result is Result.DROPPED and journey.dropped_by.rule == TEST_RULE.line
    assert "test-drop-c2" not in SWITCHES


@pytest.mark.lab
def test_every_rule_switch_is_spelled_as_iptables_lists_it(name):
    """A rule switch reads its rules back from iptables-save's lines, so each must be in iptables' own spelling."""
    with Lab(name=name, stage="docker-29") as lab:
        for sw in SWITCHES.values():
            for rule in sw.rules:
                lab.run("host", f"iptables -t {rule.table} -N {rule.chain} 2>/dev/null; "
                                f"iptables -t {rule.table} -D {rule.spec} 2>/dev/null; "
                                f"{rule.command('-A')}", check=True)
                listed = lab.run("host", f"iptables -t {rule.table} -S {rule.chain}").stdout.splitlines()
                assert rule.line in listed, (sw.name, rule.line, listed)
