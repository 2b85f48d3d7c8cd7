"""FLOPs of a model, predicted and measured, for a notebook or the CLI.

    from analysis.flops_api import flops
    flops(model, "forward", batch=32, seq_len=100)          # a model instance
    flops(ModelConfig("gru", 65), "train", seq_len=20)      # or a config
    flops(cfg, "generate", prompt_len=10, new_tokens=50, kv_cache=True)

`flops` returns a DataFrame: one row per formula term (tier "matmul", the primary count, beside
the measured FLOPs of the modules doing it), a "total" row with both counters and the verdict,
and, for the forward pass, the elementwise tier's rows (tier "elementwise", predicted only:
the counters count no elementwise work). `flops_report` returns the same as a JSON-able dict.
"""

from __future__ import annotations

import copy
import json

import pandas as pd
from torch import nn

from analysis.architectures import config_from_model, cost_model
from analysis.counters import FORWARD_COUNTERS
from analysis.env import environment
from analysis.reconcile import GridPoint, formula_for, reconcile_row
from charlm.models.registry import ModelConfig

DEFAULT_RECURRENT_SEQ_LEN = 20  # the homework's training sequence length


def flops_report(target: nn.Module | ModelConfig, quantity: str = "forward", *, batch: int = 1,
                 seq_len: int | None = None, prompt_len: int = 1, new_tokens: int = 1,
                 kv_cache: bool = False, attention_count: str = "full", measure: bool = True,
                 second_counters: bool = True, head: bool = True, progress=None) -> dict:
    """Predicted and (unless measure=False) measured FLOPs of one quantity, as a dict:
    predicted, formula, terms, measured {counter: int|None} ("torch" and every second
    counter, `counters.FORWARD_COUNTERS`), ratio, measured_terms, verdict, `<name>_note` and
    (when it counted) `<name>_unsupported` per second counter, elementwise (forward),
    convention, sizes, config, environment.

    A ModelConfig is counted on real, meta or fake tensors, whichever is fastest (the same
    counts; counters.tensors_for), at any size; a model instance is counted as it is.
    head=False leaves out the vocabulary projection (Kaplan's C_forward, the homework's
    convention); it is measured for forward and generate. progress: see
    reconcile.reconcile_row."""
    if isinstance(target, ModelConfig):
        cfg, model = target, None
    elif isinstance(target, nn.Module):
        cfg = config_from_model(target)
        # backward and train change gradients and weights: measure a copy
        model = copy.deepcopy(target) if quantity in ("backward", "train") else target
    else:
        raise ValueError(f"expected a model or a ModelConfig, got {type(target).__name__}")
    if seq_len is None:
        seq_len = cfg.block_size if not cfg.recurrent else DEFAULT_RECURRENT_SEQ_LEN
    names = ("torch", *FORWARD_COUNTERS)
    point = GridPoint(cfg, B=batch, T=seq_len, P=prompt_len, N=new_tokens)
    row = reconcile_row(point, quantity, kv_cache, attention_count,
                        second_counters=second_counters, model=model, measure=measure,
                        head=head, progress=progress)
    report = {
        "model": cfg.model,
        "quantity": row["quantity"],
        "predicted": row["predicted"],
        "formula": row["formula"],
        "terms": json.loads(row["terms_predicted"]),
        "measured": {name: row[f"measured_{name}"] for name in names},
        "ratio": {name: row[f"ratio_{name}"] for name in names},
        "measured_terms": json.loads(row["terms_measured"]),
        "verdict": row["verdict"],
        "verdict_detail": row["verdict_detail"],
        "head": head,
        "tensors": row["tensors"],
        **{f"{name}_note": row[f"{name}_note"] for name in FORWARD_COUNTERS},
        "convention": row["convention"],
        "attention_count": attention_count,
        "sizes": {k: v for k, v in point.sizes().items()
                  if k in formula_for(cfg.model, quantity, cfg.attention, kv_cache,
                                      attention_count, head)[2]},
        "config": cfg.to_dict(),
        "environment": environment("cpu"),
    }
    if quantity == "forward":
        tier = cost_model(cfg.model).elementwise()
        report["elementwise"] = tier.evaluate(
            {k: v for k, v in point.sizes().items() if k in tier.free_symbols()})
        report["elementwise_convention"] = tier.convention
    for name in FORWARD_COUNTERS:
        if row[f"{name}_unsupported"] is not None:
            report[f"{name}_unsupported"] = json.loads(row[f"{name}_unsupported"])
    return report


def report_frame(report: dict) -> pd.DataFrame:
    """One row per term (matmul tier, then elementwise tier), and a total row."""
    measured_terms = report["measured_terms"]
    group_of = {t: g for g in measured_terms for t in g.split("+")}
    rows = []
    for term, value in report["terms"].items():
        group = group_of.get(term)
        rows.append({"tier": "matmul", "term": term, "predicted": value,
                     "measured_torch": measured_terms[group] if group == term else None,
                     "measured_group": None if group in (None, term) else
                     f"{group}={measured_terms[group]}"})
    rows.append({"tier": "matmul", "term": "total", "predicted": report["predicted"],
                 **{f"measured_{name}": n for name, n in report["measured"].items()},
                 "ratio_torch": report["ratio"]["torch"], "verdict": report["verdict"]})
    for term, value in report.get("elementwise", {}).items():
        rows.append({"tier": "elementwise", "term": term, "predicted": value})
    frame = pd.DataFrame(rows)
    for column in ("predicted", *(f"measured_{name}" for name in report["measured"])):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    frame["quantity"] = report["quantity"]
    frame["model"] = report["model"]
    frame["convention"] = [report["elementwise_convention"] if t == "elementwise"
                           else report["convention"] for t in frame["tier"]]
    return frame


def flops(target: nn.Module | ModelConfig, quantity: str = "forward", **kw) -> pd.DataFrame:
    """`flops_report` as a DataFrame (see the module docstring)."""
    return report_frame(flops_report(target, quantity, **kw))
