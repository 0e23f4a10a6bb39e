"""Every outcome of part 3, as a journey the real kernel produced (real namespaces)."""

import uuid

import pytest

from netkit import Lab, NetkitError, UnknownNode

pytestmark = pytest.mark.lab

C1_TO_C2 = ("c1:eth0", "host:veth0", "host:veth1", "c2:eth0")
C1_TO_NET = ("c1:eth0", "host:veth0", "host:hwchiu0", "host:eth0", "internet:eth0")
MASQUERADE = "-t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"


@pytest.fixture(scope="module")
def lab():
    with Lab(name=f"probe-{uuid.uuid4().hex[:6]}") as lab:
        yield lab


def forward_verdicts(journey):
    return [v for v in journey.verdicts if v.table == "filter" and v.chain == "FORWARD"]


# -- scenario 1: container to container ------------------------------------------
def test_forward_drop_stops_bridged_frames_in_iptables(lab):
    lab.reset("part3-start")
    journey = lab.probe("c1", "10.55.66.3")
    assert journey.points[:4] == C1_TO_C2
    assert not journey.delivered
    assert journey.addresses("c1:eth0") == "10.55.66.2 > 10.55.66.3"
    assert journey.seen("host:veth0")
    assert not journey.seen("host:veth1") and not journey.seen("c2:eth0")
    dropped = journey.dropped_by
    assert (dropped.table, dropped.chain, dropped.rule, dropped.verdict) == ("filter", "FORWARD", "policy", "DROP")
    assert (dropped.iif, dropped.oif) == ("hwchiu0", "hwchiu0")  # bridged frames: the bridge is both ways
    assert journey.passed("PREROUTING") and journey.passed("FORWARD") and not journey.passed("POSTROUTING")
    assert journey.reason == "dropped by filter FORWARD policy DROP in host"
    assert journey.died_at == "host:veth0"


def test_bridge_nf_call_iptables_0_lets_the_bridge_alone_decide(lab):
    lab.reset("part3-start")
    lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
    journey = lab.probe("c1", "10.55.66.3")
    assert journey.delivered, journey.reason
    for point in C1_TO_C2:
        assert journey.addresses(point) == "10.55.66.2 > 10.55.66.3"
        assert journey.addresses(point, "reply") == "10.55.66.3 > 10.55.66.2"
    assert forward_verdicts(journey) == []  # iptables never saw the bridged frames
    assert journey.hooks == ()
    lab.sysctl("net.bridge.bridge-nf-call-iptables", 1)
    again = lab.probe("c1", "10.55.66.3")
    assert not again.delivered and again.dropped_by.chain == "FORWARD"


def test_forward_accept_lets_bridged_frames_through(lab):
    lab.reset("part3-start")
    lab.iptables("-P FORWARD ACCEPT")
    journey = lab.probe("c1", "10.55.66.3")
    assert journey.delivered
    assert journey.seen("c2:eth0") and journey.seen("c1:eth0", "reply")
    kinds = {(v.kind, v.rule, v.verdict, v.iif, v.oif) for v in forward_verdicts(journey)}
    assert ("request", "policy", "ACCEPT", "hwchiu0", "hwchiu0") in kinds
    assert ("reply", "policy", "ACCEPT", "hwchiu0", "hwchiu0") in kinds


# -- scenario 2: container to the internet ------------------------------------------
def test_no_default_route_means_network_is_unreachable(lab):
    lab.reset("part3-start")
    journey = lab.probe("c1", "8.8.8.8")
    assert journey.points[:5] == C1_TO_NET
    assert journey.reason == "c1 has no route to 8.8.8.8 (Network is unreachable)"
    assert not any(journey.seen(p) or journey.seen(p, "reply") for p in journey.points)


def test_without_masquerade_the_reply_never_comes_back(lab):
    lab.reset("scenario2-gateway")
    lab.iptables("-P FORWARD ACCEPT")
    journey = lab.probe("c1", "8.8.8.8", timeout=3)
    for point in C1_TO_NET:
        assert journey.addresses(point) == "10.55.66.2 > 8.8.8.8", point
    assert not journey.replied
    assert journey.reason == ("8.8.8.8 got the request but its reply never came back: "
                              "it has no route to 10.55.66.2")
    assert journey.died_at == "internet:eth0"
    assert journey.seconds < 3  # it knew from the internet's routing table, not from a timeout


