"""The evidence chapters 4 and 6 hand to the claims page, on synthetic comparisons with known
answers (``bertdrift.drift_evidence``; the coverage check is in
``test_inference_coverage_drift.py``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bertdrift import drift, inference
from bertdrift import drift_evidence as de
from bertdrift.config import CLAIM_MARGINS, TASK_DOMAIN

SEEDS = (0, 1, 2)
N_BOOT = 40


def _rows(full, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Rows ``(1 + 2B, L)``: ``full``, then product and linear replicates with ``noise``."""
    full = np.asarray(full, dtype=float)
    rng = np.random.default_rng(seed)
    reps = full + noise * rng.standard_normal((2 * N_BOOT, full.size))
    return np.vstack([full[None], reps])


def _attenuated(change, reliability, noise: float = 0.0) -> de.SeedComparisons:
    """Comparisons that follow the attenuation model exactly: RSA(pre, ft_s) = (1 - c) k_s and
    RSA(ft_a, ft_b) = k_a k_b, with a per-seed reliability k_s (the seed's noise)."""
    r0 = 1 - np.asarray(change, dtype=float)
    k = {s: np.asarray(reliability[s], dtype=float) for s in SEEDS}
    return de.SeedComparisons(
        pre={s: _rows(r0 * k[s], noise, s) for s in SEEDS},
        pairs={(a, b): _rows(k[a] * k[b], noise, 10 + a + b) for a in SEEDS for b in SEEDS
               if a < b})


CHANGE = [0.0, 0.01, 0.01, 0.02, 0.05, 0.10, 0.20]  # layers 0..6
RELIABILITY = {0: [1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8],
               1: [1.0, 0.98, 0.97, 0.93, 0.88, 0.8, 0.7],
               2: [1.0, 0.99, 0.99, 0.96, 0.92, 0.87, 0.75]}


def test_corrected_change_recovers_the_shared_change_whatever_the_seed_noise() -> None:
    ev = _attenuated(CHANGE, RELIABILITY)
    prof = de.seed_profiles(ev, list(SEEDS))
    np.testing.assert_allclose(prof[:, 0], np.tile(CHANGE, (3, 1)), atol=1e-12)
    # the old reading, ceiling minus pre-vs-ft RSA, is biased by the seeds' noise
    ceiling = np.mean([q[0] for q in ev.pairs.values()], axis=0)
    old = ceiling - np.mean([r[0] for r in ev.pre.values()], axis=0)
    assert old[-1] < CHANGE[-1] - 0.05
    table = de.change_table({"mnli": ev})
    np.testing.assert_allclose(table["change"], CHANGE, atol=1e-12)
    assert list(table.columns[:5]) == ["task", "layers", "change", "change_low", "change_high"]


def test_top_layer_part_is_top_third_minus_bottom_third() -> None:
    ev = _attenuated(CHANGE, RELIABILITY, noise=0.002)
    margin = CLAIM_MARGINS["top_layers"].value
    part = de.top_layer_part(ev, "mnli", margin)
    expect = (0.10 + 0.20) / 2 - (0.01 + 0.01) / 2
    assert np.mean(part["values"]) == pytest.approx(expect, abs=0.003)
    assert part["models"] == ["mnli"] and part["margin"] == margin and part["seed_dof"] == 2
    assert part["se"] > 0
    res = inference.judge_part(inference.Part.from_record(part))
    assert res.verdict == "agree" and res.low > 0
    # no change at any depth: the interval sits on 0, well inside the margin
    flat = de.top_layer_part(_attenuated([0.0] * 7, RELIABILITY, noise=0.0005), "mnli", margin)
    assert inference.judge_part(inference.Part.from_record(flat)).verdict == "equivalent"


