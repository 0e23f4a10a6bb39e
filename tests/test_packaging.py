"""The ways of installing netkit agree, and every public name is documented (no root needed)."""

import re
from pathlib import Path

import pytest

import netkit

pytestmark = pytest.mark.pure   # recorded data only: no lab, no root (./quickstart test --fast)

REPO = Path(__file__).resolve().parent.parent


def _names(lines) -> set[str]:
    return {re.split(r"[<>=!~ \[]", line.strip(), maxsplit=1)[0].lower() for line in lines if line.strip()}


def pyproject_packages() -> set[str]:
    text = (REPO / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)\]", text, re.S | re.M)[1]
    test = re.search(r"^test = \[(.*?)\]", text, re.M)[1]
    return _names(re.findall(r'"([^"]+)"', deps + test))


CONDA_NAMES = {"playwright-python": "playwright"}
"""conda-forge names that differ from PyPI's."""


def conda_packages(path: Path) -> set[str]:
    lines = [line.strip()[2:] for line in path.read_text().splitlines() if line.strip().startswith("- ")]
    return {CONDA_NAMES.get(name, name) for name in _names(lines)} - {"conda-forge", "python", "pip"}


READER_LEAVES_OUT = {"pyroute2", "papermill"}
"""Runtime packages a reader on Binder does without: pyroute2 is the tests' reference parser, papermill is CI's."""


def test_pyproject_and_environment_name_the_same_packages_and_binder_only_what_a_reader_runs():
    assert pyproject_packages() == conda_packages(REPO / "environment.yml")
    text = (REPO / "pyproject.toml").read_text()
    runtime = _names(re.findall(r'"([^"]+)"', re.search(r"^dependencies = \[(.*?)\]", text, re.S | re.M)[1]))
    test_only = pyproject_packages() - runtime
    binder = conda_packages(REPO / "binder" / "environment.yml")
    assert not (REPO / "binder" / "environment.yml").is_symlink()
    assert binder == runtime - READER_LEAVES_OUT
    assert not binder & test_only


def test_replay_mode_needs_nothing_binder_leaves_out(tmp_path):
    """A replayed notebook's calls, with pyroute2 and papermill made unimportable: Binder runs without them."""
    import subprocess
    import sys
    code = ("import sys\n"
            "for name in ('pyroute2', 'papermill', 'pytest', 'playwright'):\n"
            "    sys.modules[name] = None\n"
            "from netkit import Lab, Panel, plots\n"
            "lab = Lab(name='nb01', stage='part3-start', replace=True)\n"           # notebook 01's calls
            "journey = lab.probe('c1', '10.55.66.3', label='bridge-nf-call-iptables=1')\n"
            "plots.grid([journey]); plots.lab_map(journey); plots.ladder(journey)\n"
            "Panel(lab, ['bridge-nf-call-iptables', 'forward-policy'], probe=('c1', '10.55.66.3'))\n"
            "print(journey.outcome.result, lab.replayed)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NETKIT_REPLAY": "1",
                               "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "True"


def test_the_binder_link_comes_from_pyprojects_repository_url():
    import importlib.util
    spec = importlib.util.spec_from_file_location("binder_link", REPO / "tools" / "binder_link.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.binder_link("https://github.com/someone/netkit") == \
        "https://mybinder.org/v2/gh/someone/netkit/HEAD?urlpath=lab/tree/notebooks/01-container-to-container.ipynb"
    assert tool.binder_link("https://github.com/someone/netkit.git/").startswith("https://mybinder.org/v2/gh/someone/netkit/")
    with pytest.raises(ValueError):
        tool.binder_link("https://gitlab.com/someone/netkit")
    readme = (REPO / "README.md").read_text()
    assert "OWNER" not in readme                      # no placeholder for a reader to trip on
    badges = re.findall(r"\(https://mybinder\.org/[^)]*\)", readme)
    url = tool.repository()
    assert badges == ([f"({tool.binder_link(url)})"] if url else [])


def test_binder_and_quickstart_install_the_same_system_tools():
    apt = set((REPO / "binder" / "apt.txt").read_text().split())
    quickstart = (REPO / "quickstart").read_text()
    listed = set(re.search(r"APT_PACKAGES=\((.*?)\)", quickstart, re.S)[1].split())
    assert apt <= listed
    for tool in ("iproute2", "iptables", "nftables", "tcpdump", "conntrack", "iputils-ping", "net-tools",
                 "bridge-utils"):
        assert tool in apt


def test_every_public_name_is_documented():
    for name in netkit.__all__:
        obj = getattr(netkit, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
    for method in ("run", "probe", "reset", "close", "iptables", "sysctl", "tcpdump", "state", "get", "set"):
        assert getattr(netkit.Lab, method).__doc__, method


CHILD = """
import os, sys, threading
from netkit import state
before = sorted(os.listdir(state.runtime_dir()))
import netkit, netkit.plots, netkit.journey, netkit.widgets
kids = open(f"/proc/self/task/{os.getpid()}/children").read().split()
after = sorted(os.listdir(state.runtime_dir()))
print(len(threading.enumerate()), len(kids), "matplotlib.pyplot" in sys.modules, before == after)
"""


def test_importing_netkit_starts_nothing():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["1", "0", "False", "True"]


SCRIPTS = sorted((REPO / "bench").glob("*.py")) + sorted((REPO / "tools").glob("*.py"))
READ_ONLY = {"messages.py": ["check"], "notebooks.py": ["check"], "import_cycles.py": []}
"""Scripts without --help: the command of theirs that only reads (each says what it found)."""


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_script_a_maintainer_runs_by_hand_starts(script):
    """The benchmarks and tools run outside the tests, by hand: each starts from a checkout, with every
    import it makes at its top resolved (not only parsed), and answers --help (or its read-only check)."""
    import subprocess
    import sys
    argv = READ_ONLY.get(script.name, ["--help"])
    done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=120,
                          cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr
    if argv == ["--help"]:
        assert done.stdout.startswith(f"usage: {script.name}") and "--help" in done.stdout, done.stdout
    else:
        assert done.stdout.strip(), done.stderr
