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
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NetkitError

MASQUERADE_RULE = "POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"
FORWARD_RULES = ("FORWARD -i hwchiu0 -o eth0 -j ACCEPT", "FORWARD -i eth0 -o hwchiu0 -j ACCEPT")


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
    Switch("masquerade", "MASQUERADE", (True, False), "host",
           f"iptables -t nat -C {MASQUERADE_RULE} 2>/dev/null",
           {True: [f"iptables -t nat -I {MASQUERADE_RULE}"], False: [f"iptables -t nat -D {MASQUERADE_RULE}"]}),
    Switch("forward-rules", "FORWARD accepts", (True, False), "host",
           " && ".join(f"iptables -C {rule} 2>/dev/null" for rule in FORWARD_RULES),
           {True: [f"iptables -t filter -I {rule}" for rule in FORWARD_RULES],
            False: [f"iptables -t filter -D {rule}" for rule in FORWARD_RULES]}),
)}


def switch(name: str) -> Switch:
    try:
        return SWITCHES[name]
    except KeyError:
        raise NetkitError(f"no switch {name!r}; switches are: {', '.join(SWITCHES)}") from None
