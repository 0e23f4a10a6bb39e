"""moby's own rule listings at docker-v29.0.0: the data is moby's, it says what the kit claims,
and the lab's `docker-29` stage writes what it lists.

Pure: reads files under tests/data/moby-v29.0.0/ (see its README.md) and the lab's stage data
(`netkit.topology`, through `netkit.build.restore_input`); no lab, no root.
"""

from __future__ import annotations

import difflib

import pytest

import moby_listings as moby
from moby_listings import Table, lab_rules, moby_nft, moby_rules

pytestmark = pytest.mark.pure   # recorded data only: no lab, no root (./quickstart test --fast)

# How a moby listing is put in the lab's names (moby_listings.LAB_NAMES, LAB_PORTS, IDLE):
#
#   moby's listing (docker-v29.0.0)       the lab
#   bridge1 (the container's network)     hwchiu0 (plays docker0)
#   192.0.2.0/24                          10.55.66.0/24
#   192.0.2.1   (gateway)                 10.55.66.1
#   192.0.2.2   (container c1)            10.55.66.2   (also 192.0.2.2/32 -> 10.55.66.2/32)
#   container port 80                     8000         (c1's web server)
#   host port 8080 (`-p 8080:80`)         8080
#   docker0, 172.17.0.0/16                left out: the daemon's default bridge, with no container,
#                                         next to bridge1 in moby's listing
MAPPING = {
    "bridge1": "hwchiu0",
    "192.0.2.0/24": "10.55.66.0/24",
    "192.0.2.1": "10.55.66.1",
    "192.0.2.2": "10.55.66.2",
    "192.0.2.2/32": "10.55.66.2/32",
}
PORTS = {"80": "8000", "8080": "8080"}
LEFT_OUT = {"docker0", "172.17.0.0/16"}


def test_the_mapping_is_the_one_written_above():
    assert (moby.LAB_NAMES, moby.LAB_PORTS, moby.IDLE) == (MAPPING, PORTS, LEFT_OUT)


# -- the data is moby's --------------------------------------------------------------------------

ALL = [("iptables", case) for case in moby.CASES] + [("nftables", case) for case in moby.NFT_CASES]


@pytest.mark.parametrize("kind,case", ALL)
def test_each_file_names_its_source(kind, case):
    _, path, _ = (moby.CASES if kind == "iptables" else moby.NFT_CASES)[case]
    first = moby.header(kind, case)
    for part in (moby.REPOSITORY, f"tag {moby.TAG}", f"commit {moby.COMMIT}", f"path {path}"):
        assert part in first, f"{kind} {case}: the header line does not say {part!r}: {first}"


@pytest.mark.parametrize("kind,case", ALL)
def test_each_file_is_moby_s_verbatim(kind, case):
    # The git blob id of the text below the header is the id of moby's file at the tag
    # (`git rev-parse docker-v29.0.0:<path>` in moby's repository).
    _, path, blob = (moby.CASES if kind == "iptables" else moby.NFT_CASES)[case]
    assert moby.git_blob_id(moby.moby_text(kind, case)) == blob, f"{kind} {case} is not moby's {path} at {moby.TAG}"


@pytest.mark.parametrize("case", moby.CASES)
def test_each_listing_is_the_published_port_case(case):
    text = moby.moby_text("iptables", case)
    assert "docker run --network bridge1 -p 8080:80 --name c1 busybox" in text
    assert ("dockerd --userland-proxy=false" in text) == (case == "noproxy")
    assert ("com.docker.network.bridge.enable_icc=false" in text) == (case == "noicc")


# -- the parser ---------------------------------------------------------------------------------

def test_the_parser_reads_every_command_of_the_listing():
    raw = moby.read_listing(moby.moby_text("iptables", "portmap"))
    assert list(raw) == ["filter", "nat", "raw"]
    # every -P/-N/-A line of the markdown is in exactly one table
    shown = [line.strip() for line in moby.moby_text("iptables", "portmap").splitlines()
             if line.startswith("    -") and line.strip()[:2] in ("-P", "-N", "-A")]
    parsed = [line for table in raw.values() for line in table.render()]
    assert sorted(shown) == sorted(parsed)
    assert len(shown) == 9 + 14 + 4 + 1 + 5 + 2 + 1


