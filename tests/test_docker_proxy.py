"""docker-proxy in the lab's Docker stages, and the `userland-proxy` switch, on the real kernel.

What a real engine does (Engine 20.10.24, tests/test_docker_engine.py; moby's
portmapper, on by default through 29): one docker-proxy per published port and
host address, on 0.0.0.0 and [::]. Its nat rules leave two connections alone,
the host's own to 127.0.0.1 (the OUTPUT jump skips 127.0.0.0/8) and a
container's to the host's address (the DNAT skips `-i docker0`), so both end
in the host's INPUT chain, where the proxy answers and opens a connection of
its own to the container. With `--userland-proxy=false` the kernel does both
instead (tests/data/docker-20.10/userland-proxy-false.rules is what that
engine wrote then).
"""

import uuid
from pathlib import Path

import pytest

from moby_listings import moby_rules
from netkit import Lab, rules
from netkit.errors import BadArgument, CommandError

pytestmark = pytest.mark.lab

ETH0 = "10.0.2.15"
ENGINE_NOPROXY = Path(__file__).parent / "data" / "docker-20.10" / "userland-proxy-false.rules"


def engine_noproxy_nat() -> list[str]:
    """The nat table Engine 20.10.24 wrote with --userland-proxy=false, in the lab's names, as iptables-save
    prints it (tests/data/docker-20.10/userland-proxy-false.rules)."""
    text = ENGINE_NOPROXY.read_text()
    for engine, lab_name in (("docker0", "hwchiu0"), ("172.17.0.0/16", "10.55.66.0/24"),
                             ("172.17.0.2:80", "10.55.66.2:8000"), ("172.17.0.2/32", "10.55.66.2/32"),
                             ("--dport 80 ", "--dport 8000 ")):
        text = text.replace(engine, lab_name)
    return ["*nat"] + text.split("*nat\n")[1].split("COMMIT")[0].splitlines() + ["COMMIT"]


@pytest.fixture(scope="module")
def lab():
    with Lab(name=f"proxy-{uuid.uuid4().hex[:6]}", stage="docker-29") as lab:
        yield lab


def listeners(lab) -> set[tuple[str, str]]:
    """(local address:port, process name) of every listening TCP socket in the host, as `ss -ltnp` shows."""
    found = set()
    for line in lab.run("host", "ss -ltnpH", check=True).stdout.splitlines():
        fields = line.split()
        name = fields[-1].split('"')[1] if '"' in fields[-1] else ""
        found.add((fields[3], name))
    return found


@pytest.mark.parametrize("stage", ["docker-29", "docker-19"])
def test_docker_stages_run_docker_proxy_on_every_host_address(stage):
    with Lab(name=f"proxy-{uuid.uuid4().hex[:6]}", stage=stage) as lab:
        assert listeners(lab) == {("0.0.0.0:8080", "docker-proxy"), ("[::]:8080", "docker-proxy")}
        argv = lab.run("host", "ps -o args= -C docker-proxy", check=True).stdout.splitlines()
        assert len(argv) == 2 and all(line.endswith(" -host-port 8080 -container-ip 10.55.66.2 -container-port 8000")
                                      for line in argv), argv


def test_the_hosts_own_curl_and_c2_through_the_hosts_address_are_answered_by_the_proxy(lab):
    lab.reset("docker-29")
    assert lab.run("host", "curl -s -m2 -o /dev/null -w '%{http_code}' 127.0.0.1:8080").stdout == "200"
    assert lab.run("c2", f"curl -s -m2 -o /dev/null -w '%{{http_code}}' {ETH0}:8080").stdout == "200"

    journeys = {src: lab.probe(src, dst, port=8080) for src, dst in (("host", "127.0.0.1"), ("c2", ETH0))}
    for journey in journeys.values():
        assert journey.delivered, journey
        # the first connection ends in the host: up its INPUT hook, never DNATed, never forwarded
        assert journey.passed("INPUT") and not journey.passed("FORWARD")
        assert not any(entry.dnat for entry in journey.conntrack)
        relay = journey.relay
        assert relay is not None and relay.program == "docker-proxy" and relay.listen == "0.0.0.0:8080"
        # the second connection: the proxy's, from the host's bridge address to c1's server
        onward = relay.journey
        assert onward.delivered and onward.src == "host" and onward.dst == "10.55.66.2" and onward.dport == 8000
        assert onward.src_address == "10.55.66.1"
        for point in ("host:hwchiu0", "host:veth0", "c1:eth0"):
            assert onward.addresses(point).startswith("10.55.66.1:") and onward.seen(point, "reply")
        assert onward.passed("OUTPUT") and onward.passed("INPUT", "reply")
    # c2's own connection was seen on its way into the host with the host's address, untouched, and no further
    assert journeys["c2"].addresses("host:hwchiu0").endswith(f"> {ETH0}:8080")
    assert not journeys["c2"].seen("c1:eth0")


def test_a_connection_dnat_takes_on_has_no_relay(lab):
    lab.reset("docker-29")
    journey = lab.probe("outside", "172.17.9.103", port=8080)
    assert journey.delivered and journey.relay is None
    assert journey.addresses("c1:eth0").endswith("> 10.55.66.2:8000")


def test_the_journey_with_its_relay_survives_json(lab):
    lab.reset("docker-29")
    journey = lab.probe("host", "127.0.0.1", port=8080)
    again = type(journey).from_json(journey.to_json())
    assert again.relay == journey.relay and again.reason == journey.reason


