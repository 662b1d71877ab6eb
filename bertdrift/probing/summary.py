"""The probing chapter's tables and the numbers its text quotes (pure functions of the tidy
tables that ``run_probing`` returns; no IO). Tables show one column (or row) per fine-tuning
*task*: a fine-tuned task's numbers are its seed mean (``names.pooled``), with the spread over
its fine-tuning and probe seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bertdrift.config import CLAIM_MARGINS, EDGE_TASKS, MODELS, RANDOM_MODEL, TASKS, Profile
from bertdrift.inference import paired_bootstrap
from bertdrift.probing.edge import MIX, TENNEY_HIDDEN
from bertdrift.probing.forgetting import floor_margin, readings, seed_mean
from bertdrift.probing.names import finetuned_seeds, pooled, split_name
from bertdrift.probing.run import ProbingResults
from bertdrift.probing.structural import structural_score


def _ordered(models: Sequence[str]) -> list[str]:
    return [m for m in MODELS if m in models] + [m for m in models if m not in MODELS]


def summary_table(edge: pd.DataFrame, layer: str = MIX) -> pd.DataFrame:
    """Task × model: mean and std of the ``layer`` probe's score over probe seeds (and, for a
    fine-tuned task, over its fine-tuning seeds too), and the mean change vs the pre-trained
    model (the paper's Table 1 layout), in points (×100)."""
    edge = pooled(edge)
    sub = edge[edge["layer"].astype(str) == layer]
    stats = sub.groupby(["task", "model"])["score"].agg(["mean", "std"]).mul(100)
    mean = stats["mean"].unstack("model")
    std = stats["std"].unstack("model")
    cols = _ordered(list(mean.columns))
    out = pd.concat({"mean": mean[cols], "std": std[cols]}, axis=1)
    if "pretrained" in mean.columns:
        delta = mean[cols].sub(mean["pretrained"], axis=0).drop(
            columns=[c for c in ("pretrained", RANDOM_MODEL) if c in cols])
        out = pd.concat([out, pd.concat({"change": delta}, axis=1)], axis=1)
    order = [t for t in EDGE_TASKS if t in out.index] + [t for t in out.index
                                                         if t not in EDGE_TASKS]
    return out.loc[order]


def expected_layers(mix: pd.DataFrame) -> pd.DataFrame:
    """Task × model: the scalar mix's centre of gravity sum_l l * s_l of its softmax weights,
    averaged over seeds (probe seeds; fine-tuning seeds too for a fine-tuned task), with the
    seeds' std. (Not Tenney et al.'s (2019b) *expected layer*, which weighs layers by the score
    gains of cumulative probes; with uniform weights the centre of gravity is L/2, see
    ``uniform_centre``; so is it for weights split between layers 0 and L: read it beside
    ``mix_entropy``.)"""
    mix = pooled(mix)
    e = (mix.assign(lw=mix["layer"] * mix["weight"])
         .groupby(["task", "model", "seed"])["lw"].sum().groupby(["task", "model"])
         .agg(["mean", "std"]))
    return e.unstack("model")


def uniform_centre(mix: pd.DataFrame) -> float:
    """The centre of gravity of uniform scalar-mix weights over layers 0..L: L / 2."""
    return float(mix["layer"].max()) / 2


def weights_entropy(weights: Sequence[float]) -> float:
    """The normalised entropy ``-sum_l s_l log s_l / log(L + 1)`` of scalar-mix weights
    ``s_0..s_L`` (renormalised to sum to 1): 1 for uniform weights, 0 for all weight on one
    layer. Two equal peaks give ``log 2 / log(L + 1)`` wherever they sit, so a mix centred at
    L/2 with low entropy prefers depths rather than none."""
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    if len(w) < 2:
        return 0.0
    nz = w[w > 0]
    return float(-(nz * np.log(nz)).sum() / math.log(len(w)))


def mix_weights(mix: pd.DataFrame, model: str = "pretrained") -> pd.DataFrame:
    """Task × layer: ``model``'s scalar-mix weights, mean over seeds (fine-tuned tasks pooled
    over their fine-tuning seeds), tasks in the book's order."""
    sub = pooled(mix)
    sub = sub[sub["model"] == model]
    out = sub.groupby(["task", "layer"])["weight"].mean().unstack("layer")
    return out.loc[[t for t in EDGE_TASKS if t in out.index]
                   + [t for t in out.index if t not in EDGE_TASKS]]


def mix_entropy(mix: pd.DataFrame) -> pd.DataFrame:
    """Task × model: ``weights_entropy`` of each scalar mix, mean and std over seeds (probe
    seeds; fine-tuning seeds too for a fine-tuned task), columns like ``expected_layers``."""
    mix = pooled(mix)
    e = (mix.sort_values("layer").groupby(["task", "model", "seed"])["weight"]
         .agg(weights_entropy).groupby(["task", "model"]).agg(["mean", "std"]))
    return e.unstack("model")


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """``summary_table`` as strings: 'mean ± std' per model and signed changes vs pre-trained."""
    out = pd.DataFrame(index=table.index)
    for model in table["mean"].columns:
        out[model] = [f"{m:.1f} ± {s:.1f}" if pd.notna(s) else f"{m:.1f}"
                      for m, s in zip(table["mean"][model], table["std"][model], strict=True)]
    if "change" in table.columns.get_level_values(0):
        for model in table["change"].columns:
            out[f"Δ {model}"] = [f"{v:+.1f}" for v in table["change"][model]]
    return out


def structural_table(structural: pd.DataFrame) -> pd.DataFrame:
    """(metric, model) × layer: structural-probe scores, mean over probe seeds (and fine-tuning
    seeds), in points."""
    return (pooled(structural).groupby(["metric", "model", "layer"])["value"].mean()
            .unstack("layer").mul(100))


def selectivity_table(control: pd.DataFrame, layer: str = MIX) -> pd.DataFrame:
    """(task, model): task score, control-task score and selectivity of the ``layer`` probe,
    mean over probe seeds (and fine-tuning seeds), in points."""
    cols = ["task_score", "control_score", "selectivity"]
    sel = pooled(control).groupby(["task", "model", "layer"])[cols].mean().mul(100)
    return sel.xs(layer, level="layer")


def verdict_table(res: ProbingResults, n_boot: int = 1000) -> pd.DataFrame:
    """One row per (task, metric), each probe read at its scalar mix (structural probes at the
    pre-trained model's best layer; ``forgetting.readings``): the random encoder's and the
    pre-trained model's scores (95 % paired percentile intervals over evaluation sentences,
    probe seeds averaged inside each replicate); each fine-tuned task's score and change from
    the pre-trained model, averaged over its fine-tuning seeds (``forgetting.SeedMean``: the
    sentence-bootstrap error combined with the spread over fine-tuning seeds, Welch–
    Satterthwaite); the best trivial baseline; the pre-trained margin over the best floor
    (trivial baselines and random encoder; paired interval) and the ``informative`` flag
    (margin interval above 0; ``stats.informative``). Points (×100). Any other model given to
    ``run_probing`` gets its own column."""
    rows = []
    for r in readings(res):
        if not r.main:
            continue
        row: dict[str, object] = {"task": r.label, "metric": r.metric}
        for m, arr in r.models.items():
            if split_name(m)[1] is None:  # the floor, the pre-trained model, any other
                row[m], row[f"{m}_lo"], row[f"{m}_hi"] = paired_bootstrap(
                    r.score, arr, n_boot=n_boot, seed=0)
        pre = r.models.get("pretrained")
        for task in TASKS:
            names = finetuned_seeds(list(r.models), task)
            if not names:
                continue
            arrays = [r.models[n] for n in names.values()]
            row[task], row[f"{task}_lo"], row[f"{task}_hi"] = seed_mean(
                r.score, arrays, n_boot=n_boot).interval()
            row[f"{task}_seeds"] = len(arrays)
            if pre is not None:
                ch = seed_mean(r.score, arrays, pre, n_boot=n_boot).interval()
                row[f"change_{task}"], row[f"change_{task}_lo"], row[f"change_{task}_hi"] = ch
        trivial = {b: 100 * float(r.score(np.asarray(a, np.float64), np.ones((1, len(a))))[0])
                   for b, a in r.floors.items()}
        best_trivial = max(trivial, key=trivial.__getitem__) if trivial else None
        row["baseline"] = trivial[best_trivial] if best_trivial else float("nan")
        row["baseline_name"] = best_trivial or "—"
        fm = floor_margin(r, n_boot=n_boot)
        if fm is not None:
            row["floor"], _, margin = fm
            row["margin"], row["margin_lo"], row["margin_hi"] = margin
            row["informative"] = margin[1] > 0
        rows.append(row)
    return pd.DataFrame(rows)


def _ci(t: pd.DataFrame, col: str, signed: bool = False) -> list[str]:
    fmt = "{:+.1f} [{:+.1f}, {:+.1f}]" if signed else "{:.1f} [{:.1f}, {:.1f}]"
    if col not in t:
        return ["—"] * len(t)
    return [fmt.format(v, lo, hi) if pd.notna(v) else "—"
            for v, lo, hi in zip(t[col], t[f"{col}_lo"], t[f"{col}_hi"], strict=True)]


def format_verdict_table(t: pd.DataFrame) -> pd.DataFrame:
    """``verdict_table`` as strings: 'score [low, high]' cells, the floor each margin is taken
    over, 'informative' or 'at floor', and the changes after fine-tuning (seed means)."""
    out = pd.DataFrame({"task": t["task"], "metric": t["metric"]})
    out["random"] = _ci(t, RANDOM_MODEL)
    out["baseline"] = [f"{v:.1f} ({n})" for v, n in zip(t["baseline"], t["baseline_name"],
                                                        strict=True)]
    out["pre-trained"] = _ci(t, "pretrained")
    out["margin"] = [f"{s} over {f}" for s, f in zip(_ci(t, "margin", True), t["floor"],
                                                     strict=True)]
    out["status"] = ["informative" if v else "at floor" for v in t["informative"]]
    for m in TASKS:
        if f"change_{m}" in t:
            out[f"Δ {m}"] = _ci(t, f"change_{m}", True)
    return out.set_index(["task", "metric"])


def budget_table(budget: pd.DataFrame) -> pd.DataFrame:
    """Per task: training, development and evaluation sentences and targets, and the epochs
    the probes actually ran (min–max over models; early stopping on the development split)."""
    cols = [c for c in ("train_sentences", "train_targets", "dev_sentences", "eval_sentences",
                        "eval_targets") if c in budget]
    g = budget.groupby("task", sort=False)
    out = g[cols].max()
    out["epochs run"] = [f"{lo}–{hi}" if lo != hi else f"{lo}" for lo, hi in
                         zip(g["epochs_run"].min(), g["epochs_run"].max(), strict=True)]
    return out.fillna(0).astype({c: int for c in cols})


def chapter_numbers(vt: pd.DataFrame, expected: pd.DataFrame, uniform: float,
                    control: pd.DataFrame, n_probe_seeds: int,
                    entropy: pd.DataFrame | None = None) -> dict[str, Any]:
    """Every number chapter 3's prose quotes about its results, keyed by its glue name
    (``probe_…``); ``entropy`` is ``mix_entropy``'s table (``probe_entropy_range``, and
    ``probe_entropy_bimodal``: the entropy of two equal peaks over the same layers)."""
    main = vt[vt["metric"] != "tenney_f1"]
    info = main[main["informative"].astype(bool)]
    floor = main[~main["informative"].astype(bool)]
    out: dict[str, Any] = {"probe_n_seeds": n_probe_seeds, "probe_n_rows": len(main),
                           "probe_n_informative": len(info), "probe_n_floor": len(floor)}
    out["probe_informative_list"] = "; ".join(
        f"{r.task} {r.margin:+.1f} [{r.margin_lo:+.1f}, {r.margin_hi:+.1f}] over {r.floor}"
        for r in info.itertuples()) or "none"
    out["probe_floor_list"] = ", ".join(str(t) for t in floor["task"]) or "none"
    el = expected["mean"]
    out["probe_el_range"] = f"{el['pretrained'].min():.2f}–{el['pretrained'].max():.2f}"
    out["probe_el_uniform"] = f"{uniform:.2f}"
    if entropy is not None:
        h = entropy["mean"]["pretrained"]
        out["probe_entropy_range"] = f"{h.min():.2f}–{h.max():.2f}"
        n_layers = int(round(2 * uniform)) + 1
        two = np.zeros(n_layers)
        two[[0, -1]] = 0.5
        out["probe_entropy_bimodal"] = f"{weights_entropy(two):.2f}"
    sel_mix = selectivity_table(control)["selectivity"]
    for t in ("pos", "deps"):
        if t in sel_mix.index.get_level_values(0):
            out[f"probe_sel_{t}"] = f"{sel_mix.loc[t, 'pretrained']:.1f}"
    return out


def structural_baselines(tree_baselines: dict[str, Any]) -> pd.DataFrame:
    """The structural probes' baselines (adjacent-word chain, left-to-right order) in each of
    the probes' metrics on the evaluation sentences, in points."""
    from bertdrift.probing.structural import STRUCTURAL_METRICS

    rows = [{"probe": kind, "metric": m, "baseline": 100 * float(structural_score(m, st)[0])}
            for kind, st in tree_baselines.items() for m in STRUCTURAL_METRICS[kind]]
    return pd.DataFrame(rows).set_index(["probe", "metric"])


def method_numbers(profile: Profile) -> dict[str, Any]:
    """The settings chapter 3's method quotes: ``probe_hidden`` (this run's probe width) and
    ``probe_hidden_tenney`` (Tenney et al.'s), ``probe_n_ft_seeds`` (fine-tuning seeds probed per
    task), ``probe_forgetting_fraction`` (``config.CLAIM_MARGINS["forgetting"]``: the share of
    the pre-trained margin whose loss counts as forgetting) and its reason."""
    margin = CLAIM_MARGINS["forgetting"]
    return {"probe_hidden": profile.probe_hidden, "probe_hidden_tenney": TENNEY_HIDDEN,
            "probe_n_ft_seeds": len(profile.seeds),
            "probe_forgetting_fraction": f"{margin.value:g}",
            "probe_forgetting_reason": margin.reason}
