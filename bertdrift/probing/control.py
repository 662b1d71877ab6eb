"""Control tasks (Hewitt & Liang 2019): a probe's selectivity is task score minus the score on a
task with the same output space whose labels depend only on word identity.

Every word type (lower-cased, as the uncased models see it) gets one control label, drawn from
the empirical label distribution of the task's training targets. The draw for a type depends only
on the type, the seed and the distribution (a hash, not the order in which types are met), so
train and evaluation splits agree and unseen evaluation words still get a fixed label.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from bertdrift.errors import DataError


def word_type(word: str) -> str:
    return word.lower()


def label_distribution(rows: Iterable[dict]) -> dict[str, float]:
    """Relative frequency of each target label (first label of each target) in edge records."""
    counts: Counter[str] = Counter()
    for row in rows:
        for t in row["targets"]:
            labels = t["label"] if isinstance(t["label"], (list, tuple)) else [t["label"]]
            if labels:
                counts[labels[0]] += 1
    total = sum(counts.values())
    if not total:
        raise DataError("cannot build a control task from records without targets")
    return {k: v / total for k, v in sorted(counts.items())}


def _unit(seed: int, key: str) -> float:
    """A uniform number in [0, 1) determined by ``(seed, key)``."""
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def control_label(wtype: str, distribution: dict[str, float], seed: int) -> str:
    """The control label of one word type: inverse CDF of ``distribution`` at a hashed draw."""
    labels = sorted(distribution)
    cdf = np.cumsum([distribution[k] for k in labels])
    u = _unit(seed, wtype) * cdf[-1]
    return labels[min(int(np.searchsorted(cdf, u, side="right")), len(labels) - 1)]


def control_labels(types: Iterable[str], distribution: dict[str, float], seed: int
                   ) -> dict[str, str]:
    return {t: control_label(t, distribution, seed) for t in set(types)}


def control_rows(rows: Sequence[dict], distribution: dict[str, float], seed: int) -> list[dict]:
    """Edge records whose every target is relabelled by the type of its span1's first word."""
    out = []
    for row in rows:
        tokens = list(row["tokens"])
        targets = []
        for t in row["targets"]:
            wtype = word_type(tokens[int(t["span1"][0])])
            targets.append({**t, "label": [control_label(wtype, distribution, seed)]})
        out.append({"tokens": tokens, "targets": targets})
    return out


def selectivity(task_scores: dict[str, float], control_scores: dict[str, float]
                ) -> dict[str, float]:
    """Per head: task score minus control score (Hewitt & Liang's selectivity)."""
    return {k: task_scores[k] - control_scores[k] for k in task_scores if k in control_scores}
