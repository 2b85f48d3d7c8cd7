"""Bench grids as files: what `pytest bench --charlm-grid FILE.toml` and `charlm sweep --grid`
time. The built-in grids quick, default and full are files of this same schema under
analysis/data/grids/.

Schema (every key optional unless said; sizes are lists of positive integers):

    name = "mine"            # default: the file's stem
    description = "..."
    batch = 4                # B of every workload (required)
    rounds = 3               # timed rounds per workload (required)
    warmup = 1               # untimed rounds before them (default 0)

    [models]                 # every model variant x phase (bench/test_models.py)
    variants = ["rnn", "transformer"]   # model variants or architectures (default: all)
    phases = ["forward", "train", "generate", "generate_cache"]   # default: all
    T = [16, 64]             # forward/train at each T, default width (required here)
    D = [64]                 # forward/train at each width, the middle T
    L = [2]                  # forward/train at each depth, the middle T (stacked models)
    N = [16]                 # generate N tokens (and with the KV cache where there is one)
    prompt = 4               # P, the prompt of generation (default 4)

    [reference]              # homework loop beside its torch.nn twin (bench/test_reference.py)
    variants = ["gru"]       # models with a torch.nn twin (default: all of them)
    T = [64]                 # forward and train at each T (required here)

    [attention]              # one attention layer, every kernel (bench/test_attention.py)
    T = [64, 256]            # on CPU (required here)
    cuda_T = [128, 1024]     # on CUDA (default: 128 .. 2048)

A table left out times nothing of its kind; a grid that times nothing is an error. This
module reads a file; `analysis.workloads.load_grid` also checks that every workload it names
builds. Errors are one line naming the file and the key: `grid mine.toml: models.variants:
unknown model 'lstm'; choose from ...`, `grid mine.toml: models.D = 30: transformer-flash
cannot take it: ...`.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GRID_DIR = Path(__file__).resolve().parent / "data" / "grids"
BUILTIN = ("quick", "default", "full")
GPU_ATTENTION_T = (128, 256, 512, 1024, 2048)  # the SDPA vs manual sweep on CUDA

TOP_KEYS = {"name", "description", "batch", "rounds", "warmup", "models", "reference",
            "attention"}
TABLE_KEYS = {"models": {"variants", "phases", "T", "D", "L", "N", "prompt"},
              "reference": {"variants", "T"},
              "attention": {"T", "cuda_T"}}


@dataclass(frozen=True)
class GridSpec:
    """A bench grid. Empty size tuples time nothing on that axis; `variants`, `phases` and
    `reference_variants` None mean every one the architecture table has."""

    batch: int
    T: tuple[int, ...]
    D: tuple[int, ...]
    L: tuple[int, ...]
    N: tuple[int, ...]
    prompt: int
    attention_T: tuple[int, ...]
    reference_T: tuple[int, ...]
    rounds: int
    warmup: int
    name: str = "custom"
    description: str = ""
    variants: tuple[str, ...] | None = None
    phases: tuple[str, ...] | None = None
    reference_variants: tuple[str, ...] | None = None
    attention_cuda_T: tuple[int, ...] = GPU_ATTENTION_T
    source: str | None = None  # the file it was read from

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def source_name(source) -> str:
    return Path(source).name if source else "<grid>"


def _sizes(where: str, key: str, value, *, required: bool = False) -> tuple[int, ...]:
    if value is None:
        if required:
            raise ValueError(f"grid {where}: {key} is missing (a list of positive integers)")
        return ()
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError(f"grid {where}: {key} must be a list of positive integers, "
                         f"got {value!r}")
    if required and not value:
        raise ValueError(f"grid {where}: {key} is empty")
    if len(set(value)) != len(value):
        raise ValueError(f"grid {where}: {key} repeats a size: {value!r}")
    return tuple(value)


def _int(where: str, key: str, value, *, minimum: int = 1, default=None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"grid {where}: {key} must be {what}, got {value!r}")
    return value


def _names(where: str, key: str, value) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"grid {where}: {key} must be a non-empty list of names, got {value!r}")
    return tuple(value)


def parse_grid(data: dict, source: str | Path | None = None, name: str | None = None
               ) -> GridSpec:
    """A GridSpec from a parsed grid file: keys, types and positive sizes checked (what the
    models can take is checked by `analysis.workloads.check_grid`)."""
    where = source_name(source)
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ValueError(f"grid {where}: unknown key {unknown[0]!r}; "
                         f"choose from {', '.join(sorted(TOP_KEYS))}")
    tables = {}
    for table, keys in TABLE_KEYS.items():
        value = data.get(table)
        if value is None:
            tables[table] = None
            continue
        if not isinstance(value, dict):
            raise ValueError(f"grid {where}: {table} must be a table ([{table}])")
        bad = sorted(set(value) - keys)
        if bad:
            raise ValueError(f"grid {where}: unknown key {table}.{bad[0]}; "
                             f"choose from {', '.join(sorted(keys))}")
        tables[table] = value
    models = tables["models"] or {}
    reference = tables["reference"] or {}
    attention = tables["attention"] or {}
    label = data.get("name", name or (Path(source).stem if source else "custom"))
    if not isinstance(label, str) or not label:
        raise ValueError(f"grid {where}: name must be a non-empty string, got {label!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"grid {where}: description must be a string")
    return GridSpec(
        batch=_int(where, "batch", data.get("batch")),
        rounds=_int(where, "rounds", data.get("rounds")),
        warmup=_int(where, "warmup", data.get("warmup"), minimum=0, default=0),
        T=_sizes(where, "models.T", models.get("T"), required=bool(tables["models"])),
        D=_sizes(where, "models.D", models.get("D")),
        L=_sizes(where, "models.L", models.get("L")),
        N=_sizes(where, "models.N", models.get("N")),
        prompt=_int(where, "models.prompt", models.get("prompt"), default=4),
        variants=_names(where, "models.variants", models.get("variants")),
        phases=_names(where, "models.phases", models.get("phases")),
        reference_T=_sizes(where, "reference.T", reference.get("T"),
                           required=bool(tables["reference"])),
        reference_variants=_names(where, "reference.variants", reference.get("variants")),
        attention_T=_sizes(where, "attention.T", attention.get("T"),
                           required=bool(tables["attention"])),
        attention_cuda_T=(_sizes(where, "attention.cuda_T", attention["cuda_T"])
                          if "cuda_T" in attention else GPU_ATTENTION_T),
        name=label,
        description=description,
        source=str(source) if source else None,
    )


def read_grid(path: str | Path, name: str | None = None) -> GridSpec:
    """Parse a grid file (schema checks only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"grid file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"grid {path.name}: not valid TOML: {exc}") from None
    return parse_grid(data, path, name)


def builtin_grids() -> dict[str, GridSpec]:
    return {name: read_grid(GRID_DIR / f"{name}.toml", name) for name in BUILTIN}


def grid_file(grid: str | Path) -> Path:
    """The file behind a grid name (quick, default, full) or path."""
    if str(grid) in BUILTIN:
        return GRID_DIR / f"{grid}.toml"
    path = Path(grid)
    if not path.is_file():
        raise FileNotFoundError(f"grid file not found: {path} (or name one of "
                                f"{', '.join(BUILTIN)})")
    return path


def is_grid_path(grid) -> bool:
    text = str(grid)
    return text.endswith(".toml") or "/" in text or Path(text).is_file()

