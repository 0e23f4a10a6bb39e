"""Bad input, tried as a careless or a hostile user would: a clear error, no hang, the lab unchanged.

`CALLS` is the table: (what is tried, the call, the NetkitError class it must
raise, words of the fix its message must contain). After each row the lab
must read exactly as before it (rules, addresses, routes, links, sysctls),
within a time bound (no hang), and the message must never be an "internal
error". `COMMANDS` does the same for the `netkit` command: exit 2, the fix
on stderr, no traceback. Then: a probe that gets no answer, Ctrl-C in the
middle of a command, 200 MB of output, and many lives and deaths of labs.
"""

from __future__ import annotations

import _thread
import os
import random
import signal
import subprocess
import textwrap
import threading
import time

import pytest

from helpers import PYTHON, REPO, agents_running, lab_hosts, lab_name, lab_state, lab_traces, wait_gone
from netkit import (
    BadArgument, CommandError, CommandNotFound, Lab, NetkitError, RuleError, StateError, UnknownNode,
    UnknownStage,
)
from netkit.waiting import wait_until

pytestmark = pytest.mark.lab

NAN, INF = float("nan"), float("inf")
HUGE = "x" * 200_000

# (what, call(lab), exception class, words the message must hold)
CALLS = [
    # Lab(...) itself
    ("empty lab name", lambda lab: Lab(name=""), BadArgument, "Lab(name='netkit')"),
    ("lab name with a slash", lambda lab: Lab(name="a/b"), BadArgument, "is not a lab name"),
    ("lab name too long", lambda lab: Lab(name="x" * 41), BadArgument, "1 to 40"),
    ("lab name ending in a newline", lambda lab: Lab(name="netkit\n"), BadArgument, "is not a lab name"),
    ("lab name None", lambda lab: Lab(name=None), BadArgument, "is not a lab name"),
    ("lab name a number", lambda lab: Lab(name=3), BadArgument, "is not a lab name"),
    ("lab name like an option", lambda lab: Lab(name="-x"), BadArgument, "starting with a letter or digit"),
    ("lab name of the keeper", lambda lab: Lab(name=".keeper"), BadArgument, "is not a lab name"),
    ("unknown stage", lambda lab: Lab(name=lab_name(), stage="nope"), UnknownStage, "choose one of: part3-start"),
    ("stage None", lambda lab: Lab(name=lab_name(), stage=None), UnknownStage, "choose one of"),
    ("stage a list", lambda lab: Lab(name=lab_name(), stage=["part3-start"]), UnknownStage, "choose one of"),
    ("the same name again", lambda lab: Lab(name=lab.name), NetkitError, "netkit down --lab"),
    # run
    ("unknown node", lambda lab: lab.run("c3", "ls"), UnknownNode, "nodes are: host, c1, c2, internet"),
    ("node of a later stage", lambda lab: lab.run("outside", "ls"), UnknownNode, "lab.reset('part4-start')"),
    ("node None", lambda lab: lab.run(None, "ls"), UnknownNode, "nodes are"),
    ("empty command", lambda lab: lab.run("c1", ""), BadArgument, "e.g. 'route -n'"),
    ("blank command", lambda lab: lab.run("c1", "   "), BadArgument, "e.g. 'route -n'"),
    ("command None", lambda lab: lab.run("c1", None), BadArgument, "as one string"),
    ("command a list", lambda lab: lab.run("c1", ["ls", "-l"]), BadArgument, "as one string"),
    ("command of 200 kB", lambda lab: lab.run("c1", HUGE), BadArgument, "write it to a file in the lab"),
    ("command with a NUL byte", lambda lab: lab.run("c1", "echo a\0b"), BadArgument, "NUL byte"),
    ("timeout 0", lambda lab: lab.run("c1", "ls", timeout=0), BadArgument, "positive number of seconds"),
    ("timeout -1", lambda lab: lab.run("c1", "ls", timeout=-1), BadArgument, "positive number of seconds"),
    ("timeout NaN", lambda lab: lab.run("c1", "ls", timeout=NAN), BadArgument, "positive number of seconds"),
    ("timeout inf", lambda lab: lab.run("c1", "ls", timeout=INF), BadArgument, "600 s"),
    ("timeout 1e9", lambda lab: lab.run("c1", "ls", timeout=1e9), BadArgument, "lab.start(node, command)"),
    ("timeout a string", lambda lab: lab.run("c1", "ls", timeout="5"), BadArgument, "timeout=5"),
    ("timeout True", lambda lab: lab.run("c1", "ls", timeout=True), BadArgument, "timeout=5"),
    ("timeout None", lambda lab: lab.run("c1", "ls", timeout=None), BadArgument, "timeout=5"),
    ("stdin bytes", lambda lab: lab.run("c1", "cat", stdin=b"x"), BadArgument, "stdin="),
    ("stdin of 2 MiB", lambda lab: lab.run("c1", "cat", stdin="x" * 2 ** 21), BadArgument, "at most 1,048,576"),
    ("misspelt program", lambda lab: lab.run("c1", "pnig 10.55.66.3"), CommandNotFound, "'pnig'"),
    ("missing program after another", lambda lab: lab.run("c1", "echo hi; nosuchprog"), CommandNotFound,
     "'nosuchprog'"),
    ("check=True on a failing command", lambda lab: lab.run("c1", "false", check=True), CommandError, "exit 1"),
    ("node by item", lambda lab: lab["c3"], UnknownNode, "nodes are"),
    # probe
    ("probe a partial address", lambda lab: lab.probe("c1", "10.55.66"), BadArgument, "'10.55.66.3'"),
    ("probe 0.0.0.0", lambda lab: lab.probe("c1", "0.0.0.0"), BadArgument, "answered by the sender itself"),
    ("probe a multicast group", lambda lab: lab.probe("c1", "224.0.0.1"), BadArgument, "multicast"),
    ("probe the broadcast address", lambda lab: lab.probe("c1", "255.255.255.255"), BadArgument, "broadcast"),
    ("probe five numbers", lambda lab: lab.probe("c1", "8.8.8.8.8"), BadArgument, "IPv4"),
    ("probe None", lambda lab: lab.probe("c1", None), BadArgument, "IPv4"),
    ("probe an int", lambda lab: lab.probe("c1", 8), BadArgument, "'8.8.8.8'"),
    ("probe timeout 0", lambda lab: lab.probe("c1", "10.55.66.3", timeout=0), BadArgument, "positive"),
    ("probe timeout 1e9", lambda lab: lab.probe("c1", "10.55.66.3", timeout=1e9), BadArgument, "30 s"),
    ("probe timeout NaN", lambda lab: lab.probe("c1", "10.55.66.3", timeout=NAN), BadArgument, "positive"),
    ("probe timeout a string", lambda lab: lab.probe("c1", "10.55.66.3", timeout="1"), BadArgument, "seconds"),
    ("probe port 0", lambda lab: lab.probe("c1", "10.55.66.3", port=0), BadArgument, "1 to 65535"),
    ("probe port 99999", lambda lab: lab.probe("c1", "10.55.66.3", port=99999), BadArgument, "1 to 65535"),
    ("probe port a string", lambda lab: lab.probe("c1", "10.55.66.3", port="80"), BadArgument, "port=2345"),
    ("probe port True", lambda lab: lab.probe("c1", "10.55.66.3", port=True), BadArgument, "1 to 65535"),
    ("probe port a float", lambda lab: lab.probe("c1", "10.55.66.3", port=80.0), BadArgument, "whole number"),
    ("probe from an unknown node", lambda lab: lab.probe("c3", "10.55.66.3"), UnknownNode, "nodes are"),
    ("probe from a later node", lambda lab: lab.probe("outside", "172.17.9.103"), UnknownNode, "part4-start"),
    ("probe label a number", lambda lab: lab.probe("c1", "10.55.66.3", label=5), BadArgument, "label="),
    # start
    ("start on port 99999", lambda lab: lab.start("c1", "python3 -m http.server 8000", port=99999),
     BadArgument, "1 to 65535"),
    ("start nothing", lambda lab: lab.start("c1", "", port=8000), BadArgument, "as one string"),
    ("start in an unknown node", lambda lab: lab.start("c3", "sleep 1"), UnknownNode, "nodes are"),
    ("start with a NUL byte", lambda lab: lab.start("c1", "sleep\0 1"), BadArgument, "NUL byte"),
    # tcpdump
    ("tcpdump on a missing interface", lambda lab: lab.tcpdump("host:eth9", "c1", "true"), CommandError,
     "host:eth9"),
    ("tcpdump writing a file", lambda lab: lab.tcpdump("host:eth0", "c1", "true", expression="-w /tmp/x"),
     BadArgument, "holds an option (-w)"),
    ("tcpdump option after a filter", lambda lab: lab.tcpdump("host:eth0", "c1", "true",
                                                              expression="icmp -w /tmp/netkit-pwned"),
     BadArgument, "give only a filter"),
    ("tcpdump a broken filter", lambda lab: lab.tcpdump("host:eth0", "c1", "true", expression="icmp and ("),
     CommandError, "tcpdump"),
    ("tcpdump expression None", lambda lab: lab.tcpdump("host:eth0", "c1", "true", expression=None),
     BadArgument, "'icmp'"),
    ("tcpdump point without a colon", lambda lab: lab.tcpdump("eth0", "c1", "true"), UnknownNode,
     "write node:ifname"),
    ("tcpdump point of an unknown node", lambda lab: lab.tcpdump("c9:eth0", "c1", "true"), UnknownNode,
     "nodes are"),
    ("tcpdump command in an unknown node", lambda lab: lab.tcpdump("host:eth0", "c3", "true"), UnknownNode,
     "nodes are"),
    ("tcpdump timeout 0", lambda lab: lab.tcpdump("host:eth0", "c1", "true", timeout=0), BadArgument,
     "positive"),
    ("tcpdump on a later node", lambda lab: lab.tcpdump("outside:eth0", "c1", "true"), UnknownNode,
     "part4-start"),
    # iptables
    ("iptables unknown target", lambda lab: lab.iptables("-t nat -A POSTROUTING -j MASQ"), RuleError,
     "nothing was changed"),
    ("iptables misspelt chain", lambda lab: lab.iptables("-A FORWRD -j ACCEPT"), RuleError,
     "FORWARD, POSTROUTING"),
    ("iptables a second command", lambda lab: lab.iptables("-L; iptables -P FORWARD ACCEPT"), BadArgument,
     "without a shell"),
    ("iptables and-and", lambda lab: lab.iptables("-P FORWARD ACCEPT && true"), BadArgument, "once per rule"),
    ("iptables a pipe", lambda lab: lab.iptables("-P FORWARD ACCEPT | cat"), BadArgument, "shell syntax"),
    ("iptables a substitution", lambda lab: lab.iptables("-S $(reboot)"), BadArgument, "shell syntax"),
    ("iptables a backtick", lambda lab: lab.iptables("-S `reboot`"), BadArgument, "shell syntax"),
    ("iptables an unbalanced quote", lambda lab: lab.iptables("-A FORWARD -m comment --comment 'x"),
     BadArgument, "close the quote"),
    ("iptables typed twice", lambda lab: lab.iptables("iptables -P FORWARD ACCEPT"), BadArgument,
     "lab.iptables('-P FORWARD ACCEPT')"),
    ("iptables with sudo", lambda lab: lab.iptables("sudo iptables -P FORWARD ACCEPT"), BadArgument,
     "without the word 'sudo'"),
    ("iptables nothing", lambda lab: lab.iptables(""), BadArgument, "'-P FORWARD ACCEPT'"),
    ("iptables None", lambda lab: lab.iptables(None), BadArgument, "'-P FORWARD ACCEPT'"),
    ("iptables in an unknown node", lambda lab: lab.iptables("-P FORWARD ACCEPT", node="docker0"),
     UnknownNode, "nodes are"),
    ("iptables a made-up policy", lambda lab: lab.iptables("-P FORWARD MAYBE"), RuleError,
     "nothing was changed"),
    ("iptables of 6 kB", lambda lab: lab.iptables("-x" * 3000), BadArgument, "at most 4,096"),
    ("iptables with a NUL byte", lambda lab: lab.iptables("-P FORWARD\0 ACCEPT"), BadArgument, "NUL byte"),
    # sysctl
    ("sysctl name with a command", lambda lab: lab.sysctl("net.ipv4.ip_forward; reboot"), BadArgument,
     "'net.bridge.bridge-nf-call-iptables'"),
    ("sysctl that does not exist", lambda lab: lab.sysctl("net.no.such.key"), CommandError, "sysctl"),
    ("sysctl value with a command", lambda lab: lab.sysctl("net.ipv4.ip_forward", "1; reboot"), BadArgument,
     "e.g. 0 or 1"),
    ("sysctl value True", lambda lab: lab.sysctl("net.ipv4.ip_forward", True), BadArgument, "e.g. 0 or 1"),
    ("sysctl name None", lambda lab: lab.sysctl(None), BadArgument, "sysctl -a"),
    ("sysctl in an unknown node", lambda lab: lab.sysctl("net.ipv4.ip_forward", node="c9"), UnknownNode,
     "nodes are"),
    # switches
    ("switch to a value it lacks", lambda lab: lab.set("forward-policy", "MAYBE"), BadArgument,
     "['DROP', 'ACCEPT']"),
    ("switch as a string number", lambda lab: lab.set("bridge-nf-call-iptables", "1"), BadArgument, "[1, 0]"),
    ("unknown switch", lambda lab: lab.set("nope", 1), BadArgument, "switches are: bridge-nf-call-iptables"),
    ("read an unknown switch", lambda lab: lab.get("nope"), BadArgument, "switches are"),
    # reset
    ("reset to an unknown stage", lambda lab: lab.reset("nope"), UnknownStage, "choose one of"),
    ("reset to a number", lambda lab: lab.reset(5), UnknownStage, "choose one of"),
]


