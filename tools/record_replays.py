"""Record the notebooks' labs for replay mode, in one command, on a machine where the lab runs live.

    sudo .venv/bin/python tools/record_replays.py             # as root, or as a user with user namespaces
    sudo .venv/bin/python tools/record_replays.py --jobs 1    # one notebook at a time (default: 2 at once)
    sudo .venv/bin/python tools/record_replays.py --keep DIR  # also keep the executed notebooks in DIR

Each notebook with a lab (``notebooks/[0-9][0-9]-*.ipynb`` but 00, and
``dashboard.ipynb``) runs under papermill with ``NETKIT_RECORD`` set and
``run_solutions=True``, so every lab it opens writes its calls, the checks
of the exercises' model answers and the boards of its panels (every
combination of their switches) to a recording (`netkit.recorder`). Then every
notebook runs again in replay mode (``NETKIT_REPLAY=1``, without the
solutions, as a student on Binder would) on the new recordings. Only when all
of that passed are ``netkit/recordings/*.json`` replaced; a recording of a lab
no notebook opens any more is removed. Nothing else is written.

Run it again after changing a notebook's code cells: a cell the recording
does not cover fails the replay with NotRecorded (and so does
tests/test_replay.py), and a recording the kernel no longer agrees with fails
tests/test_replay.py's live check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
sys.path.insert(0, str(REPO))

from netkit import doctor, replay  # noqa: E402


def notebooks() -> list[Path]:
    """The notebooks that open a lab: the dashboard (the longest: its board has every stage), 01 and on."""
    return [NOTEBOOKS / "dashboard.ipynb"] + \
        [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")) if not p.name.startswith("00-")]


def papermill(notebook: Path, output: Path, env: dict, solutions: bool) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3", str(notebook), str(output)]
    if solutions and "run_solutions" in notebook.read_text():
        argv += ["-p", "run_solutions", "True"]
    return subprocess.run(argv, env=env, cwd=notebook.parent, capture_output=True, text=True, timeout=1800)


def failure(notebook: Path, done: subprocess.CompletedProcess, output: Path) -> str:
    said = done.stderr.strip().splitlines()[-25:]
    return f"{notebook.name} failed (exit {done.returncode}); executed copy: {output}\n  " + "\n  ".join(said)


def run_all(jobs: int, work: Path, mode: str, recordings: Path | None = None) -> tuple[list[str], dict]:
    """Run every notebook recording (mode "record") or replaying; the failures, and each one's seconds."""
    runtime = Path(tempfile.mkdtemp(prefix="netkit-record-runtime-"))
    base = {k: v for k, v in os.environ.items() if k not in (replay.ENV, replay.RECORD_ENV, replay.RECORDINGS_ENV)}
    base["NETKIT_RUNTIME_DIR"] = str(runtime)      # the recording's labs do not meet the user's own labs' names

    def one(notebook: Path):
        env = dict(base)
        if mode == "record":
            env[replay.RECORD_ENV] = str(work / "recordings" / notebook.stem)
        else:
            env[replay.ENV] = "1"
            env[replay.RECORDINGS_ENV] = str(recordings)
        output = work / mode / notebook.name
        output.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        done = papermill(notebook, output, env, solutions=mode == "record")
        seconds = time.monotonic() - began
        return notebook, (None if done.returncode == 0 else failure(notebook, done, output)), seconds

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, notebooks()))
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    return [f for _, f, _ in results if f], {nb.name: s for nb, _, s in results}


def gather(work: Path, staged: Path) -> list[dict]:
    """Every lab's recording, named after its notebook, into `staged`; a summary row for each."""
    rows, seen = [], {}
    staged.mkdir(parents=True)
    for notebook in notebooks():
        for path in sorted((work / "recordings" / notebook.stem).glob("*.json")):
            data = json.loads(path.read_text())
            if data["lab"] in seen:
                raise SystemExit(f"two notebooks open a lab named {data['lab']!r} ({seen[data['lab']]} and "
                                 f"{notebook.name}): give one of them another lab_name")
            seen[data["lab"]] = notebook.name
            data["notebook"] = notebook.stem
            text = dumps(data)
            (staged / path.name).write_text(text)
            boards = [c for c in data["calls"] if c["call"] == "board"]
            rows.append({"lab": data["lab"], "notebook": notebook.name, "calls": len(data["calls"]),
                         "probes": sum(c["call"] == "probe" for c in data["calls"]),
                         "board journeys": sum(len(t["combos"]) for b in boards for s in b["result"]["stages"]
                                               for t in s["tables"]),
                         "KiB": len(text) // 1024, "recorded": data["recorded"]})
    return rows


def dumps(data: dict) -> str:
    """A recording as JSON with one call a line, so that a new recording reads as a diff of the calls that changed."""
    head = {key: value for key, value in data.items() if key != "calls"}
    calls = ",\n".join(json.dumps(call, separators=(",", ":"), ensure_ascii=False) for call in data["calls"])
    return json.dumps(head, indent=1, ensure_ascii=False)[:-2] + ',\n "calls": [\n' + calls + "\n]}\n"


def install(staged: Path) -> None:
    replay.RECORDINGS.mkdir(exist_ok=True)
    for old in replay.RECORDINGS.glob("*.json"):
        if not (staged / old.name).exists():
            old.unlink()
    for new in staged.glob("*.json"):
        shutil.copyfile(new, replay.RECORDINGS / new.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    parser.add_argument("--keep", type=Path, help="keep the executed notebooks (recorded and replayed) here")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs takes 1 or more")
    checks = doctor.check_namespaces()
    if not all(check.ok is not False for check in checks):
        print(doctor.format_checks(checks), file=sys.stderr)
        print("\nrecording needs a live lab: run this where the lab runs (see the fixes above)", file=sys.stderr)
        return 2
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="netkit-record-"))
    try:
        print(f"recording {len(notebooks())} notebooks, {args.jobs} at once ...", flush=True)
        failed, took = run_all(args.jobs, work, "record")
        if failed:
            print("\n".join(["recording failed; netkit/recordings/ is unchanged:", *failed]), file=sys.stderr)
            return 1
        recorded = time.monotonic() - began
        rows = gather(work, work / "staged")
        print(f"recorded in {recorded:.0f} s; replaying each notebook on the new recordings ...", flush=True)
        failed, replayed = run_all(args.jobs, work, "replay", work / "staged")
        if failed:
            print("\n".join(["a replay failed; netkit/recordings/ is unchanged:", *failed]), file=sys.stderr)
            return 1
        install(work / "staged")
    finally:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for mode in ("record", "replay"):
                for path in (work / mode).glob("*.ipynb"):
                    shutil.copyfile(path, args.keep / f"{mode}-{path.name}")
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'lab':<14} {'notebook':<32} {'calls':>5} {'probes':>6} {'board journeys':>14} {'KiB':>5}")
    for row in rows:
        print(f"{row['lab']:<14} {row['notebook']:<32} {row['calls']:>5} {row['probes']:>6} "
              f"{row['board journeys']:>14} {row['KiB']:>5}")
    print(f"\nrecorded on {rows[0]['recorded']}; notebook seconds recording: "
          + ", ".join(f"{name} {s:.0f}" for name, s in took.items()))
    print(f"written to {replay.RECORDINGS.relative_to(REPO)}/ in {time.monotonic() - began:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