def test_masquerade_rewrites_on_eth0_only_and_conntrack_undoes_it(lab):
    lab.reset("scenario2-gateway")
    lab.iptables("-P FORWARD ACCEPT")
    lab.iptables(MASQUERADE)
    journey = lab.probe("c1", "8.8.8.8")
    assert journey.delivered, journey.reason
    assert journey.addresses("host:hwchiu0") == "10.55.66.2 > 8.8.8.8"
    assert journey.addresses("host:hwchiu0", "reply") == "8.8.8.8 > 10.55.66.2"
    assert journey.addresses("host:eth0") == "10.0.2.15 > 8.8.8.8"
    assert journey.addresses("host:eth0", "reply") == "8.8.8.8 > 10.0.2.15"
    assert journey.rewritten("host:eth0") and not journey.rewritten("host:hwchiu0")
    assert journey.addresses("c1:eth0", "reply") == "8.8.8.8 > 10.55.66.2"
    nat = [v for v in journey.verdicts if v.table == "nat" and v.chain == "POSTROUTING"]
    assert [(v.rule, v.verdict) for v in nat] == [
        ("-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE", "MASQUERADE")]
    (entry,) = journey.conntrack
    assert entry.original == ("10.55.66.2", "8.8.8.8")
    assert entry.reply == ("8.8.8.8", "10.0.2.15")
    assert entry.nat


def test_forward_drop_stops_routed_packets_between_hwchiu0_and_eth0(lab):
    lab.reset("scenario2-gateway")
    lab.iptables(MASQUERADE)  # FORWARD is still DROP, as Docker leaves it
    journey = lab.probe("c1", "8.8.8.8")
    assert journey.addresses("host:hwchiu0") == "10.55.66.2 > 8.8.8.8"
    assert not journey.seen("host:eth0") and not journey.seen("internet:eth0")
    dropped = journey.dropped_by
    assert (dropped.chain, dropped.rule, dropped.iif, dropped.oif) == ("FORWARD", "policy", "hwchiu0", "eth0")
    assert journey.died_at == "host:hwchiu0"


def test_the_two_forward_rules_of_part3_end_accept_each_way(lab):
    lab.reset("part3-end")
    journey = lab.probe("c1", "8.8.8.8")
    assert journey.delivered
    accepted = {(v.kind, v.rule) for v in forward_verdicts(journey) if v.verdict == "ACCEPT"}
    assert accepted == {("request", "-A FORWARD -i hwchiu0 -o eth0 -j ACCEPT"),
                        ("reply", "-A FORWARD -i eth0 -o hwchiu0 -j ACCEPT")}


def test_packets_to_the_bridge_itself_take_input_not_forward(lab):
    lab.reset("scenario2-gateway")  # FORWARD DROP, hwchiu0 has 10.55.66.1
    journey = lab.probe("c1", "10.55.66.1")
    assert journey.delivered
    assert journey.points[:3] == ("c1:eth0", "host:veth0", "host:hwchiu0")
    assert journey.passed("INPUT") and not journey.passed("FORWARD")
    assert journey.passed("OUTPUT", "reply")
    assert forward_verdicts(journey) == []


# -- evidence and bad input ------------------------------------------------------------
def test_a_journey_writes_a_pcap_wireshark_reads(lab, tmp_path):
    from scapy.utils import rdpcap

    lab.reset("part3-end")
    journey = lab.probe("c1", "8.8.8.8")
    packets = rdpcap(str(journey.to_pcap(tmp_path / "probe.pcapng")))
    assert [p.sniffed_on for p in packets] == [s.point for s in journey.sightings()]
    assert len(packets) == 10  # request and reply at five points


def test_bad_probes_name_the_fix(lab):
    with pytest.raises(UnknownNode, match="nodes are: host, c1, c2, internet"):
        lab.probe("c3", "8.8.8.8")
    with pytest.raises(NetkitError, match="not an IPv4 address"):
        lab.probe("c1", "8.8.8")
    assert lab.probe("c1", "10.55.66.2").delivered  # the lab still answers
