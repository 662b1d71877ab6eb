"""Fine-tuning (chapter 2): one loop for every task, cached runs, task scores and baselines.

| module | what it holds |
|---|---|
| ``runs`` | ``get_finetuned(task, profile)``: the cached stage (train once, then read), ``load_task_model``, ``evaluate_task_model`` |
| ``loop`` | ``fit``: the training loop on ``accelerate`` (checkpoints, resume, frozen-prefix cache) |
| ``tasks`` | ``get_task(name)``: MNLI, SQuAD and dependency parsing behind one small ``Task`` interface |
| ``metrics`` | accuracy, the official SQuAD v1.1 scores, CoNLL 2018 attachment scores |
| ``baselines`` | trivial baselines (majority class, first-word answers, adjacent-word trees) and published scores |
| ``report`` | the chapter's tables and the numbers its text quotes |

Usage::

    run = get_finetuned("mnli", get_profile("tiny"))      # trains once, then reads the cache
    run.metrics["dev_matched_accuracy"], run.encoder_path  # scores (%) and the encoder folder
"""

from __future__ import annotations

from bertdrift.finetune.baselines import best_baseline, trivial_baselines
from bertdrift.finetune.loop import (
    PrefixCache,
    TrainingInterrupted,
    fit,
    length_grouped_batches,
    seed_everything,
)
from bertdrift.finetune.runs import (
    FinetuneResult,
    Snapshot,
    build_task_model,
    evaluate_task_model,
    get_finetuned,
    load_snapshot_model,
    load_task_model,
    load_task_tokenizer,
    run_dir_for,
    run_key,
    snapshots,
    train_task,
)
from bertdrift.finetune.tasks import Task, TaskData, TaskModel, get_task

__all__ = [
    "FinetuneResult",
    "PrefixCache",
    "Snapshot",
    "Task",
    "TaskData",
    "TaskModel",
    "TrainingInterrupted",
    "best_baseline",
    "build_task_model",
    "evaluate_task_model",
    "fit",
    "get_finetuned",
    "get_task",
    "length_grouped_batches",
    "load_snapshot_model",
    "load_task_model",
    "load_task_tokenizer",
    "run_dir_for",
    "run_key",
    "seed_everything",
    "snapshots",
    "train_task",
    "trivial_baselines",
]
