"""Reach `https://<slug>.localhost:<port>/` from Python as browsers and curl do.

Every facility has its own origin under `localhost`. Chromium and curl resolve `*.localhost` to
loopback by themselves (RFC 6761); glibc, and so Python's `socket.getaddrinfo`, does not. This
session dials 127.0.0.1 for such names and keeps the name for everything else: the URL, the
`Host` header, SNI and the certificate check, so the gateway sees exactly what a browser sends.

The certificate check matches the name by RFC 6125 (urllib3's matcher): OpenSSL's own check
refuses a wildcard over a single label such as `*.localhost`, which the gateway's self-signed
certificate carries; the chain is still verified against `verify`.
"""

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

LOOPBACK = "127.0.0.1"


def is_localhost(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost")


class _Loopback:
    """Dials 127.0.0.1 for a `*.localhost` name; the name stays for Host, SNI and the check."""

    def _new_conn(self):
        name = self._dns_host
        if not is_localhost(name):
            return super()._new_conn()
        self._dns_host = LOOPBACK  # only while the socket is made
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _Connection(_Loopback, HTTPConnection):
    pass


class _TLSConnection(_Loopback, HTTPSConnection):
    def __init__(self, host: str, *args, **kwargs):
        super().__init__(host, *args, **kwargs)
        if is_localhost(host) and self.assert_hostname is None:
            self.assert_hostname = host.rstrip(".")


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class LocalhostAdapter(HTTPAdapter):
    """A transport adapter whose connections reach `*.localhost` on 127.0.0.1."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


def session(verify: str | bool | None = None) -> requests.Session:
    """A requests session that reaches `*.localhost`; `verify`: the CA file (or False).

    It ignores the environment (REQUESTS_CA_BUNDLE would override `verify`, proxies would be
    asked for loopback names) unless `verify` is None, which keeps the environment's CA bundle.
    """
    http = requests.Session()
    if verify is not None:
        http.trust_env = False
        http.verify = verify
    adapter = LocalhostAdapter()
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def request(method: str, url: str, **kwargs) -> requests.Response:
    """One request in a fresh session, like `requests.request` (the environment's CA bundle)."""
    with session() as http:
        return http.request(method, url, **kwargs)


def get(url: str, **kwargs) -> requests.Response:
    return request("GET", url, **kwargs)


def head(url: str, **kwargs) -> requests.Response:
    return request("HEAD", url, **kwargs)


def post(url: str, **kwargs) -> requests.Response:
    return request("POST", url, **kwargs)


def patch(url: str, **kwargs) -> requests.Response:
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs) -> requests.Response:
    return request("DELETE", url, **kwargs)
