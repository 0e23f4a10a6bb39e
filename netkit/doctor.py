"""What this machine allows: the checks behind `netkit doctor` and notebook 00.

Each check says what it found and, when something is missing, the fix. The
checks only read: they start throwaway namespaces at most, and never change
the machine.

The namespaces check starts what a lab's host starts (the same unshare, the
same /proc and /sys mounts) and lets it end at once. Inside a container
(Docker, Podman, a Kubernetes pod) a failure is handed to
`netkit.confinement`, which names each piece the container withholds and the
run flag or pod setting that gives it back.
"""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from . import confinement, nodes, sandbox
from .i18n import N_, _, translated, untranslated


@dataclass(frozen=True)
class Check:
    """One thing the kit needs; `ok` is True, False (the lab cannot run) or None (a warning).

    `name` is the check's key (code and tests compare it) and, through `translated`, its displayed
    name; `found` and `fix` are already in the language in use.
    """

    name: str
    ok: bool | None
    found: str
    fix: str = ""
    replaying: bool = False     # the "replay" check: replay mode is on (the notebooks replay recordings)

    @property
    def mark(self) -> str:
        return {True: N_("ok"), False: N_("MISSING"), None: N_("warning")}[self.ok]


def _try(argv: list[str]) -> tuple[bool, str]:
    try:
        # untranslated: what it says is read (confinement.failed_step, the iptables backend)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, env=untranslated())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, (done.stderr or done.stdout).strip()


def kernel_version(release: str | None = None) -> tuple[int, int]:
    release = release or os.uname().release
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def try_lab_start() -> tuple[bool, str]:
    """Start what a lab's host starts (its unshare, its /proc and its /sys), then let it end."""
    userns = sandbox.needs_user_namespace()
    ok, said = _try(sandbox.unshare_argv(userns) + nodes.sysfs_argv(sandbox.which("mount") or "mount"))
    # One line: mount(8) adds a hint about dmesg that says nothing here.
    return ok, " ".join(line.strip() for line in said.splitlines() if not line.strip().startswith("dmesg("))


def check_namespaces() -> list[Check]:
    """Whether the lab's host can start here; in a container, each piece it withholds, with its fix."""
    runtime, clue = confinement.where()
    rows = []
    if runtime:
        rows.append(Check(N_("container"), True,
                          _("this looks like {runtime} ({clue}): how it was started decides what the lab may do")
                          .format(runtime=translated(confinement.NAMES[runtime]), clue=translated(clue))))
    ok, said = try_lab_start()
    if ok:
        if os.geteuid() == 0:
            return rows + [Check(N_("namespaces"), True,
                                 _("running as root: the lab uses network, mount and pid namespaces"))]
        return rows + [Check(N_("namespaces"), True,
                             _("not root, but user namespaces are allowed: the lab runs rootless"))]
    if runtime:
        return rows + [Check(m.piece, False, m.found, m.fix)
                       for m in confinement.diagnose(confinement.gather(said))]
    if os.geteuid() == 0:
        return [Check(N_("namespaces"), False, _("root cannot create namespaces here ({said})").format(said=said),
                      _("this looks like a container without CAP_SYS_ADMIN: use a VM or laptop, "
                        "or start the container with the flags in the README's container section"))]
    return [Check(N_("namespaces"), False, _("not root and user namespaces are refused ({said})").format(said=said),
                  _("run as root (sudo), or allow user namespaces: sudo sysctl -w kernel.unprivileged_userns_clone=1 "
                    "(Debian), sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+), "
                    "sudo sysctl -w user.max_user_namespaces=15000"))]


def check_privileges() -> Check:
    """One answer about namespaces: the first thing missing, or that all is well."""
    rows = check_namespaces()
    return next((row for row in rows if row.ok is False), rows[-1])


PLATFORMS = {
    "docker-desktop": N_("Docker Desktop's LinuxKit VM (macOS)"),
    "wsl2": N_("WSL2 (Windows, and Docker Desktop on Windows)"),
    "podman-machine": N_("podman machine's Fedora CoreOS VM"),
    "linux": N_("a Linux machine or VM"),
}


def platform_of(release: str, runtime: str) -> str:
    """Which kind of kernel the lab runs on, from its release string (``uname -r``) and the container runtime
    (see `netkit.confinement.where`): each loads br_netfilter its own way. Colima and Lima run an ordinary
    Ubuntu VM, which a container cannot tell from any Linux machine: they count as "linux"."""
    if "linuxkit" in release:
        return "docker-desktop"
    if "microsoft" in release.lower():              # 5.15.167.4-microsoft-standard-WSL2
        return "wsl2"
    if runtime == "podman" and re.search(r"\.fc\d+\.", release):   # 6.12.7-200.fc41.x86_64
        return "podman-machine"
    return "linux"


