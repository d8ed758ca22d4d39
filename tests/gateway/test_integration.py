"""The gateway in its container, in front of real facility containers, over real TLS.

Each module run is a private installation (devsupport/installation.py): its own MEDCELL_HOME,
ports and Docker name prefix; everything it created is deleted afterwards (by the CLI, then by
label, also after a failure). Facilities have no network: nginx reaches each on its own socket.
"""

import json
import os
import secrets
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devsupport import Installation, eventually, localhost
from provisioner.host import facility_http
from provisioner.host.config import Config

from .rawhttp import raw_request

pytestmark = pytest.mark.docker

MIB = 1024 * 1024
MARKER = f"MARKER-{secrets.token_hex(4)}"


class VerifyingSession(requests.Session):
    """A session that checks the installation's own certificate on every request.

    Passed per request: this requests version ignores a CA file set as `Session.verify`.
    """

    def __init__(self, cafile: str):
        super().__init__()
        self._cafile = cafile

    def request(self, *args, **kwargs):
        kwargs.setdefault("verify", self._cafile)
        kwargs.setdefault("timeout", 60)
        return super().request(*args, **kwargs)


def client(stack: Installation) -> requests.Session:
    session = VerifyingSession(str(stack.cert))
    # Each facility at its own <slug>.localhost, which only browsers and curl resolve.
    adapter = localhost.LocalhostAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@pytest.fixture(scope="module")
def stack(shared_installation):
    # Facilities stay awake here: sleeping and waking are tests/provisioner/test_docker_sleep.py's.
    with shared_installation.own_facilities() as installation:
        installation.create("alpha", "--idle", "never")
        installation.create("beta", "--idle", "never")
        yield installation


def login(stack: Installation, session: requests.Session, slug: str) -> str:
    admin = stack.facilities[slug]
    response = session.post(
        f"{stack.origin(slug)}/api/v1/login",
        json={"username": admin["admin_user"], "password": admin["admin_password"]},
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def patient_flow(stack: Installation, slug: str) -> dict:
    """The whole contract API for one facility through the gateway; returns the secrets it used."""
    base = f"{stack.origin(slug)}"
    session = client(stack)
    assert session.get(f"{base}/healthz").json() == {"status": "ok"}
    assert session.get(f"{base}/api/v1/openapi.json").json()["openapi"].startswith("3")
    staff = {"Authorization": f"Bearer {login(stack, session, slug)}"}

    created = session.post(
        f"{base}/api/v1/conversations", json={"title": f"{MARKER} title"}, headers=staff
    )
    assert created.status_code == 201, created.text
    conversation = created.json()
    cid = conversation["id"]
    patient = {"Authorization": f"Bearer {conversation['patient_token']}"}
    assert conversation["patient_url"] == f"{stack.origin(slug)}/p/{conversation['patient_token']}"

    listed = session.get(f"{base}/api/v1/conversations", headers=staff)
    assert cid in [c["id"] for c in listed.json()["conversations"]]

    for who in (staff, patient):
        sent = session.post(
            f"{base}/api/v1/conversations/{cid}/messages",
            json={"body": f"{MARKER} message"},
            headers=who,
        )
        assert sent.status_code == 201, sent.text
    content = b"%PDF-1.4\n" + f"{MARKER} attachment ".encode() * 1000
    attached = session.post(
        f"{base}/api/v1/conversations/{cid}/attachments",
        files={"file": (f"{MARKER}.pdf", content, "application/pdf")},
        headers=patient,
    )
    assert attached.status_code == 201, attached.text
    aid = attached.json()["id"]
    assert session.get(f"{base}/api/v1/attachments/{aid}", headers=staff).content == content

    messages = session.get(f"{base}/api/v1/conversations/{cid}/messages", headers=patient)
    assert [m["author"] for m in messages.json()["messages"]][:2] == ["staff", "patient"]
    # The patient's link opens in a browser through the gateway.
    page = session.get(conversation["patient_url"])
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"

    deleted = session.delete(f"{base}/api/v1/conversations/{cid}", headers=patient)
    assert deleted.status_code == 200 and deleted.json()["receipt"]["verified"] is True
    gone = session.get(f"{base}/api/v1/conversations/{cid}/messages", headers=staff)
    assert gone.status_code in (401, 404)
    return {
        "staff_token": staff["Authorization"][7:],
        "patient_token": patient["Authorization"][7:],
    }


def both_facilities_at_once(stack: Installation) -> list[str]:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda slug: patient_flow(stack, slug), ["alpha", "beta"]))
    return [token for result in results for token in result.values()]


