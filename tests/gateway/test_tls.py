"""gunicorn with the gateway's config on loopback: TLS versions, cipher policy, and `serve`."""

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import free_port, write_routes

ROOT = Path(__file__).resolve().parents[2]
SECRET = "S3CRET"


def make_tls_files(config_dir: Path) -> None:
    """A throwaway self-signed certificate, made the way an operator would with openssl."""
    tls = config_dir / "tls"
    tls.mkdir(parents=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem"),
            "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True, capture_output=True,
    )  # fmt: skip


def wait_for_port(port: int, process: subprocess.Popen, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory, upstream_servers):
    directory = tmp_path_factory.mktemp("gateway-config")
    make_tls_files(directory)
    write_routes(directory / "routes.json", {"a": (upstream_servers["a"].origin, "running")})
    return directory


@pytest.fixture(scope="module")
def tls_gateway(config_dir, tmp_path_factory):
    """gunicorn serving the gateway over TLS with deploy/gunicorn_gateway.py; yields its port."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("gunicorn") / "stderr.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn_gateway.py",
                "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
                "--certfile", str(config_dir / "tls/cert.pem"),
                "--keyfile", str(config_dir / "tls/key.pem"),
            ],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "MEDCELL_GATEWAY_CONFIG": str(config_dir)},
        )  # fmt: skip
    wait_for_port(port, process)
    yield port, log_path
    process.terminate()
    process.wait(timeout=20)


def client_context(version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Let this client offer even obsolete protocols and ciphers, so that refusing them is the
    # server's doing, not the client library's.
    context.set_ciphers(ciphers or "ALL:@SECLEVEL=0")
    context.minimum_version = version
    context.maximum_version = version
    return context


def handshake(port: int, context: ssl.SSLContext) -> tuple[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            return tls.version(), tls.cipher()[0]


def https_get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=5, context=client_context(ssl.TLSVersion.TLSv1_3)
    )
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_1_1_and_below_are_refused(tls_gateway, version):
    port, _ = tls_gateway
    with pytest.raises(ssl.SSLError) as refused:
        handshake(port, client_context(version))
    # The server's own "protocol version" alert: the client did offer the old version.
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"


@pytest.mark.parametrize(
    ("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")]
)
def test_tls_1_2_and_1_3_are_accepted_with_aead_ciphers(tls_gateway, version, name):
    port, _ = tls_gateway
    negotiated, cipher = handshake(port, client_context(version))
    assert negotiated == name
    assert "GCM" in cipher or "CHACHA20" in cipher
    if version == ssl.TLSVersion.TLSv1_2:
        assert cipher.startswith("ECDHE-")


@pytest.mark.parametrize(
    "ciphers",
    [
        "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256",  # CBC
        "AES128-GCM-SHA256:AES256-GCM-SHA384",  # no forward secrecy
        "DHE-RSA-AES128-GCM-SHA256",  # finite-field DH
        "ECDHE-ECDSA-NULL-SHA:@SECLEVEL=0",
    ],
)
def test_tls_1_2_without_ecdhe_aead_is_refused(tls_gateway, ciphers):
    port, _ = tls_gateway
    with pytest.raises(ssl.SSLError):
        handshake(port, client_context(ssl.TLSVersion.TLSv1_2, ciphers))


def test_server_chooses_the_cipher(tls_gateway):
    port, _ = tls_gateway
    # The client prefers ChaCha20; the server's order puts AES-256-GCM first and wins.
    ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384"
    _, cipher = handshake(port, client_context(ssl.TLSVersion.TLSv1_2, ciphers))
    assert cipher == "ECDHE-ECDSA-AES256-GCM-SHA384"


def test_gateway_answers_its_health_check_over_tls(tls_gateway):
    port, _ = tls_gateway
    response = https_get(port, "/healthz")
    assert response.status == 200
    assert json.loads(response.body) == {"status": "ok"}
    assert "includeSubDomains" in response.getheader("Strict-Transport-Security")


def test_proxied_request_says_https_to_the_facility(tls_gateway, upstreams):
    port, _ = tls_gateway
    response = https_get(port, "/f/a/api/v1/x", headers={"X-Forwarded-Proto": "http"})
    assert response.status == 200
    seen = json.loads(response.body)["headers"]
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-prefix"] == "/f/a"
    assert response.getheader("Content-Security-Policy")


def test_server_log_holds_no_paths_or_tokens(tls_gateway, upstreams):
    port, log_path = tls_gateway
    https_get(port, f"/f/a/p/{SECRET}-token?pin={SECRET}")
    https_get(port, f"/f/a/p/{SECRET}%2f..")
    with pytest.raises(http.client.IncompleteRead):
        https_get(port, f"/f/a/truncated?{SECRET}")  # the facility breaks off: gunicorn logs it
    context = client_context(ssl.TLSVersion.TLSv1_3)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(f"GET /f/a/p/{SECRET} HTTP/1.1 junk\r\nHost: x\r\n\r\n".encode())
            tls.recv(1024)
    time.sleep(0.5)
    log = log_path.read_text()
    assert '"event":"request"' in log
    assert "Invalid request refused" in log and "upstream_aborted" in log
    assert SECRET not in log
    assert "/f/a" not in log
    for line in log.splitlines():
        json.loads(line)  # gunicorn's own lines are JSON too: one format for the whole log


def test_serve_redirects_http_serves_https_and_stops_on_sigterm(config_dir, upstreams):
    https_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "MEDCELL_GATEWAY_CONFIG": str(config_dir),
        "MEDCELL_GATEWAY_HTTPS_BIND": f"127.0.0.1:{https_port}",
        "MEDCELL_GATEWAY_HTTP_BIND": f"127.0.0.1:{http_port}",
        "MEDCELL_GATEWAY_PORT": str(https_port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(https_port, process)
        wait_for_port(http_port, process)
        for method, status in (("GET", 301), ("POST", 308)):
            conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
            conn.request(method, f"/f/a/p/{SECRET}?x=1")
            response = conn.getresponse()
            assert response.status == status
            location = response.getheader("Location")
            assert location == f"https://127.0.0.1:{https_port}/f/a/p/{SECRET}?x=1"
            assert response.getheader("Strict-Transport-Security")
            conn.close()
        assert https_get(https_port, "/f/a/").status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert SECRET not in output.decode()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
