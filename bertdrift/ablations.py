"""Partial-freezing sweeps and layer replacement (chapter 5).

*Partial freezing* fine-tunes each task with the embeddings and the bottom ``k`` layers frozen
(``get_finetuned(task, profile, freeze=k, seed=s)``; frozen layers run in evaluation mode, so
they have no dropout) and reports the task score against ``k``. *Layer replacement* takes a
model fine-tuned with nothing frozen and reverts its top ``j`` (or bottom ``j``) transformer
layers to the pre-trained weights, then re-evaluates it: a layer that can be reverted for less
than the seed noise (``replacement_tolerance``, at least a point) was not needed for the task.
Embeddings and the task head are never reverted. The freezing claim is judged from the sweep
by ``bertdrift.ablation_stats`` (drops as fractions of the margin over the baseline).

Both results are cached as JSON + CSV under ``<cache>/results/ablations/``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from bertdrift.ablation_stats import freezing_numbers, freezing_record, margin_numbers
from bertdrift.config import TASKS, Profile, get_profile
from bertdrift.errors import ConfigError
from bertdrift.io import cached_frame, results_dir, stable_hash

SIDES = ("top", "bottom")
PAPER_FROZEN_FRACTION = 8 / 12
"""The paper's observation is made with 8 of BERT-base's 12 layers frozen."""

__all__ = [
    "SIDES", "analogous_depth", "depths", "freezing_drop", "freezing_numbers", "freezing_record",
    "freezing_sweep", "layer_replacement", "margin_numbers", "model_depth", "predicted_speedup",
    "replacement_scores", "revert_layers", "revertible", "reverted_indices", "sweep_profile",
    "sweep_runs",
]


# -- arithmetic ------------------------------------------------------------------------------
def predicted_speedup(num_layers: int, k: int, epochs: int, backward_cost: float = 2.0) -> float:
    """Training-time ratio (no prefix cache / prefix cache) predicted by counting layer passes.

    A backward pass costs ``backward_cost`` forward passes (about 2). Without the cache every
    epoch runs all ``L`` layers forward and the ``L - k`` trainable ones backward:
    ``E (L + 2 (L - k))``. With the cache the frozen ``k`` layers run forward once and the rest
    forward and backward every epoch: ``k + 3 E (L - k)``. Embeddings, the head and the
    optimizer are ignored; ``k = 0`` gives 1 (nothing is cached).
    """
    if num_layers < 1 or epochs < 1 or not 0 <= k <= num_layers or backward_cost < 0:
        raise ConfigError(f"need num_layers >= 1, epochs >= 1, 0 <= k <= num_layers and "
                          f"backward_cost >= 0; got L={num_layers}, k={k}, E={epochs}, "
                          f"backward_cost={backward_cost}")
    if k == 0:
        return 1.0
    b, trainable = backward_cost, num_layers - k
    return epochs * (num_layers + b * trainable) / (k + (1 + b) * epochs * trainable)


def analogous_depth(num_layers: int, fraction: float = PAPER_FROZEN_FRACTION) -> int:
    """The frozen depth of an ``num_layers`` model matching the paper's 8 of 12 (4 of 6)."""
    return int(round(num_layers * fraction))


def model_depth(profile: Profile) -> int:
    """Number of transformer layers of ``profile.model`` (reads only its config); for ALBERT,
    whose layers share weights, the number of layer groups that can be frozen or reverted."""
    from transformers import AutoConfig

    from bertdrift.families import num_blocks
    from bertdrift.models import resolve_model

    return num_blocks(AutoConfig.from_pretrained(resolve_model(profile.model)))


def depths(profile: Profile, num_layers: int | None = None) -> list[int]:
    """The frozen depths to sweep: ``profile.ablation_ks``, or every depth 0..L if None."""
    L = num_layers if num_layers is not None else model_depth(profile)
    ks = list(range(L + 1)) if profile.ablation_ks is None else sorted(set(profile.ablation_ks))
    bad = [k for k in ks if not 0 <= k <= L]
    if bad:
        raise ConfigError(f"ablation_ks {bad} are outside 0..{L} for {profile.model}; "
                          f"override ablation_ks with depths in 0..{L}")
    return ks


