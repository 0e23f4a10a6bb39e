"""How big a class does this machine hold? A benchmark, not a test.

    sudo .venv/bin/python bench/bench_class.py                      # a class of 30; waves of 10, 20, 30
    sudo .venv/bin/python bench/bench_class.py --students 12 --waves 4,8,12
    sudo .venv/bin/python bench/bench_class.py --students 2 --cpu-only   # only the CPU burner (a few minutes)

One class hub (``python -m netkit.classroom``, what ``./quickstart class``
runs) on a free loopback port with N throwaway accounts (``nkb-<random>-NN``)
and one more, the prober. Then:

1. all N students log in through the form and start their servers at once:
   time until every server is ready;
2. a neighbour burning CPU: the prober's probes with the machine idle, then
   while another student runs `--burners` busy loops (each under its own
   ``setsid``, as issue 22 tried it) in their own server: p50 / p95 / max
   of each, so the per-student CPU share (netkit.classroom.limits) shows;
3. for each wave size n (the last is N): n students run notebook 01 at once
   in their own servers (each in a fresh kernel, cell by cell, as the tests
   do), while the prober's kernel sends ``lab.probe("c1", "10.55.66.3")``
   back to back in its own lab and times each call inside the kernel:
   time until all n notebooks finished, and the probes' p50 / p95 / max;
4. with every student holding a server, a kernel and a lab, the summed PSS
   (``/proc/PID/smaps_rollup``) of every process of each student: per
   student, the median and the largest.

The goals (issue 19) are printed beside the figures they judge: while a
class of 30 runs notebook 01, the prober's p95 at most 0.5 s, its slowest
probe at most 0.8 s, and no notebook failed. The largest class with p95
probe under 1 s is the largest wave that kept it; a notebook that failed is
counted apart (and printed) and makes the script exit 1. Everything it made is removed at the end (Ctrl-C included): the hub is
stopped, ``--remove`` deletes the accounts.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netkit.classroom import accounts, install  # noqa: E402
from netkit.classroom.client import HubUser  # noqa: E402

PROBE_LOOP = """
import json, time
from netkit import Lab
probe_lab = Lab(name="bench-probe", replace=True)
def probe_for(seconds):
    times, end = [], time.monotonic() + seconds
    while time.monotonic() < end or not times:
        t = time.perf_counter()
        probe_lab.probe("c1", "10.55.66.3")
        times.append(time.perf_counter() - t)
    return times
"""


BURN = """
import json, subprocess, sys
burners = [subprocess.Popen(["setsid", sys.executable, "-c", "while True: pass"]) for _ in range({count})]
print(json.dumps([b.pid for b in burners]))
"""
GOALS = {"p95": 0.5, "max": 0.8, "failed": 0, "class": 30}
"""Issue 19: while a class of 30 runs notebook 01, another student's probe p95 <= 0.5 s, max <= 0.8 s, 0 failed."""


