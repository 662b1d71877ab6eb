"""The one training loop for every task, on ``accelerate`` (``finetune.runs`` caches its runs).

The loop: AdamW (weight decay off for biases and LayerNorm; the head may have its own learning
rate), linear warm-up then linear decay, gradient clipping at 1.0, dynamic padding with
length-grouped batches, bf16 autocast (``precision``) on a GPU or a CPU, evaluation after every
epoch (or only the last), and checkpoints
(safetensors weights + optimizer, scheduler and RNG state loaded with ``weights_only=True``)
from which an interrupted run resumes at step granularity to the same final weights.

Multi-GPU: ``accelerate launch`` a script that calls ``get_finetuned``; each process then sees a
shard of every batch list (the global batch is ``batch_size x processes``) and evaluation runs on
every process over the whole evaluation set (only the main process writes).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bertdrift.errors import ModelError
from bertdrift.finetune.tasks import Task, TaskData, TaskModel
from bertdrift.io import FILE_MODE, atomic_path, read_json, share_files, write_json

CLIP_NORM = 1.0
MEGA_BATCHES = 50
"""Length grouping sorts pools of ``50 x batch_size`` shuffled features by length."""


class TrainingInterrupted(ModelError):
    """Raised by ``stop_after`` to simulate an interruption (tests); resume by calling again."""


# -- batching --------------------------------------------------------------------------------
def length_grouped_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffle, sort pools of ``MEGA_BATCHES`` batches by length (longest first), cut into
    batches and shuffle the batches: little padding, still random. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    pool = MEGA_BATCHES * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool].tolist(), key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class _BatchList:
    """A fixed list of index batches, usable as a DataLoader ``batch_sampler``."""

    def __init__(self, batches: list[list[int]], batch_size: int):
        self.batches, self.batch_size, self.drop_last = batches, batch_size, False

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


# -- seeding and checkpoints -----------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


HEAD_FILE = "head.safetensors"
"""A task head's weights, beside its encoder (a finished run, a snapshot)."""


def save_weights(module: torch.nn.Module, path: Path) -> None:
    """All of ``module``'s tensors as one safetensors file, written atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
        os.chmod(tmp, FILE_MODE)  # safetensors recreates the file, losing atomic_path's mode


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load a file written by ``save_weights``; a mismatch is a ``ModelError``."""
    from safetensors.torch import load_file

    missing, unexpected = module.load_state_dict(load_file(str(path)), strict=False)
    real_missing = [k for k in missing if not k.endswith("position_ids")]
    if real_missing or unexpected:
        raise ModelError(f"{path} does not match the model (missing {real_missing[:5]}, "
                         f"unexpected {unexpected[:5]}); delete the run directory and retrain")


