"""The article's lab, described as plain data: nodes, points, addresses, stages.

Nothing here touches the kernel. The agent (`netkit.agent`) is the one place
that turns these descriptions into namespaces, links and rules, by running
the very commands listed here, so a student can read every step as the
command a person would type.

Naming follows the article (hwchiu's "Docker 網路入門篇" part 3):

- node ``host`` plays the Docker host. Its ``eth0`` (10.0.2.15/24) faces the
  node ``internet`` (10.0.2.2/24), which owns 8.8.8.8 and 1.1.1.1 and only
  knows the way back to 10.0.2.0/24, like a real upstream network.
- nodes ``c1`` and ``c2`` are the "containers": their ``eth0`` is the peer of
  the host's ``veth0`` / ``veth1``, both enslaved to the bridge ``hwchiu0``.
- a *point* is ``node:ifname``, a place where a packet can be seen.
- a *stage* is a named moment of the article; each stage is its parent stage
  plus a few *steps*, and a lab can start at, or go back to, any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import rules
from .errors import UnknownNode, UnknownStage
from .i18n import _

NODES: tuple[str, ...] = ("host", "c1", "c2", "internet", "outside")
"""Every node a lab can have; ``host`` is the sandbox process's own namespace.
``outside`` (the article's other machine on 172.17.9.0/24) joins at stage part4-start."""

BASE_POINTS: tuple[str, ...] = (
    "c1:eth0", "host:veth0", "host:hwchiu0", "host:veth1", "c2:eth0",
    "host:eth0", "internet:eth0",
)
"""The points of part 3's lab, in the order a packet from c1 meets them."""

POINTS: tuple[str, ...] = BASE_POINTS + ("host:eth1", "outside:eth0")
"""Every point a lab can have (part 4 adds the host's eth1 and the outside machine)."""

ADDRESSES: dict[str, str] = {
    "c1:eth0": "10.55.66.2/24",
    "c2:eth0": "10.55.66.3/24",
    "host:eth0": "10.0.2.15/24",
    "internet:eth0": "10.0.2.2/24",
    "internet:lo": "8.8.8.8/32 1.1.1.1/32",
    "host:eth1": "172.17.9.103/24",
    "outside:eth0": "172.17.9.10/24",
}
"""Addresses from the start of part 3 (hwchiu0 gets 10.55.66.1 later)."""

BRIDGE = "hwchiu0"
BRIDGE_ADDRESS = "10.55.66.1/24"


@dataclass(frozen=True)
class Step:
    """One change the article makes: a command typed in one node."""

    node: str
    command: str
    why: str = ""
    ready_port: int | None = None   # a background program (`... &`) is ready once this TCP port listens
    ready_address: str = "127.0.0.1"  # ... on this address (the host's docker-proxy for [::] listens on ::)

    def __str__(self) -> str:
        return f"[{self.node}] {self.command}"


@dataclass(frozen=True)
class Stage:
    """A named moment of the article: the parent stage plus some steps."""

    name: str
    title: str
    steps: tuple[Step, ...]
    parent: str | None = None
    adds: tuple[str, ...] = field(default=())   # nodes this stage brings into the lab


def _steps(node: str, why: str, *commands: str) -> tuple[Step, ...]:
    return tuple(Step(node, command, why) for command in commands)


# Part 2 of the series: two --network=none containers wired to hwchiu0 by hand,
# plus an upstream "internet" behind the host's eth0 (the article's VirtualBox NAT).
_WIRING = (
    _steps("host", "the containers and the internet get network namespaces of their own",
           "ip netns add c1", "ip netns add c2", "ip netns add internet")
    + _steps("host", "the Linux bridge the containers hang off",
             f"ip link add {BRIDGE} type bridge", f"ip link set {BRIDGE} up")
    + _steps("host", "a veth pair per container: one end on the bridge, the other is the container's eth0",
             "ip link add veth0 type veth peer name eth0 netns c1",
             "ip link add veth1 type veth peer name eth0 netns c2",
             f"ip link set veth0 master {BRIDGE}", "ip link set veth0 up",
             f"ip link set veth1 master {BRIDGE}", "ip link set veth1 up")
    + _steps("c1", "c1's address; the kernel adds the connected route 10.55.66.0/24 dev eth0",
             "ip link set lo up", "ip addr add 10.55.66.2/24 dev eth0", "ip link set eth0 up")
    + _steps("c2", "c2's address, on the same subnet",
             "ip link set lo up", "ip addr add 10.55.66.3/24 dev eth0", "ip link set eth0 up")
    + _steps("host", "the host's own uplink, like the article's VirtualBox NAT eth0",
             "ip link set lo up",
             "ip link add eth0 type veth peer name eth0 netns internet",
             "ip addr add 10.0.2.15/24 dev eth0", "ip link set eth0 up",
             "ip route add default via 10.0.2.2")
    + _steps("internet", "the outside world: 8.8.8.8 and 1.1.1.1, with a way back only to 10.0.2.0/24",
             "ip link set lo up", "ip addr add 8.8.8.8/32 dev lo", "ip addr add 1.1.1.1/32 dev lo",
             "ip addr add 10.0.2.2/24 dev eth0", "ip link set eth0 up")
)

# What installing Docker 19.03 left on the article's host.
_DOCKER_HOST = (
    _steps("host", "a router forwards packets between its interfaces",
           "sysctl -w net.ipv4.ip_forward=1")
    + _steps("host", "bridged frames go through iptables too (Docker loads br_netfilter)",
             "sysctl -w net.bridge.bridge-nf-call-iptables=1")
    + _steps("host", "Docker's whitelist: forward nothing unless a rule accepts it",
             "iptables -P FORWARD DROP")
)

STAGES: dict[str, Stage] = {}


def _add(stage: Stage) -> None:
    STAGES[stage.name] = stage


_add(Stage(
    "part3-start",
    "Part 3 begins: c1 and c2 on hwchiu0, FORWARD policy DROP, bridge-nf-call-iptables=1",
    _WIRING + _DOCKER_HOST,
))
_add(Stage(
    "scenario2-gateway",
    "Scenario 2, step 2: hwchiu0 has 10.55.66.1 and c1 routes everything through it",
    _steps("host", "give the bridge an address so it can be the containers' gateway",
           f"ip addr add {BRIDGE_ADDRESS} dev {BRIDGE}")
    + _steps("c1", "send what no other route matches to the bridge",
             "ip route add default via 10.55.66.1"),
    parent="part3-start",
))
_add(Stage(
    "part3-end",
    "End of part 3: MASQUERADE on eth0 and FORWARD accepts between hwchiu0 and eth0",
    _steps("host", "rewrite c1's source address to the host's own on the way out",
           rules.MASQUERADE.command("-I"))
    + _steps("host", "let the kernel route between the bridge and the uplink, both ways",
             rules.FORWARD_OUT.command("-I"), rules.FORWARD_IN.command("-I")),
    parent="scenario2-gateway",
))

# Part 4 of the series: the outside reaches a container (`docker run -p`). The article's
# client is another machine on a host-only network (the host's eth1, 172.17.9.103/24);
# the lab gives it a node of its own, "outside", rather than reusing "internet", so the
# published port is reached the way the article reaches it, over a second interface.
_add(Stage(
    "part4-start",
    "Part 4 begins: the end of part 3, plus eth1 to the outside machine and a web server in c1",
    _steps("host", "the article's second network: a host-only link to another machine",
           "ip netns add outside",
           "ip link add eth1 type veth peer name eth0 netns outside",
           "ip addr add 172.17.9.103/24 dev eth1", "ip link set eth1 up")
    + _steps("outside", "the other machine, on 172.17.9.0/24 only",
             "ip link set lo up", "ip addr add 172.17.9.10/24 dev eth0", "ip link set eth0 up")
    + (Step("c1", "python3 -m http.server 8000 &",
            "a web server on port 8000, as `python3 -m http.server` in the article", ready_port=8000),),
    parent="part3-end", adds=("outside",),
))
_add(Stage(
    "part4-published",
    "Part 4: port 2345 of the host is published to c1:8000 with DNAT, and FORWARD lets it through",
    _steps("host", "send what arrives for port 2345 on to c1's web server", rules.DNAT.command("-A"))
    + _steps("host", "let the kernel route between eth1 and the bridge, both ways",
             rules.ETH1_IN.command("-I"), rules.ETH1_OUT.command("-I")),
    parent="part4-start",
))

# What Docker itself writes, with hwchiu0 in docker0's role and the lab's addresses
# (docker0 172.17.0.1/16 -> hwchiu0 10.55.66.1/24; container 172.17.0.2:80 -> c1 10.55.66.2:8000;
# `docker run -p 8080:80` -> the host's port 8080). Both start from part 3's wiring with
# Docker's gateway, default routes, the outside machine and c1's web server.
_DOCKER_WIRING = (
    _steps("host", "Docker gives its bridge the containers' gateway address",
           f"ip addr add {BRIDGE_ADDRESS} dev {BRIDGE}")
    + _steps("c1", "Docker gives every container a default route via the bridge",
             "ip route add default via 10.55.66.1")
    + _steps("c2", "Docker gives every container a default route via the bridge",
             "ip route add default via 10.55.66.1")
    + _steps("host", "the host-only network of part 4, with the outside machine",
             "ip netns add outside",
             "ip link add eth1 type veth peer name eth0 netns outside",
             "ip addr add 172.17.9.103/24 dev eth1", "ip link set eth1 up")
    + _steps("outside", "the outside machine", "ip link set lo up",
             "ip addr add 172.17.9.10/24 dev eth0", "ip link set eth0 up")
    + (Step("c1", "python3 -m http.server 8000 &", "the container's web server", ready_port=8000),)
)

DOCKER_29_RULES = (
    # filter: Docker 28.0.1+ moved its FORWARD rules into DOCKER-FORWARD and its sub-chains (moby PR 49518); 29.0
    # replaced the isolation chains with DOCKER-INTERNAL. Checked against moby's listing (tests/test_moby_listings.py).
    "iptables -N DOCKER", "iptables -N DOCKER-BRIDGE", "iptables -N DOCKER-CT",
    "iptables -N DOCKER-FORWARD", "iptables -N DOCKER-INTERNAL", "iptables -N DOCKER-USER",
    "iptables -A FORWARD -j DOCKER-USER",
    "iptables -A FORWARD -j DOCKER-FORWARD",
    rules.DOCKER_PUBLISHED.command(),
    "iptables -A DOCKER ! -i hwchiu0 -o hwchiu0 -j DROP",
    "iptables -A DOCKER-BRIDGE -o hwchiu0 -j DOCKER",
    rules.DOCKER_CT.command(),
    "iptables -A DOCKER-FORWARD -j DOCKER-CT",
    "iptables -A DOCKER-FORWARD -j DOCKER-INTERNAL",
    "iptables -A DOCKER-FORWARD -j DOCKER-BRIDGE",
    rules.DOCKER_OUTBOUND.command(),
    # nat: the published port, and MASQUERADE for the bridge's subnet.
    "iptables -t nat -N DOCKER",
    "iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    rules.DOCKER_OUTPUT_JUMP.command(),
    rules.DOCKER_MASQUERADE.command(),
    rules.DOCKER_DNAT.command(),
    # raw: packets addressed straight to a container from anywhere but its bridge are dropped: per published
    # port since 28.0.0 (moby PR 49325), per container since 28.2.0 (PR 49829), as here.
    rules.DOCKER_RAW_GUARD.command(),
)

DOCKER_19_RULES = (
    # filter: Docker up to 28.0.0 wrote its rules straight into FORWARD (the article's host ran 19.03; DOCKER-FORWARD
    # came in 28.0.1, moby PR 49518). 20.10.24 writes exactly these (tests/test_docker_engine.py).
    "iptables -N DOCKER", "iptables -N DOCKER-ISOLATION-STAGE-1", "iptables -N DOCKER-ISOLATION-STAGE-2",
    "iptables -N DOCKER-USER",
    "iptables -A FORWARD -j DOCKER-USER",
    "iptables -A FORWARD -j DOCKER-ISOLATION-STAGE-1",
    "iptables -A FORWARD -o hwchiu0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "iptables -A FORWARD -o hwchiu0 -j DOCKER",
    "iptables -A FORWARD -i hwchiu0 ! -o hwchiu0 -j ACCEPT",
    "iptables -A FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT",
    rules.DOCKER_PUBLISHED.command(),
    "iptables -A DOCKER-ISOLATION-STAGE-1 -i hwchiu0 ! -o hwchiu0 -j DOCKER-ISOLATION-STAGE-2",
    "iptables -A DOCKER-ISOLATION-STAGE-1 -j RETURN",
    "iptables -A DOCKER-ISOLATION-STAGE-2 -o hwchiu0 -j DROP",
    "iptables -A DOCKER-ISOLATION-STAGE-2 -j RETURN",
    "iptables -A DOCKER-USER -j RETURN",
    # nat: the same DNAT and MASQUERADE, plus the hairpin MASQUERADE of a container reaching itself.
    "iptables -t nat -N DOCKER",
    "iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    rules.DOCKER_OUTPUT_JUMP.command(),
    rules.DOCKER_MASQUERADE.command(),
    "iptables -t nat -A POSTROUTING -s 10.55.66.2/32 -d 10.55.66.2/32 -p tcp -m tcp --dport 8000 -j MASQUERADE",
    rules.DOCKER19_RETURN.command(),
    rules.DOCKER_DNAT.command(),
)

# docker-proxy, Docker's userland proxy, on by default in every version (29 included): one process per
# published port and host address, started with these flags (moby's portmapper; Docker 28+ hands it the
# bound socket with -use-listen-fd as well). The lab's own docker-proxy (netkit/bin/docker-proxy) does what
# Docker's does for TCP: it accepts on the host's port and opens a second connection to the container.
DOCKER_PROXY_PORT = 8080
DOCKER_PROXY_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1"}   # each address it listens on -> where to see it ready


def proxy_command(host_ip: str) -> str:
    return (f"docker-proxy -proto tcp -host-ip {host_ip} -host-port {DOCKER_PROXY_PORT} "
            "-container-ip 10.55.66.2 -container-port 8000")


def proxy_steps() -> tuple[Step, ...]:
    """Starting both of Docker's proxies for the published port, as Docker does after writing its rules."""
    return tuple(Step("host", f"{proxy_command(host_ip)} &", "Docker's userland proxy holds the published port on "
                      "every host address and relays what reaches it to the container",
                      ready_port=DOCKER_PROXY_PORT, ready_address=ready)
                 for host_ip, ready in DOCKER_PROXY_HOSTS.items())


_add(Stage(
    "docker-29",
    "Docker 29's own rules for `docker run -p 8080:80`, with hwchiu0 as docker0 and c1 as the container",
    _DOCKER_WIRING + _steps("host", "the rules Docker 29 writes (iptables backend, default bridge)",
                            *DOCKER_29_RULES) + proxy_steps(),
    parent="part3-start", adds=("outside",),
))
# Docker 29 with `--firewall-backend=nftables` (experimental in 29.0) writes no iptables rule: a table of its
# own, `ip docker-bridges`, for the same container and port. This is moby's generated listing at the tag
# docker-v29.0.0 (integration/network/bridge/nftablesdoc/generated/usernet-portmap.md), in the lab's names
# (tests/test_moby_listings.py compares the two). One word differs: Debian 12's nft (1.0.6) does not take
# `priority dstnat` in a nat chain on the output hook, so it is written as its value, -100.
DOCKER_29_NFT = """table ip docker-bridges {
  map filter-forward-in-jumps {
    type ifname : verdict
    elements = { "hwchiu0" : jump filter-forward-in__hwchiu0 }
  }

  map filter-forward-out-jumps {
    type ifname : verdict
    elements = { "hwchiu0" : jump filter-forward-out__hwchiu0 }
  }

  map nat-postrouting-in-jumps {
    type ifname : verdict
    elements = { "hwchiu0" : jump nat-postrouting-in__hwchiu0 }
  }

  map nat-postrouting-out-jumps {
    type ifname : verdict
    elements = { "hwchiu0" : jump nat-postrouting-out__hwchiu0 }
  }

  chain filter-FORWARD {
    type filter hook forward priority filter; policy accept;
    oifname vmap @filter-forward-in-jumps
    iifname vmap @filter-forward-out-jumps
  }

  chain nat-OUTPUT {
    type nat hook output priority -100; policy accept;
    ip daddr != 127.0.0.0/8 fib daddr type local counter jump nat-prerouting-and-output
  }

  chain nat-POSTROUTING {
    type nat hook postrouting priority srcnat; policy accept;
    iifname vmap @nat-postrouting-out-jumps
    oifname vmap @nat-postrouting-in-jumps
  }

  chain nat-PREROUTING {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local counter jump nat-prerouting-and-output
  }

  chain nat-prerouting-and-output {
    iifname != "hwchiu0" tcp dport 8080 counter dnat to 10.55.66.2:8000 comment "DNAT"
  }

  chain raw-PREROUTING {
    type filter hook prerouting priority raw; policy accept;
    ip daddr 10.55.66.2 iifname != "hwchiu0" counter drop comment "DROP DIRECT ACCESS"
  }

  chain filter-forward-in__hwchiu0 {
    ct state established,related counter accept
    iifname "hwchiu0" counter accept comment "ICC"
    ip daddr 10.55.66.2 tcp dport 8000 counter accept
    counter drop comment "UNPUBLISHED PORT DROP"
  }

  chain filter-forward-out__hwchiu0 {
    ct state established,related counter accept
    counter accept comment "OUTGOING"
  }

  chain nat-postrouting-in__hwchiu0 {
  }

  chain nat-postrouting-out__hwchiu0 {
    oifname != "hwchiu0" ip saddr 10.55.66.0/24 counter masquerade comment "MASQUERADE"
  }
}
"""

_add(Stage(
    "docker-19",
    "Docker 19.03's rules (the article's host) for the same container and port",
    _DOCKER_WIRING + _steps("host", "the rules Docker 19.03 wrote", *DOCKER_19_RULES) + proxy_steps(),
    parent="part3-start", adds=("outside",),
))

_add(Stage(
    "docker-29-nft",
    "Docker 29's own nftables table (--firewall-backend=nftables) for the same container and port",
    _DOCKER_WIRING
    + _steps("host", "with the nftables backend Docker sets no iptables policy (only its iptables backend sets "
             "FORWARD to DROP): part 3's DROP is taken back, so Docker's own table decides",
             "iptables -P FORWARD ACCEPT")
    + _steps("host", "the table Docker 29 writes with --firewall-backend=nftables",
             f"nft -f - <<'EOF'\n{DOCKER_29_NFT}EOF")
    + proxy_steps(),
    parent="part3-start", adds=("outside",),
))

DEFAULT_STAGE = "part3-start"
BASE_NODES = ("host", "c1", "c2", "internet")


def stage(name: str) -> Stage:
    """The stage called `name`, or UnknownStage naming the ones there are."""
    try:
        return STAGES[name]
    except (KeyError, TypeError):
        raise UnknownStage(
            _("no stage {name!r} in the article; choose one of: {items}").format(name=name, items=', '.join(STAGES))
        ) from None


def steps_to(name: str) -> tuple[Step, ...]:
    """Every step from an empty machine to the stage `name`, in order."""
    chain = []
    current: str | None = name
    while current is not None:
        chain.append(stage(current))
        current = chain[-1].parent
    return tuple(step for st in reversed(chain) for step in st.steps)


def ancestors(name: str) -> list[str]:
    """`name` and every stage it builds on, nearest first."""
    found, current = [], name
    while current is not None:
        found.append(current)
        current = stage(current).parent
    return found


def steps_after(built: str | None, name: str) -> tuple[Step, ...] | None:
    """The steps that take a lab built at `built` to `name` (all of them from nothing), or None if
    `built` is not on the way to `name`."""
    if built is None:
        return steps_to(name)
    chain = ancestors(name)
    if built not in chain:
        return None
    return tuple(step for st in reversed(chain[:chain.index(built)]) for step in stage(st).steps)


def nodes_at(name: str) -> tuple[str, ...]:
    """The nodes a lab has at stage `name`."""
    added = []
    current: str | None = name
    while current is not None:
        added[:0] = stage(current).adds
        current = stage(current).parent
    return BASE_NODES + tuple(added)


def points_at(name: str) -> tuple[str, ...]:
    nodes = nodes_at(name)
    return tuple(p for p in POINTS if p.split(":")[0] in nodes)


def check_node(name: str, stage_name: str | None = None) -> str:
    """`name` if it is a node of the lab (at `stage_name`, if given), else UnknownNode naming the nodes."""
    known = nodes_at(stage_name) if stage_name else BASE_NODES
    if name in known:
        return name
    if name in NODES:
        joins = next(st.name for st in STAGES.values() if name in st.adds)
        if stage_name is None:
            return name
        raise UnknownNode(_("the node {name!r} joins the lab at stage {joins}; go there first: "
                            "lab.reset({joins!r})").format(name=name, joins=joins))
    raise UnknownNode(_("no node {name!r} in the lab; nodes are: {items}").format(name=name, items=', '.join(known)))


def split_point(point: str) -> tuple[str, str]:
    """``"host:veth0"`` -> ``("host", "veth0")``."""
    node, sep, ifname = point.partition(":")
    if not sep or not ifname:
        raise UnknownNode(_("{point!r} is not a point; write node:ifname, e.g. host:veth0").format(point=point))
    return check_node(node), ifname


# -- where packets go ---------------------------------------------------------
OWNERS: dict[str, str] = {
    "10.55.66.2": "c1", "10.55.66.3": "c2", "10.55.66.1": "host", "10.0.2.15": "host",
    "10.0.2.2": "internet", "8.8.8.8": "internet", "1.1.1.1": "internet",
    "172.17.9.103": "host", "172.17.9.10": "outside",
}
"""Which node owns each address of the lab (10.55.66.1 once scenario 2 gives it to hwchiu0)."""

SIDES: dict[str, tuple[str, ...]] = {
    "c1": ("c1:eth0", "host:veth0", "host:hwchiu0"),
    "c2": ("c2:eth0", "host:veth1", "host:hwchiu0"),
    "internet": ("internet:eth0", "host:eth0"),
    "outside": ("outside:eth0", "host:eth1"),
    "host": (),
}
"""The points between each node and the host's routing, nearest first."""


def owner(address: str) -> str | None:
    """The node that owns `address`, or None for an address outside the lab."""
    return OWNERS.get(address.split("/")[0])


def path(src: str, dst: str | None) -> tuple[str, ...]:
    """The points a packet from node `src` to node `dst` should pass, in order."""
    out = list(SIDES.get(src, ()))
    back = list(reversed(SIDES.get(dst, ()))) if dst else []
    if out and back and out[-1] == back[0] == f"host:{BRIDGE}":
        # c1 -> c2 is bridged: hwchiu0 forwards the frame from port veth0 to port
        # veth1 by its forwarding table; the bridge device itself never receives it.
        out, back = out[:-1], back[1:]
    return tuple(out + back)
