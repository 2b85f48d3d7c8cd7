"""The homework's training experiments as a registry: which models, sizes, sequence lengths,
learning rates and step counts each comparison ran (from the seed notebook), and the losses
it reported, so a rerun can be read beside them.

Experiments:
- rnn-vs-gru: Elman RNN vs GRU, embed 64, hidden 256, seq 20, batch 32, Adam 1e-3, 2000 steps.
- rnn-vs-gru-long: the same at seq 100 for 3000 steps.
- rnn-layers: Elman RNN with 1 (baseline), 2, 3, 4 layers, seq 20, 2000 steps.
- gru-vs-transformer-8l: the homework's "8-layer, roughly parameter-matched" comparison at
  seq 100, 3000 steps. The notebook's GRULM had no num_layers argument, so the GRU it trained
  was ONE layer (embed 32, hidden 192): 1.5e5 parameters against the 8-layer Transformer's
  1.6e6, a factor ~10, not matched. We run that GRU as the notebook did, and an 8-layer GRU
  (GRULM(num_layers=8), embed 32) whose hidden width is solved for so its parameter count is
  the closest to the Transformer's. That 8-layer stack does not learn with PyTorch's default
  initialisation (it stays at the corpus's unigram entropy, 3.12 nats/char on the built-in
  corpus, through 400 steps: lr 1e-3 with two seeds, lr 3e-3 with one), so it is initialised as
  Keras' GRU is: input weights Xavier-uniform, hidden-to-hidden weights orthogonal (TrainConfig
  init="xavier-orthogonal"). It then leaves the plateau after 150-250 steps (validation loss
  1.81 and 1.29 at step 400 for seeds 2025 and 1). Every summary says which runs did not learn
  (validation loss within LEARN_MARGIN of the unigram entropy).

- architectures (beyond the homework): Elman RNN, GRU, LSTM, minGRU (parallel scan) and
  Transformer, one layer each (the homework's default depth), seq 20, batch 32, Adam 1e-3,
  2000 steps, every hidden width solved for the parameter count closest to the homework's
  GRU (embed 64, hidden 256) on the corpus's vocabulary (the Transformer's in multiples of
  its 4 heads), so that loss, time per step and tokens/s compare architectures at one size.

`run_experiment` trains every model of an experiment on one corpus and returns per model
the loss curve, parameter count, time per step, tokens/s, final train and validation loss
and a sample; `write_experiment` writes them (CSV, Markdown, and the PNG its caller's
`plot` draws: this library imports no `analysis`). `steps` caps every run's
step count for a quick look.

Homework losses are the last printed training loss of one batch on TinyStories (10M
characters); ours are on whatever corpus is given (the built-in one by default), so only the
ordering and the shapes of the curves are comparable, not the absolute values.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from charlm.data import split_train_val
from charlm.io import atomic_to_csv, atomic_write_text
from charlm.models.registry import build_model, count_parameters
from charlm.train import (
    CHECKPOINT_NAME,
    LOG_NAME,
    TrainConfig,
    TrainResult,
    generate_text,
    train,
)
from charlm.validate import positive_int

SAMPLE_LENGTH = 100  # the homework's generate_text(dataset) default
FINAL_WINDOW = 0.1  # final train loss = mean over the last 10% of steps (at least 1)
# a run whose final validation loss is not this far (nats/char) below the corpus's unigram
# entropy has learned nothing beyond the characters' frequencies
LEARN_MARGIN = 0.05
DEEP_GRU_NOTE = ("hidden solved for the Transformer's parameter count; initialised as Keras' "
                 "GRU (input weights Xavier-uniform, hidden-to-hidden orthogonal): with "
                 "PyTorch's default initialisation this 8-layer stack stayed at the unigram "
                 "entropy through 400 steps")


@dataclass(frozen=True)
class RunSpec:
    """One model of an experiment. `homework_loss` / `homework_s_per_100` are what the seed
    notebook printed at its last step (TinyStories, its CPU), for reading beside ours."""

    label: str
    config: TrainConfig
    homework_loss: float | None = None
    homework_s_per_100: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    runs: tuple[RunSpec, ...]
    # resolves runs that depend on the corpus (parameter matching needs the vocabulary size)
    resolve: Callable[[tuple[RunSpec, ...], int], tuple[tuple[RunSpec, ...], dict]] | None = None

    def resolved(self, vocab_size: int) -> tuple[tuple[RunSpec, ...], dict]:
        if self.resolve is None:
            return self.runs, {}
        return self.resolve(self.runs, vocab_size)


def _cfg(model: str, seq_len: int, steps: int, **sizes) -> TrainConfig:
    return TrainConfig(model=model, seq_len=seq_len, steps=steps, batch_size=32, lr=1e-3,
                       **sizes)


class ExperimentInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped one of an experiment's runs: the experiment stops there,
    keeping in `folder` (when it has one) the finished runs and the stopped run's checkpoint,
    from which run_experiment(resume=True) continues. `exit_status` is 130 or 143
    (128 + signal)."""

    def __init__(self, label: str, step: int, signal: str | None, folder: Path | None):
        self.exit_status = 143 if signal == "SIGTERM" else 130
        kept = ("nothing was kept (no output folder)" if folder is None else
                f"the finished runs and this run's checkpoint are kept in {folder}")
        super().__init__(f"{signal or 'a signal'} stopped run {label!r} at step {step}; {kept}")


