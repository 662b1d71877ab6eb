"""Ablations: the speed-up arithmetic, reverting layers, frozen weights, the cached sweep."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from _finetune_fixtures import mnli_data, tiny_encoder, tiny_tokenizer
from scipy import stats

import bertdrift.ablation_stats as ab_stats
import bertdrift.ablations as ab
import bertdrift.finetune as ft
import bertdrift.models
from bertdrift import get_profile, inference
from bertdrift.config import CLAIM_MARGINS
from bertdrift.errors import ConfigError
from bertdrift.finetune import evaluate_task_model, load_task_model, train_task
from bertdrift.inference import InferenceError, Part
from bertdrift.models import encoder_layers, tiny_bert, weights_fingerprint

SMALL = {"mnli_max_length": 32, "mnli_batch_size": 4, "mnli_epochs": 2, "mnli_lr": 1e-3,
         "mnli_train_size": 24, "mnli_eval_size": 8}


def _profile(tmp_path, **extra):
    return get_profile("tiny", cache_dir=str(tmp_path / "cache"), device="cpu", **SMALL, **extra)


@pytest.mark.parametrize(("L", "k", "E", "expected"), [
    (6, 5, 3, 24 / 14),   # 3 (6 + 2) / (5 + 9): the 1.7x of the issue
    (6, 6, 3, 3.0),       # nothing trains in the encoder: E full forwards vs one
    (12, 8, 3, 60 / 44),  # the paper's depth: 3 (12 + 8) / (8 + 36)
    (6, 3, 1, 1.0),       # one epoch: caching saves nothing
    (6, 0, 3, 1.0),       # nothing frozen, nothing cached
    (6, 2, 2, 2 * (6 + 8) / (2 + 24)),
])
def test_predicted_speedup_matches_hand_worked_values(L, k, E, expected):
    assert ab.predicted_speedup(L, k, E) == pytest.approx(expected)


def test_predicted_speedup_with_a_dearer_backward_pass():
    # b = 3: plain 3 (6 + 3) = 27 layer passes, cached 5 + 4 * 3 = 17
    assert ab.predicted_speedup(6, 5, 3, backward_cost=3.0) == pytest.approx(27 / 17)


def test_predicted_speedup_rejects_impossible_depths():
    with pytest.raises(ConfigError):
        ab.predicted_speedup(6, 7, 3)


def test_analogous_depth_and_reverted_indices():
    assert ab.analogous_depth(12) == 8 and ab.analogous_depth(6) == 4
    assert ab.reverted_indices("top", 2, 6) == [4, 5]
    assert ab.reverted_indices("bottom", 2, 6) == [0, 1]
    assert ab.reverted_indices("top", 0, 6) == []
    with pytest.raises(ConfigError):
        ab.reverted_indices("middle", 1, 6)


def _layer_prints(model):
    return [weights_fingerprint(layer) for layer in encoder_layers(model)]


def test_reverting_all_layers_gives_pretrained_and_none_keeps_finetuned():
    pre, tuned = tiny_bert(num_layers=3, seed=1), tiny_bert(num_layers=3, seed=2)
    ft_prints = _layer_prints(tuned)
    state = [{k: v.clone() for k, v in layer.state_dict().items()}
             for layer in encoder_layers(tuned)]
    emb = weights_fingerprint(tuned.embeddings)
    ab.revert_layers(tuned, pre, "top", 3, state)
    assert _layer_prints(tuned) == _layer_prints(pre)
    assert weights_fingerprint(tuned.embeddings) == emb  # embeddings are never reverted
    ab.revert_layers(tuned, pre, "bottom", 0, state)
    assert _layer_prints(tuned) == ft_prints
    ab.revert_layers(tuned, pre, "bottom", 1, state)
    got = _layer_prints(tuned)
    assert got[0] == _layer_prints(pre)[0] and got[1:] == ft_prints[1:]


def test_frozen_layers_are_unchanged_by_training(tmp_path):
    enc = tiny_encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    run = train_task("mnli", _profile(tmp_path), tmp_path / "run", freeze=1, data=mnli_data(),
                     encoder=enc, tokenizer=tiny_tokenizer(tmp_path), progress=False)
    after = load_task_model(run).state_dict()
    frozen = [k for k in before if k.startswith(("embeddings.", "encoder.layer.0."))]
    trained = [k for k in before if k.startswith("encoder.layer.1.")]
    assert frozen and trained
    for k in frozen:
        assert torch.equal(after[f"encoder.{k}"], before[k]), k
    assert any(not torch.equal(after[f"encoder.{k}"], before[k]) for k in trained)


def test_replacement_scores_ends_are_the_finetuned_and_the_reverted_model(tmp_path):
    tok = tiny_tokenizer(tmp_path)
    P = _profile(tmp_path)
    run = train_task("mnli", P, tmp_path / "run", data=mnli_data(), encoder=tiny_encoder(),
                     tokenizer=tok, progress=False)
    pre = tiny_encoder(seed=5)
    frame = ab.replacement_scores("mnli", P, run=run, pretrained=pre, data=mnli_data(),
                                  tokenizer=tok, progress=False)
    assert set(frame["side"]) == {"top", "bottom"}
    assert sorted(frame["j"].unique().tolist()) == [0, 1, 2]
    ends = frame[frame["j"].isin([0, 2])].groupby("j")["score"].nunique()
    assert (ends == 1).all()  # j = 0 and j = L are the same model from either side

    def score(model):
        data = mnli_data()
        data.evals = {"dev_matched": data.evals["dev_matched"]}
        return evaluate_task_model("mnli", model, P, data=data, tokenizer=tok)[
            "dev_matched_accuracy"]

    tuned = load_task_model(run)
    assert frame.query("j == 0")["score"].iloc[0] == pytest.approx(score(tuned))
    bertdrift.models.copy_layers(pre, tuned.encoder, [0, 1])
    assert frame.query("j == 2")["score"].iloc[0] == pytest.approx(score(tuned))
    bottom1 = load_task_model(run)
    bertdrift.models.copy_layers(pre, bottom1.encoder, [0])
    got = frame.query("side == 'bottom' and j == 1")["score"].iloc[0]
    assert got == pytest.approx(score(bottom1))
    assert (frame["loss"] == frame.query("j == 0")["score"].iloc[0] - frame["score"]).all()


def test_freezing_sweep_trains_each_depth_once_and_caches(tmp_path, monkeypatch):
    tok = tiny_tokenizer(tmp_path)
    monkeypatch.setattr(ft.get_task("mnli").__class__, "load", lambda self, p: mnli_data())
    monkeypatch.setattr(bertdrift.models, "load_encoder",
                        lambda name=None, device="cpu": tiny_encoder())
    monkeypatch.setattr(bertdrift.models, "load_tokenizer", lambda name=None: tok)
    monkeypatch.setattr(ab, "model_depth", lambda profile: 2)
    P = _profile(tmp_path)
    frame = ab.freezing_sweep(P, ["mnli"], ks=[0, 1, 2], progress=False)
    assert frame["k"].tolist() == [0, 1, 2]
    assert frame["frozen_fraction"].tolist() == [0, 0.5, 1]
    assert (frame["metric"] == "dev_matched_accuracy").all()
    assert frame["score"].between(0, 100).all()
    drops = ab.freezing_drop(frame, 2)
    assert drops["mnli"] == pytest.approx(frame["score"].iloc[0] - frame["score"].iloc[2])

    def no_training(*a, **k):
        raise AssertionError("a cached sweep must not train")

    monkeypatch.setattr(ft, "get_finetuned", no_training)
    again = ab.freezing_sweep(P, ["mnli"], ks=[0, 1, 2], progress=False)
    pd.testing.assert_frame_equal(again, frame, check_dtype=False)
    assert list((P.cache_path / "results" / "ablations").glob("freezing_*.csv"))


def test_revertible_stops_at_the_first_loss_of_a_point():
    rows = [{"task": "t", "seed": 0, "side": side, "j": j, "loss": loss}
            for side, losses in (("top", [0, 0.2, 0.9, 3.0, 0.1]),
                                 ("bottom", [0, 1.5, 0.0, 0.0, 5.0]))
            for j, loss in enumerate(losses)]
    got = ab.revertible(pd.DataFrame(rows)).set_index("side")
    assert got.loc["top", "max_reverted"] == 2 and got.loc["top", "layers"] == "2,3"
    assert got.loc["bottom", "max_reverted"] == 0 and got.loc["bottom", "layers"] == "none"


def test_sweep_profile_scales_training_sets():
    P = get_profile("tiny")
    S = ab.sweep_profile(P, train_fraction=0.1, epochs=1, eval_size=100)
    assert S.mnli.train_size == round(P.mnli.train_size * 0.1)
    assert S.parsing.train_size == round(P.parsing.train_size * 0.1)
    assert S.squad.epochs == 1 and S.mnli.eval_size == 100
    with pytest.raises(ConfigError):
        ab.sweep_profile(get_profile("tiny", mnli_train_size=None), train_fraction=0.5)
    assert ab.depths(P, 6) == [0, 4, 6]  # tiny: none, the judged depth k* = 4, all
    assert ab.depths(get_profile("tiny", ablation_ks=None), 3) == [0, 1, 2, 3]


def test_layer_weight_change_is_zero_for_a_copy_and_localised_to_the_changed_layer():
    pre = tiny_bert(seed=0)
    same = tiny_bert(seed=0)
    assert bertdrift.models.layer_weight_change(pre, same) == pytest.approx([0.0] * 3)
    with torch.no_grad():
        for p in encoder_layers(same)[1].parameters():
            p.mul_(1.5)  # scale the top layer: relative change 0.5 there, 0 elsewhere
    change = bertdrift.models.layer_weight_change(pre, same)
    assert change == pytest.approx([0.0, 0.0, 0.5])


# -- the freezing verdict: drops as fractions of the margin, pooled spread, the curve ------------
MARGIN = CLAIM_MARGINS["freezing"].value


def _sweep(scores):
    """A sweep frame from ``{task: {k: [score per seed]}}``."""
    return pd.DataFrame([{"task": t, "k": k, "seed": s, "metric": "m", "score": float(v)}
                         for t, by_k in scores.items() for k, vs in by_k.items()
                         for s, v in enumerate(vs)])


def _verdicts(record):
    parts = {k: Part.from_record(v) for k, v in record["freezing"]["parts"].items()}
    return inference.decide_parts(parts)


def _draws(rng, mean, n, sd=0.5):
    return (mean + sd * rng.standard_normal(n)).tolist()


def test_no_drop_with_many_seeds_is_equivalent():
    rng = np.random.default_rng(0)
    mu = {"mnli": 70.0, "squad": 60.0, "parsing": 80.0}
    sweep = _sweep({t: {0: _draws(rng, m, 20), 4: _draws(rng, m, 20)} for t, m in mu.items()})
    rec = ab.freezing_record(sweep, 4, 6, {t: m - 30 for t, m in mu.items()}, min_seeds=3)
    assert set(rec) == {"freezing"}
    assert set(rec["freezing"]["parts"]) == {"mnli drop at k*", "squad drop at k*",
                                             "parsing − mnli", "parsing − squad"}
    assert "weak" not in rec["freezing"]  # the competence gate lives on the claims page
    got = _verdicts(rec)
    assert got == dict.fromkeys(got, "equivalent")
    assert rec["freezing"]["view"]["too_few_seeds"] == {} and "not_judged" not in rec["freezing"]


def test_a_big_drop_disagrees():
    rng = np.random.default_rng(1)
    # MNLI loses half of its 30-point margin at k* = 4; SQuAD and parsing lose nothing
    sweep = _sweep({"mnli": {0: _draws(rng, 70, 5), 4: _draws(rng, 55, 5)},
                    "squad": {0: _draws(rng, 60, 5), 4: _draws(rng, 60, 5)},
                    "parsing": {0: _draws(rng, 80, 5), 4: _draws(rng, 80, 5)}})
    rec = ab.freezing_record(sweep, 4, 6, {"mnli": 40.0, "squad": 30.0, "parsing": 50.0},
                             min_seeds=3)
    got = _verdicts(rec)
    assert got["mnli drop at k*"] == "disagree" and got["parsing − mnli"] == "disagree"
    assert got["squad drop at k*"] == "equivalent"
    assert inference.conjunction(list(got.values())) == "disagree"
    assert rec["freezing"]["parts"]["mnli drop at k*"]["values"][0] == pytest.approx(0.5,
                                                                                    abs=0.05)


def test_drop_fraction_and_pooled_sd_by_hand():
    # k = 0 [80, 82, 84] (mean 82, squares 8), k* [78, 79] (mean 78.5, squares 0.5), baseline 42
    sweep = _sweep({"mnli": {0: [80, 82, 84], 4: [78, 79]},
                    "parsing": {0: [70, 71, 72], 4: [60, 62]}})
    rec = ab.freezing_record(sweep, 4, 6, {"mnli": 42.0, "parsing": 20.0}, min_seeds=2)
    part = rec["freezing"]["parts"]["mnli drop at k*"]
    sd, f = math.sqrt((8 + 0.5) / 3), 3.5 / 40  # pooled over both arms, 3 dof; drop / margin
    se = sd / 40 * math.sqrt((1 - f) ** 2 / 3 + 1 / 2)  # the delta method, baseline fixed
    assert part["values"] == [pytest.approx(f)]
    assert part["seed_se"] == pytest.approx(se) and part["seed_dof"] == 3
    assert part["seed_se"] < sd / 40 * math.sqrt(1 / 3 + 1 / 2)  # less than ignoring 1 - f
    assert (part["null"], part["side"], part["margin"], part["absence"], part["models"]) == (
        MARGIN, "below", MARGIN, True, ["mnli"])
    low, high = Part.from_record(part).estimate().interval()
    t = stats.t.ppf(0.975, 3)
    assert (low, high) == (pytest.approx(f - t * se), pytest.approx(f + t * se))
    # parsing: squares 2 + 2, 3 dof; margin 71 - 20 = 51, drop 10
    fp = 10 / 51
    sep = math.sqrt(4 / 3) / 51 * math.sqrt((1 - fp) ** 2 / 3 + 1 / 2)
    diff = rec["freezing"]["parts"]["parsing − mnli"]
    assert diff["values"] == [pytest.approx(fp - f)]
    assert diff["seed_se"] == pytest.approx(math.hypot(se, sep))
    assert diff["seed_dof"] == pytest.approx(inference.welch_dof([(se**2, 3), (sep**2, 3)]))
    assert (diff["null"], diff["side"], diff["models"]) == (0.0, "above", ["parsing", "mnli"])
    # chapter 2's k = 0 seeds (k0) replace the sweep's own k = 0 rows
    one = sweep[(sweep.k != 0) | (sweep.seed == 0)]
    again = ab.freezing_record(one, 4, 6, {"mnli": 42.0, "parsing": 20.0}, min_seeds=2,
                               k0={"mnli": [80, 82, 84], "parsing": [70, 71, 72]})
    assert again == rec
    n = ab.freezing_numbers(rec)
    assert n["abl_frac_mnli"] == f"{f:+.2f} [{f - t * se:+.2f}, {f + t * se:+.2f}]"
    assert n["abl_seeds_needed"] == 2 and n["abl_kstar_seeds"] == 2
    assert n["abl_freezing_margin"] == f"{MARGIN:g}" and "allow a verdict" in n["abl_judged_text"]


def test_too_few_seeds_at_a_judged_depth_is_not_judged():
    # three seeds at k = 0, one at k*: the profile's three seeds are needed at every judged depth
    sweep = _sweep({"mnli": {0: [80, 82, 84], 4: [79]}, "parsing": {0: [70, 71, 72], 4: [60]}})
    rec = ab.freezing_record(sweep, 4, 6, {"mnli": 42.0, "parsing": 20.0}, min_seeds=3)
    for part in rec["freezing"]["parts"].values():
        assert "seed_se" not in part and len(part["values"]) == 1
        with pytest.raises(InferenceError, match="at least 2 seeds"):
            Part.from_record(part).estimate()
    assert rec["freezing"]["view"]["too_few_seeds"] == {"mnli": {"n0": 3, "nk": 1},
                                                        "parsing": {"n0": 3, "nk": 1}}
    assert rec["freezing"]["not_judged"] == (
        "the rule needs 3 seeds (the profile's seeds) at k = 0 and at k = 4; the sweep has, at "
        "k = 0 / k = 4: mnli 3 / 1, parsing 3 / 1")
    n = ab.freezing_numbers(rec)
    assert "not judged" in n["abl_judged_text"] and n["abl_kstar_seeds"] == 1
    assert n["abl_frac_mnli"].endswith("1 seed(s), no interval")
    assert n["abl_first_mnli"] == "no depth could be judged (k = 4)"
    # a k = 0 model at or below its baseline has no margin to lose a fraction of
    below = _sweep({"squad": {0: [10, 11, 12], 4: [9, 10, 11]},
                    "parsing": {0: [70, 71, 72], 4: [60, 61, 62]}})
    rec = ab.freezing_record(below, 4, 6, {"squad": 11.5, "parsing": 20.0}, min_seeds=3)
    assert rec["freezing"]["parts"]["squad drop at k*"]["values"] == []
    with pytest.raises(InferenceError):
        Part.from_record(rec["freezing"]["parts"]["parsing − squad"]).estimate()
    assert rec["freezing"]["view"]["not_judged"] == {"squad": "k = 0 not above the baseline"}
    assert "squad: k = 0 not above the baseline" in ab.freezing_numbers(rec)["abl_judged_text"]
    tiny = get_profile("tiny")  # tiny sweeps one seed: its freezing claim is not judged
    assert len(ab.ablation_seeds(tiny)) < len(tiny.seeds)


def test_the_curve_names_the_shallowest_depth_clearly_past_the_margin():
    rng = np.random.default_rng(2)
    # margin 30 points; fractions lost: 0.02 at k = 2, 0.5 at k = 4, 0.9 at k = 6
    mnli = {0: _draws(rng, 70, 4), 2: _draws(rng, 69.4, 4), 4: _draws(rng, 55, 4),
            6: _draws(rng, 43, 4)}
    parsing = {0: _draws(rng, 80, 4), 2: [60.0], 4: _draws(rng, 50, 4), 6: _draws(rng, 45, 4)}
    rec = ab.freezing_record(_sweep({"mnli": mnli, "parsing": parsing}), 4, 6,
                             {"mnli": 40.0, "parsing": 50.0}, min_seeds=3)
    first = rec["freezing"]["view"]["first_above"]
    assert first["mnli"]["k"] == 4 and first["mnli"]["low"] > MARGIN
    assert first["mnli"]["unjudged_shallower"] == []
    assert first["parsing"]["k"] == 4 and first["parsing"]["unjudged_shallower"] == [2]
    assert first["parsing"]["judged_depths"] == [4, 6]
    assert ab.freezing_numbers(rec)["abl_first_parsing"].startswith("k = 4 (")
    curve = pd.DataFrame(rec["freezing"]["view"]["curve"]).set_index(["task", "k"])
    assert curve.loc[("mnli", 2), "high"] < MARGIN  # k = 2 is clearly within the margin
    assert curve.loc[("parsing", 2), "low"] is None or np.isnan(curve.loc[("parsing", 2), "low"])
    assert "(k = 2 not judged)" in rec["freezing"]["note"]
    json.dumps(rec, allow_nan=False)  # the record is plain JSON


def test_drop_fraction_interval_covers_the_truth():
    # true fraction (80 - 76) / (80 - 40) = 0.1; three seeds per arm, sd 1.5; 400 draws
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(400):
        d = ab_stats.drop_fraction(_draws(rng, 80, 3, 1.5), _draws(rng, 76, 3, 1.5), 40.0, 3)
        low, high = inference.Estimate(d["fraction"], d["se"], d["dof"]).interval()
        hits += low <= 0.1 <= high
    assert 0.93 <= hits / 400 <= 0.97


def test_baseline_margins_say_which_tasks_are_clearly_above():
    n = ab.margin_numbers({"mnli": [60.0, 62.0, 64.0], "squad": [10.0, 12.0, 14.0]},
                          {"mnli": 35.0, "squad": 11.2})
    t = stats.t.ppf(0.975, 2) * 2 / math.sqrt(3)
    assert n["abl_margin_mnli"] == f"+27.0 [{27 - t:+.1f}, {27 + t:+.1f}]"
    assert n["abl_margins_text"].startswith("clearly above their trivial baseline")
    assert "mnli +27.0" in n["abl_margins_text"]
    assert "not clearly above it: squad +0.8" in n["abl_margins_text"]
    assert "(2 of 3 seeds above it)" in n["abl_margins_text"]
    weak = ab.margin_numbers({"squad": [10.0, 12.0, 14.0]}, {"squad": 11.2})
    assert weak["abl_margins_text"].startswith("not clearly above their trivial baseline: squad")


def test_sweep_runs_add_seeds_only_at_the_named_depths():
    runs = ab.sweep_runs(["mnli"], [0, 2, 4], [0], {4: [0, 1, 2]})
    assert runs == [("mnli", 0, 0), ("mnli", 2, 0), ("mnli", 4, 0), ("mnli", 4, 1),
                    ("mnli", 4, 2)]
    assert ab.sweep_runs(["mnli"], [0, 4], [0, 1]) == [("mnli", k, s) for k in (0, 4)
                                                       for s in (0, 1)]
    with pytest.raises(ConfigError):
        ab.sweep_runs(["mnli"], [0, 4], [0], {3: [1]})


def test_judged_seeds_follow_the_profile():
    from bertdrift.config import get_profile

    tiny = get_profile("tiny")
    assert ab.judged_seeds(tiny, 4) is None  # tiny stays quick: the claim is not judged there
    full = get_profile("tiny", ablation_judged_seeds=True)
    assert ab.judged_seeds(full, 4) == {4: list(tiny.seeds)}
