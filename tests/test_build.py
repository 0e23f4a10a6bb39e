"""How a stage is carried out: batches, what waits for what, and that the kernel ends up the same.

The pure tests read the stages' own data. The lab tests build every stage twice on the real kernel, once
as the lab does (batches, several at once, rules through one iptables-restore) and once a command at a
time in the stage's order, as a person types them, and compare what the kernel holds.
"""

from __future__ import annotations

import difflib
import subprocess
import uuid

import pytest

from netkit import build, topology
from netkit.topology import Step
from netkit.waiting import wait_until

STAGES = list(topology.STAGES)


def _index(found, node, tool, nth=0):
    return [i for i, b in enumerate(found) if b.node == node and b.tool == tool][nth]


def test_containers_wait_for_the_host_batch_that_makes_their_namespace_and_links():
    found = build.batches(topology.steps_to("part3-start"))
    waits = build.waits_for(found)
    makes = _index(found, "host", "ip")
    for node in ("c1", "c2"):
        assert makes in waits[_index(found, node, "ip")]
    moves = _index(found, "host", "ip", 1)                # eth0 ... peer name eth0 netns internet
    assert {makes, moves} <= waits[_index(found, "internet", "ip")]
    # c1 and c2 do not wait for each other, and the host's rules wait for no link
    assert _index(found, "c1", "ip") not in waits[_index(found, "c2", "ip")]
    assert waits[_index(found, "host", "iptables")] == set()


def test_every_stage_keeps_each_nodes_order_and_waits_only_backwards():
    for name in STAGES:
        found = build.batches(topology.steps_to(name))
        waits = build.waits_for(found)
        for index, before in enumerate(waits):
            assert all(earlier < index for earlier in before)
            for earlier in range(index):
                same_kind = (found[earlier].tool == "iptables") == (found[index].tool == "iptables")
                if found[earlier].node == found[index].node and same_kind and found[index].tool != "start":
                    assert earlier in before, (name, found[earlier], found[index])


def test_a_server_on_every_address_starts_before_its_nodes_other_batches_end():
    steps = (Step("host", "ip addr add 10.0.0.1/24 dev hwchiu0"),
             Step("host", "docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 1 -container-ip 10.0.0.2 "
                          "-container-port 2 &", ready_port=1, ready_address="0.0.0.0"),
             Step("host", "server-on-one-address &", ready_port=2, ready_address="10.0.0.1"))
    found = build.batches(steps)
    assert [b.tool for b in found] == ["ip", "start", "start"]
    assert build.waits_for(found) == [set(), set(), {0, 1}]


def test_a_node_made_later_waits_for_the_batch_that_makes_it():
    found = build.batches(topology.steps_after("part3-start", "part4-start"))
    makes = next(i for i, b in enumerate(found)
                 if b.node == "host" and any("netns add outside" in s.command for s in b.steps))
    assert makes in build.waits_for(found)[_index(found, "outside", "ip")]


# -- the kernel: parallel batches and one iptables-restore change nothing -----------
def _one_at_a_time(steps) -> str:
    """A shell script typing `steps` one by one, each in its node, in the stage's order."""
    lines = ["set -e", "mount -t tmpfs netkit-run /run", "mkdir -p /run/netns", "ip link set lo up"]
    for step in steps:
        command = step.command
        if command.endswith("&"):
            command = f"{command[:-1].strip()} >/dev/null 2>&1 &"
        if not command.endswith("&"):
            command = f"{{ {command}\n}} >/dev/null"
        lines.append(command if step.node == "host" else f"ip netns exec {step.node} sh -c '{command}'")
    return "\n".join(lines)


DUMP = r"""
for node in "" $(ip netns list | cut -d' ' -f1 | sort); do
  run() { if [ -z "$node" ]; then "$@"; else ip netns exec "$node" "$@"; fi; }
  echo "== ${node:-host}"
  run ip -o addr show | grep -v 'inet6 fe80' | sed 's/^[0-9]*: //; s/ valid_lft.*//' | sort
  run ip -o link show | sed 's/^[0-9]*: //; s/link-netns [^ ]*//; s/ link\/ether [^ ]* brd [^ ]*//; s/@if[0-9]*//; s/,LOWER_UP//; s/ state [A-Z]*//' | sort
  run ip route show table all | sort      # IPv6 link-local routes come in the order DAD ends
  run sysctl net.ipv4.ip_forward net.ipv4.conf.all.route_localnet 2>/dev/null || true
  run iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
  for table in $(run nft list tables | grep -v netkit_trace | cut -d' ' -f2- | tr ' ' :); do
    run nft list table $(echo $table | tr : ' ')
  done
done
"""


