"""Chapter 7: what happens *during* fine-tuning, layer by layer along the training trajectory.

Every fine-tuning run of chapter 2 keeps snapshots at ``profile.snapshot_fractions`` of its
optimizer steps (``finetune.snapshots``). For each snapshot this module measures

* per-layer similarity to the pre-trained model (RSA and linear CKA) on one shared token set
  (``drift.shared_sentences``), through the cached ``drift.compare_encoders``;
* per-layer relative weight change (``models.layer_weight_change``);
* the task's development score on a capped evaluation subset;
* probe scores (part-of-speech and dependencies) through the cached probing stage;

and summarises the path with two numbers per layer or per snapshot:

* the **depth profile** of change (``depth_share``, ``depth_slope``), after the depth-profile
  view of fine-tuning of Hao et al. (2020) and arXiv 2604.17177;
* the **half-change step** of each layer (``half_change_step``).

Shapes: ``trajectory`` returns one row per (task, seed, step, layer); ``dev_trajectory`` one
row per (task, seed, step); ``probe_trajectory`` one row per (task, seed, step, probe, layer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bertdrift.config import CLAIM_MARGINS, CONTROL_TASKS, TASKS, Profile, get_profile
from bertdrift.errors import BertdriftError
from bertdrift.inference import Part, judge_part, seed_interval
from bertdrift.io import cached_frame, results_dir, stable_hash

CHAPTER = "dynamics"
PROBE_TASKS: tuple[str, ...] = CONTROL_TASKS
"""The probe tasks tracked along the trajectory: part-of-speech and dependencies."""
TOP_FRACTION = 1 / 3
"""``depth_share`` counts the change in the top third of the layers."""
NO_CHANGE = 1e-9
"""Mean change below this (floating-point noise: e.g. 1 - RSA of a model with itself, or a
snapshot taken while the warm-up learning rate was still 0) counts as no change at all."""
SATURATION = 0.9
"""``saturation_step`` finds where a curve reaches this fraction of its total change."""


class DynamicsError(BertdriftError):
    """A trajectory measure got inputs it cannot summarise."""


# -- the summaries: arrays in, numbers out ------------------------------------------------------
def _clean(change: Sequence[float]) -> np.ndarray:
    c = np.asarray(change, dtype=float)
    if c.ndim != 1 or c.size == 0:
        raise DynamicsError(f"expected one change value per layer, got shape {c.shape}")
    return np.clip(c, 0.0, None)


def depth_share(change: Sequence[float], top_fraction: float = TOP_FRACTION) -> float:
    """Share of the summed change over layers 1..L that falls in the top ``top_fraction`` of
    the layers (the top ``max(1, round(L * top_fraction))`` layers).

    ``change[i]`` is the change of layer ``i + 1`` (e.g. ``1 - RSA`` or ``1 - CKA`` against the
    pre-trained model; the embedding layer is left out); negative values count as 0. Equal
    change everywhere gives ``n_top / L`` (1/3 for six layers), change only at the top gives 1.
    NaN when nothing changed (mean change below ``NO_CHANGE``, e.g. at step 0).
    """
    c = _clean(change)
    n_top = max(1, round(len(c) * top_fraction))
    total = c.sum()
    return float(c[-n_top:].sum() / total) if c.mean() > NO_CHANGE else math.nan


def depth_slope(change: Sequence[float]) -> float:
    """Least-squares slope of the *relative* change ``change_l / mean(change)`` against the
    normalised depth ``l / L`` (layers ``l = 1..L``): scale-free, 0 for equal change at every
    layer, positive when change grows towards the top (change proportional to ``l`` gives
    ``2L / (L + 1)``). NaN when nothing changed."""
    c = _clean(change)
    if c.mean() <= NO_CHANGE:
        return math.nan
    if len(c) < 2:
        return math.nan
    x = np.arange(1, len(c) + 1) / len(c)
    y = c / c.mean()
    return float(np.polyfit(x, y, 1)[0])


def crossing_step(steps: Sequence[float], values: Sequence[float], target: float) -> float:
    """The first step at which ``values`` reach ``target``, interpolating linearly between the
    two snapshots that bracket the crossing; NaN if it is never reached."""
    s, v = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if s.shape != v.shape or s.size == 0:
        raise DynamicsError(f"steps and values differ in shape: {s.shape} vs {v.shape}")
    hit = np.flatnonzero(v >= target)
    if hit.size == 0:
        return math.nan
    i = int(hit[0])
    if i == 0 or v[i] == v[i - 1]:
        return float(s[i])
    return float(s[i - 1] + (target - v[i - 1]) / (v[i] - v[i - 1]) * (s[i] - s[i - 1]))


def half_change_step(steps: Sequence[float], change: Sequence[float]) -> float:
    """First step at which one layer's change reaches half of its change at the last snapshot
    (linear interpolation between snapshots); NaN if the layer did not change."""
    c = np.asarray(change, dtype=float)
    if c.size == 0 or not c[-1] > NO_CHANGE:
        return math.nan
    return crossing_step(steps, c, c[-1] / 2)


def saturation_step(steps: Sequence[float], values: Sequence[float],
                    level: float = SATURATION) -> float:
    """First step at which ``values`` cover ``level`` of their total change from the first to
    the last snapshot (interpolated; for a decreasing curve, of its total fall). NaN if the
    curve ends where it started."""
    v = np.asarray(values, dtype=float)
    gain = v[-1] - v[0]
    if v.size == 0 or gain == 0 or not np.isfinite(gain):
        return math.nan
    progress = (v - v[0]) / gain
    return crossing_step(steps, progress, level)


# -- tidy summaries of the measured trajectories ---------------------------------------------
def change_column(frame: pd.DataFrame, measure: str) -> pd.Series:
    """Change against the pre-trained model: ``1 - measure`` for similarities (``rsa``,
    ``cka``), the value itself for ``weight_change``."""
    return frame[measure] if measure == "weight_change" else 1.0 - frame[measure]


def profile_frame(traj: pd.DataFrame, measure: str = "rsa") -> pd.DataFrame:
    """Depth profile per (task, seed, step): ``share_top`` (``depth_share``) and ``slope``
    (``depth_slope``) of the change in ``measure`` over layers 1..L."""
    t = traj[traj["layer"] > 0].assign(change=lambda d: change_column(d, measure))
    rows = []
    for (task, seed, step), g in t.groupby(["task", "seed", "step"], sort=True):
        c = g.sort_values("layer")["change"].to_numpy()
        rows.append({"task": task, "seed": seed, "step": step,
                     "fraction": float(g["fraction"].iloc[0]), "measure": measure,
                     "share_top": depth_share(c), "slope": depth_slope(c),
                     "mean_change": float(np.clip(c, 0, None).mean())})
    return pd.DataFrame(rows)


def half_change_frame(traj: pd.DataFrame, measure: str = "rsa") -> pd.DataFrame:
    """Per (task, seed, layer 1..L): the half-change step and the same as a fraction of the
    run's optimizer steps."""
    t = traj[traj["layer"] > 0].assign(change=lambda d: change_column(d, measure))
    rows = []
    for (task, seed, layer), g in t.groupby(["task", "seed", "layer"], sort=True):
        g = g.sort_values("step")
        step = half_change_step(g["step"].to_numpy(), g["change"].to_numpy())
        total = float(g["total"].iloc[0])
        rows.append({"task": task, "seed": seed, "layer": int(layer), "measure": measure,
                     "half_step": step, "half_fraction": step / total})
    return pd.DataFrame(rows)


