"""The node API over real mutual TLS on loopback, with the fake engine where Docker is called."""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time

import pytest

from devsupport import eventually, free_port
from medcell_common.interfaces import CLUSTER_PEER_NAME, ROUTES_VERSION, RouteState
from provisioner.host import cluster_ca, routes, specs, state_file
from provisioner.host.config import Config
from provisioner.host.docker_backend import ContainerSpec, DockerBackend
from provisioner.host.errors import (
    FacilityCommandFailed,
    FacilityNotFound,
    InvalidArgument,
    NodeError,
    NodeRefused,
    NodeUnreachable,
    StaleRoutes,
)
from provisioner.host.node_api import MAX_BODY_BYTES, NodeClient, client_context
from provisioner.supervisor import node_api
from provisioner.supervisor.node_api import NodeServer, NodeService
from tests.provisioner.fakedocker import api_error

GIB = 1024**3
META = {"name": "Praxis Nord", "retention": "7d", "created": "2026-12-05T13:00:00.000Z"}


def _node_material(home):
    cluster_ca.create_ca(home)
    return cluster_ca.install(home, cluster_ca.issue(home, "node1"))


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    """A node's cluster material: the CA's certificate, its own certificate and key."""
    return _node_material(tmp_path_factory.mktemp("node1"))


@pytest.fixture(scope="module")
def foreign_tls_dir(tmp_path_factory):
    """A node of another cluster: its own CA, its own certificate (same peer name)."""
    return _node_material(tmp_path_factory.mktemp("elsewhere"))


@pytest.fixture
def engine(fake):
    fake.info = lambda: {"Name": "node1", "MemTotal": 8 * GIB}
    fake.exec_handler = _with_receipts(fake)
    return DockerBackend(fake)


def _with_receipts(fake):
    """The fake facility app, plus what a wipe and the receipt commands print."""
    app = fake.facility_app

    def handler(container, cmd):
        command = cmd[3] if len(cmd) > 3 else ""
        if command == "wipe":
            return 0, json.dumps({"receipt": {"receipt_id": "r1"}, "receipt_key": "k"}), ""
        if command == "receipts":
            return 0, json.dumps({"receipts": [], "receipt_key": "k"}), ""
        return app(container, cmd)

    return handler


@pytest.fixture
def server(config, engine, tls_dir):
    server = NodeServer(("127.0.0.1", 0), tls_dir, NodeService(config, engine), read_seconds=1.0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(server, tls_dir):
    return NodeClient(f"127.0.0.1:{server.port}", tls_dir, timeout=10)


def _task_container(config, engine, slug, running=True):
    """A facility container as Swarm names its task: found by labels, not by name."""
    facility = config.facility(slug)
    spec = specs.facility_spec(config, facility, slug, "7d")
    engine.create_container(ContainerSpec(**{**spec.__dict__, "name": f"{facility.container}.1.x"}))
    if running:
        engine.start(f"{facility.container}.1.x")
    return f"{facility.container}.1.x"


def _raw(port, tls_dir, request: bytes) -> tuple[int, dict]:
    """One raw HTTPS exchange as a cluster peer: (status, JSON body)."""
    context = client_context(tls_dir)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=CLUSTER_PEER_NAME) as tls:
            tls.sendall(request)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _put(path: str, body: bytes) -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# info and prepare


def test_info_names_the_node_its_facilities_and_how_many_are_awake(client, config, engine):
    client.prepare("nord", META)
    client.prepare("sued", META)
    _task_container(config, engine, "nord")
    assert client.info() == {
        "node": "node1",
        "facilities": ["nord", "sued"],
        "awake": 1,
        "memory": 8 * GIB,
    }


def test_prepare_makes_volumes_socket_directory_and_state_as_create_does(client, config, fake):
    answer = client.prepare("nord", {**META, "idle": "30m"})
    facility = config.facility("nord")
    assert answer == {"slug": "nord", "created": [facility.data_volume, facility.keys_volume]}
    data = fake.volumes_by_name[facility.data_volume].attrs["Labels"]
    assert data == config.labels(
        facility="nord", role="data", name="Praxis Nord", retention="7d",
        created=META["created"], idle="1800s",
    )  # fmt: skip
    keys = fake.volumes_by_name[facility.keys_volume].attrs["Labels"]
    assert keys == config.labels(facility="nord", role="keys")
    assert facility.socket_dir.is_dir()
    assert state_file.load(config, "nord").idle == 1800


