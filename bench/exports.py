"""Export figures: PDF and FHIR export time, the facility's memory while it exports, and what
making the PDF in its own short-lived process adds to an export's latency.

The facility's server as its image starts it, on a loopback port; one conversation with 100
messages and 5 photos (3000 × 2000 JPEG) for the PDF, one with 2 × 20 MiB attachments for the
FHIR export. Memory is the PSS of the server's process tree (the export's child included),
sampled every 20 ms during each export.
"""

import io
import os
import tempfile
import threading
import time
from pathlib import Path

import requests
from PIL import Image

from .common import median, table, tree_memory
from .facility import Server

ROUNDS = 5


def photo() -> bytes:
    out = io.BytesIO()
    noise = Image.effect_noise((3000, 2000), 64).convert("RGB")
    noise.save(out, "JPEG", quality=90)
    return out.getvalue()


class PeakMemory:
    """The highest PSS (MiB) of a process tree while the block runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_memory(self.pid)["pss_mib"])
            time.sleep(0.02)


def timed_export(server: Server, headers: dict, conv_id: str, fmt: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = requests.get(
        f"{server.url}/api/v1/conversations/{conv_id}/export",
        params={"format": fmt},
        headers=headers,
        stream=True,
    )
    size = sum(len(piece) for piece in response.iter_content(256 * 1024))
    response.raise_for_status()
    return time.perf_counter() - started, size


def child_overhead(rounds: int = 7) -> list[tuple]:
    """The same small PDF (3 messages, one 2400 × 1600 photo) made in this process (pdf.build)
    and in the short-lived child the facility uses (pdf_worker.render), alternating; medians.
    The in-process side is warm after its first round (libraries loaded, font parsed), as a
    long-lived process would be; the child starts cold every time."""
    from services.facility.core import pdf, pdf_worker

    out = io.BytesIO()
    Image.effect_noise((2400, 1600), 60).convert("RGB").save(out, "JPEG", quality=85)
    picture = out.getvalue()
    export = {
        "facility_name": "Praxis Bench", "title": "Befund", "exported_at": 1764633600000000,
        "exported_by": "admin", "reference": {"name": "Bench"},
        "messages": [
            {"id": f"m{i}", "author": "staff", "body": "Guten Tag " * 30,
             "created_at": 1764633600000000 + i,
             "attachments": [{"id": "a1", "filename": "foto.jpg", "size": len(picture),
                              "content_type": "image/jpeg"}] if i == 2 else []}
            for i in range(3)
        ],
    }  # fmt: skip
    chunks = lambda _id: [picture]  # noqa: E731
    pdf.build(export, chunks)  # warm
    inside, child = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        pdf.build(export, chunks)
        inside.append(time.perf_counter() - started)
        started = time.perf_counter()
        pdf_worker.render(export, chunks)
        child.append(time.perf_counter() - started)
    return [
        ("in this process (warm)", f"{median(inside) * 1000:.0f} ms"),
        ("in a short-lived child (the facility's way)", f"{median(child) * 1000:.0f} ms"),
        ("added by the child", f"{(median(child) - median(inside)) * 1000:.0f} ms"),
    ]


def main() -> None:
    table(child_overhead(), ("small PDF with one photo", "median of 7"))
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "exports", scheduler=False)
        admin = server.create_admin()
        server.start()
        try:
            run(server, {"Authorization": f"Bearer {server.token(admin)}"})
        finally:
            server.stop()


def run(server: Server, auth: dict) -> None:
    api = f"{server.url}/api/v1/conversations"
    chat = requests.post(api, json={"title": "bench", "reference": {"name": "Bench"}}, headers=auth)
    chat_id = chat.json()["id"]
    for i in range(100):
        body = {"body": f"Nachricht {i} " * 20}
        requests.post(f"{api}/{chat_id}/messages", json=body, headers=auth)
    picture = photo()
    for i in range(5):
        files = {"file": (f"photo-{i}.jpg", picture, "image/jpeg")}
        requests.post(f"{api}/{chat_id}/attachments", files=files, headers=auth)
    files_id = requests.post(api, json={}, headers=auth).json()["id"]
    for i in range(2):
        files = {"file": (f"scan-{i}.pdf", b"%PDF-1.4\n" + os.urandom(20 * 1024 * 1024))}
        requests.post(f"{api}/{files_id}/attachments", files=files, headers=auth)

    pid = server.proc.pid
    idle = tree_memory(pid)["pss_mib"]
    rows = []
    for label, conv_id, fmt in (
        ("PDF, 100 messages + 5 photos of 3000×2000", chat_id, "pdf"),
        ("FHIR, 2 × 20 MiB attachments", files_id, "fhir"),
    ):
        times, peaks, size = [], [], 0
        for _ in range(ROUNDS):
            with PeakMemory(pid) as peak:
                seconds, size = timed_export(server, auth, conv_id, fmt)
            times.append(seconds)
            peaks.append(peak.peak)
        rows.append(
            (
                label,
                f"{median(times):.2f} s",
                f"{size / 1024 / 1024:.1f} MiB",
                f"{max(peaks):.1f} MiB",
            )
        )
    print(f"facility before any export: {idle:.1f} MiB PSS (its server process)")
    table(rows, ("export", f"median of {ROUNDS}", "size", "peak PSS"))
    print(f"after the exports: {tree_memory(pid)['pss_mib']:.1f} MiB PSS")
