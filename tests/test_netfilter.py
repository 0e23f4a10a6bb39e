"""Pure tests: netfilter's words defined once, and "which hook dropped it" answered once, by every view."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.text import Text

from netkit import hooks, netfilter
from netkit.journey import Journey
from netkit.outcome import Facts, Result, decide
from netkit.plots import lab_map
from netkit.topology import owner

pytestmark = pytest.mark.pure

NETKIT = Path(netfilter.__file__).parent


def _docker_user_drop() -> Journey:
    """notebook 04's probe from outside to the published port, dropped by its DOCKER-USER rule (as recorded)."""
    for line in (NETKIT / "recordings" / "nb04.json").read_text().splitlines():
        if line.startswith('{"call":"probe"') and "-A DOCKER-USER -s 172.17.9.10/32" in line:
            call = json.loads(line.rstrip(","))
            journey = Journey.from_dict(call["result"])
            if journey.dropped_by is not None and journey.dropped_by.chain == "DOCKER-USER":
                return journey
    raise AssertionError("nb04.json holds no probe dropped in DOCKER-USER")


def test_a_user_chain_verdict_is_met_at_the_hook_it_was_jumped_to_from():
    journey = _docker_user_drop()
    dropped = journey.dropped_by
    at = [p.hook for p in netfilter.passes(journey, "request") if dropped in p.verdicts]
    assert at == ["FORWARD"] and netfilter.hook_of(journey, dropped) == "FORWARD"
    assert all(isinstance(p, netfilter.HookPass) for p in netfilter.passes(journey, "request"))


def test_a_drop_in_docker_user_is_a_drop_in_forward_in_the_outcome_the_mark_the_map_and_the_ladder():
    journey = _docker_user_drop()
    # decided again from the recorded hooks and verdicts
    decided = decide(replace(journey, outcome=None), Facts(), owner(journey.dst))
    assert decided.result is Result.DROPPED and decided.verdict.chain == "DOCKER-USER"
    assert decided.hook == "FORWARD" == journey.outcome.hook
    # the ✘'s words in the table and the sentences
    assert journey.mark.hook == "FORWARD"
    assert "dropped in FORWARD" in journey._mark_text() and "DOCKER-USER" not in journey._mark_text()
    # the map labels its ✘ with that hook
    fig = lab_map(journey)
    (death,) = [t for t in fig.findobj(Text) if t.get_gid() == "map:death"]
    assert death.get_text() == "FORWARD: DROP"
    # the ladder lists the dropping line under FORWARD
    lines = [line for step in hooks.between(journey, "request", journey.mark).values() for line in step]
    assert [line.hook for line in lines if line.dropped] == ["FORWARD"]


def test_a_verdict_with_an_output_device_is_not_put_before_routing():
    """Docker's nftables table: its filter-FORWARD base chain is no iptables name, yet its verdicts have an
    output device, so they are met at FORWARD, not at the PREROUTING the packet passed before."""
    journey = _docker_user_drop()
    forward = next(v for v in journey.verdicts if v.chain == "DOCKER-USER")
    nft = replace(forward, table="docker-bridges", chain="filter-forward-in__hwchiu0", rule="counter drop")
    moved = replace(journey, verdicts=tuple(v for v in journey.verdicts
                                            if v.kind != "request" or v.chain in ("PREROUTING",)) + (nft,))
    assert netfilter.hook_of(moved, moved.verdicts[-1]) == "FORWARD"


def _tuples_of_strings(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts \
                and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield node.lineno, {e.value for e in node.elts}


def test_the_hooks_and_the_nat_targets_are_defined_once():
    found = []
    for path in sorted(NETKIT.rglob("*.py")):
        for line, values in _tuples_of_strings(path):
            hooks_named = {h.lower() for h in netfilter.HOOKS} <= {v.lower() for v in values}
            nat_named = set(netfilter.SOURCE_NAT) <= values or set(netfilter.DEST_NAT) <= values
            if hooks_named or nat_named:
                found.append(f"{path.relative_to(NETKIT)}:{line}")
    assert found == ["netfilter.py:21", "netfilter.py:23", "netfilter.py:25"], found


def test_every_recorded_drop_names_the_hook_netfilter_gives_it():
    """The replay recordings keep each journey's outcome: its hook is the one hook_of gives (recordings made
    before issue 18 were converted by tools/rehook_recordings.py)."""
    from netkit import replay
    checked = 0
    for name in replay.available(replay.RECORDINGS):
        for entry in replay.load(name, replay.RECORDINGS).calls:
            if entry["call"] != "probe":
                continue
            journey = Journey.from_dict(entry["result"])
            if journey.dropped_by is not None:
                assert journey.outcome.hook == netfilter.hook_of(journey, journey.dropped_by), (name, entry["args"])
                checked += 1
    assert checked >= 10
