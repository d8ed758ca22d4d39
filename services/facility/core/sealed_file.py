"""A file sealed in chunks (AES-256-GCM through crypto), and the files a backup writes and wipes.

Each chunk is stored as a 4-byte length and the sealed bytes; the associated data of chunk `seq`
names its position and the count, so chunks cannot be reordered, dropped or added unnoticed.
"""

import hashlib
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from services.facility.core import crypto
from services.facility.core.errors import BackupError

CHUNK_BYTES = 1024 * 1024
_FRAME = struct.Struct(">I")

ChunkAAD = Callable[[int, int], bytes]  # (seq, count) -> associated data


def chunks(size: int) -> int:
    """How many chunks a file of `size` bytes is sealed in (an empty one still has one)."""
    return max(1, -(-size // CHUNK_BYTES))


def seal(key: bytes, source: Path, target: Path, count: int, aad: ChunkAAD) -> str:
    """Seal `source` into a new file `target`; returns the plaintext's SHA-256."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, new_file(target) as dst:
        for seq in range(count):
            chunk = src.read(CHUNK_BYTES)
            digest.update(chunk)
            sealed = crypto.seal(key, chunk, aad(seq, count))
            dst.write(_FRAME.pack(len(sealed)) + sealed)
        if src.read(1):
            raise BackupError("the file grew while it was being sealed")
    return digest.hexdigest()


def unseal(key: bytes, source: Path, target: Path, count: int, aad: ChunkAAD) -> str:
    """Open a file made by seal() into a new file `target`; returns the plaintext's SHA-256.

    Raises CryptoError for a chunk that does not open, BackupError for a wrong chunk count.
    """
    digest = hashlib.sha256()
    seq = -1
    with open(source, "rb") as src, new_file(target) as dst:
        for seq, sealed in enumerate(_frames(src)):
            if seq >= count:
                raise BackupError("the backup's snapshot has more chunks than its manifest")
            chunk = crypto.unseal(key, sealed, aad(seq, count))
            digest.update(chunk)
            dst.write(chunk)
    if seq + 1 != count:
        raise BackupError("the backup's snapshot is truncated")
    return digest.hexdigest()


def _frames(src: BinaryIO) -> Iterator[bytes]:
    while header := src.read(_FRAME.size):
        if len(header) < _FRAME.size:
            raise BackupError("the backup's snapshot is truncated")
        (length,) = _FRAME.unpack(header)
        if length > CHUNK_BYTES + crypto.OVERHEAD:
            raise BackupError("the backup's snapshot is damaged")
        sealed = src.read(length)
        if len(sealed) != length:
            raise BackupError("the backup's snapshot is truncated")
        yield sealed


def new_file(path: Path) -> BinaryIO:
    """A new file, never an existing one."""
    # Readable by the operator's uid on the host, which moves it into the backup directory.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    return os.fdopen(fd, "wb")


def write(path: Path, data: bytes) -> None:
    """Write a new file and make it durable."""
    with new_file(path) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def destroy(path: Path) -> None:
    """Zero a temporary database copy (and its journals) before unlinking it, so its blocks do
    not keep the data."""
    for name in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            size = name.stat().st_size
        except FileNotFoundError:
            continue
        with open(name, "r+b", buffering=0) as f:
            for offset in range(0, size, CHUNK_BYTES):
                f.write(b"\0" * min(CHUNK_BYTES, size - offset))
            os.fsync(f.fileno())
        name.unlink()