def test_userland_proxy_off_writes_what_the_engine_wrote_and_the_kernel_answers(lab):
    lab.reset("docker-29")
    assert lab.get("userland-proxy") is True
    lab.set("userland-proxy", False)
    assert lab.get("userland-proxy") is False
    assert not any(name == "docker-proxy" for _, name in listeners(lab))
    assert lab.sysctl("net.ipv4.conf.hwchiu0.route_localnet") == "1"
    nat = lab.run("host", "iptables -t nat -S", check=True).stdout.splitlines()
    # the nat rules Engine 20.10 wrote with --userland-proxy=false, in the lab's names (its DOCKER chain's
    # `-i docker0 -j RETURN` aside: the 19.03 layout's, which Docker 29 no longer writes)
    assert [line for line in nat if line.startswith("-A ")] == [
        line for line in engine_noproxy_nat() if line.startswith("-A ")]
    # ... and what Docker 29 writes then (moby's generated listing at docker-v29.0.0)
    assert [line for line in nat if line.startswith("-A ")] == [
        line for line in moby_rules("noproxy")["nat"].render() if line.startswith("-A ")]
    for rule in (rules.NOPROXY_OUTPUT_JUMP, rules.NOPROXY_DNAT, rules.NOPROXY_LOCAL_MASQUERADE, rules.NOPROXY_HAIRPIN):
        assert rule.line in nat

    # the kernel now does the proxy's work: both connections are DNATed straight to c1
    for src, dst in (("host", "127.0.0.1"), ("c2", ETH0)):
        journey = lab.probe(src, dst, port=8080)
        assert journey.delivered and journey.relay is None, journey
        assert any(entry.dnat for entry in journey.conntrack)
    assert lab.run("host", "curl -s -m2 -o /dev/null -w '%{http_code}' 127.0.0.1:8080").stdout == "200"

    lab.set("userland-proxy", True)
    assert lab.get("userland-proxy") is True
    assert listeners(lab) == {("0.0.0.0:8080", "docker-proxy"), ("[::]:8080", "docker-proxy")}
    assert lab.sysctl("net.ipv4.conf.hwchiu0.route_localnet") == "0"
    assert lab.probe("host", "127.0.0.1", port=8080).relay is not None


def test_without_a_proxy_the_hosts_curl_is_refused():
    # The lab's part 4 stage has the article's DNAT and no proxy: the host's own curl is refused there.
    with Lab(name=f"proxy-{uuid.uuid4().hex[:6]}", stage="part4-published") as lab:
        assert lab.run("host", "curl -s -m2 127.0.0.1:2345").returncode == 7
        journey = lab.probe("host", "127.0.0.1", port=2345)
        assert not journey.delivered and journey.relay is None


def test_userland_proxy_is_refused_off_its_stages_and_nothing_changes():
    with Lab(name=f"proxy-{uuid.uuid4().hex[:6]}", stage="part4-published") as lab:
        before = lab.run("host", "iptables-save -t nat | grep -v '^#'; ss -ltnH", check=True).stdout
        with pytest.raises(BadArgument) as refused:
            lab.set("userland-proxy", False)
        assert refused.value.stages == ("docker-29", "docker-19")
        assert "lab.reset('docker-29')" in str(refused.value)      # the fix, named
        assert lab.run("host", "iptables-save -t nat | grep -v '^#'; ss -ltnH", check=True).stdout == before


def test_userland_proxy_off_on_the_19_layout_is_what_engine_20_10_wrote():
    with Lab(name=f"proxy-{uuid.uuid4().hex[:6]}", stage="docker-19") as lab:
        def nat():
            return [line for line in lab.run("host", "iptables-save -t nat", check=True).stdout.splitlines()
                    if not line.startswith("#")]
        before = nat()
        lab.set("userland-proxy", False)
        assert nat() == engine_noproxy_nat()
        assert not any(name == "docker-proxy" for _, name in listeners(lab))
        assert lab.sysctl("net.ipv4.conf.hwchiu0.route_localnet") == "1"
        for src, dst in (("host", "127.0.0.1"), ("c2", ETH0)):
            journey = lab.probe(src, dst, port=8080)
            assert journey.delivered and journey.relay is None and any(e.dnat for e in journey.conntrack), journey
        lab.set("userland-proxy", True)
        assert nat() == before
        assert listeners(lab) == {("0.0.0.0:8080", "docker-proxy"), ("[::]:8080", "docker-proxy")}


def test_a_port_already_held_is_refused_before_anything_changes(lab):
    lab.reset("docker-29")
    lab.set("userland-proxy", False)
    server = lab.start("host", "python3 -m http.server 8080 --bind 0.0.0.0", port=8080)
    before = lab.run("host", "iptables-save -t nat | grep -v '^#'", check=True).stdout
    with pytest.raises(CommandError) as refused:
        lab.set("userland-proxy", True)
    assert (refused.value.port, refused.value.holder) == (8080, server["pid"])
    assert refused.value.command.startswith("docker-proxy ")
    assert f"kill {server['pid']}" in str(refused.value)      # the fix, named
    assert lab.run("host", "iptables-save -t nat | grep -v '^#'", check=True).stdout == before
    assert lab.get("userland-proxy") is False
