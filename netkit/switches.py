"""The switches an instructor flips: each is a step of the article, read back from the kernel.

A switch knows the command a person types to turn it each way, and the
command that reads its real state. Nothing is cached: `read` asks the lab's
kernel every time, so a change made from a terminal (`netkit exec host --
iptables -P FORWARD ACCEPT`) shows up too.

    bridge-nf-call-iptables   0 | 1         sysctl in the host
    forward-policy            ACCEPT | DROP the filter FORWARD policy
    bridge-address            on | off      10.55.66.1/24 on hwchiu0
    default-route             on | off      c1's default route via 10.55.66.1
    masquerade                on | off      nat POSTROUTING MASQUERADE for 10.55.66.2 out of eth0
    forward-rules             on | off      the two FORWARD accepts between hwchiu0 and eth0
    dnat                      on | off      nat PREROUTING: the host's port 2345 to c1:8000 (part 4)
    eth1-forward-rules        on | off      the two FORWARD accepts between eth1 and hwchiu0 (part 4)
    output-dnat               on | off      nat OUTPUT: the same DNAT for the host's own connections
    hairpin-masquerade        on | off      MASQUERADE for containers reaching c1 through the host
    docker-ct                 on | off      Docker 29: DOCKER-CT accepts replies towards hwchiu0
    docker-outbound           on | off      Docker 29: DOCKER-FORWARD accepts what comes from hwchiu0
    docker-published          on | off      Docker 29: DOCKER accepts the published port of c1
    docker-raw-guard          on | off      Docker 29: raw PREROUTING drops what is sent straight to c1
    icc-false                 on | off      Docker's --icc=false: no traffic between containers
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadArgument, NetkitError

MASQUERADE_RULE = "POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"
FORWARD_RULES = ("FORWARD -i hwchiu0 -o eth0 -j ACCEPT", "FORWARD -i eth0 -o hwchiu0 -j ACCEPT")
DNAT_RULE = "PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000"
OUTPUT_DNAT_RULE = "OUTPUT -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000"
ETH1_FORWARD_RULES = ("FORWARD -i eth1 -o hwchiu0 -j ACCEPT", "FORWARD -i hwchiu0 -o eth1 -j ACCEPT")
HAIRPIN_RULE = "POSTROUTING -s 10.55.66.0/24 -d 10.55.66.2/32 -p tcp -m tcp --dport 8000 -j MASQUERADE"


def _rule_switch(name: str, title: str, table: str, rules: tuple[str, ...], add: str = "-I") -> "Switch":
    read = " && ".join(f"iptables -t {table} -C {rule} 2>/dev/null" for rule in rules)
    return Switch(name, title, (True, False), "host", read,
                  {True: [f"iptables -t {table} {add} {rule}" for rule in rules],
                   False: [f"iptables -t {table} -D {rule}" for rule in rules]})


@dataclass(frozen=True)
class Switch:
    """One step of the article that can be turned either way."""

    name: str
    title: str
    values: tuple
    node: str
    read: str                     # a command whose exit code (or output) gives the state
    commands: dict                # value -> the commands that set it, in order
    parse: str = "exit"           # "exit": exit 0 means values[0]; "output": the output is the value

    def value_from(self, returncode: int, stdout: str):
        if self.parse == "exit":
            return self.values[0] if returncode == 0 else self.values[1]
        text = stdout.strip()
        for value in self.values:
            if str(value) == text:
                return value
        raise NetkitError(f"could not read the switch {self.name!r}: {self.read!r} said {text!r}")


SWITCHES: dict[str, Switch] = {s.name: s for s in (
    Switch("bridge-nf-call-iptables", "bridge-nf-call-iptables", (1, 0), "host",
           "cat /proc/sys/net/bridge/bridge-nf-call-iptables",
           {1: ["sysctl -w net.bridge.bridge-nf-call-iptables=1"],
            0: ["sysctl -w net.bridge.bridge-nf-call-iptables=0"]}, parse="output"),
    Switch("forward-policy", "FORWARD policy", ("DROP", "ACCEPT"), "host",
           "iptables -S FORWARD | sed -n 's/^-P FORWARD //p'",
           {"DROP": ["iptables -P FORWARD DROP"], "ACCEPT": ["iptables -P FORWARD ACCEPT"]}, parse="output"),
    Switch("bridge-address", "hwchiu0 has 10.55.66.1", (True, False), "host",
           "ip -4 addr show dev hwchiu0 | grep -q 'inet 10.55.66.1/24'",
           {True: ["ip addr add 10.55.66.1/24 dev hwchiu0"], False: ["ip addr del 10.55.66.1/24 dev hwchiu0"]}),
    Switch("default-route", "c1 default route", (True, False), "c1",
           "ip route show default | grep -q 'via 10.55.66.1'",
           {True: ["ip route add default via 10.55.66.1"], False: ["ip route del default via 10.55.66.1"]}),
    _rule_switch("masquerade", "MASQUERADE", "nat", (MASQUERADE_RULE,)),
    _rule_switch("forward-rules", "FORWARD accepts", "filter", FORWARD_RULES),
    _rule_switch("dnat", "DNAT :2345 → c1:8000", "nat", (DNAT_RULE,), add="-A"),
    _rule_switch("eth1-forward-rules", "FORWARD eth1 ⇄ hwchiu0", "filter", ETH1_FORWARD_RULES),
    _rule_switch("output-dnat", "nat OUTPUT DNAT", "nat", (OUTPUT_DNAT_RULE,), add="-A"),
    _rule_switch("hairpin-masquerade", "hairpin MASQUERADE", "nat", (HAIRPIN_RULE,)),
    _rule_switch("docker-ct", "DOCKER-CT (replies)", "filter",
                 ("DOCKER-CT -o hwchiu0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",), add="-A"),
    _rule_switch("docker-outbound", "DOCKER-FORWARD -i hwchiu0", "filter",
                 ("DOCKER-FORWARD -i hwchiu0 -j ACCEPT",), add="-A"),
    _rule_switch("docker-published", "DOCKER: published port", "filter",
                 ("DOCKER -d 10.55.66.2/32 ! -i hwchiu0 -o hwchiu0 -p tcp -m tcp --dport 8000 -j ACCEPT",)),
    _rule_switch("docker-raw-guard", "raw guard for c1", "raw",
                 ("PREROUTING -d 10.55.66.2/32 ! -i hwchiu0 -j DROP",), add="-A"),
    _rule_switch("icc-false", "--icc=false", "filter", ("DOCKER-FORWARD -i hwchiu0 -o hwchiu0 -j DROP",)),
)}

SCENARIOS: dict[str, tuple[str, ...]] = {
    "1 · container to container": ("bridge-nf-call-iptables", "forward-policy"),
    "2 · container to the internet": ("bridge-address", "default-route", "masquerade", "forward-rules"),
    "3 · the outside to a container": ("dnat", "eth1-forward-rules", "output-dnat", "hairpin-masquerade"),
    "4 · what Docker writes": ("docker-ct", "docker-outbound", "docker-published", "docker-raw-guard",
                               "icc-false"),
}
"""The switches grouped by the notebook that flips them."""


def switch(name: str) -> Switch:
    try:
        return SWITCHES[name]
    except KeyError:
        raise BadArgument(f"no switch {name!r}; switches are: {', '.join(SWITCHES)}", switch=str(name)) from None
