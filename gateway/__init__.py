"""medcell gateway: nginx as the one HTTPS entry for all facilities, Python as its control plane.

nginx (the data plane) terminates TLS and proxies /f/<slug>/... straight to each facility's unix
socket. This package renders and reloads nginx's configuration from routes.json (`nginx.py`,
`routes.py`, `templates/`), turns nginx's error log into content-free events (`errorlog.py`), and
is the activator that wakes sleeping facilities (`activator.py`). `python -m gateway serve` runs
all of it.
"""
