"""Exercises: a task the notebook did not just show, hints the student asks for, and a check that probes.

A check never compares strings: it sends probes and reads their outcomes
(`netkit.outcome`), so any correct answer passes (``-A`` or ``-I``, by
interface or by address). It also sends a *canary*, a probe that must stay
dropped, and reads the switches the task says to leave alone, so that a
rule which only works by opening everything (an ACCEPT with no match, the
policy changed through a rule, the sysctl turned off) is refused, with why.

Hints come one at a time, when asked for (``exercise.hint(lab)``), from least
to most: what the probe sees now, which chain to look at, the shape of the
rule, and last the answer. The first never contains a rule.

    ex = EXERCISES["icmp-only"]
    ex.prepare(lab)          # the lab as the task starts
    ex                       # the task
    lab.iptables("...")      # the student's attempt
    ex.check(lab)            # Right, or Not yet and what the probes saw
    ex.hint(lab)             # the next hint
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from . import progress, provenance
from .i18n import N_, _, translated
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
        if self.ok:
            return _("RIGHT: {message}").format(message=self.message)
        return _("NOT YET: {message}").format(message=self.message)

    def _repr_html_(self) -> str:
        color, word = ("#009E73", _("Right.")) if self.ok else ("#D62728", _("Not yet."))
        return (f'<div style="border-left:6px solid {color};padding:6px 12px;font-size:14px">'
                f'<b style="color:{color}">{html.escape(word)}</b> {html.escape(self.message)}</div>')


@dataclass(frozen=True)
class Hint:
    level: int
    of: int
    text: str
    recorded: str = ""     # set when the hint describes a replayed probe (netkit.replay): then it says so

    def __str__(self) -> str:
        said = _("Hint {level} of {of}: {text}").format(level=self.level, of=self.of, text=self.text)
        return f"{said}\n{provenance.line(self.recorded)}" if self.recorded else said

    __repr__ = __str__

    def _repr_html_(self) -> str:
        body = html.escape(self.text).replace("\n", "<br>")
        if self.level == self.of:
            body = f"<pre style='margin:4px 0'>{html.escape(self.text)}</pre>"
        label = provenance.html_label(self.recorded) if self.recorded else ""
        return (f'<div style="border-left:6px solid #0072B2;padding:6px 12px;font-size:14px">{label}'
                f'<b style="color:#0072B2">{html.escape(_("Hint {level} of {of}.").format(level=self.level, of=self.of))}'
                f'</b> {body}</div>')


@dataclass(frozen=True)
class Step:
    """One command of a set-up or of a model answer, as a person types it, in a node."""

    node: str
    command: str

    def apply(self, lab) -> None:
        if self.command.startswith("iptables "):
            lab.iptables(self.command[len("iptables "):], node=self.node)
        elif self.command.endswith("&"):
            lab.start(self.node, self.command[:-1].strip(), port=8000)
        else:
            lab.change(self.node, self.command)

    def __str__(self) -> str:
        return self.command if self.node == "host" else _("(in {node}) {command}").format(node=self.node,
                                                                                           command=self.command)


def what_the_probe_saw(journey: Journey) -> str:
    """The probe's outcome in words, naming where and by what kind of decision it stopped, never a rule."""
    o = journey.outcome
    target = f"{journey.dst}:{journey.dport}" if journey.dport else journey.dst
    head = f"{journey.src} → {target}"
    if o.result is Result.DELIVERED:
        return _("{head} gets its answer.").format(head=head)
    if o.result is Result.DROPPED:
        v = o.verdict
        way = (_(", going in {iif} and out {oif}").format(iif=v.iif or "?", oif=v.oif or "?")
               if v.iif or v.oif else "")
        packet = _("request") if o.packet == "request" else _("reply")
        if v.rule == "policy":
            said = _("{head}: the {packet} is dropped in the host, in the {table} table's {chain} chain, "
                     "by the chain's policy{way}. It was last seen at {point}.")
        else:
            said = _("{head}: the {packet} is dropped in the host, in the {table} table's {chain} chain, "
                     "by a rule{way}. It was last seen at {point}.")
        return said.format(head=head, packet=packet, table=v.table, chain=v.chain, way=way, point=o.last)
    if o.result in (Result.NO_ROUTE, Result.SEND_ERROR):
        return _("{head}: {src} cannot send it at all ({error}): look at {src}'s routing table.").format(
            head=head, src=journey.src, error=o.error)
    if o.result is Result.NO_ROUTE_BACK:
        seen = journey.hop(o.next).request if o.next else None
        return _("{head}: {dst} gets the request but has no way back to the source address it carries "
                 "({address}).").format(head=head, dst=journey.dst, address=seen.src if seen else "?")
    if o.result is Result.REFUSED:
        if o.node == "host":
            return _("{head}: the host itself answers with a reset: nothing there takes the connection.").format(
                head=head)
        return _("{head}: {who} answers with a reset: nothing there takes the connection.").format(
            head=head, who=o.answered_by)
    if o.result is Result.WRONG_SOURCE:
        return _("{head}: the answer comes back from {sender}, an address {src} never called.").format(
            head=head, sender=o.answered_by, src=journey.src)
    return _("{head}: no answer; the request was last seen at {point}.").format(head=head,
                                                                              point=o.last or journey.src)


