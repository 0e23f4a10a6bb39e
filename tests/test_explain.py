"""Pure tests: journeys rebuilt from recorded kernel data, parsing, JSON, pcap (no root needed)."""

import errno
import json
from pathlib import Path

import pytest

from netkit import explain, topology
from netkit.errors import BadArgument
from netkit.journey import ConntrackEntry, Journey, Verdict
from netkit.outcome import Result, Rewrite

pytestmark = pytest.mark.pure   # recorded data only: no lab, no root (./quickstart test --fast)

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
    assert journey.outcome.result is Result.NO_REPLY
    assert (journey.outcome.packet, journey.outcome.last, journey.outcome.next) == ("request", "host:veth0",
                                                                                    "host:veth1")
    assert journey.died_at == "host:veth0"


# Every recorded case's outcome, as a value: (result, packet, last, next, node, hook, the verdict's rule or policy)
OUTCOMES = {
    "s1-forward-drop": (Result.DROPPED, "request", "host:veth0", "host:veth1", "host", "FORWARD", "policy"),
    "s1-nf-call-0": (Result.DELIVERED, None, None, None, None, None, None),
    "s1-forward-accept": (Result.DELIVERED, None, None, None, None, None, None),
    "s2-no-route": (Result.NO_ROUTE, "request", None, "c1:eth0", "c1", None, None),
    "s2-no-masquerade": (Result.NO_ROUTE_BACK, "reply", None, "internet:eth0", "internet", None, None),
    "s2-masquerade": (Result.DELIVERED, None, None, None, None, None, None),
    "s2-forward-drop": (Result.DROPPED, "request", "host:hwchiu0", "host:eth0", "host", "FORWARD", "policy"),
    "s2-forward-rules": (Result.DELIVERED, None, None, None, None, None, None),
    "p4-dnat": (Result.DELIVERED, None, None, None, None, None, None),
    "p4-no-dnat": (Result.REFUSED, "request", "host:eth1", None, "host", None, None),
    "p4-local-refused": (Result.REFUSED, "request", None, None, "host", None, None),
    "p4-local-output": (Result.DELIVERED, None, None, None, None, None, None),
    "p4-hairpin-br-netfilter": (Result.DELIVERED, None, None, None, None, None, None),
    "p4-hairpin-broken": (Result.WRONG_SOURCE, "reply", "c2:eth0", None, "c2", None, None),
    "p4-hairpin-masquerade": (Result.DELIVERED, None, None, None, None, None, None),
    "d29-published": (Result.DELIVERED, None, None, None, None, None, None),
    "d29-proxy-local": (Result.DELIVERED, None, None, None, None, None, None),
    "d29-proxy-hairpin": (Result.DELIVERED, None, None, None, None, None, None),
    "d29-noproxy-local": (Result.DELIVERED, None, None, None, None, None, None),
    "d29-noproxy-hairpin": (Result.DELIVERED, None, None, None, None, None, None),
}


@pytest.mark.parametrize("case", ["d29-proxy-local", "d29-proxy-hairpin"])
def test_a_relayed_connection_keeps_the_proxy_and_its_second_connection(case):
    journey = explain.build(raw(case))
    relay = journey.relay
    assert relay.program == "docker-proxy" and relay.listen == "0.0.0.0:8080" and isinstance(relay.pid, int)
    onward = relay.journey
    assert onward.delivered and (onward.src, onward.dst, onward.dport) == ("host", "10.55.66.2", 8000)
    assert [hop.point for hop in onward.hops if hop.on_path] == ["host:hwchiu0", "host:veth0", "c1:eth0"]
    assert all(onward.seen(p) and onward.seen(p, "reply") for p in ("host:hwchiu0", "host:veth0", "c1:eth0"))
    # the first connection ended in the host: up its INPUT hook, never forwarded, never DNATed
    assert journey.passed("INPUT") and not journey.passed("FORWARD")
    assert not any(entry.dnat for entry in journey.conntrack)
    assert not any(journey.seen(p) for p in ("host:veth0", "c1:eth0"))
    assert journey == Journey.from_json(journey.to_json())


@pytest.mark.parametrize("case", ["d29-noproxy-local", "d29-noproxy-hairpin"])
def test_without_the_proxy_the_kernel_dnats_and_nothing_is_relayed(case):
    journey = explain.build(raw(case))
    assert journey.relay is None and any(entry.dnat for entry in journey.conntrack)


@pytest.mark.parametrize("case", CASES)
def test_each_recorded_outcome_is_a_value(case):
    o = explain.build(raw(case)).outcome
    verdict = o.verdict.rule if o.verdict is not None else None
    assert (o.result, o.packet, o.last, o.next, o.node, o.hook, verdict) == OUTCOMES[case]