def sweep_profile(profile: Profile, *, train_fraction: float | None = None,
                  epochs: int | None = None, eval_size: int | None = None,
                  tasks: Iterable[str] = TASKS) -> Profile:
    """The profile the freezing sweep trains with: each task's ``train_size`` scaled by
    ``train_fraction`` (default ``profile.ablation_train_fraction``), and optionally fewer
    ``epochs`` and a smaller ``eval_size``. Every depth, ``k = 0`` included, uses it, so scores
    are comparable across depths; with nothing changed (fraction 1) it is ``profile`` itself, so
    the ``k = 0`` run is the fine-tuning chapter's cached model."""
    frac = profile.ablation_train_fraction if train_fraction is None else float(train_fraction)
    if not 0 < frac <= 1:
        raise ConfigError(f"train_fraction must be in (0, 1], got {frac}")
    changes: dict[str, Any] = {}
    for task in tasks:
        r = profile.recipe(task)
        if frac < 1:
            if r.train_size is None:
                raise ConfigError(
                    f"{task}: a train fraction of {frac} needs a fixed train size; set "
                    f"{task}_train_size in the profile or use ablation_train_fraction=1")
            changes[f"{task}_train_size"] = max(1, math.ceil(r.train_size * frac))
        if epochs is not None:
            changes[f"{task}_epochs"] = epochs
        if eval_size is not None:
            cap = eval_size if r.eval_size is None else min(eval_size, r.eval_size)
            changes[f"{task}_eval_size"] = cap
    return get_profile(profile, **changes)


def _profile_key(profile: Profile) -> dict[str, Any]:
    d = dataclasses.asdict(profile)
    for k in ("name", "data_dir", "cache_dir", "device"):
        d.pop(k, None)
    return d


# -- partial freezing -------------------------------------------------------------------------
def ablation_seeds(profile: Profile) -> list[int]:
    """The seeds the ablations train: ``profile.ablation_seeds``, else ``profile.seeds``."""
    return list(profile.ablation_seeds if profile.ablation_seeds is not None else profile.seeds)


def k0_scores(profile: Profile, tasks: Sequence[str] = TASKS) -> dict[str, list[float]]:
    """Per task, the primary score with nothing frozen for every seed of ``profile.seeds``
    (under chapter 2's recipe these are its runs, read from the cache): the ``k = 0`` arm of
    every drop. Pass the sweep's profile so both arms share one recipe."""
    from bertdrift.finetune import get_finetuned
    from bertdrift.finetune.tasks import get_task

    return {t: [float(get_finetuned(t, profile, seed=s, progress=False)
                      .metrics[get_task(t).primary_metric]) for s in profile.seeds]
            for t in tasks}


def sweep_runs(tasks: Sequence[str], ks: Sequence[int], seeds: Sequence[int],
               seeds_at: Mapping[int, Sequence[int]] | None = None
               ) -> list[tuple[str, int, int]]:
    """The ``(task, k, seed)`` runs of a sweep: every depth with ``seeds``, and the depths named
    in ``seeds_at`` also with the seeds listed there (e.g. all of the profile's ``seeds`` at
    the judged depth ``k*`` only, where the verdict needs them)."""
    extra = {int(k): list(v) for k, v in (seeds_at or {}).items()}
    bad = sorted(set(extra) - set(ks))
    if bad:
        raise ConfigError(f"seeds_at names depths {bad} that the sweep does not train "
                          f"(ablation_ks = {list(ks)})")
    return [(t, k, s) for t in tasks for k in ks
            for s in list(dict.fromkeys([*seeds, *extra.get(k, [])]))]


def judged_seeds(profile: Profile, k_star: int) -> dict[int, list[int]] | None:
    """``seeds_at`` for ``freezing_sweep``: every fine-tuning seed at the judged depth
    ``k_star`` when ``profile.ablation_judged_seeds`` (so the claim can be judged), else
    ``None`` (the sweep's ``ablation_seeds`` only)."""
    return {int(k_star): list(profile.seeds)} if profile.ablation_judged_seeds else None


