"""The Kubernetes values agree with the image and keep the pods unprivileged (no cluster here: read, not run)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import yaml

from helpers import REPO

VALUES = yaml.safe_load((REPO / "deploy" / "kubernetes" / "values.yaml").read_text())
CONTAINERFILE = (REPO / "container" / "Containerfile").read_text()


def _image_notebooks() -> PurePosixPath:
    """Where the image puts the notebooks (its `COPY ... notebooks <dir>`)."""
    found = re.search(r"^COPY\s+(?:--\S+\s+)*notebooks\s+(\S+)", CONTAINERFILE, re.M)
    assert found, "the Containerfile no longer copies notebooks/"
    return PurePosixPath(found[1])


def test_jupyters_root_is_the_home_and_the_default_url_opens_notebook_00():
    root = PurePosixPath(VALUES["hub"]["config"]["KubeSpawner"]["working_dir"])
    assert root == PurePosixPath("/home/jovyan")
    url = VALUES["singleuser"]["defaultUrl"]
    assert url.startswith("/lab/tree/")
    opened = root / url[len("/lab/tree/"):]
    assert opened.parent == _image_notebooks()            # the folder the image fills
    assert (REPO / "notebooks" / opened.name).exists()     # and the notebook is one of ours


def test_the_students_volume_is_inside_jupyters_root():
    root = PurePosixPath(VALUES["hub"]["config"]["KubeSpawner"]["working_dir"])
    volume = PurePosixPath(VALUES["singleuser"]["storage"]["homeMountPath"])
    assert root in volume.parents
    assert volume != _image_notebooks() and _image_notebooks() not in volume.parents   # it hides no notebook


def test_the_image_workdir_alone_would_not_do():
    """Without working_dir, Jupyter's root is the image's WORKDIR: the default URL would miss."""
    workdir = PurePosixPath(re.findall(r"^WORKDIR\s+(\S+)", CONTAINERFILE, re.M)[-1])
    url = VALUES["singleuser"]["defaultUrl"][len("/lab/tree/"):]
    assert workdir / url != _image_notebooks() / PurePosixPath(url).name


def test_no_privileged_init_container_and_no_added_capability():
    assert VALUES["singleuser"]["cloudMetadata"]["blockWithIptables"] is False
    context = VALUES["hub"]["config"]["KubeSpawner"]["container_security_context"]
    assert "privileged" not in context and "capabilities" not in context
    assert "initContainers" not in VALUES["singleuser"]
    text = (REPO / "deploy" / "kubernetes" / "values.yaml").read_text()
    assert "privileged: true" not in text
