"""Control tasks: labels are a seeded function of word type matching the label distribution."""

from __future__ import annotations

from collections import Counter

import pytest

from bertdrift.probing.control import (
    control_label,
    control_labels,
    control_rows,
    label_distribution,
    selectivity,
)

DIST = {"NOUN": 0.5, "VERB": 0.3, "DET": 0.2}


def test_assignment_is_a_function_of_type_and_seed() -> None:
    rows = [
        {"tokens": ["The", "dog", "saw", "the", "dog"],
         "targets": [{"span1": [i, i + 1], "span2": [-1, -1], "label": ["X"]} for i in range(5)]},
    ]
    out = control_rows(rows, DIST, seed=1)
    labels = [t["label"][0] for t in out[0]["targets"]]
    assert labels[0] == labels[3]  # "The" and "the": same lower-cased type
    assert labels[1] == labels[4]
    assert control_rows(rows, DIST, seed=1) == out  # deterministic
    assert control_label("dog", DIST, 1) == labels[1]
    many = [f"w{i}" for i in range(400)]
    assert control_labels(many, DIST, 1) != control_labels(many, DIST, 2)


def test_labels_follow_the_empirical_distribution() -> None:
    rows = [{"tokens": ["a"], "targets": [{"span1": [0, 1], "label": [lab]}]}
            for lab in ["NOUN"] * 5 + ["VERB"] * 3 + ["DET"] * 2]
    dist = label_distribution(rows)
    assert dist == pytest.approx(DIST)
    counts = Counter(control_labels([f"type{i}" for i in range(6000)], dist, seed=0).values())
    for label, p in DIST.items():
        assert counts[label] / 6000 == pytest.approx(p, abs=0.03)


def test_selectivity() -> None:
    assert selectivity({"0": 0.9, "mix": 0.95}, {"0": 0.7, "mix": 0.6}) == pytest.approx(
        {"0": 0.2, "mix": 0.35})
