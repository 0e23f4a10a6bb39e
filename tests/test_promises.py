"""The design's promises, checked on real namespaces (DESIGN.md, "Promises").

1. The machine's own network is never touched.
2. Nothing outlives the lab: close, an exception, reset, garbage collection,
   kill -9 of the owner; gone within a second.
4. Many labs side by side, same names and addresses, no cross-talk; two
   users (runtime dirs) may even use the same lab name.
(3, rootless, is in test_rootless.py; 5, `netkit exec`, in test_cli.py.)
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import time

import pytest

from helpers import (
    PYTHON, REPO, _ns_kernel_id, assert_answers, assert_lost, lab_name, lab_traces, leftovers, link_json,
    machine_snapshot, ping, snapshot_diff, wait_gone,
)
from netkit import Lab
from netkit.state import runtime_dir

pytestmark = pytest.mark.lab


# -- 1. the machine's own network is never touched ---------------------------------------
def test_a_whole_lab_life_leaves_the_machine_reading_the_same():
    before = machine_snapshot()
    bridge_sysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    assert "lo:" in before["ip addr"] and bridge_sysctl in before, "the snapshot reads nothing useful"

    with Lab(name=lab_name()) as lab:
        # Scenario 1, as the article does it, plus the lab's most far-reaching stage.
        assert_lost(ping(lab, "c1", "10.55.66.3"))
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
        assert_answers(ping(lab, "c1", "10.55.66.3"))
        lab.iptables("-P FORWARD ACCEPT")
        lab.sysctl("net.ipv4.ip_forward", 0)

        # While the lab runs changed, the machine reads as before ...
        during = machine_snapshot()
        assert snapshot_diff(before, during) == ""
        # ... and the very same readings, taken in the lab's host, do see the lab's changes,
        # so the comparison above is not blind.
        assert lab.run("host", f"cat {bridge_sysctl}").stdout.strip() == "0"
        assert "-P FORWARD ACCEPT" in lab.run("host", "iptables -S FORWARD").stdout
        assert "hwchiu0" in lab.run("host", "ip -d link").stdout
        assert "hwchiu0" not in during["ip -d link"]
        assert "10.55.66" not in during["ip addr"] + during["ip route show table all"]

        lab.reset("part3-end")
        assert_answers(ping(lab, "c1", "8.8.8.8"))
        assert "MASQUERADE" in lab.run("host", "iptables-save -t nat").stdout
        assert snapshot_diff(before, machine_snapshot()) == ""

    assert snapshot_diff(before, machine_snapshot()) == ""


def test_the_lab_host_is_not_the_machine(lab):
    machine_netns = os.readlink("/proc/self/ns/net")
    assert os.readlink(f"/proc/{lab.pid}/ns/net") != machine_netns
    assert os.readlink(f"/proc/{lab.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    # No interface of the lab has a peer in the machine's namespace: every veth's peer is a
    # namespace the lab's host knows by an id (link-netnsid), and the machine has no such links.
    links = json.loads(lab.run("host", "ip -j -d link show type veth", check=True).stdout)
    assert {link["ifname"] for link in links} == {"veth0", "veth1", "eth0"}
    assert all("link_netnsid" in link for link in links), links
    # The lab's named namespaces live on a /run of its own, which the machine does not see.
    assert sorted(lab.run("host", "ls /run/netns").stdout.split()) == ["c1", "c2", "internet"]
    assert "netkit-run" in lab.run("host", "grep ' /run ' /proc/self/mountinfo").stdout
    assert "netkit-run" not in open("/proc/self/mountinfo").read()


# -- 2. nothing outlives the lab -----------------------------------------------------------
def _assert_seen_alive(traces: dict) -> None:
    """The leftover scan does find a running lab (so 'nothing left' below means something)."""
    alive = "\n".join(leftovers(traces))
    for role, pid in traces["pids"].items():
        assert f"process {pid} ({role})" in alive, alive
    for node, netns in traces["namespaces"]["netns"].items():
        assert netns in alive, f"{node}'s {netns} not found while the lab runs:\n{alive}"
    assert traces["state_file"] in alive


def test_nothing_outlives_close(name):
    lab = Lab(name=name)
    traces = lab_traces(lab)
    _assert_seen_alive(traces)
    started = time.monotonic()
    lab.close()
    assert wait_gone(traces, started) == []
    assert lab.closed
    lab.close()  # closing twice is harmless


def test_nothing_outlives_an_exception_in_the_with_block(name):
    with pytest.raises(ZeroDivisionError):
        with Lab(name=name) as lab:
            traces = lab_traces(lab)
            _assert_seen_alive(traces)
            started = time.monotonic()
            1 / 0
    assert wait_gone(traces, started) == []


def test_nothing_outlives_a_forgotten_lab(name):
    lab = Lab(name=name)
    traces = lab_traces(lab)
    started = time.monotonic()
    del lab
    gc.collect()
    assert wait_gone(traces, started) == []


def test_a_recycled_namespace_number_is_not_taken_for_the_lab():
    """The kernel gives a freed namespace's number to the next one it makes. A new host started
    right after a reset took the old host's mnt:[...] and net:[...] in one CI run, and the scan
    called it the old host's. The scan tells them apart by the kernel's id; here it is shown to."""
    if _ns_kernel_id("/proc/self/ns/net") is None:
        pytest.skip("this kernel has no NS_GET_ID (Linux 6.18+): a recycled number counts as the lab's")

    def new_netns():
        proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
        for _ in range(500):
            link = os.readlink(f"/proc/{proc.pid}/ns/net")
            if link != os.readlink("/proc/self/ns/net"):
                return proc, link
            time.sleep(0.01)
        raise AssertionError("unshare --net made no namespace")

    first, link = new_netns()
    traces = {"pids": {}, "namespaces": {"netns": {"node": link}, "mnt": None, "pid": None},
              "namespace_ids": {link: _ns_kernel_id(f"/proc/{first.pid}/ns/net")},
              "machine_netns": os.readlink("/proc/self/ns/net"), "state_file": "/nonexistent"}
    try:
        assert f"process {first.pid} (task {first.pid}) is in the lab's net namespace {link}" \
            in leftovers(traces)
    finally:
        first.kill()
        first.wait()
    assert wait_gone(traces, time.monotonic()) == []
    # Namespaces until one gets the freed number: the kernel takes the lowest free one, once its
    # worker has freed the old namespace. Those made meanwhile stay, filling lower free numbers.
    made = []
    try:
        for _ in range(200):
            proc, again = new_netns()
            made.append(proc)
            if again == link:
                break
            time.sleep(0.01)
        else:
            pytest.skip(f"the kernel did not give {link} out again in 200 namespaces")
        assert leftovers(traces) == []
        # Without the kernel's id, the number alone would have named it.
        blind = {**traces, "namespace_ids": {}}
        assert f"process {proc.pid} (task {proc.pid}) is in the lab's net namespace {link}" \
            in leftovers(blind)
    finally:
        for proc in made:
            proc.kill()
            proc.wait()


def test_reset_ends_the_old_host(lab):
    old = lab_traces(lab)
    lab.iptables("-P FORWARD ACCEPT")
    started = time.monotonic()
    lab.reset()
    assert wait_gone({**old, "state_file": "/nonexistent"}, started) == []
    assert lab.pid != old["pids"]["init"]
    # The name still leads to the new host, and the new host is fresh (policy DROP again).
    record = json.loads((runtime_dir() / f"{lab.name}.json").read_text())
    assert record["init_pid"] == lab.pid and record["stage"] == "part3-start"
    assert "-P FORWARD DROP" in lab.run("host", "iptables -S FORWARD").stdout


CHILD = r"""
import json, sys, time
sys.path.insert(0, {tests!r})
from netkit import Lab
from helpers import lab_traces
lab = Lab(name={name!r})
print(json.dumps(lab_traces(lab)), flush=True)
time.sleep(60)
"""


def test_nothing_outlives_kill_9_of_the_owner(name):
    child = subprocess.Popen([PYTHON, "-c", CHILD.format(tests=str(REPO / "tests"), name=name)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line, f"the owner process did not start its lab: {child.stderr.read() if child.poll() is not None else ''}"
        traces = json.loads(line)
        _assert_seen_alive(traces)
        started = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        assert wait_gone(traces, started) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


# -- 4. labs side by side ----------------------------------------------------------------------
ECHOES = 20


def _counters(lab) -> dict:
    """What lab B would show if lab A's pings reached it."""
    rx = link_json(lab, "host", "veth0", stats=True)["stats64"]["rx"]["packets"]
    forward = lab.run("host", "iptables-save -c -t filter", check=True).stdout
    policy = next(line for line in forward.splitlines() if line.startswith(":FORWARD"))
    snmp = lab.run("c2", "cat /proc/net/snmp", check=True).stdout.splitlines()
    icmp = dict(zip(snmp[2].split()[1:], snmp[3].split()[1:]))  # the two "Icmp:" lines
    return {"veth0 rx": rx, "FORWARD policy": policy, "c2 InEchos": int(icmp["InEchos"])}


