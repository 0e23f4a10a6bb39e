"""Class mode: one server for a whole workshop, on JupyterHub, each student with their own lab.

    roster.py    the roster file (username,password a line), checked, or generated
    checks.py    what is checked before anything is made (root, names, port, user namespaces)
    install.py   the environment every account shares (/opt/netkit: venv, proxy, notebooks)
    accounts.py  the students' Unix accounts: made, given the notebooks, removed
    limits.py    memory, process and CPU limits per student's server (cgroups v1 or v2)
    privacy.py   each server's own /tmp, /var/tmp, /dev/shm, IPC and /proc (hidepid)
    spawner.py   ClassSpawner: LocalProcessSpawner in that cgroup, private, kernels over ipc
    hub.py       the hub's settings and configuration (PAM, services, roles)
    board.py     the progress board, a HubOAuth service for the hub's admins
    client.py    log in, start a server, run code in its kernel (tests and benchmark)
    cli.py       `./quickstart class` (python -m netkit.classroom)

Importing it starts nothing. roster, checks, install, accounts, limits and
cli need only the standard library (they run before the shared environment
exists); spawner, hub's configure and board run inside JupyterHub.
"""
