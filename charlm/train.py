"""Training and checkpoints: the homework's loop (Adam, lr 1e-3, batch 32) made resumable.

The loss and the update are charlm.steps' `lm_loss` and `TrainStep` (cross-entropy over every
position of `model.forward_sequence(x)`, one Adam step). For the recurrent models this loss
equals the homework's `sum_t criterion(logits_t, y_t) / T`, because each per-step loss is a
mean over the same B rows (tests/test_train.py checks it).

Batches: each epoch is a random permutation of the training chunks drawn from a generator
seeded with (seed, epoch), cut into batches with the last partial batch dropped (the notebook's
DataLoader(shuffle=True, drop_last=True)). A batch is a function of (seed, step) alone, so a
resumed run sees the same batches as an uninterrupted one.

Files under `out`: `checkpoint.pt` (config, vocab, weights, optimizer, step, RNG, history) and
`log.csv` (step, train_loss, val_loss, elapsed_s, tokens_per_s, threads), both written
atomically. `elapsed_s` is cumulative training time, validation passes excluded; `tokens_per_s`
is B*T / (time of that step); `threads` is torch's CPU thread count during that step.

A folder that already holds a run (a checkpoint or a log) is refused unless `resume` (continue
it) or `force` (replace it), and a folder another run is writing (its lock) is refused at
once. SIGINT (Ctrl-C) and SIGTERM (a scheduler's stop) finish the
current step, save, and return with `interrupted=True` and `signal` naming the signal; a second
SIGINT during a step stops at once without saving (raises KeyboardInterrupt).
"""

from __future__ import annotations

import inspect
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from charlm.data import CharLMDataset, encode, load_corpus, split_train_val
from charlm.io import atomic_to_csv, atomic_torch_save, output_lock
from charlm.models.registry import ModelConfig, build_model, count_parameters
from charlm.progress import Progress
from charlm.steps import TrainStep, lm_loss
from charlm.validate import check_device, positive_int

__all__ = [
    "Checkpoint", "TrainConfig", "TrainResult", "encode", "generate_text", "load_checkpoint",
    "resolve_device", "train",
]

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.csv"
# threads: torch.get_num_threads() during the step
LOG_COLUMNS = ["step", "train_loss", "val_loss", "elapsed_s", "tokens_per_s", "threads"]
CHECKPOINT_FORMAT = "charlm-checkpoint-v1"
# fields a resumed run may change; every other field must match the checkpoint's
RESUMABLE_CHANGES = ("steps", "device", "out", "resume", "force", "checkpoint_every")
# fields compared through the model config, where an unset size has its default filled in
MODEL_FIELDS = ("embed", "hidden", "layers", "heads", "block_size", "attention")
DEVICES = ("auto", "cpu", "cuda")
# "default": PyTorch's layer initialisation, as the notebook. "xavier-orthogonal" (recurrent
# models): input weights Xavier-uniform, hidden-to-hidden weights orthogonal, the default of
# Keras' GRU and LSTM layers, which keeps a signal's size through a deep stack.
INITS = ("default", "xavier-orthogonal")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "rnn"
    embed: int | None = None
    hidden: int | None = None
    layers: int | None = None
    heads: int | None = None
    block_size: int | None = None
    attention: str | None = None
    steps: int = 2000
    seq_len: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 2025  # the homework's SEED
    device: str = "auto"
    data: str = "builtin"
    data_chars: int | None = None  # corpus size for builtin / tinystories; None: their default
    val_fraction: float = 0.1
    val_every: int = 100
    val_batches: int = 20
    checkpoint_every: int = 500
    out: str | None = None
    resume: bool = False
    force: bool = False  # replace a run already in `out`
    init: str = "default"  # weight initialisation, see INITS

    def __post_init__(self):
        for name in ("steps", "seq_len", "batch_size", "val_every", "val_batches",
                     "checkpoint_every"):
            positive_int(name, getattr(self, name))
        positive_int("data_chars", self.data_chars, allow_none=True)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.resume and self.out is None:
            raise ValueError("resume needs an output directory (out) holding a checkpoint")
        if self.resume and self.force:
            raise ValueError("resume=True continues the run in out and force=True replaces "
                             "it: give one of them")
        split_train_val("xx", self.val_fraction)  # validates the fraction
        self.model_config(vocab_size=1).check_seq_len(self.seq_len)

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(self.model, vocab_size, self.embed, self.hidden, self.layers,
                           self.heads, self.block_size, self.attention)


@dataclass
class TrainResult:
    model: nn.Module
    dataset: CharLMDataset  # training split
    val_dataset: CharLMDataset
    history: pd.DataFrame
    params: int
    checkpoint: Path | None
    log: Path | None
    config: TrainConfig
    device: torch.device
    interrupted: bool = False
    signal: str | None = None  # "SIGINT" or "SIGTERM" when interrupted