def top_layer_order(half: pd.DataFrame, task: str) -> str:
    """Does the top layer reach half of its final change first, last, or in between? Judged
    on the seed-mean half-change fraction of each layer."""
    all_h = half[half["task"] == task].groupby("layer")["half_fraction"].mean()
    if all_h.empty or not np.isfinite(all_h[all_h.index.max()]):
        return "undetermined (the top layer did not change)"
    h = all_h.dropna()
    top = h[all_h.index.max()]
    earlier, ties = int((h < top).sum()), int((h == top).sum()) - 1
    if earlier == 0 and ties == 0:
        return "first"
    if earlier == len(h) - 1:
        return "last"
    return f"{ordinal(earlier + 1)} of {len(h)}" + (" (tied)" if ties else "")


def ordinal(n: int) -> str:
    return f"{n}{'tsnrhtdd'[(n // 10 % 10 != 1) * (n % 10 < 4) * n % 10::4]}"


def sharpening_diffs(prof: pd.DataFrame, task: str) -> list[float]:
    """Per seed: ``share_top`` at the last snapshot minus at the first one after step 0."""
    p = prof[(prof["task"] == task) & (prof["step"] > 0)].dropna(subset=["share_top"])
    diffs = []
    for _, g in p.groupby("seed"):
        g = g.sort_values("step")
        if len(g) >= 2:
            diffs.append(float(g["share_top"].iloc[-1] - g["share_top"].iloc[0]))
    return diffs