def test_prepare_again_changes_nothing(client, config, fake):
    client.prepare("nord", META)
    before = {name: v.attrs["Labels"] for name, v in fake.volumes_by_name.items()}
    assert client.prepare("nord", {**META, "name": "Other"}) == {"slug": "nord", "created": []}
    assert {name: v.attrs["Labels"] for name, v in fake.volumes_by_name.items()} == before


@pytest.mark.parametrize(
    "labels",
    [
        {"name": "x"},  # no retention
        {**META, "retention": "30d"},
        {**META, "role": "keys"},
        {**META, "created": "yesterday"},
        {**META, "name": 7},
    ],
)
def test_prepare_refuses_bad_labels_and_makes_nothing(client, fake, labels):
    with pytest.raises(InvalidArgument):
        client.prepare("nord", labels)
    assert not fake.volumes_by_name


# manage


def test_manage_runs_the_command_in_the_facility_task_container(client, config, engine, fake):
    client.prepare("nord", META)
    task = _task_container(config, engine, "nord")
    result = client.manage("nord", "set-quota", "--facility", "5GiB")
    assert result["quota"] == "5GiB"
    assert fake.execs[-1] == (task, [*specs.MANAGE, "set-quota", "--facility", "5GiB"])
    admin = client.manage("nord", "create-admin", "--username", "chef")
    assert admin["username"] == "chef" and admin["password"] in fake.passwords


@pytest.mark.parametrize("command", [["wipe"], ["shred-keys"], ["backup", "--id", "1"], ["sh"]])
def test_a_command_outside_the_whitelist_is_refused(client, config, engine, fake, command):
    client.prepare("nord", META)
    _task_container(config, engine, "nord")
    with pytest.raises(InvalidArgument, match="a node runs only"):
        client.manage("nord", *command)
    assert fake.execs == []


@pytest.mark.parametrize(
    "command",
    [
        ["create-admin", "--username", "-rf"],
        ["create-admin", "--username", "a b"],
        ["set-quota"],
        ["set-quota", "--facility", "lots"],
        ["usage", "--verbose", "1"],
        ["receipts", "--limit", "0"],
    ],
)
def test_whitelisted_commands_take_only_their_own_arguments(client, config, engine, fake, command):
    client.prepare("nord", META)
    _task_container(config, engine, "nord")
    with pytest.raises(InvalidArgument):
        client.manage("nord", *command)
    assert fake.execs == []


def test_manage_of_an_unknown_facility_is_not_found(client):
    with pytest.raises(FacilityNotFound, match="no facility ghost"):
        client.manage("ghost", "usage")


def test_a_sleeping_facility_answers_reads_from_a_one_off_container_but_no_changes(
    client, config, engine
):
    client.prepare("nord", META)
    _task_container(config, engine, "nord", running=False)
    assert client.manage("nord", "receipts") == {"receipts": [], "receipt_key": "k"}
    with pytest.raises(FacilityCommandFailed, match="not running"):
        client.manage("nord", "rotate-key")


# destroy


def test_destroy_wipes_shreds_and_leaves_no_volume_or_socket_directory(
    client, config, engine, fake
):
    client.prepare("nord", META)
    task = _task_container(config, engine, "nord")
    facility = config.facility("nord")
    answer = client.destroy("nord")
    assert answer == {
        "slug": "nord",
        "shredded": 1,
        "receipt": {"receipt_id": "r1"},
        "receipt_key": "k",
    }
    assert fake.shredded == [facility.keys_volume]
    assert not fake.volumes_by_name and task not in fake.containers_by_name
    assert not facility.socket_dir.exists()
    assert not state_file.state_path(config, "nord").exists()
    with pytest.raises(FacilityNotFound):
        client.destroy("nord")


def test_a_facility_that_gives_no_wipe_receipt_is_destroyed_all_the_same(
    client, config, engine, fake
):
    client.prepare("nord", META)
    _task_container(config, engine, "nord")
    handler = fake.exec_handler
    fake.exec_handler = lambda c, cmd: (
        (1, "", "Error: database is damaged") if cmd[3:4] == ["wipe"] else handler(c, cmd)
    )
    answer = client.destroy("nord")
    assert (answer["receipt"], answer["shredded"]) == (None, 1)
    assert not fake.volumes_by_name


