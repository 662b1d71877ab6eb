"""The cached fine-tuning stage: ``get_finetuned(task, profile)`` trains once, then returns.

A run lives in ``<cache>/finetuned/<task>/<key>/`` where ``key`` hashes the model, the task
recipe, the frozen depth, the seed and the data sizes. A complete run holds ``encoder/`` (a
Hugging Face encoder + tokenizer, for probing and RSA), ``head.safetensors`` with
``task_config.json`` (the task head; with the encoder, the task model for re-evaluation with
swapped layers) and
``result.json`` (final metrics and per-epoch history). An incomplete run resumes from its latest
checkpoint. The loop itself is ``bertdrift.finetune.loop.fit``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bertdrift.config import resolve_device, resolve_precision
from bertdrift.errors import ModelError
from bertdrift.finetune.loop import (
    HEAD_FILE,
    evaluate_features,
    fit,
    load_weights,
    save_weights,
    seed_everything,
)
from bertdrift.finetune.tasks import Task, TaskData, TaskModel, get_task
from bertdrift.io import file_lock, read_json, share_files, stable_hash, write_json

FORMAT_VERSION = 2
"""Part of every run's key. 2: a finished run stores its head alone (``HEAD_FILE``) beside the
encoder, instead of a second copy of the encoder inside a whole-model file."""

__all__ = [
    "FinetuneResult", "Snapshot", "build_task_model", "evaluate_task_model", "get_finetuned",
    "load_snapshot_model", "load_task_model", "load_task_tokenizer", "run_dir_for", "run_key",
    "snapshots", "train_task",
]


@dataclass
class FinetuneResult:
    task: str
    path: Path
    """The run directory."""
    encoder_path: Path
    """A Hugging Face encoder + tokenizer: ``bertdrift.models.load_encoder(encoder_path)``."""
    metrics: dict[str, float]
    """Final evaluation scores (percent), e.g. ``dev_matched_accuracy``."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Per epoch: ``epoch``, ``train_loss``, ``train_seconds``, ``train_samples_per_s``, scores."""
    trained: bool = False
    """True if this call trained (or finished training), False if it was read from the cache."""


def run_key(task: str, profile: Any, *, freeze: int, seed: int, cache_frozen: bool) -> str:
    recipe = dataclasses.asdict(profile.recipe(task))
    extra = {"squad_eval_articles": profile.squad_eval_articles} if task == "squad" else {}
    extra["precision"] = resolve_precision(profile.precision, profile.device)
    extra["eval_every_epoch"] = bool(profile.eval_every_epoch)
    if freeze == 0 and profile.snapshot_fractions:  # a run that keeps snapshots is another run
        extra["snapshots"] = list(profile.snapshot_fractions)
    if getattr(profile, "max_steps", None) is not None:  # a bounded run is not the full one
        extra["max_steps"] = profile.max_steps
    from bertdrift.models import model_identity

    return stable_hash(FORMAT_VERSION, task, model_identity(profile.model), recipe, freeze, seed,
                       bool(cache_frozen and freeze > 0), extra)


def run_dir_for(task: str, profile: Any, *, freeze: int = 0, seed: int = 0,
                cache_frozen: bool = True) -> Path:
    key = run_key(task, profile, freeze=freeze, seed=seed, cache_frozen=cache_frozen)
    return profile.cache_path / "finetuned" / task / key


def _read_result(task: str, run_dir: Path) -> FinetuneResult | None:
    path = run_dir / "result.json"
    if not path.exists() or not (run_dir / "encoder" / "config.json").exists():
        return None
    try:
        stored = read_json(path)
        return FinetuneResult(task, run_dir, run_dir / "encoder", dict(stored["metrics"]),
                              list(stored["history"]), trained=False)
    except (ValueError, KeyError, TypeError):
        return None  # a damaged (e.g. emptied) result.json: the run is trained again


def build_task_model(task: Task, encoder: torch.nn.Module, meta: dict[str, Any],
                     seed: int = 0) -> TaskModel:
    torch.manual_seed(seed)
    head = task.build_head(int(encoder.config.hidden_size), meta)
    return TaskModel(encoder, head, task.name, meta)