def unigram_entropy(text: str) -> float:
    """Cross-entropy (nats/char) of predicting each character by its frequency in `text`:
    the loss a model reaches by learning the frequencies alone."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def params_of(cfg: TrainConfig, vocab_size: int) -> int:
    """Parameter count of the model `cfg` builds for this vocabulary (built, then counted)."""
    return count_parameters(build_model(cfg.model_config(vocab_size)))


def match_hidden(cfg: TrainConfig, target: int, vocab_size: int, limit: int = 8192,
                 multiple: int = 1) -> int:
    """The hidden width (a multiple of `multiple`, e.g. the attention heads) whose model has
    the parameter count closest to `target` (ties: the smaller). Parameters grow with hidden:
    double until the count reaches the target, then bisect the crossing."""
    positive_int("multiple", multiple)

    def count(k):  # k widths of `multiple`
        return params_of(replace(cfg, hidden=k * multiple), vocab_size)

    hi = 1
    while count(hi) < target:
        if hi * multiple >= limit:
            raise ValueError(f"no hidden width up to {limit} reaches {target} parameters")
        hi *= 2
    lo = hi // 2  # count(lo) < target <= count(hi), unless hi == 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(mid) < target:
            lo = mid
        else:
            hi = mid
    return multiple * min({max(lo, 1), hi}, key=lambda k: (abs(count(k) - target), k))


def _match_gru_to_transformer(runs, vocab_size):
    by_label = {r.label: r for r in runs}
    tf = by_label["Transformer 8 layers"]
    target = params_of(tf.config, vocab_size)
    gru8 = by_label["GRU 8 layers (matched)"]
    hidden = match_hidden(gru8.config, target, vocab_size)
    matched = replace(gru8, config=replace(gru8.config, hidden=hidden))
    counts = {r.label: params_of((matched if r is gru8 else r).config, vocab_size)
              for r in runs}
    info = dict(target_label=tf.label, target_params=target, matched_label=gru8.label,
                matched_hidden=hidden, params=counts, vocab_size=vocab_size)
    return tuple(matched if r is gru8 else r for r in runs), info


ARCHITECTURES_TARGET = "GRU"  # the run whose parameter count the others are matched to


def _match_architectures(runs, vocab_size):
    """Every run but the target gets the hidden width closest to the target's parameter
    count (the Transformer's a multiple of its heads)."""
    target_run = next(r for r in runs if r.label == ARCHITECTURES_TARGET)
    target = params_of(target_run.config, vocab_size)
    resolved, hidden = [], {}
    for r in runs:
        if r is not target_run:
            heads = r.config.model_config(vocab_size).heads or 1
            h = match_hidden(r.config, target, vocab_size, multiple=heads)
            r = replace(r, config=replace(r.config, hidden=h))
            hidden[r.label] = h
        resolved.append(r)
    counts = {r.label: params_of(r.config, vocab_size) for r in resolved}
    info = dict(target_label=target_run.label, target_params=target, matched_hidden=hidden,
                params=counts, vocab_size=vocab_size)
    return tuple(resolved), info


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "rnn-vs-gru",
            "Elman RNN vs GRU, embed 64, hidden 256, seq 20 (homework section 7)",
            (
                RunSpec("RNN", _cfg("rnn", 20, 2000, embed=64, hidden=256), 1.4121, 4.4),
                RunSpec("GRU", _cfg("gru", 20, 2000, embed=64, hidden=256), 1.2135, 8.4),
            ),
        ),
        Experiment(
            "rnn-vs-gru-long",
            "Elman RNN vs GRU at sequence length 100 (homework section 7, cell [24])",
            (
                RunSpec("RNN", _cfg("rnn", 100, 3000, embed=64, hidden=256), 1.1456, 18.1),
                RunSpec("GRU", _cfg("gru", 100, 3000, embed=64, hidden=256), 1.0370, 38.8),
            ),
        ),
        Experiment(
            "rnn-layers",
            "Elman RNN with 1, 2, 3, 4 layers, embed 64, hidden 256, seq 20 (extra credit 3.4)",
            (
                RunSpec("RNN 1 layer", _cfg("rnn", 20, 2000, embed=64, hidden=256), 1.4121, 4.4),
                RunSpec("RNN 2 layers", _cfg("mlrnn", 20, 2000, embed=64, hidden=256, layers=2),
                        1.3053, 6.4, "homework's loop run; its first 2-layer run ended at 1.3729"),
                RunSpec("RNN 3 layers", _cfg("mlrnn", 20, 2000, embed=64, hidden=256, layers=3),
                        1.4127, 8.8),
                RunSpec("RNN 4 layers", _cfg("mlrnn", 20, 2000, embed=64, hidden=256, layers=4),
                        1.4011, 11.0),
            ),
        ),
        Experiment(
            "gru-vs-transformer-8l",
            "GRU vs 8-layer Transformer (n_embd 128, 4 heads), seq 100 (homework cell [32])",
            (
                RunSpec("GRU as the notebook ran it (1 layer)",
                        _cfg("gru", 100, 3000, embed=32, hidden=192, layers=1), 1.1730, 39.0,
                        "GRULM(embed 32, hidden 192) had no num_layers: one layer, 1.5e5 params"),
                RunSpec("GRU 8 layers (matched)",
                        replace(_cfg("gru", 100, 3000, embed=32, hidden=192, layers=8),
                                init="xavier-orthogonal"), None, None, DEEP_GRU_NOTE),
                RunSpec("Transformer 8 layers",
                        _cfg("transformer", 100, 3000, hidden=128, layers=8, heads=4,
                             block_size=100, attention="flash"), 1.0518, 22.5),
            ),
            resolve=_match_gru_to_transformer,
        ),
        Experiment(
            "architectures",
            "Elman RNN, GRU, LSTM, minGRU (parallel scan) and Transformer, one layer each, "
            "parameter counts matched to the homework's GRU, seq 20 (beyond the homework)",
            (
                RunSpec("RNN", _cfg("rnn", 20, 2000, embed=64),
                        note="the homework's RNN ran hidden 256 (its loss is not this run's); "
                             "here hidden is matched"),
                RunSpec("GRU", _cfg("gru", 20, 2000, embed=64, hidden=256, layers=1), 1.2135,
                        8.4, "the homework's GRU: the parameter count the others match"),
                RunSpec("LSTM", _cfg("lstm", 20, 2000, embed=64, layers=1)),
                RunSpec("minGRU", _cfg("mingru", 20, 2000, layers=1),
                        note="trained and evaluated through its parallel scan; samples are "
                             "generated by its sequential step"),
                RunSpec("Transformer", _cfg("transformer", 20, 2000, layers=1, heads=4,
                                            block_size=100, attention="flash")),
            ),
            resolve=_match_architectures,
        ),
    ]
}
ALL = "all"


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; choose from "
                         f"{', '.join([*EXPERIMENTS, ALL])}") from None


