"""The report's configuration and the context its stages share: where a run writes
(`ReportConfig`, `default_out`, `reference_out`) and what a stage reads and notes there
(`Context`). Below `pipeline` (the stages) and `render` (REPORT.md), which both take them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.report.progress import Progress, Silent

REPO = Path(__file__).resolve().parents[2]
STAGES_FILE = "stages.csv"
PARTIAL_DIR = ".partial"
RUNS_DIR = Path("runs") / "report"
REFERENCE_DIR = REPO / "results" / "reference"
FULL_GRID = "default"
QUICK_CI_TARGET = 0.05  # the bench's precision target in a quick run (a full one: 2%)


def default_out(device: str, quick: bool = False) -> Path:
    """Where a run writes unless told otherwise: git-ignored, never a committed reference."""
    return RUNS_DIR / (f"{device}-quick" if quick else device)


def reference_out(device: str) -> Path:
    return REFERENCE_DIR / device


@dataclass(frozen=True)
class ReportConfig:
    out: Path | None = None  # None: default_out(device, quick), or reference_out(device)
    device: str = "cpu"
    quick: bool = False
    force: bool = False
    threads: int = 1
    bench_json: Path | tuple[Path, ...] | None = None  # saved bench JSON(s) instead of a run
    train_steps: int | None = None  # default: 300, quick: 40
    train_models: tuple[str, ...] | None = None  # None: every model of the architecture table
    ceiling_n: int | None = None  # matmul size; default per device
    stages: tuple[str, ...] | None = None  # a subset of pipeline.STAGES (None: all; checked
    # by build_report)
    reference: bool = False  # refresh the committed reference results/reference/<device>/
    compare_with: tuple[Path, ...] | None = None  # other report folders (None: every other
    # committed reference under results/reference/ holding a timing.csv)
    repeat: int = 1  # >= 2: run the paired comparisons that many times, in separate processes
    only: str | None = None  # a pytest -k expression: bench only the matching benchmarks
    budget: float | None = None  # seconds of timed rounds per benchmark (bench default: 1)

    def __post_init__(self):
        from charlm.validate import positive_int

        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        positive_int("threads", self.threads)
        positive_int("train_steps", self.train_steps, allow_none=True)
        if self.reference:
            if self.out is not None:
                raise ValueError("--reference writes to results/reference/<device>/; "
                                 "leave out --out")
            if self.quick:
                raise ValueError("a reference holds a full run; --quick cannot refresh it")
            object.__setattr__(self, "out", reference_out(self.device))
        out = default_out(self.device, self.quick) if self.out is None else self.out
        object.__setattr__(self, "out", Path(out))
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file, not a folder")
        if self.bench_json is not None:  # one file, or several to merge (analysis.merge)
            many = [self.bench_json] if isinstance(self.bench_json, (str, Path)) \
                else list(self.bench_json)
            paths = tuple(Path(p) for p in many)
            for p in paths:
                if not p.is_file():
                    raise FileNotFoundError(f"bench JSON not found: {p}")
            object.__setattr__(self, "bench_json", paths[0] if len(paths) == 1 else paths)
        if self.train_models is not None:
            object.__setattr__(self, "train_models", tuple(self.train_models))
        positive_int("repeat", self.repeat)
        if self.budget is not None and not self.budget > 0:
            raise ValueError(f"budget must be a positive number of seconds, got {self.budget}")
        if self.compare_with is not None:
            object.__setattr__(self, "compare_with", tuple(Path(p) for p in self.compare_with))
            for folder in self.compare_with:
                if not (folder / "timing.csv").is_file():
                    raise FileNotFoundError(f"--compare-with {folder}: no timing.csv there")

    @property
    def grid(self) -> str:
        return "quick" if self.quick else FULL_GRID

    @property
    def steps(self) -> int:
        return self.train_steps or (40 if self.quick else 300)

    @property
    def ci_target(self) -> float | None:
        """The bench's precision target (half-width of each median's 95% interval, as a
        fraction of it): QUICK_CI_TARGET for a quick run, None (the bench's CI_TARGET, 2%)
        for a full one. A 5% target needs about a sixth of a 2% target's rounds."""
        return QUICK_CI_TARGET if self.quick else None

    @property
    def calibration_passes(self) -> int:
        """Passes of the calibrate stage's calibration: 1 for a quick run (about a third of
        the time), analysis.calibrate.PASSES for a full one."""
        from analysis.calibrate import PASSES

        return 1 if self.quick else PASSES

    @property
    def models(self) -> tuple[str, ...]:
        """The models the training stage runs: train_models, or the architecture table's."""
        if self.train_models is not None:
            return self.train_models
        from analysis.architectures import ARCHITECTURES

        return tuple(ARCHITECTURES)

    def settings(self, stage: str) -> str:
        """What a stage's result depends on (code version and machine included); a change
        discards the saved result instead of mixing it with new cells."""
        from analysis.env import device_name, git_commit

        common = {"device": self.device, "device_name": device_name(self.device),
                  "threads": self.threads, "grid": self.grid, "commit": git_commit()}
        extra = {"training": lambda: {"steps": self.steps, "models": list(self.models)},
                 "bench": lambda: {"bench_json": str(self.bench_json) if self.bench_json
                                   else None, "only": self.only, "budget": self.budget,
                                   "ci_target": self.ci_target},
                 "ceiling": lambda: {"n": self.ceiling_n},
                 "calibrate": lambda: {"passes": self.calibration_passes},
                 "repeat": lambda: {"repeat": self.repeat, "only": self.only,
                                    "budget": self.budget}}.get(stage, dict)()
        return json.dumps({**common, **extra}, sort_keys=True)


@dataclass
class Context:
    cfg: ReportConfig
    notes: dict[str, list[str]] = field(default_factory=dict)
    progress: Progress = field(default_factory=Silent)
    stage_settings: str = ""  # the settings of the stage running now (names its partial file)
    resume_table: bool = True  # whether the stage's last table may seed run_cells

    def path(self, name: str) -> Path:
        return self.cfg.out / name

    def read(self, name: str) -> pd.DataFrame | None:
        return read_csv(self.path(name))

    def note(self, stage: str, text: str) -> None:
        self.notes.setdefault(stage, []).append(text)

    def partial_path(self, name: str) -> Path:
        key = hashlib.sha1(self.stage_settings.encode()).hexdigest()[:10]
        return self.path(PARTIAL_DIR) / f"{Path(name).stem}.{key}.csv"


def read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None
