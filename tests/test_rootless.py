"""Promise 3: no root needed where the kernel allows user namespaces.

As root, the test creates the unprivileged system user `netkit-test` and runs a
script as that user (runuser), with Debian's /usr/bin/python3 and a
world-readable copy of the netkit package: the lab must start in a user
namespace, give scenario 1's outcomes, be reachable with `netkit exec` by the
same user, and leave nothing behind when closed. The script reports what it
saw as JSON; pytest asserts on it, then scans /proc as root for leftovers.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from helpers import lab_name, leftovers

pytestmark = [pytest.mark.rootless, pytest.mark.lab]

AS_USER = textwrap.dedent("""
    import json, os, subprocess, sys, time
    from pathlib import Path
    from netkit import Lab
    from netkit.state import runtime_dir
    from helpers import lab_traces, wait_gone

    name = sys.argv[1]
    seen = {"euid": os.geteuid(), "runtime_dir": str(runtime_dir())}

    def ping(lab):
        result = lab.run("c1", "ping 10.55.66.3 -c1 -W1")
        return [result.returncode, result.stdout]

    def netkit(*args):
        done = subprocess.run([sys.executable, "-m", "netkit", *args], capture_output=True, text=True)
        return [done.returncode, done.stdout, done.stderr]

    with Lab(name=name) as lab:
        seen["record"] = json.loads((runtime_dir() / f"{name}.json").read_text())
        seen["uid_map"] = Path(f"/proc/{lab.pid}/uid_map").read_text().split()
        seen["own_uid_map"] = Path("/proc/self/uid_map").read_text().split()
        seen["userns_is_new"] = os.readlink(f"/proc/{lab.pid}/ns/user") != os.readlink("/proc/self/ns/user")
        seen["id_in_host"] = lab.run("host", "id -u").stdout.strip()
        seen["route"] = lab.run("c1", "route -n").stdout
        seen["sysctl"] = lab.sysctl("net.bridge.bridge-nf-call-iptables")
        seen["policy"] = lab.run("host", "iptables -S FORWARD").stdout
        # a TCP probe needs no scapy (Debian's python has none): the host imports its probe code only now
        seen["tcp_probes"] = [lab.probe("c1", "10.55.66.3", port=80).outcome.result.value]
        steps = [ping(lab)]
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
        steps.append(ping(lab))
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 1)
        steps.append(ping(lab))
        lab.iptables("-P FORWARD ACCEPT")
        steps.append(ping(lab))
        seen["tcp_probes"].append(lab.probe("c1", "10.55.66.3", port=80).outcome.result.value)
        seen["steps"] = steps
        seen["exec_route"] = netkit("exec", "--lab", name, "c1", "--", "route", "-n")
        seen["exec_ping"] = netkit("exec", "--lab", name, "c1", "--", "ping", "-c1", "-W1", "10.55.66.3")
        seen["status"] = netkit("status")
        traces = lab_traces(lab)
        seen["traces"] = traces
        started = time.monotonic()
    # Only this user's processes can be read here; root scans everything afterwards.
    seen["left_after_close"] = wait_gone(traces, started)
    seen["state_file_left"] = Path(traces["state_file"]).exists()
    print(json.dumps(seen))
""")


def test_a_lab_without_root(netkit_test_user, netkit_copy):
    uid, _gid, home = netkit_test_user
    name = lab_name()
    script = Path(netkit_copy) / "as_user.py"
    script.write_text(AS_USER)
    os.chmod(script, 0o644)
    # A plain user's environment: no sbin on PATH, no XDG_RUNTIME_DIR (so the default
    # /tmp/netkit-<uid> is used), Debian's python, the package copy on PYTHONPATH.
    env = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", f"HOME={home}", "LANG=C.UTF-8",
           f"PYTHONPATH={netkit_copy}"]
    done = subprocess.run(["runuser", "-u", "netkit-test", "--", *env, "/usr/bin/python3", str(script), name],
                          cwd=netkit_copy, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"the script failed as netkit-test:\n{done.stdout}\n{done.stderr}"
    seen = json.loads(done.stdout)

    # It really ran unprivileged, in a user namespace of its own.
    assert seen["euid"] == uid != 0
    assert seen["runtime_dir"] == f"/tmp/netkit-{uid}"
    assert seen["record"]["userns"] is True
    assert seen["userns_is_new"] is True
    assert seen["uid_map"] == ["0", str(uid), "1"]  # root in the lab is netkit-test outside
    assert seen["own_uid_map"] != seen["uid_map"]
    assert seen["id_in_host"] == "0"

    # Scenario 1 gives the article's outcomes.
    assert len(seen["route"].splitlines()) == 3 and seen["route"].splitlines()[2].split()[-1] == "eth0"
    assert seen["sysctl"] == "1"
    assert seen["policy"].splitlines()[0] == "-P FORWARD DROP"
    outcomes = [(code, "100% packet loss" in out, "ttl=64" in out) for code, out in seen["steps"]]
    assert outcomes == [(1, True, False), (0, False, True), (1, True, False), (0, False, True)], seen["steps"]
    # The probes, traced and captured inside the user namespace: FORWARD's DROP, then c2's reset.
    assert seen["tcp_probes"] == ["dropped", "refused"]

    # `netkit exec` reaches the lab the Lab object holds, for the same user.
    code, out, err = seen["exec_route"]
    assert code == 0, err
    assert out.splitlines()[2].split()[0] == "10.55.66.0" and len(out.splitlines()) == 3
    code, out, err = seen["exec_ping"]
    assert code == 0 and "1 received" in out, (out, err)  # FORWARD is ACCEPT by then
    code, out, err = seen["status"]
    assert code == 0 and name in out and "userns" in out

    # Nothing outlives it: for what the user can see (wait_gone), and for root afterwards.
    assert seen["left_after_close"] == []
    assert seen["state_file_left"] is False
    assert leftovers(seen["traces"]) == []
