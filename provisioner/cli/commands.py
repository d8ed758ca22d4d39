"""The `medcell` command line: a thin layer over the facilities, stack and backups modules."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from provisioner.cli import receipts as receipts_offline
from provisioner.cli.backups import Backups
from provisioner.cli.cluster import cluster_group, node_group
from provisioner.cli.cluster_moves import ClusterMoves
from provisioner.cli.facilities import DEFAULT_RETENTION, Facilities
from provisioner.cli.stack import Stack
from provisioner.host import locks
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import InvalidArgument, ProvisionerError


class Runtime:
    """What every command needs, built once per invocation (tests pass their own)."""

    def __init__(self, config: Config, backend: DockerBackend, stack_options: dict | None = None):
        self.config = config
        self.backend = backend
        self.facilities = Facilities(config, backend, progress=_progress)
        self.stack = Stack(self.facilities, **(stack_options or {}))
        self.backups = Backups(self.facilities)

    @classmethod
    def from_env(cls) -> Runtime:
        return cls(Config.from_env(), DockerBackend())


class MedcellGroup(click.Group):
    """Turns every provisioner error into one `Error: …` line and a non-zero exit, in one place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ProvisionerError as e:
            raise click.ClickException(" ".join(str(e).split())) from e


def _progress(message: str) -> None:
    click.echo(message, err=True)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(f)


def _emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


pass_runtime = click.make_pass_decorator(Runtime)


@click.group(cls=MedcellGroup)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run medcell: one isolated container per facility, behind one HTTPS gateway."""
    locks.set_holder(f"medcell {ctx.invoked_subcommand}")
    if ctx.obj is None:
        ctx.obj = Runtime.from_env()


@cli.command()
@click.option(
    "--refresh",
    is_flag=True,
    help="Rebuild every image from current Debian packages (security updates) and the locked "
    "wheels, then upgrade the gateway, the supervisor and every facility, one at a time.",
)
@json_option
@pass_runtime
def up(runtime: Runtime, refresh: bool, as_json: bool) -> None:
    """Build missing images, start (or keep) the gateway, repair what is missing."""
    result = runtime.stack.up(refresh=refresh)
    lines = list(result["repaired"])
    lines += [
        f"rebuilt {image} on Debian packages of {image_info['base_built'] or 'unknown date'}"
        for image, image_info in result.get("refreshed", {}).items()
    ]
    _emit(result, as_json, "\n".join([*lines, f"gateway {result['status']}: {result['url']}"]))


@cli.command()
@json_option
@pass_runtime
def down(runtime: Runtime, as_json: bool) -> None:
    """Stop the gateway; facilities, the supervisor and all data keep running untouched."""
    result = runtime.stack.down()
    _emit(result, as_json, f"gateway {'stopped' if result['removed'] else 'was not running'}")


@cli.command()
@json_option
@pass_runtime
def status(runtime: Runtime, as_json: bool) -> None:
    """The installation at a glance: gateway, supervisor, facilities, awake of the cap, next
    deletion deadline."""
    result = runtime.stack.overview()
    counts = result["facilities"]
    lines = [
        f"gateway:    {result['gateway']}{_on_nodes(result.get('gateway_nodes'))}",
        f"supervisor: {result['supervisor']}{_on_nodes(result.get('supervisor_nodes'))}",
        "facilities: " + ", ".join(f"{counts[k]} {k}" for k in counts if k != "total"),
        f"awake:      {result['awake']} of at most {result['max_awake']}",
    ]
    lines += [
        f"  unhealthy: {u['slug']} ({u['error'] or 'not answering'})" for u in result["unhealthy"]
    ]
    if "facility_nodes" in result:
        by_node: dict[str, list[str]] = {}
        for slug, node in result["facility_nodes"].items():
            by_node.setdefault(node or "?", []).append(slug)
        lines.append(
            "on nodes:   "
            + ("; ".join(f"{n}: {', '.join(s)}" for n, s in sorted(by_node.items())) or "none")
        )
    deadline = result["next_deadline"]
    lines.append(
        f"next deadline: {deadline} ({result['next_deadline_facility']})"
        if deadline
        else "next deadline: none"
    )
    lines.append(f"images:     Debian packages of {result['base_built'] or 'unknown date'}")
    _emit(result, as_json, "\n".join(lines))


def _on_nodes(nodes: dict[str, str] | None) -> str:
    """In cluster mode, each node's task of a stack service: ` (node1 running, node2 …)`."""
    if nodes is None:
        return ""
    return " (" + (", ".join(f"{node} {state}" for node, state in nodes.items()) or "no task") + ")"


