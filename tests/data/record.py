"""Record the journeys of part 3 from the real kernel, for the pure tests and the plots.

Run as root (or with user namespaces) from the repository:

    .venv/bin/python tests/data/record.py

It writes ``raw-<case>.json`` (what the agent recorded: frames, trace lines,
conntrack) and ``recorded-<case>.json`` (the Journey built from it). The pure
tests rebuild the journey from the raw file and compare, so a change in
`netkit.explain` that reads the kernel's records differently shows up.
"""

import json
from pathlib import Path

from netkit import Lab, explain

HERE = Path(__file__).parent

# (case, stage, changes before the probe, src, dst, label)
CASES = [
    ("s1-forward-drop", "part3-start", [], "c1", "10.55.66.3", "bridge-nf-call-iptables=1"),
    ("s1-nf-call-0", "part3-start", ["sysctl -w net.bridge.bridge-nf-call-iptables=0"], "c1", "10.55.66.3",
     "bridge-nf-call-iptables=0"),
    ("s1-forward-accept", "part3-start", ["iptables -P FORWARD ACCEPT"], "c1", "10.55.66.3", "FORWARD ACCEPT"),
    ("s2-no-route", "part3-start", [], "c1", "8.8.8.8", "no default route"),
    ("s2-no-masquerade", "scenario2-gateway", ["iptables -P FORWARD ACCEPT"], "c1", "8.8.8.8", "no MASQUERADE"),
    ("s2-masquerade", "scenario2-gateway",
     ["iptables -P FORWARD ACCEPT", "iptables -t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"],
     "c1", "8.8.8.8", "MASQUERADE"),
    ("s2-forward-drop", "scenario2-gateway",
     ["iptables -t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE"], "c1", "8.8.8.8",
     "FORWARD DROP"),
    ("s2-forward-rules", "part3-end", [], "c1", "8.8.8.8", "FORWARD accepts"),
]


def main() -> None:
    with Lab(name="record") as lab:
        for case, stage, changes, src, dst, label in CASES:
            lab.reset(stage)
            for command in changes:
                lab.run("host", command, check=True)
            raw = lab._sandbox.call("probe", src=src, dst=dst, timeout=0.5)
            raw["label"] = label
            (HERE / f"raw-{case}.json").write_text(json.dumps(raw, indent=1))
            journey = explain.build(raw)
            journey.to_json(HERE / f"recorded-{case}.json")
            print(f"{case:<20} {journey.reason}")


if __name__ == "__main__":
    main()
