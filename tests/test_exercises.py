"""Each exercise, tried as a student would: its model answer passes, answers that open everything are refused
with the reason, and its first hint says what the probe sees without giving a rule. The tests marked `lab`
start one; the others are pure (a recorded journey stands in for the probe)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from netkit import Lab
from netkit.exercises import Step
from netkit.scenarios import EXERCISES
from netkit.journey import Journey

DATA = Path(__file__).parent / "data"

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


@pytest.mark.lab
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


@pytest.mark.lab
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


# -- in Traditional Chinese (pure: a recorded journey stands in for the lab) -------------------------------
HAN = re.compile(r"[\u4e00-\u9fff]")
# Four or more English words in a row is a sentence left in English (as tests/test_translations.py counts).
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:[ ,]+[A-Za-z][A-Za-z'’-]*){3,}")


class RecordedLab:
    """Just enough of a lab for a check and a hint: every probe gives one recorded journey, the switches as set."""

    def __init__(self, journey: Journey, **switches) -> None:
        self.journey, self.switches = journey, {k.replace("_", "-"): v for k, v in switches.items()}

    def probe(self, src, dst, port=None, timeout=None):
        return self.journey

    def get(self, name):
        return self.switches[name]


def _prose(text: str) -> str:
    """What a student reads as sentences: HTML tags, `code` and <code> spans taken out."""
    text = re.sub(r"<code>.*?</code>|<pre.*?</pre>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"`[^`]*`", " ", html.unescape(text))


def test_a_feedback_and_a_hint_read_in_chinese(monkeypatch):
    from netkit import i18n
    monkeypatch.delenv(i18n.ENV, raising=False)
    monkeypatch.delenv("NETKIT_PROGRESS", raising=False)          # a check records nothing here
    exercise = EXERCISES["icmp-only"]
    lab = RecordedLab(Journey.from_json(DATA / "recorded-s1-forward-drop.json"),
                      forward_policy="DROP", bridge_nf_call_iptables=1)
    try:
        i18n.use_language("zh-TW")
        exercise._given = 0
        feedback = exercise.check(lab)
        hints = [exercise.hint(lab) for _ in range(4)]
        shown = {"feedback": str(feedback), "feedback html": feedback._repr_html_(), "task": exercise._repr_html_(),
                 "hint 1": str(hints[0]), "hint 2": str(hints[1]), "hint 1 html": hints[0]._repr_html_(),
                 "hint 4": str(hints[3]).splitlines()[0]}
    finally:
        i18n.use_language(None)
        exercise._given = 0
    assert not feedback.ok and "10.55.66.3" in feedback.message and "hwchiu0" in feedback.message
    for what, text in shown.items():
        assert HAN.search(text), f"{what} is not in Chinese: {text}"
        assert not ENGLISH_RUN.findall(_prose(text)), f"{what} still has English: {ENGLISH_RUN.findall(_prose(text))}"
    assert exercise.show_solution().splitlines()[0] in str(hints[3])  # the answer's code as it is
    # and in English, as ever
    assert str(exercise.check(lab)).startswith("NOT YET: c1 → 10.55.66.3: the request is dropped")
    exercise._given = 0
