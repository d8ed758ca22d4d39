"""Backups, restores, moves and drains of facilities in cluster mode, from any manager.

Everything that touches a facility's volumes runs on its own node's engine, asked through that
node's API (no exec or attach goes through Swarm): the node makes a sealed backup into a folder
of its own, hands the files out, takes them in, restores them over the stopped volumes. Backup
keys never leave the managers: each is kept on every manager (this one, and the others through
their node API) and destroyed at expiry by each manager's supervisor, as on one host.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path

from provisioner.cli.backups import FILES, KeyedBackups, _fresh_target, _make_dir
from provisioner.cli.cluster_facilities import ClusterFacilities
from provisioner.host import backup_keys, backup_transfer, placement, smtp, specs, tombstones
from provisioner.host.backup_keys import BackupKey
from provisioner.host.docker_backend import engine_errors
from provisioner.host.engine import SwarmEngine
from provisioner.host.errors import (
    BackupRefused,
    DockerError,
    InvalidArgument,
    ProvisionerError,
)
from provisioner.host.node_api import NodeClient
from provisioner.host.service_spec import STOP_GRACE_SECONDS, facility_service_spec
from provisioner.host.swarm import NODE_LABEL, NodeInfo, Swarm, pin_constraint
from provisioner.host.validation import check_slug

DRAIN_LABEL = placement.DRAIN_LABEL


class ClusterMoves(KeyedBackups):
    """Backup, restore and move of facilities over the nodes' APIs; drain and activate nodes.

    The tombstones are those kept on the managers (host/tombstones.py): read here, kept whole
    elsewhere."""

    @property
    def cluster(self) -> ClusterFacilities:
        return self.facilities.cluster

    @property
    def swarm(self) -> Swarm:
        return self.cluster.swarm

    # backup keys on every manager

    def keep_key(self, record: BackupKey) -> dict[str, str]:
        """Keep the key here and on every other ready manager; the managers that missed it."""
        backup_keys.save(self.config, record)
        fields = {**record.public(), "expires_at": record.expires_at}
        fields["key"] = backup_keys_text(record.key)
        missed = {}
        for node in self._other_managers():
            try:
                self.cluster.client(node).keep_key(fields)
            except ProvisionerError as e:
                missed[node.name] = str(e)
                self.progress(f"manager {node.name} did not take the backup key ({e})")
        return missed

    def destroy_key(self, backup_id: str) -> None:
        backup_keys.destroy(self.config, backup_id)
        for node in self._other_managers():
            try:
                self.cluster.client(node).destroy_key(backup_id)
            except ProvisionerError as e:
                self.progress(f"manager {node.name} kept backup key {backup_id} ({e})")

    def _other_managers(self) -> list[NodeInfo]:
        me = self.swarm.local_state().get("node_id")
        return [
            n
            for n in self.swarm.nodes()
            if n.manager and n.id != me and n.state == "ready" and n.address
        ]

    # backup and restore

    def backup(self, slug: str, directory: Path) -> dict:
        """A sealed backup of the facility, made on its node, copied into `directory` here."""
        with self.facilities.cluster_lock(check_slug(slug)):
            target = _fresh_target(Path(directory), self.config.home)
            node, _ = self.cluster.node_of(slug)
            client = self.cluster.client(node)
            backup_id, key = backup_keys.new_id(), backup_keys.new_key()
            self.progress(f"backing up {slug} on {node.name} ...")
            made_target = False
            try:
                made = client.backup(slug, backup_id, key)
                record = self._checked_record(slug, backup_id, made["manifest"], key)
                missed = self.keep_key(record)
                try:
                    made_target = _make_dir(target)
                    for name in FILES:
                        _download(client, backup_id, name, target / name)
                except (OSError, ProvisionerError) as e:
                    self.destroy_key(backup_id)
                    if made_target:
                        shutil.rmtree(target, ignore_errors=True)
                    else:
                        for name in FILES:
                            (target / name).unlink(missing_ok=True)
                    raise ProvisionerError(f"cannot write the backup into {target}: {e}") from e
            finally:
                _quietly(lambda: client.drop_backup(backup_id))
        return {
            **record.public(),
            "slug": slug,
            "node": node.name,
            "directory": str(target.absolute()),
            "key_file": str(backup_keys.keys_dir(self.config) / f"{backup_id}.json"),
            "retention": made["manifest"].get("retention"),
            "managers_missed": missed,
        }

    def restore(self, slug: str, directory: Path, replace: bool = False) -> dict:
        """Restore the facility on its node from a backup here (recreated if it was deleted)."""
        source, manifest = self._backup_of(slug, directory)
        with self.facilities.cluster_lock(slug):
            record = self._key_for(manifest)
            placed = self.cluster.placed().get(slug)
            if placed is not None and not replace:
                raise ProvisionerError(
                    f"restoring replaces all current data of {slug} with the backup's; add --yes"
                )
            nodes = self.swarm.nodes()
            if placed is None:
                target = placement.choose_node(nodes, self.swarm.facility_services())
                node = self.cluster._node(nodes, target, slug)
                result = self._recreate(slug, node, manifest, record, source)
            else:
                node = self.cluster._node(nodes, placed.service.node, slug)
                result = self._replace(slug, node, record, source)
        return {
            "slug": slug,
            "node": node.name,
            "backup_id": record.backup_id,
            "created": record.created,
            "expires": record.expires,
            "recreated": placed is None,
            "conversations": result.get("conversations"),
            "expired": result.get("expired"),
            "reapplied": result.get("reapplied"),
            "status": "running",
        }

    def _replace(self, slug: str, node: NodeInfo, record: BackupKey, source: Path) -> dict:
        client = self.cluster.client(node)
        engine = SwarmEngine(self.config, self.swarm)
        client.hold(slug, True)  # 503 with Retry-After on every gateway meanwhile
        try:
            engine.sleep(slug, STOP_GRACE_SECONDS)
            _upload(client, record.backup_id, source)
            return self._restore_held(client, slug, record)
        finally:
            _quietly(lambda: client.drop_backup(record.backup_id))
            # Restored or not (every step is checked before the first change), it runs again.
            client.hold(slug, False)
            engine.wake(slug, self.config.health_timeout)
            self.cluster._wait_answers(client, slug)

    def _recreate(
        self, slug: str, node: NodeInfo, manifest: dict, record: BackupKey, source: Path
    ) -> dict:
        client = self.cluster.client(node)
        meta = {
            "name": str(manifest.get("name") or slug),
            "retention": str(manifest.get("retention") or "7d"),
        }
        undo: list[Callable[[], object]] = [lambda: client.release(slug)]
        try:
            client.prepare(slug, meta)
            _upload(client, record.backup_id, source)
            try:
                result = self._restore_held(client, slug, record)
            finally:
                _quietly(lambda: client.drop_backup(record.backup_id))
            self._run_service(slug, meta, node.name)
            undo.append(lambda: SwarmEngine(self.config, self.swarm).remove(slug))
            self.swarm.wait_running(
                self.config.facility(slug).container, self.config.health_timeout
            )
            self.cluster._wait_answers(client, slug)
        except BaseException:
            _undo(undo, self.progress)
            raise
        self.cluster.push_routes()
        return result

    def _run_service(self, slug: str, meta: dict, node: str, replicas: int = 1) -> None:
        image_id = self.cluster.backend.image_id(self.config.facility_image)
        if image_id is None:
            raise DockerError(f"image {self.config.facility_image} is missing; run `medcell up`")
        spec = specs.facility_spec(
            self.config,
            self.config.facility(slug),
            meta["name"],
            meta["retention"],
            image_id,
            smtp.configured(self.config.home),
        )
        self.swarm.create_service(facility_service_spec(spec, node, replicas=replicas))

    def _restore_held(self, client: NodeClient, slug: str, record: BackupKey) -> dict:
        """Restore the backup held on the node, re-applying the deletions made after it."""
        since = tombstones.for_restore(self.tombstones, slug, record)
        self.progress(f"restoring {slug} from backup {record.backup_id} ...")
        return client.restore(slug, record.backup_id, record.key, since)

    def _key_for(self, manifest: dict) -> BackupKey:
        """The backup's key, kept on this manager; refused once it expired."""
        backup_id = manifest["backup_id"]
        record = self._live_key(backup_id, self.clock())
        if record is None or record.facility != manifest["facility"]:
            raise BackupRefused(
                f"this manager holds no key for backup {backup_id} of {manifest['facility']} "
                f"(expired at {manifest.get('expires')}, or made by another installation)"
            )
        return record

    # moving

    def move(self, slug: str, to: str) -> dict:
        """Move the facility to node `to`: held (503) on its node, backed up, restored on `to`,
        re-pinned and woken there, then destroyed on its old node. Any failure before it answers
        on `to` puts it back, serving from its old node."""
        with self.facilities.cluster_lock(check_slug(slug)):
            return self._move(slug, to)

    def _move(self, slug: str, to: str) -> dict:
        started = time.monotonic()
        swarm = self.swarm
        nodes = swarm.nodes()
        source, _ = self.cluster.node_of(slug)
        if to == source.name:
            raise InvalidArgument(f"facility {slug} is on {to} already")
        placement.check_node(nodes, to)
        target = self.cluster._node(nodes, to, slug)
        src, dst = self.cluster.client(source), self.cluster.client(target)
        engine = SwarmEngine(self.config, swarm)
        name = self.config.facility(slug).container
        backup_id, key = backup_keys.new_id(), backup_keys.new_key()
        self.progress(f"moving {slug} from {source.name} to {to}; it answers 503 meanwhile")
        src.hold(slug, True)
        # Undone in reverse, so these two last: it may run again, then it is woken there.
        undo: list[Callable[[], object]] = [
            lambda: engine.wake(slug, self.config.health_timeout),
            lambda: src.hold(slug, False),
        ]
        try:
            engine.sleep(slug, STOP_GRACE_SECONDS)
            undo.append(lambda: src.drop_backup(backup_id))
            made = src.backup(slug, backup_id, key)
            record = self._checked_record(slug, backup_id, made["manifest"], key)
            undo.append(lambda: dst.release(slug))  # first: a prepare cut short made something
            dst.prepare(slug, made["meta"])
            undo.append(lambda: dst.drop_backup(backup_id))
            size = sum(src.copy_backup_to(dst, backup_id, f) for f in FILES)
            self.progress(f"{slug}: {size / 2**20:.1f} MiB copied to {to}; restoring there")
            result = self._restore_held(dst, slug, record)
            repin(swarm, name, to, replicas=1)
            undo.append(lambda: _pin_back(swarm, name, source.name))
            swarm.wait_running(name, self.config.health_timeout)
            self.cluster._wait_answers(dst, slug)
        except BaseException:
            self.progress(f"moving {slug} failed; it stays on {source.name}")
            _undo(undo, self.progress)
            raise
        pushed = self.cluster.push_routes()
        _quietly(lambda: dst.drop_backup(backup_id))
        _quietly(lambda: src.drop_backup(backup_id))
        left = None
        try:
            src.release(slug)
        except ProvisionerError as e:
            left = str(e)
            self.progress(
                f"{slug} runs on {to}, but {source.name} did not destroy its old copy ({e}); "
                "its volumes are left there"
            )
        return {
            "slug": slug,
            "from": source.name,
            "to": to,
            "bytes": size,
            "conversations": result.get("conversations"),
            "seconds": round(time.monotonic() - started, 2),
            "routes_missed": sorted(pushed["missed"]),
            "old_copy_left": left,
        }

    # nodes

    def drain(self, node: str) -> dict:
        """Keep new facilities off the node and move every facility off it, one at a time."""
        found = self._find_node(node)
        set_drained(self.swarm, found.id, True)
        moved = []
        while True:
            services = self.swarm.facility_services()
            mine = sorted(s.slug for s in services if s.node == node and s.slug)
            if not mine:
                break
            nodes = [n for n in self.swarm.nodes() if n.name != node]
            target = placement.choose_node(nodes, services)
            moved.append(self.move(mine[0], target))
        return {"node": node, "drained": True, "moved": moved}

    def activate(self, node: str) -> dict:
        """Let the node take new facilities again."""
        found = self._find_node(node)
        set_drained(self.swarm, found.id, False)
        return {"node": node, "drained": False}

    def evacuate(self, node: str) -> dict:
        """A node lost for good: restore each of its facilities on the others from its newest
        scheduled backup (held on another node, its key on this manager), re-applying the
        tombstones newer than it; say per facility how old that backup was."""
        lost = self._find_node(node)
        if lost.state == "ready":
            raise InvalidArgument(
                f"node {node} is ready; move its facilities with `medcell node drain {node}` "
                "(evacuate is for a node lost for good)"
            )
        set_drained(self.swarm, lost.id, True)  # should it come back, it takes nothing new
        nodes = [n for n in self.swarm.nodes() if n.name != node]
        held: dict[str, list[tuple[dict, NodeInfo]]] = {}
        for other in nodes:
            if other.state != "ready" or not other.address:
                continue
            try:
                rows = self.cluster.client(other).held_backups()
            except ProvisionerError as e:
                self.progress(f"node {other.name} could not list its backups ({e})")
                continue
            for row in rows:
                held.setdefault(str(row.get("facility")), []).append((row, other))
        pinned = sorted(s.slug for s in self.swarm.facility_services() if s.node == node)
        results = []
        for slug in pinned:
            with self.facilities.cluster_lock(slug):
                try:
                    results.append(self._evacuate(slug, lost, held.get(slug, [])))
                except ProvisionerError as e:
                    self.progress(f"{slug} was not evacuated: {e}")
                    results.append({"slug": slug, "restored": False, "reason": str(e)})
        if any(r["restored"] for r in results):
            self.cluster.push_routes()
        return {"node": node, "facilities": results}

    def _evacuate(self, slug: str, lost: NodeInfo, held: list[tuple[dict, NodeInfo]]) -> dict:
        now = self.clock()
        usable = []
        for row, holder in held:
            record = backup_keys.load(self.config, str(row.get("backup_id")))
            if record is not None and record.facility == slug and record.expires_at > now:
                usable.append((record, holder))
        if not usable:
            raise ProvisionerError(
                "no backup of it is held on another node with a key on this manager "
                "(scheduled backups: MEDCELL_BACKUP_EVERY)"
            )
        record, holder = max(usable, key=lambda found: found[0].created)
        service = next(s for s in self.swarm.facility_services() if s.slug == slug)
        nodes = [n for n in self.swarm.nodes() if n.name != lost.name]
        target = self.cluster._node(
            nodes, placement.choose_node(nodes, self.swarm.facility_services()), slug
        )
        meta = {"name": service.name or slug, "retention": service.retention or "7d"}
        dst = self.cluster.client(target)
        self.progress(f"restoring {slug} on {target.name} from backup {record.backup_id}")
        undo: list[Callable[[], object]] = [lambda: dst.release(slug)]
        try:
            dst.prepare(slug, meta)
            if holder.name != target.name:
                source = self.cluster.client(holder)
                undo.append(lambda: dst.drop_backup(record.backup_id))
                for name in FILES:
                    source.copy_backup_to(dst, record.backup_id, name)
            result = self._restore_held(dst, slug, record)
            # The lost node's task never ends by Swarm's word: the service is made anew.
            self.swarm.remove_service(self.config.facility(slug).container)
            undo.append(lambda: self._run_service(slug, meta, lost.name, replicas=0))
            self._run_service(slug, meta, target.name)
            undo.append(lambda: self.swarm.remove_service(self.config.facility(slug).container))
            self.swarm.wait_running(
                self.config.facility(slug).container, self.config.health_timeout
            )
            self.cluster._wait_answers(dst, slug)
        except BaseException:
            _undo(undo, self.progress)
            raise
        if holder.name != target.name:
            _quietly(lambda: dst.drop_backup(record.backup_id))
        age = max(0, int(now - (backup_transfer.unix(record.created) or now)))
        return {
            "slug": slug,
            "restored": True,
            "to": target.name,
            "backup_id": record.backup_id,
            "backup_created": record.created,
            "backup_age_seconds": age,
            "conversations": result.get("conversations"),
            "reapplied": result.get("reapplied"),
        }

    def _find_node(self, name: str) -> NodeInfo:
        nodes = self.swarm.nodes()
        found = next((n for n in nodes if n.name == name), None)
        if found is None:
            known = ", ".join(sorted(n.name for n in nodes)) or "none"
            raise InvalidArgument(f"no node {name!r} (the nodes: {known})")
        return found


