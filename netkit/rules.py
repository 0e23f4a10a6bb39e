"""Every iptables rule the lab writes, each written once.

A rule is its table and its spec as ``iptables -S`` prints it, without the
verb. The stages type it (`netkit.topology`), the switches add and remove it
and read it back (`netkit.switches`), the exercises' model answers type it
(`netkit.exercises`), all from here::

    MASQUERADE.command("-I")   # iptables -t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE
    MASQUERADE.args("-I")      # -t nat -I POSTROUTING ...  (what lab.iptables() takes)
    MASQUERADE.line            # -A POSTROUTING -s ...      (how iptables -S lists it)

The notebooks keep their own copy of each command on purpose: there it is
the lesson, typed where the student reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    table: str
    spec: str                    # "POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"
    explicit: bool = False       # write "-t filter" even for the filter table, as the article does

    @property
    def chain(self) -> str:
        return self.spec.split()[0]

    def args(self, verb: str = "-A") -> str:
        """The rule as `lab.iptables()` takes it: ``-t nat -A POSTROUTING ...``."""
        table = f"-t {self.table} " if self.table != "filter" or self.explicit else ""
        return f"{table}{verb} {self.spec}"

    def command(self, verb: str = "-A") -> str:
        """The command a person types: ``iptables -t nat -A POSTROUTING ...``."""
        return f"iptables {self.args(verb)}"

    @property
    def line(self) -> str:
        """How ``iptables -t TABLE -S`` lists it."""
        return f"-A {self.spec}"


# -- part 3 (the article) ----------------------------------------------------------------------
MASQUERADE = Rule("nat", "POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE")
FORWARD_OUT = Rule("filter", "FORWARD -i hwchiu0 -o eth0 -j ACCEPT", explicit=True)
FORWARD_IN = Rule("filter", "FORWARD -i eth0 -o hwchiu0 -j ACCEPT", explicit=True)

# -- part 4 (`docker run -p`) ------------------------------------------------------------------
DNAT = Rule("nat", "PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000")
ETH1_IN = Rule("filter", "FORWARD -i eth1 -o hwchiu0 -j ACCEPT", explicit=True)
ETH1_OUT = Rule("filter", "FORWARD -i hwchiu0 -o eth1 -j ACCEPT", explicit=True)
OUTPUT_DNAT = Rule("nat", "OUTPUT -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000")
HAIRPIN = Rule("nat", "POSTROUTING -s 10.55.66.0/24 -d 10.55.66.2/32 -p tcp -m tcp --dport 8000 -j MASQUERADE")
BRIDGED_ACCEPT = Rule("filter", "FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT")

# -- what Docker 29 writes (hwchiu0 as docker0, c1 10.55.66.2:8000 as the container's :80) -------
DOCKER_CT = Rule("filter", "DOCKER-CT -o hwchiu0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
DOCKER_OUTBOUND = Rule("filter", "DOCKER-FORWARD -i hwchiu0 -j ACCEPT")
DOCKER_PUBLISHED = Rule("filter",
                        "DOCKER -d 10.55.66.2/32 ! -i hwchiu0 -o hwchiu0 -p tcp -m tcp --dport 8000 -j ACCEPT")
DOCKER_RAW_GUARD = Rule("raw", "PREROUTING -d 10.55.66.2/32 ! -i hwchiu0 -j DROP")
DOCKER_ICC = Rule("filter", "DOCKER-FORWARD -i hwchiu0 -o hwchiu0 -j DROP")            # --icc=false: in place of
DOCKER_ICC_OUTBOUND = Rule("filter", "DOCKER-FORWARD -i hwchiu0 ! -o hwchiu0 -j ACCEPT")  # DOCKER_OUTBOUND, these two
DOCKER_DNAT = Rule("nat", "DOCKER ! -i hwchiu0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.55.66.2:8000")
DOCKER_MASQUERADE = Rule("nat", "POSTROUTING -s 10.55.66.0/24 ! -o hwchiu0 -j MASQUERADE")

# -- docker-proxy on (Docker's default) or off (`dockerd --userland-proxy=false`), Docker 29's layout -------
# With the proxy, Docker's nat rules leave two connections to the proxy: the host's own to 127.0.0.0/8
# (the OUTPUT jump skips it) and a container's to the host's address (the DNAT skips what comes in on the
# bridge). Without it, the kernel must do both: the DNAT takes every interface, the OUTPUT jump loopback too
# (so route_localnet goes on), and two MASQUERADE rules make the answers come back through the host.
DOCKER_OUTPUT_JUMP = Rule("nat", "OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER")
DOCKER19_RETURN = Rule("nat", "DOCKER -i hwchiu0 -j RETURN")   # the 19.03/20.10 layout, with the proxy only
NOPROXY_OUTPUT_JUMP = Rule("nat", "OUTPUT -m addrtype --dst-type LOCAL -j DOCKER")
NOPROXY_DNAT = Rule("nat", "DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.55.66.2:8000")
NOPROXY_LOCAL_MASQUERADE = Rule("nat", "POSTROUTING -o hwchiu0 -m addrtype --src-type LOCAL -j MASQUERADE")
NOPROXY_HAIRPIN = Rule("nat", "POSTROUTING -s 10.55.66.2/32 -d 10.55.66.2/32 -p tcp -m tcp --dport 8000 -j MASQUERADE")
