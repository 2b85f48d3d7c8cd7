"""Predicted (analysis.formulas) against measured (analysis.counters) FLOPs, one row per
model x size x quantity, with a verdict. Matmul FLOPs must agree exactly with PyTorch's counter
for every quantity and with fvcore for the forward pass; any difference is a bug.

Per-term breakdown: each formula term is set beside the FLOPs of the modules that do it
(TERM_MODULES). The counter attributes work to modules reliably in forward passes (forward and
generate); in backward its module tracker mis-attributes modules reused across time steps, so
backward and train rows compare totals only.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass, field

import pandas as pd

from analysis import counters
from analysis.env import environment
from analysis.formulas import Terms, convention, cost_model
from charlm.io import atomic_to_csv
from charlm.models.registry import ModelConfig, build_model

# formula term -> regex on the module path (as in model.named_modules()) whose own FLOPs do it;
# terms sharing a regex (scores, weighted_values) are compared as their sum.
TERM_MODULES: dict[str, dict[str, str]] = {
    "rnn": {"W_ih": r"^W_ih(\.\d+)?$", "W_hh": r"^W_hh(\.\d+)?$", "fc": r"^fc$"},
    "gru": {"W_x": r"\.W_x[rzn]$", "W_h": r"\.W_h[rzn]$", "fc": r"^fc$"},
    "transformer": {
        "qkv": r"\.attn\.c_attn$",
        "scores": r"\.attn$",
        "weighted_values": r"\.attn$",
        "out_proj": r"\.attn\.c_proj$",
        "mlp": r"\.mlp\.\d+$",
        "lm_head": r"^lm_head$",
    },
}
TERM_MODULES["mlrnn"] = TERM_MODULES["rnn"]

SIZE_COLUMNS = ["B", "T", "D", "E", "L", "H", "V", "C", "P", "N"]


@dataclass(frozen=True)
class GridPoint:
    """One model and the sizes its quantities are measured at."""

    cfg: ModelConfig
    B: int = 1
    T: int = 1
    P: int = 1
    N: int = 1
    quantities: tuple = ("params", "forward", "backward", "train", "generate")
    kv_cache: tuple = field(default=(False,))

    def sizes(self) -> dict[str, int]:
        c = self.cfg
        sizes = {"B": self.B, "T": self.T, "D": c.hidden, "E": c.embed, "L": c.layers,
                 "V": c.vocab_size, "P": self.P, "N": self.N}
        if not c.recurrent:
            sizes.update(H=c.heads, C=c.block_size)
        return sizes


def _recurrent_points(model: str, count: int, rng: random.Random) -> list[GridPoint]:
    points = []
    for _ in range(count):
        layers = 1 if model == "rnn" else rng.choice([1, 2, 3]) if model == "gru" else rng.choice([2, 3])
        cfg = ModelConfig(model, vocab_size=rng.choice([5, 11, 29]), embed=rng.choice([3, 8, 16]),
                          hidden=rng.choice([4, 8, 16, 24]), layers=layers)
        points.append(GridPoint(cfg, B=rng.choice([1, 2, 3]), T=rng.choice([1, 2, 3, 5, 8]),
                                P=rng.choice([1, 2, 4]), N=rng.choice([1, 2, 3])))
    return points


def _transformer_points(count: int, rng: random.Random) -> list[GridPoint]:
    points = []
    for i in range(count):
        heads = rng.choice([1, 2, 4])
        block = rng.choice([6, 8, 12])
        cfg = ModelConfig("transformer", vocab_size=rng.choice([5, 11, 29]),
                          hidden=heads * rng.choice([2, 4, 6]), layers=rng.choice([1, 2]),
                          heads=heads, block_size=block,
                          attention="flash" if i % 2 == 0 else "manual")
        # prompts and lengths in all three generation regimes: within, crossing, beyond the window
        prompt = [rng.randint(1, block // 2), rng.randint(1, block - 1), block + rng.randint(0, 2)][i % 3]
        points.append(GridPoint(cfg, B=rng.choice([1, 2, 3]), T=rng.randint(1, block),
                                P=prompt, N=rng.randint(1, block), kv_cache=(False, True)))
    return points


def default_grid(per_architecture: int = 40, seed: int = 0) -> list[GridPoint]:
    """The reconciliation grid: `per_architecture` sizes for the Elman RNN (a quarter of them
    single-layer `rnn`, the rest `mlrnn`), the GRU and the Transformer (flash and manual
    alternating), drawn with a fixed seed. Sizes are small: matmul counts depend only on
    shapes, and the counters' per-op overhead is what costs time."""
    rng = random.Random(seed)
    single = per_architecture // 4
    return (_recurrent_points("rnn", single, rng)
            + _recurrent_points("mlrnn", per_architecture - single, rng)
            + _recurrent_points("gru", per_architecture, rng)
            + _transformer_points(per_architecture, rng))


GRIDS = {"default": lambda: default_grid(40), "quick": lambda: default_grid(3)}


@functools.cache
def formula_for(model: str, quantity: str, kernel: str | None = None, kv_cache: bool = False,
                attention_count: str = "full", head: bool = True) -> tuple[Terms, str, frozenset]:
    """(Terms, formula string, free symbol names) of one quantity, built once per process."""
    kw: dict = {}
    if quantity in ("forward", "backward", "train", "generate"):
        kw.update(attention_count=attention_count, head=head)
    if quantity in ("backward", "train"):
        kw["kernel"] = kernel or "manual"
    if quantity == "generate":
        kw["kv_cache"] = kv_cache
    terms = cost_model(model).quantity(quantity, **kw)
    return terms, terms.formula(), frozenset(terms.free_symbols())