def sharpening(prof: pd.DataFrame, task: str) -> dict[str, float | str]:
    """Change in ``share_top`` from the first snapshot after step 0 to the last, per seed,
    with the seed interval, judged by ``inference.judge_part`` (margin
    ``CLAIM_MARGINS["sharpening"]``): ``sharpens`` / ``flattens`` when the 95 % interval
    excludes 0, ``about the same`` when the 90 % interval lies inside the margin (or, with one
    seed, when the move is smaller than the margin), ``no clear trend`` otherwise, and
    ``... in the one seed run`` (descriptive) with a single seed."""
    diffs = sharpening_diffs(prof, task)
    margin = CLAIM_MARGINS["sharpening"].value
    m, lo, hi = seed_interval(diffs)
    if not np.isfinite(m):
        return {"diff": m, "low": lo, "high": hi, "verdict": "undetermined"}
    word = "sharpens" if m > 0 else "flattens"
    same = f"about the same (within ± {margin:g} of the share)"
    if len(diffs) == 1:
        verdict = (same if abs(m) < margin else word) + " in the one seed run (no interval)"
        return {"diff": m, "low": lo, "high": hi, "verdict": verdict}
    r = judge_part(Part(diffs, null=0.0, side="above", margin=margin))
    verdict = {"agree": "sharpens", "disagree": "flattens", "equivalent": same}.get(
        r.verdict, "no clear trend (the seed interval includes 0)")
    return {"diff": m, "low": lo, "high": hi, "verdict": verdict}


# -- the measurements: one cached frame per (task, seed) --------------------------------------
def _run(task: str, profile: Profile, seed: int, progress: bool) -> Any:
    from bertdrift.finetune import get_finetuned

    return get_finetuned(task, profile, seed=seed, progress=progress)


def _snapshot_name(task: str, seed: int, step: int) -> str:
    """Cache name of a snapshot; step 0 is the pre-trained model, shared by every run."""
    return "pretrained-step0" if step == 0 else f"{task}-s{seed}-step{step}"


def _run_key(run: Any, snaps: Sequence[Any]) -> list[Any]:
    return [str(run.path), [s.step for s in snaps], [s.total for s in snaps]]