def freezing_sweep(profile: Profile, tasks: Sequence[str] = TASKS, *,
                   ks: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
                   seeds_at: Mapping[int, Sequence[int]] | None = None,
                   cache_frozen: bool = True, progress: bool = True) -> pd.DataFrame:
    """Fine-tune every task at every frozen depth and seed (cached); one row per run.

    ``profile`` is used as given (pass ``sweep_profile(P)`` for the smaller sweep recipe).
    ``seeds_at`` adds seeds at some depths only (``sweep_runs``). Columns: ``task, k,
    frozen_fraction, seed, metric, score, train_seconds`` plus every metric of the run as
    ``m:<name>``.
    """
    from bertdrift.finetune import get_finetuned
    from bertdrift.finetune.tasks import get_task

    L = model_depth(profile)
    ks = list(ks) if ks is not None else depths(profile, L)
    seeds = list(seeds) if seeds is not None else ablation_seeds(profile)
    from bertdrift.finetune import run_key

    runs = sweep_runs(tasks, ks, seeds, seeds_at)
    key = stable_hash(_profile_key(profile), [
        run_key(t, profile, freeze=k, seed=s, cache_frozen=cache_frozen) for t, k, s in runs])
    path = results_dir(profile.cache_path, "ablations") / f"freezing_{key}"

    def compute() -> pd.DataFrame:
        rows = []
        for task, k, seed in tqdm(runs, desc="freezing sweep", disable=not progress):
            res = get_finetuned(task, profile, freeze=k, seed=seed, cache_frozen=cache_frozen,
                                progress=progress)
            metric = get_task(task).primary_metric
            rows.append({"task": task, "k": k, "frozen_fraction": k / L, "seed": seed,
                         "metric": metric, "score": float(res.metrics[metric]),
                         "train_seconds": float(sum(h["train_seconds"] for h in res.history)),
                         **{f"m:{n}": float(v) for n, v in res.metrics.items()}})
        return pd.DataFrame(rows)

    meta = {"model": profile.model, "profile": profile.name, "layers": L, "ks": ks,
            "seeds": seeds, "cache_frozen": cache_frozen}
    if seeds_at:
        meta["seeds_at"] = {str(k): list(v) for k, v in seeds_at.items()}
    return cached_frame(path, compute, meta)


def freezing_drop(frame: pd.DataFrame, k: int) -> dict[str, float]:
    """Per task: mean score (over seeds) with nothing frozen minus with ``k`` layers frozen."""
    mean = frame.groupby(["task", "k"])["score"].mean()
    out: dict[str, float] = {}
    for task in dict.fromkeys(frame["task"]):
        if (task, 0) not in mean.index or (task, k) not in mean.index:
            raise ConfigError(f"the sweep for {task} lacks k=0 or k={k}; include both in "
                              "ablation_ks")
        out[task] = float(mean[(task, 0)] - mean[(task, k)])
    return out


# -- layer replacement ------------------------------------------------------------------------
def reverted_indices(side: str, j: int, num_layers: int) -> list[int]:
    """0-based indices of the layers reverted when reverting the ``side`` ``j`` layers."""
    if side not in SIDES:
        raise ConfigError(f"side={side!r} is not valid; choose one of {SIDES}")
    if not 0 <= j <= num_layers:
        raise ConfigError(f"j={j} is out of range; choose 0..{num_layers}")
    return list(range(num_layers - j, num_layers)) if side == "top" else list(range(j))


def revert_layers(model: torch.nn.Module, pretrained: torch.nn.Module, side: str, j: int,
                  finetuned_state: list[dict[str, torch.Tensor]] | None = None
                  ) -> torch.nn.Module:
    """Set the ``side`` ``j`` transformer layers of ``model`` to ``pretrained``'s weights.

    With ``finetuned_state`` (the fine-tuned layers' state dicts), every other layer is first
    restored to its fine-tuned weights, so one model can be reused for many settings.
    """
    from bertdrift.models import copy_layers, encoder_layers

    layers = encoder_layers(model)
    idx = reverted_indices(side, j, len(layers))
    if finetuned_state is not None:
        with torch.no_grad():
            for i, layer in enumerate(layers):
                if i not in idx:
                    layer.load_state_dict(finetuned_state[i])
    return copy_layers(pretrained, model, idx)


def _eval_split(task: Any) -> str:
    """The evaluation split the primary metric is computed on (e.g. ``dev_matched``)."""
    return str(task.primary_metric.rsplit("_", 1)[0])