def train_task(task: str | Task, profile: Any, run_dir: str | Path, *, freeze: int = 0,
               seed: int = 0, cache_frozen: bool = True, progress: bool = True,
               data: TaskData | None = None, encoder: torch.nn.Module | None = None,
               tokenizer: Any = None, checkpoint_every: int | None = None,
               stop_after: int | None = None) -> FinetuneResult:
    """Fine-tune ``task`` into ``run_dir`` (resuming there) and save the finished model.

    ``data``, ``encoder`` and ``tokenizer`` default to the profile's (tests pass small ones).
    """
    from bertdrift.models import load_encoder, load_tokenizer

    t = get_task(task)
    run_dir = Path(run_dir)
    done = _read_result(t.name, run_dir)
    if done is not None:
        return done
    recipe = profile.recipe(t.name)
    data = data if data is not None else t.load(profile)
    if not data.meta:
        data.meta = t.meta_from(data.train)
    seed_everything(seed)
    encoder = encoder if encoder is not None else load_encoder(profile.model)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(profile.model)
    from bertdrift.families import max_positions

    if recipe.max_length > max_positions(encoder.config):
        raise ModelError(f"{t.name}: max_length={recipe.max_length} exceeds the "
                         f"{max_positions(encoder.config)} positions of {profile.model}; "
                         f"override {t.name}_max_length with at most that")
    model = build_task_model(t, encoder, data.meta, seed)
    out = fit(t, model, tokenizer, data, recipe, run_dir, freeze=freeze, seed=seed,
              cache_frozen=cache_frozen, progress=progress,
              device=resolve_device(profile.device), checkpoint_every=checkpoint_every,
              stop_after=stop_after, max_steps=getattr(profile, "max_steps", None),
              precision=resolve_precision(profile.precision, profile.device),
              eval_every_epoch=profile.eval_every_epoch,
              snapshots=profile.snapshot_fractions if freeze == 0 else ())
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        _finish(run_dir, model, tokenizer, t.name, data.meta, freeze, seed, out)
    state.wait_for_everyone()
    result = _read_result(t.name, run_dir)
    assert result is not None
    result.trained = True
    return result


def _finish(run_dir: Path, model: TaskModel, tokenizer: Any, task: str, meta: dict[str, Any],
            freeze: int, seed: int, out: dict[str, Any]) -> None:
    """Write the encoder, the task model and, last, ``result.json`` (marks the run complete)."""
    enc_tmp = run_dir / ".encoder.tmp"
    shutil.rmtree(enc_tmp, ignore_errors=True)
    model.encoder.save_pretrained(enc_tmp)
    tokenizer.save_pretrained(enc_tmp)
    share_files(enc_tmp)
    shutil.rmtree(run_dir / "encoder", ignore_errors=True)
    enc_tmp.rename(run_dir / "encoder")
    save_weights(model.head, run_dir / HEAD_FILE)  # the encoder is stored once, above
    write_json(run_dir / "task_config.json",
               {"task": task, "meta": meta, "freeze": freeze, "seed": seed,
                "format": FORMAT_VERSION})
    write_json(run_dir / "result.json", {"task": task, **out})
    for old in run_dir.glob("checkpoint-*"):
        shutil.rmtree(old, ignore_errors=True)


def get_finetuned(task: str, profile: Any, *, freeze: int = 0, seed: int = 0,
                  cache_frozen: bool = True, progress: bool = True) -> FinetuneResult:
    """The model fine-tuned on ``task`` under ``profile``: read from the cache if complete,
    otherwise trained (resuming a partial run) and stored.

    ``freeze=k`` freezes the embeddings and the bottom ``k`` layers; with ``cache_frozen`` the
    frozen prefix's outputs are computed once and reused in later epochs.
    """
    from bertdrift.config_checks import check_freeze

    t = get_task(task)
    check_freeze(profile, freeze)
    run_dir = run_dir_for(t.name, profile, freeze=freeze, seed=seed, cache_frozen=cache_frozen)
    done = _read_result(t.name, run_dir)
    if done is not None:
        return done
    # one training per run at a time, as for extractions: a second process asking for the same
    # run waits, then reads the finished run (or resumes it, if the first was stopped); the
    # ranks of one distributed launch train it together, unlocked
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = (contextlib.nullcontext() if int(os.environ.get("WORLD_SIZE", "1")) > 1
            else file_lock(run_dir.parent / f".{run_dir.name}.lock"))
    with lock:
        return train_task(t, profile, run_dir, freeze=freeze, seed=seed,
                          cache_frozen=cache_frozen, progress=progress)


