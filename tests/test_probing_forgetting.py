"""Chapter 3's forgetting record on synthetic per-sentence counts whose answers are worked out
by hand: which parts exist, their per-seed changes, nulls, margins and standard errors, and the
verdicts they lead to; the model names, the pooled tables and the chapter's method numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bertdrift import get_profile
from bertdrift.config import CLAIM_MARGINS
from bertdrift.inference import Part, judge_parts, reading
from bertdrift.probing.forgetting import (
    forgetting_numbers,
    forgetting_record,
    readings,
    seed_mean,
)
from bertdrift.probing.names import finetuned_name, pooled, probe_models, split_name
from bertdrift.probing.run import ProbingResults
from bertdrift.probing.stats import counts_score
from bertdrift.probing.summary import (
    method_numbers,
    mix_entropy,
    mix_weights,
    verdict_table,
    weights_entropy,
)

N = 400
FT_SEEDS = (0, 1, 2)


def _acc(correct: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(correct, int), np.ones(len(correct), int)], -1)


def _model(rng: np.random.Generator, p: float, n_probe: int = 2) -> np.ndarray:
    """``(probe seeds, N, 2)`` accuracy counts, each sentence right with chance ``p``."""
    return np.stack([_acc(rng.random(N) < p) for _ in range(n_probe)])


def _synthetic(mnli_mix: tuple[float, ...] = (0.88, 0.89, 0.87),
               mnli_top: tuple[float, ...] = (0.70, 0.72, 0.71),
               pre_uuas: tuple[float, ...] = (0.6, 0.8, 0.7)) -> ProbingResults:
    """pos: pre-trained 90 % at the mix and 80 % at the top layer, random encoder 50 % / 45 %,
    majority 40 %; MNLI's three fine-tuning seeds at ``mnli_mix`` / ``mnli_top``. coref: the
    pre-trained probe is no better than always-positive (at floor). distance: UUAS stats per
    layer (0..2), the pre-trained model best at layer 1."""
    rng = np.random.default_rng(0)
    res = ProbingResults(*(pd.DataFrame() for _ in range(4)), timings={})
    pos = {"pretrained": (0.9, 0.8), "random": (0.5, 0.45)}
    pos |= {finetuned_name("mnli", s): (a, b)
            for s, a, b in zip(FT_SEEDS, mnli_mix, mnli_top, strict=True)}
    for m, (p_mix, p_top) in pos.items():
        c = _model(rng, p_mix)
        res.counts[(m, "pos")] = {"task": c, "tenney": c[..., [0, 1, 1]], "top": _model(
            rng, p_top)}
    base = _acc(np.arange(N) % 5 < 2)
    res.baselines["pos"] = {"majority": {"task": base, "tenney": base[:, [0, 1, 1]]}}
    gold = rng.random(N) < 0.3
    always = np.stack([gold, ~gold, np.zeros(N, bool), np.zeros(N, bool)], -1).astype(int)
    for m in pos:
        res.counts[(m, "coref")] = {k: np.stack([always] * 2) for k in ("task", "top")} | {
            "tenney": np.stack([always[:, :3]] * 2)}
    res.baselines["coref"] = {"all_positive": {"task": always, "tenney": always[:, :3]}}
    res.metrics = {"pos": "accuracy", "coref": "f1"}
    # distance: sentence_stats columns (gold edges found, gold edges, spearman, length)
    uuas = {"pretrained": pre_uuas, "random": (0.3, 0.3, 0.3)}
    uuas |= {finetuned_name("mnli", s): (0.6, 0.78, 0.5) for s in FT_SEEDS}
    rows = []
    for m, per_layer in uuas.items():
        stats = {}
        for layer, p in enumerate(per_layer):
            found = rng.binomial(10, p, size=(2, N))
            stats[layer] = np.stack([found, np.full((2, N), 10), np.zeros((2, N)),
                                     np.full((2, N), 11)], -1).astype(float)
            rows += [dict(model=m, probe="distance", seed=sd, layer=layer, metric="uuas",
                          value=found[sd].sum() / (10 * N)) for sd in range(2)]
        res.tree_stats[(m, "distance")] = stats
    res.structural = pd.DataFrame(rows)
    chain = np.stack([np.full(N, 5), np.full(N, 10), np.zeros(N), np.full(N, 11)], -1)
    res.tree_baselines["distance"] = chain.astype(float)
    return res


def _acc_of(c: np.ndarray) -> float:
    """Accuracy in points, probe seeds averaged (one target per sentence)."""
    return 100 * float(c[..., 0].mean())


def test_readings_cover_both_levels_and_the_structural_best_layer() -> None:
    got = [(r.task, r.metric, r.level) for r in readings(_synthetic())]
    assert got == [("pos", "accuracy", "mix"), ("pos", "tenney_f1", "mix"),
                   ("pos", "accuracy", "top"), ("coref", "f1", "mix"),
                   ("coref", "tenney_f1", "mix"), ("coref", "f1", "top"),
                   ("distance", "uuas", "layer 1"), ("distance", "uuas", "top")]
    assert [r.layer for r in readings(_synthetic())][-2:] == [1, 2]
    assert [r.main for r in readings(_synthetic())] == [True, True, False, True, True, False,
                                                        True, False]
    # when the pre-trained model is best at the top layer, the two levels are one
    one = [(r.level, r.layer, r.main) for r in readings(_synthetic(pre_uuas=(0.6, 0.7, 0.8)))
           if r.task == "distance"]
    assert one == [("top", 2, True)]
    vt = verdict_table(_synthetic(pre_uuas=(0.6, 0.7, 0.8)), n_boot=100)
    assert "distance (layer 2)" in set(vt["task"]) and len(vt) == 5


def test_forgetting_record_parts_have_known_values_nulls_and_margins() -> None:
    res = _synthetic()
    rec = forgetting_record(res, n_boot=2000)["forgetting"]
    # informative tasks only, each at both levels; coref (at floor) is shown, not judged
    assert set(rec["parts"]) == {"pos · mnli · mix", "pos · mnli · top",
                                 "distance · mnli · layer 1", "distance · mnli · top"}
    assert not any(lv["informative"] for lv in rec["view"]["tasks"]["coref"]["levels"].values())
    assert "coref" in rec["note"]
    f = CLAIM_MARGINS["forgetting"].value
    for level, key, rand_key in (("mix", "task", "task"), ("top", "top", "top")):
        part = rec["parts"][f"pos · mnli · {level}"]
        pre = _acc_of(res.counts[("pretrained", "pos")][key])
        values = [_acc_of(res.counts[(finetuned_name("mnli", s), "pos")][key]) - pre
                  for s in FT_SEEDS]
        assert part["values"] == pytest.approx(values)
        # the floor at this level: the best of majority (40 %) and the random encoder
        floor = max(40.0, _acc_of(res.counts[("random", "pos")][rand_key]))
        lv = rec["view"]["tasks"]["pos"]["levels"][level]
        assert lv["floor"] == "random" and lv["floor_score"] == pytest.approx(floor)
        assert lv["margin"][0] == pytest.approx(pre - floor)
        assert part["null"] == pytest.approx(-f * (pre - floor))
        assert part["margin"] == pytest.approx(f * (pre - floor))
        assert part["side"] == "above" and part["absence"] and part["models"] == ["mnli"]
        assert set(part) == {"values", "null", "side", "se", "margin", "absence", "models"}
        # paired sentence bootstrap of the seed-mean change: about sd(d_i) / sqrt(N), d_i the
        # per-sentence change averaged over fine-tuning and probe seeds
        ft = np.stack([res.counts[(finetuned_name("mnli", s), "pos")][key][..., 0].mean(0)
                       for s in FT_SEEDS]).mean(0)
        d = ft - res.counts[("pretrained", "pos")][key][..., 0].mean(0)
        assert part["se"] == pytest.approx(100 * d.std() / math.sqrt(N), rel=0.1)
        Part.from_record(part)  # exactly the Part fields
    # structural: the best layer is the pre-trained model's (1), the top is layer 2
    dist = rec["view"]["tasks"]["distance"]["levels"]
    assert set(dist) == {"layer 1", "top"} and dist["top"]["layer"] == 2
    assert dist["layer 1"]["floor"] == "linear order"  # 50 % beats the random encoder's 30 %
    assert dist["top"]["margin"][0] == pytest.approx(20.0, abs=1.5)  # 70 % vs 50 %
    nums = forgetting_numbers({"forgetting": rec})
    assert nums == {"probe_n_parts": 4, "probe_n_judged": 2,
                    "probe_judged_list": "pos, distance"}


def test_forgetting_verdicts_read_both_ways() -> None:
    """MNLI keeps pos at the mix and loses about 19 points of a 35-point margin at the top
    layer, and all of distance's 20-point margin there: the mix part is no forgetting, the top
    parts are forgetting (their intervals lie below minus a quarter of the margin)."""
    res = _synthetic(mnli_mix=(0.90, 0.90, 0.90), mnli_top=(0.60, 0.61, 0.62))
    rec = forgetting_record(res, n_boot=1000)["forgetting"]
    parts = {k: Part.from_record(v) for k, v in rec["parts"].items()}
    judged = judge_parts(parts)
    assert reading(judged["pos · mnli · mix"]) == "agree"
    assert judged["pos · mnli · top"].verdict == "disagree"
    assert judged["distance · mnli · top"].verdict == "disagree"


def test_forgetting_equivalent_with_much_data_inconclusive_with_little() -> None:
    """No change at all: identical per-sentence counts for every seed. With many sentences the
    90 % interval of the change lies inside ± a quarter of the margin (equivalent, which agrees
    with the paper's claim of absence); on a handful of sentences it cannot."""
    def res_with(n: int, spread: float) -> ProbingResults:
        rng = np.random.default_rng(5)
        res = ProbingResults(*(pd.DataFrame() for _ in range(4)), timings={})
        pre = np.stack([_acc(rng.random(n) < 0.7)] * 2)
        res.counts[("pretrained", "pos")] = {"task": pre, "tenney": pre[..., [0, 1, 1]]}
        rand = np.stack([_acc(rng.random(n) < 0.5)] * 2)
        res.counts[("random", "pos")] = {"task": rand, "tenney": rand[..., [0, 1, 1]]}
        for s in FT_SEEDS:  # each seed flips a few sentences of the pre-trained probe
            ft = pre.copy()
            flip = rng.random(n) < spread
            ft[:, flip, 0] = 1 - ft[:, flip, 0]
            res.counts[(finetuned_name("mnli", s), "pos")] = {"task": ft,
                                                              "tenney": ft[..., [0, 1, 1]]}
        base = _acc(np.zeros(n))
        res.baselines["pos"] = {"majority": {"task": base, "tenney": base[:, [0, 1, 1]]}}
        res.metrics = {"pos": "accuracy"}
        return res

    big = forgetting_record(res_with(4000, 0.02), n_boot=500)["forgetting"]["parts"]
    small = forgetting_record(res_with(40, 0.2), n_boot=500)["forgetting"]["parts"]
    assert set(big) == {"pos · mnli · mix"}  # no top-layer counts: the mix only
    assert judge_parts({"p": Part.from_record(big["pos · mnli · mix"])})["p"].verdict == (
        "equivalent")
    assert judge_parts({"p": Part.from_record(small["pos · mnli · mix"])})["p"].verdict == (
        "inconclusive")


def test_seed_mean_interval_combines_seeds_and_sentences() -> None:
    rng = np.random.default_rng(2)
    score = counts_score("accuracy")
    seeds = [_model(rng, p) for p in (0.6, 0.7, 0.8)]
    sm = seed_mean(score, seeds, n_boot=500)
    assert sm.values == pytest.approx([_acc_of(s) for s in seeds])
    point, lo, hi = sm.interval()
    # the seeds' spread (sd / sqrt 3, 2 dof) plus the sentence error (infinite dof), with
    # Welch–Satterthwaite degrees of freedom
    a, b = np.var(sm.values, ddof=1) / 3, sm.se ** 2
    dof = (a + b) ** 2 / (a ** 2 / 2)
    assert point == pytest.approx(np.mean(sm.values)) and 2 < dof < 2.1
    assert hi - lo == pytest.approx(2 * stats.t.ppf(0.975, dof) * math.sqrt(a + b))
    one = seed_mean(score, seeds[:1], n_boot=500)  # one seed: the sentence bootstrap alone
    assert one.interval()[2] - one.interval()[1] == pytest.approx(2 * stats.norm.ppf(0.975) * one.se)


def test_model_names_and_pooled_tables() -> None:
    assert finetuned_name("mnli", 0) == "mnli" and finetuned_name("squad", 2) == "squad@2"
    assert split_name("mnli") == ("mnli", 0) and split_name("parsing@3") == ("parsing", 3)
    assert split_name("pretrained") == ("pretrained", None)
    assert split_name("mnli-s0-step10") == ("mnli-s0-step10", None)  # a snapshot's name
    P = get_profile("tiny", seeds=(0, 1))
    assert probe_models(P) == ("random", "pretrained", "mnli", "mnli@1", "squad", "squad@1",
                               "parsing", "parsing@1")
    mix = pd.DataFrame([dict(model=m, task="pos", seed=p, layer=k, weight=w)
                        for m, ws in (("pretrained", (1 / 3,) * 3), ("mnli", (1, 0, 0)),
                                      ("mnli@1", (0.5, 0, 0.5)))
                        for p in (0, 1) for k, w in enumerate(ws)])
    pooled_mix = pooled(mix)
    assert set(pooled_mix["model"]) == {"pretrained", "mnli"}
    assert pooled_mix.groupby(["model", "seed"]).size().eq(3).all()  # one mix per group
    w = mix_weights(mix, "mnli")  # seeds 0 and 1 averaged, layer by layer
    assert w.loc["pos"].tolist() == pytest.approx([0.75, 0.0, 0.25])
    h = mix_entropy(mix)
    assert h[("mean", "pretrained")]["pos"] == pytest.approx(1.0)
    assert h[("mean", "mnli")]["pos"] == pytest.approx((0.0 + math.log(2) / math.log(3)) / 2)


def test_weights_entropy_tells_a_bimodal_mix_from_a_uniform_one() -> None:
    layers = 7  # L = 6: uniform weights and two peaks at 0 and L both centre at L / 2 = 3
    uniform, two = np.full(layers, 1 / layers), np.zeros(layers)
    two[[0, -1]] = 0.5
    assert (np.arange(layers) * uniform).sum() == pytest.approx(3.0)
    assert (np.arange(layers) * two).sum() == pytest.approx(3.0)
    assert weights_entropy(uniform) == pytest.approx(1.0)
    assert weights_entropy(two) == pytest.approx(math.log(2) / math.log(7))
    assert weights_entropy(np.eye(layers)[2]) == pytest.approx(0.0)


def test_method_numbers_come_from_the_profile_and_the_config() -> None:
    nums = method_numbers(get_profile("tiny"))
    assert nums["probe_hidden"] == get_profile("tiny").probe_hidden
    assert nums["probe_hidden_tenney"] == get_profile("paper").probe_hidden
    assert nums["probe_n_ft_seeds"] == len(get_profile("tiny").seeds)
    assert float(nums["probe_forgetting_fraction"]) == CLAIM_MARGINS["forgetting"].value


def test_seed_mean_change_interval_covers_the_true_change() -> None:
    """Coverage by simulation: 400 draws of 200 sentences, three fine-tuning seeds (each shifts
    the probe's latent margin by ``c + 0.1 z`` and adds per-sentence noise) and three probe
    seeds. The true change is the population's (over sentences, fine-tuning and probe seeds);
    the 95 % interval of the seed-mean change should cover it 93–97 % of the time. (With no
    seed-level shift at all, tau = 0, the same interval is conservative, about 98 %: the
    per-sentence noise of the fine-tuning seeds is then in both the seeds' spread and the
    sentence bootstrap.)"""
    n, n_ft, n_probe, sf, sp, tau, c, th = 200, 3, 3, 0.5, 0.3, 0.1, -0.1, -0.5
    g = np.random.default_rng(99).normal(size=500_000)
    truth = 100 * (stats.norm.sf((th - c - tau * g) / math.sqrt(1 + sf ** 2 + sp ** 2)).mean()
                   - stats.norm.sf(th / math.sqrt(1 + sp ** 2)))
    rng = np.random.default_rng(0)
    score = counts_score("accuracy")
    hits = 0

    def counts(z: np.ndarray, shift: float, extra: np.ndarray | float) -> np.ndarray:
        return np.stack([_acc(z + extra + sp * rng.normal(size=n) > th - shift)
                         for _ in range(n_probe)])

    for r in range(400):
        z = rng.normal(size=n)  # each sentence's difficulty, shared by every model
        pre = counts(z, 0.0, 0.0)
        fts = [counts(z, c + tau * rng.normal(), sf * rng.normal(size=n)) for _ in range(n_ft)]
        _, lo, hi = seed_mean(score, fts, pre, n_boot=300, seed=r).interval()
        hits += lo <= truth <= hi
    assert 0.93 <= hits / 400 <= 0.97
