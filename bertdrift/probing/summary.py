"""The probing chapter's tables and the numbers its text quotes (pure functions of the tidy
tables that ``run_probing`` returns; no IO)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from bertdrift.config import EDGE_TASKS, MODELS, RANDOM_MODEL, TASKS
from bertdrift.probing.edge import MIX
from bertdrift.probing.run import ProbingResults
from bertdrift.probing.stats import counts_score, informative, paired_interval
from bertdrift.probing.structural import structural_score

PRIMARY_STRUCTURAL = {"distance": "uuas", "depth": "nspr"}
"""The structural probes' metric in the verdict table (Hewitt & Manning report UUAS and DSpr
for distance, root accuracy and NSpr for depth; all four are in ``structural_table``)."""


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
        delta = mean[cols].sub(mean["pretrained"], axis=0).drop(
            columns=[c for c in ("pretrained", RANDOM_MODEL) if c in cols])
        out = pd.concat([out, pd.concat({"change": delta}, axis=1)], axis=1)
    order = [t for t in EDGE_TASKS if t in out.index] + [t for t in out.index
                                                         if t not in EDGE_TASKS]
    return out.loc[order]


def expected_layers(mix: pd.DataFrame) -> pd.DataFrame:
    """Task × model: the scalar mix's centre of gravity sum_l l * s_l of its softmax weights,
    averaged over seeds, with the seeds' std. (Not Tenney et al.'s (2019b) *expected layer*,
    which weighs layers by the score gains of cumulative probes; with uniform weights the centre
    of gravity is L/2, see ``uniform_centre``.)"""
    e = (mix.assign(lw=mix["layer"] * mix["weight"])
         .groupby(["task", "model", "seed"])["lw"].sum().groupby(["task", "model"])
         .agg(["mean", "std"]))
    return e.unstack("model")


def uniform_centre(mix: pd.DataFrame) -> float:
    """The centre of gravity of uniform scalar-mix weights over layers 0..L: L / 2."""
    return float(mix["layer"].max()) / 2


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


def _tree_fn(metric: str):
    return lambda arr, w: structural_score(metric, arr, w)


def _iv(fn, a, b=None, n_boot: int = 1000) -> tuple[float, float, float]:
    return paired_interval(fn, a, b, n_boot=n_boot, seed=0)


def _units(res: ProbingResults) -> list[tuple[str, str, object, dict, dict]]:
    """(row name, metric, score fn, {model: per-sentence arrays}, {baseline: arrays}) for every
    edge task (scalar-mix probe, task metric and Tenney's micro-F1) and every structural probe
    (its ``PRIMARY_STRUCTURAL`` metric at the pre-trained model's best layer)."""
    out = []
    tasks = sorted({t for _, t in res.counts}, key=lambda t: (
        EDGE_TASKS.index(t) if t in EDGE_TASKS else 99, t))
    for task in tasks:
        models = {m: c for (m, t), c in res.counts.items() if t == task}
        base = res.baselines.get(task, {})
        metric = res.metrics[task]
        out.append((task, metric, counts_score(metric),
                    {m: c["task"] for m, c in models.items()},
                    {b: c["task"] for b, c in base.items()}))
        out.append((task, "tenney_f1", counts_score("micro_f1"),
                    {m: c["tenney"] for m, c in models.items()},
                    {b: c["tenney"] for b, c in base.items()}))
    for kind in sorted({k for _, k in res.tree_stats}):
        metric = PRIMARY_STRUCTURAL[kind]
        sub = res.structural[(res.structural.probe == kind) & (res.structural.metric == metric)
                             & (res.structural.model == "pretrained")]
        layer = int(sub.groupby("layer")["value"].mean().idxmax()) if len(sub) else 0
        models = {m: st[layer] for (m, k), st in res.tree_stats.items() if k == kind}
        base = {"linear order": res.tree_baselines[kind]} if kind in res.tree_baselines else {}
        out.append((f"{kind} (layer {layer})", metric, _tree_fn(metric), models, base))
    return out


def verdict_table(res: ProbingResults, n_boot: int = 1000) -> pd.DataFrame:
    """One row per (task, metric): every model's score with its 95 % interval (bootstrap over
    evaluation sentences × probe seeds), the best trivial baseline and the random encoder on the
    same sentences, the pre-trained model's margin over the best of them (paired interval), the
    ``informative`` flag (margin interval above 0; ``stats.informative``) and each fine-tuned
    model's change from the pre-trained one (paired interval). Points (×100)."""
    rows = []
    for name, metric, fn, models, base in _units(res):
        row: dict[str, object] = {"task": name, "metric": metric}
        for m, arr in models.items():
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = _iv(fn, arr, n_boot=n_boot)
        trivial = {b: _iv(fn, a, n_boot=n_boot)[0] for b, a in base.items()}
        best_trivial = max(trivial, key=trivial.__getitem__) if trivial else None
        row["baseline"] = trivial[best_trivial] if best_trivial else float("nan")
        row["baseline_name"] = best_trivial or "—"
        refs = {b: (trivial[b], base[b]) for b in ([best_trivial] if best_trivial else [])}
        if RANDOM_MODEL in models:
            refs[RANDOM_MODEL] = (float(row[RANDOM_MODEL]), models[RANDOM_MODEL])  # type: ignore[arg-type]
        if "pretrained" in models and refs:
            ref = max(refs, key=lambda k: refs[k][0])
            margin = _iv(fn, models["pretrained"], refs[ref][1], n_boot=n_boot)
            row["floor"] = ref
            row["margin"], row["margin_lo"], row["margin_hi"] = margin
            row["informative"] = informative(margin)
            for m in models:
                if m in TASKS:
                    ch = _iv(fn, models[m], models["pretrained"], n_boot=n_boot)
                    row[f"change_{m}"], row[f"change_{m}_lo"], row[f"change_{m}_hi"] = ch
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
    over, 'informative' or 'at floor', and the changes after fine-tuning."""
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


def forgetting_record(vt: pd.DataFrame) -> dict[str, Any]:
    """What chapter 3 records for the claims page: per task row (edge tasks in their task
    metric, structural probes in their primary metric) the pre-trained margin over its best
    baseline and each fine-tuned model's change, as [point, low, high] in points."""
    main = vt[vt["metric"] != "tenney_f1"]
    tasks = {}
    for _, r in main.iterrows():
        change = {m: [float(r[f"change_{m}"]), float(r[f"change_{m}_lo"]),
                      float(r[f"change_{m}_hi"])] for m in TASKS if f"change_{m}" in r}
        tasks[str(r["task"])] = {"metric": str(r["metric"]), "floor": str(r["floor"]),
                                 "margin": [float(r["margin"]), float(r["margin_lo"]),
                                            float(r["margin_hi"])], "change": change}
    return {"tasks": tasks}


def chapter_numbers(vt: pd.DataFrame, expected: pd.DataFrame, uniform: float,
                    control: pd.DataFrame, n_probe_seeds: int) -> dict[str, Any]:
    """Every number chapter 3's prose quotes, keyed by its glue name (``probe_…``)."""
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
