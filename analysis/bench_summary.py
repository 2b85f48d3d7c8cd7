"""The lines the bench ends with (bench/conftest.py prints them): what ran, how many medians
met the precision target, every paired ratio with its 95% interval, and where the JSON is;
at most WIDTH columns. Pure: records in, lines out."""

from __future__ import annotations

import statistics

from analysis.report.summaries import target_text, with_interval

WIDTH = 100


def _fit(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def summary_lines(records: list[tuple[str, dict]], counts: dict[str, int], grid: str,
                  devices: list[str], smoke: bool = False, json_path=None,
                  threads: int | None = None) -> list[str]:
    """records: ("timing", extra_info) or ("pair", pair info) per benchmark that finished;
    counts: pytest's outcomes (passed, failed, error, skipped)."""
    where = ", ".join(devices)
    head = f"charlm bench: grid {grid} on {where}"
    if threads is not None:
        head += f", {threads} CPU thread{'s' if threads != 1 else ''}"
    lines = [_fit(head + (" (smoke: every body once, no timing)" if smoke else ""))]
    ran = sum(counts.get(k, 0) for k in ("passed", "failed", "error"))
    lines.append(_fit(f"ran {ran} benchmarks: " + ", ".join(
        f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "error", "skipped"))))
    timings = [info["timing"] for kind, info in records if kind == "timing" and info.get("timing")]
    pairs = [info for kind, info in records if kind == "pair"]
    if smoke:
        lines.append("smoke run: its times and ratios mean nothing and are not shown")
    else:
        if timings:
            converged = sum(bool(t.get("converged")) for t in timings)
            half = statistics.median((t["ci_high"] - t["ci_low"]) / 2 / t["median"]
                                     for t in timings if t.get("median"))
            target = target_text(t.get("ci_target") for t in timings)
            lines.append(_fit(f"timed {len(timings)}: {converged} medians reached their "
                              f"precision target{target} (95% interval); median "
                              f"half-width {half:.1%}"))
        if pairs:
            lines.append("paired ratios A/B (median of per-pair ratios, 95% interval):")
            for p in pairs:
                value = with_interval(p["ratio"], p["ci_low"], p["ci_high"])
                label = f"  {p['comparison']}  {p['configuration']}"
                room = WIDTH - len(value) - 2
                lines.append(f"{_fit(label, room):<{room}}  {value}")
    if json_path is not None:
        lines.append(_fit(f"JSON: {json_path}  (pytest-benchmark's tables: --charlm-tables)"))
    return lines


__all__ = ["WIDTH", "summary_lines"]
