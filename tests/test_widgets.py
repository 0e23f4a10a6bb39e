"""Instructor controls and exercises, driven as a click would drive them, on a real lab."""

import pytest

from netkit import Lab
from netkit.scenarios import EXERCISES
from netkit.widgets import Panel

pytestmark = pytest.mark.lab


@pytest.fixture
def lab(name):
    with Lab(name=name) as lab:
        yield lab


def test_flipping_a_toggle_changes_the_kernel_and_the_picture(lab):
    panel = Panel(lab, ["bridge-nf-call-iptables", "forward-policy"], probe=("c1", "10.55.66.3"))
    assert panel.controls["forward-policy"].value == "DROP"
    assert not panel.journey.delivered and "NOT delivered" in panel.outcome.value
    before = panel.picture.value
    panel.controls["forward-policy"].value = "ACCEPT"          # what a click does
    assert lab.run("host", "iptables -S FORWARD").stdout.startswith("-P FORWARD ACCEPT")
    assert panel.journey.delivered and "delivered" in panel.outcome.value
    assert "iptables -P FORWARD ACCEPT" in panel.typed.value
    assert panel.picture.value != before and b"<svg" in bytes(panel.picture.value)[:400]
    panel.controls["forward-policy"].value = "DROP"
    panel.controls["bridge-nf-call-iptables"].value = 0
    assert lab.run("host", "cat /proc/sys/net/bridge/bridge-nf-call-iptables").stdout.strip() == "0"
    assert panel.journey.delivered and panel.journey.hooks == ()


def test_the_panel_reads_back_a_change_made_from_a_terminal(lab):
    panel = Panel(lab, ["forward-policy", "masquerade"], probe=("c1", "10.55.66.3"), auto_probe=False)
    assert panel.journey is None
    lab.run("host", "iptables -P FORWARD ACCEPT")            # not through the panel
    lab.run("host", "iptables -t nat -A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE")
    assert panel.controls["forward-policy"].value == "DROP"  # nothing cached changes by itself...
    panel.refresh_button.click()
    assert panel.controls["forward-policy"].value == "ACCEPT"   # ...the kernel's state is read back
    assert panel.controls["masquerade"].value is True


def test_switching_the_picture_redraws_the_same_journey(lab):
    panel = Panel(lab, ["forward-policy"], probe=("c1", "10.55.66.3"))
    ladder = panel.picture.value
    panel.view.value = "map"
    assert panel.picture.value != ladder
    panel.probe_button.click()
    assert not panel.journey.delivered


def test_every_switch_turns_both_ways_and_reads_back(lab):
    lab.reset("part3-start")
    for name, value in [("bridge-address", True), ("default-route", True), ("masquerade", True),
                        ("forward-rules", True), ("forward-policy", "ACCEPT"), ("bridge-nf-call-iptables", 0)]:
        first = lab.get(name)
        assert first != value
        assert lab.set(name, value)          # typed commands
        assert lab.get(name) == value
        assert lab.set(name, value) == []    # already there: nothing typed twice
    assert lab.probe("c1", "8.8.8.8").delivered
    lab.set("masquerade", False)
    assert "no route to 10.55.66.2" in lab.probe("c1", "8.8.8.8").reason


def test_adding_a_rule_twice_does_not_pile_up(lab):
    rule = "-t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"
    lab.iptables(rule)
    again = lab.iptables(rule)
    assert "there already" in again.stderr
    assert lab.run("host", "iptables -t nat -S POSTROUTING").stdout.count("MASQUERADE") == 1


@pytest.mark.parametrize("exercise", EXERCISES.values(), ids=lambda e: e.name)
def test_an_exercise_fails_before_and_passes_after_its_solution(lab, exercise):
    exercise.prepare(lab)
    wrong = exercise.check(lab)
    assert not wrong.ok and wrong.message
    exercise.solve(lab)
    right = exercise.check(lab)
    assert right.ok, right.message
    if exercise.name == "docker-user":   # solved means: the outside is kept away, in DOCKER-USER
        assert right.journey.dropped_by.chain == "DOCKER-USER"
    else:
        assert right.journey.delivered


def test_the_icmp_exercise_refuses_a_policy_change(lab):
    exercise = EXERCISES["icmp-only"]
    exercise.prepare(lab)
    lab.iptables("-P FORWARD ACCEPT")       # works, but is not what the exercise asks
    feedback = exercise.check(lab)
    assert not feedback.ok and "the FORWARD policy must stay at DROP" in feedback.message


def test_a_toggle_that_leaves_the_picture_as_it_was_draws_nothing(lab, monkeypatch):
    import netkit.widgets as widgets
    drawn = []
    real = widgets.svg
    monkeypatch.setattr(widgets, "svg", lambda fig: drawn.append(fig) or real(fig))
    panel = Panel(lab, ["masquerade", "forward-policy"], probe=("c1", "10.55.66.3"))
    assert len(drawn) == 1
    panel.controls["masquerade"].value = True          # c1 -> c2 is dropped in FORWARD before nat matters
    assert lab.get("masquerade") is True and len(drawn) == 1
    panel.controls["forward-policy"].value = "ACCEPT"  # now the journey changes, and so does the picture
    assert panel.journey.delivered and len(drawn) == 2
