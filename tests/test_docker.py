"""What Docker itself writes (29 and 19.03), chain by chain, as journeys on the real kernel."""

import uuid

import pytest

from moby_listings import moby_nft, moby_rules, parse_nft
from netkit import Lab

pytestmark = pytest.mark.lab

HOST = "172.17.9.103"
PUBLISHED_ACCEPT = "-D DOCKER -d 10.55.66.2/32 ! -i hwchiu0 -o hwchiu0 -p tcp -m tcp --dport 8000 -j ACCEPT"
RAW_GUARD = "-t raw -D PREROUTING -d 10.55.66.2/32 ! -i hwchiu0 -j DROP"


@pytest.fixture(scope="module")
def lab():
    with Lab(name=f"d29-{uuid.uuid4().hex[:6]}", stage="docker-29") as lab:
        yield lab


def out(lab):
    return lab.probe("c1", "8.8.8.8")


def published(lab):
    return lab.probe("outside", HOST, port=8080)


def dropped_by(journey):
    verdict = journey.dropped_by
    return verdict and (verdict.table, verdict.chain, verdict.rule)


def test_docker_29_lets_containers_out_and_publishes_the_port(lab):
    lab.reset("docker-29")
    outgoing = out(lab)
    assert outgoing.delivered and outgoing.addresses("host:eth0") == "10.0.2.15 > 8.8.8.8"
    chains = [(v.kind, v.chain, v.verdict) for v in outgoing.verdicts if v.table == "filter"]
    assert ("request", "DOCKER-FORWARD", "ACCEPT") in chains    # -i hwchiu0 -j ACCEPT
    assert ("reply", "DOCKER-CT", "ACCEPT") in chains           # only because it is a reply
    assert lab.probe("c1", "10.55.66.3").delivered
    web = published(lab)
    assert web.delivered and web.addresses("c1:eth0").endswith("> 10.55.66.2:8000")
    assert ("request", "DOCKER", "ACCEPT") in [(v.kind, v.chain, v.verdict) for v in web.verdicts]
    assert lab.run("host", f"curl -s -m2 -o /dev/null -w '%{{http_code}}' {HOST}:8080").stdout == "200"


def test_each_docker_chain_matters(lab):
    lab.reset("docker-29")
    lab.iptables("-D DOCKER-CT -o hwchiu0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    no_ct = out(lab)
    assert not no_ct.delivered and dropped_by(no_ct) == ("filter", "DOCKER", "-A DOCKER ! -i hwchiu0 -o hwchiu0 -j DROP")
    assert no_ct.dropped_by.kind == "reply"
    lab.reset("docker-29")
    lab.iptables("-D DOCKER-FORWARD -i hwchiu0 -j ACCEPT")
    assert dropped_by(out(lab)) == ("filter", "FORWARD", "policy")
    assert dropped_by(lab.probe("c1", "10.55.66.3")) == ("filter", "FORWARD", "policy")
    lab.reset("docker-29")
    lab.iptables(PUBLISHED_ACCEPT)
    assert dropped_by(published(lab)) == ("filter", "DOCKER", "-A DOCKER ! -i hwchiu0 -o hwchiu0 -j DROP")


def test_the_raw_guard_stops_direct_connections_to_a_container(lab):
    lab.reset("docker-29")
    lab.run("outside", "ip route add 10.55.66.0/24 via 172.17.9.103", check=True)
    direct = lab.probe("outside", "10.55.66.2", port=8000)
    assert dropped_by(direct) == ("raw", "PREROUTING", "-A PREROUTING -d 10.55.66.2/32 ! -i hwchiu0 -j DROP")
    lab.iptables(RAW_GUARD)
    # Without the guard, the published port's ACCEPT matches a direct connection too...
    assert lab.probe("outside", "10.55.66.2", port=8000).delivered
    # ...while any other port still meets DOCKER's DROP.
    other = lab.probe("outside", "10.55.66.2", port=9999)
    assert dropped_by(other) == ("filter", "DOCKER", "-A DOCKER ! -i hwchiu0 -o hwchiu0 -j DROP")


def test_docker_user_sees_packets_after_dnat(lab):
    lab.reset("docker-29")
    lab.iptables("-I DOCKER-USER -s 172.17.9.10 -p tcp --dport 8080 -j DROP")
    assert published(lab).delivered                     # by then the port is 8000: no match
    lab.iptables("-I DOCKER-USER -s 172.17.9.10 -p tcp -m conntrack --ctorigdstport 8080 -j DROP")
    blocked = published(lab)
    assert dropped_by(blocked)[:2] == ("filter", "DOCKER-USER")
    assert out(lab).delivered


def test_icc_false_needs_br_netfilter(lab):
    lab.reset("docker-29")
    lab.set("icc-false", True)
    # what Docker 29 writes for --icc=false (moby's listing at docker-v29.0.0), filter table, in the lab's names
    # (policies aside: the listing's host had forwarding on already, so its FORWARD policy stayed ACCEPT)
    written = lab.run("host", "iptables -S", check=True).stdout.splitlines()
    assert [line for line in written if not line.startswith("-P ")] == [
        line for line in moby_rules("noicc")["filter"].render() if not line.startswith("-P ")]
    outgoing = lab.probe("c1", "8.8.8.8")
    assert outgoing.delivered and ("request", "DOCKER-FORWARD", "-A DOCKER-FORWARD -i hwchiu0 ! -o hwchiu0 -j ACCEPT") in [
        (v.kind, v.chain, v.rule) for v in outgoing.verdicts]
    assert dropped_by(lab.probe("c1", "10.55.66.3")) == (
        "filter", "DOCKER-FORWARD", "-A DOCKER-FORWARD -i hwchiu0 -o hwchiu0 -j DROP")
    lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)   # a Docker 27.3+ host without br_netfilter (moby PR 48492)
    assert lab.probe("c1", "10.55.66.3").delivered