@dataclass
class Checkpoint:
    model: nn.Module
    vocab: list[str]
    config: TrainConfig
    model_config: ModelConfig
    step: int
    history: pd.DataFrame
    path: Path

    @property
    def stoi(self) -> dict[str, int]:
        return {ch: i for i, ch in enumerate(self.vocab)}

    @property
    def itos(self) -> dict[int, str]:
        return dict(enumerate(self.vocab))

    def generate(self, prompt: str = "", length: int = 200, **kw) -> str:
        return generate_text(self.model, self.vocab, prompt, length, **kw)


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(check_device(device))


class _Batches:
    """Batch `step` (0-based) of a seeded, epoch-wise shuffle with drop_last."""

    def __init__(self, dataset: CharLMDataset, batch_size: int, seed: int):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.per_epoch = len(dataset) // batch_size
        self._epoch, self._perm = None, None

    def __call__(self, step: int):
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(len(self.dataset), generator=g)
        return self.dataset.batch(self._perm[i * self.batch_size : (i + 1) * self.batch_size])


@torch.no_grad()
def evaluate(model: nn.Module, dataset: CharLMDataset, batch_size: int, max_batches: int,
             device: torch.device) -> float:
    """Mean loss over up to max_batches*batch_size validation chunks spread evenly over the
    split."""
    was_training = model.training
    model.eval()
    n = min(len(dataset), batch_size * max_batches)
    chunks = torch.linspace(0, len(dataset) - 1, n).round().long()
    total = 0.0
    for start in range(0, n, batch_size):
        x, y = dataset.batch(chunks[start : start + batch_size])
        total += lm_loss(model, x.to(device), y.to(device)).item() * x.numel()
    model.train(was_training)
    return total / (n * dataset.seq_length)


def prepare_data(cfg: TrainConfig, text: str | None = None):
    """(train dataset, val dataset, vocab) for cfg; the vocabulary is the whole corpus's."""
    if text is None:
        kw = {} if cfg.data_chars is None else {"n_chars": cfg.data_chars}
        text = load_corpus(cfg.data, **kw)
    vocab = sorted(set(text))
    train_text, val_text = split_train_val(text, cfg.val_fraction)
    train_ds = CharLMDataset(train_text, cfg.seq_len, vocab=vocab)
    val_ds = CharLMDataset(val_text, cfg.seq_len, vocab=vocab)
    need = cfg.seq_len + 1
    if len(train_ds) < cfg.batch_size or len(val_ds) < 1:
        raise ValueError(
            f"corpus too short: {len(text)} characters give {len(train_ds)} training and "
            f"{len(val_ds)} validation sequences of {need} characters; need at least "
            f"batch_size={cfg.batch_size} training sequences and one validation sequence"
        )
    return train_ds, val_ds, vocab


class TrainingInterrupted(KeyboardInterrupt):
    """A second Ctrl-C stopped training inside a step, so that step was not saved."""

    def __init__(self, step: int, saved_step: int | None, out: Path | None):
        self.step, self.saved_step, self.out = step, saved_step, out
        where = ("no checkpoint was written" if out is None or saved_step is None else
                 f"{out / CHECKPOINT_NAME} holds step {saved_step}")
        super().__init__(f"interrupted at step {step} (a second Ctrl-C stopped it before the "
                         f"step finished, so it is not saved); {where}")


