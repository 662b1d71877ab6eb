"""The probing chapter's tables and the numbers its text quotes (pure functions of the tidy
tables that ``run_probing`` returns; no IO)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from bertdrift.config import EDGE_TASKS, MODELS
from bertdrift.probing.edge import MIX


def _ordered(models: Sequence[str]) -> list[str]:
    return [m for m in MODELS if m in models] + [m for m in models if m not in MODELS]


def summary_table(edge: pd.DataFrame, layer: str = MIX) -> pd.DataFrame:
    """Task × model: mean and std over probe seeds of the ``layer`` probe's score, and the mean
    change vs the pre-trained model (the paper's Table 1 layout), in points (×100)."""
    sub = edge[edge["layer"].astype(str) == layer]
    stats = sub.groupby(["task", "model"])["score"].agg(["mean", "std"]).mul(100)
    mean = stats["mean"].unstack("model")
    std = stats["std"].unstack("model")
    cols = _ordered(list(mean.columns))
    out = pd.concat({"mean": mean[cols], "std": std[cols]}, axis=1)
    if "pretrained" in mean.columns:
        delta = mean[cols].sub(mean["pretrained"], axis=0).drop(columns="pretrained")
        out = pd.concat([out, pd.concat({"change": delta}, axis=1)], axis=1)
    order = [t for t in EDGE_TASKS if t in out.index] + [t for t in out.index
                                                         if t not in EDGE_TASKS]
    return out.loc[order]


def expected_layers(mix: pd.DataFrame) -> pd.DataFrame:
    """Task × model: E[l] = sum_l l * s_l of the scalar-mix weights (Tenney et al. 2019b),
    averaged over seeds, with the seeds' std."""
    e = (mix.assign(lw=mix["layer"] * mix["weight"])
         .groupby(["task", "model", "seed"])["lw"].sum().groupby(["task", "model"])
         .agg(["mean", "std"]))
    return e.unstack("model")


def forgetting_verdict(edge: pd.DataFrame) -> dict[str, float]:
    """Numbers for 'no catastrophic forgetting': per fine-tuned model, the mean and the worst
    change of the scalar-mix score vs pre-trained across tasks (points)."""
    table = summary_table(edge)
    out: dict[str, float] = {}
    if "change" not in table.columns.get_level_values(0):
        return out
    change = table["change"]
    for model in change.columns:
        out[f"{model}_mean_change"] = float(change[model].mean())
        out[f"{model}_worst_change"] = float(change[model].min())
        out[f"{model}_worst_task"] = str(change[model].idxmin())  # type: ignore[assignment]
    return out


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
    """(metric, model) × layer: structural-probe scores, mean over probe seeds, in points."""
    return (structural.groupby(["metric", "model", "layer"])["value"].mean()
            .unstack("layer").mul(100))


def selectivity_table(control: pd.DataFrame, layer: str = MIX) -> pd.DataFrame:
    """(task, model): task score, control-task score and selectivity of the ``layer`` probe,
    mean over probe seeds, in points."""
    cols = ["task_score", "control_score", "selectivity"]
    sel = control.groupby(["task", "model", "layer"])[cols].mean().mul(100)
    return sel.xs(layer, level="layer")


def forgetting_record(table: pd.DataFrame) -> dict[str, Any]:
    """What chapter 3 records for the claims page: per fine-tuned model and task, the change of
    the scalar-mix score vs pre-trained (points)."""
    change = table["change"]
    return {"change": {m: {t: float(v) for t, v in change[m].items()} for m in change.columns}}


def chapter_numbers(table: pd.DataFrame, expected: pd.DataFrame, structural: pd.DataFrame,
                    control: pd.DataFrame, n_probe_seeds: int) -> dict[str, Any]:
    """Every number chapter 3's prose quotes, keyed by its glue name (``probe_…``)."""
    change = table["change"]
    out: dict[str, Any] = {"probe_n_seeds": n_probe_seeds, "probe_n_tasks": int(table.shape[0])}
    for m in change.columns:
        out[f"probe_mean_{m}"] = f"{change[m].mean():+.1f}"
        out[f"probe_worst_{m}"] = f"{change[m].min():+.1f}"
        out[f"probe_worst_task_{m}"] = str(change[m].idxmin())
        out[f"probe_best_{m}"] = f"{change[m].max():+.1f}"
        out[f"probe_best_task_{m}"] = str(change[m].idxmax())
    out["probe_seed_sd"] = f"{table['std'].stack().mean():.1f}"
    el = expected["mean"]
    out["probe_el_pos"] = f"{el.loc['pos', 'pretrained']:.2f}"
    out["probe_el_coref"] = f"{el.loc['coref', 'pretrained']:.2f}"
    out["probe_el_range"] = f"{el['pretrained'].min():.2f}–{el['pretrained'].max():.2f}"
    best = structural.groupby(["metric", "model", "layer"])["value"].mean()
    for metric in ("uuas", "root_acc"):
        for m in ("pretrained", "parsing"):
            out[f"probe_{metric}_{m}"] = f"{100 * best.loc[metric, m].max():.1f}"
    sel_mix = selectivity_table(control)["selectivity"]
    for t in ("pos", "deps"):
        out[f"probe_sel_{t}"] = f"{sel_mix.loc[t, 'pretrained']:.1f}"
        others = sel_mix.loc[t].drop("pretrained")
        out[f"probe_sel_{t}_range"] = f"{others.min():.1f} to {others.max():.1f}"
    return out