def run_trajectory(task: str, profile: Profile, *, seed: int = 0,
                   sentences: Sequence[Sequence[str]] | None = None,
                   progress: bool = False) -> pd.DataFrame:
    """Per snapshot of one run and per layer 0..L: ``rsa`` and ``cka`` against the pre-trained
    model on the shared token set, and the relative ``weight_change``. Cached under
    ``results/dynamics``; each comparison also goes through ``drift.compare_encoders``'s cache.
    Columns: ``task, seed, step, total, fraction, layer, rsa, cka, weight_change``."""
    from bertdrift.config import resolve_device
    from bertdrift.drift import SHARED_MEASURES, compare_encoders, shared_compare, shared_sentences
    from bertdrift.features import load_cached
    from bertdrift.finetune import snapshots
    from bertdrift.models import layer_weight_change

    run = _run(task, profile, seed, progress)
    snaps = snapshots(run, profile)
    words = None if sentences is None else [list(s) for s in sentences]
    key = stable_hash(_run_key(run, snaps), profile.rsa_tokens, profile.pooling,
                      profile.feature_max_length, profile.model, profile.precision, words)
    target = results_dir(profile.cache_path, CHAPTER) / f"trajectory-{task}-s{seed}-{key}"

    def compute() -> pd.DataFrame:
        sents = sentences if sentences is not None else shared_sentences(profile)
        device = resolve_device(profile.device)
        rows = []
        for snap in snaps:
            if snap.step == snap.total and sentences is None:
                # the finished run: chapter 4's shared-word comparison, read from its cache
                sim = shared_compare(task, profile, seed=seed, sentences=sents)
            else:
                sim = compare_encoders(snap.encoder_path, sents, profile, chapter=CHAPTER,
                                       name=_snapshot_name(task, seed, snap.step), maps=False,
                                       intervals=(), measures=SHARED_MEASURES)
            # usually the two encoders compare_encoders just loaded (kept by load_cached); the
            # finished run's comparison may come from chapter 4's cache, so it is loaded here
            pre, _ = load_cached(profile.model, device)
            tuned, _ = load_cached(snap.encoder_path, device)
            change = layer_weight_change(pre, tuned)
            for layer in sim["layers"]:
                rows.append({"task": task, "seed": seed, "step": snap.step,
                             "total": snap.total, "fraction": snap.fraction, "layer": layer,
                             "rsa": sim["rsa"][layer], "cka": sim["cka"][layer],
                             "weight_change": change[layer] if layer < len(change)
                             else math.nan})
        return pd.DataFrame(rows)

    return cached_frame(target, compute, meta={"task": task, "seed": seed,
                                               "profile": profile.name})


def eval_split(task: str) -> str:
    """The evaluation split the task's primary metric is computed on (e.g. ``dev_matched``)."""
    from bertdrift.finetune.tasks import get_task

    return str(get_task(task).primary_metric.rsplit("_", 1)[0])


def run_dev_scores(task: str, profile: Profile, *, seed: int = 0, eval_size: int | None = 200,
                   progress: bool = False) -> pd.DataFrame:
    """The primary development score of every snapshot of one run, on at most ``eval_size``
    examples of the primary split (the same examples for every snapshot). Cached.
    Columns: ``task, seed, step, total, fraction, metric, score, eval_size``."""
    from bertdrift.finetune import evaluate_task_model, load_snapshot_model, snapshots
    from bertdrift.finetune.tasks import get_task
    from bertdrift.models import load_tokenizer

    t = get_task(task)
    run = _run(task, profile, seed, progress)
    snaps = snapshots(run, profile)
    recipe = profile.recipe(task)
    cap = recipe.eval_size if eval_size is None else (
        eval_size if recipe.eval_size is None else min(eval_size, recipe.eval_size))
    key = stable_hash(_run_key(run, snaps), cap, profile.precision)
    target = results_dir(profile.cache_path, CHAPTER) / f"dev-{task}-s{seed}-{key}"

    def compute() -> pd.DataFrame:
        eval_profile = get_profile(profile, **{f"{task}_eval_size": cap})
        data = t.load(eval_profile)
        split = eval_split(task)
        data.evals = {split: data.evals[split]}
        tokenizer = load_tokenizer(profile.model)
        rows = []
        for snap in snaps:
            model = load_snapshot_model(run, snap)
            scores = evaluate_task_model(t, model, eval_profile, data=data, tokenizer=tokenizer)
            rows.append({"task": task, "seed": seed, "step": snap.step, "total": snap.total,
                         "fraction": snap.fraction, "metric": t.primary_metric,
                         "score": float(scores[t.primary_metric]), "eval_size": cap})
        return pd.DataFrame(rows)

    return cached_frame(target, compute, meta={"task": task, "seed": seed})