def test_words_error_and_the_jackknife_over_seeds() -> None:
    # no word noise: the seed error is exactly the jackknife's, the words error is 0
    rel = {s: [1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8] for s in SEEDS}
    ev = _attenuated(CHANGE, rel)
    ev = de.SeedComparisons(pre={**ev.pre, 2: ev.pre[2] * 0.97}, pairs=ev.pairs)
    g = de.top_minus_bottom(ev.n_layers)
    part = de.top_layer_part(ev, "mnli", 0.02)

    def stat(kept: list[int]) -> float:
        return float(de.seed_profiles(ev, [SEEDS[i] for i in kept])[:, 0].mean(0) @ g)

    full, se = inference.jackknife_se(3, stat)
    assert part["seed_se"] == pytest.approx(se) and part["se"] == pytest.approx(0.0)
    assert np.mean(part["values"]) == pytest.approx(full)
    # the words error: 2 var(linear) - var(product), floored at var(linear) / 2
    rng = np.random.default_rng(1)
    rows = np.concatenate([[0.5], 0.5 + 0.02 * rng.standard_normal(N_BOOT),
                           0.5 + 0.03 * rng.standard_normal(N_BOOT)])
    vp, vl = rows[1:1 + N_BOOT].var(ddof=1), rows[1 + N_BOOT:].var(ddof=1)
    assert de.words_se(rows) == pytest.approx(math.sqrt(max(2 * vl - vp, vl / 2)))


def test_word_noise_is_not_counted_twice() -> None:
    """Seeds that differ only by word noise: the jackknife over seeds sees that noise, which
    the words' error already holds; what is left for the seed term averages ``e^-1`` of it
    (the positive part of a 2-dof estimate of 0), not all of it."""
    rng = np.random.default_rng(3)
    seed_var, jk_var, words_var = [], [], []
    for _ in range(300):
        own = {s: 0.5 + 0.01 * rng.standard_normal((1 + 2 * 200, 7)) for s in SEEDS}
        zero = {s: np.zeros_like(own[s]) for s in SEEDS}
        part = de.gap_part(zero, {"wikitext": own}, "mnli", 0.02)
        seed_var.append(part["seed_se"] ** 2)
        words_var.append(part["se"] ** 2)
        jk_var.append(np.var(part["values"], ddof=1) / 3)
    assert np.mean(words_var) == pytest.approx(0.01 ** 2 / 3, rel=0.05)
    assert np.mean(jk_var) == pytest.approx(0.01 ** 2 / 3, rel=0.15)
    assert np.mean(seed_var) == pytest.approx(math.exp(-1) * 0.01 ** 2 / 3, rel=0.25)


def test_depth_share_and_magnitude_parts() -> None:
    deep = _attenuated([0, 0.1, 0.1, 0.1, 0.3, 0.3, 0.3], RELIABILITY)
    other = _attenuated([0, 0.0, 0.0, 0.1, 0.3, 0.3, 0.5], RELIABILITY)
    np.testing.assert_allclose(de.lower_share(de.seed_profiles(deep, list(SEEDS))[:, 0]),
                               0.3 / 1.2)
    part = de.deeper_part(deep, other, ["parsing", "mnli"], 0.05)
    np.testing.assert_allclose(part["values"], [0.3 / 1.2 - 0.1 / 1.2] * 3, atol=1e-12)
    mag = de.magnitude_part(deep, other, ["parsing", "mnli"], 0.05)
    np.testing.assert_allclose(mag["values"], [0.1 - 0.1 / 3] * 3, atol=1e-12)
    raw = de.magnitude_part(deep, other, ["parsing", "mnli"], 0.05, corrected=False)
    r_deep = np.mean(deep.pre[0][0, 1:4])
    r_other = np.mean(other.pre[0][0, 1:4])
    assert raw["values"][0] == pytest.approx(r_other - r_deep)
    # a task that changes everything more, in the same shape, is not deeper
    scaled = _attenuated([0, 0.2, 0.2, 0.2, 0.6, 0.6, 0.6], RELIABILITY)
    same = de.deeper_part(scaled, deep, ["parsing", "mnli"], 0.05)
    np.testing.assert_allclose(same["values"], 0.0, atol=1e-12)
    shares = de.share_table({"parsing": deep, "mnli": other})
    assert shares.loc["parsing", "share"] == pytest.approx(0.25)


