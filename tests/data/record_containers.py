"""Record what `netkit doctor` reads inside real Podman containers, for the pure tests.

Run as root from the repository (it builds the image first if needed, which takes minutes):

    .venv/bin/python tests/data/record_containers.py

For each way of starting the image below it writes ``containers/<case>.json``:
the evidence `netkit.confinement.gather` read inside the container (/proc/self/status,
the security label, /proc/self/mountinfo, what the lab's unshare said) and the rows
`netkit doctor` printed, with the kernel, Podman's version and the date.
tests/test_confinement.py diagnoses the evidence again and compares.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import container_kit as kit  # noqa: E402

INSIDE = """
import dataclasses, json
from netkit import confinement, doctor
ok, said = doctor.try_lab_start()
rows = [dataclasses.asdict(row) for row in doctor.check_namespaces()]
print(json.dumps({"ok": ok, "evidence": dataclasses.asdict(confinement.gather(said)), "rows": rows}))
"""


def cases(seccomp_file: str) -> dict:
    documented, _, _, _ = kit.lab_flags(kit.documented_command("podman"))
    no_unshare = ["--security-opt", f"seccomp={seccomp_file}"]
    pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    return {  # case: (flags, environment, what it is)
        "podman-documented": (documented, {}, "the README's Podman flags"),
        "podman-no-flags": ([], {}, "no flags"),
        "podman-unmask-proc-only": (["--security-opt", "unmask=/proc/*"], {}, "only /proc unmasked"),
        "podman-seccomp-refuses-unshare": (no_unshare, {}, "a seccomp profile failing unshare() like Docker's"),
        "podman-root-no-caps": (["--user", "root"], {}, "root with Podman's default capabilities"),
        "pod-seccomp-refuses-unshare": (no_unshare, pod, "as a pod (KUBERNETES_SERVICE_HOST), unshare() refused"),
    }


def main() -> None:
    image = kit.kit_image()
    version = kit.podman("--version").stdout.strip()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as profile:
        profile.write(kit.SECCOMP_WITHOUT_UNSHARE)
    try:
        for case, (flags, env, what) in cases(profile.name).items():
            done = kit.run(image, flags, ["python", "-c", INSIDE], env=env, timeout=120)
            if done.returncode != 0:
                raise SystemExit(f"{case}: {done.stderr[-2000:]}")
            record = json.loads(done.stdout)
            record.update(case=case, what=what, flags=flags, env=env, podman=version,
                          kernel=os.uname().release, recorded=time.strftime("%Y-%m-%d"))
            (HERE / "containers" / f"{case}.json").write_text(json.dumps(record, indent=1) + "\n")
            print(case, "ok" if record["ok"] else [row["name"] for row in record["rows"] if row["ok"] is False])
    finally:
        os.unlink(profile.name)


if __name__ == "__main__":
    main()