def br_netfilter_fix(where: str, runtime: str) -> str:
    """The command that loads br_netfilter where the lab runs, and how to keep it loaded after a restart."""
    if where == "docker-desktop":
        return _("Docker Desktop's kernel, from your Mac's terminal: docker network create -o "
                 "com.docker.network.bridge.enable_icc=false netkit-brnf && docker network rm netkit-brnf "
                 "(Engine 27.3+ loads the module for such a network); it lasts until Docker Desktop restarts, so "
                 "run it again after each restart")
    if where == "wsl2":
        return _("in your WSL distro (Ubuntu, say): sudo modprobe br_netfilter; every WSL2 distro and Docker "
                 "Desktop share that one kernel. To keep it: add [boot] command = \"modprobe br_netfilter\" to "
                 "/etc/wsl.conf (or, with systemd on, echo br_netfilter | sudo tee "
                 "/etc/modules-load.d/br_netfilter.conf)")
    if where == "podman-machine":
        return _("podman machine ssh sudo modprobe br_netfilter (on a Fedora machine itself: sudo modprobe "
                 "br_netfilter); to keep it: podman machine ssh \"echo br_netfilter | sudo tee "
                 "/etc/modules-load.d/br_netfilter.conf\"")
    fix = _("sudo modprobe br_netfilter; to keep it: echo br_netfilter | sudo tee "
            "/etc/modules-load.d/br_netfilter.conf")
    if runtime == "kubernetes":
        return _("a container cannot load kernel modules: load br_netfilter on the node: {fix}").format(fix=fix)
    if runtime:
        return _("a container cannot load kernel modules: load br_netfilter on the machine or VM the container "
                 "runs on: {fix} (Colima: colima ssh -- {fix}; Lima: limactl shell NAME {fix})").format(fix=fix)
    return fix


def check_br_netfilter(release: str | None = None) -> Check:
    if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        return Check("br_netfilter", True,
                     _("loaded: bridged frames can be sent through iptables (scenario 1 works as in the article)"))
    runtime, _clue = confinement.where()
    where = platform_of(release or os.uname().release, runtime)
    fix = br_netfilter_fix(where, runtime)
    # Docker Engine 27.3 loads br_netfilter only for --icc=false (moby PR 48492, backport 48511); 27.4 adds
    # --userland-proxy=false (PR 48676, backport 48685). Unchanged in 28.x and 29.0 (enableBrNfCallIptables).
    return Check("br_netfilter", False,
                 _("not loaded on {platform}: /proc/sys/net/bridge/bridge-nf-call-iptables does not exist. Docker "
                   "Engine 27.3 and later load it only for --icc=false (27.4 and later also for "
                   "--userland-proxy=false), so on a default host of 27.3 or later scenario 1's first ping works, "
                   "unless something else (Kubernetes, say) loaded the module")
                 .format(platform=translated(PLATFORMS[where])), fix)


def check_kernel(release: str | None = None) -> Check:
    version = kernel_version(release)
    shown = release or os.uname().release
    if version >= (5, 3):
        return Check(N_("kernel"), True, _("Linux {shown}: bridge-nf-call-iptables is per network namespace, "
                                           "so flipping it in the lab leaves the machine alone").format(shown=shown))
    return Check(N_("kernel"), None,
                 _("Linux {shown} is older than 5.3: bridge-nf-call-iptables is one value for the whole "
                   "machine, so flipping it in the lab changes every bridge on this machine").format(shown=shown),
                 _("use a machine with Linux 5.3 or newer for the bridge experiments"))


def check_iptables() -> Check:
    program = sandbox.which("iptables")
    if not program:
        return Check("iptables", False, _("iptables is not installed"), "sudo apt-get install iptables nftables")
    ok, said = _try([program, "-V"])
    if "nf_tables" in said:
        return Check("iptables", True, _("{said}: the nft backend, which the lab traces verdicts with")
                     .format(said=said))
    return Check("iptables", None, _("{said}: the lab expects the nf_tables backend")
                 .format(said=said or _("unknown backend")),
                 "sudo update-alternatives --set iptables /usr/sbin/iptables-nft")


def check_tools() -> list[Check]:
    checks = []
    missing = sandbox.missing_tools(sandbox.REQUIRED_TOOLS)
    checks.append(Check(N_("lab tools"), not missing,
                        _("missing: {tools}").format(tools=", ".join(sorted(missing))) if missing
                        else "unshare, nsenter, ip, bridge, sysctl, iptables, nft",
                        "sudo apt-get install " + " ".join(sorted(set(missing.values()))) if missing else ""))
    missing = sandbox.missing_tools(sandbox.NODE_TOOLS)
    checks.append(Check(N_("node tools"), None if missing else True,
                        _("missing: {tools}").format(tools=", ".join(sorted(missing))) if missing
                        else ", ".join(sandbox.NODE_TOOLS),
                        "sudo apt-get install " + " ".join(sorted(set(missing.values()))) if missing else ""))
    return checks