class _DeferredInterrupt:
    """Turns the first SIGINT (Ctrl-C) or SIGTERM into a flag checked between steps. A second
    SIGINT during a step interrupts at once (KeyboardInterrupt); while `saving` is set, further
    signals are only noted, so a checkpoint being written is never cut short. Only the main
    thread can own signal handlers; elsewhere this does nothing."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.requested: str | None = None  # the first signal's name
        self.saving = False
        self.current = 0  # the step being computed
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.requested is None:
            self.requested = name
        elif name == "SIGINT" and not self.saving:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


def initialise(model: nn.Module, init: str) -> None:
    """Re-initialise `model`'s weights by the scheme `init` (see INITS), in place. Recurrent
    cells name their input weights W_i*/W_x* and their hidden-to-hidden weights W_h*."""
    if init == "default":
        return
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    hidden = [p for n, p in model.named_parameters() if _weight_kind(n) == "hidden"]
    if not hidden:
        raise ValueError(f"init {init!r} applies to recurrent models (hidden-to-hidden "
                         f"weights W_h*), and {type(model).__name__} has none")
    with torch.no_grad():
        for name, p in model.named_parameters():
            kind = _weight_kind(name)
            if kind == "hidden":
                nn.init.orthogonal_(p)
            elif kind == "input":
                nn.init.xavier_uniform_(p)


def _weight_kind(name: str) -> str | None:
    parts = name.split(".")
    if parts[-1] != "weight":
        return None
    owner = next((q for q in reversed(parts[:-1]) if not q.isdigit()), "")
    if owner.startswith("W_h"):
        return "hidden"
    if owner.startswith(("W_i", "W_x")):
        return "input"
    return None


def check_run_folder(cfg: TrainConfig) -> Path | None:
    """The run folder of cfg, refused (ValueError) when it is a file, or when it already holds
    a run that cfg neither resumes nor replaces (force)."""
    if cfg.out is None:
        return None
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is an existing file, not a run folder")
    if not cfg.resume and not cfg.force:
        held = [name for name in (CHECKPOINT_NAME, LOG_NAME) if (out / name).exists()]
        if held:
            raise ValueError(f"{out} already holds a run ({', '.join(held)}): continue it with "
                             f"resume=True or replace it with force=True")
    return out


def train(
    cfg: TrainConfig,
    progress: bool = True,
    text: str | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train cfg.model for cfg.steps steps (in total, counting steps before a resume).

    `text` replaces cfg.data's corpus. `on_step(step, loss)` is called after each step.
    `progress`: a bar on a terminal, plain lines otherwise (charlm.progress), on stderr.
    A first SIGINT (Ctrl-C) or SIGTERM finishes the current step, saves, and returns with
    interrupted=True and signal set to its name. While it runs, cfg.out is locked
    (charlm.io.output_lock): a second run into it raises OutputLocked at once.
    """
    if cfg.out is None:
        return _train(cfg, None, progress, text, on_step)
    check_run_folder(cfg)  # an out that is a file, before the lock makes the folder
    with output_lock(cfg.out):
        return _train(cfg, check_run_folder(cfg), progress, text, on_step)


def _train(cfg: TrainConfig, out: Path | None, progress: bool, text: str | None,
           on_step: Callable[[int, float], None] | None) -> TrainResult:
    device = resolve_device(cfg.device)
    train_ds, val_ds, vocab = prepare_data(cfg, text)
    mcfg = cfg.model_config(len(vocab))
    torch.manual_seed(cfg.seed)
    model = build_model(mcfg)
    initialise(model, cfg.init)
    model.to(device)
    train_step = TrainStep(model, lr=cfg.lr)
    optimizer = train_step.optimizer
    rows, step, elapsed = [], 0, 0.0
    if cfg.resume:
        state = _load_state(out / CHECKPOINT_NAME, cfg, mcfg, vocab)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        rows, step, elapsed = state["history"], state["step"], state["elapsed_s"]
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    batches = _Batches(train_ds, cfg.batch_size, cfg.seed)
    tokens = cfg.batch_size * cfg.seq_len

    def save():
        if out is None:
            return None, None
        log = atomic_to_csv(_history(rows), out / LOG_NAME)
        ckpt = atomic_torch_save(
            {
                "format": CHECKPOINT_FORMAT,
                "config": asdict(cfg),
                "model_config": mcfg.to_dict(),
                "vocab": vocab,
                "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "elapsed_s": elapsed,
                "history": rows,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                },
            },
            out / CHECKPOINT_NAME,
        )
        return ckpt, log

    model.train()
    saved_step = step if cfg.resume else None

    def run_steps(interrupt, bar) -> str | None:
        """Steps until cfg.steps or a signal; returns the signal's name, if any."""
        nonlocal step, elapsed, saved_step
        while step < cfg.steps:
            interrupt.current = step + 1
            interrupt.saving = False
            x, y = batches(step)
            t0 = time.perf_counter()
            loss = train_step(x.to(device), y.to(device))
            loss_value = loss.item()  # synchronizes CUDA, so the step time below is real
            dt = time.perf_counter() - t0
            step += 1
            elapsed += dt
            val = float("nan")
            validate = step == 1 or step % cfg.val_every == 0 or step == cfg.steps
            if validate:
                val = evaluate(model, val_ds, cfg.batch_size, cfg.val_batches, device)
            rows.append(dict(step=step, train_loss=loss_value, val_loss=val, elapsed_s=elapsed,
                             tokens_per_s=tokens / dt, threads=torch.get_num_threads()))
            interrupt.saving = True  # from here on a second signal waits for the save
            if validate and out is not None:
                atomic_to_csv(_history(rows), out / LOG_NAME)
            bar.update(1, loss=f"{loss_value:.3f}", tok_s=f"{tokens / dt:,.0f}")
            if on_step is not None:
                on_step(step, loss_value)
            if interrupt.requested:
                return interrupt.requested
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save()
                saved_step = step
        return None

    with _DeferredInterrupt() as interrupt, \
            Progress(cfg.steps, desc=cfg.model, initial=step, enabled=progress) as bar:
        try:
            interrupted = run_steps(interrupt, bar)
        except KeyboardInterrupt:  # a second Ctrl-C inside a step: that step is unfinished
            raise TrainingInterrupted(interrupt.current, saved_step, out) from None
        interrupt.saving = True
        ckpt, log = save()
    return TrainResult(model, train_ds, val_ds, _history(rows), count_parameters(model), ckpt,
                       log, cfg, device, interrupted is not None, interrupted)