class Exercise:
    """One exercise: its task, where it starts, its check, its hints and a model answer."""

    def __init__(self, name: str, title: str, task: str, stage: str, checker, *, probe: tuple,
                 setup: tuple[tuple[str, object], ...] = (), steps: tuple[Step, ...] = (),
                 solution: tuple[Step, ...] = (), where: str = "", shape: str = "") -> None:
        # title, task, where and shape are English marked with N_ (netkit.i18n), shown through `translated`.
        self.name, self.title, self.task, self.stage = name, title, task, stage
        self.checker = checker
        self.probe = probe              # (src, dst) or (src, dst, port): what hint 1 looks at
        self.setup, self.steps, self.solution = setup, steps, solution
        self.hints = (where, shape)
        self._given = 0

    def __repr__(self) -> str:
        return f"<Exercise {self.name}: {translated(self.title)}>"

    def _repr_html_(self) -> str:
        title = _("Exercise: {title}").format(title=translated(self.title))
        how = html.escape(_("Check with {check}; ask for a hint with {hint} (four, from gentle to the answer)."))
        how = how.format(check=f"<code>{self.name_in_code}.check(lab)</code>",
                         hint=f"<code>{self.name_in_code}.hint(lab)</code>")
        return (f'<div style="border-left:6px solid #E69F00;padding:6px 12px;font-size:14px">'
                f'<b>{html.escape(title)}</b><br>{html.escape(translated(self.task))}<br>'
                f'<span style="color:#555">{how}</span></div>')

    @property
    def name_in_code(self) -> str:
        return self.name.upper().replace("-", "_")

    def prepare(self, lab) -> None:
        """Put the lab where the exercise starts (its stage, switches and set-up steps); hints start over."""
        lab.reset(self.stage)
        for name, value in self.setup:
            lab.set(name, value)
        for step in self.steps:
            step.apply(lab)
        self._given = 0

    def check(self, lab) -> Feedback:
        if getattr(lab, "replayed", False):   # a replay checks nothing: it says so, shows the model answer
            return lab.recorded_check(self)
        feedback = self.checker(lab)
        progress.record(self.name, feedback.ok)   # for a class's progress board (see netkit.progress)
        if hasattr(lab, "note_check"):            # a recording keeps the answer (netkit.recorder)
            lab.note_check(self, feedback)
        return feedback

    def hint(self, lab) -> Hint:
        """The next hint: what the probe sees now, which chain, the rule's shape, then the answer."""
        self._given = min(self._given + 1, 4)
        if self._given == 1:
            src, dst, *port = self.probe
            journey = lab.probe(src, dst, port=port[0] if port else None)
            text = _("What the probe sees now: {saw}").format(saw=what_the_probe_saw(journey))
            return Hint(1, 4, text, recorded=getattr(journey, "recorded", "") or "")
        elif self._given == 4:
            text = _("The answer (one way of several):") + "\n" + self.show_solution()
        else:
            text = translated(self.hints[self._given - 2])
        return Hint(self._given, 4, text)

    def solve(self, lab) -> None:
        for step in self.solution:
            step.apply(lab)

    def show_solution(self) -> str:
        lines = []
        for step in self.solution:
            if step.command.startswith("iptables ") and step.node == "host":
                lines.append(f'lab.iptables("{step.command[len("iptables "):]}")')
            else:
                lines.append(f'lab.change("{step.node}", "{step.command}")')
        return "\n".join(lines)


# -- checks ------------------------------------------------------------------------------------
def _kept(lab, **wanted) -> Feedback | None:
    """A refusal if a switch the task says to leave alone was changed."""
    words = {"forward-policy": N_("the FORWARD policy"),
             "bridge-nf-call-iptables": "bridge-nf-call-iptables"}
    for name, value in wanted.items():
        name = name.replace("_", "-")
        if lab.get(name) != value:
            return Feedback(False, _("{what} must stay at {value}: the task is to let exactly this traffic "
                                     "through with a rule, the way Docker does, not to switch the filter off. Put it "
                                     "back (lab.set(...) or the command that sets it) and try again.").format(
                                         what=translated(words[name]), value=value))
    return None


