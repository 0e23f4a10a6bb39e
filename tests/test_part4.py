"""Part 4, the outside reaching a container (docker -p), as TCP journeys on the real kernel."""

import re
import uuid

import pytest

from netkit import CommandError, Lab, NetkitError, UnknownNode

pytestmark = pytest.mark.lab

HOST = "172.17.9.103"


@pytest.fixture(scope="module")
def lab():
    with Lab(name=f"p4-{uuid.uuid4().hex[:6]}", stage="part4-published") as lab:
        yield lab


def verdicts(journey, table, chain):
    return [(v.kind, v.rule, v.verdict) for v in journey.verdicts if (v.table, v.chain) == (table, chain)]


def test_the_stage_adds_the_outside_machine_and_a_web_server(lab):
    lab.reset("part4-start")
    assert "outside" in lab.nodes and "host:eth1" in lab.points
    assert "172.17.9.103/24" in lab.run("host", "ip -4 addr show dev eth1").stdout
    assert "Directory listing" in lab.run("c1", "curl -s -m2 127.0.0.1:8000/").stdout
    refused = lab.run("outside", f"curl -s -m2 {HOST}:2345")
    assert refused.returncode == 7  # curl: failed to connect
    journey = lab.probe("outside", HOST, port=2345)
    assert not journey.delivered and journey.reason.startswith("connection refused: 172.17.9.103 (the host itself)")
    assert journey.passed("INPUT") and not journey.passed("FORWARD")


def test_dnat_publishes_c1s_server_on_the_hosts_port(lab):
    lab.reset("part4-published")
    page = lab.run("outside", f"curl -s -m2 {HOST}:2345/")
    assert page.returncode == 0 and "Directory listing" in page.stdout
    journey = lab.probe("outside", HOST, port=2345, label="DNAT")
    assert journey.delivered, journey.reason
    assert journey.points[:5] == ("outside:eth0", "host:eth1", "host:hwchiu0", "host:veth0", "c1:eth0")
    sport = journey.first("request").sport
    assert journey.addresses("host:eth1") == f"172.17.9.10:{sport} > {HOST}:2345"
    assert journey.addresses("c1:eth0") == f"172.17.9.10:{sport} > 10.55.66.2:8000"
    assert journey.addresses("c1:eth0", "reply") == f"10.55.66.2:8000 > 172.17.9.10:{sport}"
    assert journey.addresses("outside:eth0", "reply") == f"{HOST}:2345 > 172.17.9.10:{sport}"
    assert verdicts(journey, "nat", "PREROUTING") == [
        ("request", "-A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000", "DNAT")]
    assert ("request", "-A FORWARD -i eth1 -o hwchiu0 -j ACCEPT", "ACCEPT") in verdicts(journey, "filter", "FORWARD")
    assert ("reply", "-A FORWARD -i hwchiu0 -o eth1 -j ACCEPT", "ACCEPT") in verdicts(journey, "filter", "FORWARD")
    (entry,) = journey.conntrack
    assert entry.dnat and entry.where("original", 1) == f"{HOST}:2345" and entry.where("reply", 0) == "10.55.66.2:8000"


def test_without_the_forward_rules_the_published_port_is_dropped(lab):
    lab.reset("part4-published")
    lab.set("eth1-forward-rules", False)
    journey = lab.probe("outside", HOST, port=2345)
    dropped = journey.dropped_by
    assert (dropped.chain, dropped.rule, dropped.iif, dropped.oif) == ("FORWARD", "policy", "eth1", "hwchiu0")
    assert journey.seen("host:eth1") and not journey.seen("c1:eth0")


def test_the_host_itself_takes_nat_output_not_prerouting(lab):
    lab.reset("part4-published")
    curl = lab.run("host", f"curl -s -m2 {HOST}:2345")
    assert curl.returncode == 7
    refused = lab.probe("host", HOST, port=2345, label="from the host")
    assert not refused.delivered and "(the host itself)" in refused.reason
    assert refused.passed("OUTPUT") and verdicts(refused, "nat", "PREROUTING") == []
    lab.set("output-dnat", True)
    assert "Directory listing" in lab.run("host", f"curl -s -m2 {HOST}:2345/").stdout
    fixed = lab.probe("host", HOST, port=2345, label="nat OUTPUT rule")
    assert fixed.delivered
    assert [v[2] for v in verdicts(fixed, "nat", "OUTPUT")] == ["DNAT"]
    assert fixed.seen("c1:eth0")


def test_hairpin_works_through_br_netfilter_and_breaks_without_it(lab):
    lab.reset("part4-published")
    lab.run("c2", "ip route add default via 10.55.66.1", check=True)
    dropped = lab.probe("c2", HOST, port=2345)
    assert (dropped.dropped_by.iif, dropped.dropped_by.oif) == ("hwchiu0", "hwchiu0")
    lab.iptables("-I FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT")
    works = lab.probe("c2", HOST, port=2345)
    assert works.delivered and works.passed("FORWARD", "reply")     # the bridged reply met conntrack
    lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
    broken = lab.probe("c2", HOST, port=2345)
    assert not broken.delivered and "hairpin NAT is missing" in broken.reason
    answer = broken.hop("c2:eth0").reply                             # what c2 got back...
    assert (answer.src, answer.sport) == ("10.55.66.2", 8000)        # ...is not who it called
    assert broken.died_at == "c2:eth0"
    lab.set("hairpin-masquerade", True)
    fixed = lab.probe("c2", HOST, port=2345)
    assert fixed.delivered and "10.55.66.3 to 10.55.66.1 (MASQUERADE)" in fixed.reason
    assert re.fullmatch(r"10\.55\.66\.1:\d+ > 10\.55\.66\.2:8000", fixed.addresses("c1:eth0"))


def test_bad_part4_input_names_the_fix(lab):
    lab.reset("part3-end")
    with pytest.raises(UnknownNode, match=r"joins the lab at stage part4-start"):
        lab.run("outside", "ip addr")
    with pytest.raises(NetkitError, match="not a TCP port"):
        lab.probe("c1", "8.8.8.8", port=70000)
    with pytest.raises(CommandError, match="did not start listening on port 9000"):
        lab.start("c1", "python3 -m http.server 9001", port=9000)
    assert lab.start("c2", "python3 -m http.server 9000", port=9000)["port"] == 9000
    assert "Directory listing" in lab.run("c2", "curl -s -m2 127.0.0.1:9000/").stdout
