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
                         "train_loss": h["train_loss"], "metric": metric, "score": h.get(metric, float("nan")),
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


# -- the numbers chapter 2's text quotes -------------------------------------------------------
HEADLINE_METRICS = {"mnli": ("dev_matched_accuracy", "dev_mismatched_accuracy"),
                    "squad": ("dev_f1", "dev_exact_match"),
                    "parsing": ("dev_las", "dev_uas")}
"""Per task: the primary metric, then the second one the chapter quotes."""
_SHORT = {"mnli": "MNLI", "squad": "SQuAD", "parsing": "parsing"}


def our_score(table, task: str, metric: str) -> float:
    """Our mean score (over seeds) on ``metric`` in a ``score_table``, rounded to 0.1."""
    rows = table[(table.task == task) & (table.metric == metric)
                 & table.system.str.startswith("ours")]
    return round(float(rows.score.iloc[0]), 1)


def best_baseline_score(table, task: str, metric: str) -> float:
    """The best trivial baseline's score on ``metric`` in a ``score_table``, rounded to 0.1."""
    rows = table[(table.task == task) & (table.metric == metric)
                 & table.system.str.startswith("baseline")]
    return round(float(rows.score.max()), 1)


def competence_record(runs: Runs, table) -> dict[str, Any]:
    """What chapter 2 records for the claims page's competence gate: per task the primary
    metric, every seed's score, and the best trivial baseline on the same evaluation set."""
    out: dict[str, Any] = {}
    for task in dict.fromkeys(t for t, _ in runs):
        metric = HEADLINE_METRICS[task][0]
        rows = table[(table.task == task) & (table.metric == metric)
                     & table.system.str.startswith("baseline")]
        best = rows.loc[rows.score.idxmax()] if len(rows) else None
        out[task] = {"metric": metric,
                     "scores": [float(r.metrics[metric]) for (t, _), r in sorted(runs.items())
                                if t == task],
                     "baseline": float(best.score) if best is not None else float("nan"),
                     "baseline_name": str(best.system).removeprefix("baseline: ")
                     if best is not None else "—"}
    return {"competence": out}


def baseline_verdict(competence: dict[str, Any]) -> str:
    """One sentence per task on whether *every seed* beats its best trivial baseline and
    whether the seed mean reaches the competence floor (``config.COMPETENCE_FLOORS``) that the
    claims page requires before it judges a claim resting on the model."""
    import numpy as np

    from bertdrift.config import COMPETENCE_FLOORS

    parts = []
    for task, c in competence.items():
        scores = np.asarray(c["scores"], dtype=float)
        above = int((scores > c["baseline"]).sum())
        floor = COMPETENCE_FLOORS[task].value
        learned = above == scores.size and scores.mean() >= floor
        parts.append(f"{_SHORT[task]}: {above} of {scores.size} seeds above the best trivial "
                     f"baseline ({c['baseline']:.1f}), seed mean {scores.mean():.1f} against a "
                     f"floor of {floor:g}: {'learned' if learned else 'not learned'}")
    return "; ".join(parts)


def headline_numbers(table, history, profile: Any, runs: Runs | None = None) -> dict[str, Any]:
    """Every number chapter 2's prose quotes, keyed by the name it is glued under (``ft_…``)."""
    from bertdrift.config import model_label

    out: dict[str, Any] = {"ft_model": model_label(profile.model), "ft_profile": profile.name}
    names = {"mnli": ("mnli_m", "mnli_mm"), "squad": ("squad_f1", "squad_em"),
             "parsing": ("ud_las", "ud_uas")}
    for task, (first, second) in names.items():
        if task not in set(table.task):
            continue
        primary, other = HEADLINE_METRICS[task]
        out[f"ft_{first}"] = our_score(table, task, primary)
        out[f"ft_{second}"] = our_score(table, task, other)
        out[f"ft_{first.split('_')[0]}_base"] = best_baseline_score(table, task, primary)
    out["ft_minutes"] = round(float(history.train_seconds.sum()) / 60, 1)
    from bertdrift.config import resolve_precision

    out["ft_seeds"] = len(profile.seeds)
    out["ft_precision"] = {"bf16": "bf16 autocast", "fp32": "float32"}[
        resolve_precision(profile.precision, profile.device)]
    out["ft_data"] = data_note(profile)
    from bertdrift.config import COMPETENCE_FLOORS

    out["ft_floors"] = ", ".join(f"{_SHORT[t]} {f.value:g} {f.unit}"
                                 for t, f in COMPETENCE_FLOORS.items())
    if runs is not None:
        out["ft_verdict"] = baseline_verdict(competence_record(runs, table)["competence"])
    return out


def recipe_table(profile: Any, tasks: tuple[str, ...] = TASKS):
    """One row per task: the fine-tuning recipe of the profile (learning rates, epochs, sizes)."""
    import dataclasses

    import pandas as pd

    return pd.DataFrame({t: dataclasses.asdict(profile.recipe(t)) for t in tasks}).T


def substitutions(profile: Any) -> list[str]:
    """Training sets used in place of a full one the profile asks for (``train_size=None``),
    which only happens with ``allow_subsets=True``: say them on every figure and on the claims
    page. Empty when nothing was substituted."""
    from bertdrift.data.sources import local_path, offline
    from bertdrift.finetune.tasks.nli import mnli_is_sample

    out = []
    if profile.mnli.train_size is None and mnli_is_sample(profile.data_path):
        out.append("MNLI trained on the 12,081-pair train_sample, not the full train set")
    if profile.squad.train_size is None and local_path(
            "squad-v1.1/train-v1.1.json", data_dir=profile.data_path) is None and offline():
        out.append("SQuAD trained on dev articles split by article (no train set offline), "
                   f"the last {profile.squad_eval_articles} articles evaluating")
    return out


def data_note(profile: Any) -> str:
    """The training data in one line, for figure captions: each task's training-set size and
    source, and any substitution (``substitutions``)."""
    from bertdrift.finetune.tasks.nli import mnli_is_sample

    def size(task: str, unit: str) -> str:
        n = profile.recipe(task).train_size
        return f"{n:,} {unit}" if n is not None else f"all {unit}"

    mnli_src = "train_sample" if mnli_is_sample(profile.data_path) else "train"
    squad_src = ("dev, split by article" if profile.squad.train_size is not None
                 or substitutions(profile) and "SQuAD" in " ".join(substitutions(profile))
                 else "train")
    parts = [f"train: MNLI {size('mnli', 'pairs')} ({mnli_src})",
             f"SQuAD {size('squad', 'questions')} ({squad_src})",
             f"UD EWT {size('parsing', 'sentences')}"]
    subs = substitutions(profile)
    return ", ".join(parts) + (f" · SUBSETS: {'; '.join(subs)}" if subs else "")
