"""The bench's results as files, apart from what runs or reads them: where the bench's pytest
files are, a benchmark's key, and the merge of bench JSONs (the shards of one sweep, or the
sweeps of several clusters) into one. `analysis.sweep` merges its shards with it, the report
(`analysis.report`) reads several bench JSONs through it, `charlm merge` is its command.

A benchmark's key is its pytest node id without directories
(`test_models.py::test_model_phase[rnn-forward-B4-T16-D256-L1-cpu]`): the same in the
collection, in pytest-benchmark's JSON (`fullname`) and in `charlm_failures`.

Merge (`merge`): bench JSONs of one commit, device, torch version and thread setting (else
ValueError unless allow_mixed), duplicates dropped (first kept), and the grid's keys that
no file timed listed as missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from charlm.io import atomic_write_text, read_json_object

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"
BENCH_FILES = ("test_models.py", "test_reference.py", "test_attention.py", "test_pairs.py")


def bench_files() -> list[Path]:
    return [BENCH_DIR / f for f in BENCH_FILES]


def item_key(nodeid: str) -> str:
    """A benchmark's key: its node id with the directories of its file dropped."""
    path, sep, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def identity(data: dict) -> dict:
    """What a shard's numbers depend on and shards must share: commit, devices (type and
    name), torch version, thread setting."""
    block = data.get("charlm") or {}
    env = block.get("env") or {}
    commit = block.get("commit") or (data.get("commit_info") or {}).get("id")
    return {
        "commit": commit[:7] if commit else None,
        "devices": ", ".join(f"{d} {e.get('device_name')}" for d, e in sorted(env.items()))
        or None,
        "torch": ", ".join(sorted({str(e.get("torch")) for e in env.values()})) or None,
        "threads": (block.get("backends") or {}).get("threads"),
    }


@dataclass
class Merged:
    data: dict
    missing: list[str]
    duplicates: int
    sources: list[dict] = field(default_factory=list)

    @property
    def timed(self) -> int:
        return len(self.data["benchmarks"])


def merge(shards: list[tuple[str, dict]], allow_mixed: bool = False,
          expected: list[str] | None = None) -> Merged:
    """Merge pytest-benchmark JSONs (name, data). ValueError when they differ in commit,
    devices, torch version or threads (unless allow_mixed); duplicates (the same benchmark
    on the same devices) keep the first, so with allow_mixed the same benchmark timed on two
    machines is kept twice, once per machine; `missing`: keys of the grid (expected, else
    the union of the shards' grid_workloads) that no shard timed, in grid order."""
    if not shards:
        raise ValueError("nothing to merge: no shard JSON")
    first_name, first = shards[0]
    ref = identity(first)
    if not allow_mixed:
        for name, data in shards[1:]:
            other = identity(data)
            for what in ("commit", "devices", "torch", "threads"):
                if other[what] != ref[what]:
                    raise ValueError(
                        f"refusing to merge: {what} differs: {first_name} has {ref[what]}, "
                        f"{name} has {other[what]} (--allow-mixed merges anyway)")
    benchmarks, seen, duplicates, sources = [], set(), 0, []
    grid: list[str] = list(expected) if expected is not None else []
    failures: dict[str, dict] = {}
    kept = set()  # (key, devices): the same benchmark on another machine is no duplicate
    for name, data in shards:
        block = data.get("charlm") or {}
        machine = identity(data)["devices"]
        timed = 0
        for b in data.get("benchmarks", []):
            key = item_key(b.get("fullname", ""))
            if (key, machine) in kept:
                duplicates += 1
                continue
            kept.add((key, machine))
            seen.add(key)
            benchmarks.append(b)
            timed += 1
        for f in data.get("charlm_failures") or []:
            failures.setdefault(item_key(f.get("test", "")), f)
        if expected is None:
            grid += [k for k in block.get("grid_workloads") or [] if k not in grid]
        shard = block.get("shard") or {}
        sources.append({"file": name, "shard": shard.get("index"), "of": shard.get("count"),
                        "node": block.get("node"), "status": block.get("status"),
                        "timed": timed, **identity(data)})
    if expected is None:
        grid += [k for k in (item_key(b["fullname"]) for b in benchmarks) if k not in grid]
    missing = [k for k in grid if k not in seen]
    out = {k: v for k, v in first.items() if k not in ("benchmarks", "charlm_failures")}
    out["benchmarks"] = benchmarks
    out["charlm"] = {**(first.get("charlm") or {}), "shard": None, "node": None,
                     "slurm": None, "status": "merged", "merged_from": sources,
                     "grid_workloads": grid, "workloads": grid,
                     "finished": sorted(seen), "missing": missing,
                     "mixed": allow_mixed and len({json.dumps(identity(d), sort_keys=True)
                                                   for _, d in shards}) > 1}
    out["charlm_failures"] = [f for k, f in failures.items() if k not in seen]
    return Merged(out, missing, duplicates, sources)


def load_json(path: str | Path) -> dict:
    data = read_json_object(path, "bench JSON")
    if not isinstance(data.get("benchmarks"), list):
        found = f"keys {', '.join(list(data)[:6])}"
        raise ValueError(f"{path}: not a bench JSON: expected pytest-benchmark's object with a "
                         f"'benchmarks' list (a shard's or charlm merge's output), found {found}")
    return data


def merge_files(paths: list[str | Path], out: str | Path | None = None,
                allow_mixed: bool = False, expected: list[str] | None = None) -> Merged:
    merged = merge([(str(p), load_json(p)) for p in paths], allow_mixed, expected)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out), json.dumps(merged.data, indent=1))
    return merged
