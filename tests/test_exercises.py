"""Each exercise, tried as a student would: its model answer passes, answers that open everything are refused
with the reason, and its first hint says what the probe sees without giving a rule."""

from __future__ import annotations

import re

import pytest

from netkit import Lab
from netkit.exercises import EXERCISES, Step

pytestmark = pytest.mark.lab

RULE_WORDS = re.compile(r"(^|\s)-[A-Za-z]\b|--[a-z]|\biptables\b|\bip route\b|-j\b|MASQUERADE|DNAT|conntrack")

# (exercise, the attempt, words the refusal must contain)
TOO_OPEN = [
    ("icmp-only", [Step("host", "iptables -I FORWARD -j ACCEPT")], "no match"),
    ("icmp-only", [Step("host", "iptables -I FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT")], "TCP connection"),
    ("icmp-only", [Step("host", "iptables -P FORWARD ACCEPT")], "must stay at DROP"),
    ("icmp-only", [Step("host", "sysctl -w net.bridge.bridge-nf-call-iptables=0")], "must stay at 1"),
    ("c2-out", [Step("c2", "ip route add default via 10.55.66.1"),
                Step("host", "iptables -t nat -I POSTROUTING -o eth0 -j MASQUERADE"),
                Step("host", "iptables -I FORWARD -j ACCEPT")], "lets more through"),
    ("c2-out", [Step("host", "iptables -P FORWARD ACCEPT")], "must stay at DROP"),
    ("replies-only", [Step("host", "iptables -D FORWARD -i eth0 -o hwchiu0 -j ACCEPT"),
                      Step("host", "iptables -I FORWARD -j ACCEPT")], "new ping from the internet"),
    ("replies-only", [Step("host", "iptables -P FORWARD ACCEPT")], "must stay at DROP"),
    ("publish-c2", [Step("host", "iptables -t nat -A PREROUTING -p tcp -m tcp --dport 3456 -j DNAT "
                                 "--to-destination 10.55.66.3:8000"),
                    Step("host", "iptables -I FORWARD -j ACCEPT")], "lets more through"),
    ("publish-c2", [Step("host", "iptables -P FORWARD ACCEPT")], "must stay at DROP"),
    ("local-access", [Step("host", "iptables -t nat -A OUTPUT -p tcp -j DNAT --to-destination 10.55.66.3:8000")],
     "more than port 3456"),
    ("docker-user", [Step("host", "iptables -I DOCKER-USER -j DROP")], "can no longer reach 8.8.8.8"),
    ("docker-user", [Step("host", "iptables -I DOCKER-USER -p tcp -j DROP")], "c1's own TCP"),
]


@pytest.fixture(scope="module")
def lab():
    from helpers import lab_name
    with Lab(name=lab_name("ex")) as lab:
        yield lab


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_model_answer_passes_and_the_first_hint_gives_no_rule(lab, name):
    exercise = EXERCISES[name]
    exercise.prepare(lab)
    first = exercise.check(lab)
    assert not first.ok, first
    assert not RULE_WORDS.search(first.message), first.message       # the first "Not yet" gives no rule
    hints = [exercise.hint(lab) for _ in range(4)]
    assert [h.level for h in hints] == [1, 2, 3, 4]
    assert hints[0].text.startswith("What the probe sees now:")
    assert not RULE_WORDS.search(hints[0].text), hints[0].text
    assert exercise.show_solution().splitlines()[0] in hints[3].text
    exercise.solve(lab)
    answer = exercise.check(lab)
    assert answer.ok, answer


@pytest.mark.parametrize("name, attempt, says", TOO_OPEN, ids=[f"{n}:{i}" for i, (n, _, _) in enumerate(TOO_OPEN)])
def test_an_answer_that_opens_everything_is_refused_with_the_reason(lab, name, attempt, says):
    exercise = EXERCISES[name]
    exercise.prepare(lab)
    for step in attempt:
        step.apply(lab)
    feedback = exercise.check(lab)
    assert not feedback.ok and says in feedback.message, feedback


def test_every_scenario_exercise_is_tried_here():
    assert {name for name, _, _ in TOO_OPEN} == set(EXERCISES)
    assert sum(1 for name, _, _ in TOO_OPEN if name != "local-access") >= 2 * (len(EXERCISES) - 1)
