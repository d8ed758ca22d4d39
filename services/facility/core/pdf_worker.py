"""The PDF export laid out in a short-lived process, so the facility's own process stays small.

fpdf2, fontTools and Pillow, and what parsing a font and decoding photos leave behind, are some
30 MiB that a long-lived process would keep until the facility sleeps. Here they live in a child
that exits after one PDF: `render(export, chunks, lang)` starts this file as a script, hands it
the conversation (already decrypted) over a pipe, answers its requests for the photos it embeds,
and takes back the PDF's bytes. The child gets an address-space limit and the parent a deadline
and size bounds, so neither a huge picture nor a stuck layout can take the facility down with it.

The child runs this file by path in isolated mode (`python -I`): it imports only the standard
library and pdf.py (loaded by its file name), never the facility's packages or the web stack.
"""

import json
import os
import struct
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

# The child's address space: Python, fpdf2, Pillow and fontTools map ~100 MiB; one photo of
# pdf.MAX_DECODE_PIXELS decoded (64 MiB) and its scaled copy must fit, and not much more.
MEMORY_LIMIT_BYTES = 384 * 1024 * 1024
# records.MAX_PDF_CHARS is laid out in ~15 s here; the gateway gives up after 60 s.
DEADLINE_SECONDS = 50.0
# A PDF is its text and its photos scaled down (pdf.MAX_EMBEDDED_BYTES at most): far below this.
MAX_PDF_BYTES = 96 * 1024 * 1024
MAX_REQUEST_BYTES = 256
_LENGTH = struct.Struct(">I")
# One export at a time per facility: the child needs tens of MiB while it runs.
_ONE_AT_A_TIME = threading.Lock()


class WorkerFailed(Exception):
    """The child did not return a PDF: it ran out of memory or time, or broke the protocol."""


def render(export: dict, chunks: Callable[[str], Iterable[bytes]], lang: str = "de") -> bytes:
    """pdf.build(export, chunks, lang), made in a child process; raises WorkerFailed."""
    import subprocess  # here, not at start: only an export starts a process (~1.5 ms a wake)

    wanted = {a["id"] for m in export["messages"] for a in m["attachments"]}
    with _ONE_AT_A_TIME:
        child = subprocess.Popen(
            [sys.executable, "-I", "-X", "utf8", str(Path(__file__))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # fpdf2 and Pillow may quote patient text in warnings
            env={
                "MEDCELL_PDF_MODULE": str(Path(__file__).with_name("pdf.py")),
                "MEDCELL_PDF_MEMORY": str(MEMORY_LIMIT_BYTES),
            },
            close_fds=True,
        )
        timer = threading.Timer(DEADLINE_SECONDS, child.kill)
        timer.start()
        try:
            return _converse(child, export, chunks, lang, wanted)
        except (OSError, ValueError) as e:
            raise WorkerFailed(f"the PDF process failed ({type(e).__name__})") from e
        finally:
            timer.cancel()
            child.kill()
            child.wait()
            child.stdin.close()
            child.stdout.close()


def _converse(child, export: dict, chunks, lang: str, wanted: set[str]) -> bytes:
    _send(child.stdin, json.dumps({"export": export, "lang": lang}).encode())
    while True:
        tag = child.stdout.read(1)
        if tag == b"A":  # a photo's bytes, each one at most once
            att_id = _receive(child.stdout, MAX_REQUEST_BYTES).decode("ascii")
            if att_id not in wanted:
                raise WorkerFailed("the PDF process asked for a file it was not given")
            wanted.discard(att_id)
            data = b"".join(chunks(att_id))
            _send(child.stdin, data)
        elif tag == b"P":
            return _receive(child.stdout, MAX_PDF_BYTES)
        else:  # EOF: killed by its memory limit, its deadline, or it failed
            raise WorkerFailed("the PDF process ended without a PDF")


def _send(stream, payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _receive(stream, limit: int) -> bytes:
    header = stream.read(_LENGTH.size)
    if len(header) != _LENGTH.size:
        raise WorkerFailed("the PDF process ended mid-answer")
    (size,) = _LENGTH.unpack(header)
    if size > limit:
        raise WorkerFailed("the PDF process sent more than a PDF may hold")
    payload = stream.read(size)
    if len(payload) != size:
        raise WorkerFailed("the PDF process ended mid-answer")
    return payload


def _child() -> None:
    """In the child: read the export, lay it out, write the PDF, exit."""
    import importlib.util
    import resource

    limit = int(os.environ["MEDCELL_PDF_MEMORY"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    spec = importlib.util.spec_from_file_location("medcell_pdf", os.environ["MEDCELL_PDF_MODULE"])
    pdf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pdf)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    request = json.loads(_receive(source, 2**31))

    def chunks(att_id: str) -> list[bytes]:
        sink.write(b"A")
        _send(sink, att_id.encode("ascii"))
        return [_receive(source, 2**31)]

    document = pdf.build(request["export"], chunks, request["lang"])
    sink.write(b"P")
    _send(sink, document)


if __name__ == "__main__":
    _child()