def experiment_names(name: str) -> list[str]:
    """`all` -> every experiment; otherwise the one name (validated)."""
    return list(EXPERIMENTS) if name == ALL else [get_experiment(name).name]


@dataclass
class RunResult:
    spec: RunSpec
    config: TrainConfig
    params: int
    history: pd.DataFrame
    sample: str
    time_per_step_s: float
    tokens_per_s: float
    final_train_loss: float
    final_val_loss: float
    unigram_entropy: float = float("nan")

    @property
    def learned(self) -> bool:
        """Whether the final validation loss is LEARN_MARGIN below the unigram entropy."""
        return self.final_val_loss < self.unigram_entropy - LEARN_MARGIN

    def summary(self) -> dict:
        return dict(
            model=self.spec.label,
            arch=self.config.model,
            layers=self.config.model_config(1).layers,
            embed=self.config.model_config(1).embed,
            hidden=self.config.model_config(1).hidden,
            params=self.params,
            seq_len=self.config.seq_len,
            steps=int(self.history["step"].iloc[-1]),
            time_per_step_ms=1000 * self.time_per_step_s,
            tokens_per_s=self.tokens_per_s,
            final_train_loss=self.final_train_loss,
            final_val_loss=self.final_val_loss,
            unigram_entropy=self.unigram_entropy,
            learned=self.learned,
            init=self.config.init,
            threads=(int(self.history["threads"].iloc[-1])
                     if "threads" in self.history and len(self.history) else None),
            homework_steps=self.spec.config.steps,
            homework_loss=self.spec.homework_loss,
            homework_ms_per_step=(None if self.spec.homework_s_per_100 is None
                                  else 10 * self.spec.homework_s_per_100),
        )


