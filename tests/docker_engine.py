"""A real Docker Engine for the tests, from Debian's packages, unpacked and never installed.

The lab stands for a Docker host; this module runs the real thing beside it, so
that the tests can hold the lab to what an engine does. Nothing is installed and
the machine's own network namespace is never touched:

- The packages (`PACKAGES`: docker.io, containerd, runc, slirp4netns and its
  libslirp0, busybox-static) are fetched with `apt-get download` and unpacked with
  `dpkg-deb -x` into CACHE/docker-engine/<key>/root, the key naming the package
  versions. The client is that tree's usr/bin/docker, always called by its full
  path: nothing goes on PATH, no `docker` group is made, and a `docker` already on
  the machine is neither used nor touched.
- `Engine` starts dockerd in a net+mount+pid namespace of its own
  (`unshare --net --mount --pid --fork --propagation private --mount-proc`), with a
  tmpfs on /run, its own exec root, pidfile, socket, config file and data root. The
  namespace's pid 1 is a shell that starts dockerd and then reads its stdin, a
  pipe this process holds: when the test ends, or this process dies, the pipe
  closes, the shell exits, and the kernel ends every process of the pid namespace
  (dockerd, containerd, the shims, docker-proxy, the containers). `stop()` also
  kills that pid 1 itself, then checks that nothing is left: no process it saw in
  the namespace, no process running a program of the unpacked tree, no mount of
  the engine's directories in /proc/1/mountinfo or /proc/self/mountinfo.
- The engine reaches nothing outside its namespace, with one exception:
  `outside_link()` runs slirp4netns for an image build, which needs the package
  mirrors. slirp4netns gives the engine's namespace a tap0 and a default route, and
  relays its connections through ordinary sockets of the machine's namespace, where
  it adds no interface, route or rule (the tests compare machine_snapshot()).
- The busybox image of the conformance test is a tarball of busybox-static's one
  binary, loaded with `docker import`; the kit's image is built from
  container/Containerfile on the same mmdebstrap base as Podman's (container_kit),
  loaded with `docker import`. Both live in a data root cached per engine version
  (CACHE/docker-engine/data-<key>), under a lock held while the engine runs, so a
  second run builds nothing.

Errors that mean "this machine cannot do it" (not root, packages out of reach)
raise `Unavailable` with the command that fixes it; the tests turn it into a skip.
"""

from __future__ import annotations

import hashlib
import io
import os
import select
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import container_kit as kit
from netkit.waiting import wait_until

PACKAGES = ("docker.io", "containerd", "runc", "slirp4netns", "libslirp0", "busybox-static")
HOME = kit.CACHE / "docker-engine"
BUSYBOX_TAG = "netkit-busybox:1"
BASE_TAG = f"netkit-test-base:{kit.BASE_KEY}"
KIT_REPO = "netkit-test"
CA_INSIDE = "/etc/netkit-test/machine-ca.crt"
APT_FIX = "sudo apt-get update"

TIMES: dict[str, float] = {}
"""Seconds each slow step took in this run (shown by the tests)."""


class Unavailable(Exception):
    """This machine cannot run the engine; the message says why and what fixes it."""


# -- the packages ------------------------------------------------------------------------------
def package_versions() -> dict[str, str]:
    """The version apt would fetch of each package (its `Version:` field)."""
    versions = {}
    for package in PACKAGES:
        done = subprocess.run(["apt-cache", "show", "--no-all-versions", package],
                              capture_output=True, text=True, timeout=60)
        fields = [line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("Version:")]
        if done.returncode != 0 or not fields:
            raise Unavailable(f"apt knows no version of {package}; fix: {APT_FIX}")
        versions[package] = fields[0]
    return versions