def test_rsa_record_and_its_not_judged_cases() -> None:
    margins = {k: CLAIM_MARGINS[k].value for k in ("top_layers", "parsing_deeper")}
    own = {"mnli": _attenuated(CHANGE, RELIABILITY, 0.001)}
    shared = {"parsing": _attenuated([0, 0.1, 0.1, 0.1, 0.3, 0.3, 0.3], RELIABILITY, 0.001),
              "mnli": _attenuated(CHANGE, RELIABILITY, 0.001)}
    rec = de.rsa_record(own, shared, margins, note="matched")
    assert list(rec["top_layers"]["parts"]) == ["mnli"]
    deeper = rec["parsing_deeper"]
    assert list(deeper["parts"]) == ["parsing − mnli"] and deeper["note"] == "matched"
    assert set(deeper["view"]["parts"]) == {"parsing − mnli (corrected)",
                                            "parsing − mnli (raw)"}
    for p in [*deeper["parts"].values(), *deeper["view"]["parts"].values()]:
        inference.Part.from_record(p)  # the record's fields are Part's
    table = de.parts_table(deeper["parts"])
    assert table.loc["parsing − mnli", "low"] <= table.loc["parsing − mnli", "effect"]

    def keep(ev: de.SeedComparisons, seeds) -> de.SeedComparisons:
        return de.SeedComparisons({s: ev.pre[s] for s in seeds},
                                  {p: q for p, q in ev.pairs.items() if set(p) <= set(seeds)})

    two = de.rsa_record({"mnli": keep(own["mnli"], (0, 1))}, {}, margins)
    assert "needs at least 3 seeds" in two["top_layers"]["not_judged"]
    assert "parsing" in two["parsing_deeper"]["not_judged"]
    one = de.rsa_record({"mnli": keep(own["mnli"], (0,))}, {}, margins)
    assert "needs at least 2 seeds" in one["top_layers"]["not_judged"]
    table = de.change_table({"mnli": keep(own["mnli"], (0, 1))})  # shown, without intervals
    assert table["change_low"].isna().all() and len(de.claim_table(two, "top_layers")) == 1


def test_ood_record_parts_per_seed_and_view() -> None:
    top = {"mnli": 0.5, "squad": 0.7, "parsing": 0.6, "wikitext": 0.9, "gum": 0.8}

    def by_seed(value: float) -> dict[int, np.ndarray]:
        return {s: _rows([1.0] * 6 + [value + 0.01 * s], 0.002, s) for s in SEEDS}

    evidence = {"mnli": {d: by_seed(v) for d, v in top.items()}}
    rec = de.ood_record(evidence, ("wikitext", "gum"), 0.02, TASK_DOMAIN)
    part = rec["out_of_domain"]["parts"]["mnli"]
    np.testing.assert_allclose(part["values"], [(0.9 + 0.8) / 2 - 0.5] * 3, atol=1e-12)
    view = rec["out_of_domain"]["view"]["parts"]["mnli"]
    np.testing.assert_allclose(view["values"], [(0.7 + 0.6) / 2 - 0.5] * 3, atol=1e-12)
    assert inference.judge_part(inference.Part.from_record(part)).verdict == "agree"
    nums = de.ood_part_numbers(rec)
    assert nums["ood_gap_unseen_mnli"] == "+0.3500" and nums["ood_gap_tasks_squad"] == "—"
    one = de.ood_record({"mnli": {d: {0: v[0]} for d, v in evidence["mnli"].items()}},
                        ("wikitext", "gum"), 0.02, TASK_DOMAIN)
    assert "needs at least 2 seeds" in one["out_of_domain"]["not_judged"]
    assert de.ood_part_numbers(one)["ood_gap_unseen_ci_mnli"] == "—"


