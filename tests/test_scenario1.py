"""Scenario 1 of the article (container to container on one bridge), through the API,
and the stages a lab can start at or go back to. LAB-FACTS.md lists the outcomes."""

from __future__ import annotations

import json

import pytest

from helpers import assert_answers, assert_lost, lab_name, ping
from netkit import Lab

pytestmark = pytest.mark.lab

ROUTE_C1 = "10.55.66.0      0.0.0.0         255.255.255.0   U     0      0        0 eth0"


def _routes(lab, node: str) -> list[str]:
    """The route lines of `route -n` (without its two header lines)."""
    out = lab.run(node, "route -n", check=True).stdout.splitlines()
    assert out[0] == "Kernel IP routing table" and out[1].startswith("Destination"), out
    return out[2:]


def test_part3_start_is_the_articles_starting_point(lab):
    assert lab.stage == "part3-start"
    for node in ("c1", "c2"):
        assert [" ".join(r.split()) for r in _routes(lab, node)] == [" ".join(ROUTE_C1.split())]
    assert "inet 10.55.66.2/24" in lab.run("c1", "ip -4 addr show eth0").stdout
    assert "inet 10.55.66.3/24" in lab.run("c2", "ip -4 addr show eth0").stdout
    # The bridge has no IPv4 address yet, and both host ends of the veth pairs hang off it.
    assert lab.run("host", "ip -4 -o addr show dev hwchiu0").stdout == ""
    brctl = lab.run("host", "brctl show hwchiu0", check=True).stdout
    assert brctl.splitlines()[1].split()[0] == "hwchiu0"
    assert "veth0" in brctl and "veth1" in brctl
    fdb = lab.run("host", "bridge fdb show br hwchiu0", check=True).stdout
    assert "dev veth0" in fdb and "dev veth1" in fdb
    ports = json.loads(lab.run("host", "ip -j link show master hwchiu0", check=True).stdout)
    assert sorted(p["ifname"] for p in ports) == ["veth0", "veth1"]
    # What Docker left on the article's host.
    assert lab.run("host", "iptables -S FORWARD").stdout.splitlines()[0] == "-P FORWARD DROP"
    assert lab.sysctl("net.bridge.bridge-nf-call-iptables") == "1"
    assert lab.sysctl("net.ipv4.ip_forward") == "1"
    # Scenario 2 step 1 (no route to the outside yet): the kernel refuses at once.
    no_route = ping(lab, "c1", "8.8.8.8")
    assert no_route.returncode == 2 and "Network is unreachable" in no_route.output, str(no_route)


def test_scenario1_step_by_step(lab):
    """FORWARD DROP + bridge-nf-call-iptables=1 drop the bridged ping; either fix makes it answer."""
    assert_lost(ping(lab, "c1", "10.55.66.3"))

    assert lab.sysctl("net.bridge.bridge-nf-call-iptables", 0) == "0"
    assert lab.run("host", "cat /proc/sys/net/bridge/bridge-nf-call-iptables").stdout.strip() == "0"
    answered = ping(lab, "c1", "10.55.66.3")
    assert_answers(answered)
    assert "ttl=64" in answered.stdout  # bridged, not routed: nobody decremented the TTL

    assert lab.sysctl("net.bridge.bridge-nf-call-iptables", 1) == "1"
    assert_lost(ping(lab, "c1", "10.55.66.3"))

    lab.iptables("-P FORWARD ACCEPT")
    assert lab.run("host", "iptables -S FORWARD").stdout.splitlines()[0] == "-P FORWARD ACCEPT"
    assert_answers(ping(lab, "c1", "10.55.66.3"))
    # The bridge forwards by MAC address: it has now learnt both containers' MACs on their ports.
    fdb = lab.run("host", "bridge fdb show br hwchiu0").stdout
    for node, port in (("c1", "veth0"), ("c2", "veth1")):
        mac = json.loads(lab.run(node, "ip -j link show eth0").stdout)[0]["address"]
        assert f"{mac} dev {port} master hwchiu0" in fdb, fdb

    lab.iptables("-P FORWARD DROP")
    assert_lost(ping(lab, "c1", "10.55.66.3"))


def test_scenario2_gateway_stage():
    with Lab(name=lab_name(), stage="scenario2-gateway") as lab:
        assert lab.stage == "scenario2-gateway"
        assert "inet 10.55.66.1/24" in lab.run("host", "ip -4 addr show dev hwchiu0").stdout
        assert lab.run("c1", "ip route show default").stdout.split()[:3] == ["default", "via", "10.55.66.1"]
        assert lab.run("c2", "ip route show default").stdout == ""  # the article only touches c1
        assert "-P FORWARD DROP" in lab.run("host", "iptables -S FORWARD").stdout
        assert "MASQUERADE" not in lab.run("host", "iptables-save -t nat").stdout
        # c1 now reaches its gateway (traffic to the bridge itself is INPUT, not FORWARD).
        assert_answers(ping(lab, "c1", "10.55.66.1"))


def test_part3_end_stage_reaches_the_internet():
    with Lab(name=lab_name(), stage="part3-end") as lab:
        nat = lab.run("host", "iptables -t nat -S POSTROUTING").stdout
        assert "-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE" in nat
        forward = lab.run("host", "iptables -S FORWARD").stdout.splitlines()
        assert forward[0] == "-P FORWARD DROP"
        assert "-A FORWARD -i hwchiu0 -o eth0 -j ACCEPT" in forward
        assert "-A FORWARD -i eth0 -o hwchiu0 -j ACCEPT" in forward
        # 8.8.8.8 is the lab's own `internet` node; the reply crosses FORWARD and un-MASQUERADE.
        answered = ping(lab, "c1", "8.8.8.8")
        assert_answers(answered)
        assert "ttl=63" in answered.stdout  # routed once, by the lab's host
        conntrack = lab.run("host", "conntrack -L -p icmp 2>/dev/null").stdout
        assert "src=10.55.66.2 dst=8.8.8.8" in conntrack and "dst=10.0.2.15" in conntrack, conntrack
        # Without the MASQUERADE, 8.8.8.8 has no way back to 10.55.66.2 (scenario 2 step 3).
        lab.iptables("-t nat -D POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE")
        lab.run("host", "conntrack -F")
        assert_lost(ping(lab, "c1", "8.8.8.8"))


def test_reset_returns_to_a_stage(lab):
    lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
    lab.iptables("-P FORWARD ACCEPT")
    lab.run("c1", "ip addr add 10.55.66.99/24 dev eth0", check=True)

    assert lab.reset("part3-start") is lab
    assert lab.stage == "part3-start"
    assert lab.sysctl("net.bridge.bridge-nf-call-iptables") == "1"
    assert "-P FORWARD DROP" in lab.run("host", "iptables -S FORWARD").stdout
    assert "10.55.66.99" not in lab.run("c1", "ip -4 addr").stdout
    assert_lost(ping(lab, "c1", "10.55.66.3"))

    lab.reset("part3-end")
    assert lab.stage == "part3-end"
    assert "MASQUERADE" in lab.run("host", "iptables -t nat -S POSTROUTING").stdout
    assert_answers(ping(lab, "c1", "8.8.8.8"))

    lab.reset("part3-start")
    assert "MASQUERADE" not in lab.run("host", "iptables -t nat -S POSTROUTING").stdout
    assert lab.run("host", "ip -4 -o addr show dev hwchiu0").stdout == ""
    assert lab.run("c1", "ip route show default").stdout == ""