@cli.group(cls=MedcellGroup)
@click.pass_context
def facility(ctx: click.Context) -> None:
    """Create, inspect, stop, start and delete facilities."""
    # Named in the error of another command that waits too long for the same facility.
    locks.set_holder(f"medcell facility {ctx.invoked_subcommand}")


@facility.command()
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
@click.option(
    "--retention",
    default=DEFAULT_RETENTION,
    show_default=True,
    help="How long a conversation lives after its last activity (at most 7d).",
)
@click.option(
    "--idle",
    metavar="DURATION|never",
    help="Sleep after this long without a request (default: MEDCELL_IDLE_TIMEOUT, 15m).",
)
@click.option("--quota", metavar="SIZE", help="Storage quota, e.g. 500MiB or 2GiB (default 2GiB).")
@click.option(
    "--conversation-quota", metavar="SIZE", help="Quota of each conversation (default 200MiB)."
)
@click.option(
    "--node",
    metavar="NODE",
    help="Cluster mode: the node to put it on (default: the ready, active one with most room).",
)
@json_option
@pass_runtime
def create(
    runtime: Runtime,
    slug: str,
    name: str | None,
    retention: str,
    idle: str | None,
    quota: str | None,
    conversation_quota: str | None,
    node: str | None,
    as_json: bool,
) -> None:
    """Create a facility and print its first admin's one-time password."""
    result = runtime.facilities.create(
        slug,
        name=name,
        retention=retention,
        idle=idle,
        quota=quota,
        conversation_quota=conversation_quota,
        node=node,
    )
    where = f" (on {result['node']})" if "node" in result else ""
    _emit(
        result,
        as_json,
        f"facility {slug} is ready at {result['url']}{where}\n"
        f"admin user:     {result['admin_user']}\n"
        f"admin password: {result['admin_password']}\n"
        "The password is shown only this once; medcell does not keep it.",
    )


@facility.command(name="list")
@json_option
@pass_runtime
def list_(runtime: Runtime, as_json: bool) -> None:
    """List facilities with their status (running, asleep, stopped or unhealthy)."""
    rows = runtime.facilities.list()
    width = max([len(r["slug"]) for r in rows] + [4])
    if runtime.facilities.cluster.active():
        nodes = max([len(r["node"] or "") for r in rows] + [4])
        lines = [f"{'SLUG':<{width}}  {'STATUS':<9}  {'NODE':<{nodes}}  NAME"]
        lines += [
            f"{r['slug']:<{width}}  {r['status']:<9}  {r['node'] or '':<{nodes}}  {r['name']}"
            for r in rows
        ]
    else:
        lines = [f"{'SLUG':<{width}}  {'STATUS':<9}  NAME"]
        lines += [f"{r['slug']:<{width}}  {r['status']:<9}  {r['name']}" for r in rows]
    _emit(rows, as_json, "\n".join(lines) if rows else "no facilities")


