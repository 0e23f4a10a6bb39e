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
- replaying every case of the registered scenarios (netkit.scenarios): a
  reset to its stage, its switches, its probe and its outcome, in one lab;
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

from netkit import Lab, scenarios  # noqa: E402
from netkit.outcome import Result  # noqa: E402

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
        assert lost.outcome.result is Result.NO_ROUTE_BACK
        lab.iptables("-t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE")
        series("probe, delivered through MASQUERADE (c1 -> 8.8.8.8)", "c1", "8.8.8.8", True)
        lab.reset("part4-published")
        lab.probe("c1", "10.55.66.2")
        series("TCP probe, connection through DNAT (outside -> 172.17.9.103:2345)",
               "outside", "172.17.9.103", True, port=2345)
        series("TCP probe, refused by the host itself (host -> 172.17.9.103:2345)",
               "host", "172.17.9.103", False, port=2345)
    return rows


def replay_plan() -> list:
    """The replay: every case of every registered scenario (netkit.scenarios), in order."""
    return scenarios.cases()


def replay(runs: int) -> list[float]:
    """One lab goes through every case: a reset to its stage, its switches, its probe, its outcome checked."""
    totals = []
    plan = replay_plan()
    for _ in range(runs):
        start = time.perf_counter()
        with Lab(name=f"bench-replay-{uuid.uuid4().hex[:6]}") as lab:
            for case in plan:
                journey = scenarios.run_case(lab, case)
                assert journey.outcome.result is case.result, (case.name, journey.reason)
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
    rows.append((f"replay of all {len(replay_plan())} cases of the scenarios: reset, switches, probe, "
                 "outcome checked (Lab() to close)", replay(max(3, args.runs // 3))))
    if not args.no_notebooks:
        books = notebooks()
        rows += books
        rows.append(("papermill, all notebooks (sum)", [sum(v[0] for _, v in books)]))
    print("| figure | median ms | min ms | max ms | n |")
    print("|---|---:|---:|---:|---:|")
    for label, values in rows:
        print(f"| {label} | {summary(values)} |")


if __name__ == "__main__":
    main()