@dataclass
class ExperimentResult:
    experiment: Experiment
    runs: list[RunResult]
    matching: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([r.summary() for r in self.runs])

    def notes(self) -> list[str]:
        """One line per run that did not learn (see LEARN_MARGIN)."""
        return [f"{r.spec.label} did not learn in {len(r.history)} steps: validation loss "
                f"{r.final_val_loss:.3f}, not {LEARN_MARGIN} below the unigram entropy "
                f"{r.unigram_entropy:.3f} nats/char (the loss of predicting characters by "
                f"their frequencies alone)" for r in self.runs if not r.learned]

    def curves(self) -> pd.DataFrame:
        """Long-form loss curves of every run: run, step, train_loss, val_loss, ..."""
        return pd.concat([r.history.assign(run=r.spec.label) for r in self.runs],
                         ignore_index=True)


def final_train_loss(history: pd.DataFrame) -> float:
    k = max(1, math.ceil(FINAL_WINDOW * len(history)))
    return float(history["train_loss"].iloc[-k:].mean())


def summarize_run(spec: RunSpec, result: TrainResult, sample_seed: int,
                  entropy: float = float("nan")) -> RunResult:
    h = result.history
    total_s = float(h["elapsed_s"].iloc[-1])
    steps = len(h)
    tokens = steps * result.config.batch_size * result.config.seq_len
    val = h["val_loss"].dropna()
    sample = generate_text(result.model, result.dataset.vocab, "", SAMPLE_LENGTH - 1,
                           seed=sample_seed)
    return RunResult(spec, result.config, result.params, h, sample, total_s / steps,
                     tokens / total_s, final_train_loss(h),
                     float(val.iloc[-1]) if len(val) else float("nan"), entropy)