@facility.command()
@click.argument("slug")
@json_option
@pass_runtime
def show(runtime: Runtime, slug: str, as_json: bool) -> None:
    """Show a facility's status, retention, quota and usage, creation time, container, volumes."""
    details = runtime.facilities.show(slug)
    width = max(len(k) for k in details)
    _emit(details, as_json, "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in details.items()))


@facility.command()
@click.argument("slug")
@json_option
@pass_runtime
def stop(runtime: Runtime, slug: str, as_json: bool) -> None:
    """Stop a facility's container; its data is kept."""
    result = runtime.facilities.stop(slug)
    _emit(result, as_json, f"facility {slug} is {result['status']}")


@facility.command()
@click.argument("slug")
@json_option
@pass_runtime
def start(runtime: Runtime, slug: str, as_json: bool) -> None:
    """Start a facility's container (recreating it from its volumes if it was removed)."""
    result = runtime.facilities.start(slug)
    _emit(result, as_json, f"facility {slug} is {result['status']}")


@facility.command()
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Confirm: this destroys all of the facility's data.")
@json_option
@pass_runtime
def delete(runtime: Runtime, slug: str, yes: bool, as_json: bool) -> None:
    """Destroy a facility's keys, container, data and network. Irreversible."""
    if not yes:
        raise ProvisionerError(f"deleting {slug} destroys all of its data for good; add --yes")
    result = runtime.facilities.delete(slug)
    where = f" from {result['node']}" if "node" in result else ""
    text = f"facility {slug} deleted{where} ({result['keys_destroyed']} keys destroyed)"
    if result.get("receipt"):
        text += (
            f"\nwipe receipt {result['receipt']['receipt_id']}; use --json to keep it "
            "with its receipt key"
        )
    _emit(result, as_json, text)


@facility.command(name="rotate-key")
@click.argument("slug")
@json_option
@pass_runtime
def rotate_key(runtime: Runtime, slug: str, as_json: bool) -> None:
    """Make a new key version for a facility; old data stays readable."""
    result = runtime.facilities.rotate_key(slug)
    _emit(result, as_json, f"facility {slug}: key version {result.get('version')} is now in use")


@facility.command(name="set-quota")
@click.argument("slug")
@click.argument("size", required=False)
@click.option("--conversation", metavar="SIZE", help="Also set each conversation's quota.")
@json_option
@pass_runtime
def set_quota(
    runtime: Runtime, slug: str, size: str | None, conversation: str | None, as_json: bool
) -> None:
    """Set a facility's storage quota (SIZE like 500MiB, 2GiB); admins cannot raise it."""
    result = runtime.facilities.set_quota(slug, size, conversation)
    _emit(
        result,
        as_json,
        f"facility {slug}: quota {result['quota']}, each conversation "
        f"{result['conversation_quota']}, {result['used_percent']} % in use",
    )


@facility.command(name="sleep")
@click.argument("slug")
@json_option
@pass_runtime
def sleep_(runtime: Runtime, slug: str, as_json: bool) -> None:
    """Put a facility to sleep now (no process, no memory); waits up to 30 s for running work."""
    result = runtime.facilities.put_to_sleep(slug)
    _emit(result, as_json, f"facility {slug} is {result['status']}")


@facility.command()
@click.argument("slug")
@json_option
@pass_runtime
def wake(runtime: Runtime, slug: str, as_json: bool) -> None:
    """Wake an asleep facility now (it also wakes by itself on its first request)."""
    result = runtime.facilities.wake(slug)
    _emit(result, as_json, f"facility {slug} is {result['status']}")


@facility.command()
@click.argument("slug")
@json_option
@pass_runtime
def receipts(runtime: Runtime, slug: str, as_json: bool) -> None:
    """List a facility's signed deletion receipts (newest first) and its receipt key."""
    result = runtime.facilities.receipts(slug)
    lines = [f"{'DELETED AT':<20}  {'REASON':<13}  MSGS  FILES  VERIFIED  RECEIPT"]
    lines += [
        f"{r['deleted_at']:<20}  {r['reason']:<13}  {r['counts']['messages']:>4}  "
        f"{r['counts']['attachments']:>5}  {'yes' if r['verified'] else 'NO':<8}  {r['receipt_id']}"
        for r in result["receipts"]
    ]
    if not result["receipts"]:
        lines = [f"facility {slug} has no deletion receipts"]
    lines.append(f"receipt key (Ed25519): {result['receipt_key']['public_key']}")
    _emit(result, as_json, "\n".join(lines))


@cli.group(cls=MedcellGroup)
def receipt() -> None:
    """Check deletion receipts offline."""


@receipt.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='The receipt key: {"algorithm", "public_key"} as GET /api/v1/receipt-key serves it.',
)
@click.option("--facility", "slug", help="Ask this facility for its receipt key instead.")
@json_option
@pass_runtime
def verify(
    runtime: Runtime, file: Path, key_file: Path | None, slug: str | None, as_json: bool
) -> None:
    """Check a receipt's signature offline; fails if anything in it was changed."""
    if (key_file is None) == (slug is None):
        raise InvalidArgument("give the receipt key with exactly one of --key FILE or --facility")
    document = receipts_offline.load_receipt(file)
    key = receipts_offline.load_key(key_file) if key_file else runtime.facilities.receipt_key(slug)
    checked = receipts_offline.verify(document, key, facility=slug)
    if not checked["verified"]:
        click.echo(
            "Warning: the signature is valid, but the facility could not confirm that the "
            "deletion was complete (verified: false).",
            err=True,
        )
    result = {"valid": True, "receipt": checked}
    _emit(
        result,
        as_json,
        f"receipt {checked['receipt_id']} is valid: {checked['facility']}, "
        f"deleted {checked['deleted_at']} ({checked['reason']}), verified "
        f"{str(checked['verified']).lower()}",
    )


@facility.command()
@click.argument("slug")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@json_option
@pass_runtime
def backup(runtime: Runtime, slug: str, directory: Path, as_json: bool) -> None:
    """Write a sealed backup of a facility into DIRECTORY (new or empty).

    It opens only with its key, which stays in this installation and is destroyed when the
    backup expires (the facility's retention + 1 day). Keep DIRECTORY apart from MEDCELL_HOME.
    """
    if runtime.facilities.cluster.active():
        result = ClusterMoves(runtime.facilities).backup(slug, directory)
    else:
        result = runtime.backups.backup(slug, directory)
    _emit(
        result,
        as_json,
        f"backup {result['backup_id']} of {slug} written to {result['directory']}\n"
        f"expires: {result['expires']} (then it can never be restored)\n"
        f"its key: {result['key_file']} (keep it away from the backup)",
    )