def judged(value: float, goal: float, unit: str = " s") -> str:
    return f"≤ {goal:g}{unit}: {'met' if value <= goal else 'MISSED'}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def parallel(function, items) -> list:
    results: dict = {}

    def work(item):
        try:
            results[item] = function(item)
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[item] = exc
    threads = [threading.Thread(target=work, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[item] for item in items]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--waves", default="", help="comma-separated class sizes to try (default N/3, 2N/3, N)")
    parser.add_argument("--mem-limit", default="1G")
    parser.add_argument("--burners", type=int, default=16, help="busy loops the CPU-burning neighbour runs")
    parser.add_argument("--burn-seconds", type=float, default=20, help="how long the prober probes each way")
    parser.add_argument("--cpu-limit", default="", help="passed to the hub (cores per student's server)")
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU burner figures: no waves, no memory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the class benchmark makes Unix accounts and runs a hub: run it as root")
    n = args.students
    waves = [int(w) for w in args.waves.split(",") if w] or sorted({max(1, n // 3), max(1, 2 * n // 3), n})
    if max(waves) > n:
        sys.exit(f"a wave of {max(waves)} needs --students {max(waves)} or more")

    install.install(trace=lambda _: None)
    book = json.loads((REPO / "notebooks" / "01-container-to-container.ipynb").read_text())
    tag = uuid.uuid4().hex[:5]
    width = len(str(n))
    students = {f"nkb-{tag}-{i:0{width}d}": f"pw-{secrets.token_hex(6)}" for i in range(1, n + 1)}
    prober = (f"nkb-{tag}-probe", f"pw-{secrets.token_hex(6)}")
    place = Path(tempfile.mkdtemp(prefix="netkit-bench-class-"))
    roster = place / "roster.csv"
    roster.write_text("".join(f"{u},{p}\n" for u, p in [*students.items(), prober]))
    os.chmod(roster, 0o600)
    port, state = free_port(), place / "state"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = (place / "hub.log").open("wb")
    hub = subprocess.Popen([sys.executable, "-m", "netkit.classroom", "--roster", str(roster), "--port", str(port),
                            "--state-dir", str(state), "--mem-limit", args.mem_limit, "--no-install",
                            *(["--cpu-limit", args.cpu_limit] if args.cpu_limit else [])],
                           stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    rows: list[tuple] = []   # (figure, value) or (figure, value, goal)
    failures = 0
    try:
        while "the class is open at" not in (place / "hub.log").read_text():
            if hub.poll() is not None:
                sys.exit("the hub did not start:\n" + (place / "hub.log").read_text()[-3000:])
            time.sleep(0.5)
        print(f"# class benchmark: {n} students, waves {waves}, load average {os.getloadavg()[0]:.2f}, "
              f"{os.cpu_count()} cores\n", flush=True)

        # 1. everyone logs in and starts a server at once
        users = {name: HubUser(url, name, password) for name, password in students.items()}

        def arrive(name):
            user = users[name]
            user.login()
            user.make_token()
            user.start_server(timeout=600)
            return time.monotonic()
        start = time.monotonic()
        ready = parallel(arrive, list(users))
        errors = [r for r in ready if isinstance(r, BaseException)]
        failures += len(errors)
        ok = sorted(r - start for r in ready if not isinstance(r, BaseException))
        rows.append((f"{n} log in + start servers at once: all ready",
                     f"{ok[-1]:.1f} s (median {statistics.median(ok):.1f} s, {len(errors)} failed)" if ok else "all failed"))
        for error in errors[:3]:
            print(f"  server failed: {error}", flush=True)

        probe_user = HubUser(url, *prober)
        probe_user.login()
        probe_user.start_server()
        probe_kernel = probe_user.kernel()
        probe_kernel.run(PROBE_LOOP, timeout=120)
        idle = json.loads(probe_kernel.run("print(json.dumps(probe_for(5)))"))
        rows.append(("probe c1 -> c2, machine idle: p50 / p95", f"{percentile(idle, .5):.3f} s / {percentile(idle, .95):.3f} s"))

        # 2. a neighbour burns CPU: the prober's probes without, then with, the busy loops (in the neighbour's
        #    server, so in its cgroup; then, for comparison, outside every class cgroup, as an ssh login's are)
        def probe_and_login() -> tuple[list[float], list[float]]:
            time.sleep(1)
            values = json.loads(probe_kernel.run(f"print(json.dumps(probe_for({args.burn_seconds})))", timeout=600))
            login = []
            for _ in range(5):
                t = time.perf_counter()
                urllib.request.urlopen(f"{url}/hub/login", timeout=60).read()
                login.append(time.perf_counter() - t)
            return values, login
        quiet, quiet_login = probe_and_login()
        neighbour_name = next(iter(users))
        neighbour = users[neighbour_name].kernel()
        burners = json.loads(neighbour.run(BURN.format(count=args.burners)))
        try:
            busy, busy_login = probe_and_login()
        finally:
            neighbour.run(f"import os, signal\nfor pid in {burners!r}: os.kill(pid, signal.SIGKILL)")
            neighbour.shutdown()
        account = pwd.getpwnam(neighbour_name)

        def as_neighbour():
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
        loose = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=as_neighbour,
                                  start_new_session=True) for _ in range(args.burners)]
        try:
            outside, outside_login = probe_and_login()
        finally:
            for loop in loose:
                loop.kill()
                loop.wait()
        for label, values, login in (
                ("no neighbour busy", quiet, quiet_login),
                (f"a neighbour runs {args.burners} busy loops in their server (their cgroup)", busy, busy_login),
                (f"the same {args.burners} loops outside the class's cgroups (as from an ssh login)", outside,
                 outside_login)):
            rows.append((f"probe c1 -> c2, {label}: p50 / p95 / max (n={len(values)}); login page median",
                         f"{percentile(values, .5):.3f} s / {percentile(values, .95):.3f} s / {max(values):.3f} s; "
                         f"{statistics.median(login):.3f} s"))
        print("\n".join(f"| {a} | {b} |" for a, b, *_ in rows[-3:]), flush=True)
        if args.cpu_only:
            waves = []

        # 3. waves of students run notebook 01 at once, while the prober probes
        largest_ok = 0
        for size in waves:
            names = list(users)[:size]
            done = threading.Event()
            timings: list[float] = []

            def probe_while():
                while not done.is_set():
                    timings.extend(json.loads(probe_kernel.run("print(json.dumps(probe_for(3)))", timeout=300)))

            def run_notebook(name):
                kernel = users[name].kernel()
                try:
                    kernel.run_notebook(book, {"lab_name": "nb01", "run_solutions": True}, timeout=600)
                    return time.monotonic()
                finally:
                    kernel.shutdown()
            side = threading.Thread(target=probe_while)
            side.start()
            start = time.monotonic()
            finished = parallel(run_notebook, names)
            done.set()
            side.join()
            errors = [r for r in finished if isinstance(r, BaseException)]
            failures += len(errors)
            times = sorted(r - start for r in finished if not isinstance(r, BaseException))
            p50, p95 = percentile(timings, .5), percentile(timings, .95)
            if p95 < 1.0:
                largest_ok = max(largest_ok, size)
            judge = size == GOALS["class"]
            rows.append((f"{size} run notebook 01 at once: all finished",
                         f"{times[-1]:.1f} s (median {statistics.median(times):.1f} s, {len(errors)} failed)"
                         if times else "all failed",
                         (f"{GOALS['failed']} failed: {'met' if len(errors) <= GOALS['failed'] else 'MISSED'}"
                          if judge else "")))
            rows.append((f"  probe c1 -> c2 meanwhile: p50 / p95 / max (n={len(timings)})",
                         f"{p50:.3f} s / {p95:.3f} s / {max(timings):.3f} s",
                         f"p95 {judged(p95, GOALS['p95'])}; max {judged(max(timings), GOALS['max'])}" if judge else ""))
            for error in errors[:3]:
                print(f"  notebook failed: {str(error)[-600:]}", flush=True)
            print("\n".join(f"| {a} | {b} |" for a, b, *_ in rows[-2:]), flush=True)
        if waves:
            rows.append(("largest class with p95 probe < 1 s (of the waves tried)",
                         f"{largest_ok}" if largest_ok else f"none of {waves}"))
            if GOALS["class"] not in waves:
                rows.append((f"goals (class of {GOALS['class']}: p95 ≤ {GOALS['p95']} s, max ≤ {GOALS['max']} s, "
                             "0 failed)", f"not judged: no wave of {GOALS['class']} was run"))
        rows.append(("notebooks or servers that failed (printed above)", str(failures)))

        # 4. memory: every student holds a server, a kernel and a lab
        def hold_lab(name):
            kernel = users[name].kernel()
            kernel.run("from netkit import Lab\nlab = Lab(name='bench-memory', replace=True)", timeout=300)
            return kernel
        kernels = parallel(hold_lab, list(users) if not args.cpu_only else [])
        time.sleep(5 if kernels else 0)   # let each lab's background warm-up finish
        per_student = []
        for name in users if not args.cpu_only else []:
            uid = pwd.getpwnam(name).pw_uid
            per_student.append(sum(pss_kib(pid) for pid in accounts.processes_of(uid)) / 1024)
        for kernel in kernels:
            if not isinstance(kernel, BaseException):
                try:
                    kernel.run("lab.close()")
                finally:
                    kernel.shutdown()
        if not args.cpu_only:
            rows.append(("memory per student: server + kernel + lab, summed PSS: median / max",
                         f"{statistics.median(per_student):.0f} MiB / {max(per_student):.0f} MiB"))
            rows.append((f"memory of all {n} students together", f"{sum(per_student) / 1024:.2f} GiB"))
        probe_kernel.run("probe_lab.close()")
        probe_kernel.shutdown()
    finally:
        if hub.poll() is None:
            os.killpg(hub.pid, signal.SIGINT)
            try:
                hub.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(hub.pid, signal.SIGKILL)
                hub.wait()
        log.close()
        subprocess.run([sys.executable, "-m", "netkit.classroom", "--remove", "--roster", str(roster),
                        "--port", str(port), "--state-dir", str(state)], capture_output=True, cwd=REPO, env=env)
        for name in [*students, prober[0]]:
            try:
                accounts.remove(name, trace=lambda _: None)
            except Exception as exc:  # noqa: BLE001 - say it, keep removing the rest
                print(f"could not remove {name}: {exc}", file=sys.stderr)
        subprocess.run(["rm", "-rf", str(place)])
    print("\n| figure | value | goal |\n|---|---|---|")
    print("\n".join(f"| {row[0]} | {row[1]} | {row[2] if len(row) > 2 else ''} |" for row in rows))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
