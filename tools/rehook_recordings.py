"""Give the replay recordings' dropped journeys the hook `netkit.netfilter.hook_of` names, in place.

    .venv/bin/python tools/rehook_recordings.py          # rewrite netkit/recordings/*.json
    .venv/bin/python tools/rehook_recordings.py --check  # only say which journeys would change (exit 1 if any)

Until issue 18 the outcome's hook of a drop in a user chain (DOCKER-USER, DOCKER, DOCKER-FORWARD, an nft
chain of Docker's nftables backend) was None, while the ladder put the same verdict under the hook it was
jumped to from. The outcome now asks `netkit.netfilter.hook_of`, as the ladder does. A recording keeps
each journey's decided outcome, so this converter decides its hook again from what the recording holds
(the journey's hooks and verdicts, as the kernel's trace gave them) and changes nothing else: a call's
line is rewritten only where a hook changed, in the recorder's own compact JSON. Re-recording
(tools/record_replays.py) gives the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netkit.journey import Journey  # noqa: E402
from netkit.netfilter import hook_of  # noqa: E402


def _rehook(node, changed: list[str]):
    """Walk a recorded call's JSON; fix the outcome's hook of every journey in it."""
    if isinstance(node, dict):
        if {"hops", "verdicts", "hooks", "outcome"} <= node.keys() and node["outcome"] \
                and node["outcome"].get("result") == "dropped" and node["outcome"].get("verdict"):
            journey = Journey.from_dict(node)
            dropped = next(v for v in journey.verdicts if v == journey.outcome.verdict)
            hook = hook_of(journey, dropped)
            if hook != node["outcome"]["hook"]:
                changed.append(f"{dropped.table} {dropped.chain}: {node['outcome']['hook']} -> {hook}")
                node["outcome"]["hook"] = hook
        for value in node.values():
            _rehook(value, changed)
    elif isinstance(node, list):
        for value in node:
            _rehook(value, changed)


def main() -> int:
    parser = argparse.ArgumentParser(description="Give the replay recordings' dropped journeys the hook "
                                                 "netkit.netfilter.hook_of names, in place.")
    parser.add_argument("--check", action="store_true",
                        help="only say which journeys would change (exit 1 if any)")
    check = parser.parse_args().check
    total = 0
    for path in sorted((REPO / "netkit" / "recordings").glob("*.json")):
        lines = path.read_text().split("\n")
        changed: list[str] = []
        for i, line in enumerate(lines):
            if not line.startswith('{"call":'):
                continue
            body, comma = (line[:-1], ",") if line.endswith(",") else (line, "")
            call = json.loads(body)
            if json.dumps(call, separators=(",", ":"), ensure_ascii=False) != body:
                raise SystemExit(f"{path.name}:{i + 1}: not the recorder's compact JSON; re-record instead")
            before = len(changed)
            _rehook(call, changed)
            if len(changed) > before:
                lines[i] = json.dumps(call, separators=(",", ":"), ensure_ascii=False) + comma
        total += len(changed)
        for name, count in sorted({c: changed.count(c) for c in changed}.items()):
            print(f"{path.name}: {name} ({count} journeys)")
        if changed and not check:
            path.write_text("\n".join(lines))
    return 1 if check and total else 0


if __name__ == "__main__":
    raise SystemExit(main())