def test_the_left_out_rules_are_the_default_bridge_s_own_and_only_those():
    # moby's listing has docker0's per-network rules next to bridge1's. Put in the lab's names
    # (docker0 -> hwchiu0, 172.17.0.0/16 -> 10.55.66.0/24), they are bridge1's rules without the
    # three a container with a published port adds: so leaving them out loses nothing the lab's
    # single bridge needs, and the default bridge gets the same rules a user network does.
    raw = moby.read_listing(moby.moby_text("iptables", "portmap"))
    swap = {"docker0": "hwchiu0", "172.17.0.0/16": "10.55.66.0/24"}
    idle = {name: [" ".join(swap.get(w, w) for w in rule.split()) for rule in table.rules if moby.idle(rule)]
            for name, table in raw.items()}
    kept = moby_rules("portmap")
    per_container = {
        "filter": ["-A DOCKER -d 10.55.66.2/32 ! -i hwchiu0 -o hwchiu0 -p tcp -m tcp --dport 8000 -j ACCEPT"],
        "nat": ["-A DOCKER ! -i hwchiu0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.55.66.2:8000"],
        "raw": ["-A PREROUTING -d 10.55.66.2/32 ! -i hwchiu0 -j DROP"],
    }
    shared = ("-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD", "-A DOCKER-FORWARD -j DOCKER-CT",
              "-A DOCKER-FORWARD -j DOCKER-INTERNAL", "-A DOCKER-FORWARD -j DOCKER-BRIDGE",
              "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
              "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER")
    for name, table in kept.items():
        per_network = [r for r in table.rules if r not in per_container[name] and r not in shared]
        assert idle[name] == per_network, f"{name}: docker0's rules {idle[name]} != bridge1's {per_network}"


def test_the_lab_names_leave_no_listing_name_behind():
    for case in moby.CASES:
        for table in moby_rules(case).values():
            text = "\n".join(table.render())
            for name in ("bridge1", "docker0", "192.0.2.", "172.17."):
                assert name not in text, f"{case}: {name} left in\n{text}"
    with pytest.raises(ValueError):
        moby.lab_line("-A DOCKER -d 192.0.2.9/32 -j ACCEPT")     # an address the mapping does not know
    with pytest.raises(KeyError):
        moby.lab_line("-A DOCKER -p tcp -m tcp --dport 443 -j ACCEPT")     # nor a port


def test_unknown_cases_are_named():
    with pytest.raises(KeyError, match="portmap, noproxy, noicc"):
        moby_rules("nope")
    with pytest.raises(KeyError, match="portmap"):
        moby_nft("noproxy")


# -- what each case says ------------------------------------------------------------------------

def test_portmap_is_what_lab_facts_quotes():
    # ../shared/reference/LAB-FACTS.md, "What Docker really writes", in the lab's names.
    rules = moby_rules("portmap")
    assert rules["filter"].rules == [
        "-A FORWARD -j DOCKER-USER",
        "-A FORWARD -j DOCKER-FORWARD",
        "-A DOCKER -d 10.55.66.2/32 ! -i hwchiu0 -o hwchiu0 -p tcp -m tcp --dport 8000 -j ACCEPT",
        "-A DOCKER ! -i hwchiu0 -o hwchiu0 -j DROP",
        "-A DOCKER-BRIDGE -o hwchiu0 -j DOCKER",
        "-A DOCKER-CT -o hwchiu0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A DOCKER-FORWARD -j DOCKER-CT",
        "-A DOCKER-FORWARD -j DOCKER-INTERNAL",
        "-A DOCKER-FORWARD -j DOCKER-BRIDGE",
        "-A DOCKER-FORWARD -i hwchiu0 -j ACCEPT",
    ]
    assert rules["filter"].chains == ["DOCKER", "DOCKER-BRIDGE", "DOCKER-CT", "DOCKER-FORWARD",
                                      "DOCKER-INTERNAL", "DOCKER-USER"]
    assert rules["filter"].chain("DOCKER-USER") == []              # empty since 28.2.2 (moby PR 50098)
    assert not any("ISOLATION" in line for line in rules["filter"].render())    # gone in 29.0 (PR 49981)
    assert rules["nat"].rules == [
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
        "-A POSTROUTING -s 10.55.66.0/24 ! -o hwchiu0 -j MASQUERADE",
        "-A DOCKER ! -i hwchiu0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.55.66.2:8000",
    ]
    # the raw guard: per container (no port) since 28.2.0 (PR 49829)
    assert rules["raw"].rules == ["-A PREROUTING -d 10.55.66.2/32 ! -i hwchiu0 -j DROP"]
    # moby's generating host did not need Docker to turn ip_forward on, so FORWARD stayed ACCEPT
    assert rules["filter"].policies == {"INPUT": "ACCEPT", "FORWARD": "ACCEPT", "OUTPUT": "ACCEPT"}


