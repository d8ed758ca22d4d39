"""Facility app figures: crypto cost, API throughput of its server, deletion speed, memory."""

import json
import tempfile
import threading
import time
import timeit
from dataclasses import replace
from pathlib import Path

import requests

from devsupport import FacilityServer
from services.facility.core import crypto, open_facility, store
from services.facility.core.config import Config
from services.facility.core.conversations import Conversations

from .common import median, percentile, table, tree_memory, wrk

BODY = "x" * 300
WEEK_US = 7 * 86400 * 1_000_000


class Server(FacilityServer):
    """The facility's server as its image starts it, on a loopback port."""

    def __init__(self, root: Path, scheduler: bool = True):
        super().__init__(root, "bench", MEDCELL_SCHEDULER="on" if scheduler else "off")

    def token(self, admin: dict) -> str:
        return requests.post(self.url + "/api/v1/login", json=admin).json()["token"]


def bench_crypto() -> list[tuple]:
    kek, message = crypto.new_key(), BODY.encode()
    aad = crypto.aad("bench", "messages", "0123456789abcdefghijkl", "body")

    def seal_and_wrap():
        key = crypto.new_key()
        crypto.seal(key, message, aad)
        crypto.wrap(kek, key, aad)

    runs = [
        min(timeit.repeat(seal_and_wrap, number=20000, repeat=1)) / 20000 * 1e6 for _ in range(7)
    ]
    return [("seal + wrap, 300-byte message", f"{median(runs):.2f} µs", "≤ 20 µs")]


def bench_http(tmp: Path) -> list[tuple]:
    server = Server(tmp / "http")
    admin = server.create_admin()
    server.start()
    try:
        time.sleep(2)
        idle = tree_memory(server.proc.pid)
        token = server.token(admin)
        headers = {"Authorization": f"Bearer {token}"}
        conv = requests.post(
            server.url + "/api/v1/conversations", json={"title": "bench"}, headers=headers
        ).json()
        messages = f"{server.url}/api/v1/conversations/{conv['id']}/messages"
        listing = requests.post(
            server.url + "/api/v1/conversations", json={}, headers=headers
        ).json()
        listing_url = f"{server.url}/api/v1/conversations/{listing['id']}/messages"
        for _ in range(20):
            requests.post(listing_url, json={"body": BODY}, headers=headers)
        posts, gets = [], []
        for _ in range(3):  # alternate, so both see the same machine noise
            posts.append(wrk(messages, method="POST", token=token, body=json.dumps({"body": BODY})))
            gets.append(wrk(listing_url, token=token))
        busy = tree_memory(server.proc.pid)
    finally:
        server.stop()
    post_rps = median([r["rps"] for r in posts])
    get_rps = median([r["rps"] for r in gets])
    return [
        (
            "message POST, 8 keep-alive clients",
            f"{post_rps:,.0f}/s "
            f"(p99 {median([r['p99_ms'] for r in posts]):.1f} ms, errors "
            f"{sum(r['errors'] for r in posts)})",
            "≥ 1,000/s",
        ),
        (
            "message-list GET (20 × 300 B), 8 clients",
            f"{get_rps:,.0f}/s "
            f"(p99 {median([r['p99_ms'] for r in gets]):.1f} ms, errors "
            f"{sum(r['errors'] for r in gets)})",
            "≥ 1,500/s",
        ),
        (
            "idle memory, process tree",
            f"RSS {idle['rss_mib']:.1f} MiB, PSS "
            f"{idle['pss_mib']:.1f} MiB ({idle['processes']} processes)",
            "≤ 60 MB",
        ),
        ("memory after load", f"RSS {busy['rss_mib']:.1f} MiB, PSS {busy['pss_mib']:.1f} MiB", ""),
    ]


def open_store(root: Path, clock) -> tuple[store.Store, Conversations]:
    """The bench facility's store and conversations, opened the way the app opens them."""
    config = Config(
        facility="bench",
        facility_name="bench",
        data_dir=root / "data",
        key_dir=root / "keys",
        retention=7 * 86400,
    )
    facility = open_facility(replace(config, max_attachment_bytes=1 << 20), clock)
    return facility.store, facility.conversations


def fill_expired(root: Path, conversations: int, per_conversation: int) -> None:
    """Write conversations whose last activity was eight days ago, straight into the store."""
    past = time.time_ns() // 1000 - WEEK_US - 86400 * 1_000_000
    db, convs = open_store(root, lambda: past)
    conn = db.conn()
    for _ in range(conversations):
        conv_id, _ = convs.create(conn, "old")
        with store.write(conn):
            for _ in range(per_conversation):
                convs._insert_message(conn, conv_id, "patient", BODY)
    db.close()


def bench_deletion(tmp: Path) -> list[tuple]:
    root = tmp / "deletion"
    fill_expired(root, 1000, 100)
    server = Server(root, scheduler=False)
    admin = server.create_admin()
    server.start()
    try:
        headers = {"Authorization": f"Bearer {server.token(admin)}"}
        live = requests.post(server.url + "/api/v1/conversations", json={}, headers=headers).json()
        url = f"{server.url}/api/v1/conversations/{live['id']}/messages"
        for _ in range(10):
            requests.post(url, json={"body": BODY}, headers=headers)
        latencies: list[float] = []
        stop = threading.Event()

        def reader():
            session = requests.Session()
            while not stop.is_set():
                started = time.perf_counter()
                session.get(url, headers=headers, timeout=10).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)

        readers = [threading.Thread(target=reader) for _ in range(8)]
        for t in readers:
            t.start()
        time.sleep(1)
        baseline = len(latencies)
        db, convs = open_store(root, lambda: time.time_ns() // 1000)
        conn = db.conn()
        started = time.perf_counter()
        deleted = convs.delete_expired(conn)
        elapsed = time.perf_counter() - started
        during = latencies[baseline:]
        stop.set()
        for t in readers:
            t.join()
        left = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        db.close()
    finally:
        server.stop()
    return [
        (
            "deletion job: 100,000 expired messages",
            f"{elapsed:.2f} s ({deleted} conversations, {left} messages left = the live ones)",
            "≤ 10 s",
        ),
        (
            "concurrent reads during deletion",
            f"p99 {percentile(during, 0.99):.1f} ms, p50 "
            f"{percentile(during, 0.5):.1f} ms over {len(during)} reads",
            "p99 ≤ 100 ms",
        ),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="medcell-bench-") as tmp:
        rows = bench_crypto() + bench_http(Path(tmp)) + bench_deletion(Path(tmp))
    table(rows, ("figure", "measured (median of runs)", "target"))


if __name__ == "__main__":
    main()
