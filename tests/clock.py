"""The one fake clock of the tests: time that moves only when a test moves it."""

import time

START = 1_800_000_000.0  # 2027-01-15, seconds since the epoch


class FakeClock:
    """Reads like `time.time` (seconds); `FakeClock.micros()` reads like the facility's clock
    (integer microseconds since the epoch, starting now).

    The test moves it with `advance`; code under test that is given `sleep` moves it by sleeping,
    so a timeout passes without waiting.
    """

    def __init__(self, now: float = START, per_second: int = 1):
        self.now = now
        self.per_second = per_second

    @classmethod
    def micros(cls) -> "FakeClock":
        return cls(time.time_ns() // 1000, per_second=1_000_000)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        step = seconds * self.per_second
        self.now += step if self.per_second == 1 else int(step)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