def replacement_scores(task: str, profile: Profile, *, seed: int = 0,
                       eval_size: int | None = None, progress: bool = True,
                       run: Any = None, pretrained: torch.nn.Module | None = None,
                       data: Any = None, tokenizer: Any = None) -> pd.DataFrame:
    """Score of ``task``'s fine-tuned model (``freeze=0``) with its top or bottom ``j`` layers
    reverted to pre-trained, for ``j = 0..L`` (the ``j = 0`` and ``j = L`` models are shared).

    Only the primary metric's evaluation split is scored, on at most ``eval_size`` examples.
    ``run``, ``pretrained``, ``data`` and ``tokenizer`` default to the profile's (tests pass
    small ones). Columns: ``task, seed, side, j, reverted, metric, score, loss``.
    """
    from bertdrift.families import extras_state, load_extras_state
    from bertdrift.finetune import (
        evaluate_task_model,
        get_finetuned,
        load_task_model,
        load_task_tokenizer,
    )
    from bertdrift.finetune.tasks import get_task
    from bertdrift.models import encoder_layers, load_encoder

    t = get_task(task)
    run = run if run is not None else get_finetuned(task, profile, freeze=0, seed=seed,
                                                    progress=progress)
    eval_profile = profile
    if eval_size is not None:
        r = profile.recipe(t.name)
        cap = eval_size if r.eval_size is None else min(eval_size, r.eval_size)
        eval_profile = get_profile(profile, **{f"{t.name}_eval_size": cap})
    if data is None:
        data = t.load(eval_profile)
    split = _eval_split(t)
    data.evals = {split: data.evals[split]}
    tokenizer = tokenizer if tokenizer is not None else load_task_tokenizer(run)
    model = load_task_model(run)
    pretrained = pretrained if pretrained is not None else load_encoder(profile.model)
    ft_state = [{k: v.clone() for k, v in layer.state_dict().items()}
                for layer in encoder_layers(model.encoder)]
    ft_extras = extras_state(model.encoder)  # layer 0's inputs, final norm (not BERT's)
    L = len(ft_state)
    settings = [("top", 0)] + [(s, j) for s in SIDES for j in range(1, L)] + [("top", L)]
    scores: dict[tuple[str, int], float] = {}
    for side, j in tqdm(settings, desc=f"revert {task}", disable=not progress):
        load_extras_state(model.encoder, ft_extras)
        revert_layers(model.encoder, pretrained, side, j, ft_state)
        metrics = evaluate_task_model(t, model, eval_profile, data=data, tokenizer=tokenizer)
        scores[(side, j)] = float(metrics[t.primary_metric])
    load_extras_state(model.encoder, ft_extras)
    revert_layers(model.encoder, pretrained, "top", 0, ft_state)
    base = scores[("top", 0)]
    rows = []
    for side in SIDES:
        for j in range(L + 1):
            score = scores[("top", j)] if j in (0, L) else scores[(side, j)]
            rows.append({"task": t.name, "seed": seed, "side": side, "j": j,
                         "reverted": ",".join(map(str, reverted_indices(side, j, L))),
                         "metric": t.primary_metric, "score": score, "loss": base - score})
    return pd.DataFrame(rows)


def layer_replacement(profile: Profile, tasks: Sequence[str] = TASKS, *,
                      seeds: Sequence[int] | None = None, eval_size: int | None = None,
                      progress: bool = True) -> pd.DataFrame:
    """``replacement_scores`` for every task and seed, cached under results/ablations/.

    ``eval_size`` defaults to ``profile.ablation_eval_size`` (``None``: the whole evaluation
    split of the recipe)."""
    from bertdrift.models import load_encoder

    eval_size = profile.ablation_eval_size if eval_size is None else eval_size

    seeds = list(seeds) if seeds is not None else ablation_seeds(profile)
    from bertdrift.finetune import run_key

    key = stable_hash(_profile_key(profile), eval_size, [
        run_key(t, profile, freeze=0, seed=s, cache_frozen=True) for t in tasks for s in seeds])
    path = results_dir(profile.cache_path, "ablations") / f"replacement_{key}"

    def compute() -> pd.DataFrame:
        pretrained = load_encoder(profile.model)
        return pd.concat([replacement_scores(t, profile, seed=s, eval_size=eval_size,
                                             progress=progress, pretrained=pretrained)
                          for t in tasks for s in seeds], ignore_index=True)

    return cached_frame(path, compute, {"model": profile.model, "profile": profile.name,
                                        "seeds": seeds, "eval_size": eval_size})


