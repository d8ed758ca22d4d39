"""The gateway's certificate: the operator's own (MEDCELL_TLS_CERT/KEY) or a self-signed one.

The self-signed one covers `<domain>` and `*.<domain>`, every facility's own origin
(medcell_common.origins); one made before facilities had their own origins is replaced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from medcell_common.files import write_atomic
from provisioner.host.config import Config
from provisioner.host.errors import TLSError

CERT_DAYS = 825  # the longest validity that browsers accept for a leaf certificate


def tls_dir(config: Config) -> Path:
    return config.gateway_dir / "tls"


def ensure_certificate(config: Config, owner: tuple[int, int] | None = None) -> Path:
    """Install the operator's certificate, or make a self-signed one once; return the TLS dir."""
    directory = tls_dir(config)
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    if config.tls_cert and config.tls_key:
        _install(config.tls_cert, cert, 0o644)
        _install(config.tls_key, key, 0o600)
    elif not (cert.exists() and key.exists()) or not _covers(cert, config.public_domain):
        _self_signed(config, cert, key)
    if owner is not None:
        # The gateway reads the key as its own uid; the key stays 0600.
        for path in (directory, cert, key):
            os.chown(path, *owner)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return directory


def _install(source: Path, target: Path, mode: int) -> None:
    try:
        data = source.read_bytes()
    except OSError as e:
        raise TLSError(f"cannot read {source}: {e.strerror}") from e
    if b"-----BEGIN" not in data:
        raise TLSError(f"{source} is not a PEM file")
    if target.exists() and target.read_bytes() == data:
        return
    write_atomic(target, data, mode)


def subject_names(domain: str) -> list[str]:
    """The names a self-signed certificate for `domain` covers: every facility's host too."""
    names = [f"DNS:{domain}", f"DNS:*.{domain}", "DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    return list(dict.fromkeys(names))


def _covers(cert: Path, domain: str) -> bool:
    """Whether our certificate names `*.<domain>` (one from before facility origins does not)."""
    result = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
    )
    names = {name.strip() for name in result.stdout.replace("\n", ",").split(",")}
    return result.returncode == 0 and f"DNS:*.{domain}" in names


def _self_signed(config: Config, cert: Path, key: Path) -> None:
    if shutil.which("openssl") is None:
        raise TLSError("openssl is missing; install it or set MEDCELL_TLS_CERT and MEDCELL_TLS_KEY")
    names = subject_names(config.public_domain)
    with tempfile.TemporaryDirectory(dir=cert.parent, prefix=".new.") as tmp:
        new_cert, new_key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        command = [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(new_key), "-out", str(new_cert), "-days", str(CERT_DAYS),
            "-subj", f"/CN={config.public_domain}/O=medcell self-signed",
            "-addext", "subjectAltName=" + ",".join(names),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise TLSError(f"openssl could not make a certificate: {detail}")
        os.chmod(new_key, 0o600)
        os.replace(new_key, key)
        os.replace(new_cert, cert)
