"""The cluster's own CA for node-to-node mutual TLS, and each node's certificate.

The CA's key stays on the host that ran `cluster init`, under MEDCELL_HOME, owner-only; it is
never put in a Swarm secret. A new host gets its certificate as a one-use bundle file that
`cluster join-command` writes and the operator copies over (like an SSH key).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from medcell_common.files import write_atomic
from medcell_common.interfaces import CLUSTER_PEER_NAME
from provisioner.host.errors import InvalidArgument, TLSError

CA_DAYS = 3650
NODE_DAYS = 825
_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth,clientAuth\n"
    f"subjectAltName=DNS:{CLUSTER_PEER_NAME}\n"
)
MAX_BUNDLE_BYTES = 64 * 1024
# What a node's gateway needs of the cluster material (its MEDCELL_GATEWAY_CLUSTER_TLS directory).
GATEWAY_FILES = ("ca.crt", "node.crt", "node.key")


def cluster_dir(home: Path) -> Path:
    return home / "cluster"


def _owner_only_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    if shutil.which("openssl") is None:
        raise TLSError("openssl is missing; install it (apt-get install openssl)")
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=60)
    if result.returncode != 0:
        message = " ".join(result.stderr.decode("utf-8", "replace").split())[:300]
        raise TLSError(f"openssl {args[0]} failed: {message}")
    return result.stdout


def create_ca(home: Path) -> Path:
    """Make a new cluster CA (replacing any earlier one); returns its certificate."""
    directory = _owner_only_dir(cluster_dir(home))
    key, cert = directory / "ca.key", directory / "ca.crt"
    with tempfile.TemporaryDirectory(dir=directory) as work:
        tmp_key = Path(work) / "ca.key"
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp_key))
        pem = _openssl(
            "req", "-new", "-x509", "-key", str(tmp_key), "-days", str(CA_DAYS),
            "-subj", "/CN=medcell cluster CA",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        write_atomic(key, tmp_key.read_bytes(), 0o600)
    write_atomic(cert, pem, 0o600)
    return cert


def issue(home: Path, name: str) -> dict[str, str]:
    """A new node key and its certificate signed by the cluster CA, as PEM strings."""
    directory = cluster_dir(home)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    if not ca_key.exists():
        raise InvalidArgument(
            "this host does not hold the cluster CA; run this on the host that ran "
            "`medcell cluster init`"
        )
    with tempfile.TemporaryDirectory(dir=directory) as work:
        key = Path(work) / "node.key"
        extensions = Path(work) / "ext.cnf"
        extensions.write_text(_EXTENSIONS)
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
        request = _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={name}")
        cert = _openssl(
            "x509", "-req", "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-set_serial", str(secrets.randbits(63)), "-days", str(NODE_DAYS),
            "-extfile", str(extensions), stdin=request,
        )  # fmt: skip
        return {
            "ca_cert": ca_cert.read_text(),
            "cert": cert.decode(),
            "key": key.read_text(),
        }


def common_name(cert_pem: str) -> str:
    """The subject's common name of a PEM certificate (a node's identity in the cluster)."""
    subject = _openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", stdin=cert_pem.encode())
    found = re.search(r"(?:^|[=,])CN=([^,\n]+)", subject.decode(errors="replace"))
    if found is None:
        raise InvalidArgument("the node certificate has no common name")
    return found.group(1).strip()


def install(home: Path, bundle: dict[str, str]) -> Path:
    """Keep a node's certificate, key and the CA certificate owner-only under MEDCELL_HOME."""
    directory = _owner_only_dir(cluster_dir(home))
    write_atomic(directory / "ca.crt", bundle["ca_cert"].encode(), 0o600)
    write_atomic(directory / "node.crt", bundle["cert"].encode(), 0o600)
    write_atomic(directory / "node.key", bundle["key"].encode(), 0o600)
    return directory


def install_for_gateway(
    home: Path, gateway_dir: Path, owner: tuple[int, int] | None = None
) -> Path:
    """Copy this node's certificate and key and the CA's certificate into the gateway's
    configuration (`<gateway_dir>/cluster/`), readable by the gateway's `owner`; the CA's key,
    which the init host keeps beside them, never goes there."""
    source = cluster_dir(home)
    target = gateway_dir / "cluster"
    _owner_only_dir(target)
    for name in GATEWAY_FILES:
        try:
            data = (source / name).read_bytes()
        except FileNotFoundError as e:
            raise InvalidArgument(
                f"this host has no cluster certificate ({source / name}); it becomes a node "
                "with `medcell cluster init` or `medcell cluster join`"
            ) from e
        write_atomic(target / name, data, 0o600)
    if owner is not None:
        # The gateway reads them as its own uid: owner-only, like the originals.
        for path in (target, *(target / name for name in GATEWAY_FILES)):
            os.chown(path, *owner)
    return target


def write_bundle(home: Path, bundle: dict[str, str]) -> Path:
    """A one-use bundle file for a new host (it holds a private key: owner-only)."""
    directory = _owner_only_dir(cluster_dir(home) / "outgoing")
    path = directory / f"join-{secrets.token_hex(4)}.json"
    write_atomic(path, json.dumps(bundle).encode(), 0o600)
    return path


def read_bundle(path: Path) -> dict[str, str]:
    """Read and check a bundle: three PEM blocks, the certificate signed by the bundle's CA."""
    try:
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise InvalidArgument(f"{path} is too large to be a join bundle")
        bundle = json.loads(path.read_text())
    except OSError as e:
        raise InvalidArgument(f"cannot read the join bundle {path}: {e.strerror}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidArgument(f"{path} is not a join bundle (not JSON)") from e
    if not isinstance(bundle, dict) or not all(
        isinstance(bundle.get(k), str) and "-----BEGIN" in bundle[k]
        for k in ("ca_cert", "cert", "key")
    ):
        raise InvalidArgument(f"{path} is not a join bundle (needs ca_cert, cert and key)")
    with tempfile.TemporaryDirectory() as work:
        ca = Path(work) / "ca.crt"
        ca.write_text(bundle["ca_cert"])
        try:
            _openssl("verify", "-CAfile", str(ca), stdin=bundle["cert"].encode())
        except TLSError as e:
            raise InvalidArgument(f"{path}: its certificate is not signed by its CA") from e
    return {k: bundle[k] for k in ("ca_cert", "cert", "key")}
