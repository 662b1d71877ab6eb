"""Every number a chapter glues into its prose, computed by a package function from hand-made
tables whose right answers are worked out here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bertdrift import ablations, claims, drift, get_profile
from bertdrift.data import domains
from bertdrift.finetune import report
from bertdrift.similarity.geometry import geometry_numbers, layer_geometry


# -- chapter 1 ----------------------------------------------------------------------------------
def test_geometry_numbers_name_the_peak_and_the_extremes() -> None:
    table = pd.DataFrame({"layer": [0, 1, 2, 3], "anisotropy": [0.06, 0.25, 0.1, 0.061],
                          "cos_to_previous": [np.nan, 0.5, 0.9, 0.3], "norm": [1, 2, 3, 4]})
    n = geometry_numbers(table, n_words=123)
    assert n == {"setup_n_words": 123, "setup_aniso_emb": 0.06, "setup_aniso_top": 0.06,
                 "setup_aniso_max": 0.25, "setup_aniso_max_layer": 1, "setup_min_cos": 0.3,
                 "setup_min_cos_layer": 3}


def test_layer_geometry_takes_a_plain_array() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3, 8)).astype(np.float32)
    x[:, 2] = x[:, 1]  # layer 2 copies layer 1
    table = layer_geometry(x, sample=50)
    assert list(table["layer"]) == [0, 1, 2]
    assert table.loc[2, "cos_to_previous"] == pytest.approx(1.0)


# -- chapter 2 ----------------------------------------------------------------------------------
def _score_table() -> pd.DataFrame:
    rows = []
    for task, (m1, m2), ours, bases in (
            ("mnli", ("dev_matched_accuracy", "dev_mismatched_accuracy"), (52.04, 53.0),
             (35.0, 33.0)),
            ("squad", ("dev_f1", "dev_exact_match"), (25.66, 18.5), (30.0, 12.0)),
            ("parsing", ("dev_las", "dev_uas"), (60.0, 70.0), (10.0, 20.0))):
        rows += [{"task": task, "system": "ours (1 seed(s))", "metric": m1, "score": ours[0]},
                 {"task": task, "system": "ours (1 seed(s))", "metric": m2, "score": ours[1]}]
        rows += [{"task": task, "system": f"baseline: b{i}", "metric": m1, "score": b}
                 for i, b in enumerate(bases)]
        rows += [{"task": task, "system": "published BERT-base", "metric": m1, "score": 99.0}]
    return pd.DataFrame(rows)


def test_headline_numbers_of_chapter_2() -> None:
    history = pd.DataFrame({"train_seconds": [60.0, 30.0, 90.0]})
    n = report.headline_numbers(_score_table(), history, get_profile("tiny"))
    assert n["ft_mnli_m"] == 52.0 and n["ft_mnli_mm"] == 53.0 and n["ft_mnli_base"] == 35.0
    assert n["ft_squad_f1"] == 25.7 and n["ft_squad_em"] == 18.5 and n["ft_squad_base"] == 30.0
    assert n["ft_ud_las"] == 60.0 and n["ft_ud_uas"] == 70.0 and n["ft_ud_base"] == 20.0
    assert n["ft_minutes"] == 3.0 and n["ft_profile"] == "tiny"
    assert "ft_verdict" not in n  # decided per seed: needs the runs
    assert n["ft_floors"].startswith("MNLI 60 % accuracy")
    assert n["ft_seeds"] == len(get_profile("tiny").seeds) and n["ft_precision"] in ("bf16 autocast", "float32")
    assert f"{get_profile('tiny').mnli.train_size:,} pairs" in n["ft_data"]


def test_baseline_verdict_decides_per_seed_and_against_the_floor() -> None:
    comp = {"mnli": {"scores": [65.0, 70.0, 50.0], "baseline": 52.0},
            "parsing": {"scores": [80.0, 81.0], "baseline": 20.0},
            "squad": {"scores": [40.0, 45.0], "baseline": 11.0}}
    text = report.baseline_verdict(comp)
    # the MNLI mean (61.7) clears the floor, but one seed is below the baseline
    assert "MNLI: 2 of 3 seeds above the best trivial baseline (52.0), seed mean 61.7 against " \
           "a floor of 60: not learned" in text
    assert "parsing: 2 of 2 seeds above" in text and "floor of 75: learned" in text
    assert "SQuAD: 2 of 2 seeds above" in text and "floor of 50: not learned" in text


def test_competence_record_keeps_every_seed() -> None:
    class Run:
        def __init__(self, score: float) -> None:
            self.metrics = {"dev_las": score}

    runs = {("parsing", 1): Run(70.0), ("parsing", 0): Run(60.0)}
    rec = report.competence_record(runs, _score_table())["competence"]["parsing"]
    assert rec == {"metric": "dev_las", "scores": [60.0, 70.0], "baseline": 20.0,
                   "baseline_name": "b1"}


# -- chapters 4 and 6 ---------------------------------------------------------------------------
def _drift_frame() -> pd.DataFrame:
    rows = []
    for task, slope in (("mnli", 0.02), ("parsing", 0.1)):
        for seed in (0, 1):
            for layer in range(4):
                rsa = 1 - slope * layer - 0.01 * seed
                rows.append({"task": task, "seed": seed, "domain": task, "in_domain": True,
                             "layers": layer, "rsa": rsa, "rsa_low": rsa - 0.01,
                             "rsa_high": rsa + 0.01, "cka": 1 - slope * layer ** 2})
    return pd.DataFrame(rows)


def test_rsa_by_task_and_chapter_4_numbers() -> None:
    frame = _drift_frame()
    by = drift.rsa_by_task(frame, ["mnli", "parsing"])
    assert by["parsing"] == pytest.approx([1 - 0.1 - 0.005, 1 - 0.2 - 0.005, 1 - 0.3 - 0.005])
    summary = drift.change_summary(frame)
    n = drift.rsa_numbers(frame, summary, get_profile("tiny"))
    assert n["rsa_top_layer"] == 3 and n["rsa_n_seeds"] == len(get_profile("tiny").seeds)
    assert n["rsa_top_parsing"] == f"{1 - 0.3 - 0.005:.4f}"
    assert n["rsa_ci_mnli"] == f"[{1 - 0.06 - 0.005 - 0.01:.4f}, {1 - 0.06 - 0.005 + 0.01:.4f}]"
    assert n["rsa_half_parsing"] == 2  # change 0.1, 0.2, 0.3: half of 0.3 first reached at 2
    assert n["rsa_cka_rank"] == "1.00"  # both decrease with depth: same ranking
    assert n["rsa_share_parsing"] == "83 %"  # (0.2 + 0.3) / 0.6 for seed 0


def test_domain_gaps_and_chapter_6_numbers() -> None:
    rows = []
    for task in ("mnli", "parsing"):
        for domain, rsa in (("mnli", 0.8), ("parsing", 0.6), ("wikitext", 0.9), ("gum", 0.7)):
            own = 0.5 if domain == task else rsa
            rows.append({"task": task, "domain": domain, "layers": 2, "rsa": own,
                         "rsa_low": own - 0.1, "rsa_high": own + 0.1})
    frame = pd.DataFrame(rows)
    doms = ("mnli", "parsing", "wikitext", "gum")
    gaps = drift.domain_gaps(frame, ["mnli", "parsing"], doms)
    assert gaps.loc["mnli", "other"] == pytest.approx((0.6 + 0.9 + 0.7) / 3)
    assert gaps.loc["mnli", "gap"] == pytest.approx((0.6 + 0.9 + 0.7) / 3 - 0.5)
    assert gaps.loc["parsing", "ratio"] == pytest.approx(((0.2 + 0.1 + 0.3) / 3) / 0.5)
    assert gaps.loc["parsing", "unseen"] == pytest.approx(0.8)
    n = drift.ood_numbers(gaps, frame, get_profile("tiny"), n_domains=len(doms))
    assert n["ood_own_ci_mnli"] == "[0.4000, 0.6000]" and n["ood_n_other"] == 3
    assert n["ood_gap_parsing"] == f"{(0.8 + 0.9 + 0.7) / 3 - 0.5:+.4f}"


def test_sample_table() -> None:
    table = domains.sample_table({"a": [["x", "y"], ["z"]], "b": []})
    assert table.to_dict("list") == {"domain": ["a", "b"], "sentences": [2, 0],
                                     "words": [3, 0], "example": ["x y", ""]}


# -- chapter 5 ----------------------------------------------------------------------------------
def test_ablation_numbers_and_record() -> None:
    sweep = pd.DataFrame([{"task": t, "k": k, "seed": s, "metric": "m", "score": v + s}
                          for t, scores in (("mnli", {0: 50, 4: 45, 6: 40}),
                                            ("parsing", {0: 60, 4: 30, 6: 20}))
                          for k, v in scores.items() for s in (0, 2)])
    repl = pd.DataFrame([{"task": t, "j": 0, "side": side, "score": 51.0}
                         for t in ("mnli", "parsing") for side in ("top", "bottom")])
    rev = pd.DataFrame([{"task": t, "side": side, "max_reverted": i}
                        for i, (t, side) in enumerate([("mnli", "top"), ("mnli", "bottom"),
                                                       ("parsing", "top"),
                                                       ("parsing", "bottom")])])
    baseline = {"mnli": 35.0, "parsing": 10.0}
    n = ablations.ablation_numbers(sweep, repl, rev, get_profile("tiny"), 4, 6, baseline)
    assert n["abl_k0_mnli"] == "51.0" and n["abl_kstar_parsing"] == "31.0"
    assert n["abl_kall_parsing"] == "21.0" and n["abl_drop_parsing"] == "+30.0"
    assert n["abl_rev_bottom_parsing"] == 3 and n["abl_base_mnli"] == "51.0"
    assert n["abl_train_mnli"] == get_profile("tiny").mnli.train_size
    # the freezing record (drops as fractions of the margin): tests/test_ablations.py
    rec = ablations.freezing_record(sweep, 4, 6, baseline)
    assert rec["freezing"]["parts"]["mnli drop at k*"]["values"] == [pytest.approx(5 / 16)]
    assert rec["freezing"]["parts"]["parsing − mnli"]["values"] == [pytest.approx(30 / 51 - 5 / 16)]


# -- the claims page ----------------------------------------------------------------------------
def test_record_and_judge_returns_each_claim_of_the_chapter(tmp_path) -> None:
    profile = get_profile("tiny", cache_dir=str(tmp_path))
    part = {"values": [0.1, 0.12, 0.11], "se": 0.01, "null": 0.0, "side": "above",
            "models": ["parsing"]}
    record = {"top_layers": {"parts": {"parsing": part}},
              "parsing_deeper": {"parts": {"parsing − mnli": dict(part, models=["parsing",
                                                                                 "mnli"])}}}
    # without chapter 2's record of the models' scores, nothing is judged
    out = claims.record_and_judge(profile, "04_rsa", record)
    assert set(out) == {f"{p}_{k}" for p in ("rsa_top", "rsa_deep")
                        for k in ("ours", "verdict", "why", "effect", "interval", "null",
                                  "margin", "rule")}
    assert out["rsa_top_verdict"] == "not judged" and "02_finetuning" in out["rsa_top_why"]
    # parsing learned its task, MNLI did not: the claim resting on parsing alone is judged
    claims.record(profile, "02_finetuning", {"competence": {
        "parsing": {"scores": [80.0, 81.0, 79.0], "baseline": 20.0},
        "mnli": {"scores": [44.0, 45.0, 43.0], "baseline": 35.4}}})
    out = claims.record_and_judge(profile, "04_rsa", record)
    assert out["rsa_top_verdict"] == "agree" and out["rsa_deep_verdict"] == "not judged"
    assert "mnli: seed mean 44.0 below the floor" in out["rsa_deep_why"]
    assert claims.load(profile, "04_rsa") == record
    counts = claims.verdict_counts(claims.claims_table(profile))
    assert counts["claims_agree"] == 1 and counts["claims_not_judged"] == 1
    assert counts["claims_total"] == len(claims.CLAIMS)


def test_replacement_tolerance_is_the_seed_noise() -> None:
    assert ablations.replacement_tolerance({"mnli": [50.0, 52.0, 54.0], "squad": [20.0]}) == 2.0
    assert ablations.replacement_tolerance({"mnli": [50.0, 50.1, 50.2]}) == 1.0  # the floor
    assert ablations.ablation_seeds(get_profile("tiny")) == [0]
    assert ablations.ablation_seeds(get_profile("paper")) == [0, 1, 2]
