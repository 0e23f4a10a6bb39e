"""Record the journeys of part 3 from the real kernel, for the pure tests and the plots.

Run as root (or with user namespaces) from the repository:

    .venv/bin/python tests/data/record.py

The cases are the registered scenarios' (`netkit.scenarios`). It writes ``raw-<case>.json`` (what the agent recorded: frames, trace events,
conntrack) and ``recorded-<case>.json`` (the Journey built from it). The pure
tests rebuild the journey from the raw file and compare, so a change in
`netkit.explain` that reads the kernel's records differently shows up.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netkit import Lab, explain, scenarios  # noqa: E402

HERE = Path(__file__).parent


def plan() -> list[scenarios.Case]:
    """What is recorded: every case of every registered scenario."""
    return scenarios.cases()


def main() -> None:
    with Lab(name="record") as lab:
        for case in plan():
            scenarios.prepare(lab, case)
            raw = lab._probe_raw(case.probe.src, case.probe.dst, port=case.probe.port)
            raw["label"] = case.label
            journey = explain.build(raw)
            if journey.outcome.result is not case.result:
                raise SystemExit(f"{case.name}: the kernel gave {journey.outcome.result}, the scenario expects "
                                 f"{case.result}; nothing more was written")
            (HERE / f"raw-{case.name}.json").write_text(json.dumps(raw, indent=1))
            journey.to_json(HERE / f"recorded-{case.name}.json")
            print(f"{case.name:<24} {journey.reason}")


if __name__ == "__main__":
    main()
