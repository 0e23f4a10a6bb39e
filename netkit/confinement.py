"""What a container withholds from the lab, and the run flag or pod setting that gives it back.

In a container (Docker, Podman, a Kubernetes pod) the lab runs as it does on
a laptop: as an ordinary user (the image's `jovyan`, uid 1000) with a user
namespace of its own, in which it creates its network, mount and pid
namespaces and mounts a fresh /proc and /sys. A container runtime can refuse
each step. The pieces, what refuses, and the fix:

- seccomp: the runtime's filter fails unshare() with EPERM (Docker's default
  profile allows it only to containers given CAP_SYS_ADMIN).
  Fix: `--security-opt seccomp=unconfined`; in a pod,
  `securityContext.seccompProfile.type: Unconfined`.
- masked paths: parts of /proc and /sys are hidden or read-only, and the
  kernel refuses a fresh proc or sysfs mount in a user namespace while any
  part of them is hidden. Fix: Docker `--security-opt systempaths=unconfined`,
  Podman `--security-opt unmask=ALL`; in a pod `securityContext.procMount:
  Unmasked`, which Kubernetes allows only with `hostUsers: false`.
- apparmor / selinux: a profile that denies mount (Docker's docker-default,
  SELinux's container_t). Fix: `apparmor=unconfined` / `label=disable`.
- capabilities: root in the container runs the lab without a user
  namespace, and then needs CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_NET_RAW.
  Better: run as the image's user with the flags above.

The evidence is read in one place (`gather`: /proc/self/status, the security
label, /proc/self/mountinfo, and what the lab's own `unshare` said when
`netkit doctor` tried it); everything else here is pure functions of that
evidence (`runtime_of`, `masked_paths`, `diagnose`), so the tests feed them
files recorded in Docker, Podman and Kubernetes as well as the real thing a
Podman container gives. Nothing here changes anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from .i18n import N_, _, translated

# Shown with `translated` (they go into sentences such as "{runtime} withholds what the lab needs").
NAMES = {"docker": N_("a Docker container"), "podman": N_("a Podman container"),
         "kubernetes": N_("a Kubernetes pod"), "container": N_("a container")}

# Capability bits (linux/capability.h) that root needs when the lab runs without a user namespace.
ROOT_CAPS = {"SYS_ADMIN": 21, "NET_ADMIN": 12, "NET_RAW": 13}

# Mount points under /proc and /sys that sit on directories the kernel keeps empty for them:
# a mount there hides nothing, so it never makes a fresh proc or sysfs mount "too revealing".
_EMPTY_MOUNT_POINTS = ("/sys/fs/cgroup", "/sys/kernel/debug", "/sys/kernel/tracing", "/sys/kernel/security",
                       "/sys/kernel/config", "/sys/fs/bpf", "/sys/fs/pstore", "/sys/fs/fuse/connections",
                       "/proc/sys/fs/binfmt_misc")

FIXES = {
    "seccomp": {"docker": "--security-opt seccomp=unconfined", "podman": "--security-opt seccomp=unconfined",
                "kubernetes": "securityContext.seccompProfile.type: Unconfined",
                "container": N_("a seccomp profile that allows unshare()")},
    "masked paths": {"docker": "--security-opt systempaths=unconfined", "podman": "--security-opt unmask=ALL",
                     "kubernetes": "securityContext.procMount: Unmasked",
                     "container": N_("no masked or read-only paths over /proc and /sys")},
    "apparmor": {"docker": "--security-opt apparmor=unconfined", "podman": "--security-opt apparmor=unconfined",
                 "kubernetes": "securityContext.appArmorProfile.type: Unconfined",
                 "container": N_("no AppArmor profile (unconfined)")},
    "selinux": {"docker": "--security-opt label=disable", "podman": "--security-opt label=disable",
                "kubernetes": "securityContext.seLinuxOptions.type: spc_t",
                "container": N_("no SELinux confinement")},
}


@dataclass(frozen=True)
class Evidence:
    """What the container lets us read about it, and what the lab's start said."""

    runtime: str          # "docker", "podman", "kubernetes", "container", or "" outside a container
    clue: str             # what gave the runtime away, e.g. "/run/.containerenv"
    euid: int
    status: str           # /proc/self/status
    label: str            # the security label (/proc/self/attr/current), "" when there is none
    mountinfo: str        # /proc/self/mountinfo
    said: str             # what the lab's unshare (or its mounts) said when they failed


@dataclass(frozen=True)
class Missing:
    """One thing the container withholds: the piece, what was found, and the fix.

    `piece` is a key (code and tests compare it; shown through `translated`); `found` and `fix`
    are already in the language in use.
    """

    piece: str
    found: str
    fix: str