@pytest.fixture(scope="module")
def table_lab():
    lab = Lab(name=lab_name("bad"))
    try:
        yield lab
    finally:
        lab.close()


@pytest.mark.parametrize("what, call, kind, fix", CALLS, ids=[row[0] for row in CALLS])
def test_bad_input_is_a_clear_error_and_changes_nothing(table_lab, what, call, kind, fix):
    lab = table_lab
    before = lab_state(lab)
    started = time.monotonic()
    with pytest.raises(kind) as caught:
        call(lab)
    took = time.monotonic() - started
    message = str(caught.value)
    assert fix in message, f"{what}: the message does not name the fix {fix!r}:\n{message}"
    assert "internal error" not in message
    assert took < 15, f"{what} took {took:.1f} s"
    assert not lab.closed and lab_state(lab) == before
    if isinstance(caught.value, BadArgument):
        assert isinstance(caught.value, ValueError)


def test_a_shell_mistake_in_run_is_the_shells_own_answer(table_lab):
    """run() takes shell commands, as a student expects: the shell says what is wrong, netkit raises nothing."""
    result = table_lab.run("c1", "echo 'unbalanced")
    assert result.returncode == 2 and "Unterminated quoted string" in result.stderr


def test_an_operation_called_with_arguments_it_does_not_take_is_a_bad_argument(table_lab):
    """The lab's host tells a wrong call from the operation's signature (not from a TypeError's words)."""
    with pytest.raises(BadArgument) as caught:
        table_lab._sandbox.call("run", node="c1", command="true", colour="red")
    assert str(caught.value).startswith("run: ") and "colour" in str(caught.value)
    with pytest.raises(BadArgument):
        table_lab._sandbox.call("run", command="true")          # no node
    assert table_lab._sandbox.call("run", node="c1", command="true")["returncode"] == 0


