"""Build netkit's container image with Podman from nothing but Debian's packages, and run it.

No registry is reachable from the machines the tests run on, so the base
image is made here: `mmdebstrap --variant=minbase bookworm` writes a tarball
and `podman import` turns it into `localhost/netkit-test-base:<BASE_KEY>`.
The kit's image is then built from container/Containerfile against that base
(`--build-arg BASE_IMAGE=...`) and tagged `localhost/netkit-test:<key>`, the
key being a hash of everything the image is built from. Both are slow the
first time (minutes) and cached after that, per machine:

- the tarball in NETKIT_CONTAINER_CACHE (default /var/cache/netkit-tests),
  the images in Podman's own storage; a new key builds afresh and the images
  of older keys are removed;
- a lock file serialises two test runs that would build the same thing.

How containers are started (the machine's own network is never touched):
- `podman build --network host`: the build's RUN steps use the machine's
  network namespace as it is; no namespace, bridge or rule is made for them.
- `podman run --network none`: a container on Podman's default network makes
  netavark add NETAVARK chains to the machine's iptables and turn on its
  ip_forward. With none, the container's only interface is its own loopback.
- QUIRKS are what this project's machines need and a laptop does not:
  runc (crun refuses their hybrid cgroup v1 layout) and ulimits no higher
  than theirs (they withhold CAP_SYS_RESOURCE). Their way out to PyPI also
  re-signs TLS with a CA only the machine trusts, so the build is handed the
  machine's CA bundle (`PIP_CERT`, a build argument of the Containerfile).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("NETKIT_CONTAINER_CACHE", "/var/cache/netkit-tests"))

MIRROR = "http://deb.debian.org/debian"
BASE_KEY = "bookworm-minbase-2026-12"
"""Names the cached base: change it to bootstrap a fresh one (new point release, security updates)."""
BASE_TAG = f"localhost/netkit-test-base:{BASE_KEY}"
KIT_REPO = "localhost/netkit-test"

QUIRKS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
RUN_QUIRKS = QUIRKS + ["--network", "none"]
NAME_PREFIX = "netkit-test-"
MACHINE_CA = "/etc/ssl/certs/ca-certificates.crt"
IMAGE_LABEL = "org.opencontainers.image.title=netkit"

PROGRAMS = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap", "newuidmap": "uidmap"}

# What the kit's image is built from: any change here makes a new image.
IMAGE_SOURCES = ["container/Containerfile", ".dockerignore", "pyproject.toml", "README.md", "netkit", "notebooks"]

TIMES: dict[str, float] = {}
"""Seconds each slow step took in this run (shown by the tests)."""


def missing_programs() -> dict[str, str]:
    """The programs the container tests need that this machine lacks, with their Debian packages."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return {prog: pkg for prog, pkg in PROGRAMS.items() if shutil.which(prog, path=path) is None}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} ... failed ({done.returncode}):\n"
                             f"{done.stderr[-3000:]}")
    return done


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


