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

OUTPUT_DNAT = "iptables -t nat -A OUTPUT -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000"
HAIRPIN_READY = ["ip netns exec c2 ip route add default via 10.55.66.1",
                 "iptables -I FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT"]
HAIRPIN_MASQ = "iptables -t nat -I POSTROUTING -s 10.55.66.0/24 -d 10.55.66.2/32 -p tcp --dport 8000 -j MASQUERADE"

# (case, stage, changes before the probe, src, dst, label[, port])
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
    ("p4-dnat", "part4-published", [], "outside", "172.17.9.103", "from outside", 2345),
    ("p4-no-dnat", "part4-start", [], "outside", "172.17.9.103", "no DNAT", 2345),
    ("p4-local-refused", "part4-published", [], "host", "172.17.9.103", "from the host", 2345),
    ("p4-local-output", "part4-published", [OUTPUT_DNAT], "host", "172.17.9.103", "nat OUTPUT rule", 2345),
    ("p4-hairpin-br-netfilter", "part4-published", HAIRPIN_READY, "c2", "172.17.9.103",
     "bridge-nf-call-iptables=1", 2345),
    ("p4-hairpin-broken", "part4-published",
     HAIRPIN_READY + ["sysctl -w net.bridge.bridge-nf-call-iptables=0"], "c2", "172.17.9.103",
     "bridge-nf-call-iptables=0", 2345),
    ("p4-hairpin-masquerade", "part4-published",
     HAIRPIN_READY + ["sysctl -w net.bridge.bridge-nf-call-iptables=0", HAIRPIN_MASQ], "c2", "172.17.9.103",
     "hairpin MASQUERADE", 2345),
]


def main() -> None:
    with Lab(name="record") as lab:
        for case, stage, changes, src, dst, label, *port in CASES:
            lab.reset(stage)
            for command in changes:
                lab.run("host", command, check=True)
            if port:
                raw = lab._sandbox.call("probe", src=src, dst=dst, proto="tcp", port=port[0], timeout=1.0)
            else:
                raw = lab._sandbox.call("probe", src=src, dst=dst, timeout=0.5)
            raw["label"] = label
            (HERE / f"raw-{case}.json").write_text(json.dumps(raw, indent=1))
            journey = explain.build(raw)
            journey.to_json(HERE / f"recorded-{case}.json")
            print(f"{case:<20} {journey.reason}")


if __name__ == "__main__":
    main()
