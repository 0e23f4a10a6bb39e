"""Record tests/data/nftrace-datagrams.json: netfilter's trace messages of real probes, with pyroute2's reading.

    sudo .venv/bin/python tests/data/record_nftrace.py

Two probes c1 -> c2 in a fresh lab: one dropped by FORWARD's policy, one through a DOCKER-USER-style jump
and ACCEPT. The datagrams are kept as the kernel sent them (hex), and beside them the events pyroute2
decodes from them (tests/test_trace.py's reference), which netkit.trace must reproduce.
"""

import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netkit import Lab  # noqa: E402
from test_trace import Listener, reference  # noqa: E402


def main() -> None:
    with Lab(name=f"rec-{uuid.uuid4().hex[:6]}") as lab:
        listener = Listener(lab, 1.5)
        lab.probe("c1", "10.55.66.3")
        lab.iptables("-N CHECK")
        lab.iptables("-A CHECK -p icmp -j ACCEPT")
        lab.iptables("-I FORWARD -j CHECK")
        lab.probe("c1", "10.55.66.3")
        datagrams = listener.datagrams()
    events = [e for d in datagrams for e in reference(bytes.fromhex(d))]
    out = Path(__file__).parent / "nftrace-datagrams.json"
    out.write_text(json.dumps({"datagrams": datagrams, "events": events}, indent=1) + "\n")
    print(f"{out}: {len(datagrams)} datagrams, {len(events)} trace messages")


if __name__ == "__main__":
    main()
