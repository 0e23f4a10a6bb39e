"""The `netkit` command: a terminal's way into the labs.

    netkit up     [--lab NAME] [--stage STAGE]            start a lab that outlives the command
    netkit exec   [--lab NAME] [--user U] NODE -- CMD...  run CMD in a node, like `docker exec`
    netkit status [--user U]                              this user's labs (and what is left of ended ones)
    netkit down   [--lab NAME | --all] [--user U]         end a lab (or all, and the keeper)
    netkit doctor                                         what this machine allows, with fixes

`exec` reaches any running lab of the same user, including one an open
notebook holds. It checks that the lab's pid 1 is still the process its
state file names, opens that process's namespaces, checks again, and only
then enters them (nsenter, then the node as the lab itself does: `ip netns
exec`, or nsenter in a container, see `nodes.node_argv`), so the command's
output and exit code are its own and a recycled pid is never entered.

Every verb works on the caller's own labs. Root may name another user's lab
with ``--user NAME``, and is then told whose lab it touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import doctor, keeper, state, topology
from .nodes import PATH, node_argv
from .errors import LabNotFound, NetkitError, UnknownNode
from .sandbox import which
from .i18n import _

NAMESPACES = ("user", "mnt", "net", "pid")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netkit", description="Docker's bridge network, in namespaces.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = sub.add_parser("up", help="start a lab that runs until `netkit down`")
    up.add_argument("--lab", default="netkit", help="the lab's name (default: netkit)")
    up.add_argument("--stage", default=topology.DEFAULT_STAGE,
                    help="where in the article to start: " + ", ".join(topology.STAGES))
    up.add_argument("--quiet", action="store_true", help="do not echo the commands that build the lab")
    ex = sub.add_parser("exec", help="run a command in a node of a running lab")
    ex.add_argument("--lab", default="netkit")
    ex.add_argument("--user", help="root only: the user whose lab it is")
    ex.add_argument("node", help="one of: " + ", ".join(topology.NODES))
    ex.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    st = sub.add_parser("status", help="list running labs")
    st.add_argument("--user", help="root only: list this user's labs instead of root's")
    down = sub.add_parser("down", help="end a lab")
    down.add_argument("--lab", default="netkit")
    down.add_argument("--all", action="store_true", help="end every lab of this user, and the keeper")
    down.add_argument("--user", help="root only: the user whose lab it is")
    sub.add_parser("doctor", help="check what this machine allows")
    return parser


def cmd_up(args) -> int:
    echo = None if args.quiet else (lambda e: print(f"  [{e['node']}] {e['command']}", flush=True)
                                    if e.get("event") == "step" else None)
    record = keeper.up(args.lab, args.stage, on_event=echo)
    print(f"lab {args.lab!r} is up at stage {args.stage} (pid {record['init_pid']}).\n"
          f"  try:     netkit exec --lab {args.lab} c1 -- route -n\n"
          f"  end it:  netkit down --lab {args.lab}")
    return 0


def _whose(where: state.StateDir) -> str:
    return "" if where.uid == os.geteuid() else f" of user {where.user}"


def exec_argv(record: state.LabRecord, node: str, command: list[str], fds: dict[str, int]) -> list[str]:
    """The argv that runs `command` in `node`, entering the namespaces open as `fds` (kind -> fd)."""
    argv = [which("nsenter") or "nsenter"]
    if "user" in fds:
        # Keep our ids (they map to root in the lab): resetting them would call setgroups(),
        # which a --map-root-user namespace denies to an unprivileged user.
        argv += [f"--user=/proc/self/fd/{fds['user']}", "--preserve-credentials"]
    argv += [f"--mount=/proc/self/fd/{fds['mnt']}", f"--net=/proc/self/fd/{fds['net']}",
             f"--pid=/proc/self/fd/{fds['pid']}", "--", "env", f"PATH={PATH}"]
    return argv + node_argv(node, command)


def _open_namespaces(record: state.LabRecord) -> dict[str, int]:
    """The lab's namespaces, opened through its pid 1 and checked to be that process's before and after."""
    if not record.init.current():
        raise LabNotFound(_("the lab {name!r} has just ended").format(name=record.name), name=record.name)
    fds = {}
    for kind in NAMESPACES:
        if kind == "user" and not record.userns:
            continue
        fds[kind] = os.open(f"/proc/{record.init_pid}/ns/{kind}", os.O_RDONLY)
    if not record.init.current():   # the pid was reused while we opened: these are someone else's
        for fd in fds.values():
            os.close(fd)
        raise LabNotFound(_("the lab {name!r} has just ended").format(name=record.name), name=record.name)
    return fds


def cmd_exec(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise NetkitError(_("give the command after --, e.g. netkit exec c1 -- route -n"))
    topology.check_node(args.node)
    with state.state_dir_of(args.user) as where:
        record = state.require(state.check_name(args.lab), where)
    if args.node not in topology.nodes_at(record.stage):
        joins = next(st.name for st in topology.STAGES.values() if args.node in st.adds)
        raise UnknownNode(
            _("the lab {lab!r} is at stage {stage}, where there is no node {node!r}; it joins at stage "
              "{joins}: lab.reset({joins!r}) in the notebook, or netkit down --lab {lab} && netkit up --lab "
              "{lab} --stage {joins}")
            .format(lab=args.lab, stage=record.stage, node=args.node, joins=joins))
    if args.user:
        print(f"(lab {args.lab!r} of user {where.user})", file=sys.stderr)
    fds = _open_namespaces(record)
    for fd in fds.values():
        os.set_inheritable(fd, True)
    argv = exec_argv(record, args.node, command, fds)
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return 127  # not reached


def cmd_status(args) -> int:
    with state.state_dir_of(args.user) as where:
        labs = state.every_lab(where)
        kept = keeper.running(where)
    owner = f" of user {where.user}" if args.user else ""
    if not labs:
        print(f"no labs{owner} (start one with `netkit up` or Lab() in a notebook)")
    else:
        print(f"{'LAB':<18}{'STATE':<10}{'STAGE':<18}{'PID':>8}  {'MODE':<7}{'HELD BY':<18}{'UP':>7}")
    for found in labs:
        r = found.record
        if r is None:
            pids = ",".join(map(str, found.holders)) or "-"
            why = {"stale": "no lab holds its state file: `netkit down` removes it",
                   "starting": "its host is being built",
                   "orphan": "its state file was deleted: `netkit down` ends it"}[found.kind]
            print(f"{found.name:<18}{found.kind:<10}{'-':<18}{pids:>8}  {'-':<7}{'-':<18}{'':>7}  ({why})")
            continue
        held = f"keeper {r.owner_pid}" if r.kept else f"pid {r.owner_pid}"
        mode = "userns" if r.userns else "root"
        up_for = f"{time.time() - r.started:.0f}s" if found.kind == "running" else "-"
        note = {"stale": "  (no lab holds it: `netkit down` removes the file)",
                "ended": "  (ended; its holder has not let go of the name yet)"}.get(found.kind, "")
        print(f"{found.name:<18}{found.kind:<10}{r.stage:<18}{r.init_pid:>8}  {mode:<7}{held:<18}{up_for:>7}{note}")
    if kept is not None:
        print(f"(the netkit keeper, pid {kept.pid}, holds the labs `netkit up` started)")
    return 0


def cmd_down(args) -> int:
    with state.state_dir_of(args.user) as where:
        if args.all:
            targets = state.every_lab(where)
        else:
            name = state.check_name(args.lab)
            targets = [f for f in state.every_lab(where) if f.name == name]
            if not targets:
                state.require(name, where)   # raises LabNotFound listing what runs
        for found in targets:
            print(state.stop(found, where))
        if args.all and keeper.quit(where):
            print("the netkit keeper has ended")
        if not targets and args.all:
            print(f"no labs{_whose(where)}")
    return 0


def cmd_doctor(args) -> int:
    checks = doctor.run_checks()
    print(doctor.format_checks(checks))
    return 0 if doctor.can_run(checks) else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"up": cmd_up, "exec": cmd_exec, "status": cmd_status, "down": cmd_down,
                "doctor": cmd_doctor}[args.verb](args)
    except NetkitError as exc:
        print(f"netkit: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("netkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
