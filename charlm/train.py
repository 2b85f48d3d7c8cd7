"""Training and checkpoints: the homework's loop (Adam, lr 1e-3, batch 32) made resumable.

The loss is cross-entropy over every position of `model.forward_sequence(x)`. For the recurrent
models this equals the homework's `sum_t criterion(logits_t, y_t) / T`, because each per-step
loss is a mean over the same B rows (tests/test_train.py checks it).

Batches: each epoch is a random permutation of the training chunks drawn from a generator
seeded with (seed, epoch), cut into batches with the last partial batch dropped (the notebook's
DataLoader(shuffle=True, drop_last=True)). A batch is a function of (seed, step) alone, so a
resumed run sees the same batches as an uninterrupted one.

Files under `out`: `checkpoint.pt` (config, vocab, weights, optimizer, step, RNG, history) and
`log.csv` (step, train_loss, val_loss, elapsed_s, tokens_per_s), both written atomically.
`elapsed_s` is cumulative training time, validation passes excluded; `tokens_per_s` is
B*T / (time of that step).
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
from torch.nn import functional as F
from tqdm.auto import tqdm

from charlm.data import CharLMDataset, encode, load_corpus, split_train_val
from charlm.io import atomic_to_csv, atomic_torch_save
from charlm.models.registry import ModelConfig, build_model, count_parameters

__all__ = [
    "Checkpoint", "TrainConfig", "TrainResult", "encode", "generate_text", "load_checkpoint",
    "resolve_device", "train",
]

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.csv"
LOG_COLUMNS = ["step", "train_loss", "val_loss", "elapsed_s", "tokens_per_s"]
CHECKPOINT_FORMAT = "charlm-checkpoint-v1"
# fields a resumed run may change; every other field must match the checkpoint's
RESUMABLE_CHANGES = ("steps", "device", "out", "resume", "checkpoint_every")
DEVICES = ("auto", "cpu", "cuda")


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

    def __post_init__(self):
        for name in ("steps", "seq_len", "batch_size", "val_every", "val_batches",
                     "checkpoint_every"):
            _positive_int(name, getattr(self, name))
        if self.data_chars is not None:
            _positive_int("data_chars", self.data_chars)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.resume and self.out is None:
            raise ValueError("resume needs an output directory (out) holding a checkpoint")
        split_train_val("xx", self.val_fraction)  # validates the fraction
        self.model_config(vocab_size=1).check_seq_len(self.seq_len)

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(self.model, vocab_size, self.embed, self.hidden, self.layers,
                           self.heads, self.block_size, self.attention)


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


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
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    return torch.device(device)


def sequence_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over all B*T positions of forward_sequence(x)."""
    logits, _ = model.forward_sequence(x)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))


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
    """Mean loss over up to max_batches*batch_size validation chunks spread evenly over the split."""
    was_training = model.training
    model.eval()
    n = min(len(dataset), batch_size * max_batches)
    chunks = torch.linspace(0, len(dataset) - 1, n).round().long()
    total = 0.0
    for start in range(0, n, batch_size):
        x, y = dataset.batch(chunks[start : start + batch_size])
        total += sequence_loss(model, x.to(device), y.to(device)).item() * x.numel()
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


class _DeferredInterrupt:
    """Turns the first Ctrl-C into a flag checked between steps (a second one interrupts at
    once). Only the main thread can own signal handlers; elsewhere this does nothing."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(
    cfg: TrainConfig,
    progress: bool = True,
    text: str | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train cfg.model for cfg.steps steps (in total, counting steps before a resume).

    `text` replaces cfg.data's corpus. `on_step(step, loss)` is called after each step.
    A first Ctrl-C (SIGINT) finishes the current step, saves, and returns with interrupted=True.
    """
    device = resolve_device(cfg.device)
    out = Path(cfg.out) if cfg.out is not None else None
    train_ds, val_ds, vocab = prepare_data(cfg, text)
    mcfg = cfg.model_config(len(vocab))
    torch.manual_seed(cfg.seed)
    model = build_model(mcfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rows, step, elapsed = [], 0, 0.0
    if cfg.resume:
        state = _load_state(out / CHECKPOINT_NAME, cfg, vocab)
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
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc=cfg.model,
               unit="step", dynamic_ncols=True)
    interrupted = False
    with _DeferredInterrupt() as interrupt, bar:
        while step < cfg.steps:
            x, y = batches(step)
            t0 = time.perf_counter()
            loss = sequence_loss(model, x.to(device), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = loss.item()  # synchronizes CUDA, so the step time below is real
            dt = time.perf_counter() - t0
            step += 1
            elapsed += dt
            val = float("nan")
            validate = step == 1 or step % cfg.val_every == 0 or step == cfg.steps
            if validate:
                val = evaluate(model, val_ds, cfg.batch_size, cfg.val_batches, device)
            rows.append(dict(step=step, train_loss=loss_value, val_loss=val,
                             elapsed_s=elapsed, tokens_per_s=tokens / dt))
            if validate and out is not None:
                atomic_to_csv(_history(rows), out / LOG_NAME)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tokens / dt:,.0f}", refresh=False)
            if on_step is not None:
                on_step(step, loss_value)
            if interrupt.requested:
                interrupted = True
                break
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save()
    ckpt, log = save()
    return TrainResult(model, train_ds, val_ds, _history(rows), count_parameters(model), ckpt,
                       log, cfg, device, interrupted)


def _history(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LOG_COLUMNS)


def _read_checkpoint(path: Path, device="cpu") -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise ValueError(f"{path} is not a readable checkpoint: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a charlm checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def _load_state(path: Path, cfg: TrainConfig, vocab: list[str]) -> dict:
    state = _read_checkpoint(path)
    saved = state["config"]
    diff = [f"{k}={saved.get(k)!r} (now {v!r})" for k, v in asdict(cfg).items()
            if k not in RESUMABLE_CHANGES and saved.get(k) != v]
    if diff:
        raise ValueError(f"cannot resume {path}: settings differ from the checkpoint's: "
                         + ", ".join(diff))
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
