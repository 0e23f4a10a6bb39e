"""What `./quickstart class` checks before it creates anything.

Every check only reads the machine (a throwaway namespace at most); each
failure is a ClassError whose message names the fix. `preflight()` runs them
all and reports every problem at once.

- run as root (accounts are made with useradd);
- the roster parses (`netkit.classroom.roster`);
- no roster name is an account this kit did not make (a clash with a real
  user or a system account such as ``www-data``), nor a group's name;
- every admin has an account or a roster line (admins log in with PAM too);
- the hub's port is free on its address;
- an unprivileged user may create the lab's namespaces (tried for real, as
  uid 65534, with the same ``unshare`` flags a student's lab uses), also
  inside a class server's own /tmp, IPC and hidepid /proc
  (`netkit.classroom.privacy`), where the students' labs will run.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import socket
import subprocess

from ..errors import NetkitError
from . import roster as rosters

MARK = "netkit class account"
"""The comment (GECOS) field of every account this kit makes; only those are ever changed or removed."""


class ClassError(NetkitError):
    """The class cannot be set up as asked; nothing was created."""


def ours(name: str) -> bool:
    """True if `name` is an account this kit made for a class."""
    try:
        return pwd.getpwnam(name).pw_gecos.split(",")[0] == MARK
    except KeyError:
        return False


def check_root() -> str | None:
    if os.geteuid() != 0:
        return "class mode makes Unix accounts and runs the hub as root: run it with sudo"
    return None


def check_names(names: list[str]) -> list[str]:
    problems = []
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            entry = None
        if entry is not None and not ours(name):
            problems.append(f"{name!r} is already an account on this machine (uid {entry.pw_uid}, not made by "
                            "netkit): choose another name for that line")
            continue
        if entry is None:
            try:
                group = grp.getgrnam(name)
            except KeyError:
                continue
            problems.append(f"{name!r} is already a group on this machine (gid {group.gr_gid}), so useradd "
                            "cannot make its own group: choose another name for that line")
    return problems


def check_admins(admins: list[str], names: list[str]) -> list[str]:
    problems = []
    for admin in admins:
        why = rosters.check_username(admin)
        if why:
            problems.append(f"--admin: {why}")
            continue
        if admin in names:
            continue
        try:
            pwd.getpwnam(admin)
        except KeyError:
            problems.append(f"--admin {admin}: there is no such account; add a line '{admin},PASSWORD' to the "
                            "roster, or name an existing account (the admin logs in with its password)")
    return problems


def check_port(ip: str, port: int) -> str | None:
    if not isinstance(port, int) or not 1 <= port <= 65535:
        return f"--port {port!r}: give a TCP port from 1 to 65535, e.g. --port 8000"
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {ip} is in use by another program (see: ss -ltnp 'sport = :{port}'); "
                        f"stop it, or choose another port: --port {port + 1 if port < 65535 else 8000}")
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"--ip {ip} is not an address of this machine; use 127.0.0.1 or one `ip addr` shows"
            return f"cannot listen on {ip}:{port} ({exc.strerror}); choose another --port or --ip"
    return None


USERNS_FIX = ("allow user namespaces: sudo sysctl -w kernel.unprivileged_userns_clone=1 (Debian), "
              "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+), "
              "sudo sysctl -w user.max_user_namespaces=15000; then run the command again")


def check_user_namespaces() -> str | None:
    """Can an unprivileged user make a lab's namespaces? Tried as uid/gid 65534 (nobody)."""
    from ..sandbox import which
    setpriv, unshare = which("setpriv"), which("unshare")
    if not setpriv or not unshare:
        return "setpriv and unshare are missing: sudo apt-get install util-linux"
    argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
            unshare, "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not try a student's lab namespaces ({exc})"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return ("this kernel refuses user namespaces to unprivileged users, so no student's lab could start "
                f"(unshare said: {' '.join(said[-1:]) or 'exit ' + str(done.returncode)}); {USERNS_FIX}")
    return None


def check_server_privacy() -> str | None:
    """Can the hub give a server its own /tmp and /proc, and can a lab (with its own /proc) start inside?"""
    from ..i18n import _
    from ..sandbox import which
    from . import privacy
    setpriv, unshare = which("setpriv"), which("unshare")
    if not setpriv or not unshare:
        return None   # check_user_namespaces names what is missing
    argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--", unshare, "--user",
            "--map-root-user", "--net", "--mount", "--pid", "--fork", "--mount-proc", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd="/",
                              preexec_fn=lambda: privacy.enter(16 << 20))
    except subprocess.SubprocessError:
        return _("the kernel refused to give a class server its own /tmp, /dev/shm and /proc (a mount and IPC "
                 "namespace, tmpfs, proc with hidepid): run the hub as root on the machine itself, not in a "
                 "container that forbids mounts, on Linux 5.8 or newer")
    if done.returncode != 0:
        return _("inside a class server's own /proc (hidepid) a lab's namespaces could not be made (exit "
                 "{code}); run ./quickstart class --check-only again, and report it with the output of "
                 "unshare --user --map-root-user --mount --pid --fork --mount-proc true").format(code=done.returncode)
    return None


def preflight(entries: list[rosters.Entry], admins: list[str], ip: str, port: int, *,
              userns: bool = True) -> None:
    """Raise ClassError listing every problem; return quietly when the class can be made."""
    problems = [p for p in (check_root(),) if p]
    names = [e.username for e in entries]
    problems += check_names(names)
    problems += check_admins(admins, names)
    problems += [p for p in (check_port(ip, port),) if p]
    if userns and not problems:   # the slowest check last, and only once the rest is right
        problems += [p for p in (check_user_namespaces(),) if p]
    if userns and not problems:
        problems += [p for p in (check_server_privacy(),) if p]
    if problems:
        raise ClassError("the class was not set up; nothing was created:\n  - " + "\n  - ".join(problems))
