"""The names of the encoders chapter 3 probes, and tables that read fine-tuned models as one.

Chapter 3 probes the random-encoder floor, the pre-trained model and *every* fine-tuning seed of
every task. A fine-tuned model is named after its task, with ``@seed`` for any seed but 0:
``"mnli"`` is MNLI's seed 0 (the name chapter 3 always used), ``"mnli@1"`` its seed 1. A name is
only a label (cached probes are keyed by the model's weights), so the scheme never mixes seeds
up; ``split_name`` reads it back. ``pooled`` turns a tidy table with one model per fine-tuning
seed into one with one model per task, so tables and figures keep one column (or line) per
task: the seed mean, with the spread over fine-tuning and probe seeds together.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bertdrift.config import RANDOM_MODEL, TASKS, Profile

SEED_MARK = "@"


def finetuned_name(task: str, seed: int) -> str:
    """The model name of ``task``'s fine-tuning seed ``seed``: ``task`` for seed 0, else
    ``task@seed``."""
    return task if int(seed) == 0 else f"{task}{SEED_MARK}{int(seed)}"


def split_name(name: str) -> tuple[str, int | None]:
    """``(task, fine-tuning seed)`` of a fine-tuned model's name (``"mnli"`` -> ``("mnli", 0)``,
    ``"mnli@2"`` -> ``("mnli", 2)``); ``(name, None)`` for any other model (pre-trained,
    random, a snapshot, any name of the caller's own)."""
    base, mark, seed = str(name).partition(SEED_MARK)
    if base in TASKS and (not mark or seed.isdigit()):
        return base, int(seed) if mark else 0
    return str(name), None


def probe_models(profile: Profile, tasks: Sequence[str] = TASKS) -> tuple[str, ...]:
    """Every encoder chapter 3 probes: the random floor, the pre-trained model, then each task's
    fine-tuning seeds (``profile.seeds``) in order."""
    return (RANDOM_MODEL, "pretrained",
            *(finetuned_name(t, s) for t in tasks for s in profile.seeds))


def finetuned_seeds(models: Sequence[str], task: str) -> dict[int, str]:
    """``{fine-tuning seed: model name}`` of ``task`` among ``models``, by seed."""
    found = {}
    for m in models:
        base, seed = split_name(m)
        if base == task and seed is not None:
            found[seed] = m
    return dict(sorted(found.items()))


def pooled(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (a tidy probing table with ``model`` and, usually, ``seed`` = probe seed) with
    every fine-tuned model named after its task: ``ft_seed`` holds the fine-tuning seed (``<NA>``
    for the others), ``probe_seed`` the probe seed, and ``seed`` becomes a label unique per
    (fine-tuning seed, probe seed), e.g. ``"1.0"`` (``"0"`` for an encoder without fine-tuning
    seeds), so a group by ``(model, seed)`` still finds one run per group."""
    if frame.empty or "model" not in frame:
        return frame
    names = [split_name(m) for m in frame["model"]]
    out = frame.assign(model=[b for b, _ in names],
                       ft_seed=pd.array([s for _, s in names], dtype="Int64"))
    if "seed" in frame:
        out["probe_seed"] = frame["seed"].to_numpy()
        out["seed"] = [str(p) if f is None else f"{f}.{p}"
                       for (_, f), p in zip(names, frame["seed"], strict=True)]
    return out
