"""nginx with the rendered config on loopback: TLS versions, cipher policy, HTTP/2, and `serve`."""

import http.client
import json
import socket
import ssl

import pytest

SECRET = "S3CRET"


@pytest.fixture
def tls_gateway(gateway):
    return gateway.port, gateway.log_path


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


def https_get(
    port: int, path: str, headers: dict | None = None, host: str = "127.0.0.1"
) -> http.client.HTTPResponse:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=5, context=client_context(ssl.TLSVersion.TLSv1_3)
    )
    conn.request("GET", path, headers={"Host": f"{host}:{port}", **(headers or {})})
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


def test_proxied_request_says_https_to_the_facility(tls_gateway, upstreams):  # noqa: ARG001
    port, _ = tls_gateway
    response = https_get(
        port, "/api/v1/x", headers={"X-Forwarded-Proto": "http"}, host="a.localhost"
    )
    assert response.status == 200
    seen = json.loads(response.body)["headers"]
    assert seen["x-forwarded-proto"] == "https"
    assert response.getheader("Content-Security-Policy")


def test_http2_is_offered(tls_gateway):
    port, _ = tls_gateway
    context = client_context(ssl.TLSVersion.TLSv1_3)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            assert tls.selected_alpn_protocol() == "h2"


def test_serve_redirects_http_serves_https_and_stops_on_sigterm(make_gateway):
    gateway = make_gateway()
    https_port, http_port = gateway.port, gateway.http_port
    try:
        for method, status in (("GET", 301), ("POST", 308)):
            conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
            conn.request(method, f"/p/{SECRET}?x=1", headers={"Host": f"a.localhost:{http_port}"})
            response = conn.getresponse()
            assert response.status == status
            location = response.getheader("Location")
            assert location == f"https://a.localhost:{https_port}/p/{SECRET}?x=1"
            assert response.getheader("Strict-Transport-Security")
            conn.close()
        # Plain HTTP for a name it does not serve: no redirect to wherever the client said.
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
        conn.request("GET", "/", headers={"Host": "evil.example"})
        assert conn.getresponse().status == 421
        conn.close()
        assert https_get(https_port, "/", host="a.localhost").status == 200
    finally:
        assert gateway.stop() == 0
    output = gateway.log_path.read_text()
    assert SECRET not in output
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
