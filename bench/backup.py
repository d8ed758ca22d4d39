"""Backup figures: time of `facility backup` and `restore --yes` for a filled facility, and sizes.

Runs in a throw-away installation (own Docker prefix and MEDCELL_HOME, no gateway needed: the data
goes in over the facility's socket) and removes everything it made. MEDCELL_BENCH_BACKUP_MIB
(default 100) of attachments in 5 MiB files; MEDCELL_BENCH_RUNS (default 3) rounds.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from devsupport import Installation
from devsupport.unix_http import UnixHTTPConnection

MIB = 1024 * 1024
FILE_MIB = 5


def request(socket_path: Path, method: str, target: str, body=b"", headers=None) -> dict:
    conn = UnixHTTPConnection(socket_path, timeout=120)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {target}: {response.status}")
        return json.loads(data or b"null")
    finally:
        conn.close()


def fill(socket_path: Path, admin: dict, total_mib: int) -> int:
    """Conversations with messages and PDF attachments until about total_mib are stored."""
    login = request(
        socket_path,
        "POST",
        "/api/v1/login",
        json.dumps({"username": admin["admin_user"], "password": admin["admin_password"]}).encode(),
        {"Content-Type": "application/json"},
    )
    auth = {"Authorization": f"Bearer {login['token']}"}
    json_auth = {**auth, "Content-Type": "application/json"}
    files = max(1, total_mib // FILE_MIB)
    for n in range(files):
        conv = request(socket_path, "POST", "/api/v1/conversations", b"{}", json_auth)
        for i in range(10):
            body = json.dumps({"body": f"Nachricht {i}"}).encode()
            request(
                socket_path, "POST", f"/api/v1/conversations/{conv['id']}/messages", body, json_auth
            )
        boundary = uuid.uuid4().hex
        content = b"%PDF-1.4\n" + os.urandom(FILE_MIB * MIB - 9)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="scan-{n}.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request(
            socket_path,
            "POST",
            f"/api/v1/conversations/{conv['id']}/attachments",
            body,
            {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    return files


def timed(installation: Installation, *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    result = installation.medcell(*args)
    return time.perf_counter() - started, result


def main() -> None:
    total = int(os.environ.get("MEDCELL_BENCH_BACKUP_MIB", "100"))
    runs = int(os.environ.get("MEDCELL_BENCH_RUNS", "3"))
    with tempfile.TemporaryDirectory(prefix="medcell-bench-backup-") as tmp:
        installation = Installation(Path(tmp) / "home", stem="mcbenchbk")
        try:
            admin = installation.create("bench")
            socket_path = installation.home / "run" / "facilities" / "bench" / "app.sock"
            files = fill(socket_path, admin, total)
            backups, restores, sizes = [], [], []
            for run in range(runs):
                target = Path(tmp) / f"bk{run}"
                seconds, made = timed(installation, "facility", "backup", "bench", str(target))
                backups.append(seconds)
                sizes.append(sum(p.stat().st_size for p in target.iterdir()))
                seconds, _ = timed(
                    installation, "facility", "restore", "bench", str(target), "--yes"
                )
                restores.append(seconds)
            print(f"facility with {files} × {FILE_MIB} MiB attachments and {files * 10} messages")
            print(f"backup directory: {statistics.median(sizes) / MIB:.1f} MiB")
            print(
                "backup (one-off container, VACUUM INTO, seal): median "
                f"{statistics.median(backups):.2f} s of {runs} "
                f"({', '.join(f'{s:.2f}' for s in backups)})"
            )
            print(
                f"restore --yes (stop, decrypt, check, swap, sweep, start until healthy): median "
                f"{statistics.median(restores):.2f} s ({', '.join(f'{s:.2f}' for s in restores)})"
            )
        finally:
            installation.remove()


if __name__ == "__main__":
    main()