# -- pure: from recorded inputs to a diagnosis -------------------------------------------
def runtime_of(exists: Callable[[str], bool], env: Mapping[str, str], cgroup: str) -> tuple[str, str]:
    """(runtime, clue) from marker files, the environment and /proc/1/cgroup; ("", "") outside one.

    The clue is English (tests and recordings compare it); show it with `translated`.
    """
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes", N_("KUBERNETES_SERVICE_HOST is set")
    if "kubepods" in cgroup:
        return "kubernetes", N_("/proc/1/cgroup names kubepods")
    if exists("/run/.containerenv") or env.get("container") == "podman":
        return "podman", N_("/run/.containerenv exists") if exists("/run/.containerenv") else "container=podman"
    if "libpod" in cgroup:
        return "podman", N_("/proc/1/cgroup names libpod")
    if exists("/.dockerenv"):
        return "docker", N_("/.dockerenv exists")
    if "/docker" in cgroup:
        return "docker", N_("/proc/1/cgroup names docker")
    if env.get("container"):
        return "container", f"container={env['container']}"
    return "", ""


def status_field(status: str, name: str) -> str:
    for line in status.splitlines():
        key, _sep, value = line.partition(":")
        if key == name:
            return value.strip()
    return ""


def effective_caps(status: str) -> set[str]:
    """The capabilities of ROOT_CAPS in CapEff of a /proc/<pid>/status text."""
    mask = int(status_field(status, "CapEff") or "0", 16)
    return {name for name, bit in ROOT_CAPS.items() if mask >> bit & 1}


def seccomp_filtered(status: str) -> bool:
    return status_field(status, "Seccomp") == "2"


