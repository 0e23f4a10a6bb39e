"""How fast is a probe, a replay of part 3, and each notebook? A benchmark, not a test.

    sudo .venv/bin/python bench/bench_probe.py             # 9 runs per figure, notebooks once
    sudo .venv/bin/python bench/bench_probe.py --runs 21 --no-notebooks

Prints a markdown table of medians (min, max) in milliseconds:

- TCP probes: through DNAT, and refused;
- probe delivered / dropped by a verdict / no reply with the receiver's
  routing table as the reason / no reply and nothing to say why (waits the
  whole timeout, 0.5 s by default);
- the article's way for the dropped case: ``ping -c1 -W1`` (one second per
  failed try);
- replaying every step of part 3 (scenario 1 and scenario 2) with a probe
  after each, in one lab;
- each notebook under papermill, cold (kernel start included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netkit import Lab  # noqa: E402

# Part 3 as the article types it: (node, command or None for a probe only, probe src, probe dst)
PART3 = [
    ("host", None, "c1", "10.55.66.3"),
    ("host", "sysctl -w net.bridge.bridge-nf-call-iptables=0", "c1", "10.55.66.3"),
    ("host", "sysctl -w net.bridge.bridge-nf-call-iptables=1", "c1", "10.55.66.3"),
    ("host", "iptables -P FORWARD ACCEPT", "c1", "10.55.66.3"),
    ("host", "iptables -P FORWARD DROP", "c1", "8.8.8.8"),
    ("host", "ifconfig hwchiu0 10.55.66.1 netmask 255.255.255.0", "c1", "8.8.8.8"),
    ("c1", "ip route add default via 10.55.66.1", "c1", "8.8.8.8"),
    ("host", "iptables -P FORWARD ACCEPT", "c1", "8.8.8.8"),
    ("host", "iptables -t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE", "c1", "8.8.8.8"),
    ("host", "iptables -P FORWARD DROP", "c1", "8.8.8.8"),
    ("host", "iptables -t filter -I FORWARD -i hwchiu0 -o eth0 -j ACCEPT", "c1", "8.8.8.8"),
    ("host", "iptables -t filter -I FORWARD -i eth0 -o hwchiu0 -j ACCEPT", "c1", "8.8.8.8"),
]
EXPECTED = [False, True, False, True, False, False, False, False, True, False, False, True]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return (time.perf_counter() - start) * 1000, value


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} | {len(values)}"


def probes(runs: int) -> list[tuple[str, list[float]]]:
    rows = []
    with Lab(name=f"bench-probe-{uuid.uuid4().hex[:6]}") as lab:
        lab.probe("c1", "10.55.66.2")  # the first probe waits for the lab's warm-up

        def series(label, src, dst, expect, **kw):
            values = []
            for _ in range(runs):
                ms, journey = timed(lambda: lab.probe(src, dst, **kw))
                assert journey.delivered == expect, journey.reason
                values.append(ms)
            rows.append((label, values))
            return journey

        dropped = series("probe, dropped by a verdict (FORWARD policy DROP)", "c1", "10.55.66.3", False)
        assert dropped.dropped_by is not None
        ping = [timed(lambda: lab.run("c1", "ping 10.55.66.3 -c1 -W1"))[0] for _ in range(max(3, runs // 3))]
        rows.append(("the article's `ping -c1 -W1`, same drop", ping))
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
        series("probe, delivered (c1 -> c2, bridged)", "c1", "10.55.66.3", True)
        series("probe, no reply: nobody has 10.55.66.9 (waits timeout=0.5 s)", "c1", "10.55.66.9", False)
        lab.reset("scenario2-gateway")
        lab.iptables("-P FORWARD ACCEPT")
        lab.probe("c1", "10.55.66.2")
        lost = series("probe, no reply: 8.8.8.8 has no route back (known from its routing table)",
                      "c1", "8.8.8.8", False)
        assert "no route to 10.55.66.2" in lost.reason
        lab.iptables("-t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE")
        series("probe, delivered through MASQUERADE (c1 -> 8.8.8.8)", "c1", "8.8.8.8", True)
        lab.reset("part4-published")
        lab.probe("c1", "10.55.66.2")
        series("TCP probe, connection through DNAT (outside -> 172.17.9.103:2345)",
               "outside", "172.17.9.103", True, port=2345)
        series("TCP probe, refused by the host itself (host -> 172.17.9.103:2345)",
               "host", "172.17.9.103", False, port=2345)
    return rows


def replay(runs: int) -> list[float]:
    totals = []
    for _ in range(runs):
        start = time.perf_counter()
        with Lab(name=f"bench-replay-{uuid.uuid4().hex[:6]}") as lab:
            for (node, command, src, dst), expect in zip(PART3, EXPECTED):
                if command:
                    lab.run(node, command, check=True)
                journey = lab.probe(src, dst)
                assert journey.delivered == expect, (command, journey.reason)
        totals.append((time.perf_counter() - start) * 1000)
    return totals


def notebooks() -> list[tuple[str, list[float]]]:
    rows = []
    out = Path(tempfile.mkdtemp(prefix="bench-nb-"))
    for book in sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3",
                               str(book), str(out / book.name), "-p", "run_solutions", "True",
                               "-p", "lab_name", f"bench-{book.stem[:2]}"],
                              capture_output=True, text=True, cwd=book.parent)
        if done.returncode != 0:
            raise SystemExit(f"{book.name} failed:\n{done.stderr[-2000:]}")
        rows.append((f"papermill {book.name} (cold kernel, solutions run)", [(time.perf_counter() - start) * 1000]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--no-notebooks", action="store_true")
    args = parser.parse_args()
    rows = probes(args.runs)
    rows.append((f"replay all {len(PART3)} steps of part 3 with a probe after each (Lab() to close)",
                 replay(max(3, args.runs // 3))))
    if not args.no_notebooks:
        rows += notebooks()
    print("| figure | median ms | min ms | max ms | n |")
    print("|---|---:|---:|---:|---:|")
    for label, values in rows:
        print(f"| {label} | {summary(values)} |")


if __name__ == "__main__":
    main()
