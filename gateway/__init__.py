"""medcell gateway: nginx as the one HTTPS entry for all facilities, Python as its control plane.

nginx (the data plane) terminates TLS and proxies each facility's own origin,
https://<slug>.<domain>/, straight to that facility's unix socket. This package renders and
reloads nginx's configuration from routes.json (`nginx.py`, `routes.py`, `templates/`), turns
nginx's error log into content-free events (`errorlog.py`), and is the activator that wakes
sleeping facilities (`activator.py`). `python -m gateway serve` runs all of it.
"""
