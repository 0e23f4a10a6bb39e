"""The doctor's diagnosis of a container or pod, as pure functions of what it reads (no root needed).

Recorded inputs come from real Podman containers (tests/data/record_containers.py wrote
``tests/data/containers/*.json``: /proc/self/status, the security label, /proc/self/mountinfo,
what the lab's unshare said, and the rows `netkit doctor` printed there). Docker, Kubernetes,
AppArmor and SELinux cannot be had on these machines: their cases take a recorded Podman
container and change what that runtime changes (its name, its label), each saying so.
tests/test_container.py checks the same diagnosis for real, inside the image.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from netkit import confinement
from netkit.confinement import Evidence, diagnose, masked_paths, runtime_of

pytestmark = pytest.mark.pure   # recorded data only: no lab, no root (./quickstart test --fast)

DATA = Path(__file__).resolve().parent / "data"
RECORDED = {path.stem: json.loads(path.read_text()) for path in sorted((DATA / "containers").glob("*.json"))}


def evidence(case: str, **changes) -> Evidence:
    return dataclasses.replace(Evidence(**RECORDED[case]["evidence"]), **changes)


def pieces(ev: Evidence) -> dict[str, confinement.Missing]:
    return {missing.piece: missing for missing in diagnose(ev)}


def test_every_case_was_recorded_in_a_real_podman_container():
    assert set(RECORDED) >= {"podman-documented", "podman-no-flags", "podman-unmask-proc-only",
                             "podman-seccomp-refuses-unshare", "podman-root-no-caps", "pod-seccomp-refuses-unshare"}
    for case, record in RECORDED.items():
        assert record["podman"].startswith("podman version") and record["kernel"], case


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_the_diagnosis_names_what_doctor_named_in_the_container(case):
    record = RECORDED[case]
    printed = [row["name"] for row in record["rows"] if row["ok"] is False]
    if record["ok"]:
        assert printed == [] and record["rows"][-1]["name"] == "namespaces"
        return
    assert [missing.piece for missing in diagnose(Evidence(**record["evidence"]))] == printed


def test_podman_with_the_documented_flags_hides_nothing_and_the_lab_starts():
    record = RECORDED["podman-documented"]
    assert record["ok"] and record["flags"] == ["--security-opt", "unmask=ALL", "--security-opt", "label=disable"]
    assert masked_paths(record["evidence"]["mountinfo"]) == []
    assert record["evidence"]["euid"] == 1000          # the lab ran rootless, as jovyan
    assert "not root, but user namespaces are allowed" in record["rows"][-1]["found"]


def test_podman_without_flags_needs_unmask_all():
    ev = evidence("podman-no-flags")
    assert ev.runtime == "podman" and ev.clue == "/run/.containerenv exists"
    assert "mount /proc failed" in ev.said
    (missing,) = diagnose(ev)
    assert missing.piece == "masked paths"
    assert {"/proc/acpi", "/proc/keys", "/proc/sys", "/sys/firmware"} <= set(masked_paths(ev.mountinfo))
    assert missing.fix.startswith("add `--security-opt unmask=ALL` to `podman run`")


def test_unmasking_only_proc_leaves_sys_masked_and_the_sysfs_mount_refused():
    ev = evidence("podman-unmask-proc-only")
    assert confinement.failed_step(ev.said) == "sys"
    assert masked_paths(ev.mountinfo) == ["/sys/firmware", "/sys/dev/block"]
    (missing,) = diagnose(ev)
    assert "/sys/firmware, /sys/dev/block" in missing.found and "unmask=ALL" in missing.fix


def test_a_seccomp_filter_refusing_unshare_is_named_with_the_masks_that_come_next():
    found = pieces(evidence("podman-seccomp-refuses-unshare"))
    assert list(found) == ["seccomp", "masked paths"]
    assert "Seccomp: 2" in found["seccomp"].found
    assert found["seccomp"].fix.startswith("add `--security-opt seccomp=unconfined` to `podman run`")


def test_root_without_capabilities_is_told_to_run_as_jovyan_or_which_capabilities_to_add():
    ev = evidence("podman-root-no-caps")
    assert ev.euid == 0 and confinement.effective_caps(ev.status) == set()
    (missing,) = diagnose(ev)
    assert missing.piece == "capabilities"
    assert "CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW" in missing.found
    assert "uid 1000" in missing.fix and "--cap-add SYS_ADMIN,NET_ADMIN,NET_RAW" in missing.fix


def test_a_pod_gets_pod_settings_not_run_flags():
    ev = evidence("pod-seccomp-refuses-unshare")
    assert ev.runtime == "kubernetes" and ev.clue == "KUBERNETES_SERVICE_HOST is set"
    found = pieces(ev)
    assert found["seccomp"].fix.startswith("set `securityContext.seccompProfile.type: Unconfined` on the pod's")
    assert found["masked paths"].fix.startswith("set `securityContext.procMount: Unmasked` on the pod's container")
    assert "hostUsers: false" in found["masked paths"].fix
    assert all("--security-opt" not in missing.fix for missing in found.values())


# Docker, AppArmor, SELinux: a recorded Podman container, with what those change.
def test_docker_default_refuses_unshare_and_masks_paths_so_it_needs_two_flags():
    # Docker's default seccomp profile fails unshare() without CAP_SYS_ADMIN, as the recorded profile did.
    ev = evidence("podman-seccomp-refuses-unshare", runtime="docker", clue="/.dockerenv exists")
    found = pieces(ev)
    assert list(found) == ["seccomp", "masked paths"]
    assert found["seccomp"].fix.startswith("add `--security-opt seccomp=unconfined` to `docker run`")
    assert found["masked paths"].fix.startswith("add `--security-opt systempaths=unconfined` to `docker run`")


def test_docker_on_an_apparmor_host_also_needs_apparmor_unconfined():
    ev = evidence("podman-seccomp-refuses-unshare", runtime="docker", label="docker-default (enforce)\n")
    found = pieces(ev)
    assert list(found) == ["seccomp", "masked paths", "apparmor"]
    assert "'docker-default (enforce)'" in found["apparmor"].found
    assert found["apparmor"].fix.startswith("add `--security-opt apparmor=unconfined` to `docker run`")
    # Unconfined, or AppArmor's complain mode, confines nothing.
    assert confinement.label_kind("unconfined\n") == confinement.label_kind("docker-default (complain)") == ""


def test_podman_machine_with_selinux_needs_label_disable():
    ev = evidence("podman-no-flags", label="system_u:system_r:container_t:s0:c123,c456\x00")
    found = pieces(ev)
    assert list(found) == ["masked paths", "selinux"]
    assert found["selinux"].fix.startswith("add `--security-opt label=disable` to `podman run`")
    # With label=disable Podman runs the container as spc_t, which SELinux does not confine.
    assert confinement.label_kind("system_u:system_r:spc_t:s0") == ""


def test_a_pod_on_an_apparmor_node_needs_its_apparmor_profile_unconfined():
    ev = evidence("pod-seccomp-refuses-unshare", label="cri-containerd.apparmor.d (enforce)")
    assert pieces(ev)["apparmor"].fix.startswith("set `securityContext.appArmorProfile.type: Unconfined`")


def test_user_namespaces_refused_without_a_seccomp_filter_point_at_the_host():
    status = RECORDED["podman-seccomp-refuses-unshare"]["evidence"]["status"].replace("Seccomp:\t2", "Seccomp:\t0")
    ev = evidence("podman-seccomp-refuses-unshare", status=status, mountinfo="")
    (missing,) = diagnose(ev)
    assert missing.piece == "user ns" and "user namespaces are refused" in missing.found
    assert "user.max_user_namespaces" in missing.fix


def test_root_with_its_capabilities_but_a_filter_is_told_about_the_filter():
    status = RECORDED["podman-root-no-caps"]["evidence"]["status"]
    cap_eff = confinement.status_field(status, "CapEff")
    status = status.replace(cap_eff, f"{(1 << 21) | (1 << 12) | (1 << 13):016x}")
    found = pieces(evidence("podman-root-no-caps", status=status))
    assert list(found) == ["seccomp"]


def test_a_failure_it_cannot_explain_is_shown_as_it_was_said():
    ev = evidence("podman-documented", said="unshare: something new went wrong")
    (missing,) = diagnose(ev)
    assert missing.piece == "namespaces" and "something new went wrong" in missing.found


@pytest.mark.parametrize("files, env, cgroup, expected", [
    ({"/.dockerenv"}, {}, "0::/\n", "docker"),
    (set(), {}, "12:pids:/docker/3f1c\n", "docker"),
    ({"/run/.containerenv"}, {"container": "podman"}, "0::/\n", "podman"),
    (set(), {}, "9:name=systemd:/libpod_parent/libpod-2faf\n", "podman"),
    ({"/.dockerenv"}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "0::/\n", "kubernetes"),
    (set(), {}, "11:memory:/kubepods/besteffort/pod1f\n", "kubernetes"),
    (set(), {"container": "lxc"}, "0::/\n", "container"),
    (set(), {}, "0::/\n", ""),
])
def test_where_the_doctor_runs(files, env, cgroup, expected):
    assert runtime_of(files.__contains__, env, cgroup)[0] == expected


def test_mounts_on_directories_the_kernel_keeps_empty_hide_nothing():
    mountinfo = "\n".join([
        "22 1 0:21 / /proc rw,nosuid - proc proc rw",
        "23 1 0:22 / /sys rw,nosuid - sysfs sysfs rw",
        "24 23 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw",
        "25 24 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
        "26 22 0:25 / /proc/sys/fs/binfmt_misc rw - autofs systemd-1 rw",
        "27 23 0:7 / /sys/kernel/debug rw - debugfs debugfs rw",
        "28 22 0:26 /null /proc/kcore rw - tmpfs tmpfs rw",
        "29 1 8:1 / /srv/proc/x rw - ext4 /dev/sda1 rw",
    ])
    assert masked_paths(mountinfo) == ["/proc/kcore"]


def test_failed_steps_are_read_from_what_unshare_and_mount_say():
    assert confinement.failed_step("unshare: unshare failed: Operation not permitted") == "unshare"
    assert confinement.failed_step("unshare: write failed /proc/self/uid_map: Operation not permitted") == "unshare"
    assert confinement.failed_step("unshare: mount /proc failed: Operation not permitted") == "proc"
    assert confinement.failed_step("mount: /sys: permission denied.") == "sys"


def test_the_kubernetes_values_give_every_pod_setting_the_doctor_asks_for():
    import yaml
    values = yaml.safe_load((DATA.parent.parent / "deploy" / "kubernetes" / "values.yaml").read_text())
    assert values["singleuser"]["extraPodConfig"]["hostUsers"] is False     # procMount: Unmasked needs it
    assert values["singleuser"]["uid"] == 1000 and values["singleuser"]["cmd"] == "jupyterhub-singleuser"
    context = values["hub"]["config"]["KubeSpawner"]["container_security_context"]
    for piece in ("seccomp", "masked paths", "apparmor"):
        path, _, wanted = confinement.FIXES[piece]["kubernetes"].partition(": ")
        keys = path.split(".")
        assert keys[0] == "securityContext", path
        node = context
        for key in keys[1:]:
            node = node[key]
        assert node == wanted, (piece, path, node)
    assert "capabilities" not in context and "privileged" not in context