def check_replay(live: bool, setting: str | None = None) -> Check | None:
    """Replay mode (`netkit.replay`): on, and why; or, where no lab can run, that it is a way to read the notebooks."""
    from . import replay
    setting = os.environ.get(replay.ENV, "") if setting is None else setting
    try:
        on = replay.switched_on(setting)
    except ValueError as error:
        return Check(N_("replay"), False, str(error), _("export {env}=1, or unset it").format(env=replay.ENV))
    if on:
        recorded = replay.shipped_on() or _("a real kernel")
        if live:
            return Check(N_("replay"), None,
                         _("{env}=1: the notebooks replay recordings (made on {recorded}), "
                           "though this machine could run the lab live").format(env=replay.ENV, recorded=recorded),
                         _("for a live lab: unset {env} and restart the notebook's kernel").format(env=replay.ENV),
                         replaying=True)
        return Check(N_("replay"), None,
                     _("{env}=1: the lab cannot run live here, so notebooks 01-04 and the "
                       "dashboard replay recordings made on {recorded}, each output labelled "
                       "'replayed'; exercises cannot be checked").format(env=replay.ENV, recorded=recorded),
                     _("for a live lab: a class server (an instructor's ./quickstart class), the container "
                       "(README: On macOS or Windows), or a Linux laptop or VM (./quickstart lab)"),
                     replaying=True)
    if not live:
        return Check(N_("replay"), None, _("off: the notebooks need a live lab, which cannot start here"),
                     _("to read them here anyway, replayed from recordings made on a real kernel and labelled as "
                       "such, start Jupyter with {env}=1 (Binder does)").format(env=replay.ENV))
    return None


def run_checks() -> list[Check]:
    """Every check, in the order a person would fix them."""
    checks = [*check_namespaces(), check_br_netfilter(), check_kernel(), check_iptables(), *check_tools()]
    replay = check_replay(can_run(checks))
    return checks + ([replay] if replay else [])


def can_run(checks: list[Check]) -> bool:
    return all(check.ok is not False for check in checks)


def _width(text: str) -> int:
    """How many terminal columns *text* takes (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    """*text* padded with spaces to *width* columns (on the left when `right`), as `f"{text:<13}"` does."""
    room = " " * max(0, width - _width(text))
    return room + text if right else text + room


def format_checks(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"{_pad(translated(check.mark), 8, right=True)}  {_pad(translated(check.name), 13)} "
                     f"{check.found}")
        if check.fix and check.ok is not True:
            lines.append(f"{'':>8}  {'':<13} " + _("fix: {fix}").format(fix=check.fix))
    return "\n".join(lines + ["", _verdict(checks)])


def _state(checks: list[Check]) -> str:
    """"can", "replay" (cannot, but the notebooks replay recordings) or "cannot"."""
    if can_run(checks):
        return "can"
    if any(c.replaying for c in checks):
        return "replay"
    return "cannot"


def _verdict(checks: list[Check]) -> str:
    state = _state(checks)
    if state == "can":
        return _("this machine can run the lab")
    if state == "replay":
        return _("this machine cannot run the lab yet: the notebooks replay recordings instead (labelled as such)")
    return _("this machine cannot run the lab yet")


def next_step(checks: list[Check]) -> str:
    """What to do now, after notebook 00's table: go on to notebook 01, or fix the rows marked MISSING."""
    state = _state(checks)
    if state == "can":
        return _("This machine can run the lab: go on to 01-container-to-container.ipynb")
    if state == "replay":
        return _("This machine cannot run the lab, so the notebooks replay recordings: go on to "
                 "01-container-to-container.ipynb, or to a live lab (see the replay row above)")
    return _("This machine cannot run the lab yet. Fix the rows marked {missing} above, then run this "
             "again.").format(missing=translated(N_("MISSING")))


class Table:
    """The checks as a table: plain text in a terminal, HTML in a notebook."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks

    def __str__(self) -> str:
        return format_checks(self.checks)

    def _repr_html_(self) -> str:
        import html
        colors = {True: "#009E73", False: "#D62728", None: "#B8860B"}
        rows = "".join(
            f'<tr><td style="color:{colors[c.ok]};font-weight:bold">{html.escape(translated(c.mark))}</td>'
            f"<td>{html.escape(translated(c.name))}</td><td style='text-align:left'>{html.escape(c.found)}</td>"
            f"<td style='text-align:left'><code>{html.escape(c.fix if c.ok is not True else '')}</code></td></tr>"
            for c in self.checks)
        if _state(self.checks) == "cannot":
            verdict = _("this machine cannot run the lab yet: apply the fixes above")
        else:
            verdict = _verdict(self.checks)
        return (f"<table><tr><th></th><th>{html.escape(_('check'))}</th>"
                f"<th style='text-align:left'>{html.escape(_('found'))}</th>"
                f"<th style='text-align:left'>{html.escape(_('fix'))}</th></tr>{rows}</table>"
                f"<p><b>{html.escape(verdict)}</b></p>")


def table(checks: list[Check] | None = None) -> Table:
    """Run the checks (or take `checks`) and return them as a table for display."""
    return Table(run_checks() if checks is None else checks)