def backup_keys_text(key: bytes) -> str:
    return b64encode(key).decode()


def repin(swarm: Swarm, name: str, node: str, replicas: int) -> None:
    """Pin the facility's service to another node (its only constraint) at `replicas`."""
    with engine_errors(f"pinning service {name} to {node}"):
        attrs = swarm.client.api.inspect_service(name)
        spec = attrs["Spec"]
        template = copy.deepcopy(spec["TaskTemplate"])
        template.setdefault("Placement", {})["Constraints"] = [pin_constraint(node)]
        swarm.client.api.update_service(
            attrs["ID"],
            attrs["Version"]["Index"],
            task_template=template,
            name=spec["Name"],
            # The label names the node too: each node's supervisor lists its own services by it.
            labels={**(spec.get("Labels") or {}), NODE_LABEL: node},
            mode={"Replicated": {"Replicas": replicas}},
            update_config=spec.get("UpdateConfig"),
            rollback_config=spec.get("RollbackConfig"),
            endpoint_spec=spec.get("EndpointSpec"),
        )


def _pin_back(swarm: Swarm, name: str, node: str) -> None:
    repin(swarm, name, node, replicas=0)
    swarm.wait_stopped(name, STOP_GRACE_SECONDS + 30)


def set_drained(swarm: Swarm, node_id: str, drained: bool) -> None:
    """The node label that keeps new facilities off a node (placement.py reads it)."""
    with engine_errors("labelling the node"):
        node = swarm.client.nodes.get(node_id)
        spec = dict(node.attrs["Spec"])
        labels = dict(spec.get("Labels") or {})
        if drained:
            labels[DRAIN_LABEL] = "true"
        else:
            labels.pop(DRAIN_LABEL, None)
        spec["Labels"] = labels
        node.update(spec)


def _download(client: NodeClient, backup_id: str, name: str, path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        client.download(backup_id, name, out)
        out.flush()
        os.fsync(out.fileno())


def _upload(client: NodeClient, backup_id: str, source: Path) -> None:
    for name in FILES:
        with open(source / name, "rb") as f:
            client.upload(backup_id, name, f, os.fstat(f.fileno()).st_size)


def _undo(steps: list[Callable[[], object]], progress: Callable[[str], None]) -> None:
    for step in reversed(steps):
        try:
            step()
        except (ProvisionerError, OSError) as e:
            progress(f"undoing a step failed: {e}")


def _quietly(step: Callable[[], object]) -> None:
    try:
        step()
    except (ProvisionerError, OSError):
        pass