def select_snapshots(snaps: Sequence[Any], fractions: Sequence[float] | None) -> list[Any]:
    """The snapshots nearest to each of ``fractions`` (each kept once, in order); ``None``
    keeps them all."""
    if fractions is None:
        return list(snaps)
    if not snaps:
        raise DynamicsError("the run kept no snapshots")
    keep = {min(range(len(snaps)), key=lambda i: abs(snaps[i].fraction - f)) for f in fractions}
    return [snaps[i] for i in sorted(keep)]


def run_probe_scores(task: str, profile: Profile, *, seed: int = 0,
                     probes: Sequence[str] = PROBE_TASKS,
                     fractions: Sequence[float] | None = None,
                     probe_seeds: Sequence[int] | None = None,
                     progress: bool = False) -> pd.DataFrame:
    """``probe_trajectory`` for one run."""
    return probe_trajectory(profile, (task,), (seed,), probes=probes, fractions=fractions,
                            probe_seeds=probe_seeds, progress=progress)


def _over(fn: Any, profile: Profile, tasks: Sequence[str], seeds: Sequence[int] | None,
          **kw: Any) -> pd.DataFrame:
    seeds = list(seeds) if seeds is not None else list(profile.seeds)
    return pd.concat([fn(t, profile, seed=s, **kw) for t in tasks for s in seeds],
                     ignore_index=True)


def trajectory(profile: Profile, tasks: Sequence[str] = TASKS,
               seeds: Sequence[int] | None = None, *, progress: bool = False) -> pd.DataFrame:
    """``run_trajectory`` for every task and fine-tuning seed (default ``profile.seeds``), on
    the one shared token set."""
    return _over(run_trajectory, profile, tasks, seeds, progress=progress)


def dev_trajectory(profile: Profile, tasks: Sequence[str] = TASKS,
                   seeds: Sequence[int] | None = None, *, eval_size: int | None = 200,
                   progress: bool = False) -> pd.DataFrame:
    """``run_dev_scores`` for every task and fine-tuning seed."""
    return _over(run_dev_scores, profile, tasks, seeds, eval_size=eval_size, progress=progress)


def probe_trajectory(profile: Profile, tasks: Sequence[str] = TASKS,
                     seeds: Sequence[int] | None = None, *,
                     probes: Sequence[str] = PROBE_TASKS,
                     fractions: Sequence[float] | None = None,
                     probe_seeds: Sequence[int] | None = None,
                     progress: bool = False) -> pd.DataFrame:
    """Probe scores of the snapshots of every run (those nearest to ``fractions``; default
    all) through the cached probing stage (``probing.run.run_probing``, one call, edge probes
    only: no structural or control probes), with ``probe_seeds`` (default the profile's) and
    ``profile.dynamics_probe_train_size`` training sentences (default chapter 3's).
    Columns: ``task, seed, step, total, fraction, probe, layer, score, metric`` (mean over the
    probe seeds)."""
    from bertdrift.finetune import snapshots
    from bertdrift.probing.run import run_probing

    seeds = list(seeds) if seeds is not None else list(profile.seeds)
    wanted: list[tuple[str, int, Any]] = []
    for task in tasks:
        for seed in seeds:
            run = _run(task, profile, seed, progress)
            wanted += [(task, seed, s) for s in select_snapshots(snapshots(run, profile),
                                                                 fractions)]
    models = {_snapshot_name(t, sd, s.step): s.encoder_path for t, sd, s in wanted}
    changes: dict[str, Any] = {}
    if probe_seeds is not None:
        changes["probe_seeds"] = tuple(probe_seeds)
    if profile.dynamics_probe_train_size is not None:
        changes["probe_train_size"] = profile.dynamics_probe_train_size
    probe_profile = get_profile(profile, **changes) if changes else profile
    res = run_probing(probe_profile, models=models, tasks=tuple(probes), structural=(),
                      control=(), progress=progress)
    edge = res.edge[pd.to_numeric(res.edge["layer"], errors="coerce").notna()]
    mean = (edge.assign(layer=edge["layer"].astype(int))
            .groupby(["model", "task", "layer", "metric"], as_index=False)["score"].mean())
    rows = []
    for task, seed, s in wanted:
        m = mean[mean["model"] == _snapshot_name(task, seed, s.step)]
        if m.empty:
            raise DynamicsError(f"the probing stage returned no scores for {task} seed {seed} "
                                f"step {s.step}")
        rows += [{"task": task, "seed": seed, "step": s.step, "total": s.total,
                  "fraction": s.fraction, "probe": r.task, "layer": int(r.layer),
                  "score": float(r.score), "metric": r.metric}
                 for r in m.itertuples(index=False)]
    return pd.DataFrame(rows)