def revertible(frame: pd.DataFrame, tolerance: float = 1.0) -> pd.DataFrame:
    """Per task and side, the most layers that can be reverted (counting from that side, and
    every smaller count too) while losing less than ``tolerance`` points (mean over seeds)."""
    mean = frame.groupby(["task", "side", "j"])["loss"].mean()
    rows = []
    for (task, side), g in mean.groupby(level=["task", "side"], sort=False):
        by_j = g.droplevel(["task", "side"]).sort_index()
        most = 0
        for j, loss in by_j.items():
            if j == 0:
                continue
            if loss >= tolerance:
                break
            most = int(j)
        L = int(by_j.index.max())
        rows.append({"task": task, "side": side, "max_reverted": most,
                     "layers": ",".join(map(str, reverted_indices(side, most, L))) or "none",
                     "loss_at_max": float(by_j[most])})
    return pd.DataFrame(rows)


# -- the numbers chapter 5 quotes ----------------------------------------------------------------
def sweep_baselines(profile: Profile, tasks: Sequence[str] = TASKS) -> dict[str, float]:
    """Per task, the best trivial baseline on the sweep's evaluation set (primary metric)."""
    from bertdrift.finetune.baselines import best_baseline

    return {t: best_baseline(t, profile) for t in tasks}


def ablation_numbers(sweep: pd.DataFrame, replacement: pd.DataFrame, reverted: pd.DataFrame,
                     sweep_profile: Profile, k_star: int, layers: int,
                     baseline: dict[str, float]) -> dict[str, Any]:
    """Every number chapter 5's prose quotes, keyed by its glue name (``abl_…``)."""
    drop = freezing_drop(sweep, k_star)
    mean = sweep.groupby(["task", "k"])["score"].mean()
    rev = reverted.set_index(["task", "side"])
    out: dict[str, Any] = {"abl_layers": layers, "abl_k_star": k_star,
                           "abl_seeds": len(ablation_seeds(sweep_profile))}
    for t in dict.fromkeys(sweep["task"]):
        out[f"abl_k0_{t}"] = f"{mean[(t, 0)]:.1f}"
        out[f"abl_baseline_{t}"] = f"{baseline[t]:.1f}"
        out[f"abl_kstar_{t}"] = f"{mean[(t, k_star)]:.1f}"
        out[f"abl_kall_{t}"] = f"{mean[(t, layers)]:.1f}" if (t, layers) in mean.index else "—"
        out[f"abl_drop_{t}"] = f"{drop[t]:+.1f}"
        out[f"abl_train_{t}"] = sweep_profile.recipe(t).train_size
        for side in SIDES:
            out[f"abl_rev_{side}_{t}"] = int(rev.loc[(t, side), "max_reverted"])
        base = replacement[(replacement.task == t) & (replacement.j == 0)]["score"].mean()
        out[f"abl_base_{t}"] = f"{base:.1f}"
        out[f"abl_metric_{t}"] = str(sweep[sweep.task == t]["metric"].iloc[0])
    return out


def replacement_tolerance(k0: dict[str, list[float]], floor: float = 1.0) -> float:
    """Points a reverted model may lose and still count as 'not needing' the reverted layers:
    the largest seed-to-seed standard deviation of the ``k = 0`` scores (chapter 2's seeds),
    and at least ``floor``. A loss inside the seed noise is no evidence that a layer mattered."""
    import numpy as np

    sds = [float(np.std(v, ddof=1)) for v in k0.values() if len(v) > 1]
    return max([floor, *sds])


def describe_sweep(sweep_profile: Profile, layers: int, k_star: int,
                   tasks: Sequence[str] = TASKS) -> str:
    """What the freezing sweep trains: depths, seeds and per task (train size, epochs, eval
    size), in a few lines."""
    sizes = {t: (sweep_profile.recipe(t).train_size, sweep_profile.recipe(t).epochs,
                 sweep_profile.recipe(t).eval_size) for t in tasks}
    return (f"{sweep_profile.describe()}\n{layers} layers; analogous frozen depth k = {k_star}; "
            f"frozen depths swept: {depths(sweep_profile, layers)}; seeds: "
            f"{ablation_seeds(sweep_profile)}\n(train size, epochs, eval size): {sizes}")
