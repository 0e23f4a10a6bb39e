"""Write notebooks/dashboard.ipynb, the instructor dashboard (run from the repository root).

    .venv/bin/python tools/make_dashboard.py

The notebook stays thin: a parameters cell, the lab, the dashboard. Its logic is
netkit/dashboard.py. Voila serves it alone: `.venv/bin/voila notebooks/dashboard.ipynb`.
"""

from pathlib import Path

from nb import code, md, save

HERE = Path(__file__).resolve().parent.parent / "notebooks"


def dashboard():
    cells = [
        md("""
        # netkit · instructor dashboard

        Every switch of the lab, the scenarios' probes and the lab map on one page. Each toggle types its
        command into the lab; after every click the dashboard reads the lab's real state back and sends
        the probe again. A change made from a terminal
        (`netkit exec --lab dashboard host -- iptables -P FORWARD ACCEPT`) shows up after
        *read the lab again*. Closing this page (or its kernel) ends the lab.
        """),
        code("""
        # Parameters (papermill sets these when the notebook runs as a test).
        lab_name = "dashboard"
        stage = "part3-start"
        """, "parameters"),
        code("""
        from netkit import Lab
        from netkit.dashboard import Dashboard

        lab = Lab(name=lab_name, stage=stage, replace=True)
        dashboard = Dashboard(lab)
        dashboard
        """),
    ]
    save(HERE / "dashboard.ipynb", cells, "Instructor dashboard")


if __name__ == "__main__":
    dashboard()
    print("notebook written to", HERE / "dashboard.ipynb")
