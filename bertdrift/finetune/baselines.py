"""Trivial baselines for the fine-tuning tasks, computed for real on the same evaluation sets.

- MNLI: always predict the training set's majority class.
- SQuAD: answer every question with the first sentence of its paragraph.
- UD parsing: attach every word to its right neighbour (the last word is the root) or to its
  left neighbour (the first word is the root), and label every word with the most frequent
  training relation.

Also the published BERT-base figures the chapter shows beside ours, labelled as published.
"""

from __future__ import annotations

import collections
from typing import Any

from bertdrift.finetune.metrics import (
    accuracy,
    adjacent_heads,
    attachment_scores,
    first_sentence,
    majority_label,
    squad_scores,
)
from bertdrift.finetune.tasks import TaskData, get_task

PUBLISHED: dict[str, dict[str, Any]] = {
    "mnli": {"metric": "dev_matched_accuracy", "value": 84.0,
             "source": "BERT-base, MNLI-m dev accuracy, full training set (Devlin et al. 2019)"},
    "squad": {"metric": "dev_f1", "value": 88.5,
              "source": "BERT-base, SQuAD v1.1 dev F1, full training set (Devlin et al. 2019)"},
}
"""Published BERT-base scores (not ours). No UD EWT figure is given: we know of none for plain
BERT-base with this exact head that we could cite with confidence."""


def mnli_baselines(data: TaskData) -> dict[str, dict[str, float]]:
    label = majority_label(data.train["label"])
    return {"majority class": {
        f"{split}_accuracy": accuracy([label] * len(ex), list(ex["label"]))
        for split, ex in data.evals.items()}}


def squad_baselines(data: TaskData) -> dict[str, dict[str, float]]:
    out = {}
    for split, ex in data.evals.items():
        refs = {i: list(a["text"]) for i, a in zip(ex["id"], ex["answers"], strict=True)}
        preds = {i: first_sentence(c) for i, c in zip(ex["id"], ex["context"], strict=True)}
        out.update({f"{split}_{k}": v for k, v in squad_scores(preds, refs).items()})
    return {"first sentence": out}


def parsing_baselines(data: TaskData) -> dict[str, dict[str, float]]:
    counts = collections.Counter(r for rels in data.train["deprel"] for r in rels)
    top = max(counts, key=lambda r: (counts[r], r))
    out: dict[str, dict[str, float]] = {}
    for direction in ("right", "left"):
        scores: dict[str, float] = {}
        for split, ex in data.evals.items():
            heads = [adjacent_heads(len(h), direction) for h in ex["head"]]
            rels = [[top] * len(h) for h in ex["head"]]
            s = attachment_scores(ex["head"], ex["deprel"], heads, rels)
            scores.update({f"{split}_{k}": v for k, v in s.items()})
        out[f"head = {direction} neighbour, label '{top}'"] = scores
    return out


def trivial_baselines(task: str, profile: Any, data: TaskData | None = None
                      ) -> dict[str, dict[str, float]]:
    """``{baseline name: {metric: percent}}`` on the profile's evaluation sets for ``task``."""
    t = get_task(task)
    data = data if data is not None else t.load(profile)
    return {"mnli": mnli_baselines, "squad": squad_baselines,
            "parsing": parsing_baselines}[t.name](data)


def best_baseline(task: str, profile: Any, data: TaskData | None = None) -> float:
    """The best trivial baseline's score on ``task``'s primary metric (e.g. MNLI-m accuracy)."""
    metric = get_task(task).primary_metric
    return max(float(scores[metric])
               for scores in trivial_baselines(task, profile, data).values())
