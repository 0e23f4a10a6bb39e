"""Every notebook in notebooks/, executed top to bottom by papermill, as root and as a student.

A failing `assert` in a notebook fails its test. The executed notebooks are kept
in artifacts/notebooks/ (root-*, again-*, rootless-*) for a person to read.
Each is run with run_solutions=True, so the exercises' solutions are typed and
checked too. Running a notebook twice in a row (`again-*`) proves it leaves
nothing behind that trips its next run.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from helpers import refused_user_namespaces

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
# The Traditional Chinese twins (same code, same asserts); their folder makes them speak zh-TW.
ZH_NOTEBOOKS = sorted((REPO / "notebooks" / "zh-TW").glob("[0-9][0-9]-*.ipynb"))
HAN = re.compile(r"[\u4e00-\u9fff]")


def shown(path: Path) -> str:
    return str(path.relative_to(REPO / "notebooks").with_suffix(""))


def flat(path: Path) -> str:
    """An artifact's file name: zh-TW/01-x.ipynb -> zh-TW-01-x.ipynb."""
    return str(path.relative_to(REPO / "notebooks")).replace("/", "-")
ARTIFACTS = REPO / "artifacts" / "notebooks"
VENV_BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.notebook, pytest.mark.lab]


def papermill(notebook: Path, output: Path, *, user: str | None = None, env=None, cwd=None,
              python: str = sys.executable, name: str | None = None) -> subprocess.CompletedProcess:
    argv = [python, "-m", "papermill", "--no-progress-bar", "-k", "python3", str(notebook), str(output),
            "-p", "run_solutions", "True"]
    if name:
        argv += ["-p", "lab_name", name]
    if user:
        runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
        argv = [runuser, "-u", user, "--"] + argv
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    if done.returncode != 0 and never_started(output):
        # jupyter_client picks free TCP ports for a kernel and the kernel binds them a moment later; another
        # process can take one in between, and the kernel dies before running a cell (seen once in CI:
        # zmq's EADDRINUSE). Nothing of the notebook ran, so it is run once more; any cell that fails still fails.
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    return done


def never_started(output: Path) -> bool:
    """True when papermill wrote its output notebook but the kernel executed none of its code cells."""
    try:
        book = nbformat.read(str(output), as_version=4)
    except (OSError, ValueError):
        return False
    return not any(c.get("execution_count") for c in book.cells if c.cell_type == "code")


def assert_ran(done: subprocess.CompletedProcess, output: Path) -> nbformat.NotebookNode:
    if done.returncode != 0 and output.exists():      # keep what the failed run printed, for whoever reads CI
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(output, ARTIFACTS / f"failed-{output.parent.name}-{output.name}")
    assert done.returncode == 0, f"papermill failed:\n{done.stderr[-4000:]}"
    book = nbformat.read(str(output), as_version=4)
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    return book


def test_there_are_notebooks_for_scenarios_1_and_2():
    names = [p.name for p in NOTEBOOKS]
    assert "01-container-to-container.ipynb" in names and "02-container-to-internet.ipynb" in names


@pytest.mark.parametrize("notebook", NOTEBOOKS + ZH_NOTEBOOKS, ids=shown)
def test_notebook_runs_twice_in_a_row_as_root(notebook):
    """Twice for an English notebook (the second run proves the first left nothing behind); once for its twin."""
    if os.geteuid() != 0:
        pytest.skip("the root run needs root; the rootless run covers this user")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chinese = notebook in ZH_NOTEBOOKS
    for prefix in ("root",) if chinese else ("root", "again"):
        output = ARTIFACTS / f"{prefix}-{flat(notebook)}"
        book = assert_ran(papermill(notebook, output, cwd=notebook.parent), output)
        # Every code cell ran (papermill stops at the first failure).
        assert all(c.get("execution_count") for c in book.cells if c.cell_type == "code" and c.source.strip())
        if chinese:                     # netkit's own words in its outputs are Chinese too
            said = "\n".join(str(o) for c in book.cells for o in c.get("outputs", []))
            assert len(HAN.findall(said)) > 20, f"{shown(notebook)}: almost no Chinese in netkit's outputs"