def test_full_contract_api_for_two_facilities_at_once(stack):
    both_facilities_at_once(stack)
    # One facility's tokens mean nothing at the other.
    session = client(stack)
    staff_alpha = {"Authorization": f"Bearer {login(stack, session, 'alpha')}"}
    response = session.get(f"{stack.origin('beta')}/api/v1/conversations", headers=staff_alpha)
    assert response.status_code == 401


def test_no_token_or_marker_in_any_log(stack):
    secrets_used = [MARKER, *both_facilities_at_once(stack)]
    secrets_used += [admin["admin_password"] for admin in stack.facilities.values()]
    containers = [
        stack.gateway,
        stack.supervisor,
        stack.container("alpha"),
        stack.container("beta"),
    ]
    for container in containers:
        log = stack.logs(container)
        for secret in secrets_used:
            assert secret not in log, f"{container} logged a secret"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        (ssl.TLSVersion.TLSv1, False),
        (ssl.TLSVersion.TLSv1_1, False),
        (ssl.TLSVersion.TLSv1_2, True),
        (ssl.TLSVersion.TLSv1_3, True),
    ],
)
def test_tls_versions(stack, version, accepted):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as raw:
        if accepted:
            with context.wrap_socket(raw) as tls:
                cipher = tls.cipher()[0]
                assert "GCM" in cipher or "CHACHA20" in cipher
        else:
            with pytest.raises(ssl.SSLError) as refused:
                context.wrap_socket(raw)
            assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"


