"""One progress policy for every long job: a live bar on a terminal, and otherwise (a log
file, a pipe, CI) a plain line on the first update, then at most every `every_s` seconds,
and on the last. Progress goes to stderr, so stdout stays the result.

    with Progress(total=2000, desc="gru", initial=0) as bar:
        for step in ...:
            bar.update(1, loss=f"{loss:.3f}")

`Progress(..., enabled=False)` prints nothing; `tty=` forces either mode (tests).
"""

from __future__ import annotations

import sys
import time

EVERY_S = 10.0  # seconds between plain lines off a terminal


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class Progress:
    """A counter from `initial` to `total` shown as a tqdm bar on a terminal or as plain lines
    `desc: 120/2000 steps (6%), 3.1 s, loss=2.345` elsewhere."""

    def __init__(self, total: int | None, desc: str = "", initial: int = 0, unit: str = "step",
                 stream=None, enabled: bool = True, tty: bool | None = None,
                 every_s: float = EVERY_S, clock=time.monotonic):
        self.total, self.desc, self.n, self.unit = total, desc, initial, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = is_terminal(self.stream) if tty is None else tty
        self.every_s, self.clock = every_s, clock
        self.start = clock()
        self.last_line: float | None = None
        self.postfix: dict = {}
        self._bar = None
        if enabled and self.tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                             file=self.stream, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix) -> None:
        self.n += n
        self.postfix = postfix
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            return
        now = self.clock()
        done = self.total is not None and self.n >= self.total
        if self.last_line is None or done or now - self.last_line >= self.every_s:
            self.write_line(now)

    def write_line(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.last_line = now
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        head = f"{self.desc}: " if self.desc else ""
        self.stream.write(f"{head}{count} {self.unit}s{pct}, {now - self.start:.1f} s{extra}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
