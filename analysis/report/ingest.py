"""Reading the bench's pytest-benchmark JSON into the report's tables (pure: dict in,
DataFrames out), and the grid's workload ids the bench should have timed."""

from __future__ import annotations

import pandas as pd

CONFIG_COLUMNS = ("id", "kind", "variant", "model", "attention", "impl", "phase", "sweep", "B",
                  "T", "D", "E", "L", "H", "V", "N", "P", "seq_len")
SECOND_COUNTER_KEY = "measured_flops_"  # + a second counter's name: its forward count


def _tokens(cfg: dict) -> int:
    generating = str(cfg.get("phase", "")).startswith("generate")
    return (cfg.get("B") or 0) * ((cfg.get("N") if generating else cfg.get("seq_len")) or 0)


def bench_tables(data: dict) -> dict[str, pd.DataFrame]:
    """timing (every benchmark and every failed configuration), attention (flash vs manual),
    torch_reference (homework loop and torch.nn medians), ratios (the paired comparisons)
    from a bench JSON."""
    grid = (data.get("charlm") or {}).get("grid")
    rows = []
    ratios = ratio_rows(data)
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        cfg = info.get("config") or {}
        if not cfg:  # not a charlm workload, or interrupted before its columns were filled
            continue
        stats = b.get("stats", {})
        timing = info.get("timing") or {}
        env = info.get("env") or {}
        rows.append({
            **{k: cfg.get(k) for k in CONFIG_COLUMNS},
            "device": env.get("device"),
            "test": b.get("name"),
            "suite": str(b.get("name", "")).split("[")[0],
            "status": "ok",
            "median_s": timing.get("median", stats.get("median")),
            "iqr_s": timing.get("iqr", stats.get("iqr")),
            "cv": timing.get("cv"),
            "noisy": timing.get("noisy"),
            "rounds": timing.get("rounds", stats.get("rounds")),
            "calls_per_round": timing.get("calls_per_round", 1),
            "min_s": timing.get("min", stats.get("min")),
            "ci_low_s": timing.get("ci_low"),
            "ci_high_s": timing.get("ci_high"),
            "ci_target": timing.get("ci_target"),
            "converged": timing.get("converged"),
            "drifted": timing.get("drifted"),
            "drift_rel": timing.get("drift_rel"),
            "load_before": timing.get("load_before"),
            "load_after": timing.get("load_after"),
            "steal_fraction": timing.get("steal_fraction"),
            "yardstick_s": timing.get("yardstick_s"),
            "tokens": _tokens(cfg),
            "seconds_per_token": None,
            "tokens_per_second": info.get("tokens_per_second"),
            "predicted_flops": info.get("predicted_flops"),
            "measured_flops": info.get("measured_flops"),
            **{k: v for k, v in info.items() if k.startswith(SECOND_COUNTER_KEY)},
            "model_flops": info.get("model_flops"),
            "flops_per_second": info.get("flops_per_second"),
            "hardware_flops_per_second": info.get("hardware_flops_per_second"),
            "predicted_depth": info.get("predicted_depth"),
            "predicted_s": info.get("predicted_s"),
            "predicted_calibrated_s": info.get("predicted_calibrated_s"),
            "pace_factor": info.get("pace_factor"),
            "predicted_regime": info.get("predicted_regime"),
            "peak_memory_bytes": info.get("peak_memory_bytes"),
            "threads": env.get("threads"),
            "device_name": env.get("device_name"),
        })
    for f in data.get("charlm_failures", []):
        cfg = f.get("config") or {}
        rows.append({**{k: cfg.get(k) for k in CONFIG_COLUMNS},
                     "device": f.get("device"), "test": f.get("test"),
                     "suite": str(f.get("test", "")).split("::")[-1].split("[")[0],
                     "status": f"failed: {f.get('error')}: {f.get('message', '')}"[:300]})
    timing = pd.DataFrame(rows)
    if timing.empty:
        raise ValueError("the bench JSON holds no benchmarks")
    timing["grid"] = grid
    ok = timing["status"].eq("ok")
    timing["seconds_per_token"] = timing["seconds_per_token"].astype(float)
    timing.loc[ok, "seconds_per_token"] = timing.loc[ok, "median_s"] / timing.loc[ok, "tokens"]
    timing = timing.drop_duplicates(subset=["test", "device", "status"])
    attention = timing[timing["kind"].eq("attention")].assign(
        kernel=lambda f: f["attention"])[["device", "kernel", "B", "T", "D", "H", "status",
                                          "median_s", "iqr_s", "noisy", "peak_memory_bytes",
                                          "measured_flops", "flops_per_second"]]
    ref = timing[timing["suite"].eq("test_homework_loop_and_torch_nn") & ok]
    pairs = ref.pivot_table(index=["device", "model", "phase", "B", "T", "D", "L"],
                            columns="impl", values="median_s").reset_index()
    # the two sides' medians only: their ratio is measured in pairs (ratios.csv); the twin is
    # a fused torch.nn module, or the model's own sequential loop (Architecture.twin_label)
    pairs = pairs.rename(columns={"homework": "homework_s", "torch": "twin_s"})
    return {"timing.csv": timing, "attention.csv": attention, "torch_reference.csv": pairs,
            "ratios.csv": ratios}


RATIO_COLUMNS = ["comparison", "configuration", "device", "ratio", "ci_low", "ci_high",
                 "pairs", "converged", "a", "b", "a_median_s", "b_median_s", "calls_per_round",
                 "yardstick_s", "measure"]


def ratio_rows(data: dict) -> pd.DataFrame:
    """ratios.csv: one row per paired comparison (bench/test_pairs.py): the median of
    per-pair time ratios A/B with its bootstrap 95% interval; for a comparison that measured
    peak memory too, one more row (measure "memory") whose interval is the single value the
    (deterministic) allocator gave."""
    rows = []
    for b in data.get("benchmarks", []):
        pair = (b.get("extra_info") or {}).get("pair")
        if not pair:
            continue
        base = {k: pair.get(k) for k in RATIO_COLUMNS if k in pair}
        rows.append({**base, "measure": "time"})
        if pair.get("memory_ratio") is not None:
            r = pair["memory_ratio"]
            rows.append({**base, "measure": "memory", "ratio": r, "ci_low": r, "ci_high": r,
                         "pairs": 1, "converged": True,
                         "a_median_s": None, "b_median_s": None})
    frame = pd.DataFrame(rows, columns=RATIO_COLUMNS)
    return frame.drop_duplicates(subset=["comparison", "configuration", "device", "measure"])


def expected_workload_ids(grid: str, device: str) -> list[str]:
    """Every workload id the bench runs for a grid on a device (the bench suite's modules
    each parametrize over one of analysis.workloads.WORKLOAD_SETS)."""
    from analysis.workloads import WORKLOAD_SETS

    ids = [w.id for make in WORKLOAD_SETS.values() for w in make(grid, device)]
    return list(dict.fromkeys(ids))  # a homework loop is in the model and the reference set