def _too_open(canary: Journey, what: str) -> Feedback:
    target = f"{canary.dst}:{canary.dport}" if canary.dport else canary.dst
    return Feedback(False, _("your rule lets more through than the task asks: {what} got through too "
                             "({src} → {target}). A rule with no match (or one that matches everything) is the DROP "
                             "policy switched off in disguise. Narrow it down: which packets, which way, which "
                             "protocol?").format(what=what, src=canary.src, target=target), canary)


def _containers_apart(lab) -> Feedback | None:
    """A refusal if a TCP connection from c1 to c2 gets through: the tasks that open one way keep that shut."""
    canary = lab.probe("c1", "10.55.66.3", port=8000, timeout=0.5)
    if canary.outcome.result is not Result.DROPPED:
        return _too_open(canary, _("a TCP connection from c1 to c2"))
    return None


def _stuck(journey: Journey) -> Feedback:
    """Not yet: what the probe saw, and that a hint is there."""
    return Feedback(False, _("{saw} Ask for a hint if you are stuck.").format(saw=what_the_probe_saw(journey)),
                    journey)


def _check_icmp_only(lab) -> Feedback:
    refused = _kept(lab, forward_policy="DROP", bridge_nf_call_iptables=1)
    if refused is not None:
        return refused
    ping = lab.probe("c1", "10.55.66.3")
    back = lab.probe("c2", "10.55.66.2")
    refused = _containers_apart(lab)
    if refused is not None:
        return refused
    if not ping.delivered:
        return _stuck(ping)
    if not back.delivered:
        return Feedback(False, _("c1 reaches c2, but {saw} The task asks for both ways.").format(
            saw=what_the_probe_saw(back)), back)
    return Feedback(True, _("c1 and c2 ping each other, and a TCP connection between them is still dropped by "
                            "FORWARD's policy: exactly ICMP gets through."), ping)


def _check_c2_out(lab) -> Feedback:
    refused = _kept(lab, forward_policy="DROP")
    if refused is not None:
        return refused
    refused = _containers_apart(lab)
    if refused is not None:
        return refused
    journey = lab.probe("c2", "8.8.8.8")
    if journey.delivered and lab.probe("c1", "8.8.8.8").delivered:
        source = next((r.after for r in journey.outcome.rewrites if r.packet == "request" and r.field == "src"),
                      None)
        return Feedback(True, _("c2 reaches 8.8.8.8, leaving eth0 as {source}, and c1 still does.").format(
            source=source), journey)
    if journey.delivered:
        return Feedback(False, _("c2 gets through now, but c1 no longer does: keep what c1 had."), journey)
    return _stuck(journey)


def _check_replies_only(lab) -> Feedback:
    refused = _kept(lab, forward_policy="DROP")
    if refused is not None:
        return refused
    out = lab.probe("c1", "8.8.8.8")
    canary = lab.probe("internet", "10.55.66.2")                     # a new connection from outside: dropped
    if canary.outcome.result is not Result.DROPPED:
        return Feedback(False, _("a new ping from the internet straight to c1 still gets through (internet → "
                                 "10.55.66.2, delivered): something in FORWARD lets in more than replies. Ask for a "
                                 "hint if you are stuck."), canary)
    if not out.delivered:
        return Feedback(False, _("nothing from the internet reaches c1 any more, but neither do the replies: {saw}")
                        .format(saw=what_the_probe_saw(out)), out)
    return Feedback(True, _("c1's ping to 8.8.8.8 gets its reply, and a ping the internet starts towards c1 is "
                            "dropped: only replies come in."), out)


def _check_publish_c2(lab) -> Feedback:
    refused = _kept(lab, forward_policy="DROP")
    if refused is not None:
        return refused
    refused = _containers_apart(lab)
    if refused is not None:
        return refused
    journey = lab.probe("outside", "172.17.9.103", port=3456)
    to_c1 = lab.probe("outside", "172.17.9.103", port=2345)
    moved = next((e for e in journey.conntrack if e.dnat), None)
    if journey.delivered and moved is not None and moved.reply[0] == "10.55.66.3" and to_c1.delivered:
        return Feedback(True, _("172.17.9.103:3456 leads to c2's server ({server}), and 2345 still leads to c1.")
                        .format(server=moved.where("reply", 0)), journey)
    if journey.delivered and moved is not None and moved.reply[0] != "10.55.66.3":
        return Feedback(False, _("port 3456 leads to {server}, not to c2's server.").format(
            server=moved.where("reply", 0)), journey)
    if not to_c1.delivered:
        return Feedback(False, _("port 2345 no longer reaches c1: leave the article's rule as it was."), to_c1)
    return _stuck(journey)


