"""The environment every account of a class shares, in a world-readable place (default /opt/netkit).

    /opt/netkit/venv        Debian's /usr/bin/python3 venv: netkit, JupyterLab, JupyterHub,
                            jupyterhub-idle-culler (the hub and every student's server run from it)
    /opt/netkit/node        configurable-http-proxy, from npm, run by Debian's nodejs
    /opt/netkit/notebooks   the notebooks each account is given a copy of

JupyterHub and the culler come from pyproject.toml's ``class`` extra. The
venv is remade only when pyproject.toml changes (its hash is kept in
``venv/.netkit-env``); netkit itself is reinstalled when its source changes.
A student must be able to run all of it, so it is built from Debian's Python,
never from an interpreter in root's home, and left mode a+rX. Standard
library only: it runs before the venv exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .accounts import LANGUAGE_FOLDERS
from .checks import ClassError

PREFIX = Path(os.environ.get("NETKIT_CLASS_PREFIX", "/opt/netkit"))
PROXY_PACKAGE = "configurable-http-proxy@4"
REPO = Path(__file__).resolve().parents[2]


def venv(prefix: Path = PREFIX) -> Path:
    return prefix / "venv"


def python(prefix: Path = PREFIX) -> Path:
    return venv(prefix) / "bin" / "python"


def proxy(prefix: Path = PREFIX) -> Path:
    return prefix / "node" / "node_modules" / ".bin" / "configurable-http-proxy"


def notebooks(prefix: Path = PREFIX) -> Path:
    return prefix / "notebooks"


def _hash(paths: list[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def env_key(repo: Path = REPO) -> str:
    return _hash([repo / "pyproject.toml"])


def source_key(repo: Path = REPO) -> str:
    return _hash(sorted((repo / "netkit").rglob("*.py")))


def _step(argv: list[str], what: str, trace) -> None:
    trace(f"==> {what}")
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise ClassError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-1500:]}")


SOURCE = ("pyproject.toml", "README.md", "netkit")
"""What pip needs to build netkit: its metadata, the readme it names, the package."""


@contextmanager
def _source(repo: Path):
    """A copy of netkit's source in a temporary folder, for pip to build from: building in the checkout itself
    leaves setuptools' build/ and *.egg-info behind in it."""
    with tempfile.TemporaryDirectory(prefix="netkit-source-") as place:
        for name in SOURCE:
            if (repo / name).is_dir():
                shutil.copytree(repo / name, Path(place) / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(repo / name, Path(place) / name)
        yield Path(place)


def _stamp(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def install(prefix: Path = PREFIX, repo: Path = REPO, *, trace=print) -> Path:
    """Make or update the shared environment; returns its python. Idempotent and quick when up to date."""
    os.umask(0o022)
    if not Path("/usr/bin/python3").exists():
        raise ClassError("Debian's /usr/bin/python3 is missing: sudo apt-get install python3 python3-venv")
    prefix.mkdir(parents=True, exist_ok=True)
    os.chmod(prefix, 0o755)
    env_stamp, src_stamp = venv(prefix) / ".netkit-env", venv(prefix) / ".netkit-source"
    want_env, want_src = env_key(repo), source_key(repo)
    if _stamp(env_stamp) != want_env:
        shutil.rmtree(venv(prefix), ignore_errors=True)
        _step(["/usr/bin/python3", "-m", "venv", str(venv(prefix))], f"creating {venv(prefix)}", trace)
        pip = [str(python(prefix)), "-m", "pip", "install", "-q"]
        _step(pip + ["--upgrade", "pip"], "upgrading pip", trace)
        with _source(repo) as source:
            _step(pip + [f"{source}[class]"],
                  "installing netkit, JupyterLab and JupyterHub for every account (a few minutes the first time)",
                  trace)
        env_stamp.write_text(want_env + "\n")
        src_stamp.write_text(want_src + "\n")
    elif _stamp(src_stamp) != want_src:
        with _source(repo) as source:
            _step([str(python(prefix)), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(source)],
                  "updating netkit in the shared environment", trace)
        src_stamp.write_text(want_src + "\n")
    if not proxy(prefix).exists():
        npm = shutil.which("npm")
        if not npm or not shutil.which("node"):
            raise ClassError("npm and node are missing: sudo apt-get install nodejs npm "
                             "(./quickstart class installs them)")
        (prefix / "node").mkdir(exist_ok=True)
        _step([npm, "install", "--prefix", str(prefix / "node"), "--no-audit", "--no-fund", "--omit=dev",
               PROXY_PACKAGE], "installing configurable-http-proxy from npm", trace)
    books = notebooks(prefix)
    for lang in ("", *LANGUAGE_FOLDERS):         # the notebooks, and their translations in zh-TW/
        (books / lang).mkdir(exist_ok=True)
        for source in (repo / "notebooks" / lang).glob("*.ipynb"):
            shutil.copyfile(source, books / lang / source.name)
    subprocess.run(["chmod", "-R", "a+rX", str(prefix)], check=True)
    return python(prefix)
