"""A unix datagram socket nginx logs into, read on a daemon thread: the error log
(errorlog.py) and the request counts (requestcount.py) each have one."""

import os
import socket
import threading


class DatagramReceiver:
    """Binds `path` (a stale socket there is replaced), writable by nginx's workers; a subclass
    reads `self.sock` in `_run` until `close` closes it."""

    thread_name = "nginx-datagrams"

    def __init__(self, path: str):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        # nginx workers may run as another user (root on a test host drops to the configured one).
        os.chmod(path, 0o666)
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