def _assert_no_crosstalk(a, b) -> None:
    # Same names and addresses in both.
    for lab in (a, b):
        assert "inet 10.55.66.2/24" in lab.run("c1", "ip -4 addr show eth0").stdout
        assert link_json(lab, "host", "hwchiu0")["ifname"] == "hwchiu0"
    # But different kernel objects: namespaces and MAC addresses.
    ta, tb = lab_traces(a), lab_traces(b)
    assert not set(ta["namespaces"]["netns"].values()) & set(tb["namespaces"]["netns"].values())
    assert link_json(a, "host", "hwchiu0")["address"] != link_json(b, "host", "hwchiu0")["address"]
    mac_a = link_json(a, "c1", "eth0")["address"]
    mac_b = link_json(b, "c1", "eth0")["address"]
    assert mac_a != mac_b

    a.iptables("-P FORWARD ACCEPT")
    before_a, before_b = _counters(a), _counters(b)
    answered = a.run("c1", f"ping 10.55.66.3 -c{ECHOES} -i0.01 -W1")
    assert answered.returncode == 0 and f"{ECHOES} received" in answered.stdout, str(answered)
    after_a, after_b = _counters(a), _counters(b)
    # A's own counters moved by the echoes (so the method sees traffic) ...
    assert after_a["c2 InEchos"] - before_a["c2 InEchos"] == ECHOES
    assert after_a["veth0 rx"] - before_a["veth0 rx"] >= ECHOES
    # ... and B's did not: no echo reached B's c2, B's FORWARD policy counted nothing, and
    # B's veth0 received at most the lab's own chatter (IPv6 solicitations, IGMP reports, ARP
    # of a newborn lab), far fewer frames than A sent.
    assert after_b["c2 InEchos"] == before_b["c2 InEchos"]
    assert after_b["FORWARD policy"] == before_b["FORWARD policy"]
    assert after_b["veth0 rx"] - before_b["veth0 rx"] < ECHOES, (before_b, after_b)

    # A's change is A's alone.
    assert "-P FORWARD ACCEPT" in a.run("host", "iptables -S FORWARD").stdout
    assert "-P FORWARD DROP" in b.run("host", "iptables -S FORWARD").stdout
    assert_lost(ping(b, "c1", "10.55.66.3"))
    # Each bridge learnt its own c1, never the other lab's.
    fdb_a = a.run("host", "bridge fdb show br hwchiu0").stdout
    fdb_b = b.run("host", "bridge fdb show br hwchiu0").stdout
    assert f"{mac_a} dev veth0" in fdb_a and mac_b not in fdb_a
    assert f"{mac_b} dev veth0" in fdb_b and mac_a not in fdb_b


