"""`python -m gateway serve`: HTTPS through gunicorn, plus the tiny HTTP-to-HTTPS redirect listener.

gunicorn runs as a child process (its arbiter owns the TLS workers); this process serves the plain
HTTP redirects on a thread and passes every stop or reload signal on to gunicorn, exiting with it.
"""

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from . import accesslog, redirect
from .errors import GatewayError
from .settings import settings_from_env, tls_files

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn_gateway.py"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def gunicorn_command(settings: dict) -> list[str]:
    """The gunicorn command line serving the gateway app with the project's TLS settings."""
    certfile, keyfile = tls_files(settings)
    return [
        sys.executable, "-m", "gunicorn",
        "--config", str(GUNICORN_CONFIG),
        "--chdir", str(ROOT),
        "--bind", settings["HTTPS_BIND"],
        "--certfile", certfile,
        "--keyfile", keyfile,
        "gateway:create_app()",
    ]  # fmt: skip


def serve(environ: dict | None = None) -> int:
    """Run the gateway until gunicorn exits (SIGTERM stops both cleanly); return its exit code."""
    accesslog.configure(logging.getLogger(accesslog.LOGGER))
    settings = settings_from_env(os.environ if environ is None else environ)
    for path in tls_files(settings):
        if not os.path.isfile(path):
            raise GatewayError(f"TLS file missing: {path}")
    # Bind the redirect port first: a port conflict then fails before any worker starts.
    http_server = redirect.make_server(settings["HTTP_BIND"], settings["PUBLIC_HTTPS_PORT"])
    # Few malloc arenas: with one arena per thread, buffers of streamed bodies freed by one thread
    # stay cached in its arena, and the gateway's memory creeps up with every thread that streamed.
    child_env = {"MALLOC_ARENA_MAX": "2", **os.environ}
    gunicorn = subprocess.Popen(gunicorn_command(settings), env=child_env)

    def forward(signum: int, _frame: object) -> None:
        gunicorn.send_signal(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    redirect.start(http_server)
    accesslog.event("gateway_started", https=settings["HTTPS_BIND"], http=settings["HTTP_BIND"])
    try:
        code = gunicorn.wait()
    finally:
        http_server.shutdown()
        http_server.server_close()
    accesslog.event("gateway_stopped", exit_code=code)
    # gunicorn exits 0 on a requested stop; anything else is a failure the container should show.
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve HTTPS on 8443 and the HTTPS redirect on 8080")
    parser.parse_args(argv)
    try:
        return serve()
    except GatewayError as e:
        print(f"Error: {e.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