@pytest.fixture(scope="module")
def student_env(netkit_test_user):
    """A venv, the package and the notebooks where the unprivileged user can reach them.

    The checkout may sit under a directory only root can enter, so the venv (built
    from Debian's /usr/bin/python3) and the package are copied to a world-readable place.
    """
    uid, gid, home = netkit_test_user
    place = Path(tempfile.mkdtemp(prefix="netkit-student-"))
    os.chmod(place, 0o755)
    venv = VENV_BIN.parent
    shutil.copytree(venv, place / "venv", symlinks=True)
    shutil.copytree(REPO / "netkit", place / "netkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "notebooks", place / "notebooks")
    out = place / "out"
    out.mkdir()
    subprocess.run(["chmod", "-R", "a+rX", str(place)], check=True)
    os.chown(out, uid, gid)
    env = {"PATH": f"{place / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": home,
           "PYTHONPATH": str(place), "LANG": "C.UTF-8", "USER": "netkit-test",
           "JUPYTER_PLATFORM_DIRS": "1"}
    try:
        yield place, env
    finally:
        shutil.rmtree(place, ignore_errors=True)


@pytest.mark.rootless
@pytest.mark.parametrize("notebook", NOTEBOOKS + ZH_NOTEBOOKS, ids=shown)
def test_notebook_runs_as_an_unprivileged_user(notebook, student_env):
    place, env = student_env
    relative = notebook.relative_to(REPO / "notebooks")
    output = place / "out" / flat(notebook)
    done = papermill(place / "notebooks" / relative, output, user="netkit-test", env=env,
                     cwd=(place / "notebooks" / relative).parent, python=str(place / "venv" / "bin" / "python"))
    book = assert_ran(done, output)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(output, ARTIFACTS / f"rootless-{flat(notebook)}")
    text = "\n".join(str(o) for c in book.cells for o in c.get("outputs", []))
    if notebook.name.startswith("00-"):
        rootless = in_language("zh-TW" if notebook in ZH_NOTEBOOKS else "en",
                               "not root, but user namespaces are allowed: the lab runs rootless")
        assert rootless in text, f"the doctor's namespaces row, in the notebook's language: {rootless!r}"


# Like Binder: an unprivileged user where the kernel refuses user namespaces (see helpers).


@pytest.mark.rootless
def test_where_the_lab_cannot_start_the_notebooks_say_why(student_env, netkit_test_user):
    place, env = student_env
    uid, gid, _ = netkit_test_user
    limit = Path("/proc/sys/user/max_user_namespaces").read_text()
    python = str(place / "venv" / "bin" / "python")

    def run(name):
        output = place / "out" / f"refused-{name}"
        argv = [python, "-m", "papermill", "--no-progress-bar", "-k", "python3",
                str(place / "notebooks" / name), str(output)]
        done = subprocess.run(refused_user_namespaces(uid, gid, argv), env=env,
                              cwd=place / "notebooks", capture_output=True, text=True, timeout=300)
        book = nbformat.read(str(output), as_version=4)
        shutil.copy(output, ARTIFACTS / f"refused-{name}")
        return done, book

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    done, book = run("00-check-your-machine.ipynb")
    assert done.returncode == 0, done.stderr[-3000:]
    text = "\n".join(str(o) for c in book.cells for o in c.get("outputs", []))
    assert "user namespaces are refused" in text and "cannot run the lab yet" in text

    done, book = run("01-container-to-container.ipynb")
    assert done.returncode != 0                       # the lab could not start...
    (error,) = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert error["ename"] == "SandboxError"           # ...and the first code cell says why, briefly:
    shown = "\n".join(error["traceback"])
    assert "00-check-your-machine.ipynb" in shown and "user namespaces" in shown
    assert "Traceback" not in shown and "File " not in shown
    assert Path("/proc/sys/user/max_user_namespaces").read_text() == limit


# Replay mode where the lab cannot start (netkit.replay): the same notebooks, every output labelled.

REPLAYED = re.compile(r"replayed: recorded on Linux \d+\.\d+[\d.]*, \d{4}-\d\d-\d\d, not your machine")
ECHO = re.compile(r"^(\[\w+\] .*|\(lab '.*' rebuilt from scratch .*\)|)$")
STATIC_MAP = re.compile(r"plots\.lab_map\(\s*(\)|None\b|(?!journey=)\w+=)")
"""A picture of the lab with no journey on it: drawn from the topology, not from a recording."""


def in_language(lang: str, english: str) -> str:
    from netkit.i18n import translated, use_language
    use_language(lang)
    try:
        return translated(english)
    finally:
        use_language(None)


def replayed_label(lang: str) -> re.Pattern:
    """The label of a replayed output, in *lang*, as a pattern (REPLAYED for English)."""
    before, after = in_language(lang, "replayed: recorded on {recorded}, not your machine").split("{recorded}")
    return re.compile(re.escape(before) + r"Linux \d+\.\d+[\d.]*, \d{4}-\d\d-\d\d" + re.escape(after))


def unlabelled(book, lang: str = "en") -> list[str]:
    """Every output after the lab's banner that came from the lab and does not say it was replayed."""
    banner = in_language(lang, 'REPLAY: lab {lab!r} is not live. Its results are recordings, each marked '
                               '"{label}".').split("{lab!r}")[0]
    labelled = replayed_label(lang)
    found, started = [], False
    for number, cell in enumerate(book.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = output.get("text", "") + data.get("text/plain", "") + data.get("text/html", "")
            if banner in text:
                started = True
                continue
            if not started or labelled.search(text):
                continue
            if output["output_type"] == "stream" and all(ECHO.match(line) for line in text.splitlines()):
                continue                  # the commands the lab typed (trace=print), echoed as recorded
            if "image/png" in data and STATIC_MAP.search(cell.source):
                continue
            if output.get("data", {}).get("text/plain", "").startswith("<Exercise "):
                continue                  # an exercise's task card: the notebook's own words, not the lab's
            found.append(f"cell {number} ({cell.source.splitlines()[0][:60]}): {text[:200]!r}")
    return found


@pytest.mark.rootless
def test_where_the_lab_cannot_start_the_notebooks_replay_with_every_output_labelled(student_env, netkit_test_user):
    """As on Binder: user namespaces refused, NETKIT_REPLAY=1, the students' parameters (no solutions)."""
    place, env = student_env
    uid, gid, _ = netkit_test_user
    limit = Path("/proc/sys/user/max_user_namespaces").read_text()
    python = str(place / "venv" / "bin" / "python")
    # The English notebooks, and one Traditional Chinese twin: the same recordings replay in either language.
    names = [p.name for p in NOTEBOOKS] + ["dashboard.ipynb", "zh-TW/01-container-to-container.ipynb"]
    running = {}
    for name in names:               # all at once: each is a kernel replaying, no lab
        book = place / "notebooks" / name
        argv = [python, "-m", "papermill", "--no-progress-bar", "-k", "python3", str(book),
                str(place / "out" / f"replayed-{name.replace('/', '-')}")]
        running[name] = subprocess.Popen(refused_user_namespaces(uid, gid, argv), env={**env, "NETKIT_REPLAY": "1"},
                                         cwd=book.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, process in running.items():
        _, stderr = process.communicate(timeout=300)
        output = place / "out" / f"replayed-{name.replace('/', '-')}"
        if process.returncode != 0 and never_started(output):
            # six kernels starting at once pick their TCP ports at once: one can lose its port before it binds
            # (see `papermill`); nothing of that notebook ran, so it runs again, alone
            process = subprocess.Popen(process.args, env={**env, "NETKIT_REPLAY": "1"},
                                       cwd=(place / "notebooks" / name).parent, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            _, stderr = process.communicate(timeout=300)
        shutil.copy(output, ARTIFACTS / output.name)
        book = assert_ran(subprocess.CompletedProcess(process.args, process.returncode, "", stderr), output)
        assert all(c.get("execution_count") for c in book.cells if c.cell_type == "code" and c.source.strip())
        text = "\n".join(str(o) for c in book.cells for o in c.get("outputs", []))
        if name.startswith("zh-TW/"):
            assert not unlabelled(book, "zh-TW"), "\n".join([name] + unlabelled(book, "zh-TW"))
            label = replayed_label("zh-TW")
            pictures = [o for c in book.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
                        and not STATIC_MAP.search(c.source)]
            assert pictures and all(label.search(o["data"]["text/plain"]) for o in pictures), name
            assert HAN.search(label.pattern) and "replayed" not in label.pattern
            continue
        if name.startswith("00-"):    # the machine check says: not live here, the notebooks replay, go live there
            assert "user namespaces are refused" in text and "NETKIT_REPLAY=1: the lab cannot run live here" in text
            assert "the notebooks replay recordings instead" in text and "class server" in text
            continue
        # the first lab cell says why this is a replay, and where a live lab is
        assert "REPLAY: lab" in text and "NETKIT_REPLAY=1 is set" in text, name
        assert "A live lab cannot start on this machine either" in text, name
        assert all(way in text for way in ("class server", "container", "Linux laptop or VM")), name
        assert not unlabelled(book), "\n".join([name] + unlabelled(book))
        pictures = [o for c in book.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
                    and not STATIC_MAP.search(c.source)]
        assert all(REPLAYED.search(o["data"]["text/plain"]) for o in pictures), name
        if name != "dashboard.ipynb":
            assert pictures and "Not checked: checking needs a live lab" in text, name
    assert Path("/proc/sys/user/max_user_namespaces").read_text() == limit
