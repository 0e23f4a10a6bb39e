"""The `netkit` command: up, status, exec, down and doctor, run as a terminal would."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from helpers import PYTHON, REPO, assert_answers, lab_name, link_json, namespace_ids, ping, wait_gone
from netkit.sandbox import REQUIRED_TOOLS, which
from netkit.state import runtime_dir


def netkit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "netkit", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def terminal(tmp_path):
    """The environment of a terminal with a state directory of its own; its labs and keeper end after."""
    env = dict(os.environ, NETKIT_RUNTIME_DIR=str(tmp_path / "run"))
    yield env
    netkit("down", "--all", env=env)


def _traces_of(name: str, env: dict) -> dict:
    """What the lab `name` started by `netkit up` is made of, found as a terminal would."""
    state_file = os.path.join(env["NETKIT_RUNTIME_DIR"], f"{name}.json")
    record = json.loads(open(state_file).read())
    netns = {"host": os.readlink(f"/proc/{record['init_pid']}/ns/net")}
    for node in ("c1", "c2", "internet"):
        done = netkit("exec", "--lab", name, node, "--", "readlink", "/proc/self/ns/net", env=env)
        assert done.returncode == 0, done.stderr
        netns[node] = done.stdout.strip()
    return {
        "pids": {"unshare": record["pid"], "init": record["init_pid"]},
        "namespaces": {"netns": netns, "mnt": os.readlink(f"/proc/{record['init_pid']}/ns/mnt"),
                       "pid": os.readlink(f"/proc/{record['init_pid']}/ns/pid"), "user": None},
        "namespace_ids": namespace_ids(record["init_pid"], netns),
        "state_file": state_file,
        "machine_netns": os.readlink("/proc/self/ns/net"),
    }


@pytest.mark.lab
def test_up_status_exec_down(name, terminal):
    env = terminal
    up = netkit("up", "--lab", name, "--quiet", env=env)
    assert up.returncode == 0, up.stderr
    assert f"lab {name!r} is up at stage part3-start" in up.stdout
    assert "[host]" not in up.stdout  # --quiet: no echo of the build steps
    assert f"netkit exec --lab {name} c1 -- route -n" in up.stdout

    status = netkit("status", env=env)
    assert status.returncode == 0
    row = next(line for line in status.stdout.splitlines() if line.startswith(name + " "))
    assert "running" in row and "part3-start" in row and "keeper" in row
    assert "the netkit keeper, pid" in status.stdout

    route = netkit("exec", "--lab", name, "c1", "--", "route", "-n", env=env)
    assert route.returncode == 0, route.stderr
    lines = route.stdout.splitlines()
    assert len(lines) == 3 and lines[2].split()[:3] == ["10.55.66.0", "0.0.0.0", "255.255.255.0"]
    assert lines[2].split()[-1] == "eth0"

    lost = netkit("exec", "--lab", name, "c1", "--", "ping", "-c1", "-W1", "10.55.66.3", env=env)
    assert lost.returncode == 1 and "100% packet loss" in lost.stdout  # FORWARD DROP
    policy = netkit("exec", "--lab", name, "host", "--", "iptables", "-S", "FORWARD", env=env)
    assert policy.stdout.splitlines()[0] == "-P FORWARD DROP"

    # A second `up` with the same name is refused, and names the way out.
    again = netkit("up", "--lab", name, "--quiet", env=env)
    assert again.returncode == 2 and f"netkit down --lab {name}" in again.stderr

    traces = _traces_of(name, env)
    started = time.monotonic()
    down = netkit("down", "--lab", name, env=env)
    assert down.returncode == 0 and f"lab {name!r} is down" in down.stdout
    assert wait_gone(traces, started) == []

    assert name not in netkit("status", env=env).stdout
    gone = netkit("exec", "--lab", name, "c1", "--", "route", "-n", env=env)
    assert gone.returncode == 2 and f"no running lab called {name!r}" in gone.stderr


@pytest.mark.lab
def test_exec_reaches_the_lab_a_notebook_holds(lab):
    # Same kernel objects: the MAC the Lab sees is the MAC `netkit exec` sees.
    shown = netkit("exec", "--lab", lab.name, "c1", "--", "ip", "-j", "link", "show", "eth0")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)[0]["address"] == link_json(lab, "c1", "eth0")["address"]
    # A change made from the terminal is a change in the notebook's lab.
    changed = netkit("exec", "--lab", lab.name, "host", "--", "iptables", "-P", "FORWARD", "ACCEPT")
    assert changed.returncode == 0, changed.stderr
    assert_answers(ping(lab, "c1", "10.55.66.3"))
    # The exit code is the command's own.
    assert netkit("exec", "--lab", lab.name, "c2", "--", "sh", "-c", "exit 7").returncode == 7
    status = netkit("status")
    row = next(line for line in status.stdout.splitlines() if line.startswith(lab.name + " "))
    assert f"pid {os.getpid()}" in row


@pytest.mark.lab
def test_exec_mistakes_exit_2_and_name_the_fix(lab):
    missing = lab_name("nosuch")
    done = netkit("exec", "--lab", missing, "c1", "--", "route", "-n")
    assert done.returncode == 2
    assert f"no running lab called {missing!r}" in done.stderr
    assert lab.name in done.stderr  # the running labs are listed
    assert "netkit up" in done.stderr and "--lab NAME" in done.stderr

    done = netkit("exec", "--lab", lab.name, "c3", "--", "route", "-n")
    assert done.returncode == 2
    assert "no node 'c3'" in done.stderr and "host, c1, c2, internet" in done.stderr

    done = netkit("exec", "--lab", lab.name, "c1")
    assert done.returncode == 2 and "netkit exec c1 -- route -n" in done.stderr

    done = netkit("exec", "--lab", "../x", "c1", "--", "true")
    assert done.returncode == 2 and "is not a lab name" in done.stderr

    done = netkit("up", "--lab", lab_name(), "--stage", "nope")
    assert done.returncode == 2 and "no stage 'nope'" in done.stderr and "part3-start" in done.stderr

    done = netkit("down", "--lab", missing)
    assert done.returncode == 2 and f"no running lab called {missing!r}" in done.stderr
    # None of that touched the lab.
    assert "-P FORWARD DROP" in lab.run("host", "iptables -S FORWARD").stdout


def test_doctor_says_this_machine_can_run_the_lab():
    done = netkit("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "this machine can run the lab" in done.stdout
    assert "MISSING" not in done.stdout


def test_doctor_names_a_missing_package(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in set(REQUIRED_TOOLS) - {"ip", "bridge"}:
        os.symlink(which(program), bin_dir / program)
    env = {"PATH": str(bin_dir), "NETKIT_TOOL_PATH": str(bin_dir), "HOME": str(tmp_path)}
    done = netkit("doctor", env=env)
    assert done.returncode == 1
    assert "this machine cannot run the lab yet" in done.stdout
    assert "missing: bridge, ip" in done.stdout and "fix: sudo apt-get install iproute2\n" in done.stdout
    done = netkit("doctor", env=dict(env, NETKIT_LANG="zh-TW"))           # the same, in Traditional Chinese
    assert done.returncode == 1
    assert "這台機器還無法執行實驗環境" in done.stdout
    assert "缺少：bridge, ip" in done.stdout and "修正方法：sudo apt-get install iproute2\n" in done.stdout


def test_down_all_without_labs_of_this_user(tmp_path):
    env = dict(os.environ, NETKIT_RUNTIME_DIR=str(tmp_path / "run"))
    done = netkit("down", "--all", env=env)
    assert done.returncode == 0 and "no labs" in done.stdout
    done = netkit("status", env=env)
    assert done.returncode == 0 and "no labs" in done.stdout
