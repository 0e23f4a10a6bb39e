"""Bad input gets the right NetkitError, whose message names the fix, and leaves the lab as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import PYTHON, REPO, assert_lost, lab_state, ping, refused_user_namespaces
from netkit import (
    CommandNotFound, Lab, LabInUse, NetkitError, RuleError, SandboxError, UnknownNode, UnknownStage,
)
from netkit.sandbox import REQUIRED_TOOLS, which
from netkit.state import runtime_dir

pytestmark = pytest.mark.lab


def test_unknown_node(lab):
    before = lab_state(lab)
    with pytest.raises(UnknownNode) as caught:
        lab.run("c3", "ip addr add 10.55.66.4/24 dev eth0")
    message = str(caught.value)
    assert "'c3'" in message and "host, c1, c2, internet" in message
    with pytest.raises(UnknownNode):
        lab["c3"]
    with pytest.raises(UnknownNode):
        lab.iptables("-P FORWARD ACCEPT", node="docker0")
    assert lab_state(lab) == before


def test_unknown_stage_refuses_to_start(name):
    with pytest.raises(UnknownStage) as caught:
        Lab(name=name, stage="nope")
    assert "'nope'" in str(caught.value) and "part3-start" in str(caught.value)
    assert not (runtime_dir() / f"{name}.json").exists()


def test_unknown_stage_on_reset_leaves_the_lab_as_it_was(lab):
    lab.iptables("-P FORWARD ACCEPT")  # a change reset would undo
    before, pid = lab_state(lab), lab.pid
    with pytest.raises(UnknownStage) as caught:
        lab.reset("nope")
    assert "choose one of: part3-start" in str(caught.value)
    assert lab.pid == pid and lab.stage == "part3-start" and not lab.closed
    assert lab_state(lab) == before
    assert "10.55.66.0" in lab.run("c1", "route -n").stdout  # still usable


def test_a_program_that_does_not_exist(lab):
    before = lab_state(lab)
    with pytest.raises(CommandNotFound) as caught:
        lab.run("c1", "pnig 10.55.66.3")
    message = str(caught.value)
    assert "'pnig'" in message and "apt-get install" in message and "spelling" in message
    assert lab_state(lab) == before
    assert_lost(ping(lab, "c1", "10.55.66.3"))  # and the real one still runs


def test_a_lab_name_in_use(lab):
    state_file = runtime_dir() / f"{lab.name}.json"
    with pytest.raises(LabInUse) as caught:
        Lab(name=lab.name)
    message = str(caught.value)
    assert repr(lab.name) in message and f"netkit down --lab {lab.name}" in message
    assert "Lab(name=" in message
    # The first lab is untouched, still owns the name, and still works.
    assert json.loads(state_file.read_text())["init_pid"] == lab.pid
    assert not lab.closed
    assert "10.55.66.0" in lab.run("c1", "route -n", check=True).stdout


@pytest.mark.parametrize("rule, says", [
    ("-t nat -A POSTROUTING -j MASQ", "MASQ"),
    ("-A FORWRD -j ACCEPT", "No chain/target/match"),
])
def test_a_malformed_iptables_rule(lab, rule, says):
    before = lab_state(lab)
    with pytest.raises(RuleError) as caught:
        lab.iptables(rule)
    message = str(caught.value)
    assert f"`iptables {rule}`" in message and says in message
    assert "nothing was changed" in message and "FORWARD, POSTROUTING" in message
    assert lab_state(lab) == before


@pytest.mark.parametrize("bad", ["../x", "", "a/b", "-x", "x" * 41, "c1;reboot", None])
def test_bad_lab_names(bad):
    with pytest.raises(NetkitError) as caught:
        Lab(name=bad)
    assert "is not a lab name" in str(caught.value) and "Lab(name='netkit')" in str(caught.value)
    assert not (runtime_dir().parent / "x.json").exists()


# -- a machine that cannot run the lab ---------------------------------------------------------
NO_TOOLS = textwrap.dedent("""
    import json, sys
    from netkit import Lab, NetkitError
    try:
        Lab(name=sys.argv[1])
    except NetkitError as exc:
        print(json.dumps({"kind": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"kind": None}))
