"""A small bounded pool of jobs keyed by slug: one job per slug at a time, a few at once."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class QueueFull(Exception):
    """More distinct slugs are waiting than the pool accepts."""


class Job:
    """One unit of work for one slug; everyone who asked for that slug waits on the same job."""

    def __init__(self, slug: str, arg: object):
        self.slug = slug
        self.arg = arg
        self.error: BaseException | None = None
        self.result: object = None
        self._done = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the job finished within the timeout."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()


class JobPool:
    """Runs `work(slug, arg)` on at most `max_running` threads with at most `max_waiting` queued.

    A second submit for a slug whose job is queued or running joins that job instead of adding
    one, so concurrent wakes of one facility cause one `docker start`.
    """

    def __init__(
        self,
        work: Callable[[str, object], object],
        *,
        max_running: int,
        max_waiting: int,
        on_done: Callable[[Job], None] | None = None,
        name: str = "jobs",
    ):
        self._work = work
        self._on_done = on_done or (lambda job: None)
        self._max_running, self._max_waiting = max_running, max_waiting
        self._name = name
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self._submitted = self._finished = 0

    def submit(self, slug: str, arg: object = None, *, merge=None) -> Job:
        """The slug's job: the one in progress, or a new one; raises QueueFull when full.

        `merge(job)` is called under the pool's lock when the submit joins an existing job.
        """
        with self._cond:
            job = self._jobs.get(slug)
            if job is not None:
                if merge is not None:
                    merge(job)
                return job
            if self._stopped or len(self._queue) >= self._max_waiting:
                raise QueueFull(slug)
            job = self._jobs[slug] = Job(slug, arg)
            self._submitted += 1
            self._queue.append(job)
            self._grow()
            self._cond.notify()
            return job

    @property
    def max_running(self) -> int:
        return self._max_running

    @property
    def max_waiting(self) -> int:
        return self._max_waiting

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._cond:
            return len(self._jobs)

    def settled(self) -> bool:
        """Whether every submitted job has finished and been reported (tests wait for this)."""
        with self._cond:
            return self._finished == self._submitted

    def busy(self, slug: str) -> bool:
        with self._cond:
            return slug in self._jobs

    def stop(self) -> None:
        """Refuse new jobs, drop the queued ones and let the running ones end by themselves."""
        with self._cond:
            self._stopped = True
            for job in self._queue:
                job.error = QueueFull(job.slug)
                self._jobs.pop(job.slug, None)
                self._finished += 1
                job._done.set()
            self._queue.clear()
            self._cond.notify_all()

    def _grow(self) -> None:
        # Threads are started on demand, so an idle pool (the normal case) costs nothing.
        if len(self._threads) < self._max_running:
            thread = threading.Thread(
                target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job = self._queue.popleft()
            try:
                job.result = self._work(job.slug, job.arg)
            except Exception as e:  # handed to whoever waits; the pool thread lives on
                job.error = e
            with self._cond:
                self._jobs.pop(job.slug, None)
            job._done.set()
            try:
                self._on_done(job)
            finally:
                with self._cond:
                    self._finished += 1
