"""The scenarios, each declared once: its stage, switches, probes, exercises and recorded cases.

Everything else is derived from this list: the switches (`netkit.switches.
SWITCHES`), the dashboard's groups and probe buttons (`netkit.dashboard`),
the exercises (`EXERCISES`), the recordings the pure tests
and the replay mode read (``tests/data/record.py``), and the benchmark's
replay (``bench/bench_probe.py``). To add a scenario, append one `Scenario`
(the README's "Adding a scenario" says how); nothing else needs an edit
unless it brings a new node, which also needs a place on the lab map.

A `Case` is one experiment with a known result: go to a stage, set some
switches (and run a few commands that are not switches), send one probe,
and expect an outcome. The recordings are made from the cases, and a live
test checks the kernel still gives each case its recorded outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from . import exercises, rules, topology
from .errors import BadArgument
from .exercises import Exercise
from .i18n import N_, _
from .outcome import Result
from .switches import Switch, policy_switch, rule_switch


@dataclass(frozen=True)
class Probe:
    """One probe an instructor sends from node `src` to address `dst`: a ping, or TCP to `port`."""

    src: str
    dst: str
    title: str = ""
    port: int | None = None

    @property
    def key(self) -> tuple:
        """How tests and scripts pick its button: (src, dst), or (src, dst, port) for TCP."""
        return (self.src, self.dst) if self.port is None else (self.src, self.dst, self.port)

    @property
    def target(self) -> str:
        return self.dst if self.port is None else f"{self.dst}:{self.port}"


@dataclass(frozen=True)
class Case:
    """One experiment with a known outcome (see the module's docstring)."""

    name: str
    stage: str
    probe: Probe
    label: str
    result: Result
    settings: tuple[tuple[str, object], ...] = ()    # (switch, value), set in this order
    commands: tuple[tuple[str, str], ...] = ()       # (node, command), run after the switches


@dataclass(frozen=True)
class Scenario:
    title: str                                       # "1 · container to container"
    notebook: str                                    # "01-container-to-container"
    stage: str                                       # where its notebook starts
    switches: tuple[Switch, ...] = ()
    probes: tuple[Probe, ...] = ()
    exercises: tuple = ()                            # netkit.exercises.Exercise
    cases: tuple[Case, ...] = ()


C1_TO_C2 = Probe("c1", "10.55.66.3", N_("scenario 1: c1 to c2"))
C1_TO_INTERNET = Probe("c1", "8.8.8.8", N_("scenario 2: c1 to the internet"))
OUTSIDE_TO_2345 = Probe("outside", "172.17.9.103", N_("scenario 3: outside to the published port 2345"), port=2345)
HOST_TO_2345 = Probe("host", "172.17.9.103", N_("the host's own curl to port 2345"), port=2345)
C2_TO_2345 = Probe("c2", "172.17.9.103", N_("hairpin: c2 to the published port"), port=2345)
OUTSIDE_TO_8080 = Probe("outside", "172.17.9.103", N_("Docker's rules: outside to the published port 8080"), port=8080)
HOST_TO_LOOPBACK_8080 = Probe("host", "127.0.0.1", N_("the host's own curl to 127.0.0.1:8080"), port=8080)
C2_TO_ETH0_8080 = Probe("c2", "10.0.2.15", N_("hairpin: c2 to the host's address, port 8080"), port=8080)

def _userland_proxy(layout_19: bool) -> dict:
    """value -> commands of `userland-proxy` for Docker 29's layout, or for 19.03/20.10's (`layout_19`): there the
    nat DOCKER chain's `-i hwchiu0 -j RETURN` goes too, and the per-container hairpin MASQUERADE, written with
    the proxy as well, stays."""
    only_19 = [rules.DOCKER19_RETURN] if layout_19 else []
    only_29 = [] if layout_19 else [rules.NOPROXY_HAIRPIN]
    return {
        False: ["pkill -x docker-proxy", "pidwait -x docker-proxy",
                rules.DOCKER_OUTPUT_JUMP.command("-D"), rules.NOPROXY_OUTPUT_JUMP.command("-A"),
                *[rule.command("-D") for rule in only_19],
                rules.DOCKER_DNAT.command("-D"), rules.NOPROXY_DNAT.command("-A"),
                rules.NOPROXY_LOCAL_MASQUERADE.command("-I"), *[rule.command("-A") for rule in only_29],
                "sysctl -w net.ipv4.conf.hwchiu0.route_localnet=1"],
        True: [*[rule.command("-D") for rule in only_29], rules.NOPROXY_LOCAL_MASQUERADE.command("-D"),
               rules.NOPROXY_DNAT.command("-D"), *[rule.command("-A") for rule in only_19],
               rules.DOCKER_DNAT.command("-A"),
               rules.NOPROXY_OUTPUT_JUMP.command("-D"), rules.DOCKER_OUTPUT_JUMP.command("-A"),
               "sysctl -w net.ipv4.conf.hwchiu0.route_localnet=0", *topology.proxy_steps()],
    }


# `dockerd --userland-proxy=false` and back, on the Docker stages: the proxies stop (or start) and Docker's nat
# rules change to let the kernel do their work (rules.NOPROXY_*), as Docker 29 writes them (moby's noproxy
# listing) and as Engine 20.10.24 wrote them on the 19.03 layout (tests/data/docker-20.10/). On a real host this
# is a setting of dockerd and a restart; in the lab it is the commands that make the same difference. The switch
# reads as on while the proxy's forms of the two nat rules are in place.
USERLAND_PROXY = Switch(
    "userland-proxy", N_("docker-proxy (userland-proxy)"), (True, False), "host", _userland_proxy(layout_19=False),
    rules=(rules.DOCKER_OUTPUT_JUMP, rules.DOCKER_DNAT), stages=("docker-29", "docker-19"),
    at=(("docker-19", _userland_proxy(layout_19=True)),))

# `--icc=false` as Docker 29 writes it (moby's usernet-portmap-noicc listing at docker-v29.0.0): the bridge's
# outgoing ACCEPT gives way to a DROP of bridge-to-bridge traffic and an ACCEPT of the rest, both at the end of
# DOCKER-FORWARD.
ICC_FALSE = Switch(
    "icc-false", N_("--icc=false"), (True, False), "host",
    {True: [rules.DOCKER_OUTBOUND.command("-D"), rules.DOCKER_ICC.command("-A"), rules.DOCKER_ICC_OUTBOUND.command("-A")],
     False: [rules.DOCKER_ICC.command("-D"), rules.DOCKER_ICC_OUTBOUND.command("-D"), rules.DOCKER_OUTBOUND.command("-A")]},
    rules=(rules.DOCKER_ICC, rules.DOCKER_ICC_OUTBOUND), stages=("docker-29",))

HAIRPIN_READY = (("c2", "ip route add default via 10.55.66.1"),
                 ("host", rules.BRIDGED_ACCEPT.command("-I")))

SCENARIOS: list[Scenario] = [
    Scenario(
        N_("1 · container to container"), "01-container-to-container", "part3-start",
        switches=(
            Switch("bridge-nf-call-iptables", N_("bridge-nf-call-iptables"), (1, 0), "host",
                   {1: ["sysctl -w net.bridge.bridge-nf-call-iptables=1"],
                    0: ["sysctl -w net.bridge.bridge-nf-call-iptables=0"]},
                   read="cat /proc/sys/net/bridge/bridge-nf-call-iptables", parse="output"),
            policy_switch("forward-policy", N_("FORWARD policy"), "FORWARD"),
        ),
        probes=(C1_TO_C2,),
        exercises=(exercises.ICMP_ONLY,),
        cases=(
            Case("s1-forward-drop", "part3-start", C1_TO_C2, N_("bridge-nf-call-iptables=1"), Result.DROPPED),
            Case("s1-nf-call-0", "part3-start", C1_TO_C2, N_("bridge-nf-call-iptables=0"), Result.DELIVERED,
                 settings=(("bridge-nf-call-iptables", 0),)),
            Case("s1-forward-accept", "part3-start", C1_TO_C2, N_("FORWARD ACCEPT"), Result.DELIVERED,
                 settings=(("forward-policy", "ACCEPT"),)),
        ),
    ),
    Scenario(
        N_("2 · container to the internet"), "02-container-to-internet", "part3-start",
        switches=(
            Switch("bridge-address", N_("hwchiu0 has 10.55.66.1"), (True, False), "host",
                   {True: ["ip addr add 10.55.66.1/24 dev hwchiu0"], False: ["ip addr del 10.55.66.1/24 dev hwchiu0"]},
                   read="ip -4 addr show dev hwchiu0 | grep -q 'inet 10.55.66.1/24'"),
            Switch("default-route", N_("c1 default route"), (True, False), "c1",
                   {True: ["ip route add default via 10.55.66.1"], False: ["ip route del default via 10.55.66.1"]},
                   read="ip route show default | grep -q 'via 10.55.66.1'"),
            rule_switch("masquerade", N_("MASQUERADE"), (rules.MASQUERADE,)),
            rule_switch("forward-rules", N_("FORWARD accepts"), (rules.FORWARD_OUT, rules.FORWARD_IN)),
        ),
        probes=(C1_TO_INTERNET,),
        exercises=(exercises.C2_OUT, exercises.REPLIES_ONLY),
        cases=(
            Case("s2-no-route", "part3-start", C1_TO_INTERNET, N_("no default route"), Result.NO_ROUTE),
            Case("s2-no-masquerade", "scenario2-gateway", C1_TO_INTERNET, N_("no MASQUERADE"), Result.NO_ROUTE_BACK,
                 settings=(("forward-policy", "ACCEPT"),)),
            Case("s2-masquerade", "scenario2-gateway", C1_TO_INTERNET, N_("MASQUERADE"), Result.DELIVERED,
                 settings=(("forward-policy", "ACCEPT"), ("masquerade", True))),
            Case("s2-forward-drop", "scenario2-gateway", C1_TO_INTERNET, N_("FORWARD DROP"), Result.DROPPED,
                 settings=(("masquerade", True),)),
            Case("s2-forward-rules", "part3-end", C1_TO_INTERNET, N_("FORWARD accepts"), Result.DELIVERED),
        ),
    ),
    Scenario(
        N_("3 · the outside to a container"), "03-outside-to-container", "part4-start",
        switches=(
            rule_switch("dnat", N_("DNAT :2345 → c1:8000"), (rules.DNAT,), verb="-A"),
            rule_switch("eth1-forward-rules", N_("FORWARD eth1 ⇄ hwchiu0"), (rules.ETH1_IN, rules.ETH1_OUT)),
            rule_switch("output-dnat", N_("nat OUTPUT DNAT"), (rules.OUTPUT_DNAT,), verb="-A"),
            rule_switch("hairpin-masquerade", N_("hairpin MASQUERADE"), (rules.HAIRPIN,)),
        ),
        probes=(OUTSIDE_TO_2345,),
        exercises=(exercises.PUBLISH_C2, exercises.LOCAL_ACCESS),
        cases=(
            Case("p4-dnat", "part4-published", OUTSIDE_TO_2345, N_("from outside"), Result.DELIVERED),
            Case("p4-no-dnat", "part4-start", OUTSIDE_TO_2345, N_("no DNAT"), Result.REFUSED),
            Case("p4-local-refused", "part4-published", HOST_TO_2345, N_("from the host"), Result.REFUSED),
            Case("p4-local-output", "part4-published", HOST_TO_2345, N_("nat OUTPUT rule"), Result.DELIVERED,
                 settings=(("output-dnat", True),)),
            Case("p4-hairpin-br-netfilter", "part4-published", C2_TO_2345, N_("bridge-nf-call-iptables=1"),
                 Result.DELIVERED, commands=HAIRPIN_READY),
            Case("p4-hairpin-broken", "part4-published", C2_TO_2345, N_("bridge-nf-call-iptables=0"),
                 Result.WRONG_SOURCE, settings=(("bridge-nf-call-iptables", 0),), commands=HAIRPIN_READY),
            Case("p4-hairpin-masquerade", "part4-published", C2_TO_2345, N_("hairpin MASQUERADE"), Result.DELIVERED,
                 settings=(("bridge-nf-call-iptables", 0), ("hairpin-masquerade", True)), commands=HAIRPIN_READY),
        ),
    ),
    Scenario(
        N_("4 · what Docker writes"), "04-what-docker-writes", "docker-29",
        switches=(
            rule_switch("docker-ct", N_("DOCKER-CT (replies)"), (rules.DOCKER_CT,), verb="-A"),
            rule_switch("docker-outbound", N_("DOCKER-FORWARD -i hwchiu0"), (rules.DOCKER_OUTBOUND,), verb="-A"),
            rule_switch("docker-published", N_("DOCKER: published port"), (rules.DOCKER_PUBLISHED,)),
            rule_switch("docker-raw-guard", N_("raw guard for c1"), (rules.DOCKER_RAW_GUARD,), verb="-A"),
            ICC_FALSE,
            USERLAND_PROXY,
        ),
        probes=(OUTSIDE_TO_8080, C2_TO_ETH0_8080),
        exercises=(exercises.DOCKER_USER,),
        cases=(
            Case("d29-published", "docker-29", OUTSIDE_TO_8080, N_("Docker 29: -p 8080:80"), Result.DELIVERED),
            Case("d29-proxy-local", "docker-29", HOST_TO_LOOPBACK_8080, N_("docker-proxy"), Result.DELIVERED),
            Case("d29-proxy-hairpin", "docker-29", C2_TO_ETH0_8080, N_("docker-proxy"), Result.DELIVERED),
            Case("d29-noproxy-local", "docker-29", HOST_TO_LOOPBACK_8080, N_("--userland-proxy=false"),
                 Result.DELIVERED, settings=(("userland-proxy", False),)),
            Case("d29-noproxy-hairpin", "docker-29", C2_TO_ETH0_8080, N_("--userland-proxy=false"),
                 Result.DELIVERED, settings=(("userland-proxy", False),)),
        ),
    ),
]


# -- what is derived ---------------------------------------------------------------------------
def switches() -> dict[str, Switch]:
    return {sw.name: sw for scenario in SCENARIOS for sw in scenario.switches}


def groups() -> dict[str, list[str]]:
    """Each scenario's title and the names of its switches (the dashboard's groups)."""
    return {scenario.title: [sw.name for sw in scenario.switches] for scenario in SCENARIOS if scenario.switches}


def probes() -> list[Probe]:
    return [probe for scenario in SCENARIOS for probe in scenario.probes]


def all_exercises() -> dict:
    return {ex.name: ex for scenario in SCENARIOS for ex in scenario.exercises}


def cases() -> list[Case]:
    return [case for scenario in SCENARIOS for case in scenario.cases]


class _Registry(Mapping):
    """Every item of every registered scenario, by name, read afresh at each use (a scenario registered later,
    with `registered`, is in it at once)."""

    def __init__(self, gather: Callable[[], dict]) -> None:
        self._gather = gather

    def __getitem__(self, name: str):
        return self._gather()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._gather())

    def __len__(self) -> int:
        return len(self._gather())