def test_keys_that_cannot_be_shredded_stop_the_destruction_before_anything_goes(
    client, config, engine, fake
):
    client.prepare("nord", META)
    _task_container(config, engine, "nord")
    handler = fake.exec_handler
    fake.exec_handler = lambda c, cmd: (
        (1, "", "Error: disk") if cmd[3:4] == ["shred-keys"] else handler(c, cmd)
    )
    with pytest.raises(FacilityCommandFailed, match="keys not destroyed"):
        client.destroy("nord")
    assert set(fake.volumes_by_name) == {
        config.facility("nord").data_volume,
        config.facility("nord").keys_volume,
    }
    assert config.facility("nord").socket_dir.is_dir()


def test_destroy_of_an_unknown_facility_is_not_found(client):
    with pytest.raises(FacilityNotFound):
        client.destroy("ghost")


# routes


def _routes(config) -> dict:
    return json.loads(routes.routes_path(config).read_text())


def test_pushed_routes_make_other_nodes_facilities_remote_and_keep_local_states(client, config):
    routes.set_route(config, "nord", RouteState.ASLEEP)
    cluster = {
        "nord": {"node": "node1", "address": "10.0.0.1"},
        "sued": {"node": "node3", "address": "10.0.0.3"},
    }
    client.push_routes(5, cluster)
    document = _routes(config)
    assert document["version"] == ROUTES_VERSION
    assert document["facilities"] == {
        "nord": {"state": "asleep"},
        "sued": {"state": "remote", "node": "node3", "address": "10.0.0.3"},
    }
    # The supervisor changes its own facility's route: the remote one stays.
    routes.set_route(config, "nord", RouteState.RUNNING)
    assert _routes(config)["facilities"]["sued"]["state"] == "remote"
    assert _routes(config)["generation"] > document["generation"]


def test_an_older_routes_map_is_refused_and_changes_nothing(client, config):
    client.push_routes(5, {"sued": {"node": "node3", "address": "10.0.0.3"}})
    before = _routes(config)
    with pytest.raises(StaleRoutes, match="not newer"):
        client.push_routes(4, {"sued": {"node": "node2", "address": "10.0.0.2"}})
    with pytest.raises(StaleRoutes):
        client.push_routes(5, {"sued": {"node": "node2", "address": "10.0.0.2"}})
    assert _routes(config) == before
    client.push_routes(5, {"sued": {"node": "node3", "address": "10.0.0.3"}})  # the same again
    assert _routes(config) == before


@pytest.mark.parametrize(
    "facilities",
    [
        {"Bad_Slug": {"node": "node3", "address": "10.0.0.3"}},
        {"supervisor": {"node": "node3", "address": "10.0.0.3"}},
        {"sued": {"node": "node3", "address": "10.0.0.256"}},
        {"sued": {"node": "node3", "address": "010.0.0.3"}},
        {"sued": {"node": "node3", "address": "::1"}},
        {"sued": {"node": "node 3", "address": "10.0.0.3"}},
        {"sued": {"node": "node3", "address": "10.0.0.3", "port": 1}},
        {"sued": ["node3", "10.0.0.3"]},
    ],
)
def test_a_routes_map_with_a_bad_field_is_refused_whole(client, config, facilities):
    with pytest.raises(InvalidArgument):
        client.push_routes(1, facilities)
    assert not routes.routes_path(config).exists()
    assert routes.read_cluster_map(config) is None


