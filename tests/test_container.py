"""The container image, built with Podman and run for real (marked `container`; needs root).

- The README gives one `docker run` and one `podman run` command; both are read
  from it, and the Podman one is what the notebooks run under: notebooks 00 to 04
  execute inside the image, under papermill, as the image's user, with exactly the
  documented flags (plus this machine's quirks, see container_kit), every cell
  without an error.
- Started without those flags, `netkit doctor` inside the image names the one that
  is missing, and a lab's start says where to look. With a seccomp profile that
  refuses unshare() as Docker's does, and the environment of a pod, it names the pod
  settings instead.
- Nothing is left behind: no container (build containers included), and the
  machine's own network reads the same (the session guard in conftest.py).

The base image and the kit's image are cached per machine (container_kit); the
first run bootstraps and builds them, which takes a few minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest

import container_kit as kit

pytestmark = pytest.mark.container

NOTEBOOKS = kit.NOTEBOOKS
ARTIFACTS = kit.REPO / "artifacts" / "notebooks"


# -- the documented commands (no Podman needed) -------------------------------------------------
def test_the_readme_gives_one_command_per_runtime_with_only_flags_the_tests_know():
    docker = kit.documented_command("docker")
    podman = kit.documented_command("podman")
    for argv in (docker, podman):
        flags, ports, image, command = kit.lab_flags(argv)
        assert ports == ["-p", "127.0.0.1:8888:8888"]    # JupyterLab, reachable from this machine only
        assert image == "netkit" and command == []       # the image's own command: JupyterLab
        assert flags[0::2] == ["--security-opt"] * (len(flags) // 2), flags   # no capability, no --privileged
    assert kit.lab_flags(docker)[0] == ["--security-opt", "seccomp=unconfined",
                                        "--security-opt", "systempaths=unconfined",
                                        "--security-opt", "apparmor=unconfined"]
    assert kit.lab_flags(podman)[0] == ["--security-opt", "unmask=ALL", "--security-opt", "label=disable"]


def test_the_image_installs_the_quickstarts_tools():
    quickstart = (kit.REPO / "quickstart").read_text()
    wanted = set(re.search(r"APT_PACKAGES=\((.*?)\)", quickstart, re.S)[1].split())
    containerfile = (kit.REPO / "container" / "Containerfile").read_text()
    installed = set(re.search(r"apt-get install -y --no-install-recommends \\(.*?)\\\n &&", containerfile,
                              re.S)[1].replace("\\", " ").split())
    # python3-dev builds wheels from source; every dependency ships wheels, so the image does without.
    assert wanted - {"python3-dev"} <= installed
    assert {"tini", "fonts-noto-cjk"} <= installed
    assert "ARG BASE_IMAGE=debian:bookworm" in containerfile


# -- Podman: build and run -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image():
    if os.geteuid() != 0:
        pytest.skip("needs root: Podman runs here as root (rootful), with runc")
    missing = kit.missing_programs()
    if missing:
        pytest.skip(f"needs {', '.join(sorted(missing))}: sudo apt-get install "
                    f"{' '.join(sorted(set(missing.values())))} (./quickstart test installs them)")
    before = kit.containers()
    started = time.monotonic()
    tag = kit.kit_image()
    print(f"\nimage {tag} ready in {time.monotonic() - started:.0f} s "
          f"({', '.join(f'{step}: {seconds:.0f} s' for step, seconds in kit.TIMES.items()) or 'cached'}); "
          f"size {int(kit.image_size(tag)) / 1e6:.0f} MB")
    yield tag
    assert kit.containers() == before, "containers were left behind (podman ps --all --external)"




def test_the_notebooks_run_inside_the_image_with_the_documented_podman_flags(image, shared_dir):
    flags, _, _, _ = kit.lab_flags(kit.documented_command("podman"))
    started = time.monotonic()
    done = kit.run(image, flags, ["sh", "-c", kit.NOTEBOOK_SCRIPT, "notebooks", *NOTEBOOKS],
                   volumes={str(shared_dir): "/out"}, timeout=900)
    print(f"\nnotebooks 00-04 in the container: {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[0] == "1000"                 # papermill ran as jovyan, not as root
    assert "FAILED" not in done.stdout, done.stdout + done.stderr[-4000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in NOTEBOOKS:
        book = kit.executed_notebook(shared_dir / f"{name}.ipynb")
        shutil.copy(shared_dir / f"{name}.ipynb", ARTIFACTS / f"container-{name}.ipynb")
        if name.startswith("00-"):
            text = "\n".join(str(out) for cell in book.cells for out in cell.get("outputs", []))
            assert "this looks like a Podman container" in text
            assert "not root, but user namespaces are allowed" in text and "MISSING" not in text


def test_the_image_serves_jupyterlab_under_tini_and_prints_the_url_with_its_token(image):
    flags, _, _, _ = kit.lab_flags(kit.documented_command("podman"))
    with kit.started(image, flags) as name:
        deadline, url = time.monotonic() + 120, None
        while url is None and time.monotonic() < deadline:
            logs = kit.podman("logs", name, check=False)
            found = re.search(r"http://127\.0\.0\.1:8888/lab\?token=([0-9a-f]{32,})", logs.stdout + logs.stderr)
            url = found and found.group(0)
            time.sleep(1)
        assert url, "JupyterLab printed no URL with a token:\n" + logs.stderr[-2000:]
        token = url.rsplit("=", 1)[1]

        def status(query: str) -> str:   # curl inside the container: its own loopback, nothing else
            return kit.podman("exec", name, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://127.0.0.1:8888/api/contents/00-check-your-machine.ipynb{query}").stdout

        assert status(f"?token={token}") == "200" and status("") == "403"
        processes = kit.podman("exec", name, "ps", "-o", "pid=,user=,comm=", "-e").stdout.split("\n")
        assert processes[0].split() == ["1", "jovyan", "tini"], processes
        started = time.monotonic()
        kit.podman("stop", "--time", "20", name)           # tini passes SIGTERM on to JupyterLab
        assert time.monotonic() - started < 15


def test_a_terminal_in_the_container_reaches_the_lab_and_each_node_sees_its_own_sys(image):
    flags, _, _, _ = kit.lab_flags(kit.documented_command("podman"))
    script = ("netkit up --quiet --lab t && netkit exec --lab t c1 -- route -n && echo --- "
              "&& netkit exec --lab t c1 -- ls /sys/class/net && echo --- "
              "&& netkit exec --lab t host -- ls /sys/class/net && netkit down --lab t")
    done = kit.run(image, flags, ["sh", "-c", script], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    route, c1_sys, host_sys = done.stdout.split("---\n")
    assert "10.55.66.0      0.0.0.0         255.255.255.0   U     0      0        0 eth0" in route
    assert c1_sys.split() == ["eth0", "lo"]                      # c1's own sysfs, not the host's
    assert {"hwchiu0", "veth0", "veth1", "eth0"} <= set(host_sys.split())
    assert "lab 't' is down" in host_sys


def test_without_the_flags_doctor_names_the_missing_one(image):
    done = kit.run(image, [], ["netkit", "doctor"], timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.strip().startswith("MISSING")]
    assert len(rows) == 1 and rows[0].split()[1:3] == ["masked", "paths"], done.stdout
    assert "fix: add `--security-opt unmask=ALL` to `podman run`" in done.stdout
    assert "this machine cannot run the lab yet" in done.stdout


def test_without_the_flags_a_lab_says_where_to_look(image):
    done = kit.run(image, [], ["python", "-c", "import netkit; netkit.Lab()"], timeout=120)
    assert done.returncode == 1
    said = done.stderr.splitlines()[-1]
    assert said.startswith("netkit.errors.SandboxError: a Podman container withholds what the lab needs: "
                           "masked paths (fix: add `--security-opt unmask=ALL` to `podman run`"), said
    assert said.endswith("`netkit doctor` (or notebook 00) says more")


def test_a_pod_whose_seccomp_refuses_unshare_is_told_its_pod_settings(image, shared_dir):
    profile = shared_dir / "seccomp-without-unshare.json"
    profile.write_text(kit.SECCOMP_WITHOUT_UNSHARE)
    done = kit.run(image, ["--security-opt", f"seccomp={profile}"], ["netkit", "doctor"],
                   env={"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    missing = [line.split()[1] for line in done.stdout.splitlines() if line.strip().startswith("MISSING")]
    assert missing == ["seccomp", "masked"], done.stdout
    assert "unshare failed: Operation not permitted" in done.stdout
    assert "fix: set `securityContext.seccompProfile.type: Unconfined` on the pod's container" in done.stdout
    assert "fix: set `securityContext.procMount: Unmasked` on the pod's container" in done.stdout
    assert "--security-opt" not in done.stdout