# -- the chapter's numbers -------------------------------------------------------------------
def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"


def _with_interval(values: Sequence[float], digits: int = 3) -> str:
    m, lo, hi = seed_interval(values)
    if not np.isfinite(m):
        return "n/a"
    finite = [v for v in values if np.isfinite(v)]
    if len(finite) < 2:
        return _fmt(m, digits)
    return f"{_fmt(m, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def dynamics_numbers(traj: pd.DataFrame, dev: pd.DataFrame, profile: Profile,
                     measure: str = "rsa") -> dict[str, Any]:
    """The numbers chapter 7 quotes, ``{glue name: value}``: per task the snapshot steps, each
    layer's half-change step (seed mean, with a 95 % t-interval over seeds when there are
    several), the depth share at each snapshot, whether the top layer moves first or last,
    whether the profile sharpens, and the 90 %-saturation points of the dev score and of the
    mean representation change (as fractions of training)."""
    prof = profile_frame(traj, measure)
    half = half_change_frame(traj, measure)
    seeds = sorted(traj["seed"].unique().tolist())
    out: dict[str, Any] = {"dyn_measure": f"1 − {measure.upper()}",
                           "dyn_n_seeds": len(seeds),
                           "dyn_margin_sat": f"{CLAIM_MARGINS['saturation'].value:g}",
                           "dyn_margin_sharp": f"{CLAIM_MARGINS['sharpening'].value:g}",
                           "dyn_eval_size": ", ".join(
                               f"{t} {int(n)}" for t, n in
                               dev.groupby("task", sort=False)["eval_size"].max().items()),
                           "dyn_top_share_uniform": _fmt(depth_share([1.0] * max(
                               1, int(traj["layer"].max()))))}
    for task in dict.fromkeys(traj["task"]):
        t = traj[traj["task"] == task]
        steps = sorted(t["step"].unique().tolist())
        out[f"dyn_steps_{task}"] = ", ".join(map(str, steps))
        out[f"dyn_total_{task}"] = int(t["total"].max())
        h = half[half["task"] == task]
        out[f"dyn_half_{task}"] = "; ".join(
            f"layer {layer}: {_with_interval(g['half_step'].tolist(), 1)}"
            for layer, g in h.groupby("layer"))
        p = prof[prof["task"] == task]
        out[f"dyn_share_{task}"] = "; ".join(
            f"step {step}: {_with_interval(g['share_top'].tolist())}"
            for step, g in p.groupby("step") if step > 0)
        out[f"dyn_slope_{task}"] = "; ".join(
            f"step {step}: {_with_interval(g['slope'].tolist(), 2)}"
            for step, g in p.groupby("step") if step > 0)
        out[f"dyn_top_order_{task}"] = top_layer_order(half, task)
        sharp = sharpening(prof, task)
        out[f"dyn_sharpen_{task}"] = sharp["verdict"]
        lo, hi = float(sharp["low"]), float(sharp["high"])
        out[f"dyn_sharpen_diff_{task}"] = _fmt(float(sharp["diff"])) + (
            f" [{_fmt(lo)}, {_fmt(hi)}]" if np.isfinite(lo) and lo < hi else "")
        dev_sat, rep_sat = saturation_points(prof, dev, task, seeds)
        out[f"dyn_dev_sat_{task}"] = _with_interval(dev_sat)
        out[f"dyn_rep_sat_{task}"] = _with_interval(rep_sat)
        d = dev[dev["task"] == task]
        first, last = d[d["step"] == d["step"].min()], d[d["step"] == d["step"].max()]
        out[f"dyn_dev_start_{task}"] = _with_interval(first["score"].tolist())
        out[f"dyn_dev_end_{task}"] = _with_interval(last["score"].tolist())
        out[f"dyn_dev_vs_rep_{task}"] = saturation_order(dev_sat, rep_sat)
    return out