@facility.command(name="backups")
@click.argument("slug", required=False)
@json_option
@pass_runtime
def backups_(runtime: Runtime, slug: str | None, as_json: bool) -> None:
    """List the backups (of one facility, or all) that can still be restored here."""
    rows = runtime.backups.kept(slug)
    lines = [f"{'BACKUP':<16}  {'FACILITY':<12}  {'CREATED':<20}  EXPIRES"]
    lines += [
        f"{r['backup_id']:<16}  {r['facility']:<12}  {r['created']:<20}  {r['expires']}"
        for r in rows
    ]
    _emit(rows, as_json, "\n".join(lines) if rows else "no backups can be restored")


@facility.command()
@click.argument("slug")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Confirm: replace the facility's current data.")
@json_option
@pass_runtime
def restore(runtime: Runtime, slug: str, directory: Path, yes: bool, as_json: bool) -> None:
    """Bring a facility back from a backup (recreating it if it was deleted).

    Whatever expired since the backup is deleted before the facility answers; sessions end.
    Over an existing facility this replaces all of its data, so it needs --yes.
    """
    if runtime.facilities.cluster.active():
        result = ClusterMoves(runtime.facilities).restore(slug, directory, replace=yes)
    else:
        result = runtime.backups.restore(slug, directory, replace=yes)
    _emit(
        result,
        as_json,
        f"facility {slug} restored from backup {result['backup_id']} of {result['created']}: "
        f"{result['conversations']} conversations, {result['expired']} expired since and "
        f"deleted; {result['status']}",
    )


@facility.command()
@click.argument("slug")
@click.option("--to", "to", required=True, metavar="NODE", help="The node to move it to.")
@json_option
@pass_runtime
def move(runtime: Runtime, slug: str, to: str, as_json: bool) -> None:
    """Cluster mode: move a facility to another node; its data on the old node is destroyed.

    Meanwhile it answers 503 with Retry-After; a failure leaves it serving from its old node.
    """
    result = _cluster_moves(runtime, "facility move").move(slug, to)
    _emit(
        result,
        as_json,
        f"facility {slug} moved from {result['from']} to {result['to']} in "
        f"{result['seconds']:g} s ({result['bytes'] / 2**20:.1f} MiB)",
    )


def _cluster_moves(runtime: Runtime, command: str) -> ClusterMoves:
    if not runtime.facilities.cluster.active():
        raise InvalidArgument(f"{command}: this host is not a manager of a cluster")
    return ClusterMoves(runtime.facilities)


@node_group.command()
@click.argument("node")
@json_option
@pass_runtime
def drain(runtime: Runtime, node: str, as_json: bool) -> None:
    """Move every facility off NODE, one at a time, and place no new one there.

    Its gateway and supervisor keep running (a node label, not Swarm's drain).
    """
    result = _cluster_moves(runtime, "node drain").drain(node)
    lines = [f"{m['slug']}: moved to {m['to']} in {m['seconds']:g} s" for m in result["moved"]]
    lines.append(f"node {node} is drained: it takes no new facilities (`node activate {node}`)")
    _emit(result, as_json, "\n".join(lines))


@node_group.command()
@click.argument("node")
@json_option
@pass_runtime
def activate(runtime: Runtime, node: str, as_json: bool) -> None:
    """Let a drained NODE take new facilities again."""
    result = _cluster_moves(runtime, "node activate").activate(node)
    _emit(result, as_json, f"node {node} takes new facilities again")


@node_group.command()
@click.argument("node")
@json_option
@pass_runtime
def evacuate(runtime: Runtime, node: str, as_json: bool) -> None:
    """A NODE lost for good: restore each of its facilities on the others from its newest
    backup (scheduled backups, MEDCELL_BACKUP_EVERY), saying how old each backup was."""
    result = _cluster_moves(runtime, "node evacuate").evacuate(node)
    lines = []
    for row in result["facilities"]:
        if row["restored"]:
            lines.append(
                f"{row['slug']}: restored on {row['to']} from backup {row['backup_id']} of "
                f"{row['backup_created']} ({_age(row['backup_age_seconds'])} old)"
            )
        else:
            lines.append(f"{row['slug']}: NOT restored: {row['reason']}")
    _emit(result, as_json, "\n".join(lines) or f"node {node} held no facility")
    if any(not row["restored"] for row in result["facilities"]):
        raise click.exceptions.Exit(1)


def _age(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


cli.add_command(cluster_group)
cli.add_command(node_group)


def main() -> None:
    """Entry point of the `medcell` console script."""
    cli(prog_name="medcell")