def _kernel_after(script: str) -> str:
    from netkit.nodes import ENV
    done = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation",
                           "private", "--kill-child", "sh", "-c", script + "\n" + DUMP],
                          capture_output=True, text=True, timeout=60, env=ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _as_the_lab_builds(stage: str) -> str:
    """The lab's own build, in a lab: what its host then holds, dumped with the same commands."""
    from netkit import Lab
    with Lab(name=f"build-{stage}-{uuid.uuid4().hex[:4]}", stage=stage) as lab:
        return lab.run("host", DUMP, timeout=30).stdout


@pytest.mark.lab
@pytest.mark.parametrize("stage", STAGES)
def test_the_lab_builds_what_typing_each_command_in_order_builds(stage):
    typed = _kernel_after(_one_at_a_time(topology.steps_to(stage)))
    built = _as_the_lab_builds(stage)
    assert "== c1" in built and "hwchiu0" in built
    assert built == typed, "\n".join(difflib.unified_diff(typed.splitlines(), built.splitlines(), lineterm=""))


# -- spares: a reset to the stage the lab is at builds nothing ----------------------
def _parent(pid: int) -> int:
    """The parent pid of `pid` (its lab's pid 1, for an agent); 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _hosts_settle(name: str, count: int, gone: int, seconds: float = 20.0) -> list[int]:
    """The agents of lab `name` once there are `count` of them and none is the one under pid 1 `gone` (the host a
    reset replaced, which ends in the background)."""
    from helpers import lab_hosts

    def settled() -> list[int]:
        found = lab_hosts(name)
        return found if len(found) == count and gone not in map(_parent, found) else []

    found = wait_until(settled, seconds, interval=0.05)
    assert found, f"lab {name!r} has hosts {lab_hosts(name)}, not {count} without the old one under {gone}"
    return found


@pytest.mark.lab
def test_a_reset_to_the_stage_the_lab_is_at_takes_the_spare_built_there_and_close_ends_every_host():
    from helpers import lab_hosts
    from netkit import Lab
    name = f"spares-{uuid.uuid4().hex[:6]}"
    lab = Lab(name=name)
    try:
        first = lab.pid
        lab.reset("part4-start")
        # the host in use, a spare at the first stage and a spare at part4-start (the first host gone)
        hosts = _hosts_settle(name, 3, gone=first)
        spares = {_parent(agent) for agent in hosts} - {lab.pid}    # each agent's parent: its lab's pid 1
        assert len(spares) == 2
        replaced = lab.pid
        lab.reset("part4-start")
        # the new host is one of the spares, already built: its web server (part 4's) was running before
        assert lab.pid in spares
        assert lab._sandbox.built == "part4-start"             # not the first stage's spare
        assert "LISTEN" in lab.run("c1", "ss -ltn 'sport = :8000'").stdout
        assert lab.run("c1", "curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:8000").stdout == "200"
        _hosts_settle(name, 3, gone=replaced)    # the old host gone, the spare at part4-start made again
        lab.reset("docker-29")               # no spare is on its way there but the first stage's
        assert lab.stage == "docker-29" and "DOCKER-USER" in lab.run("host", "iptables -S").stdout
    finally:
        lab.close()
    assert wait_until(lambda: not lab_hosts(name), 10, interval=0.05), lab_hosts(name)


@pytest.mark.lab
def test_the_host_answers_in_the_owners_language_from_its_first_request():
    """The host starts without the site packages (python -S), where the catalogue's reader lives: an error
    it writes itself, before any probe, must still come in the owner's language."""
    from netkit import BadArgument, Lab, use_language
    use_language("zh-TW")
    try:
        with Lab(name=f"lang-{uuid.uuid4().hex[:6]}") as lab:
            with pytest.raises(BadArgument) as refused:
                lab._call("no-such-operation")
    finally:
        use_language(None)
    from netkit.i18n import catalogue
    english = "the lab's host has no operation {op!r}"
    assert catalogue("zh-TW")[english] != english
    assert str(refused.value) == catalogue("zh-TW")[english].format(op="no-such-operation")