# bad requests on the wire


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /v1/facilities/nord HTTP/1.1\r\nHost: n\r\n\r\n", 405, "method_not_allowed"),
        (b"DELETE /v1/facilities/Bad_Slug HTTP/1.1\r\nHost: n\r\n\r\n", 400, "invalid"),
        (b"DELETE /v1/facilities/.. HTTP/1.1\r\nHost: n\r\n\r\n", 400, "invalid"),
        (b"GET /v1/nodes HTTP/1.1\r\nHost: n\r\n\r\n", 404, "not_found"),
        (b"this is not http\r\n\r\n", 400, "invalid"),
        (b"BREW /v1/node HTTP/1.1\r\nHost: n\r\n\r\n", 501, "method_not_allowed"),
        (b"GET /v1/node HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431, "too_large"),
        (b"GET /v1/node?x=1 HTTP/1.1\r\nHost: n\r\n\r\n", 404, "not_found"),
        (b"POST /v1/node HTTP/1.1\r\nHost: n\r\nContent-Length: 2\r\n\r\n{}", 405, None),
        (_put("/v1/routes", b"{generation: 1}"), 400, "invalid"),
        (_put("/v1/routes", b'{"generation": NaN, "facilities": {}}'), 400, "invalid"),
        (_put("/v1/routes", b'{"generation": true, "facilities": {}}'), 400, "invalid"),
        (_put("/v1/routes", b"[]"), 400, "invalid"),
        (
            b"PUT /v1/routes HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            411,
            "length_required",
        ),
    ],
)
def test_bad_requests_get_a_clear_json_error(server, tls_dir, request_bytes, status, code):
    got_status, body = _raw(server.port, tls_dir, request_bytes)
    assert got_status == status
    assert set(body) == {"error"} and body["error"]["message"]
    assert code is None or body["error"]["code"] == code


