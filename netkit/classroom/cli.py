"""`./quickstart class`: one command that turns this server into a workshop hub.

    python -m netkit.classroom --roster FILE [--port 8000] [--admin NAME]...
    python -m netkit.classroom --students N --roster FILE     # makes the accounts, writes FILE (0600)
    python -m netkit.classroom --remove --roster FILE          # removes the class's accounts and hub state

In order: check everything (`checks.preflight`: nothing is made when a check
fails), install the shared environment (`install`), make the accounts
(`accounts`), write the hub's config (`hub`), and run JupyterHub in the
foreground until Ctrl-C. The accounts stay until ``--remove``. Runs on
Debian's /usr/bin/python3 with the standard library only; JupyterHub itself
runs from the shared environment.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..i18n import _
from . import accounts, checks, install, limits
from . import roster as rosters
from .hub import Settings, jupyterhub_argv, write_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="./quickstart class",
                                description="Run a netkit workshop: a JupyterHub where each student has a lab.")
    p.add_argument("--roster", required=True, metavar="FILE",
                   help="username,password a line (with --students N: the file to write)")
    p.add_argument("--students", type=int, metavar="N", help="make N accounts student01.. and write them to FILE")
    p.add_argument("--port", type=int, default=8000, help="the hub's port (default 8000)")
    p.add_argument("--ip", default="127.0.0.1",
                   help="the hub's address (default 127.0.0.1; 0.0.0.0 opens it to the room: add TLS)")
    p.add_argument("--admin", action="append", default=[], metavar="NAME",
                   help="an instructor: sees the progress board and the admin page (repeatable)")
    p.add_argument("--mem-limit", default="1G", help="memory per student's server, labs included (default 1G)")
    p.add_argument("--cpu-limit", type=float, default=0.0, metavar="CORES",
                   help="at most this many cores per student's server, even when the machine is idle "
                        "(default: none; every student always gets an equal share of a busy machine)")
    p.add_argument("--idle-timeout", type=int, default=3600,
                   help="stop a server idle this many seconds (default 3600)")
    p.add_argument("--state-dir", default="/var/lib/netkit-class", help="the hub's database and config")
    p.add_argument("--ssl-cert", default="", help="TLS certificate, for a hub students reach over the network")
    p.add_argument("--ssl-key", default="")
    p.add_argument("--remove", action="store_true", help="remove the roster's accounts (and the hub's state)")
    p.add_argument("--check-only", action="store_true", help="run the checks and stop")
    p.add_argument("--no-install", action="store_true", help="use the shared environment as it is")
    return p


def class_name(port: int) -> str:
    return f"netkit-class-{port}"


def entries_from(args) -> list[rosters.Entry]:
    if args.students is not None:
        if Path(args.roster).exists():
            raise rosters.RosterError(f"{args.roster} exists already; --students writes a new roster: give "
                                      f"another file name, or run without --students to use it")
        return rosters.generate(args.students)
    return rosters.load(args.roster)


def hub_running(state_dir: str) -> int | None:
    """The pid of this class's `./quickstart class` process if it still runs, else None."""
    try:
        pid = int((Path(state_dir) / "class.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"netkit.classroom" in cmdline else None


def remove(args, entries: list[rosters.Entry]) -> int:
    problem = checks.check_root()
    if problem:
        raise checks.ClassError(problem)
    running = hub_running(args.state_dir)
    if running:
        raise checks.ClassError(f"the hub of this class still runs (pid {running}): stop it with Ctrl-C "
                                "first, then remove the accounts")
    print(_("removing the class of {roster}:").format(roster=args.roster))
    for entry in entries:
        if not accounts.remove(entry.username):
            print("  " + _("{user}: no account made by netkit").format(user=entry.username))
    state = Path(args.state_dir)
    name = class_name(args.port)
    if (state / "settings.json").exists():   # the port the class really ran on
        name = json.loads((state / "settings.json").read_text()).get("class_name", name)
    if limits.available() is None:
        limits.remove_class(name)
    if (state / "settings.json").exists():
        shutil.rmtree(state)
        print("  " + _("removed the hub's state {path}").format(path=state))
    return 0


def limit_lines(settings: Settings, enforced: bool) -> list[str]:
    """What the instructor is told about CPU, processes and disk, beside the memory line."""
    lines = []
    if enforced:
        cap = (_("at most {cores:g} core(s) each").format(cores=settings.cpu_limit) if settings.cpu_limit
               else _("no cap on an idle machine (--cpu-limit CORES sets one)"))
        lines.append(_("CPU: every student's server gets an equal share when the machine is busy; {cap}")
                     .format(cap=cap))
        machine = limits.pid_max()
        count = len(settings.students) + len(settings.admins)
        lines.append(_("processes: at most {pids} per student's server ({count} accounts; the kernel's pid_max "
                       "is {machine})").format(pids=settings.pids_limit, count=count, machine=machine))
        if not limits.pids_fit(count, settings.pids_limit, machine):
            lines.append(_("warning: {count} servers of {pids} processes could take most of the machine's "
                           "{machine} pids; raise it first: sysctl -w kernel.pid_max=4194304")
                         .format(count=count, pids=settings.pids_limit, machine=machine))
    lines.append(_("disk: homes have no quota (see the README's class section to set one); each server's "
                   "/tmp, /var/tmp and /dev/shm are its own, in memory, and go with it"))
    return lines


def wait_ready(url: str, hub: subprocess.Popen, timeout: float = 180) -> bool:
    """Poll /hub/login until it answers 200 (the hub answers some seconds after its port opens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and hub.poll() is None:
        try:
            # Our own hub on this machine: a self-signed certificate is fine for this check.
            context = ssl._create_unverified_context() if url.startswith("https:") else None
            with urllib.request.urlopen(f"{url}/hub/login", timeout=5, context=context) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def serve(args, entries: list[rosters.Entry]) -> int:
    memory = limits.parse_size(args.mem_limit)
    if not args.no_install:
        install.install()
    names = [e.username for e in entries]
    print(_("making {count} account(s):").format(count=len(entries)))
    for entry in entries:
        accounts.ensure(entry, install.notebooks(), admin=entry.username in args.admin)
    for admin in set(args.admin) - set(names):   # an instructor's own account: add the notebooks, change nothing else
        given = accounts.give_notebooks(pwd.getpwnam(admin), install.notebooks(), admin=True)
        print("  " + _("gave {user} {count} notebook(s) in ~/notebooks, both languages (the dashboard among them)")
              .format(user=admin, count=len(given)))
    settings = Settings(students=[n for n in names if n not in args.admin], admins=list(args.admin),
                        ip=args.ip, port=args.port, state_dir=args.state_dir, prefix=str(install.PREFIX),
                        mem_limit=memory, idle_timeout=args.idle_timeout, class_name=class_name(args.port),
                        pids_limit=limits.pids_per_student(len(entries)), cpu_limit=args.cpu_limit,
                        ssl_cert=args.ssl_cert, ssl_key=args.ssl_key)
    config = write_config(settings)
    (Path(settings.state_dir) / "class.pid").write_text(str(os.getpid()))
    why = limits.available()
    print(_("memory per student's server: {limit}, enforced by a cgroup").format(limit=args.mem_limit) if why is None
          else _("memory per student's server is NOT limited: {why}").format(why=why))
    for line in limit_lines(settings, why is None):
        print(line)
    hub = subprocess.Popen(jupyterhub_argv(settings, config), cwd=settings.state_dir, start_new_session=True)

    def forward(signum, frame):
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        if wait_ready(settings.url, hub):
            print("\n" + _("the class is open at {url}/ ({count} students; admins: {admins})").format(
                url=settings.url, count=len(settings.students), admins=", ".join(settings.admins) or _("none")),
                flush=True)
            if args.admin:
                print(_("progress board: {url}").format(url=f"{settings.url}/services/netkit-progress/"), flush=True)
            if args.ip == "127.0.0.1":
                print(_("it listens on 127.0.0.1 only: to open it to the room, run again with --ip 0.0.0.0 "
                        "and --ssl-cert/--ssl-key (passwords cross the network)"), flush=True)
            print(_("Ctrl-C stops the hub; the accounts stay until ./quickstart class --remove --roster {roster}")
                  .format(roster=args.roster), flush=True)
        code = hub.wait()
    finally:
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(timeout=30)
            except subprocess.TimeoutExpired:
                hub.kill()
                hub.wait()
        if limits.available() is None:
            limits.remove_class(settings.class_name)   # whatever a server left behind
        (Path(settings.state_dir) / "class.pid").unlink(missing_ok=True)
    print(_("the hub stopped (exit {code})").format(code=code), flush=True)
    return 0 if code in (0, -signal.SIGTERM, 128 + signal.SIGTERM) else code


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.remove and args.students is not None:
            raise rosters.RosterError("--remove takes the roster the class was made from (--roster FILE), "
                                      "not --students")
        entries = entries_from(args)
        if args.remove:
            return 0 if args.check_only else remove(args, entries)
        if bool(args.ssl_cert) != bool(args.ssl_key) or not all(
                Path(f).is_file() for f in (args.ssl_cert, args.ssl_key) if f):
            raise checks.ClassError("give both --ssl-cert and --ssl-key, each an existing file "
                                    "(the certificate and its private key, PEM)")
        if args.cpu_limit < 0 or 0 < args.cpu_limit < 0.01:
            raise checks.ClassError(_("--cpu-limit {value:g} is not a number of cores a server can get; give 0.01 "
                                      "or more (e.g. --cpu-limit 1.5), or leave it out for no cap")
                                    .format(value=args.cpu_limit))
        checks.preflight(entries, args.admin, args.ip, args.port)
        limits.parse_size(args.mem_limit)
        if args.check_only:
            print(_("the class of {count} can be set up on this machine").format(count=len(entries)))
            return 0
        if args.students is not None:
            rosters.write(args.roster, entries)
            print(_("wrote {count} accounts to {roster} (mode 0600): hand each student their line")
                  .format(count=len(entries), roster=args.roster))
        return serve(args, entries)
    except (checks.ClassError, rosters.RosterError) as exc:
        print(f"netkit class: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"netkit class: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