def at(stack: Installation, where: str) -> str:
    """A base URL: the gateway by address or by its own name, or a facility's own origin."""
    return {"address": stack.url, "home": stack.home_url}.get(where) or stack.origin(where)


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("address", "/healthz"),
        ("address", "/f/alpha/"),  # a host it does not serve: 421
        ("home", "/f/alpha/"),  # the old address: a redirect
        ("alpha", "/"),
        ("alpha", "/healthz"),
        ("alpha", "/api/v1/conversations"),
        ("nope", "/"),
    ],
)
def test_every_security_header_is_present(stack, where, path):
    response = client(stack).get(at(stack, where) + path, allow_redirects=False)
    headers = response.headers
    assert "max-age=" in headers["Strict-Transport-Security"]
    assert int(headers["Strict-Transport-Security"].split("max-age=")[1].split(";")[0]) >= 31536000
    assert "includeSubDomains" in headers["Strict-Transport-Security"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    if "/static/" not in path:
        assert headers["Cache-Control"] == "no-store"


def test_plain_http_only_redirects_to_https(stack):
    response = requests.get(
        f"http://127.0.0.1:{stack.http_port}/p/x?y=1",
        headers={"Host": f"alpha.localhost:{stack.http_port}"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 301
    assert response.headers["Location"] == f"{stack.origin('alpha')}/p/x?y=1"
    forged = requests.get(
        f"http://127.0.0.1:{stack.http_port}/",
        headers={"Host": "evil.example"},
        allow_redirects=False,
        timeout=5,
    )
    assert forged.status_code == 421 and "Location" not in forged.headers


def test_the_old_address_only_redirects_to_the_facilitys_own_origin(stack):
    old = f"{stack.home_url}/f/alpha/api/v1/openapi.json?x=1"
    response = client(stack).get(old, allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"{stack.origin('alpha')}/api/v1/openapi.json?x=1"
    assert client(stack).get(old).json()["openapi"].startswith("3")
    moved = client(stack).post(f"{stack.home_url}/f/alpha/api/v1/login", allow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"{stack.origin('alpha')}/api/v1/login"


def test_a_host_the_gateway_does_not_serve_gets_421_and_reaches_no_facility(stack):
    config = Config.from_env(stack.env)
    before = {slug: facility_http.status(config, slug).requests for slug in ("alpha", "beta")}
    for host in ("evil.example", "alpha.localhost.evil.example", "x.alpha.localhost", "127.0.0.1"):
        status, _, body = raw_request(stack.https_port, "/api/v1/openapi.json", host=host)
        assert status == 421, host
        assert json.loads(body)["error"]["code"] == "misdirected_request"
    after = {slug: facility_http.status(config, slug).requests for slug in ("alpha", "beta")}
    assert after == before


def test_a_forged_forwarded_host_never_changes_the_patient_link(stack):
    session = client(stack)
    staff = {"Authorization": f"Bearer {login(stack, session, 'alpha')}"}
    forged = {
        **staff,
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "host=evil.example;proto=http",
        "X-Forwarded-Prefix": "/phish",
    }
    created = session.post(f"{stack.origin('alpha')}/api/v1/conversations", json={}, headers=forged)
    assert created.status_code == 201, created.text
    link = created.json()["patient_url"]
    assert link == f"{stack.origin('alpha')}/p/{created.json()['patient_token']}"
    session.delete(
        f"{stack.origin('alpha')}/api/v1/conversations/{created.json()['id']}", headers=staff
    )


def gateway_memory(container: str) -> int:
    """The container's memory as `docker stats` computes it: usage minus inactive page cache.

    Read from its cgroup when possible (cheap enough to sample often), else from `docker stats`.
    """
    cid = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", container], capture_output=True, text=True
    ).stdout.strip()
    v1 = f"/sys/fs/cgroup/memory/docker/{cid}"
    if os.path.exists(f"{v1}/memory.usage_in_bytes"):
        with open(f"{v1}/memory.stat") as f:
            stat = dict(line.split() for line in f)
        with open(f"{v1}/memory.usage_in_bytes") as f:
            return int(f.read()) - int(stat.get("total_inactive_file", 0))
    for v2 in (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope", f"/sys/fs/cgroup/docker/{cid}"):
        if os.path.exists(f"{v2}/memory.current"):
            with open(f"{v2}/memory.stat") as f:
                stat = dict(line.split() for line in f)
            with open(f"{v2}/memory.current") as f:
                return int(f.read()) - int(stat.get("inactive_file", 0))
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}", container],
        capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    usage = json.loads(out)["MemUsage"].split("/")[0].strip()
    number, unit = float(usage[:-3]), usage[-3:]
    return int(number * {"KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB}[unit])


class MemorySampler:
    def __init__(self, container: str):
        self.container = container
        self.samples: list[int] = []
        self._stop = threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(gateway_memory(self.container))
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_20_mb_attachment_up_and_down_with_flat_gateway_memory(stack):
    base = f"{stack.origin('alpha')}"
    session = client(stack)
    staff = {"Authorization": f"Bearer {login(stack, session, 'alpha')}"}
    cid = session.post(f"{base}/api/v1/conversations", json={}, headers=staff).json()["id"]
    content = b"%PDF-1.4\n" + os.urandom(20 * 1000 * 1000 - 9)  # a file type uploads allow

    def round_trip():
        attached = session.post(
            f"{base}/api/v1/conversations/{cid}/attachments",
            files={"file": ("scan.bin", content, "application/octet-stream")},
            headers=staff,
        )
        assert attached.status_code == 201, attached.text
        assert attached.json()["size"] == len(content)
        with session.get(
            f"{base}/api/v1/attachments/{attached.json()['id']}", headers=staff, stream=True
        ) as download:
            received = b"".join(download.iter_content(256 * 1024))
        assert received == content

    for _ in range(3):  # warm-up: pools, per-thread buffers, code paths
        round_trip()
    time.sleep(1)
    baseline = gateway_memory(stack.gateway)
    with MemorySampler(stack.gateway) as memory:
        for _ in range(3):
            round_trip()
    peak = max(memory.samples)
    print(
        f"gateway memory: baseline {baseline / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB,"
        f" {len(memory.samples)} samples"
    )
    # Holding (or spooling to its tmpfs) the body would add at least its 19 MiB, twice: up and
    # down. What does move is the kernel's socket buffers, charged to the container, and
    # nginx's per-connection buffers in whichever worker takes the transfer.
    assert peak - baseline < 15 * MIB
    session.delete(f"{base}/api/v1/conversations/{cid}", headers=staff)


def status_of(stack: Installation, url: str) -> tuple[int, dict, str]:
    response = client(stack).get(url, allow_redirects=False)
    return response.status_code, response.headers, response.text


def error_code(body: str) -> str:
    return json.loads(body)["error"]["code"]


def test_unknown_facility_is_404_json_and_reaches_no_facility(stack):
    config = Config.from_env(stack.env)
    before = {slug: facility_http.status(config, slug).requests for slug in ("alpha", "beta")}
    for method, where, path in (
        ("GET", "nope", "/"),
        ("POST", "nope", "/api/v1/login"),
        ("GET", "home", "/x/"),
        ("GET", "home", "/f/nope/"),
    ):
        response = client(stack).request(method, at(stack, where) + path, json={})
        assert response.status_code == 404, path
        assert error_code(response.text) == "not_found"
    after = {slug: facility_http.status(config, slug).requests for slug in ("alpha", "beta")}
    assert after == before


def test_a_browser_gets_the_gateways_page_and_a_facilitys_405_keeps_allow(stack):
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = client(stack).get(f"{stack.origin('nope')}/p/some-link", headers=browser)
    assert page.status_code == 404
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Nicht gefunden" in page.text and "Not found" in page.text
    assert "nope" not in page.text and "some-link" not in page.text
    # The facility's own 405 passes the gateway with its Allow header and its JSON.
    refused = client(stack).patch(f"{stack.origin('alpha')}/api/v1/conversations", json={})
    assert refused.status_code == 405 and error_code(refused.text) == "method_not_allowed"
    assert {"GET", "POST", "DELETE"} <= set(refused.headers["Allow"].split(", "))


# Targets that must be refused (400) before any facility sees them: traversal to the other
# facility, encoded separators, control characters, bad encodings. The unit table
# (tests/gateway/test_paths.py) has more; these go through the real stack.
HOSTILE = [
    "/../beta/api/v1/conversations",
    "/%2e%2e/beta/api/v1/conversations",
    "/.%2E/beta/healthz",
    "/./healthz",
    "/..;/beta/healthz",
    "/api%2f..%2f..%2fbeta",
    "/f/alpha%2fbeta/healthz",
    "/..%5cbeta",
    "/..\\beta",
    "/%252e%252e/beta",
    "/%00/healthz",
    "/f/beta%00/healthz",
    "/%c0%ae%c0%ae/beta",
    "/%ff",
    "/%ZZ",
    "/%0d%0aX-Injected:%20yes",
    "//../beta",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_target_is_refused_before_any_facility(stack, target):
    config = Config.from_env(stack.env)
    before = {slug: facility_http.status(config, slug).requests for slug in ("alpha", "beta")}
    status, headers, body = raw_request(stack.https_port, target, host="alpha.localhost")
    assert status == 400
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert "x-injected" not in headers
    after = {slug: facility_http.status(config, slug).requests for slug in ("alpha", "beta")}
    assert after == before  # counted by the facilities themselves: neither saw it


@pytest.mark.parametrize("target", ["/%61pi/v1/openapi.json", "/api//v1///openapi.json"])
def test_odd_but_harmless_target_reaches_its_own_facility(stack, target):
    status, _, body = raw_request(stack.https_port, target, host="alpha.localhost")
    assert status == 200
    assert json.loads(body)["openapi"].startswith("3")


def test_facility_internal_status_is_not_reachable_through_the_gateway(stack):
    status, _, body = status_of(stack, f"{stack.origin('alpha')}/_medcell/status")
    assert status == 404
    assert "inflight" not in body


# Runs inside a facility container: tries every way out, and lists every socket it can see.
ESCAPE = """
import json, os, socket, stat, sys
outcomes = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        outcomes[f"{host}:{port}"] = "connected"
    except OSError as e:
        outcomes[f"{host}:{port}"] = type(e).__name__
sockets = []
for top, dirs, files in os.walk("/"):
    if top == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys")]
    for name in files:
        path = os.path.join(top, name)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                sockets.append(path)
        except OSError:
            pass
interfaces = sorted(os.listdir("/sys/class/net"))  # no netlink socket: its profile refuses one
print(json.dumps({"outcomes": outcomes, "sockets": sockets, "interfaces": interfaces}))
"""


def docker_inspect(name: str) -> dict:
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[0]


@pytest.mark.parametrize("slug", ["alpha", "beta"])
def test_facility_has_no_network_and_sees_only_its_own_socket(stack, slug):
    gateway = docker_inspect(stack.gateway)
    gateway_ips = [n["IPAddress"] for n in gateway["NetworkSettings"]["Networks"].values()]
    host_side = [n["Gateway"] for n in gateway["NetworkSettings"]["Networks"].values()]
    assert gateway_ips and all(gateway_ips)
    targets = [
        *[(ip, port) for ip in gateway_ips for port in (8443, 8080)],  # the gateway itself
        *[(ip, stack.https_port) for ip in host_side],  # the host's published port
        ("127.0.0.1", stack.https_port),
        (stack.gateway, 8443),  # by name: there is no resolver either
        (stack.container("beta" if slug == "alpha" else "alpha"), 8000),
    ]
    assert docker_inspect(stack.container(slug))["HostConfig"]["NetworkMode"] == "none"
    result = subprocess.run(
        ["docker", "exec", stack.container(slug), "python3", "-c", ESCAPE, json.dumps(targets)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["interfaces"] == ["lo"]
    assert "connected" not in seen["outcomes"].values(), seen["outcomes"]
    assert len(seen["outcomes"]) == len(targets)
    # No other facility's socket, no supervisor's wake socket, no Docker socket: only its own.
    assert seen["sockets"] == ["/run/medcell/app.sock"]


def test_stopped_facility_is_503_until_started_and_nothing_wakes_it(stack):
    url = f"{stack.origin('gamma')}/healthz"
    assert status_of(stack, url)[0] == 404
    stack.create("gamma")
    # create returns once the gateway serves the new route.
    assert status_of(stack, url)[0] == 200
    stack.medcell("facility", "stop", "gamma")
    assert status_of(stack, url)[0] == 503
    # Once the gateway has the stopped route: the operator's stop, so "come back much later".
    status, headers, body = eventually(
        lambda: status_of(stack, url), lambda seen: seen[1].get("Retry-After") == "30"
    )
    assert (status, headers.get("Retry-After")) == (503, "30")
    assert error_code(body) == "facility_unavailable"
    assert docker_inspect(stack.container("gamma"))["State"]["Running"] is False
    stack.medcell("facility", "start", "gamma")
    assert status_of(stack, url)[0] == 200
    stack.delete("gamma")
    status, _, body = eventually(lambda: status_of(stack, url), lambda seen: seen[0] == 404)
    assert status == 404 and error_code(body) == "not_found"
