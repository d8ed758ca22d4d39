"""`medcell cluster …` and `medcell node …`: forming a Docker Swarm cluster of facility hosts."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import click

from provisioner.host import cluster_ca
from provisioner.host.config import Config
from provisioner.host.errors import DockerError, InvalidArgument, ProvisionerError
from provisioner.host.placement import DRAIN_LABEL
from provisioner.host.swarm import ELECTION_SECONDS, SWARM_PORT, Swarm

_TOKEN_RE = re.compile(r"^SWMTKN-1-[0-9a-z]{20,100}-[0-9a-z]{20,100}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
# What every facility node's dockerd must run with (services cannot ask for either in API 1.41).
ENGINE_SETTINGS = {"bridge": "none", "no-new-privileges": True}
ENGINE_SETTINGS_TEXT = '"bridge": "none" and "no-new-privileges": true'
LABEL_WAIT_SECONDS = 15


class NotInCluster(ProvisionerError):
    """This host is not a manager of a cluster."""


class ClusterContext:
    """What the cluster commands need: the settings and this host's engine as a Swarm member."""

    def __init__(self, config: Config, swarm: Swarm):
        self.config = config
        self.swarm = swarm


def _context(ctx: click.Context) -> ClusterContext:
    runtime = ctx.find_root().obj
    swarm = getattr(runtime, "swarm", None) or Swarm(election_seconds=ELECTION_SECONDS)
    return ClusterContext(runtime.config, swarm)


def _json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(f)


def _emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


def check_address(text: str) -> str:
    """An IP address this host is reached at by the other nodes."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError as e:
        raise InvalidArgument(f"--advertise-addr {text!r} is not an IP address") from e


def check_manager(text: str) -> str:
    """HOST or HOST:PORT of a manager (the Swarm port 2377 by default)."""
    host, port = text.strip(), str(SWARM_PORT)
    if host.startswith("["):  # [v6]:port
        host, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else port
    elif host.count(":") == 1:
        host, port = host.split(":")
    valid_host = _HOSTNAME_RE.match(host) or _is_ip(host)
    if not valid_host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"manager address {text!r} is not HOST:PORT (e.g. 10.0.0.1:2377)")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_token(text: str) -> str:
    if not _TOKEN_RE.match(text.strip()):
        raise InvalidArgument(
            "--token is not a cluster join token (SWMTKN-1-…); `medcell cluster join-command` "
            "on a manager prints it"
        )
    return text.strip()


def require_facility_node(cluster: ClusterContext) -> None:
    """Refuse a host that lacks the images or the engine settings, or is in a cluster already."""
    image = cluster.config.facility_image
    if not cluster.swarm.has_image(image):
        raise InvalidArgument(
            f"image {image} is not on this host's Docker Engine; build it (make images) or "
            "load it (docker save | docker load) first"
        )
    hardening = cluster.swarm.hardening(image)
    missing = []
    if not hardening.bridge_none:
        devices = ", ".join(d for d in hardening.network_devices if d != "lo")
        missing.append(f'"bridge": "none" (a container here gets network devices: {devices})')
    if not hardening.no_new_privileges:
        missing.append('"no-new-privileges": true (a container here may gain privileges)')
    if missing:
        raise InvalidArgument(
            "this host's Docker Engine lacks what facility nodes need: set "
            + " and ".join(missing)
            + " in its daemon configuration (/etc/docker/daemon.json), restart dockerd, "
            "then run this again"
        )
    state = cluster.swarm.local_state()
    if state["state"] != "inactive":
        raise InvalidArgument(
            f"this host's Docker Engine is already in a cluster (Swarm state {state['state']}); "
            "`docker swarm leave` leaves it"
        )


def _require_manager(cluster: ClusterContext) -> dict:
    state = cluster.swarm.local_state()
    if state["state"] != "active" or not state["manager"]:
        raise NotInCluster(
            "this host is not a manager of a medcell cluster; run this on a manager "
            "(`medcell cluster init` makes the first one)"
        )
    return state


def _label_self(swarm: Swarm, node_id: str, name: str, cert: str) -> None:
    """Label this node with its name and its certificate's common name (how a manager's node
    API knows which node asks); a manager that just joined may need a moment before Raft takes
    writes."""
    deadline = time.monotonic() + LABEL_WAIT_SECONDS
    while True:
        try:
            swarm.label_node(node_id, name, cert)
            return
        except DockerError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@click.group(name="cluster")
def cluster_group() -> None:
    """Form a cluster of hosts (Docker Swarm): init, join-command, join."""


@cluster_group.command()
@click.option("--advertise-addr", help="The IP address the other hosts reach this one at.")
@_json_option
@click.pass_context
def init(ctx: click.Context, advertise_addr: str | None, as_json: bool) -> None:
    """Make this host the first manager of a new cluster, with the cluster's own CA."""
    address = check_address(advertise_addr) if advertise_addr else None
    cluster = _context(ctx)
    require_facility_node(cluster)
    home = cluster.config.home
    ca_cert = cluster_ca.create_ca(home)
    node_id = cluster.swarm.init(address)
    name = cluster.swarm.local_state()["name"]
    material = cluster_ca.issue(home, name)
    cluster_ca.install(home, material)
    _label_self(cluster.swarm, node_id, name, cluster_ca.common_name(material["cert"]))
    node = next(n for n in cluster.swarm.nodes() if n.id == node_id)
    # Last: the gateway and the supervisor become global services (one task on every node).
    stack = ctx.find_root().obj.stack.up()
    result = {
        "node": name,
        "node_id": node_id,
        "address": node.address,
        "ca": str(ca_cert),
        "gateway": stack["status"],
        "supervisor": stack["supervisor"],
    }
    _emit(
        result,
        as_json,
        f"cluster created: {name} ({node.address}) is its first manager\n"
        f"cluster CA: {ca_cert} (owner-only; keep it on this host)\n"
        f"gateway {stack['status']} and supervisor {stack['supervisor']} on every node\n"
        "next: `medcell cluster join-command` prints what to run on each new host",
    )


