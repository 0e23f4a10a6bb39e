"""Exercises: the student types the command, `check()` probes the lab and says right or wrong.

A check never compares strings: it sends a probe and asks the journey
whether the kernel now does what the exercise asks, so any correct rule
passes (``-A`` or ``-I``, by interface or by address). When it is wrong it
gives a hint drawn from what the probe saw. Solutions are there to read
(`exercise.solution`), and `exercise.solve(lab)` types them, for the tests.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from collections.abc import Mapping

from . import progress, rules
from .journey import Journey
from .outcome import Result


@dataclass(frozen=True)
class Feedback:
    """The answer of a check: right or not, why, and the probe it is based on."""

    ok: bool
    message: str
    journey: Journey | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return ("RIGHT: " if self.ok else "NOT YET: ") + self.message

    def _repr_html_(self) -> str:
        color, word = ("#009E73", "Right") if self.ok else ("#D62728", "Not yet")
        return (f'<div style="border-left:6px solid {color};padding:6px 12px;font-size:14px">'
                f'<b style="color:{color}">{word}.</b> {html.escape(self.message)}</div>')


@dataclass(frozen=True)
class Exercise:
    name: str
    task: str
    stage: str
    setup: tuple[tuple[str, object], ...]   # switches to set before the student starts
    solution: tuple[str, ...]               # iptables arguments, as lab.iptables takes them
    checker: object = field(repr=False, default=None)

    def prepare(self, lab) -> None:
        """Put the lab where the exercise starts (its stage and switches)."""
        lab.reset(self.stage)
        for name, value in self.setup:
            lab.set(name, value)

    def check(self, lab) -> Feedback:
        if getattr(lab, "replayed", False):   # a replay checks nothing: it says so, shows the model answer
            return lab.recorded_check(self)
        feedback = self.checker(lab)
        progress.record(self.name, feedback.ok)   # for a class's progress board (see netkit.progress)
        if hasattr(lab, "note_check"):            # a recording keeps the answer (netkit.recorder)
            lab.note_check(self, feedback)
        return feedback

    def solve(self, lab) -> None:
        for rule in self.solution:
            lab.iptables(rule)

    def show_solution(self) -> str:
        return "\n".join(f'lab.iptables("{rule}")' for rule in self.solution)


def _bridged_accept(lab) -> Feedback:
    if lab.get("forward-policy") != "DROP" or lab.get("bridge-nf-call-iptables") != 1:
        return Feedback(False, "Leave the FORWARD policy at DROP and bridge-nf-call-iptables at 1: the "
                               "exercise asks for a rule that accepts c1 -> c2 while Docker's whitelist stays.")
    journey = lab.probe("c1", "10.55.66.3")
    if journey.delivered:
        accepted = [v for v in journey.verdicts if v.chain == "FORWARD" and v.verdict == "ACCEPT"
                    and v.rule != "policy"]
        rule = accepted[0].command if accepted else "your rule"
        return Feedback(True, f"c1 reaches c2; the request was accepted by `{rule}`.", journey)
    dropped = journey.dropped_by
    hint = ("Look at the verdict's interfaces: a bridged frame enters FORWARD with hwchiu0 as both "
            "the in and the out interface (-i hwchiu0 -o hwchiu0)")
    if dropped is not None:
        return Feedback(False, f"the ping is still {journey.reason}. {hint}.", journey)
    return Feedback(False, f"the ping still fails: {journey.reason}. {hint}.", journey)


def _masquerade(lab) -> Feedback:
    journey = lab.probe("c1", "8.8.8.8")
    if journey.delivered and journey.addresses("host:eth0") == "10.0.2.15 > 8.8.8.8":
        return Feedback(True, "8.8.8.8 answers: on eth0 the request leaves as 10.0.2.15 > 8.8.8.8, "
                              "and conntrack turns the reply back into one for 10.55.66.2.", journey)
    if journey.dropped_by is not None:
        return Feedback(False, f"{journey.reason}. This exercise starts with FORWARD ACCEPT; "
                               "did a rule of yours drop it?", journey)
    if journey.seen("internet:eth0"):
        seen = journey.addresses("internet:eth0")
        return Feedback(False, f"8.8.8.8 got the request as {seen}, and it has no route back to "
                               "10.55.66.2. Rewrite the source address as the packet leaves eth0: "
                               "a rule in the nat table's POSTROUTING chain with the target MASQUERADE.",
                        journey)
    return Feedback(False, f"{journey.reason}. Check c1's default route and hwchiu0's address.", journey)


def _forward_rules(lab) -> Feedback:
    if lab.get("forward-policy") != "DROP":
        return Feedback(False, "Set the FORWARD policy back to DROP (lab.iptables('-P FORWARD DROP')): "
                               "the exercise is to accept c1's traffic with rules, as Docker does.")
    journey = lab.probe("c1", "8.8.8.8")
    if journey.delivered:
        return Feedback(True, "c1 reaches 8.8.8.8 with FORWARD still DROP: your rules accepted the request "
                              "and the reply.", journey)
    dropped = journey.dropped_by
    if dropped is not None:
        way = f"{dropped.iif} -> {dropped.oif}"
        which = "request" if dropped.kind == "request" else "reply"
        return Feedback(False, f"the {which} was {journey.reason}; it was going {way}. "
                               f"A rule with -i {dropped.iif} -o {dropped.oif} -j ACCEPT would let it pass.",
                        journey)
    return Feedback(False, f"{journey.reason}. Is MASQUERADE still on?", journey)


BRIDGED_ACCEPT = Exercise(
    "bridged-accept",
    "Keep FORWARD at DROP and bridge-nf-call-iptables at 1, and let c1 ping c2 with one iptables rule.",
    "part3-start", (), (rules.BRIDGED_ACCEPT.args("-I"),), _bridged_accept)

MASQUERADE = Exercise(
    "masquerade",
    "c1 has a default route and FORWARD is ACCEPT, but 8.8.8.8 never answers. Write the rule that makes "
    "the host rewrite c1's source address as the packet leaves eth0.",
    "scenario2-gateway", (("forward-policy", "ACCEPT"),),
    (rules.MASQUERADE.args("-I"),), _masquerade)

FORWARD_RULES = Exercise(
    "forward-rules",
    "MASQUERADE is on and FORWARD is back to DROP. Write the FORWARD rules that let c1 reach 8.8.8.8 "
    "and the replies come back, without changing the policy.",
    "scenario2-gateway", (("masquerade", True),),
    (rules.FORWARD_OUT.args("-I"), rules.FORWARD_IN.args("-I")), _forward_rules)

def _publish(lab) -> Feedback:
    journey = lab.probe("outside", "172.17.9.103", port=2345)
    if journey.delivered:
        return Feedback(True, "the outside machine reaches c1's web server through 172.17.9.103:2345: "
                              f"{journey.reason}.", journey)
    if journey.outcome.result is Result.REFUSED and journey.outcome.node == "host":
        return Feedback(False, "the host answered the SYN itself with a reset: nothing rewrote the destination. "
                               "A rule in the nat table's PREROUTING chain with -j DNAT --to-destination "
                               "10.55.66.2:8000 sends it on to c1.", journey)
    dropped = journey.dropped_by
    if dropped is not None:
        which = "SYN" if dropped.kind == "request" else "answer"
        return Feedback(False, f"the {which} was {journey.reason}, going {dropped.iif} -> {dropped.oif}. "
                               f"A FORWARD rule -i {dropped.iif} -o {dropped.oif} -j ACCEPT lets it pass "
                               "(the answer needs the other way too).", journey)
    return Feedback(False, f"{journey.reason}.", journey)


def _local(lab) -> Feedback:
    journey = lab.probe("host", "172.17.9.103", port=2345)
    if journey.delivered:
        return Feedback(True, f"curl on the host now reaches c1: {journey.reason}.", journey)
    return Feedback(False, f"{journey.reason}. A connection the host opens itself never meets nat PREROUTING: "
                           "its NAT is decided in nat OUTPUT. Copy the DNAT rule there "
                           "(-t nat -A OUTPUT ...).", journey)


PUBLISH = Exercise(
    "publish",
    "Publish c1's web server (port 8000) on the host's port 2345, so that the outside machine gets the "
    "page at 172.17.9.103:2345: what `docker run -p 2345:8000` does. FORWARD stays at DROP.",
    "part4-start", (),
    (rules.DNAT.args("-A"), rules.ETH1_IN.args("-I"), rules.ETH1_OUT.args("-I")), _publish)

LOCAL_ACCESS = Exercise(
    "local-access",
    "Port 2345 is published, yet `curl 172.17.9.103:2345` run on the host itself is refused. "
    "Make it work with one rule.",
    "part4-published", (),
    (rules.OUTPUT_DNAT.args("-A"),), _local)

def _docker_user(lab) -> Feedback:
    journey = lab.probe("outside", "172.17.9.103", port=8080)
    outgoing = lab.probe("c1", "8.8.8.8")
    dropped = journey.dropped_by
    if dropped is not None and dropped.chain == "DOCKER-USER" and outgoing.delivered:
        return Feedback(True, f"the outside machine is kept away by `{dropped.command}`, and c1 still "
                              "reaches the internet.", journey)
    if not outgoing.delivered:
        return Feedback(False, f"c1 can no longer reach 8.8.8.8 ({outgoing.reason}): make the rule match the "
                               "outside machine only.", outgoing)
    if journey.delivered:
        rules = lab.run("host", "iptables -S DOCKER-USER").stdout
        if "--dport 8080" in rules:
            return Feedback(False, "your rule never matches: by the time a packet reaches FORWARD (and "
                                   "DOCKER-USER) the DNAT has already changed its port to 8000. Match the "
                                   "container's port, or the original one with -m conntrack --ctorigdstport 8080.",
                            journey)
        return Feedback(False, "the outside machine still gets the page. Add a rule to DOCKER-USER that drops "
                               "what comes from 172.17.9.10.", journey)
    return Feedback(False, f"the connection fails, but not in DOCKER-USER: {journey.reason}. Put the rule "
                           "there: Docker never touches that chain, so it survives Docker's restarts.", journey)


DOCKER_USER = Exercise(
    "docker-user",
    "Keep the outside machine (172.17.9.10) away from the published port 8080 with a rule in DOCKER-USER, "
    "the chain Docker leaves to you. c1 must still reach the internet.",
    "docker-29", (),
    ("-I DOCKER-USER -s 172.17.9.10/32 -p tcp -m conntrack --ctorigdstport 8080 -j DROP",), _docker_user)

class _Registered(Mapping):
    """Every exercise of every registered scenario (`netkit.scenarios`), by name."""

    def _all(self) -> dict:
        from .scenarios import all_exercises
        return all_exercises()

    def __getitem__(self, name: str) -> Exercise:
        return self._all()[name]

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


EXERCISES: Mapping[str, Exercise] = _Registered()
