"""Tables for the fine-tuning chapter: every task x seed run, learning curves, and our scores
beside trivial baselines and published figures."""

from __future__ import annotations

from typing import Any

from bertdrift.config import TASKS
from bertdrift.finetune.baselines import PUBLISHED, trivial_baselines
from bertdrift.finetune.runs import FinetuneResult, get_finetuned
from bertdrift.finetune.tasks import get_task

Runs = dict[tuple[str, int], FinetuneResult]


def finetune_all(profile: Any, tasks: tuple[str, ...] = TASKS, *, progress: bool = True) -> Runs:
    """``get_finetuned`` for every task and every seed of the profile (cached)."""
    return {(t, s): get_finetuned(t, profile, seed=s, progress=progress)
            for t in tasks for s in profile.seeds}


def history_frame(runs: Runs):
    """Tidy learning curves: ``task, seed, epoch, train_loss, metric, score, train_seconds``."""
    import pandas as pd

    rows = []
    for (task, seed), r in runs.items():
        metric = get_task(task).primary_metric
        for h in r.history:
            rows.append({"task": task, "seed": seed, "epoch": h["epoch"],
                         "train_loss": h["train_loss"], "metric": metric, "score": h[metric],
                         "train_seconds": h["train_seconds"],
                         "train_samples_per_s": h["train_samples_per_s"]})
    return pd.DataFrame(rows)


def score_table(runs: Runs, profile: Any, baselines: dict[str, dict] | None = None):
    """One row per (task, system, metric): ours (mean and spread over seeds), trivial baselines
    computed on the same evaluation sets, and published BERT-base figures (labelled)."""
    import pandas as pd

    rows = []
    tasks = list(dict.fromkeys(t for t, _ in runs))
    for task in tasks:
        scores = [r.metrics for (t, _), r in runs.items() if t == task]
        for metric in scores[0]:
            if metric.endswith("truncated_words"):
                continue
            values = pd.Series([s[metric] for s in scores])
            rows.append({"task": task, "system": f"ours ({len(values)} seed(s))",
                         "metric": metric, "score": values.mean(),
                         "seed_sd": values.std() if len(values) > 1 else None,
                         "source": "this run"})
        base = (baselines or {}).get(task) or trivial_baselines(task, profile)
        for name, values in base.items():
            for metric, value in values.items():
                rows.append({"task": task, "system": f"baseline: {name}", "metric": metric,
                             "score": value, "seed_sd": None, "source": "this run"})
        if task in PUBLISHED:
            p = PUBLISHED[task]
            rows.append({"task": task, "system": "published BERT-base", "metric": p["metric"],
                         "score": p["value"], "seed_sd": None, "source": p["source"]})
    return pd.DataFrame(rows)


def summary_table(table):
    """Per task and metric: ours, the best trivial baseline (and which), the published figure."""
    import pandas as pd

    rows = []
    for (task, metric), g in table.groupby(["task", "metric"], sort=False):
        ours = g[g.system.str.startswith("ours")]
        base = g[g.system.str.startswith("baseline")]
        pub = g[g.system.str.startswith("published")]
        best = base.loc[base.score.idxmax()] if len(base) else None
        rows.append({
            "task": task, "metric": metric,
            "ours": float(ours.score.iloc[0]) if len(ours) else None,
            "best trivial baseline": float(best.score) if best is not None else None,
            "baseline": best.system.removeprefix("baseline: ") if best is not None else "",
            "published BERT-base (not ours)": float(pub.score.iloc[0]) if len(pub) else None,
        })
    return pd.DataFrame(rows).set_index(["task", "metric"])