COMMANDS = [
    (["exec", "--lab", "../x", "c1", "--", "true"], "is not a lab name"),
    (["exec", "--lab", "{lab}", "c3", "--", "route"], "no node 'c3'"),
    (["exec", "--lab", "{lab}", "outside", "--", "true"], "netkit up --lab {lab} --stage part4-start"),
    (["exec", "--lab", "{lab}", "c1"], "netkit exec c1 -- route -n"),
    (["up", "--lab", "x", "--stage", "nope"], "no stage 'nope'"),
    (["up", "--lab", "bad name"], "is not a lab name"),
    (["up", "--lab", "x\n"], "is not a lab name"),
    (["down", "--lab", "missing-lab"], "no running lab called 'missing-lab'"),
    (["status", "--user", "no-such-user-here"], "there is no user 'no-such-user-here'"),
    (["down", "--user", "no-such-user-here", "--all"], "there is no user"),
]


@pytest.mark.parametrize("argv, fix", COMMANDS, ids=[" ".join(row[0]) for row in COMMANDS])
def test_bad_commands_exit_2_with_the_fix(table_lab, argv, fix):
    before = lab_state(table_lab)
    argv = [word.replace("{lab}", table_lab.name) for word in argv]
    done = subprocess.run([PYTHON, "-m", "netkit", *argv], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert done.stderr.startswith("netkit: ") and fix.replace("{lab}", table_lab.name) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert lab_state(table_lab) == before


def test_a_state_directory_that_is_a_file_is_a_clear_error_for_the_command(tmp_path):
    env = dict(os.environ, NETKIT_RUNTIME_DIR="/etc/hostname")
    done = subprocess.run([PYTHON, "-m", "netkit", "status"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "is a file, not a directory" in done.stderr and "Traceback" not in done.stderr


# -- bounded calls ----------------------------------------------------------------------------
def test_a_probe_nobody_answers_returns_and_the_lab_goes_on(lab):
    started = time.monotonic()
    journey = lab.probe("c1", "10.55.66.99", timeout=2)      # an address nobody has: ARP gets no answer
    took = time.monotonic() - started
    assert not journey.delivered and not journey.replied
    assert 2 <= journey.seconds < 3 and took < 6, (journey.seconds, took)
    started = time.monotonic()
    assert lab.run("c1", "echo next").stdout == "next\n"
    assert time.monotonic() - started < 2


def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _thread.interrupt_main)   # what Ctrl-C (or Jupyter's stop button) does
    timer.start()
    return timer


def test_ctrl_c_stops_a_long_command_and_the_lab_is_ready_at_once(lab):
    _interrupt_after(0.5)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        lab.run("c1", "sleep 60", timeout=120)
    assert time.monotonic() - started < 3
    started = time.monotonic()
    assert lab.run("c1", "echo ready").stdout == "ready\n"
    assert time.monotonic() - started < 3, "the next call waited for the interrupted one"
    assert lab.run("c1", "pgrep -x sleep || echo none").stdout.strip() == "none"   # the sleep was ended


def test_ctrl_c_stops_a_waiting_probe(lab):
    _interrupt_after(0.5)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        lab.probe("c1", "10.55.66.99", timeout=25)
    assert time.monotonic() - started < 3
    assert lab.probe("c1", "10.55.66.3").reason.startswith("dropped by filter FORWARD policy DROP")


def test_200_mb_of_output_is_cut_and_the_host_stays_small(lab):
    (agent,) = lab_hosts(lab.name)
    result = lab.run("c1", "head -c 200000000 /dev/zero", timeout=120)
    assert result.returncode == 0
    assert len(result.stdout) == 1024 * 1024 and result.cut == {"stdout": 200_000_000}
    assert "cut after 1024 KiB" in str(result) and "200,000,000 bytes" in str(result)
    peak_kib = int(next(line for line in open(f"/proc/{agent}/status") if line.startswith("VmHWM:")).split()[1])
    print(f"\nagent peak memory with 200 MB of output: {peak_kib / 1024:.1f} MiB")
    assert peak_kib < 150 * 1024, f"the lab's host grew to {peak_kib / 1024:.0f} MiB"


# -- many lives and deaths ----------------------------------------------------------------------
CYCLES = int(os.environ.get("NETKIT_CYCLES", "100"))


def test_many_labs_in_a_row_leave_nothing(name):
    for _ in range(CYCLES):
        lab = Lab(name=name)
        traces = lab_traces(lab)
        started = time.monotonic()
        lab.close()
        assert wait_gone(traces, started) == []


def test_many_labs_up_and_down_from_a_terminal_leave_nothing(tmp_path):
    env = dict(os.environ, NETKIT_RUNTIME_DIR=str(tmp_path / "run"))
    name = lab_name("cycle")
    netkit = [PYTHON, "-m", "netkit"]
    try:
        for _ in range(CYCLES):
            up = subprocess.run(netkit + ["up", "--lab", name, "--quiet"], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=60)
            assert up.returncode == 0, up.stderr
            down = subprocess.run(netkit + ["down", "--lab", name], cwd=REPO, env=env, capture_output=True,
                                  text=True, timeout=60)
            assert down.returncode == 0 and "is down" in down.stdout, down.stderr
            assert lab_hosts(name) == []
        assert sorted(os.listdir(tmp_path / "run")) == [".keeper.json", ".keeper.log", ".keeper.sock"]
    finally:
        subprocess.run(netkit + ["down", "--all"], cwd=REPO, env=env, capture_output=True, timeout=60)


KILLED = textwrap.dedent("""
    import sys
    from netkit import Lab
    lab = Lab(name=sys.argv[1])
    print("up", flush=True)
    sys.stdin.read()
""")


def test_kill_9_at_random_moments_leaves_nothing(tmp_path):
    env = dict(os.environ, NETKIT_RUNTIME_DIR=str(tmp_path / "run"))
    rng = random.Random(9)
    for run in range(30):
        name = lab_name("kill")
        child = subprocess.Popen([PYTHON, "-c", KILLED, name], cwd=REPO, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 1.2))       # while starting, building, or idle
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdin.close()
        wait_until(lambda: not agents_running({name}), timeout=1.0)
        assert agents_running({name}) == [], f"run {run}: the lab outlived its owner's kill -9"
        # The name is free again at once (a file left by a kill mid-claim is stale, never in the way).
        with Lab(name=name) as lab:
            assert lab.run("c1", "true").ok