def package_key(versions: dict[str, str]) -> str:
    text = "\n".join(f"{package}={version}" for package, version in sorted(versions.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def unpacked() -> Path:
    """The packages' files, unpacked under the cache (fetched and unpacked once per version set)."""
    if os.geteuid() != 0:
        raise Unavailable("the Docker Engine test needs root (dockerd makes namespaces, mounts and rules); "
                          "fix: run the tests with sudo")
    versions = package_versions()
    home = HOME / package_key(versions)
    root = home / "root"
    with kit._locked("docker-engine"):
        if root.is_dir():
            return root
        debs = home / "debs"
        shutil.rmtree(debs, ignore_errors=True)
        debs.mkdir(parents=True)
        started = time.monotonic()
        wanted = [f"{package}={version}" for package, version in versions.items()]
        done = subprocess.run(["apt-get", "download", *wanted], cwd=debs, capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            raise Unavailable(f"`apt-get download {' '.join(PACKAGES)}` failed (exit {done.returncode}); "
                              f"fix: {APT_FIX}\n{done.stderr[-1500:]}")
        partial = home / "root.partial"
        shutil.rmtree(partial, ignore_errors=True)
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True, timeout=300)
        partial.rename(root)
        TIMES["download and unpack the engine"] = time.monotonic() - started
        return root


def data_root(root: Path) -> Path:
    """The cached data root of this engine version; those of other versions are removed."""
    key = root.parent.name
    for old in HOME.glob("data-*"):
        if old.name != f"data-{key}":
            shutil.rmtree(old, ignore_errors=True)
    return HOME / f"data-{key}"


# -- the engine ----------------------------------------------------------------------------
# Runs as pid 1 of the engine's namespace: $1 the unpacked tree, $2 data root, $3 socket, $4 config file.
_INIT = r"""
set -e
mount -t tmpfs -o mode=0755 netkit-docker-run /run
mkdir /run/netns
ip link set lo up
"$1/usr/sbin/dockerd" --data-root "$2" --exec-root /run/netkit-docker --pidfile /run/netkit-docker.pid \
    -H "unix://$3" --config-file "$4" --storage-driver overlay2 &
read -r _ || true
"""


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _exe(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


class Engine:
    """One dockerd in a namespace of its own. A context manager: started on entry, stopped on exit."""

    def __init__(self, root: Path, data: Path | None = None) -> None:
        self.root = root
        self.tmp = Path(tempfile.mkdtemp(prefix="netkit-docker-"))
        self.data = data or self.tmp / "data"
        self.socket = self.tmp / "docker.sock"
        self.log_path = self.tmp / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self.init = 0
        self.seen: dict[int, str | None] = {}
        self._lock = None

    # starting and stopping
    def __enter__(self) -> "Engine":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        if self.data.is_relative_to(HOME):       # a cached data root: one engine at a time uses it
            self._lock = kit._locked(f"docker-engine-{self.data.name}")
            self._lock.__enter__()
        self.data.mkdir(parents=True, exist_ok=True)
        config = self.tmp / "daemon.json"
        config.write_text("{}\n")                # not /etc/docker/daemon.json
        (self.tmp / "client").mkdir()
        started = time.monotonic()
        env = {"PATH": f"{self.root}/usr/bin:{self.root}/usr/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--net", "--mount", "--pid", "--fork", "--propagation", "private", "--mount-proc",
                 "sh", "-c", _INIT, "netkit-docker", str(self.root), str(self.data), str(self.socket), str(config)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        while not self.init and time.monotonic() - started < 10:
            children = _children(self.proc.pid)
            self.init = children[0] if children else 0
            time.sleep(0.02)
        assert self.init, "unshare started no namespace init:\n" + self.log()
        while True:
            if self.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0:
                break
            assert self.proc.poll() is None, f"dockerd's namespace ended (exit {self.proc.returncode}):\n" + self.log()
            assert time.monotonic() - started < timeout, "dockerd did not answer on its socket:\n" + self.log()
            time.sleep(0.1)
        TIMES["start the engine"] = time.monotonic() - started

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def processes(self) -> dict[int, str | None]:
        """Every process the engine's namespace holds now (pid 1 and its descendants), with start times."""
        found, todo = {}, [self.init] if self.init else []
        while todo:
            pid = todo.pop()
            found[pid] = _start_time(pid)
            todo += _children(pid)
        return found

    def stop(self) -> None:
        """End the namespace (and with it every process of the engine), then check nothing is left."""
        if self.proc is not None:
            self.seen.update(self.processes())
            if self.init and _start_time(self.init) == self.seen.get(self.init):
                os.kill(self.init, signal.SIGKILL)     # pid 1 of the pid namespace: the kernel ends the rest
            self.proc.stdin.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:
            self.assert_nothing_left()
        finally:
            if self._lock is not None:
                self._lock.__exit__(None, None, None)
                self._lock = None
            shutil.rmtree(self.tmp, ignore_errors=True)

    def leftovers(self) -> list[str]:
        left = [f"pid {pid} (was in the engine's namespace)" for pid, start in self.seen.items()
                if start is not None and _start_time(pid) == start]
        root = f"{self.root}/"
        left += [f"pid {pid} runs {_exe(pid)}" for pid in os.listdir("/proc")
                 if pid.isdigit() and _exe(pid).startswith(root)]
        for where in ("1", "self"):
            mounts = Path(f"/proc/{where}/mountinfo").read_text().splitlines()
            left += [f"mount in /proc/{where}/mountinfo: {line}" for line in mounts
                     if any(str(path) in line for path in (self.tmp, self.root, self.data))]
        return left

    def assert_nothing_left(self, timeout: float = 10) -> None:
        wait_until(lambda: not self.leftovers(), timeout, interval=0.1)
        left = self.leftovers()
        assert not left, "the engine left things behind:\n" + "\n".join(left)

    # using it
    def docker(self, *args: str, input: bytes | None = None, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess:
        """Run the unpacked client against this engine's socket; stdout and stderr as text."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("DOCKER_")}
        env.update(DOCKER_HOST=f"unix://{self.socket}", DOCKER_CONFIG=str(self.tmp / "client"),
                   DOCKER_BUILDKIT="0")
        done = subprocess.run([str(self.root / "usr/bin/docker"), *args], input=input, capture_output=True,
                              timeout=timeout, env=env)
        done.stdout = done.stdout.decode(errors="replace")
        done.stderr = done.stderr.decode(errors="replace")
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args[:4])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done

    def exists(self, image: str) -> bool:
        return self.docker("image", "inspect", image, check=False).returncode == 0

    def inside(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a program of the machine in the engine's network namespace (as the engine's host)."""
        return subprocess.run(["nsenter", "-t", str(self.init), "-n", "--", *argv], capture_output=True, text=True,
                              timeout=timeout)

    @contextmanager
    def outside_link(self, timeout: float = 20):
        """A way out for the engine's namespace: slirp4netns's tap0, with a default route through it."""
        exit_r, exit_w = os.pipe()
        ready_r, ready_w = os.pipe()
        libs = sorted(self.root.glob("usr/lib/*/libslirp.so.0"))
        env = dict(os.environ, LD_LIBRARY_PATH=str(libs[0].parent)) if libs else dict(os.environ)
        slirp = subprocess.Popen(
            [str(self.root / "usr/bin/slirp4netns"), "--configure", "--mtu=65520", "--disable-host-loopback",
             f"--exit-fd={exit_r}", f"--ready-fd={ready_w}", str(self.init), "tap0"],
            pass_fds=(exit_r, ready_w), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
        os.close(exit_r)
        os.close(ready_w)
        try:
            readable, _, _ = select.select([ready_r], [], [], timeout)
            ready = os.read(ready_r, 1) if readable else b""
            assert ready == b"1", f"slirp4netns did not come up (exit {slirp.poll()}): " \
                                  f"{slirp.stdout.read().decode(errors='replace') if slirp.poll() is not None else ''}"
            yield slirp
        finally:
            os.close(ready_r)
            os.close(exit_w)                        # slirp4netns exits when this closes
            try:
                slirp.wait(10)
            except subprocess.TimeoutExpired:
                slirp.kill()
                slirp.wait(5)


# -- images --------------------------------------------------------------------------------
BUSYBOX_INDEX = b"netkit busybox\n"
# busybox httpd hands a CGI the client's address: who connected, docker-proxy or the caller itself.
BUSYBOX_PEER_CGI = b'#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n'


def busybox_image(engine: Engine) -> str:
    """A one-binary image: busybox-static's /bin/busybox, /bin/sh, a page and a CGI that names the caller."""
    if engine.exists(BUSYBOX_TAG):
        return BUSYBOX_TAG
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name: str, mode: int, data: bytes | None = None, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
            elif data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
        for directory in ("bin", "www", "www/cgi-bin", "tmp"):
            add(directory, 0o755)
        add("bin/busybox", 0o755, (engine.root / "bin/busybox").read_bytes())
        add("bin/sh", 0o777, link="busybox")
        add("www/index.html", 0o644, BUSYBOX_INDEX)
        add("www/cgi-bin/peer", 0o755, BUSYBOX_PEER_CGI)
    engine.docker("import", "-", BUSYBOX_TAG, input=buffer.getvalue())
    return BUSYBOX_TAG


def _timed(step: str, engine: Engine, *args: str, timeout: float) -> None:
    started = time.monotonic()
    engine.docker(*args, timeout=timeout)
    TIMES[step] = time.monotonic() - started


def base_image(engine: Engine) -> str:
    """Podman's mmdebstrap base (container_kit), imported into this engine; with the machine's CA, if any.

    The legacy builder cannot mount a file into a RUN step as `podman build -v` does, so the CA
    bundle pip must trust here (container_kit.MACHINE_CA) is copied into a layer of the test's
    base, at CA_INSIDE, not among the trusted certificates: only PIP_CERT points at it."""
    with kit._locked("base"):
        if not engine.exists(BASE_TAG):
            tarball = kit.base_tarball()
            _timed("import the base (docker import)", engine, "import", str(tarball), BASE_TAG, timeout=600)
    if not Path(kit.MACHINE_CA).exists():
        return BASE_TAG
    tag = f"{BASE_TAG}-machine-ca"
    if not engine.exists(tag):
        context = Path(tempfile.mkdtemp(prefix="netkit-docker-ca-"))
        try:
            shutil.copy(kit.MACHINE_CA, context / "machine-ca.crt")
            (context / "Dockerfile").write_text(f"FROM {BASE_TAG}\nCOPY machine-ca.crt {CA_INSIDE}\n")
            engine.docker("build", "--network", "none", "-t", tag, str(context), timeout=300)
        finally:
            shutil.rmtree(context, ignore_errors=True)
    return tag


def kit_tag() -> str:
    return f"{KIT_REPO}:{kit.kit_key()}"


def kit_image(engine: Engine) -> str:
    """netkit's image, built by this engine from container/Containerfile; cached by container_kit.kit_key().

    The RUN steps need the package mirrors and PyPI: call it inside `engine.outside_link()`.
    `--network host` is the engine's own namespace, whose way out is slirp4netns."""
    base = base_image(engine)
    tag = kit_tag()
    if engine.exists(tag):
        return tag
    trust = ["--build-arg", f"PIP_CERT={CA_INSIDE}"] if base.endswith("-machine-ca") else []
    _timed("build the image (docker build)", engine, "build", "--network", "host", "--force-rm", *trust,
           "--build-arg", f"BASE_IMAGE={base}", "-f", "container/Containerfile", "-t", tag, str(kit.REPO),
           timeout=3600)
    for line in engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", KIT_REPO).stdout.split():
        if line != tag:
            engine.docker("rmi", line, check=False)
    engine.docker("image", "prune", "--force", "--filter", f"label={kit.IMAGE_LABEL}", check=False)
    return tag
