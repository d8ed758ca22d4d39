"""Streaming: large bodies pass in both directions without being held whole in memory."""

import hashlib
import threading
import time

import pytest

from devsupport import localhost

# A facility upload route: the gateway streams its body (every other body it reads whole).
UPLOAD = "/api/v1/conversations/1/attachments"

MIB = 1024 * 1024
SIZE_MIB = 64


GATEWAY_PIDS: list[int] = []


def rss_bytes() -> int:
    """Resident memory of the gateway's nginx processes (master and workers) together."""
    total = 0
    for pid in GATEWAY_PIDS:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * 4096
        except OSError:
            pass
    return total


def nginx_pids(gateway) -> list[int]:
    master = int((gateway.state / "nginx.pid").read_text())
    with open(f"/proc/{master}/task/{master}/children") as f:
        return [master, *map(int, f.read().split())]


class PeakRss:
    """Samples this process's resident memory on a thread; `growth` is the peak above the start."""

    def __enter__(self):
        self.start = rss_bytes()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


class KnownLengthBody:
    """A body with a declared length that is produced on the fly, never held whole."""

    def __init__(self, mib: int):
        self.len = mib * MIB
        self.digest = hashlib.sha256()
        self._mib = mib

    def __iter__(self):
        block = b"\xa5" * 65536
        for _ in range(self._mib * 16):
            self.digest.update(block)
            yield block


def chunked_body(mib: int):
    block = b"\x3c" * 65536
    for _ in range(mib * 16):
        yield block


@pytest.fixture
def big_gateway(make_gateway):
    gateway = make_gateway(
        MEDCELL_GATEWAY_MAX_BODY=str((SIZE_MIB + 1) * MIB), MEDCELL_GATEWAY_TIMEOUT="30"
    )
    GATEWAY_PIDS[:] = nginx_pids(gateway)
    return gateway


def warm_up(gateway):
    # First requests allocate pools, buffers and code paths; measure what comes after them.
    localhost.post(f"{gateway.origin('a')}{UPLOAD}", data=KnownLengthBody(2))
    _ = localhost.get(f"{gateway.origin('a')}/big/2").content


def test_large_upload_with_length_streams_through(big_gateway, upstreams):
    warm_up(big_gateway)
    body = KnownLengthBody(SIZE_MIB)
    with PeakRss() as memory:
        response = localhost.post(f"{big_gateway.origin('a')}{UPLOAD}", data=body)
    assert response.status_code == 200
    assert response.json()["body_size"] == SIZE_MIB * MIB
    assert response.json()["body_sha256"] == body.digest.hexdigest()
    assert memory.growth < 16 * MIB, f"grew {memory.growth / MIB:.1f} MiB for {SIZE_MIB} MiB"


def test_large_chunked_upload_streams_through(big_gateway, upstreams):
    warm_up(big_gateway)
    with PeakRss() as memory:
        response = localhost.post(f"{big_gateway.origin('a')}{UPLOAD}", data=chunked_body(SIZE_MIB))
    assert response.json()["body_size"] == SIZE_MIB * MIB
    assert memory.growth < 16 * MIB, f"grew {memory.growth / MIB:.1f} MiB for {SIZE_MIB} MiB"


def test_large_download_streams_through(big_gateway, upstreams):
    warm_up(big_gateway)
    received = 0
    with PeakRss() as memory:
        with localhost.get(f"{big_gateway.origin('a')}/big/{SIZE_MIB}", stream=True) as response:
            assert response.headers["Content-Length"] == str(SIZE_MIB * MIB)
            for chunk in response.iter_content(65536):
                received += len(chunk)
    assert received == SIZE_MIB * MIB
    assert memory.growth < 16 * MIB, f"grew {memory.growth / MIB:.1f} MiB for {SIZE_MIB} MiB"
