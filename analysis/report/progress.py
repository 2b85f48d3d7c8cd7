"""Progress of `charlm report`: a live bar per benchmark on a terminal, and otherwise a plain
line at every stage start and end and at most every `interval` seconds in between (bench
progress read from the bench log as it grows), so a log file or CI shows where a long run is.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

_COLLECTED = re.compile(r"collected (\d+) items?")
_OUTCOME = re.compile(r"^(\S+::\S+)\s+(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", re.M)
_RUNNING = re.compile(r"^(\S+::\S+)\s*$")


@dataclass(frozen=True)
class BenchProgress:
    total: int | None  # tests collected (None until pytest says)
    done: int  # tests finished, whatever their outcome
    failed: int
    current: str | None  # the test running now (its id), if the log shows one


def parse_bench_log(text: str) -> BenchProgress:
    """Progress from a verbose pytest log (`pytest -v`): "collected N items", then one
    "path::test[id] PASSED  [ 1%]" line per test (the id is written when it starts)."""
    m = _COLLECTED.search(text)
    outcomes = _OUTCOME.findall(text)
    lines = text.rstrip("\n").splitlines()
    current = None
    if lines and not text.endswith("\n"):
        last = _RUNNING.match(lines[-1].strip())
        current = last.group(1) if last else None
    return BenchProgress(total=int(m.group(1)) if m else None, done=len(outcomes),
                         failed=sum(o in ("FAILED", "ERROR") for _, o in outcomes),
                         current=_short(current))


def _short(nodeid: str | None) -> str | None:
    return nodeid.split("::")[-1] if nodeid else None


class Progress:
    """Stage and bench progress on `stream`. tty: a tqdm bar per benchmark; not a tty: plain
    lines, bench lines throttled to one per `interval` seconds. `clock` is injectable (tests)."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 interval: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.clock = clock
        self.start = clock()
        self._last = float("-inf")
        self._bar = None

    def _stamp(self) -> str:
        s = int(self.clock() - self.start)
        return f"[report {s // 60}:{s % 60:02d}]"

    def line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(f"{self._stamp()} {text}", file=self.stream)
        else:
            print(f"{self._stamp()} {text}", file=self.stream, flush=True)

    def stage_start(self, name: str, index: int, total: int) -> None:
        self.line(f"stage {index} of {total}: {name} ...")

    def stage_end(self, name: str, status: str, seconds: float) -> None:
        self._close_bar()
        self.line(f"stage {name}: {status} ({seconds:.1f} s)")

    def bench(self, p: BenchProgress) -> None:
        if self.tty:
            self._update_bar(p)
            return
        now = self.clock()
        if now - self._last < self.interval:
            return
        self._last = now
        of = f" of {p.total}" if p.total is not None else ""
        failed = f", {p.failed} failed" if p.failed else ""
        running = f"; running {p.current}" if p.current else ""
        self.line(f"bench: {p.done}{of} benchmarks done{failed}{running}")

    def _update_bar(self, p: BenchProgress) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=p.total, desc="bench", unit="benchmark", file=self.stream,
                             leave=False)
        if p.total is not None and self._bar.total != p.total:
            self._bar.total = p.total
        self._bar.update(p.done - self._bar.n)
        if p.current:
            self._bar.set_postfix_str(p.current[:60], refresh=False)
        self._bar.refresh()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Silent(Progress):
    """No output (library calls and tests that do not look at progress)."""

    def __init__(self):
        super().__init__(stream=sys.stdout, tty=False)

    def line(self, text: str) -> None:
        pass

    def bench(self, p: BenchProgress) -> None:
        pass