def test_the_articles_rule_lets_the_outside_open_connections_dockers_does_not():
    with Lab(name=f"art-{uuid.uuid4().hex[:6]}", stage="part4-published") as article:
        article.run("outside", "ip route add 10.55.66.0/24 via 172.17.9.103", check=True)
        assert article.probe("outside", "10.55.66.2", port=8000).delivered   # -i eth1 -o hwchiu0 -j ACCEPT
    with Lab(name=f"d29b-{uuid.uuid4().hex[:6]}", stage="docker-29") as docker:
        docker.run("outside", "ip route add 10.55.66.0/24 via 172.17.9.103", check=True)
        docker.iptables(RAW_GUARD)
        assert not docker.probe("outside", "10.55.66.2", port=9999).delivered


def test_docker_19_layout_gives_the_same_outcomes():
    with Lab(name=f"d19-{uuid.uuid4().hex[:6]}", stage="docker-19") as lab:
        assert "-A FORWARD -j DOCKER-ISOLATION-STAGE-1" in lab.run("host", "iptables -S FORWARD").stdout
        assert lab.probe("c1", "8.8.8.8").delivered
        assert lab.probe("c1", "10.55.66.3").delivered
        web = lab.probe("outside", HOST, port=8080)
        assert web.delivered
        assert [(v.table, v.verdict) for v in web.verdicts if v.chain == "DOCKER"] == [("nat", "DNAT"), ("filter", "ACCEPT")]


def test_docker_29_nftables_backend_writes_its_own_table_and_gives_the_same_outcomes():
    """`--firewall-backend=nftables`: moby's own table (tests/data/moby-v29.0.0), the same probes, nft's words."""
    with Lab(name=f"d29nft-{uuid.uuid4().hex[:6]}", stage="docker-29-nft") as lab:
        # no iptables rule at all, and the table the kernel holds is moby's listing in the lab's names
        assert [line for line in lab.run("host", "iptables-save", check=True).stdout.splitlines()
                if line.startswith("-A ")] == []
        # (moby's listing drops the counters' running values, as `nft -s` does)
        listed = parse_nft(lab.run("host", "nft -s list table ip docker-bridges", check=True).stdout.splitlines())
        # (nft 1.0.6 here takes and prints the output hook's nat priority as its value, -100, not `dstnat`)
        wanted = {name: [line.replace("hook output priority dstnat", "hook output priority -100") for line in lines]
                  for name, lines in moby_nft("portmap").chains.items()}
        assert listed.chains == wanted and listed.maps == moby_nft("portmap").maps
        assert lab.run("host", "iptables -S FORWARD", check=True).stdout.startswith("-P FORWARD ACCEPT")

        web = published(lab)
        assert web.delivered and web.addresses("c1:eth0").endswith("> 10.55.66.2:8000")
        assert ("docker-bridges", "filter-forward-in__hwchiu0", "ACCEPT") in [
            (v.table, v.chain, v.verdict) for v in web.verdicts if v.kind == "request"]
        outgoing = out(lab)
        assert outgoing.delivered and outgoing.addresses("host:eth0") == "10.0.2.15 > 8.8.8.8"
        assert any(v.chain == "nat-postrouting-out__hwchiu0" and v.rule.endswith('masquerade comment "MASQUERADE"')
                   for v in outgoing.verdicts)
        lab.change("outside", "ip route replace 10.55.66.0/24 via 172.17.9.103")
        # unpublished: dropped by Docker's own table, with FORWARD's policy at ACCEPT
        to_c2 = lab.probe("outside", "10.55.66.3")
        assert dropped_by(to_c2) == ("docker-bridges", "filter-forward-in__hwchiu0",
                                     'counter drop comment "UNPUBLISHED PORT DROP"')
        # straight to the published container: the raw guard
        direct = lab.probe("outside", "10.55.66.2", port=8000)
        assert dropped_by(direct) == ("docker-bridges", "raw-PREROUTING",
                                      'ip daddr 10.55.66.2 iifname != "hwchiu0" counter drop comment "DROP DIRECT ACCESS"')
        # docker-proxy runs with this backend too
        assert lab.probe("c2", "10.0.2.15", port=8080).relay is not None