def run_experiment(
    name: str,
    text: str,
    steps: int | None = None,
    device: str = "auto",
    seed: int = 2025,
    val_every: int | None = None,
    val_batches: int = 20,
    out: str | Path | None = None,
    progress: bool = False,
    on_run: Callable[[RunSpec, int, int], None] | None = None,
    resume: bool = False,
) -> ExperimentResult:
    """Train every model of experiment `name` on `text`.

    `steps` caps each run's step count (the homework's counts otherwise). `val_every`
    defaults to a tenth of the run. With `out`, each run trains in out/<experiment>/<run>/
    (checkpoint.pt, log.csv; write_experiment drops them unless asked to keep them), so that
    a run stopped by a signal (ExperimentInterrupted) leaves its checkpoint and the finished
    runs theirs; `resume` then continues every run from the checkpoint its folder holds (a
    finished run trains no further steps), and trains the others afresh.
    `on_run(spec, i, n)` is called before each run.
    """
    experiment = get_experiment(name)
    positive_int("steps", steps, allow_none=True)
    vocab_size = len(set(text))
    entropy = unigram_entropy(split_train_val(text, TrainConfig().val_fraction)[0])
    runs, matching = experiment.resolved(vocab_size)
    results = []
    for i, spec in enumerate(runs):
        n = spec.config.steps if steps is None else min(steps, spec.config.steps)
        run_out = None if out is None else Path(out) / experiment.name / slug(spec.label)
        again = resume and run_out is not None and (run_out / CHECKPOINT_NAME).is_file()
        # force: an experiment's folders are its own output, regenerated unless resumed
        cfg = replace(spec.config, steps=n, seed=seed, device=device,
                      out=None if run_out is None else str(run_out),
                      val_every=val_every or max(1, n // 10), val_batches=val_batches,
                      checkpoint_every=max(n, 1), resume=again,
                      force=run_out is not None and not again)
        if on_run is not None:
            on_run(spec, i, len(runs))
        result = train(cfg, progress=progress, text=text)
        if result.interrupted:
            raise ExperimentInterrupted(spec.label, len(result.history), result.signal,
                                        None if out is None else Path(out) / experiment.name)
        results.append(summarize_run(spec, result, seed, entropy))
    return ExperimentResult(experiment, results, matching)


def slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def summary_markdown(result: ExperimentResult, env: dict | None = None) -> str:
    """The experiment's table (ours beside the homework's) and samples, as Markdown."""
    exp = result.experiment
    lines = [f"# {exp.name}", "", exp.description, ""]
    lines += [
        "| model | params | steps | seq | ms/step | tokens/s | train loss (last 10%) "
        "| val loss | homework loss (TinyStories, at its steps) | homework ms/step |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.runs:
        s = r.summary()
        hw = "-" if s["homework_loss"] is None else \
            f"{s['homework_loss']:.3f} @ {s['homework_steps']}"
        lines.append(
            f"| {s['model']} | {s['params']:,} | {s['steps']} | {s['seq_len']} "
            f"| {_fmt(s['time_per_step_ms'], '.1f')} | {_fmt(s['tokens_per_s'], ',.0f')} "
            f"| {_fmt(s['final_train_loss'], '.3f')} | {_fmt(s['final_val_loss'], '.3f')} "
            f"| {hw} | {_fmt(s['homework_ms_per_step'], '.0f')} |"
        )
    if result.matching:
        m = result.matching
        widths = m["matched_hidden"]
        if isinstance(widths, dict):
            matched = "; ".join(f"{label} gets hidden {h}" for label, h in widths.items())
        else:
            matched = f"{m['matched_label']} gets hidden {widths}"
        lines += ["", "Parameter matching (computed on this corpus's vocabulary of "
                  f"{m['vocab_size']} characters): {matched}, the closest count to "
                  f"{m['target_label']}'s {m['target_params']:,}.", ""]
        lines += [f"- {label}: {count:,} parameters" for label, count in m["params"].items()]
    notes = [f"- {r.spec.label}: {r.spec.note}" for r in result.runs if r.spec.note]
    notes += [f"- {line}" for line in result.notes()]
    if result.runs:
        notes.append(f"- The unigram entropy of this corpus's training split is "
                     f"{result.runs[0].unigram_entropy:.3f} nats/char: the loss of predicting "
                     f"characters by their frequencies alone.")
    if notes:
        lines += ["", "Notes:", *notes]
    lines += ["", "Samples (100 characters from one random first character, seeded):", ""]
    for r in result.runs:
        lines += [f"**{r.spec.label}**", "", "```", r.sample, "```", ""]
    if env:
        lines += ["Environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), ""]
    return "\n".join(lines)


def write_experiment(result: ExperimentResult, out: str | Path, env: dict | None = None,
                     keep_checkpoints: bool = False, *,
                     plot: Callable[[pd.DataFrame, Path], Path] | None) -> dict:
    """Files under out/<experiment>/: <run>/loss.csv, <run>/sample.txt, summary.md,
    loss_curves.png (drawn by `plot` from the curves, columns model, step, train_loss, ...:
    `analysis.plots.training_curves`; None draws none), and last summary.csv, which marks
    the experiment complete (`written_summary`). Then each run's checkpoint.pt and log.csv
    are removed, unless `keep_checkpoints`. Returns {kind: path}."""
    folder = Path(out) / result.experiment.name
    files = {}
    for r in result.runs:
        run_dir = folder / slug(r.spec.label)
        files[f"{r.spec.label} curve"] = atomic_to_csv(r.history, run_dir / "loss.csv")
        files[f"{r.spec.label} sample"] = atomic_write_text(run_dir / "sample.txt",
                                                            r.sample + "\n")
    files["summary_md"] = atomic_write_text(folder / "summary.md",
                                            summary_markdown(result, env))
    if plot is not None:  # after the tables, in case plotting fails
        files["figure"] = plot(result.curves().rename(columns={"run": "model"}),
                               folder / "loss_curves.png")
    files["summary_csv"] = atomic_to_csv(result.summary(), folder / "summary.csv")
    if not keep_checkpoints:
        for r in result.runs:
            for name in (CHECKPOINT_NAME, LOG_NAME):
                (folder / slug(r.spec.label) / name).unlink(missing_ok=True)
    return files


def written_summary(out: str | Path, name: str) -> pd.DataFrame | None:
    """The summary table of experiment `name` that write_experiment completed under `out`,
    or None when it has not."""
    path = Path(out) / name / "summary.csv"
    return pd.read_csv(path) if path.is_file() else None