def _check_local_access(lab) -> Feedback:
    other = lab.probe("host", "172.17.9.103", port=2345)              # another port: not c2's business
    if any(e.dnat and e.reply[0] == "10.55.66.3" for e in other.conntrack):
        return Feedback(False, _("your rule sends more than port 3456 to c2: the host's connection to port 2345 "
                                 "went to c2 too. Match only the published port."), other)
    journey = lab.probe("host", "172.17.9.103", port=3456)
    moved = next((e for e in journey.conntrack if e.dnat), None)
    if journey.delivered and moved is not None and moved.reply[0] == "10.55.66.3":
        return Feedback(True, _("the host's own connection to 172.17.9.103:3456 now reaches c2 ({server}).")
                        .format(server=moved.where("reply", 0)), journey)
    return _stuck(journey)


def _check_docker_user(lab) -> Feedback:
    journey = lab.probe("outside", "172.17.9.103", port=8080)
    outgoing = lab.probe("c1", "8.8.8.8")
    web = lab.probe("c1", "8.8.8.8", port=80)                          # c1's own TCP: must not be dropped
    if outgoing.delivered and web.outcome.result is Result.DROPPED:
        return Feedback(False, _("your rule also drops c1's own TCP connections to the internet ({saw}): make it "
                                 "match the outside machine's traffic only.").format(saw=what_the_probe_saw(web)),
                        web)
    dropped = journey.dropped_by
    if dropped is not None and dropped.chain == "DOCKER-USER" and outgoing.delivered:
        return Feedback(True, _("the outside machine is kept away by `{rule}`, and c1 still reaches the internet.")
                        .format(rule=dropped.command), journey)
    if not outgoing.delivered:
        return Feedback(False, _("c1 can no longer reach 8.8.8.8 ({saw}): the rule matches more than the outside "
                                 "machine's connection.").format(saw=what_the_probe_saw(outgoing)), outgoing)
    if journey.delivered:
        return Feedback(False, _("the outside machine still gets the page: no rule in DOCKER-USER matched its "
                                 "packets as they look when they get there. Ask for a hint if you are stuck."),
                        journey)
    return Feedback(False, _("the connection fails, but not in DOCKER-USER: {saw} Put the rule in DOCKER-USER: "
                             "Docker never touches that chain.").format(saw=what_the_probe_saw(journey)), journey)


# -- the exercises -----------------------------------------------------------------------------
ICMP_ONLY = Exercise(
    "icmp-only", N_("only ICMP between c1 and c2"),
    N_("Keep the FORWARD policy at DROP and bridge-nf-call-iptables at 1. Let c1 and c2 ping each other, both "
       "ways, and nothing else: a TCP connection from c1 to c2 must still be dropped."),
    "part3-start", _check_icmp_only, probe=("c1", "10.55.66.3"),
    solution=(Step("host", "iptables -I FORWARD -i hwchiu0 -o hwchiu0 -p icmp -j ACCEPT"),),
    where=N_("A rule in the filter table's FORWARD chain, met before the policy (insert it at the top with -I). "
             "Look again at the interfaces the drop names: that is how a bridged frame looks to FORWARD."),
    shape=N_("iptables -I FORWARD -i <bridge> -o <bridge> -p <protocol> -j <target>"))

C2_OUT = Exercise(
    "c2-out", N_("c2 to the internet too"),
    N_("c1 reaches 8.8.8.8. Let c2 reach it too, with FORWARD still at DROP. (c2 has no default route yet, and "
       "the host does nothing for c2's packets on the way out.)"),
    "part3-end", _check_c2_out, probe=("c2", "8.8.8.8"),
    solution=(Step("c2", "ip route add default via 10.55.66.1"),
              Step("host", "iptables -t nat -I POSTROUTING -s 10.55.66.3/32 -o eth0 -j MASQUERADE")),
    where=N_("Two things c1 got in this notebook and c2 did not: a line in c2's own routing table, and a rule in "
             "the nat table's POSTROUTING chain, where the host rewrites what leaves eth0."),
    shape=N_("in c2: ip route add default via <gateway>\non the host: iptables -t nat -I POSTROUTING -s <c2> "
             "-o <uplink> -j <source NAT target>"))