def test_an_oversize_body_is_refused_unread(server, tls_dir, config):
    request = (
        f"PUT /v1/routes HTTP/1.1\r\nHost: n\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    status, body = _raw(server.port, tls_dir, request)
    assert (status, body["error"]["code"]) == (413, "too_large")
    assert not routes.routes_path(config).exists()


# who may talk to a node


def _handshake_refused(port, context) -> bool:
    """Whether the node ends the connection instead of answering this client."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=CLUSTER_PEER_NAME) as tls:
                tls.sendall(b"GET /v1/node HTTP/1.1\r\nHost: n\r\n\r\n")
                return tls.recv(65536) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def test_a_client_without_a_certificate_is_refused(server, tls_dir):
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    assert _handshake_refused(server.port, context)


def test_a_client_with_a_certificate_of_another_ca_is_refused(server, tls_dir, foreign_tls_dir):
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    context.load_cert_chain(str(foreign_tls_dir / "node.crt"), str(foreign_tls_dir / "node.key"))
    assert _handshake_refused(server.port, context)
    with pytest.raises(NodeRefused):
        NodeClient(f"127.0.0.1:{server.port}", foreign_tls_dir, timeout=10).info()


def test_the_client_refuses_a_node_of_another_cluster(config, engine, foreign_tls_dir, tls_dir):
    stranger = NodeServer(("127.0.0.1", 0), foreign_tls_dir, NodeService(config, engine))
    threading.Thread(target=stranger.serve_forever, daemon=True).start()
    try:
        with pytest.raises(NodeRefused, match="not of this cluster"):
            NodeClient(f"127.0.0.1:{stranger.port}", tls_dir, timeout=10).info()
    finally:
        stranger.shutdown()
        stranger.server_close()


def test_an_error_of_the_nodes_engine_comes_back_with_its_code(client, fake):
    def broken():
        raise api_error(500, "engine broke")

    fake.info = broken
    with pytest.raises(NodeError, match="engine broke") as raised:
        client.info()
    assert (raised.value.code, raised.value.status) == ("docker_error", 503)


def test_a_node_nobody_answers_for_is_unreachable(tls_dir):
    with pytest.raises(NodeUnreachable, match="does not answer"):
        NodeClient(f"127.0.0.1:{free_port()}", tls_dir, timeout=5).info()


def test_a_client_without_cluster_certificates_says_so(tmp_path):
    with pytest.raises(NodeError, match="cluster join"):
        NodeClient("127.0.0.1", tmp_path / "none")


# bounded


def test_a_slow_client_does_not_hold_up_another_and_is_dropped(server, client):
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    slow.sendall(b"\x16\x03\x01")  # the start of a TLS record, and then nothing
    try:
        assert client.info()["node"] == "node1"
        slow.settimeout(10)
        assert eventually(lambda: slow.recv(1), lambda data: data == b"", timeout=10) == b""
    finally:
        slow.close()


def test_more_connections_than_it_serves_are_closed_at_once(config, engine, tls_dir):
    server = NodeServer(
        ("127.0.0.1", 0), tls_dir, NodeService(config, engine), workers=1, max_pending=1
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    held = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        eventually(lambda: server.pending, lambda n: n == 1)
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        assert extra.recv(1) == b""
        extra.close()
    finally:
        held.close()
        server.shutdown()
        server.server_close()


# the supervisor starts it only on a cluster node


def test_the_supervisor_serves_the_node_api_only_with_cluster_certificates(tmp_path, engine):
    port = free_port()
    config = Config(
        home=tmp_path / "home", facility_uid=os.getuid(), node_api_bind=("127.0.0.1", port)
    )
    assert node_api.start(config, engine) is None
    tls_dir = _node_material(config.home)
    server = node_api.start(config, engine)
    try:
        assert server is not None and server.port == port
        assert NodeClient(f"127.0.0.1:{port}", tls_dir, timeout=10).info()["node"] == "node1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_node_that_trickles_its_answer_is_given_up_on(tls_dir):
    """A peer with a valid certificate that sends one header a byte at a time, forever."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls_dir / "node.crt"), str(tls_dir / "node.key"))
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle():
        connection, _ = listener.accept()
        with context.wrap_socket(connection, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nX: ")
            while not stop.wait(0.1):
                tls.sendall(b"y")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        client = NodeClient(f"127.0.0.1:{listener.getsockname()[1]}", tls_dir, timeout=1)
        with pytest.raises(NodeUnreachable):
            client.info()
    finally:
        stop.set()
        listener.close()


def test_a_node_api_that_cannot_listen_leaves_the_supervisor_running(tmp_path, engine, caplog):
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        config = Config(
            home=tmp_path / "home",
            facility_uid=os.getuid(),
            node_api_bind=("127.0.0.1", taken.getsockname()[1]),
        )
        _node_material(config.home)
        assert node_api.start(config, engine) is None
    finally:
        taken.close()
    assert [r.fields.get("error") for r in caplog.records if r.msg == "node_api_failed"] == [
        "OSError"
    ]


class _GatewayEngine:
    """The supervisor's engine as the routes push sees it: whether a gateway runs here."""

    def __init__(self, running: bool):
        self.running = running

    def gateway_running(self) -> bool:
        return self.running


def test_a_routes_push_is_answered_once_this_nodes_gateway_serves_the_map(config, engine, tls_dir):
    """A manager's `create` must not report a facility ready while another node's gateway still
    answers 404 for it: the node answers the push once its gateway applied the new routes."""
    service = NodeService(config, engine, _GatewayEngine(running=True))
    service.apply_timeout = 10.0
    server = NodeServer(("127.0.0.1", 0), tls_dir, service, read_seconds=1.0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    config.gateway_run_dir.mkdir(parents=True, exist_ok=True)
    applied = config.gateway_run_dir / "applied.json"
    cluster = {"sued": {"node": "node3", "address": "10.0.0.3"}}

    def gateway_applies():
        # The gateway's reload, a moment after routes.json changed.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            document = routes.read_routes(config)
            if document and "sued" in document["facilities"]:
                applied.write_text(json.dumps({"generation": document["generation"]}))
                return
            time.sleep(0.01)

    try:
        gateway = threading.Thread(target=gateway_applies)
        gateway.start()
        answer = NodeClient(f"127.0.0.1:{server.port}", tls_dir, timeout=15).push_routes(5, cluster)
        gateway.join()
        assert answer["served"] is True
        assert json.loads(applied.read_text())["generation"] == answer["routes_generation"]

        # A gateway that does not apply the next map in time: the push is still taken, and
        # the answer says the gateway lags.
        service.apply_timeout = 0.2
        answer = NodeClient(f"127.0.0.1:{server.port}", tls_dir, timeout=15).push_routes(
            6, {**cluster, "west": {"node": "node2", "address": "10.0.0.2"}}
        )
        assert answer["served"] is False
        assert "west" in _routes(config)["facilities"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_routes_push_to_a_node_without_a_running_gateway_is_not_held(client, config):
    # The fixture's service has no engine to ask; a node whose gateway does not run reads the
    # whole map when its gateway starts, so nothing waits.
    answer = client.push_routes(5, {"sued": {"node": "node3", "address": "10.0.0.3"}})
    assert answer["served"] is True
