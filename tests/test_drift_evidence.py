"""The evidence chapter 4 and 6 hand to the claims page, on synthetic frames with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from bertdrift import claims, drift


def _frame(tasks: dict[str, list[list[float]]], halfwidth: float = 0.0,
           domain: str | None = None) -> pd.DataFrame:
    rows = []
    for task, per_seed in tasks.items():
        for seed, sims in enumerate(per_seed):
            for layer, r in enumerate(sims):
                rows.append({"task": task, "seed": seed, "layers": layer, "rsa": r,
                             "rsa_low": r - halfwidth, "rsa_high": r + halfwidth,
                             "domain": domain or task})
    return pd.DataFrame(rows)


def _ceiling(tasks: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"task": t, "layers": i, "ceiling": c} for t, cs in tasks.items()
                         for i, c in enumerate(cs)])


def test_top_layer_evidence_is_change_beyond_the_seed_ceiling() -> None:
    # 6 layers + embeddings; the ceiling is 0.99 everywhere
    ceil = _ceiling({"mnli": [1.0] + [0.99] * 6})
    deep_top = [[1.0, 0.99, 0.99, 0.95, 0.9, 0.8, 0.7 + 0.01 * s] for s in range(3)]
    parts = drift.top_layer_parts(_frame({"mnli": deep_top}, 0.01), ceil)
    v = parts["mnli"]["values"]
    # top third (layers 5, 6): excess 0.99 - (0.8, 0.7+) ; bottom third (1, 2): 0
    assert v[0] == pytest.approx(((0.99 - 0.8) + (0.99 - 0.7)) / 2)
    assert claims.judge_top_layers({"parts": parts}).verdict == "agree"
    # a model whose change equals the seed noise at every layer: no excess, inconclusive
    flat = [[1.0] + [0.99 + 0.001 * (s - 1)] * 6 for s in range(3)]
    parts = drift.top_layer_parts(_frame({"mnli": flat}, 0.01), ceil)
    assert claims.judge_top_layers({"parts": parts}).verdict == "inconclusive"


def test_deeper_evidence_pairs_seeds_on_shared_words() -> None:
    frame = _frame({"parsing": [[1, 0.8, 0.8, 0.8, 0.7, 0.6, 0.5]] * 3,
                    "mnli": [[1, 0.99, 0.99, 0.98, 0.9, 0.8, 0.5]] * 3}, 0.005, "shared")
    change = drift.lower_half_change(frame)
    assert change["parsing"][0][0] == pytest.approx(0.2)
    parts = drift.deeper_parts(frame)
    assert list(parts) == ["parsing − mnli"]
    assert parts["parsing − mnli"]["values"][0] == pytest.approx(0.2 - (1 - 0.99 * 2 / 3 - 0.98 / 3))
    assert claims.judge_parsing_deeper({"parts": parts}).verdict == "agree"
    with pytest.raises(drift.DriftError):
        drift.deeper_parts(frame[frame.task == "mnli"])


def test_ood_evidence_uses_words_and_the_seed_spread() -> None:
    rows = []
    for t in ("mnli", "squad"):
        for d, r in (("mnli", 0.6), ("squad", 0.7), ("wikitext", 0.9)):
            own = 0.5 if d == t else r
            rows.append({"task": t, "seed": 0, "layers": 6, "rsa": own, "rsa_low": own - 0.01,
                         "rsa_high": own + 0.01, "domain": d})
    frame = pd.DataFrame(rows)
    parts = drift.ood_parts(frame)
    assert parts["mnli"]["values"][0] == pytest.approx((0.7 + 0.9) / 2 - 0.5)
    assert claims.judge_out_of_domain({"parts": parts}).verdict == "agree"
    # a wide seed spread of the in-domain top-layer RSA makes it inconclusive
    seeds = _frame({"mnli": [[1] * 6 + [x] for x in (0.1, 0.5, 0.9)],
                    "squad": [[1] * 6 + [x] for x in (0.1, 0.5, 0.9)]})
    parts = drift.ood_parts(frame, seeds)
    assert parts["mnli"]["dof"] == 2
    assert claims.judge_out_of_domain({"parts": parts}).verdict == "inconclusive"


def test_evidence_numbers_and_budgets() -> None:
    ceil = _ceiling({"mnli": [1.0, 0.99, 0.98, 0.97]})
    weights = pd.DataFrame([{"task": "mnli", "seed": 0, "layers": i, "weight_change": w}
                            for i, w in enumerate([0.01, 0.02, 0.03, 0.08])])
    budgets = pd.DataFrame({"steps": [126], "examples seen": [2000], "tokens seen": [81234],
                            "train seconds": [20.0]}, index=["mnli"])
    n = drift.evidence_numbers(ceil, weights, budgets, {}, "at matched steps: -")
    assert n["rsa_ceiling_top_mnli"] == "0.9700" and n["rsa_wratio_mnli"] == "4.0"
    assert n["rsa_tokens_mnli"] == "81,234" and n["rsa_steps_mnli"] == 126
