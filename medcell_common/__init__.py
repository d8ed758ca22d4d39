"""What every medcell image shares: the contract's rules and the JSON-lines log format.

Plain Python only (gunicorn in `gunicorn_log` alone, imported by the gunicorn configs): no Flask,
no Docker, nothing from `services`, `gateway` or `provisioner`, which all import from here.
"""