def saturation_order(dev_sat: Sequence[float], rep_sat: Sequence[float]) -> str:
    """Does the dev score reach 90 % of its end-of-run gain before or after the mean
    representation change reaches 90 % of its own? Judged by ``inference.judge_part`` on the
    per-seed differences ``dev - rep`` (the two lists are paired by seed; margin
    ``CLAIM_MARGINS["saturation"]``): ``before`` / ``after`` when their 95 % t-interval
    excludes 0, ``together`` when the 90 % interval lies inside the margin, ``inconclusive``
    otherwise, descriptive with a single seed."""
    diffs = [d - r for d, r in zip(dev_sat, rep_sat, strict=True)
             if np.isfinite(d) and np.isfinite(r)]
    if not diffs:
        return "n/a"
    m = float(np.mean(diffs))
    word = "before" if m < 0 else "after" if m > 0 else "together with"
    if len(diffs) == 1:
        return f"{word} (one seed, no interval)"
    margin = CLAIM_MARGINS["saturation"].value
    r = judge_part(Part(diffs, null=0.0, side="below", margin=margin))
    span = f"difference {m:+.2f} [{r.low:+.2f}, {r.high:+.2f}] of training"
    if r.verdict == "equivalent":
        return f"together (within ± {margin:g} of training; {span})"
    if r.verdict in ("agree", "disagree"):
        return f"{word} ({span})"
    return f"inconclusive ({span})"


def saturation_points(prof: pd.DataFrame, dev: pd.DataFrame, task: str,
                      seeds: Sequence[int]) -> tuple[list[float], list[float]]:
    """Per seed (NaN when missing, so the lists pair by seed): the fraction of training at
    which the dev score, and the mean representation change, reach 90 % of their end-of-run
    gain."""
    dev_sat, rep_sat = [], []
    p = prof[prof["task"] == task]
    for seed in seeds:
        d = dev[(dev["task"] == task) & (dev["seed"] == seed)].sort_values("step")
        r = p[p["seed"] == seed].sort_values("step")
        dev_sat.append(saturation_step(d["fraction"], d["score"]) if not d.empty else math.nan)
        rep_sat.append(saturation_step(r["fraction"], r["mean_change"]) if not r.empty
                       else math.nan)
    return dev_sat, rep_sat


def dynamics_record(traj: pd.DataFrame, dev: pd.DataFrame, measure: str = "rsa"
                    ) -> dict[str, Any]:
    """What chapter 7 records for the claims page's two rows beyond the paper: per task the
    per-seed saturation difference (dev minus representation, fraction of training; the
    question is whether it lies below 0) and the per-seed sharpening of the depth profile
    (above 0), as ``inference.Part`` records."""
    prof = profile_frame(traj, measure)
    seeds = sorted(traj["seed"].unique().tolist())
    sat, sharp = {}, {}
    for task in dict.fromkeys(traj["task"]):
        d, r = saturation_points(prof, dev, task, seeds)
        diffs = [a - b for a, b in zip(d, r, strict=True) if np.isfinite(a) and np.isfinite(b)]
        sat[str(task)] = {"values": diffs, "null": 0.0, "side": "below",
                          "margin": CLAIM_MARGINS["saturation"].value, "models": [str(task)]}
        sharp[str(task)] = {"values": sharpening_diffs(prof, str(task)), "null": 0.0,
                            "side": "above", "margin": CLAIM_MARGINS["sharpening"].value,
                            "models": [str(task)]}
    return {"saturation": {"parts": sat}, "sharpening": {"parts": sharp}}


def half_change_table(traj: pd.DataFrame, measure: str = "rsa") -> pd.DataFrame:
    """Layers × tasks: the seed-mean half-change step, as a fraction of training."""
    half = half_change_frame(traj, measure)
    return half.pivot_table(index="layer", columns="task", values="half_fraction",
                            aggfunc="mean", sort=False)
