"""Streaming: large bodies pass in both directions without being held whole in memory."""

import hashlib
import threading
import time

import pytest
import requests

MIB = 1024 * 1024
SIZE_MIB = 64


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


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
    return make_gateway(MAX_BODY=(SIZE_MIB + 1) * MIB, READ_TIMEOUT=30.0)


def warm_up(gateway):
    # First requests allocate pools, buffers and code paths; measure what comes after them.
    requests.post(f"{gateway.url}/f/a/upload", data=KnownLengthBody(2))
    _ = requests.get(f"{gateway.url}/f/a/big/2").content


def test_large_upload_with_length_streams_through(big_gateway, upstreams):
    warm_up(big_gateway)
    body = KnownLengthBody(SIZE_MIB)
    with PeakRss() as memory:
        response = requests.post(f"{big_gateway.url}/f/a/upload", data=body)
    assert response.status_code == 200
    assert response.json()["body_size"] == SIZE_MIB * MIB
    assert response.json()["body_sha256"] == body.digest.hexdigest()
    assert memory.growth < 16 * MIB, f"grew {memory.growth / MIB:.1f} MiB for {SIZE_MIB} MiB"


def test_large_chunked_upload_streams_through(big_gateway, upstreams):
    warm_up(big_gateway)
    with PeakRss() as memory:
        response = requests.post(f"{big_gateway.url}/f/a/upload", data=chunked_body(SIZE_MIB))
    assert response.json()["body_size"] == SIZE_MIB * MIB
    assert memory.growth < 16 * MIB, f"grew {memory.growth / MIB:.1f} MiB for {SIZE_MIB} MiB"


def test_large_download_streams_through(big_gateway, upstreams):
    warm_up(big_gateway)
    received = 0
    with PeakRss() as memory:
        with requests.get(f"{big_gateway.url}/f/a/big/{SIZE_MIB}", stream=True) as response:
            assert response.headers["Content-Length"] == str(SIZE_MIB * MIB)
            for chunk in response.iter_content(65536):
                received += len(chunk)
    assert received == SIZE_MIB * MIB
    assert memory.growth < 16 * MIB, f"grew {memory.growth / MIB:.1f} MiB for {SIZE_MIB} MiB"


def test_keep_alive_connections_to_the_facility_are_reused(gateway, upstreams):
    with requests.Session() as client:
        for _ in range(20):
            assert client.get(f"{gateway.url}/f/b/api/v1/x").status_code == 200
    # The gateway's requests reuse its pooled keep-alive connection(s) to the facility.
    assert len(upstreams["b"].seen) == 20
    assert len(set(upstreams["b"].peers)) <= 2