def test_noproxy_differs_from_portmap_in_nat_only_by_the_lines_lab_facts_names():
    with_proxy, without = moby_rules("portmap"), moby_rules("noproxy")
    assert without["filter"].render() == with_proxy["filter"].render()    # "the same as with the proxy"
    gone = set(with_proxy["nat"].rules) - set(without["nat"].rules)
    new = set(without["nat"].rules) - set(with_proxy["nat"].rules)
    assert gone == {
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
        "-A DOCKER ! -i hwchiu0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.55.66.2:8000",
    }
    assert new == {
        "-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER",                        # loopback too
        "-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.55.66.2:8000",   # from the bridge too
        "-A POSTROUTING -o hwchiu0 -m addrtype --src-type LOCAL -j MASQUERADE",   # the host's 127.0.0.1 into the bridge
        "-A POSTROUTING -s 10.55.66.2/32 -d 10.55.66.2/32 -p tcp -m tcp --dport 8000 -j MASQUERADE",  # hairpin
    }
    assert without["nat"].chain("POSTROUTING") == [
        "-A POSTROUTING -o hwchiu0 -m addrtype --src-type LOCAL -j MASQUERADE",
        "-A POSTROUTING -s 10.55.66.0/24 ! -o hwchiu0 -j MASQUERADE",
        "-A POSTROUTING -s 10.55.66.2/32 -d 10.55.66.2/32 -p tcp -m tcp --dport 8000 -j MASQUERADE",
    ]
    # The hairpin MASQUERADE is per container and port, not the lab's subnet-wide rules.HAIRPIN.
    assert "-A POSTROUTING -s 10.55.66.0/24 -d 10.55.66.2/32 -p tcp -m tcp --dport 8000 -j MASQUERADE" \
        not in without["nat"].rules
    # moby's noproxy template captures no raw table: the listing says nothing about the raw guard
    # there (the code writes it either way: filterDirectAccess does not look at the proxy).
    assert "raw" not in without


def test_noicc_replaces_the_outgoing_accept_and_changes_nothing_else():
    icc, noicc = moby_rules("portmap"), moby_rules("noicc")
    assert noicc["nat"].render() == icc["nat"].render()
    assert set(icc["filter"].rules) - set(noicc["filter"].rules) == {"-A DOCKER-FORWARD -i hwchiu0 -j ACCEPT"}
    assert set(noicc["filter"].rules) - set(icc["filter"].rules) == {
        "-A DOCKER-FORWARD -i hwchiu0 -o hwchiu0 -j DROP",
        "-A DOCKER-FORWARD -i hwchiu0 ! -o hwchiu0 -j ACCEPT",
    }
    # in this order, at the end of DOCKER-FORWARD (after DOCKER-CT and DOCKER-BRIDGE: replies and
    # published ports between containers of the bridge still pass)
    assert noicc["filter"].chain("DOCKER-FORWARD") == [
        "-A DOCKER-FORWARD -j DOCKER-CT",
        "-A DOCKER-FORWARD -j DOCKER-INTERNAL",
        "-A DOCKER-FORWARD -j DOCKER-BRIDGE",
        "-A DOCKER-FORWARD -i hwchiu0 -o hwchiu0 -j DROP",
        "-A DOCKER-FORWARD -i hwchiu0 ! -o hwchiu0 -j ACCEPT",
    ]
    assert "raw" not in noicc     # not captured by moby's noicc template


def test_nftables_portmap():
    table = moby_nft("portmap")
    assert (table.family, table.name) == ("ip", "docker-bridges")
    assert list(table.chains) == [
        "filter-FORWARD", "nat-OUTPUT", "nat-POSTROUTING", "nat-PREROUTING", "nat-prerouting-and-output",
        "raw-PREROUTING", "filter-forward-in__hwchiu0", "filter-forward-out__hwchiu0",
        "nat-postrouting-in__hwchiu0", "nat-postrouting-out__hwchiu0",
    ]
    assert {name: elements for name, (_, elements) in table.maps.items()} == {
        "filter-forward-in-jumps": ['"hwchiu0" : jump filter-forward-in__hwchiu0'],
        "filter-forward-out-jumps": ['"hwchiu0" : jump filter-forward-out__hwchiu0'],
        "nat-postrouting-in-jumps": ['"hwchiu0" : jump nat-postrouting-in__hwchiu0'],
        "nat-postrouting-out-jumps": ['"hwchiu0" : jump nat-postrouting-out__hwchiu0'],
    }
    assert all(kind == "type ifname : verdict" for kind, _ in table.maps.values())
    c = table.chains
    assert c["filter-FORWARD"] == ["type filter hook forward priority filter; policy accept;",
                                   "oifname vmap @filter-forward-in-jumps",
                                   "iifname vmap @filter-forward-out-jumps"]
    # the same verdicts as the iptables listing, in nftables' words
    assert c["nat-OUTPUT"][1] == "ip daddr != 127.0.0.0/8 fib daddr type local counter jump nat-prerouting-and-output"
    assert c["nat-PREROUTING"][1] == "fib daddr type local counter jump nat-prerouting-and-output"
    assert c["nat-prerouting-and-output"] == [
        'iifname != "hwchiu0" tcp dport 8080 counter dnat to 10.55.66.2:8000 comment "DNAT"']
    assert c["raw-PREROUTING"] == ["type filter hook prerouting priority raw; policy accept;",
                                   'ip daddr 10.55.66.2 iifname != "hwchiu0" counter drop comment "DROP DIRECT ACCESS"']
    assert c["filter-forward-in__hwchiu0"] == [
        "ct state established,related counter accept",
        'iifname "hwchiu0" counter accept comment "ICC"',
        "ip daddr 10.55.66.2 tcp dport 8000 counter accept",
        'counter drop comment "UNPUBLISHED PORT DROP"',
    ]
    assert c["filter-forward-out__hwchiu0"] == ["ct state established,related counter accept",
                                                'counter accept comment "OUTGOING"']
    assert c["nat-postrouting-in__hwchiu0"] == []
    assert c["nat-postrouting-out__hwchiu0"] == [
        'oifname != "hwchiu0" ip saddr 10.55.66.0/24 counter masquerade comment "MASQUERADE"']


