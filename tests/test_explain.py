"""Pure tests: journeys rebuilt from recorded kernel data, parsing, JSON, pcap (no root needed)."""

import json
from pathlib import Path

import pytest

from netkit import explain, topology
from netkit.journey import ConntrackEntry, Journey, Verdict

DATA = Path(__file__).parent / "data"
CASES = sorted(p.name[len("raw-"):-len(".json")] for p in DATA.glob("raw-*.json"))


def raw(case):
    return json.loads((DATA / f"raw-{case}.json").read_text())


def test_every_recorded_case_is_here():
    assert set(CASES) >= {"s1-forward-drop", "s1-nf-call-0", "s2-no-route", "s2-no-masquerade",
                          "s2-masquerade", "s2-forward-drop", "s2-forward-rules"}


@pytest.mark.parametrize("case", CASES)
def test_rebuilding_a_recorded_probe_gives_the_recorded_journey(case):
    rebuilt = explain.build(raw(case))
    assert rebuilt == Journey.from_json(DATA / f"recorded-{case}.json")


@pytest.mark.parametrize("case", CASES)
def test_journeys_round_trip_through_json(case):
    journey = explain.build(raw(case))
    assert Journey.from_json(journey.to_json()) == journey


def test_forward_drop_is_explained_from_the_trace():
    journey = explain.build(raw("s1-forward-drop"))
    assert journey.reason == "dropped by filter FORWARD policy DROP in host"
    assert journey.dropped_by.command == "iptables -t filter -P FORWARD DROP"
    assert [h.point for h in journey.hops if h.on_path] == list(topology.path("c1", "c2"))


def test_masquerade_is_seen_as_a_rewrite_at_eth0():
    journey = explain.build(raw("s2-masquerade"))
    assert journey.rewritten("host:eth0") and journey.rewritten("internet:eth0")
    assert not journey.rewritten("host:hwchiu0")
    # The reply starts at 8.8.8.8 as 8.8.8.8 > 10.0.2.15; conntrack rewrites it on its way to hwchiu0.
    assert not journey.rewritten("host:eth0", "reply")
    assert journey.rewritten("host:hwchiu0", "reply") and journey.rewritten("c1:eth0", "reply")
    assert "conntrack rewrote 10.55.66.2 to 10.0.2.15" in journey.reason


def test_without_the_trace_a_drop_is_only_a_lost_packet():
    data = raw("s1-forward-drop")
    data["trace"] = []
    journey = explain.build(data)
    assert journey.dropped_by is None
    assert journey.reason.startswith("no reply within")
    assert journey.died_at == "host:veth0"


def test_parse_trace_groups_lines_by_chain_visit():
    lines = [
        'trace id 1a ip filter FORWARD packet: iif "hwchiu0" oif "eth0" ip saddr 10.55.66.2 '
        'ip daddr 8.8.8.8 icmp type echo-request icmp id 58 icmp sequence 1',
        "trace id 1a ip filter FORWARD unknown rule handle 2 (verdict accept)",
        "trace id 1a ip filter FORWARD policy drop ",
        "not a trace line",
    ]
    (visit,) = explain.parse_trace(lines)
    assert (visit["table"], visit["chain"], visit["iif"], visit["oif"]) == ("filter", "FORWARD", "hwchiu0", "eth0")
    assert (visit["saddr"], visit["icmp_id"], visit["icmp_type"]) == ("10.55.66.2", 58, "echo-request")
    assert visit["decisions"] == [("rule", "unknown rule handle 2", 2, "ACCEPT"), ("policy", "DROP")]


def test_traced_rules_are_named_by_their_iptables_spelling():
    rules = {"nat POSTROUTING": [[2, 'oifname "eth0" ip saddr 10.55.66.2 counter masquerade',
                                  "-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"]]}
    by_text = explain._rule_text(rules, "nat", "POSTROUTING", None,
                                 'oifname "eth0" ip saddr 10.55.66.2 counter packets 3 bytes 252 masquerade')
    by_handle = explain._rule_text(rules, "nat", "POSTROUTING", 2, "unknown rule handle 2")
    assert by_text == by_handle == "-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"
    assert explain._target(by_text, "ACCEPT") == "MASQUERADE"


def test_parse_conntrack_reads_both_tuples():
    line = ("icmp     1 29 src=10.55.66.2 dst=8.8.8.8 type=8 code=0 id=46 src=8.8.8.8 "
            "dst=10.0.2.15 type=0 code=0 id=46 mark=0 use=1")
    (entry,) = explain.parse_conntrack([line, "conntrack v1.4.7: 1 flow entries have been shown."])
    assert entry.original == ("10.55.66.2", "8.8.8.8") and entry.reply == ("8.8.8.8", "10.0.2.15")
    assert entry.nat
    assert not ConntrackEntry("icmp", ("10.55.66.2", "10.55.66.3"), ("10.55.66.3", "10.55.66.2")).nat


def test_parse_frame_reads_icmp_and_ignores_arp():
    frame = bytes.fromhex(raw("s2-masquerade")["frames"][0]["frame"])
    packet = explain.parse_frame(frame)
    assert packet["src"] == "10.55.66.2" and packet["dst"] == "8.8.8.8" and packet["icmp_type"] == 8
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert explain.parse_frame(arp) is None


def test_verdicts_read_as_the_command_a_student_types():
    policy = Verdict("filter", "FORWARD", "policy", "DROP")
    rule = Verdict("nat", "POSTROUTING", "-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE", "MASQUERADE")
    assert str(policy) == "filter FORWARD policy DROP in host" and policy.dropped
    assert rule.command == "iptables -t nat -A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"
    assert not rule.dropped


def test_a_recorded_journey_writes_a_pcap_with_points_as_interfaces(tmp_path):
    from scapy.utils import rdpcap

    journey = Journey.from_json(DATA / "recorded-s2-masquerade.json")
    packets = rdpcap(str(journey.to_pcap(tmp_path / "j.pcapng")))
    assert [p.sniffed_on for p in packets] == [s.point for s in journey.sightings()]
    assert packets[0].comments == [b"request at c1:eth0: 10.55.66.2 > 8.8.8.8"]
    assert {p.sniffed_on for p in packets} == set(topology.path("c1", "internet"))


def test_topology_paths():
    assert topology.path("c1", "c2") == ("c1:eth0", "host:veth0", "host:veth1", "c2:eth0")
    assert topology.path("c1", "internet")[-2:] == ("host:eth0", "internet:eth0")
    assert topology.path("c1", "host") == ("c1:eth0", "host:veth0", "host:hwchiu0")
    assert topology.owner("8.8.8.8") == "internet" and topology.owner("9.9.9.9") is None