def test_rewrites_name_what_made_them():
    (out, back) = explain.build(raw("s2-masquerade")).outcome.rewrites
    assert out == Rewrite("request", "src", "10.55.66.2", "10.0.2.15", "host:eth0", "MASQUERADE")
    assert back == Rewrite("reply", "dst", "10.0.2.15", "10.55.66.2", "host:hwchiu0", "conntrack")
    (dnat, undone) = explain.build(raw("p4-dnat")).outcome.rewrites
    assert dnat == Rewrite("request", "dst", "172.17.9.103", "10.55.66.2", "host:hwchiu0", "DNAT")
    assert (undone.packet, undone.field, undone.before, undone.by) == ("reply", "src", "10.55.66.2", "conntrack")
    hairpin = explain.build(raw("p4-hairpin-masquerade")).outcome.rewrites
    assert {(r.packet, r.field, r.by) for r in hairpin} >= {("request", "src", "MASQUERADE"),
                                                            ("request", "dst", "DNAT")}


ECHO_IP = ("45000054000040004001" "0000" "0a374202" "08080808")       # 10.55.66.2 > 8.8.8.8, ICMP
ECHO_ICMP = "0800f7ff003a0001"                                      # echo request, id 58, seq 1


def test_trace_events_are_grouped_by_chain_visit():
    events = [
        {"id": "1a", "table": "filter", "chain": "FORWARD", "type": "rule", "handle": 2, "verdict": "jump",
         "target": "DOCKER-USER", "iif": "hwchiu0", "oif": "eth0", "network": ECHO_IP, "transport": ECHO_ICMP},
        {"id": "1a", "table": "filter", "chain": "DOCKER-USER", "type": "return", "handle": None,
         "verdict": None, "target": None},
        {"id": "1a", "table": "filter", "chain": "FORWARD", "type": "rule", "handle": None, "verdict": "continue",
         "target": None},
        {"id": "1a", "table": "filter", "chain": "FORWARD", "type": "policy", "handle": None, "verdict": "drop",
         "target": None},
    ]
    forward, user, back = explain.visits(events)
    assert (forward["table"], forward["chain"], forward["iif"], forward["oif"]) == ("filter", "FORWARD",
                                                                                    "hwchiu0", "eth0")
    assert (forward["saddr"], forward["icmp_id"], forward["icmp_type"]) == ("10.55.66.2", 58, "echo-request")
    assert forward["decisions"] == [("rule", 2, "JUMP DOCKER-USER")]
    # the user chain has no headers of its own: it shows the packet of the chain that jumped
    assert user["chain"] == "DOCKER-USER" and user["saddr"] == "10.55.66.2" and user["decisions"] == []
    # back in FORWARD after the jump: a new visit, in order; a handle-less "rule" is the chain's end (skipped)
    assert back["chain"] == "FORWARD" and back["decisions"] == [("policy", "DROP")] and back["saddr"] == "10.55.66.2"


def test_traced_rules_are_named_by_their_iptables_spelling():
    rules = {"nat POSTROUTING": [[2, "-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"]]}
    named = explain._rule_text(rules, "nat", "POSTROUTING", 2)
    assert named == "-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"
    assert explain._target(named, "ACCEPT") == "MASQUERADE"
    assert explain._rule_text(rules, "nat", "POSTROUTING", 9) == "nft rule (handle 9) in nat POSTROUTING"
    assert explain._target("-A FORWARD -j DOCKER-USER", "JUMP DOCKER-USER") == "DOCKER-USER"


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


@pytest.mark.parametrize("case", ["s2-forward-rules", "s2-masquerade", "p4-dnat", "s1-forward-accept"])
def test_a_reply_that_reuses_its_requests_trace_id_is_still_the_reply(case):
    """The kernel derives a trace id from the packet buffer's address, so a reply can carry its request's id
    (seen once in a full test run: the reply's FORWARD ACCEPT was counted as the request's). Each visit's own
    headers decide whether it is the request or the reply."""
    recorded = raw(case)
    first = recorded["trace"][0]["id"]
    shared = {**recorded, "trace": [{**event, "id": first} for event in recorded["trace"]]}
    assert len({e["id"] for e in recorded["trace"]}) > 1
    expected = explain.build(recorded)
    rebuilt = explain.build(shared)
    assert [(v.kind, v.table, v.chain, v.rule, v.verdict) for v in rebuilt.verdicts] == \
           [(v.kind, v.table, v.chain, v.rule, v.verdict) for v in expected.verdicts]
    assert rebuilt.outcome == expected.outcome


@pytest.mark.parametrize("code, result", [(errno.ENETUNREACH, Result.NO_ROUTE), (errno.EHOSTUNREACH, Result.NO_ROUTE),
                                          (errno.EPERM, Result.SEND_ERROR), (errno.EACCES, Result.SEND_ERROR)])
def test_a_send_error_is_decided_from_its_errno_and_its_text_is_only_shown(code, result):
    data = raw("s2-no-route")
    # the text is what a translated C library might say: it decides nothing
    data.update(send_errno=code, send_errname=errno.errorcode[code], send_error="裝置上已無多餘空間")
    journey = explain.build(data)
    assert journey.outcome.result is result
    assert journey.outcome.error == "裝置上已無多餘空間"


def test_the_no_route_record_keeps_the_errno_and_its_name():
    data = raw("s2-no-route")
    assert (data["send_errno"], data["send_errname"]) == (errno.ENETUNREACH, "ENETUNREACH")


def test_a_record_with_a_send_error_text_and_no_errno_is_refused():
    data = raw("s2-no-route")
    del data["send_errno"], data["send_errname"]
    with pytest.raises(BadArgument, match="record it again"):
        explain.build(data)