def masked_paths(mountinfo: str) -> list[str]:
    """Mounts over parts of /proc and /sys (masks, read-only binds) that make the kernel
    refuse a fresh proc or sysfs mount inside a user namespace."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[4].startswith(("/proc/", "/sys/")):
            continue
        point = fields[4]
        if any(point == empty or point.startswith(empty + "/") for empty in _EMPTY_MOUNT_POINTS):
            continue
        found.append(point)
    return found


def label_kind(label: str) -> str:
    """"apparmor" or "selinux" when the label confines the process, else ""."""
    label = label.strip().rstrip("\x00")
    if not label or label.startswith("unconfined"):
        return ""
    if label.endswith("(enforce)"):
        return "apparmor"
    parts = label.split(":")
    if len(parts) >= 4 and parts[2] not in ("spc_t", "unconfined_t", "kernel_t"):
        return "selinux"
    return ""


def failed_step(said: str) -> str:
    """Which step of the lab's start failed: "unshare", "proc", "sys" or "other".

    `said` is what unshare(1) and mount(8) wrote, run under LC_ALL=C (`netkit.i18n.untranslated`): their
    exit status is 1 for every step, so their untranslated messages are the only record of the step."""
    if "unshare failed" in said or "uid_map" in said or "setgroups" in said:
        return "unshare"
    if "mount /proc" in said:
        return "proc"
    if "/sys" in said:
        return "sys"
    return "other"


def how(runtime: str, piece: str) -> str:
    """The fix for `piece` (a key of FIXES), phrased for where we are (in the language in use)."""
    setting = FIXES[piece][runtime]
    if runtime in ("docker", "podman"):
        return _("add `{setting}` to `{runtime} run` (the README's section \"On macOS or Windows "
                 "(a container)\" has the whole command)").format(setting=setting, runtime=runtime)
    if runtime == "kubernetes":
        if piece == "masked paths":      # securityContext.procMount
            return _("set `{setting}` on the pod's container (Kubernetes allows it only with hostUsers: false in "
                     "the pod); deploy/kubernetes/values.yaml does it for Zero to JupyterHub").format(setting=setting)
        return _("set `{setting}` on the pod's container; deploy/kubernetes/values.yaml does it for "
                 "Zero to JupyterHub").format(setting=setting)
    return _("start the container with {setting}").format(setting=translated(setting))


def _caps_fix(runtime: str, lacking: list[str]) -> str:
    if runtime == "docker":
        give = " ".join(f"--cap-add {cap}" for cap in lacking)
    elif runtime == "podman":
        give = f"--cap-add {','.join(lacking)}"
    elif runtime == "kubernetes":
        give = f"securityContext.capabilities.add: [{', '.join(lacking)}]"
    else:
        return _("better: let the lab run as the image's user (uid 1000), with the README's flags, as it does "
                 "unless the container is started as root; or give root the capabilities {caps}"
                 ).format(caps=", ".join(lacking))
    return _("better: let the lab run as the image's user (uid 1000), with the README's flags, as it does unless "
             "the container is started as root; or give root {give}").format(give=give)


def diagnose(ev: Evidence) -> list[Missing]:
    """Each piece the container withholds, with its fix (empty: nothing is known to be missing).

    Called when the lab's start failed. A refused unshare() hides the later steps, so
    masks and security labels that would refuse the mounts next are named as well: the
    person then adds every flag at once.
    """
    runtime = ev.runtime or "container"
    name = translated(NAMES[runtime])
    rootless = ev.euid != 0
    step = failed_step(ev.said)
    missing: list[Missing] = []
    if step == "unshare":
        lacking = [cap for cap in ROOT_CAPS if cap not in effective_caps(ev.status)]
        if not rootless and lacking:
            missing.append(Missing(
                N_("capabilities"),
                _("root in {runtime} lacks {caps}, so it cannot create the lab's namespaces (unshare said: {said})")
                .format(runtime=name, caps="CAP_" + ", CAP_".join(lacking), said=ev.said),
                _caps_fix(runtime, lacking)))
        elif seccomp_filtered(ev.status):
            missing.append(Missing(
                "seccomp",
                _("the seccomp filter of {runtime} refuses unshare(), which the lab needs to make its namespaces "
                  "(Seccomp: 2 in /proc/self/status; unshare said: {said})").format(runtime=name, said=ev.said),
                how(runtime, "seccomp")))
        else:
            if runtime == "kubernetes":
                fix = _("allow user namespaces where the container runs: sudo sysctl -w "
                        "user.max_user_namespaces=15000, and on Ubuntu 24.04+ sudo sysctl -w "
                        "kernel.apparmor_restrict_unprivileged_userns=0 on the node")
            else:
                fix = _("allow user namespaces where the container runs: sudo sysctl -w "
                        "user.max_user_namespaces=15000, and on Ubuntu 24.04+ sudo sysctl -w "
                        "kernel.apparmor_restrict_unprivileged_userns=0")
            missing.append(Missing(
                N_("user ns"),
                _("not root, and user namespaces are refused by the kernel under {runtime}, with no seccomp "
                  "filter in the way (unshare said: {said})").format(runtime=name, said=ev.said),
                fix))
    masked = masked_paths(ev.mountinfo)
    if masked and (step in ("proc", "sys") or (step == "unshare" and rootless)):
        shown = ", ".join(masked[:6])
        if len(masked) > 6:
            shown = _("{paths} and {count} more").format(paths=shown, count=len(masked) - 6)
        if step in ("proc", "sys"):
            found = _("{runtime} hides or locks parts of /proc and /sys ({shown}), so the kernel refuses the fresh "
                      "/proc and /sys the lab mounts in its user namespace; the mount said: {said}"
                      ).format(runtime=name, shown=shown, said=ev.said)
        else:
            found = _("{runtime} hides or locks parts of /proc and /sys ({shown}), so the kernel refuses the fresh "
                      "/proc and /sys the lab mounts in its user namespace").format(runtime=name, shown=shown)
        missing.append(Missing(N_("masked paths"), found, how(runtime, "masked paths")))
    confining = label_kind(ev.label)
    if confining == "apparmor":
        found = _("the AppArmor profile {label!r} keeps the lab from mounting /proc and /sys (and, under "
                  "AppArmor, from setting its sysctls)").format(label=ev.label.strip())
    elif confining:
        found = _("the SELinux label {label!r} keeps the lab from mounting /proc and /sys (and, under "
                  "AppArmor, from setting its sysctls)").format(label=ev.label.strip())
    if confining:        # the piece is "apparmor" or "selinux": a name, shown as it is
        missing.append(Missing(confining, found, how(runtime, confining)))
    if not missing:
        missing.append(Missing(
            N_("namespaces"),
            _("the lab could not start in {runtime} and it is not clear why (unshare said: {said})")
            .format(runtime=name, said=ev.said),
            _("start the container with the README's flags; if it still fails, report this line")))
    return missing


# -- the one place that reads the real files ----------------------------------------------
def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def where() -> tuple[str, str]:
    """(runtime, clue) for this process: ("", "") when it is not in a container."""
    return runtime_of(os.path.exists, os.environ, _read("/proc/1/cgroup"))


def gather(said: str) -> Evidence:
    """The evidence about this process's container, with what the lab's start said."""
    runtime, clue = where()
    label = _read("/proc/self/attr/apparmor/current") or _read("/proc/self/attr/current")
    return Evidence(runtime=runtime, clue=clue, euid=os.geteuid(), status=_read("/proc/self/status"),
                    label=label, mountinfo=_read("/proc/self/mountinfo"), said=said)