def test_change_numbers() -> None:
    table = de.change_table({"mnli": _attenuated(CHANGE, RELIABILITY, 0.001)})
    shares = de.share_table({"mnli": _attenuated(CHANGE, RELIABILITY, 0.001)})
    n = de.change_numbers(table, shares)
    assert n["rsa_cc_top_mnli"] == "+0.2000"
    assert n["rsa_cc_ci_mnli"].startswith("[+0.1")
    assert n["rsa_cc_share_mnli"] == f"{(0.01 + 0.01 + 0.02) / 0.39:.2f}"


def test_evidence_numbers_and_budgets() -> None:
    ceil = pd.DataFrame([{"task": "mnli", "layers": i, "ceiling": c}
                         for i, c in enumerate([1.0, 0.99, 0.98, 0.97])])
    weights = pd.DataFrame([{"task": "mnli", "seed": 0, "layers": i, "weight_change": w}
                            for i, w in enumerate([0.01, 0.02, 0.03, 0.08])])
    budgets = pd.DataFrame({"steps": [126], "examples seen": [2000], "tokens seen": [81234],
                            "train seconds": [20.0]}, index=["mnli"])
    n = drift.evidence_numbers(ceil, weights, budgets, {}, "at matched steps: -")
    assert n["rsa_ceiling_top_mnli"] == "0.9700" and n["rsa_wratio_mnli"] == "4.0"
    assert n["rsa_tokens_mnli"] == "81,234" and n["rsa_steps_mnli"] == 126


def test_matched_note_and_domain_gaps_over_seeds() -> None:
    rows = []
    for task, sims in (("parsing", [1, 0.8, 0.8, 0.8, 0.7, 0.6, 0.5]),
                       ("mnli", [1, 0.99, 0.99, 0.98, 0.9, 0.8, 0.5])):
        for layer, r in enumerate(sims):
            rows.append({"task": task, "seed": 0, "layers": layer, "rsa": r,
                         "rsa_low": r - 0.005, "rsa_high": r + 0.005, "domain": "shared"})
    note = drift.matched_note(pd.DataFrame(rows), {})
    assert f"parsing − mnli {0.2 - (1 - 0.99 * 2 / 3 - 0.98 / 3):+.4f}" in note
    rows = [{"task": "mnli", "seed": s, "layers": 6, "domain": d, "rsa": v + 0.01 * s,
             "rsa_low": v - 0.01, "rsa_high": v + 0.01}
            for s in SEEDS for d, v in (("mnli", 0.5), ("squad", 0.7), ("wikitext", 0.9))]
    gaps = drift.domain_gaps(pd.DataFrame(rows), ["mnli"], ["mnli", "squad", "wikitext"])
    assert gaps.loc["mnli", "own"] == pytest.approx(0.51)
    assert gaps.loc["mnli", "unseen"] == pytest.approx(0.91)
    assert gaps.loc["mnli", "tasks"] == pytest.approx(0.71)
    assert gaps.loc["mnli", "gap"] == pytest.approx(0.81 - 0.51)


def test_claim_table_has_one_row_per_part_and_view() -> None:
    top = {d: {s: _rows([1.0] * 6 + [v], 0.002, s) for s in SEEDS}
           for d, v in {"mnli": 0.5, "squad": 0.7, "wikitext": 0.9}.items()}
    rec = de.ood_record({"mnli": top}, ("wikitext",), 0.02, TASK_DOMAIN)
    table = de.claim_table(rec, "out_of_domain")
    assert list(table["part"]) == ["mnli", "mnli"] and table.index.is_unique
    assert table["evidence"].iloc[0] == "judged"
    assert table.loc[0, "effect"] == pytest.approx(0.4, abs=1e-3)