def _run_dir(result_or_path: FinetuneResult | str | Path) -> Path:
    path = result_or_path.path if isinstance(result_or_path, FinetuneResult) else result_or_path
    path = Path(path)
    if not (path / "task_config.json").exists():
        raise ModelError(f"{path} is not a finished fine-tuning run (no task_config.json); "
                         "pass the FinetuneResult or run directory that get_finetuned returned")
    return path


def load_task_model(result_or_path: FinetuneResult | str | Path,
                    device: str = "cpu") -> TaskModel:
    """The fine-tuned encoder + head of a run, in evaluation mode."""
    from bertdrift.models import load_encoder

    run_dir = _run_dir(result_or_path)
    config = read_json(run_dir / "task_config.json")
    task = get_task(config["task"])
    model = build_task_model(task, load_encoder(run_dir / "encoder"), config["meta"])
    load_weights(model.head, run_dir / HEAD_FILE)
    return model.to(device).eval()


def load_task_tokenizer(result_or_path: FinetuneResult | str | Path) -> Any:
    from bertdrift.models import load_tokenizer

    return load_tokenizer(_run_dir(result_or_path) / "encoder")


def evaluate_task_model(task: str | Task, model: TaskModel, profile: Any, *,
                        data: TaskData | None = None, tokenizer: Any = None,
                        progress: bool = False) -> dict[str, float]:
    """Scores of ``model`` (e.g. with some layers swapped) on the profile's evaluation sets,
    under bf16 autocast when the profile's ``precision`` resolves to bf16 (as in training)."""
    from bertdrift.finetune.loop import Autocast
    from bertdrift.models import load_tokenizer

    t = get_task(task)
    recipe = profile.recipe(t.name)
    data = data if data is not None else t.load(profile)
    data.meta = dict(model.meta)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(profile.model)
    t.bind(model.head)
    feats = {s: t.build_features(ex, tokenizer, recipe, data.meta, train=False)
             for s, ex in data.evals.items()}
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    amp = Autocast(device.type, resolve_precision(profile.precision, profile.device) == "bf16")
    return evaluate_features(t, model, data, feats, recipe, pad_id, device, accelerator=amp,
                             progress=progress)


@dataclass(frozen=True)
class Snapshot:
    """The model of a fine-tuning run after ``step`` of its ``total`` optimizer steps."""

    step: int
    total: int
    encoder_path: str
    """A Hugging Face encoder folder (or, at step 0, the pre-trained model's name)."""
    head_path: Path | None
    """The head's weights (``None`` at step 0: the head's seeded initialisation)."""

    @property
    def fraction(self) -> float:
        return self.step / self.total


def snapshots(result: FinetuneResult, profile: Any) -> list[Snapshot]:
    """The snapshots a finished run kept (``profile.snapshot_fractions`` when it trained),
    from step 0 (the pre-trained encoder) to the last step (the finished run), in order::

        run = get_finetuned("mnli", profile)
        [s.step for s in snapshots(run, profile)]   # e.g. [0, 4, 8, 16, 32, 63, 126]
    """
    stored = read_json(result.path / "result.json")
    if "snapshot_steps" not in stored:
        raise ModelError(f"{result.path} was trained without snapshots; delete it and run "
                         "get_finetuned again with snapshot_fractions set in the profile")
    total = int(stored["total_steps"])
    out = []
    for step in stored["snapshot_steps"]:
        if step == 0:
            out.append(Snapshot(0, total, str(profile.model), None))
        elif step == total:
            out.append(Snapshot(step, total, str(result.encoder_path),
                                result.path / HEAD_FILE))
        else:
            folder = result.path / "snapshots" / f"step-{step:06d}"
            if not folder.exists():
                raise ModelError(f"snapshot {folder} is missing; delete {result.path} and run "
                                 "get_finetuned again")
            out.append(Snapshot(step, total, str(folder), folder / HEAD_FILE))
    return out


def load_snapshot_model(result: FinetuneResult, snapshot: Snapshot,
                        device: str = "cpu") -> TaskModel:
    """Encoder + head of a run at ``snapshot`` (step 0: the pre-trained encoder and the head's
    seeded initialisation), in evaluation mode."""
    from bertdrift.models import load_encoder

    config = read_json(result.path / "task_config.json")
    task = get_task(config["task"])
    model = build_task_model(task, load_encoder(snapshot.encoder_path), config["meta"],
                             int(config["seed"]))
    if snapshot.head_path is not None:
        load_weights(model.head, snapshot.head_path)
    return model.to(device).eval()