""")


def _toolbox(directory: Path, tools) -> Path:
    """A directory of symlinks to python, env, sh and `tools`: a PATH without the rest."""
    directory.mkdir()
    for program in ("python3", "env", "sh", *tools):
        os.symlink(which(program) if program != "python3" else sys.executable, directory / program)
    return directory


@pytest.mark.parametrize("present, package", [
    ((), "iproute2"),  # nothing at all: every package is named, iproute2 among them
    (tuple(sorted(set(REQUIRED_TOOLS) - {"ip", "bridge"})), "iproute2"),
    (tuple(sorted(set(REQUIRED_TOOLS) - {"unshare", "nsenter"})), "util-linux"),
])
def test_missing_programs_name_the_package(tmp_path, name, present, package):
    bin_dir = _toolbox(tmp_path / "bin", present)
    runtime = tmp_path / "run"
    env = {"PATH": str(bin_dir), "NETKIT_TOOL_PATH": str(bin_dir), "NETKIT_RUNTIME_DIR": str(runtime),
           "HOME": str(tmp_path)}
    done = subprocess.run([PYTHON, "-c", NO_TOOLS, name], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout)
    assert error["kind"] == SandboxError.__name__, error
    assert "sudo apt-get install " in error["message"] and package in error["message"]
    if present:  # only one package missing: the fix is exactly that package
        assert f"sudo apt-get install {package} " in error["message"]
        missing = sorted(set(REQUIRED_TOOLS) - set(present))
        assert f"this machine lacks {', '.join(missing)};" in error["message"]
    assert list(runtime.iterdir()) == []  # no state file left behind


# The kernel refuses: an unprivileged user where user.max_user_namespaces is 0 (see helpers).
REFUSED = textwrap.dedent("""
    import json, os, sys
    from netkit import Lab, NetkitError
    try:
        Lab(name=sys.argv[1])
        result = {"kind": None}
    except NetkitError as exc:
        result = {"kind": type(exc).__name__, "message": str(exc)}
    result["limit"] = open("/proc/sys/user/max_user_namespaces").read().strip()
    result["euid"] = os.geteuid()
    print(json.dumps(result), flush=True)
""")


@pytest.mark.rootless
def test_the_kernel_refusing_user_namespaces(world_tmp, name, netkit_test_user, netkit_copy):
    uid, gid, _home = netkit_test_user
    runtime = Path(world_tmp) / "run"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, uid, gid)
    machine_limit = Path("/proc/sys/user/max_user_namespaces").read_text()
    done = subprocess.run(refused_user_namespaces(uid, gid, ["/usr/bin/python3", "-c", REFUSED, name]),
                          cwd="/", env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(netkit_copy),
                                        "HOME": "/tmp", "NETKIT_RUNTIME_DIR": str(runtime)},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["limit"] == "0" and result["euid"] == uid  # the refusal was set up as meant
    assert result["kind"] == SandboxError.__name__, result
    message = result["message"]
    assert "unprivileged user" in message and "user namespaces" in message
    assert "sysctl -w user.max_user_namespaces=" in message and "run as root" in message
    assert "No space left on device" in message  # what the kernel said is kept
    assert list(runtime.iterdir()) == []
    assert Path("/proc/sys/user/max_user_namespaces").read_text() == machine_limit


UTIL_LINUX_ZH_TW = Path("/usr/share/locale/zh_TW/LC_MESSAGES/util-linux.mo")   # Debian's util-linux-locales


@pytest.fixture
def zh_tw_locale(world_tmp):
    """A LOCPATH holding zh_TW.UTF-8 (compiled with localedef into a directory every user reads), so the
    machine's own locales are not touched; skipped, saying why, without util-linux-locales."""
    if not UTIL_LINUX_ZH_TW.exists():
        pytest.skip("needs Debian's util-linux-locales (unshare's zh_TW messages): ./quickstart test installs it")
    if not Path("/usr/share/i18n/locales/zh_TW").exists():
        pytest.skip("needs the locale sources of Debian's locales package to compile zh_TW.UTF-8")
    locales = Path(world_tmp) / "locales"
    locales.mkdir()
    subprocess.run(["localedef", "-i", "zh_TW", "-f", "UTF-8", str(locales / "zh_TW.UTF-8")],
                   check=True, capture_output=True, text=True)
    for root, dirs, files in os.walk(locales):
        os.chmod(root, 0o755)
        for file in files:
            os.chmod(os.path.join(root, file), 0o644)
    return {"LANG": "zh_TW.UTF-8", "LANGUAGE": "zh_TW:zh", "LOCPATH": str(locales)}


@pytest.mark.rootless
def test_the_refused_start_names_the_fix_in_a_chinese_locale(world_tmp, name, netkit_test_user, netkit_copy,
                                                              zh_tw_locale):
    """A student whose locale is zh_TW.UTF-8 (util-linux and the C library then speak Chinese) still gets
    the message that names the fix: unshare runs untranslated, and the refusal is decided from its errno."""
    uid, gid, _home = netkit_test_user
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", **zh_tw_locale}
    # The trap is real: in this locale, where the kernel refuses, unshare itself says it in Chinese.
    plain = subprocess.run(refused_user_namespaces(uid, gid, ["/usr/bin/unshare", "--user", "--map-root-user",
                                                              "--net", "true"]),
                           cwd="/", env=env, capture_output=True, text=True, timeout=30)
    assert plain.returncode == 1 and "失敗" in plain.stderr and "No space left" not in plain.stderr, plain.stderr
    runtime = Path(world_tmp) / "run"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, uid, gid)
    done = subprocess.run(refused_user_namespaces(uid, gid, ["/usr/bin/python3", "-c", REFUSED, name]),
                          cwd="/", env={**env, "PYTHONPATH": str(netkit_copy), "NETKIT_RUNTIME_DIR": str(runtime)},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["limit"] == "0" and result["euid"] == uid
    assert result["kind"] == SandboxError.__name__, result
    message = result["message"]
    assert "unprivileged user" in message and "sysctl -w user.max_user_namespaces=" in message, message
    assert "run as root" in message and "No space left on device" in message, message
    assert list(runtime.iterdir()) == []