@contextmanager
def _locked(name: str):
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _timed(step: str, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    TIMES[step] = time.monotonic() - started
    if done.returncode != 0:
        raise AssertionError(f"{step} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done


def base_tarball() -> Path:
    """The Debian bookworm root file system as a tarball, bootstrapped here once and cached.

    The caller holds the "base" lock (`_locked`): Podman's base and the Docker Engine test's
    (docker_engine.py) are both imported from it."""
    tarball = CACHE / f"base-{BASE_KEY}.tar"
    if not tarball.exists():
        partial = CACHE / f"base-{BASE_KEY}.partial.tar"
        partial.unlink(missing_ok=True)
        _timed("bootstrap the base (mmdebstrap)",
               ["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet", "bookworm", str(partial), MIRROR],
               1800)
        partial.rename(tarball)
    return tarball


def base_image() -> str:
    """The Debian bookworm base, bootstrapped here once and cached."""
    with _locked("base"):
        if image_exists(BASE_TAG):
            return BASE_TAG
        tarball = base_tarball()
        _timed("import the base (podman import)", ["podman", "import", "--quiet", str(tarball), BASE_TAG], 600)
        return BASE_TAG


def kit_key() -> str:
    """A hash of everything the kit's image is built from (and of the base it is built on)."""
    digest = hashlib.sha256(BASE_KEY.encode())
    for source in IMAGE_SOURCES:
        path = REPO / source
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def kit_image() -> str:
    """netkit's image, built from container/Containerfile on the local base; cached by `kit_key`."""
    base = base_image()
    tag = f"{KIT_REPO}:{kit_key()}"
    with _locked("image"):
        if image_exists(tag):
            return tag
        trust = []
        if Path(MACHINE_CA).exists():
            trust = ["-v", f"{MACHINE_CA}:/run/netkit-machine-ca.crt:ro",
                     "--build-arg", "PIP_CERT=/run/netkit-machine-ca.crt"]
        _timed("build the image (podman build)",
               ["podman", "build", *QUIRKS, *trust, "--network", "host", "--force-rm", "--layers",
                "--build-arg", f"BASE_IMAGE={base}", "-f", "container/Containerfile", "-t", tag, str(REPO)], 3600)
        # Keep one image per machine: the ones built from older sources go, and with them the
        # layers only they used (the Containerfile labels every layer of its own).
        for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}", KIT_REPO).stdout.split():
            if line != tag:
                podman("rmi", line, check=False)
        podman("image", "prune", "--force", "--filter", f"label={IMAGE_LABEL}", check=False)
        return tag


# -- the documented commands ---------------------------------------------------------------
def documented_command(runtime: str, readme: Path = REPO / "README.md") -> list[str]:
    """The one `docker run` / `podman run` command the README gives, as an argv."""
    text = readme.read_text().replace("\\\n", " ")      # a command continued on the next line, as a shell reads it
    commands = [shlex.split(line.split("#")[0]) for line in text.splitlines() if line.startswith(f"{runtime} run ")]
    assert len(commands) == 1, f"the README should give exactly one `{runtime} run` command, found {len(commands)}"
    return commands[0]


# Flags of the documented command that only concern a person's terminal and browser.
TERMINAL_FLAGS = {"--rm", "-it", "-i", "-t"}
PORT_FLAGS = {"-p", "--publish"}


def lab_flags(argv: list[str]) -> tuple[list[str], list[str], str, list[str]]:
    """(the flags that matter to the lab, the port flags, the image, the command) of a documented run.

    Everything but the terminal and port flags is passed on unchanged: the test starts its
    containers with exactly the flags the README documents.
    """
    assert argv[1] == "run", argv
    flags, ports, i = [], [], 2
    while i < len(argv) and argv[i].startswith("-"):
        flag = argv[i]
        takes_value = "=" not in flag and flag not in TERMINAL_FLAGS
        if flag in TERMINAL_FLAGS:
            pass
        elif flag in PORT_FLAGS:
            ports += argv[i:i + 2]
        else:
            flags += argv[i:i + 2] if takes_value else [flag]
        i += 2 if takes_value else 1
    return flags, ports, argv[i], argv[i + 1:]


# -- running the image ------------------------------------------------------------------------
def run(image: str, flags: list[str], command: list[str], *, volumes: dict[str, str] | None = None,
        env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`podman run` the image with `flags` (plus this machine's quirks), removed whatever happens."""
    name = NAME_PREFIX + uuid.uuid4().hex[:8]
    argv = ["podman", "run", "--rm", "--name", name, *RUN_QUIRKS, *flags]
    for host, inside in (volumes or {}).items():
        argv += ["-v", f"{host}:{inside}"]
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    try:
        return subprocess.run(argv + [image, *command], capture_output=True, text=True, timeout=timeout)
    finally:
        podman("rm", "--force", "--ignore", name, check=False)


@contextmanager
def started(image: str, flags: list[str]):
    """A container of the image running its own command (JupyterLab) in the background; its name."""
    name = NAME_PREFIX + uuid.uuid4().hex[:8]
    try:
        podman("run", "--detach", "--rm", "--name", name, *RUN_QUIRKS, *flags, image)
        yield name
    finally:
        podman("rm", "--force", "--ignore", name, check=False)


def containers() -> set[str]:
    """Every container Podman knows, build containers included (ids)."""
    return set(podman("ps", "--all", "--external", "--format", "{{.ID}}").stdout.split())


# -- the notebooks inside the image ---------------------------------------------------------------
NOTEBOOKS = ["00-check-your-machine", "01-container-to-container", "02-container-to-internet",
             "03-outside-to-container", "04-what-docker-writes"]
NOTEBOOK_SCRIPT = ('id -u; for book in "$@"; do papermill --no-progress-bar -k python3 -p run_solutions True '
                   '"$book.ipynb" "/out/$book.ipynb" || echo "FAILED $book"; done')
"""Run inside the image as `sh -c NOTEBOOK_SCRIPT notebooks NAME...`, with a writable /out: prints
the uid papermill ran as, then `FAILED <name>` for each notebook that did not run through."""


def executed_notebook(book_path: Path):
    """The notebook papermill wrote, checked: every code cell ran, and none gave an error."""
    import nbformat
    book = nbformat.read(str(book_path), as_version=4)
    code = [cell for cell in book.cells if cell.cell_type == "code" and cell.source.strip()]
    errors = [out for cell in code for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, f"{book_path.name}: {errors}"
    assert code and all(cell.get("execution_count") for cell in code), f"{book_path.name}: not every cell ran"
    return book


def image_size(tag: str) -> str:
    return podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip()


SECCOMP_WITHOUT_UNSHARE = '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": ' \
                          '[{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}'
"""A seccomp profile that fails unshare() with EPERM, as Docker's default profile does for a
container without CAP_SYS_ADMIN; everything else is allowed."""