def predicted_terms(cfg: ModelConfig, quantity: str, sizes: dict, kv_cache: bool = False,
                    attention_count: str = "full", head: bool = True):
    """(Terms, formula string, evaluated dict) of `quantity` for the model `cfg` describes."""
    terms, formula, needed = formula_for(cfg.model, quantity, cfg.attention, kv_cache,
                                         attention_count, head)
    values = terms.evaluate({k: v for k, v in sizes.items() if k in needed})
    return terms, formula, values


def measured_terms(cfg: ModelConfig, terms: list[str], by_module: dict[str, int]) -> dict:
    """Measured FLOPs per term group ("scores+weighted_values" where terms share modules)."""
    groups: dict[str, list[str]] = {}
    for term in terms:
        pattern = TERM_MODULES[cfg.model].get(term)
        if pattern is not None:
            groups.setdefault(pattern, []).append(term)
    return {"+".join(names): counters.module_flops(by_module, pattern)
            for pattern, names in groups.items()}


def _ratio(measured, predicted):
    if measured is None:
        return None
    return measured / predicted if predicted else (1.0 if measured == 0 else float("inf"))


def reconcile_row(point: GridPoint, quantity: str, kv_cache: bool = False,
                  attention_count: str = "full", fvcore: bool = True, model=None,
                  measure: bool = True) -> dict:
    """Predicted and measured counts of one quantity at one grid point, as a flat row
    (measure=False: the prediction alone, measured columns None)."""
    cfg, sizes = point.cfg, point.sizes()
    counters.check_request(cfg, quantity, sizes, kv_cache)
    terms, formula, values = predicted_terms(cfg, quantity, sizes, kv_cache, attention_count)
    if measure:
        measured = counters.measure_flops(cfg, quantity, sizes, kv_cache=kv_cache,
                                          fvcore=fvcore, model=model)
    else:
        measured = dict.fromkeys(("torch", "fvcore", "fvcore_elementwise", "fvcore_unsupported"))
        measured["torch_by_module"] = {}
    predicted = values.pop("total")
    by_term = {}
    if measure and quantity in ("forward", "generate"):
        by_term = measured_terms(cfg, list(values), measured["torch_by_module"])
    predicted_by_group = {g: sum(values[t] for t in g.split("+")) for g in by_term}
    problems = []
    comparable = attention_count == "full" or cfg.recurrent or quantity == "params"
    if not measure:
        verdict = "not measured"
    elif comparable:
        if measured["torch"] != predicted:
            problems.append(f"torch {measured['torch']} != {predicted}")
        if measured["fvcore"] is not None and measured["fvcore"] != predicted:
            problems.append(f"fvcore {measured['fvcore']} != {predicted}")
        problems += [f"{g}: measured {by_term[g]} != {predicted_by_group[g]}"
                     for g in by_term if by_term[g] != predicted_by_group[g]]
        verdict = "exact" if not problems else "MISMATCH " + "; ".join(problems)
    else:
        verdict = "not compared: causal convention, the counters count the full square"
    row = {
        "model": cfg.model,
        "attention": cfg.attention or "",
        **{k: sizes.get(k) for k in SIZE_COLUMNS},
        "quantity": quantity + ("_kv_cache" if kv_cache else ""),
        "predicted": predicted,
        "measured_torch": measured["torch"],
        "measured_fvcore": measured["fvcore"],
        "ratio_torch": _ratio(measured["torch"], predicted),
        "ratio_fvcore": _ratio(measured["fvcore"], predicted),
        "verdict": verdict,
        "terms_predicted": json.dumps(values),
        "terms_measured": json.dumps(by_term),
        "fvcore_elementwise": measured["fvcore_elementwise"],
        "fvcore_unsupported": json.dumps(measured["fvcore_unsupported"])
        if measured["fvcore_unsupported"] is not None else None,
        "formula": formula,
        "convention": terms.convention,
    }
    return row


def reconcile(points: list[GridPoint], fvcore: bool = True, progress=None) -> pd.DataFrame:
    """The reconciliation table for a list of grid points, environment columns appended
    (measured with one intra-op thread, see counters.single_thread)."""
    rows = []
    with counters.single_thread():
        for point in points:
            model = build_model(point.cfg)  # one model per point, reused by its quantities
            for quantity in point.quantities:
                for kv in point.kv_cache if quantity == "generate" else (False,):
                    rows.append(reconcile_row(point, quantity, kv, fvcore=fvcore, model=model))
            if progress is not None:
                progress(point)
        env = environment("cpu")
    frame = pd.DataFrame(rows)
    for key in ("torch", "device", "device_name", "threads", "python", "git_commit", "date"):
        frame[f"env_{key}"] = env[key]
    frame["env_fvcore"] = _fvcore_version()
    frame["env_torch_notes"] = "; ".join(counters.torch_counter_notes())
    return frame


def _fvcore_version() -> str | None:
    if not counters.fvcore_available():
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fvcore")
    except PackageNotFoundError:
        return None


def write_reconciliation(frame: pd.DataFrame, path) -> object:
    return atomic_to_csv(frame, path)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows, exact rows and ratio range per model and quantity."""
    return (frame.assign(exact=frame["verdict"].eq("exact"))
            .groupby(["model", "quantity"], sort=False)
            .agg(rows=("exact", "size"), exact=("exact", "sum"),
                 ratio_min=("ratio_torch", "min"), ratio_max=("ratio_torch", "max"))
            .reset_index())


__all__ = ["GRIDS", "GridPoint", "TERM_MODULES", "convention", "default_grid", "reconcile",
           "reconcile_row", "summary", "write_reconciliation"]