def _history(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LOG_COLUMNS)


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
AFTER = "give the checkpoint.pt that charlm train writes (or its run folder)"


def _read_checkpoint(path: Path, device="cpu") -> dict:
    """The checkpoint's dict, or one ValueError saying what the file is not, and what to do."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not a checkpoint (a run killed while "
                         f"saving?); {AFTER}")
    if head != ZIP_MAGIC and head[:1] != b"\x80":  # neither a zip nor a legacy pickle
        raise ValueError(f"{path} is not a PyTorch file ({size:,} bytes that start with "
                         f"{head!r}), so not a charlm checkpoint; {AFTER}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise ValueError(f"{path} is a PyTorch file holding Python objects, not a charlm "
                             f"checkpoint (charlm loads tensors only, never code); "
                             f"{AFTER}") from None
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:80]
        raise ValueError(f"{path} is a damaged PyTorch file ({reason}), truncated or "
                         f"corrupt; retrain, or {AFTER}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is a PyTorch file but not a charlm checkpoint (no format "
                         f"{CHECKPOINT_FORMAT!r}); {AFTER}")
    return state


def _load_state(path: Path, cfg: TrainConfig, mcfg: ModelConfig, vocab: list[str]) -> dict:
    state = _read_checkpoint(path)
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    saved = {**defaults, **state["config"]}  # fields newer than the checkpoint: defaults
    ours = asdict(cfg)
    diff = [f"{k}: the checkpoint has {saved.get(k)!r}, now {v!r}" for k, v in ours.items()
            if k not in RESUMABLE_CHANGES and k not in MODEL_FIELDS and saved.get(k) != v]
    saved_model = state.get("model_config", {})
    for k in MODEL_FIELDS:  # compared with defaults filled in: None means the default
        if saved_model.get(k) != getattr(mcfg, k):
            diff.append(f"{k}: the checkpoint has {saved_model.get(k)!r}, now "
                        f"{getattr(mcfg, k)!r}")
    if diff:
        raise ValueError(f"cannot resume {path}: settings differ from the checkpoint's; "
                         + "; ".join(diff))
    if state["vocab"] != vocab:
        raise ValueError(f"cannot resume {path}: the corpus's vocabulary differs")
    if state["step"] > cfg.steps:
        raise ValueError(f"cannot resume {path}: it is at step {state['step']}, beyond "
                         f"steps={cfg.steps}")
    return state


def load_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    """A trained model (in eval mode) and what it needs: vocab, configs, history."""
    torch_device = resolve_device(device)
    state = _read_checkpoint(Path(path), torch_device)
    try:
        known = {f.name for f in fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
        mcfg = ModelConfig(**state["model_config"])
        model = build_model(mcfg)
        model.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from None
    model.to(torch_device).eval()
    return Checkpoint(model, list(state["vocab"]), config, mcfg, state["step"],
                      _history(state["history"]), Path(path))


def generate_text(
    model: nn.Module,
    vocab: list[str],
    prompt: str = "",
    length: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    seed: int | None = None,
    use_cache: bool | None = None,
) -> str:
    """The prompt followed by `length` generated characters. An empty prompt starts from one
    random character, as the homework does. `seed` makes sampling reproducible; `use_cache`
    applies to the transformer only."""
    stoi = {ch: i for i, ch in enumerate(vocab)}
    device = next(model.parameters()).device
    prompt_ids = encode(prompt, stoi)[None].to(device) if prompt else None
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    kw = {}
    if use_cache is not None:
        if "use_cache" not in inspect.signature(model.generate).parameters:
            raise ValueError(f"use_cache applies to the transformer only, not "
                             f"{type(model).__name__} (a recurrent model always carries its "
                             f"state forward)")
        kw["use_cache"] = use_cache
    ids = model.generate(prompt_ids, length, temperature=temperature, top_k=top_k,
                         greedy=greedy, generator=generator, **kw)
    return "".join(vocab[i] for i in ids[0].tolist())
