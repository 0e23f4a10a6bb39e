"""The `netkit` command: a terminal's way into the labs.

    netkit up     [--lab NAME] [--stage STAGE]   start a lab that outlives the command
    netkit exec   [--lab NAME] NODE -- CMD...    run CMD in a node, like `docker exec`
    netkit status                                list this user's running labs
    netkit down   [--lab NAME | --all]           end a lab
    netkit doctor                                what this machine allows, with fixes

`exec` reaches any running lab of the same user, including one an open
notebook holds: it enters the lab's host with nsenter and the node as the
lab itself does (`ip netns exec`, or nsenter in a container, see
`agent.node_argv`), so the command's output and exit code are its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import doctor, sandbox, topology
from .agent import PATH, node_argv
from .errors import NetkitError


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
    ex.add_argument("node", help="one of: " + ", ".join(topology.NODES))
    ex.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    sub.add_parser("status", help="list running labs")
    down = sub.add_parser("down", help="end a lab")
    down.add_argument("--lab", default="netkit")
    down.add_argument("--all", action="store_true", help="end every lab of this user")
    sub.add_parser("doctor", help="check what this machine allows")
    return parser


def cmd_up(args) -> int:
    echo = None if args.quiet else (lambda e: print(f"  [{e['node']}] {e['command']}", flush=True)
                                    if e.get("event") == "step" else None)
    topology.stage(args.stage)
    box = sandbox.Sandbox(args.lab, on_event=echo)
    try:
        box.call("build", stage=args.stage)
        box.call("detach")
        record = box.write_record(args.stage, detached=True)
    except BaseException:
        box.close()
        raise
    print(f"lab {args.lab!r} is up at stage {args.stage} (pid {record.init_pid}).\n"
          f"  try:     netkit exec --lab {args.lab} c1 -- route -n\n"
          f"  end it:  netkit down --lab {args.lab}")
    return 0


def exec_argv(record: sandbox.LabRecord, node: str, command: list[str]) -> list[str]:
    """The argv that runs `command` in `node` of the lab `record` describes."""
    topology.check_node(node)
    return record.nsenter_argv() + ["--", "env", f"PATH={PATH}", *node_argv(node, command)]


def cmd_exec(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise NetkitError("give the command after --, e.g. netkit exec c1 -- route -n")
    topology.check_node(args.node)
    record = sandbox.find(args.lab)
    argv = exec_argv(record, args.node, command)
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return 127  # not reached


def cmd_status(args) -> int:
    labs = sandbox.running_labs()
    if not labs:
        print("no running labs (start one with `netkit up` or Lab() in a notebook)")
        return 0
    print(f"{'LAB':<16}{'STAGE':<20}{'PID':>8}  {'MODE':<9}{'HELD BY':<16}{'UP':>8}")
    for r in labs:
        held = "netkit up" if r.detached else f"pid {r.owner_pid}"
        mode = "userns" if r.userns else "root"
        print(f"{r.name:<16}{r.stage:<20}{r.init_pid:>8}  {mode:<9}{held:<16}{time.time() - r.started:>7.0f}s")
    return 0


def cmd_down(args) -> int:
    records = sandbox.running_labs() if args.all else [sandbox.find(args.lab)]
    for record in records:
        sandbox.stop(record)
        print(f"lab {record.name!r} is down")
    if not records:
        print("no running labs")
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


if __name__ == "__main__":
    sys.exit(main())
