"""Predicted (analysis.formulas) against measured (analysis.counters) FLOPs, one row per
model x size x quantity, with a verdict. Matmul FLOPs must agree exactly with PyTorch's counter
for every quantity and with every second counter (`counters.FORWARD_COUNTERS`, their columns
`measured_<name>`, `ratio_<name>`, `<name>_elementwise`, `<name>_unsupported`, `<name>_note`)
for the forward pass; any difference is a bug.

Per-term breakdown: each formula term is set beside the FLOPs of the modules that do it
(`Architecture.term_modules`). The counter attributes work to modules reliably in forward
passes (forward and generate); in backward its module tracker mis-attributes modules reused
across time steps, so backward and train rows compare totals only.

Bytes (`reconcile_bytes`): each term of an architecture's bytes model beside the bytes the
op trace's ops of the same modules move, in a forward pass; they must agree exactly too.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass, field, replace

import pandas as pd

from analysis import counters
from analysis.architectures import ARCHITECTURES, architecture, cost_model
from analysis.bytes_formulas import measured_terms as measured_bytes
from analysis.env import environment
from analysis.formulas import Terms, convention
from analysis.optrace import trace_quantity
from analysis.parallel import ordered_map
from analysis.quantities import QUANTITIES, check_request
from analysis.trace import counter_notes
from analysis.verdicts import Verdict
from charlm.io import atomic_to_csv
from charlm.models.registry import ModelConfig

SIZE_COLUMNS = ["B", "T", "D", "E", "L", "H", "V", "C", "P", "N"]


@dataclass(frozen=True)
class GridPoint:
    """One model and the sizes its quantities are measured at."""

    cfg: ModelConfig
    B: int = 1
    T: int = 1
    P: int = 1
    N: int = 1
    quantities: tuple = QUANTITIES
    kv_cache: tuple = field(default=(False,))
    label: str = ""  # a named realistic size ("GPT-2 small"), empty for a random one

    def sizes(self) -> dict[str, int]:
        c = self.cfg
        sizes = {"B": self.B, "T": self.T, "D": c.hidden, "E": c.embed, "L": c.layers,
                 "V": c.vocab_size, "P": self.P, "N": self.N}
        if c.heads is not None:
            sizes["H"] = c.heads
        if c.block_size is not None:
            sizes["C"] = c.block_size
        return sizes


def default_grid(per_architecture: int = 40, seed: int = 0, anchors: bool = True
                 ) -> list[GridPoint]:
    """The reconciliation grid: for every registered architecture, `per_architecture` small
    random sizes drawn by its sampler with a fixed seed (matmul counts depend only on shapes),
    then, with `anchors`, its named realistic sizes (GPT-2 small and medium, D and T up to
    2048, the homework's own sizes) under every attention kernel. Counting runs on fake
    tensors, so the realistic sizes cost seconds and no memory."""
    rng = random.Random(seed)
    points = []
    for arch in ARCHITECTURES.values():
        for i in range(per_architecture):
            cfg, sizes, kv = arch.sample(rng, i)
            points.append(GridPoint(cfg, **sizes, kv_cache=kv))
        if not anchors:
            continue
        for label, kw, sizes in arch.anchors:
            for kernel in arch.attention_kinds or (None,):
                cfg = ModelConfig(arch.name, attention=kernel, **kw)
                points.append(GridPoint(cfg, **sizes, label=label,
                                        kv_cache=(False, True) if arch.kv_cache else (False,)))
    return points


def grid_ranges(points: list[GridPoint]) -> pd.DataFrame:
    """Per model: how many points and the range of every size, for stating the grid's reach."""
    rows = [{"model": p.cfg.model, **p.sizes()} for p in points]
    frame = pd.DataFrame(rows)
    out = []
    for model, sub in frame.groupby("model", sort=False):
        row = {"model": model, "points": len(sub)}
        for k in SIZE_COLUMNS:
            if k in sub and sub[k].notna().any():
                lo, hi = int(sub[k].min()), int(sub[k].max())
                row[k] = f"{lo}" if lo == hi else f"{lo}..{hi}"
        out.append(row)
    return pd.DataFrame(out)


GRIDS = {"default": lambda: default_grid(40),
         "quick": lambda: default_grid(3, anchors=False)}


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
        pattern = architecture(cfg.model).term_modules.get(term)
        if pattern is not None:
            groups.setdefault(pattern, []).append(term)
    return {"+".join(names): counters.module_flops(by_module, pattern)
            for pattern, names in groups.items()}


def _ratio(measured, predicted):
    if measured is None:
        return None
    return measured / predicted if predicted else (1.0 if measured == 0 else float("inf"))


def reconcile_row(point: GridPoint, quantity: str, kv_cache: bool = False,
                  attention_count: str = "full", second_counters: bool = True, model=None,
                  measure: bool = True, head: bool = True, progress=None,
                  measurement: counters.FlopMeasurement | None = None) -> dict:
    """Predicted and measured counts of one quantity at one grid point, as a flat row
    (measure=False: the prediction alone, measured columns None). progress: called as
    progress(FLOPs counted so far, FLOPs predicted, seconds) while a count runs long
    (counters.count_flops_torch). measurement: the quantity's count made already (e.g.
    `counters.backward_of` a train step's), used instead of measuring again."""
    cfg, sizes, label = point.cfg, point.sizes(), point.label
    head = head or quantity == "params"  # a parameter count has no head to leave out
    check_request(cfg, quantity, sizes, kv_cache)
    terms, formula, values = predicted_terms(cfg, quantity, sizes, kv_cache, attention_count,
                                             head)
    predicted = values.pop("total")
    measured = measurement if measure else None
    if measure and measured is None:
        report = None if progress is None else (
            lambda counted, seconds: progress(counted, predicted, seconds))
        measured = counters.measure_flops(cfg, quantity, sizes, kv_cache=kv_cache,
                                          second_counters=second_counters, model=model,
                                          progress=report)
    if measured is not None and not head:
        measured = _without_head(cfg, quantity, measured)
    by_term = {}
    if measured is not None and quantity in ("forward", "generate"):
        by_term = measured_terms(cfg, list(values), measured.by_module)
    predicted_by_group = {g: sum(values[t] for t in g.split("+")) for g in by_term}
    problems = []
    comparable = (attention_count == "full" or not architecture(cfg.model).has_attention
                  or quantity == "params")
    detail = ""
    if measured is None:
        verdict = Verdict.NOT_MEASURED
    elif comparable:
        if measured.torch != predicted:
            problems.append(f"torch {measured.torch} != {predicted}")
        problems += [f"{name} {c.total} != {predicted}"
                     for name, c in measured.forward_counts.items()
                     if c.total is not None and c.total != predicted]
        problems += [f"{g}: measured {by_term[g]} != {predicted_by_group[g]}"
                     for g in by_term if by_term[g] != predicted_by_group[g]]
        verdict = Verdict.MISMATCH if problems else Verdict.EXACT
        detail = "; ".join(problems)
    else:
        verdict = Verdict.NOT_COMPARED
        detail = "causal convention, the counters count the full square"
    mt = measured.torch if measured is not None else None
    counts = _second_counts(measured)
    return {
        "model": cfg.model,
        "attention": cfg.attention or "",
        "label": label,
        **{k: sizes.get(k) for k in SIZE_COLUMNS},
        "quantity": quantity + ("_kv_cache" if kv_cache else ""),
        "head": head,
        "predicted": predicted,
        "measured_torch": mt,
        **{f"measured_{name}": c.total for name, c in counts.items()},
        "ratio_torch": _ratio(mt, predicted),
        **{f"ratio_{name}": _ratio(c.total, predicted) for name, c in counts.items()},
        "verdict": str(verdict),
        "verdict_detail": detail,
        "terms_predicted": json.dumps(values),
        "terms_measured": json.dumps(by_term),
        **{column: value for name, c in counts.items()
           for column, value in _count_columns(name, c).items()},
        "tensors": measured.tensors if measured is not None else None,
        "formula": formula,
        "convention": terms.convention,
    }


def _without_head(cfg, quantity, measured):
    """The measurement less the vocabulary projection's own FLOPs. Only forward passes
    attribute work to modules reliably (see the module docstring), so only forward and
    generate can drop the head."""
    if quantity not in ("forward", "generate"):
        raise ValueError(f"head=False is measured for forward and generate only, not {quantity}")
    head = counters.module_flops(measured.by_module, f"^{architecture(cfg.model).head_module}$")
    return replace(measured, torch=measured.torch - head, forward_counts=counters.not_counted(
        lambda name: f"{name} not compared without the head"))


def _second_counts(measured) -> dict:
    """Every registered second counter's Count of a row: what it counted, an empty Count
    where it did not count this quantity, "not measured" without a measurement."""
    if measured is None:
        return counters.not_counted(lambda name: "not measured")
    return {name: measured.forward_counts.get(name, counters.Count(None))
            for name in counters.FORWARD_COUNTERS}


def _count_columns(name: str, c) -> dict:
    unsupported = json.dumps(c.unsupported) if c.unsupported is not None else None
    return {f"{name}_elementwise": c.elementwise, f"{name}_unsupported": unsupported,
            f"{name}_note": c.note}


def reconcile_bytes(point: GridPoint) -> list[dict]:
    """Predicted (the architecture's bytes model) against traced (`analysis.optrace`, fake
    tensors) bytes of one forward pass over (point.B, point.T), per term (ops attributed by
    module path: `Architecture.term_modules`), plus the elementwise rest measured only.
    Rows: term, predicted, measured, ratio."""
    cfg = point.cfg
    arch = architecture(cfg.model)
    bytes_model = arch.bytes
    predicted = bytes_model.forward(cfg.attention).evaluate(point.sizes())
    predicted.pop("total")
    trace = trace_quantity(cfg, "forward", {"B": point.B, "T": point.T})
    measured = measured_bytes(trace.ops, {t: arch.term_modules[t] for t in predicted},
                              bytes_model.kinds)
    rows = [{"term": t, "predicted": predicted[t], "measured": measured[t],
             "ratio": _ratio(measured[t], predicted[t])} for t in predicted]
    rows.append({"term": "rest (elementwise, measured only)", "predicted": None,
                 "measured": trace.bytes - sum(measured.values()), "ratio": None})
    return rows


def point_rows(point: GridPoint, second_counters: bool = True) -> list[dict]:
    """The rows of one grid point: every quantity it measures (generate with and without the
    KV cache where it has one), with one intra-op thread (counters.single_thread). One
    traced train step measures both train and backward (`counters.backward_of`)."""
    with counters.single_thread():
        made = {}
        if {"backward", "train"} <= set(point.quantities):
            # totals only: backward and train rows compare no modules (module docstring)
            train = counters.measure_flops(point.cfg, "train", point.sizes(), modules=False)
            made = {"train": train, "backward": counters.backward_of(train)}
        return [reconcile_row(point, quantity, kv, second_counters=second_counters,
                              measurement=made.get(quantity))
                for quantity in point.quantities
                for kv in (point.kv_cache if quantity == "generate" else (False,))]


ATTENTION_LAYER_OPS = 8  # an attention layer's ops per pass against a recurrent step's


def count_cost(point: GridPoint) -> int:
    """A guess at how long `point_rows(point)` runs, for scheduling only (no row depends on
    it): an op trace costs about the same per dispatched op on fake and meta tensors, so the
    guess is the layer calls its quantities make. A recurrent layer is called once per time
    step: T in each of forward, backward and train, P + N in each generation; an attention
    layer once per pass (the sequence, then each generated token), with about
    ATTENTION_LAYER_OPS times a recurrent step's ops."""
    layers = point.cfg.layers or 1
    passes = sum(q in point.quantities for q in ("forward", "backward", "train"))
    generations = len(point.kv_cache) if "generate" in point.quantities else 0
    if architecture(point.cfg.model).has_attention:
        return ATTENTION_LAYER_OPS * layers * (passes + generations * point.N)
    return layers * (passes * point.T + generations * (point.P + point.N))


def reconcile(points: list[GridPoint], second_counters: bool = True, progress=None,
              workers: int = 1) -> pd.DataFrame:
    """The reconciliation table for a list of grid points, environment columns appended.
    workers > 1: the points are counted in that many processes (analysis.parallel; counts do
    not depend on time), the longest first (`count_cost`), the rows in the points' order.
    progress(point) after each point, in the order they are counted."""
    count = functools.partial(point_rows, second_counters=second_counters)
    # longest first, one point at a time: the last point a process takes is a short one
    order = sorted(range(len(points)), key=lambda i: -count_cost(points[i]))
    found: list = [None] * len(points)
    for i, point_found in zip(order, ordered_map(count, [points[i] for i in order], workers)):
        found[i] = point_found
        if progress is not None:
            progress(points[i])
    rows = [row for point_found in found for row in point_found]
    with counters.single_thread():
        env = environment("cpu")
    frame = pd.DataFrame(rows)
    for key in ("torch", "device", "device_name", "threads", "python", "git_commit", "date"):
        frame[f"env_{key}"] = env[key]
    for name, c in counters.FORWARD_COUNTERS.items():
        frame[f"env_{name}"] = c.version()
    frame["env_torch_notes"] = "; ".join(counter_notes())
    return frame


def write_reconciliation(frame: pd.DataFrame, path) -> object:
    return atomic_to_csv(frame, path)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows, exact rows and ratio range per model and quantity."""
    return (frame.assign(exact=frame["verdict"].eq(Verdict.EXACT.value))
            .groupby(["model", "quantity"], sort=False)
            .agg(rows=("exact", "size"), exact=("exact", "sum"),
                 ratio_min=("ratio_torch", "min"), ratio_max=("ratio_torch", "max"))
            .reset_index())


__all__ = ["GRIDS", "GridPoint", "convention", "grid_ranges", "default_grid", "reconcile",
           "reconcile_bytes", "reconcile_row", "summary", "write_reconciliation"]