REPLIES_ONLY = Exercise(
    "replies-only", N_("let only replies in"),
    N_("The internet now knows the way to 10.55.66.0/24 (through the host), and the article's rule "
       "`-i eth0 -o hwchiu0 -j ACCEPT` lets it open connections to the containers. Replace that rule with one "
       "that lets in only the replies to what the containers sent. c1 must still reach 8.8.8.8; FORWARD stays "
       "at DROP."),
    "part3-end", _check_replies_only, probe=("internet", "10.55.66.2"),
    steps=(Step("internet", "ip route add 10.55.66.0/24 via 10.0.2.15"),),
    solution=(Step("host", "iptables -D FORWARD -i eth0 -o hwchiu0 -j ACCEPT"),
              Step("host", "iptables -I FORWARD -i eth0 -o hwchiu0 -m conntrack --ctstate RELATED,ESTABLISHED "
                           "-j ACCEPT")),
    where=N_("Still FORWARD, the direction eth0 → hwchiu0. What tells a reply from a new connection is conntrack: "
             "it remembers what c1 sent, and iptables can ask it about a packet's state (the conntrack match)."),
    shape=N_("iptables -D FORWARD <the article's rule>\niptables -I FORWARD -i <uplink> -o <bridge> -m conntrack "
             "--ctstate <states of a reply> -j ACCEPT"))

PUBLISH_C2 = Exercise(
    "publish-c2", N_("publish c2's server on port 3456"),
    N_("c2 now serves a page on its port 8000 too. Publish it on the host's port 3456, so that the outside "
       "machine reaches c2 at 172.17.9.103:3456, while 2345 still leads to c1. FORWARD stays at DROP."),
    "part4-published", _check_publish_c2, probe=("outside", "172.17.9.103", 3456),
    steps=(Step("c2", "ip route replace default via 10.55.66.1"), Step("c2", "python3 -m http.server 8000 &")),
    solution=(Step("host", "iptables -t nat -A PREROUTING -p tcp -m tcp --dport 3456 -j DNAT "
                           "--to-destination 10.55.66.3:8000"),),
    where=N_("The nat table's PREROUTING chain, where the destination of what arrives is decided before routing. "
             "The FORWARD rules for eth1 already accept traffic to the bridge, whichever container it is for."),
    shape=N_("iptables -t nat -A PREROUTING -p tcp -m tcp --dport <published port> -j DNAT --to-destination "
             "<container>:<its port>"))

LOCAL_ACCESS = Exercise(
    "local-access", N_("the host's own curl to c2"),
    N_("Port 3456 is published to c2's server now, yet `curl 172.17.9.103:3456` run on the host itself is "
       "refused. Make it reach c2."),
    "part4-published", _check_local_access, probe=("host", "172.17.9.103", 3456),
    steps=(Step("c2", "ip route replace default via 10.55.66.1"), Step("c2", "python3 -m http.server 8000 &"),
           Step("host", "iptables -t nat -A PREROUTING -p tcp -m tcp --dport 3456 -j DNAT "
                        "--to-destination 10.55.66.3:8000")),
    solution=(Step("host", "iptables -t nat -A OUTPUT -p tcp -m tcp --dport 3456 -j DNAT "
                           "--to-destination 10.55.66.3:8000"),),
    where=N_("A connection the host opens itself never passes nat PREROUTING first: its destination NAT is bound "
             "in nat OUTPUT, the chain for the host's own packets."),
    shape=N_("iptables -t nat -A OUTPUT -p tcp -m tcp --dport <port> -j DNAT --to-destination <container>:<port>"))

DOCKER_USER = Exercise(
    "docker-user", N_("a rule of your own in DOCKER-USER"),
    N_("Keep the outside machine (172.17.9.10) away from the published port 8080 with a rule in DOCKER-USER, "
       "the chain Docker leaves to you. c1 must still reach the internet."),
    "docker-29", _check_docker_user, probe=("outside", "172.17.9.103", 8080),
    solution=(Step("host", "iptables -I DOCKER-USER -s 172.17.9.10/32 -p tcp -m conntrack --ctorigdstport 8080 "
                           "-j DROP"),),
    where=N_("DOCKER-USER, in the filter table: FORWARD jumps there first. Remember what a packet looks like by "
             "the time it reaches FORWARD: nat PREROUTING has already rewritten its destination."),
    shape=N_("iptables -I DOCKER-USER -s <the outside machine> -p tcp <a match on the port as it is now, or on "
             "the port the client asked for (-m conntrack --ctorigdstport)> -j DROP"))