@cluster_group.command(name="join-command")
@_json_option
@click.pass_context
def join_command(ctx: click.Context, as_json: bool) -> None:
    """Print what to run on a new host, with a one-use certificate bundle for it."""
    cluster = _context(ctx)
    _require_manager(cluster)
    home = cluster.config.home
    token, manager = cluster.swarm.manager_join()
    bundle = cluster_ca.write_bundle(home, cluster_ca.issue(home, f"medcell-node-{time.time_ns()}"))
    command = f"medcell cluster join --token {token} --bundle {bundle.name} {manager}"
    result = {
        "token": token,
        "manager": manager,
        "bundle": str(bundle),
        "command": command,
        "engine_settings": ENGINE_SETTINGS,
    }
    _emit(
        result,
        as_json,
        "On the new host:\n"
        f"  1. its Docker Engine runs with {ENGINE_SETTINGS_TEXT} in its daemon configuration\n"
        "     (/etc/docker/daemon.json) and has the medcell images loaded;\n"
        f"  2. copy {bundle} to it, owner-only (it holds the host's\n"
        "     certificate and private key; delete it here once copied; join deletes it there);\n"
        f"  3. run in the folder you copied it to:\n     {command}",
    )


@cluster_group.command()
@click.argument("manager")
@click.option("--token", required=True, help="The join token `cluster join-command` printed.")
@click.option(
    "--bundle",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The certificate bundle file `cluster join-command` wrote (deleted after joining).",
)
@click.option("--advertise-addr", help="The IP address the other hosts reach this one at.")
@_json_option
@click.pass_context
def join(
    ctx: click.Context,
    manager: str,
    token: str,
    bundle: Path,
    advertise_addr: str | None,
    as_json: bool,
) -> None:
    """Join this host to a cluster through MANAGER (HOST:PORT); refused unless its engine has
    the settings facility nodes need."""
    manager = check_manager(manager)
    token = check_token(token)
    address = check_address(advertise_addr) if advertise_addr else None
    material = cluster_ca.read_bundle(bundle)
    cluster = _context(ctx)
    require_facility_node(cluster)
    node_id = cluster.swarm.join(manager, token, address)
    directory = cluster_ca.install(cluster.config.home, material)
    bundle.unlink(missing_ok=True)
    name = cluster.swarm.local_state()["name"]
    _label_self(cluster.swarm, node_id, name, cluster_ca.common_name(material["cert"]))
    # The stack's global services start a task here as soon as its folders exist.
    ctx.find_root().obj.stack.prepare_node()
    result = {"node": name, "node_id": node_id, "manager": manager, "tls": str(directory)}
    _emit(result, as_json, f"{name} joined the cluster through {manager}")


@click.group(name="node")
def node_group() -> None:
    """The cluster's hosts."""


@node_group.command(name="list")
@_json_option
@click.pass_context
def list_nodes(ctx: click.Context, as_json: bool) -> None:
    """List the cluster's nodes: address, state, availability, facilities, awake, memory."""
    cluster = _context(ctx)
    _require_manager(cluster)
    services = cluster.swarm.facility_services()
    rows = [
        {
            "node": n.name,
            "address": n.address,
            "state": n.state,
            # A node drained by `medcell node drain` (a label; Swarm keeps it active).
            "availability": "drained" if n.labels.get(DRAIN_LABEL) else n.availability,
            "facilities": sum(1 for s in services if s.node == n.name),
            "awake": sum(1 for s in services if s.node == n.name and s.replicas > 0),
            "memory": n.memory,
        }
        for n in cluster.swarm.nodes()
    ]
    width = max([len(r["node"]) for r in rows] + [4])
    lines = [
        f"{'NODE':<{width}}  {'ADDRESS':<15}  STATE    AVAILABILITY  FACILITIES  AWAKE  MEMORY"
    ]
    lines += [
        f"{r['node']:<{width}}  {r['address']:<15}  {r['state']:<7}  {r['availability']:<12}  "
        f"{r['facilities']:>10}  {r['awake']:>5}  {r['memory'] / 2**30:.1f} GiB"
        for r in rows
    ]
    _emit(rows, as_json, "\n".join(lines))