def _save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any,
                     state: dict[str, Any]) -> None:
    tmp = run_dir / f".checkpoint-{state['global_step']}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_weights(model, tmp / "model.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": _rng_state()}, tmp / "training_state.pt")
    write_json(tmp / "trainer_state.json", state)
    final = run_dir / f"checkpoint-{state['global_step']}"
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in run_dir.glob("checkpoint-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = [p for p in run_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(found, key=lambda p: int(p.name.split("-")[1])) if found else None


# -- the loop --------------------------------------------------------------------------------
def _param_groups(model: TaskModel, lr: float, head_lr: float | None,
                  weight_decay: float) -> list[dict[str, Any]]:
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    norms = {id(p) for m in model.modules() if "Norm" in type(m).__name__
             for p in m.parameters(recurse=False)}  # LayerNorm, RMSNorm, ModernBERT's *_norm
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = name.endswith("bias") or id(p) in norms or "LayerNorm" in name
        groups.setdefault((name.startswith("head."), no_decay), []).append(p)
    return [
        {"params": params, "lr": (head_lr or lr) if is_head else lr,
         "weight_decay": 0.0 if no_decay else weight_decay}
        for (is_head, no_decay), params in sorted(groups.items())
    ]


class PrefixCache:
    """Hidden states after a frozen prefix of ``k`` layers, per (split, feature), computed once
    (in evaluation mode, as frozen layers always are) and reused in later epochs. They are
    stored in ``dtype`` (``None``: as computed) and handed back in the dtype they were computed
    in, so a cached epoch sees the same inputs as an uncached one (under autocast too)."""

    def __init__(self, k: int, dtype: torch.dtype | None = None):
        self.k, self.dtype = k, dtype
        self.out_dtype: torch.dtype | None = None
        self.store: dict[tuple[str, int], torch.Tensor] = {}

    @torch.no_grad()
    def get(self, model: TaskModel, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        idx = batch["index"].tolist()
        lengths = batch["attention_mask"].sum(-1).tolist()
        if not all((split, i) in self.store for i in idx):
            hidden = model.prefix(batch, self.k)
            self.out_dtype = hidden.dtype
            for row, (i, n) in enumerate(zip(idx, lengths, strict=False)):
                self.store[(split, i)] = hidden[row, :n].to("cpu", self.dtype or hidden.dtype
                                                            ).clone()
            return hidden
        first = self.store[(split, idx[0])]
        out = torch.zeros((*batch["input_ids"].shape, first.shape[-1]),
                          dtype=self.out_dtype or first.dtype)
        for row, i in enumerate(idx):
            h = self.store[(split, i)]
            out[row, : h.shape[0]] = h.to(out.dtype)
        return out.to(batch["input_ids"].device)


class Autocast:
    """bf16 autocast on ``device_type`` when ``enabled`` (else a no-op), with the
    ``autocast()`` method ``predict_split`` calls."""

    def __init__(self, device_type: str, enabled: bool):
        self.device_type, self.enabled = device_type, enabled

    def autocast(self) -> Any:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)


def _collate(task: Task, features: list[dict[str, Any]], indices: list[int],
             pad_id: int) -> dict[str, torch.Tensor]:
    batch = task.collate([features[i] for i in indices], pad_id)
    batch["index"] = torch.tensor(indices, dtype=torch.long)
    return batch


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def predict_split(task: Task, model: TaskModel, features: list[dict[str, Any]], pad_id: int,
                  batch_size: int, device: torch.device, *, split: str = "eval",
                  cache: PrefixCache | None = None, accelerator: Any = None,
                  progress: bool = False) -> list[Any]:
    """Predictions for every feature (in feature order), batched by length."""
    was_training = model.training
    model.eval()
    preds: list[Any] = [None] * len(features)
    batches = sorted_batches([len(f["input_ids"]) for f in features], batch_size)
    for idx in tqdm(batches, desc=f"eval {split}", disable=not progress, leave=False):
        batch = _to(_collate(task, features, idx, pad_id), device)
        ctx = accelerator.autocast() if accelerator is not None else contextlib.nullcontext()
        with ctx:
            if cache is not None:
                outputs = model(batch, prefix=cache.get(model, batch, split), start_layer=cache.k)
            else:
                outputs = model(batch)
            predicted = task.predict(outputs, batch)  # heads may compute more (parsing labels)
        for i, p in zip(idx, predicted, strict=False):
            preds[i] = p
    model.train(was_training)
    return preds


def evaluate_features(task: Task, model: TaskModel, data: TaskData,
                      eval_features: dict[str, list[dict[str, Any]]], recipe: Any, pad_id: int,
                      device: torch.device, *, cache: PrefixCache | None = None,
                      accelerator: Any = None, progress: bool = False) -> dict[str, float]:
    scores: dict[str, float] = {}
    for split, feats in eval_features.items():
        preds = predict_split(task, model, feats, pad_id, 2 * recipe.batch_size, device,
                              split=split, cache=cache, accelerator=accelerator,
                              progress=progress)
        for name, value in task.evaluate(data.evals[split], feats, preds, data.meta,
                                         recipe).items():
            scores[f"{split}_{name}"] = float(value)
    return scores


def snapshot_steps(fractions: Sequence[float], total: int) -> list[int]:
    """The optimizer steps at which ``fractions`` of a ``total``-step run fall (rounded, each
    once, in order): ``snapshot_steps([0, 1/4, 1/2, 1], 10) == [0, 2, 5, 10]``."""
    return sorted({int(round(f * total)) for f in fractions})


def save_snapshot(run_dir: Path, step: int, model: TaskModel, tokenizer: Any) -> Path:
    """Keep the encoder (a Hugging Face folder with its tokenizer) and the head at ``step`` in
    ``<run_dir>/snapshots/step-<step>/``, written atomically."""
    final = run_dir / "snapshots" / f"step-{step:06d}"
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.encoder.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    share_files(tmp)
    save_weights(model.head, tmp / HEAD_FILE)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def fit(task: Task, model: TaskModel, tokenizer: Any, data: TaskData, recipe: Any,
        run_dir: Path, *, freeze: int = 0, seed: int = 0, cache_frozen: bool = True,
        progress: bool = True, device: str = "cpu", checkpoint_every: int | None = None,
        checkpoint_minutes: float = 10.0, stop_after: int | None = None,
        snapshots: Sequence[float] = (), max_steps: int | None = None,
        precision: str = "fp32", eval_every_epoch: bool = True) -> dict[str, Any]:
    """Train ``model`` on ``data`` into ``run_dir``, resuming from its latest checkpoint.

    Returns ``{"metrics": final eval scores, "history": per-epoch records, "total_steps",
    "snapshot_steps"}``. A checkpoint is written after every ``checkpoint_every`` optimizer
    steps (if given), whenever ``checkpoint_minutes`` have passed, and at the end of every
    epoch. ``snapshots`` are fractions of the run's steps at which the model is kept
    (``save_snapshot``); steps 0 and the last are not stored (they are the pre-trained model
    and the finished run). ``max_steps`` bounds the run: training stops after that many
    optimizer steps (the schedule stays the recipe's, so they are the full run's first steps),
    then evaluates.
    ``precision="bf16"`` trains and evaluates under bf16 autocast
    (weights and optimizer stay float32), on a GPU or a CPU. With ``eval_every_epoch=False``
    only the last epoch is evaluated (earlier history records carry no scores).
    """
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    from bertdrift.models import freeze_bottom, fused_optimizer

    run_dir.mkdir(parents=True, exist_ok=True)
    cpu = device == "cpu" or not torch.cuda.is_available()
    # Autocast is ours, not accelerate's: its mixed-precision state is a process-wide singleton,
    # so one process could not train in fp32 and then in bf16 (benchmarks/precision.py does).
    accelerator = Accelerator(cpu=cpu, mixed_precision="no")
    amp = Autocast("cpu" if cpu else "cuda", precision == "bf16")
    seed_everything(seed)
    freeze_bottom(model.encoder, freeze)
    from bertdrift.families import unused_modules

    for module in unused_modules(model.encoder):  # no gradient ever: DDP needs them frozen
        module.requires_grad_(False)
    model.train()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_features = task.build_features(data.train, tokenizer, recipe, data.meta, train=True)
    eval_features = {s: task.build_features(ex, tokenizer, recipe, data.meta, train=False)
                     for s, ex in data.evals.items()}
    lengths = [len(f["input_ids"]) for f in train_features]
    budget = {"train_features": len(train_features), "epochs": recipe.epochs,
              "examples_seen": len(train_features) * recipe.epochs,
              "tokens_seen": int(sum(lengths)) * recipe.epochs}
    steps_per_epoch = math.ceil(len(train_features) / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    keep = [s for s in snapshot_steps(snapshots, total) if 0 < s < total]
    groups = _param_groups(model, recipe.lr, recipe.head_lr, recipe.weight_decay)
    optimizer = fused_optimizer(torch.optim.AdamW, groups, recipe.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(recipe.warmup_ratio * total), total)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    inner: TaskModel = accelerator.unwrap_model(model)
    task.bind(inner.head)
    cache = None
    if cache_frozen and freeze > 0:
        cache = PrefixCache(freeze, None if cpu else torch.bfloat16)

    state: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [],
                             "loss_sum": 0.0, "loss_count": 0, "epoch_seconds": 0.0}
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None:
        load_weights(inner, ckpt / "model.safetensors")
        extra = torch.load(ckpt / "training_state.pt", weights_only=True, map_location="cpu")
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        _set_rng_state(extra["rng"])
        state = read_json(ckpt / "trainer_state.json")

    def checkpoint() -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            _save_checkpoint(run_dir, inner, optimizer, scheduler, state)

    last_save, steps_this_call = time.monotonic(), 0
    while state["epoch"] < recipe.epochs and (max_steps is None or not state["history"]
                                              or state["global_step"] < max_steps):
        epoch = state["epoch"]
        batches = length_grouped_batches(lengths, recipe.batch_size, seed * 1000 + epoch)
        start_step = state["step_in_epoch"]
        loader = torch.utils.data.DataLoader(
            list(range(len(train_features))),
            batch_sampler=_BatchList(batches[start_step:], recipe.batch_size),
            collate_fn=lambda idx: _collate(task, train_features, idx, pad_id),
            generator=torch.Generator().manual_seed(seed),
        )
        if accelerator.num_processes > 1:
            loader = accelerator.prepare(loader)
        t0 = time.monotonic()
        bar = tqdm(loader, desc=f"{task.name} epoch {epoch + 1}/{recipe.epochs}",
                   initial=start_step, total=len(batches), disable=not progress)
        for batch in bar:
            batch = _to(batch, accelerator.device)
            with amp.autocast():
                if cache is not None:
                    prefix = cache.get(inner, batch, "train")
                    outputs = model(batch, prefix=prefix, start_layer=freeze)
                else:
                    outputs = model(batch)
                loss = task.loss(outputs, batch)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            if state["global_step"] in keep and accelerator.is_main_process:
                save_snapshot(run_dir, state["global_step"], inner, tokenizer)
            state["loss_sum"] += float(loss.detach())
            state["loss_count"] += 1
            steps_this_call += 1
            bar.set_postfix(loss=f"{state['loss_sum'] / state['loss_count']:.3f}")
            due = (checkpoint_every and state["global_step"] % checkpoint_every == 0) or (
                time.monotonic() - last_save > 60 * checkpoint_minutes)
            if due and state["step_in_epoch"] < len(batches):
                state["epoch_seconds"] += time.monotonic() - t0
                t0 = time.monotonic()
                checkpoint()
                last_save = time.monotonic()
            if stop_after is not None and steps_this_call >= stop_after:
                raise TrainingInterrupted(
                    f"stopped after {steps_this_call} steps as asked (stop_after); call again "
                    "to resume from the latest checkpoint")
            if max_steps is not None and state["global_step"] >= max_steps:
                break
        seconds = state["epoch_seconds"] + time.monotonic() - t0
        seen = len(train_features) if max_steps is None else min(
            len(train_features), state["step_in_epoch"] * recipe.batch_size)
        scores: dict[str, float] = {}
        bounded_stop = max_steps is not None and state["global_step"] >= max_steps
        if eval_every_epoch or epoch + 1 == recipe.epochs or bounded_stop:
            scores = evaluate_features(task, inner, data, eval_features, recipe, pad_id,
                                       accelerator.device, cache=cache, accelerator=amp,
                                       progress=progress)
        state["history"].append({
            "epoch": epoch + 1, "train_loss": state["loss_sum"] / max(1, state["loss_count"]),
            "train_seconds": seconds, "train_samples_per_s": seen / seconds,
            "steps": state["global_step"], **scores})
        state.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, loss_count=0,
                     epoch_seconds=0.0)
        finished = state["epoch"] >= recipe.epochs or bounded_stop
        if not finished:  # after the last epoch the caller saves the model and result instead
            checkpoint()
            last_save = time.monotonic()
    history = state["history"]
    metrics = {k: v for k, v in history[-1].items() if k.startswith(tuple(data.evals))}
    return {"metrics": metrics, "history": history, "total_steps": total, "budget": budget,
            "precision": precision,
            "snapshot_steps": snapshot_steps(snapshots, total)}