SWITCHES: Mapping[str, Switch] = _Registry(switches)
EXERCISES: Mapping[str, Exercise] = _Registry(all_exercises)


def switch(name: str) -> Switch:
    """The registered switch called `name`; BadArgument naming every switch if there is none."""
    try:
        return SWITCHES[name]
    except (KeyError, TypeError):
        raise BadArgument(_("no switch {name!r}; switches are: {items}")
                          .format(name=name, items=', '.join(SWITCHES)), switch=str(name)) from None


@contextmanager
def registered(scenario: Scenario):
    """Add `scenario` for the length of a `with` block (tests, and trying a scenario out in a notebook)."""
    SCENARIOS.append(scenario)
    try:
        yield scenario
    finally:
        SCENARIOS.remove(scenario)


def prepare(lab, case: Case) -> None:
    """Bring `lab` to `case`: a fresh host at its stage, its switches set and its commands run."""
    lab.reset(case.stage)
    for name, value in case.settings:
        lab.set(name, value)
    for node, command in case.commands:
        lab.run(node, command, check=True)


def run_case(lab, case: Case):
    """`prepare` the lab for `case`, send its probe, and return the Journey."""
    prepare(lab, case)
    return lab.probe(case.probe.src, case.probe.dst, port=case.probe.port, label=case.label)
