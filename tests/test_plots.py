"""Figures, checked on what they plot (data, colours, axis limits, tick labels, legends),
read from the matplotlib artists, not from pixels."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from analysis import plots

VARIANTS = {"rnn": "rnn", "gru": "gru", "transformer-flash": "transformer",
            "transformer-manual": "transformer"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _timing(ts=(16, 32, 64, 128), phases=("forward",)):
    rows = []
    for k, (variant, model) in enumerate(VARIANTS.items()):
        for phase in phases:
            for t in ts:
                median = 1e-4 * (k + 1) * t
                rows.append({"variant": variant, "model": model, "phase": phase, "T": t,
                             "median_s": median, "seconds_per_token": median / (4 * t),
                             "predicted_flops": 1e6 * (k + 1) * t,
                             "predicted_depth": t + 1 if model != "transformer" else 7,
                             "flops_per_second": 1e9 / (k + 1), "noisy": t == 32})
    return pd.DataFrame(rows)


def _line_colors(ax) -> dict:
    return {line.get_label(): to_rgb(line.get_color()) for line in ax.get_lines()
            if not line.get_label().startswith("_")}


def _labelled_ticks(ax, axis="y"):
    """(value, label) of the major ticks inside the axis limits, as the formatter labels them."""
    a = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    ticks = [t for t in a.get_major_locator()() if lo <= t <= hi]
    labels = a.get_major_formatter().format_ticks(ticks)
    return [(t, s) for t, s in zip(ticks, labels) if s.strip()]


def test_a_variant_has_the_same_colour_in_every_figure():
    timing = _timing()
    per_token = plots.draw_time_per_token_vs_T(timing).axes[0]
    # another figure, with the variants in another order and a subset of them
    subset = timing[timing["variant"].isin(["transformer-flash", "gru"])].iloc[::-1]
    sequence = plots.draw_sequence_time_vs_T(subset).axes[0]
    a, b = _line_colors(per_token), _line_colors(sequence)
    assert set(b) == {"transformer-flash", "gru"}
    for v in b:
        assert a[v] == b[v]
    assert len(set(a.values())) == len(a)  # distinct variants, distinct colours
    achieved = plots.draw_achieved_flops(timing, 1e10).axes[0]
    dots = {c.get_gid().split("|")[0]: to_rgb(c.get_facecolor()[0])
            for c in achieved.collections if c.get_gid() and "|" in c.get_gid()}
    assert dots["transformer-flash"] == a["transformer-flash"] and dots["rnn"] == a["rnn"]


def test_attention_kernels_and_trained_models_take_their_variants_colours():
    timing = _timing()
    a = _line_colors(plots.draw_time_per_token_vs_T(timing).axes[0])
    att = pd.DataFrame([{"T": t, "kernel": k, "median_s": 1e-3 * t, "peak_memory_bytes": 2**20 * t}
                        for t in (64, 128) for k in ("flash", "manual")])
    kernels = _line_colors(plots.draw_attention_time_memory(att).axes[0])
    assert kernels["flash"] == a["transformer-flash"]
    assert kernels["manual"] == a["transformer-manual"]
    curves = pd.DataFrame([{"model": m, "step": s, "train_loss": 3.0 - s / 10}
                           for m in ("gru", "transformer") for s in (1, 2, 3)])
    trained = _line_colors(plots.draw_training_curves(curves).axes[0])
    assert trained["gru"] == a["gru"]
    assert trained["transformer"] == a["transformer-flash"]  # its default kernel


def test_names_outside_the_table_get_distinct_colours_unlike_any_variant():
    colors = plots.palette(["rnn h=64", "rnn h=256", "gru"])
    fixed = plots.palette(list(VARIANTS))
    assert len(set(colors.values())) == 3
    assert colors["gru"] == fixed["gru"]
    assert colors["rnn h=64"] not in fixed.values() and colors["rnn h=256"] not in fixed.values()


def test_log_axes_label_enough_ticks_to_read_values():
    ax = plots.draw_time_per_token_vs_T(_timing()).axes[0]
    ticks = _labelled_ticks(ax)
    assert len(ticks) >= 3
    assert all(label.endswith("s") for _, label in ticks)  # engineering units: "20 µs"
    lo, hi = ax.get_ylim()
    data = _timing()["seconds_per_token"]
    assert lo <= data.min() and hi >= data.max()
    # a narrow range (under 2x) still gets at least three labelled ticks
    att = pd.DataFrame([{"T": t, "kernel": k, "median_s": 1e-3 * (1 + t / 1000),
                         "peak_memory_bytes": 2**20 * (1 + t / 1000) * (2 if k == "manual" else 1)}
                        for t in (64, 128, 256) for k in ("flash", "manual")])
    memory = plots.draw_attention_time_memory(att).axes[1]
    mib = _labelled_ticks(memory)
    assert len(mib) >= 3 and memory.get_ylabel() == "peak MiB (measured)"
    assert float(mib[0][1]) == pytest.approx(mib[0][0])  # labels are the MiB values
    assert len(_labelled_ticks(plots.draw_attention_time_memory(att).axes[0])) >= 3


def test_noisy_timings_are_ringed():
    timing = _timing()
    ax = plots.draw_sequence_time_vs_T(timing).axes[0]
    rings = [c for c in ax.collections if c.get_gid() == "noisy"]
    assert len(rings) == 1
    noisy = timing[timing["noisy"]]
    assert sorted(map(tuple, rings[0].get_offsets())) == sorted(zip(noisy["T"],
                                                                    noisy["median_s"]))
    assert "noisy (IQR/median > 10%)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_sequence_time_vs_T_legend_names_only_the_variants_in_table_order():
    timing = _timing().iloc[::-1]  # data order reversed: the legend keeps the table's order
    timing["noisy"] = False
    ax = plots.draw_sequence_time_vs_T(timing).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(VARIANTS)
    two = plots.draw_sequence_time_vs_T(_timing(phases=("forward", "train"))).axes[0]
    texts = [t.get_text() for t in two.get_legend().get_texts()]
    assert "rnn (forward)" in texts and "rnn (train)" in texts and "phase" not in texts


def test_training_curves_keep_the_first_losses_and_order_validation_like_training():
    rows = []
    for model, first in (("transformer", 4.08), ("gru", 4.17), ("rnn", 3.9)):
        for step in range(1, 101):
            loss = 1.2 + (first - 1.2) * np.exp(-(step - 1) / 5)
            rows.append({"model": model, "step": step, "train_loss": loss,
                         "val_loss": loss + 0.05 if step % 25 == 0 or step == 1 else np.nan})
    ax = plots.draw_training_curves(pd.DataFrame(rows)).axes[0]
    lo, hi = ax.get_ylim()
    assert hi >= 4.17 + 0.05 and lo <= 1.2  # the step-1 losses (and their val) are inside
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["transformer", "gru", "rnn", "transformer (val)", "gru (val)", "rnn (val)"]


def test_time_vs_depth_plots_seconds_per_flop_with_its_fit():
    timing = _timing()
    ax = plots.draw_time_vs_depth(timing, fit=(0.5, -20.0)).axes[0]
    assert ax.get_ylabel() == "seconds per FLOP" and ax.get_xscale() == "log"
    points = np.concatenate([c.get_offsets() for c in ax.collections
                             if c.get_gid() not in ("noisy",) and len(c.get_offsets())])
    expected = sorted(zip(timing["predicted_depth"],
                          timing["median_s"] / timing["predicted_flops"]))
    assert np.allclose(sorted(map(tuple, points)), expected, rtol=1e-12)
    fit = next(line for line in ax.get_lines() if line.get_gid() == "fit")
    x, y = fit.get_data()
    assert np.allclose(y, np.exp(-20.0) * x**0.5)
    assert x.min() == pytest.approx(7) and x.max() == pytest.approx(129)
    assert "fit: s/FLOP ~ depth^0.50" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_ratios_figure_draws_each_ratio_with_its_interval():
    frame = pd.DataFrame([
        {"comparison": "homework loop/torch.nn", "measure": "time", "configuration": c,
         "device": "cpu", "ratio": r, "ci_low": lo, "ci_high": hi}
        for c, r, lo, hi in (("rnn forward", 3.5, 3.4, 3.6), ("gru train", 1.9, 1.8, 2.1))])
    fig = plots.draw_ratios(frame)
    (ax,) = fig.axes
    # one errorbar per configuration: the point at the ratio, the bar from ci_low to ci_high
    points = sorted(tuple(line.get_xdata()) for line in ax.lines if line.get_marker() == "o")
    assert points == [(1.9,), (3.5,)]
    bars = sorted(tuple(sorted(seg[:, 0])) for coll in ax.collections
                  for seg in coll.get_segments())
    assert bars == [(1.8, 2.1), (3.4, 3.6)]
    at = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert at == {"rnn forward": 1, "gru train": 0}  # the table's first row on top
    assert ax.get_xscale() == "log" and "A/B, 95% interval" in ax.get_title()


def test_figures_are_saved_atomically(tmp_path):
    path = plots.training_curves(pd.DataFrame({"model": ["rnn"] * 2, "step": [1, 2],
                                               "train_loss": [4.0, 3.5]}), tmp_path / "t.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_plots_reject_tables_without_their_columns(tmp_path):
    with pytest.raises(ValueError, match="needs columns"):
        plots.attention_time_memory(pd.DataFrame({"T": [1]}), tmp_path / "x.png")
    with pytest.raises(ValueError, match="no rows"):
        plots.training_curves(pd.DataFrame(columns=["model", "step", "train_loss"]),
                              tmp_path / "y.png")


def test_ratio_axes_label_plain_numbers_not_si_prefixes():
    frame = pd.DataFrame([{"comparison": "scan/loop", "measure": "time", "configuration": c,
                           "device": "cpu", "ratio": r, "ci_low": r * 0.95,
                           "ci_high": r * 1.05} for c, r in (("a", 0.7), ("b", 0.95))])
    ax = plots.draw_ratios(frame).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels and not any("m" in lab for lab in labels)  # 0.7, not "700 m"
    assert "1" in labels


def _figures():
    """One small figure of every kind the report draws."""
    timing = _timing(phases=("forward", "train"))
    att = pd.DataFrame([{"T": t, "kernel": k, "median_s": 1e-3 * t, "noisy": t == 64,
                         "peak_memory_bytes": 2**20 * t} for t in (64, 128) for k in
                        ("flash", "manual")])
    devices = pd.concat([_timing().assign(device_label=d) for d in ("CPU", "GPU")])
    pred = timing.assign(predicted_s=timing["median_s"] * 1.3, trace_flops=1e6,
                         trace_bytes=timing["T"] * 1e4)
    flops = pd.DataFrame({"model": ["rnn", "gru"] * 2, "predicted": [1e3, 1e6] * 2,
                          "measured": [1e3, 1e6] * 2,
                          "counter": ["torch", "torch", "fvcore", "fvcore"]})
    curves = pd.DataFrame([{"model": m, "step": s, "train_loss": 3 - s / 10,
                            "val_loss": 3.1 - s / 10} for m in ("rnn", "gru") for s in (1, 2)])
    ratios = pd.DataFrame([{"comparison": "c", "measure": "time", "configuration": f"x{i}",
                            "device": d, "ratio": 2.0, "ci_low": 1.9, "ci_high": 2.1}
                           for i in range(2) for d in ("cpu", "cuda")])
    return {
        "flops": plots.draw_flops_predicted_vs_measured(flops),
        "per_token": plots.draw_time_per_token_vs_T(timing),
        "sequence": plots.draw_sequence_time_vs_T(timing),
        "devices": plots.draw_devices_time_vs_T(devices),
        "depth": plots.draw_time_vs_depth(timing, fit=(0.3, -20.0)),
        "achieved": plots.draw_achieved_flops(timing, 2e9, (1.8e9, 2.2e9)),
        "ratios": plots.draw_ratios(ratios),
        "attention": plots.draw_attention_time_memory(att),
        "training": plots.draw_training_curves(curves),
        "predicted": plots.draw_time_predicted_vs_measured(pred),
        "roofline": plots.draw_roofline(pred, 1e9, 1e8, (0.9e9, 1.1e9)),
    }


def test_no_legend_covers_any_axes_of_its_figure():
    for name, fig in _figures().items():
        fig.tight_layout()
        fig.canvas.draw()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert legends, name
        whole = fig.bbox
        for legend in legends:
            box = legend.get_window_extent()
            for ax in fig.axes:
                assert not box.overlaps(ax.get_window_extent()), name
            assert box.x1 <= whole.x1 + 1 and box.y0 >= whole.y0 - 1, name  # not cut off


def test_every_bench_variant_has_its_own_style_whatever_is_drawn_beside_it():
    from analysis.workloads import variants

    names = list(variants())
    looks = plots.styles(names)
    drawn = {(to_rgb(st["color"]), st["marker"], st["ls"]) for st in looks.values()}
    assert len(drawn) == len(names)  # 14 variants, told apart
    # a twin keeps its style alone or beside others, in any order
    assert plots.styles(["gru-torch"])["gru-torch"] == looks["gru-torch"]
    assert plots.styles(["lstm-torch", "gru-torch"])["gru-torch"] == looks["gru-torch"]
    # the colour tells the architecture: a model's twin is a shade of the model's hue
    pairs = plots.sns.color_palette("tab20")
    i = pairs.index(looks["rnn"]["color"])
    assert looks["rnn-torch"]["color"] == pairs[i + 1] and i % 2 == 0
    assert looks["attention-flash"]["color"] == looks["transformer-flash"]["color"]
    assert looks["attention-flash"]["marker"] != looks["transformer-flash"]["marker"]


def test_ratio_ticks_never_sit_on_top_of_each_other():
    frame = pd.DataFrame([{"comparison": "scan/loop", "measure": "time", "configuration": c,
                           "device": "cpu", "ratio": r, "ci_low": lo, "ci_high": hi}
                          for c, r, lo, hi in (("a", 0.68, 0.64, 0.72),
                                               ("b", 0.95, 0.73, 1.1))])
    ticks = sorted(t for t, _ in _labelled_ticks(plots.draw_ratios(frame).axes[0], "x"))
    assert len(ticks) >= 2
    assert all(b / a > 1.15 for a, b in zip(ticks, ticks[1:]))