def test_nftables_script_reads_back_to_the_same_table():
    table = moby_nft("portmap")
    script = table.script()
    assert moby.parse_nft(script.splitlines()) == table
    for name in ("bridge1", "docker0", "192.0.2.", "172.17."):
        assert name not in script
    assert script.startswith("table ip docker-bridges {\n") and script.endswith("}\n")


def test_the_lab_rules_come_from_the_lab_s_own_restore_input():
    # lab_rules reads what netkit.build.restore_input gives iptables-restore; check it on a stage
    # whose rules are few: part 3's end is FORWARD DROP plus three rules the article types.
    from netkit import rules
    tables = moby.lab_rules("part3-end")
    assert tables["filter"].policies == {"FORWARD": "DROP"}
    assert tables["filter"].chain("FORWARD") == [rules.FORWARD_IN.line, rules.FORWARD_OUT.line]
    assert tables["nat"].rules == [rules.MASQUERADE.line]


# -- the lab's docker-29 stage against the listing -----------------------------------------------
# The stage's iptables steps, turned into the iptables-restore input the lab's host runs
# (netkit.build.restore_input), against moby's listing for `docker run -p 8080:80` in the lab's
# names (the mapping at the top of this file).

STAGE = "docker-29"


def _diff(name: str, lab: list[str], listed: list[str]) -> str:
    return "\n".join(difflib.unified_diff(listed, lab, f"moby {moby.TAG} {name} (lab's names)",
                                          f"lab stage {STAGE} {name}", lineterm="", n=20))


@pytest.mark.parametrize("name", ["filter", "nat", "raw"])
def test_docker29_writes_what_docker_29_writes(name):
    lab = lab_rules(STAGE).get(name, Table(name))
    listed = moby_rules("portmap")[name]
    diff = _diff(name, lab.render(policies=False), listed.render(policies=False))
    # the same user chains and the same rules ...
    assert sorted(lab.chains) == sorted(listed.chains), "user chains differ:\n" + diff
    assert sorted(lab.rules) == sorted(listed.rules), "rules differ:\n" + diff
    # ... in the same order within every chain
    for chain in listed.chain_order():
        assert lab.chain(chain) == listed.chain(chain), f"the order of {chain} differs:\n" + diff


def test_docker29_has_no_table_docker_29_does_not_write():
    assert set(lab_rules(STAGE)) <= set(moby_rules("portmap"))


def test_docker29_policies_differ_only_where_the_listing_s_host_had_forwarding_on():
    # Docker sets FORWARD's policy to DROP only when it turned ip_forward on itself
    # (moby docker-v29.0.0, daemon/libnetwork/drivers/bridge/setup_ip_forwarding.go:52-57,
    # setupIPv4Forwarding: `if changed && wantFilterForwardDrop`). The host that generated moby's
    # listing did not need that (its FORWARD stays ACCEPT); the lab's host is the article's, where
    # Docker did (part3-start: `iptables -P FORWARD DROP`). Every other policy is ACCEPT in both.
    lab = {name: table.policies for name, table in lab_rules(STAGE).items()}
    listed = {name: table.policies for name, table in moby_rules("portmap").items()}
    assert listed["filter"]["FORWARD"] == "ACCEPT" and lab["filter"] == {"FORWARD": "DROP"}
    for name, policies in listed.items():
        for chain, policy in policies.items():
            if (name, chain) != ("filter", "FORWARD"):
                assert policy == "ACCEPT" and lab.get(name, {}).get(chain, "ACCEPT") == "ACCEPT"