def test_two_labs_side_by_side_do_not_talk():
    with Lab(name=lab_name()) as a, Lab(name=lab_name()) as b:
        _assert_no_crosstalk(a, b)


def test_two_users_may_both_call_their_lab_by_one_name(monkeypatch, tmp_path):
    """Two runtime directories model two users: each has its own lab called the same."""
    name = lab_name("netkit-dup")
    env_a = dict(os.environ)
    with Lab(name=name) as a:
        monkeypatch.setenv("NETKIT_RUNTIME_DIR", str(tmp_path / "other-user"))
        env_b = dict(os.environ)
        with Lab(name=name) as b:
            state_a, state_b = a._sandbox.state_path, b._sandbox.state_path
            assert state_a != state_b and state_a.exists() and state_b.exists()
            assert json.loads(state_a.read_text())["init_pid"] == a.pid
            assert json.loads(state_b.read_text())["init_pid"] == b.pid
            _assert_no_crosstalk(a, b)
            # `netkit exec` finds each user's own lab by the shared name.
            for env, policy in ((env_a, "ACCEPT"), (env_b, "DROP")):
                done = subprocess.run([PYTHON, "-m", "netkit", "exec", "--lab", name, "host", "--",
                                       "iptables", "-S", "FORWARD"],
                                      cwd=REPO, env=env, capture_output=True, text=True, timeout=20)
                assert done.returncode == 0, done.stderr
                assert f"-P FORWARD {policy}" in done.stdout
            # Ending one leaves the other (and its state file) alone.
            a.close()
            assert not state_a.exists() and state_b.exists()
            assert "10.55.66.0" in b.run("c1", "route -n").stdout
