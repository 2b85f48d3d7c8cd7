"""Progress of `charlm report`: a live bar per benchmark on a terminal, and otherwise a plain
line at every stage start and end and at most every `interval` seconds in between (bench
progress read from the bench log as it grows), so a log file or CI shows where a long run is.
Once the stages are planned (`Progress.plan`, with each stage's expected seconds), a
heartbeat line names the running stage and the time the rest of the report will take
whenever `heartbeat_s` seconds passed without a line, and every stage line says it too.
"""

from __future__ import annotations

import re
import sys
import threading
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


HEARTBEAT_S = 10.0  # at most this long without a line while a stage runs


def _clock_text(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    return f"{s // 60}:{s % 60:02d}"


class Progress:
    """Stage and bench progress on `stream`. tty: a tqdm bar per benchmark; not a tty: plain
    lines, bench lines throttled to one per `interval` seconds. `clock` is injectable (tests)."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 interval: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 heartbeat_s: float = HEARTBEAT_S):
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.clock = clock
        self.start = clock()
        self._last = float("-inf")
        self._bar = None
        self.heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._last_line = clock()
        self._expected: dict[str, float] = {}  # stage -> expected seconds, in run order
        self._done: dict[str, tuple[float, float]] = {}  # stage -> (expected, actual)
        self._current: tuple[str, float] | None = None  # running stage and its start
        self._stop: threading.Event | None = None

    def _stamp(self) -> str:
        return f"[report {_clock_text(self.clock() - self.start)}]"

    def line(self, text: str) -> None:
        with self._lock:
            self._last_line = self.clock()
            if self._bar is not None:
                self._bar.write(f"{self._stamp()} {text}", file=self.stream)
            else:
                print(f"{self._stamp()} {text}", file=self.stream, flush=True)

    # ------------------------------------------------------------------ plan and heartbeat

    def plan(self, expected: dict[str, float]) -> None:
        """The stages still to run, in order, with their expected seconds; starts the
        heartbeat (stopped by `finish`)."""
        self._expected = dict(expected)
        if self._stop is None and self.heartbeat_s > 0:
            self._stop = threading.Event()
            threading.Thread(target=self._beat, args=(self._stop,), daemon=True).start()

    def pace(self) -> float:
        """Actual over expected seconds of the stages done so far (1 until they add up to
        10 s): the machine's pace against the expectation, applied to the rest."""
        expected = sum(e for e, _ in self._done.values())
        actual = sum(a for _, a in self._done.values())
        return min(4.0, max(0.25, actual / expected)) if expected >= 10 else 1.0

    def remaining_s(self) -> float | None:
        """Seconds the rest of the report will take at the pace so far, None unplanned."""
        if not self._expected:
            return None
        later = [n for n in self._expected if n not in self._done]
        rest = 0.0
        for name in later:
            want = self._expected[name] * self.pace()
            if self._current is not None and name == self._current[0]:
                want = max(0.0, want - (self.clock() - self._current[1]))
            rest += want
        return rest

    def _rest_text(self) -> str:
        rest = self.remaining_s()
        return "" if rest is None else f"; about {_clock_text(rest)} left in the report"

    def _beat(self, stop: threading.Event) -> None:
        poll = min(0.5, self.heartbeat_s / 4)  # a line is due before heartbeat_s has passed
        while not stop.wait(poll):
            if self._current is None or \
                    self.clock() - self._last_line < self.heartbeat_s - 2 * poll:
                continue
            name, started = self._current
            self.line(f"stage {name} running for {_clock_text(self.clock() - started)}"
                      f"{self._rest_text()}")

    def finish(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        self._close_bar()

    # ------------------------------------------------------------------ stages

    def stage_start(self, name: str, index: int, total: int) -> None:
        self._current = (name, self.clock())
        self.line(f"stage {index} of {total}: {name} ...{self._rest_text()}")

    def stage_end(self, name: str, status: str, seconds: float) -> None:
        self._close_bar()
        if name in self._expected:
            self._done[name] = (self._expected[name], seconds)
        self._current = None
        self.line(f"stage {name}: {status} ({seconds:.1f} s){self._rest_text()}")

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
        self.line(f"bench: {p.done}{of} benchmarks done{failed}{running}{self._rest_text()}")

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
        super().__init__(stream=sys.stdout, tty=False, heartbeat_s=0)

    def line(self, text: str) -> None:
        pass

    def bench(self, p: BenchProgress) -> None:
        pass
