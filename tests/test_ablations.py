"""Ablations: the speed-up arithmetic, reverting layers, frozen weights, the cached sweep."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from _finetune_fixtures import mnli_data, tiny_encoder, tiny_tokenizer
from safetensors.torch import load_file

import bertdrift.ablations as ab
import bertdrift.finetune as ft
import bertdrift.models
from bertdrift import get_profile
from bertdrift.errors import ConfigError
from bertdrift.finetune import evaluate_task_model, load_task_model, train_task
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
    after = load_file(str(run.path / "task_model.safetensors"))
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
    assert ab.depths(P, 6) == [0, 2, 4, 6]
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
