"""The drift stage: tokenisation, token samples, cached encoder comparison, summaries."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pandas as pd
import pytest
import torch

import bertdrift
from bertdrift import drift, drift_evidence
from bertdrift.data import domains
from bertdrift.models import load_tokenizer, tiny_bert
from bertdrift.similarity import rdm_vectors

torch.set_num_threads(2)


def test_word_tokenize_and_split_sentences() -> None:
    assert domains.word_tokenize("Don't stop, it's 3.5 well-known U.S. cases!") == [
        "Don't", "stop", ",", "it's", "3.5", "well-known", "U.S", ".", "cases", "!"]
    assert domains.word_tokenize("Boulter 's role") == ["Boulter", "'s", "role"]
    assert domains.split_sentences("It rained. Then it stopped! Did it? yes.") == [
        "It rained.", "Then it stopped!", "Did it? yes."]


def test_token_prefix() -> None:
    sents = [["a"] * 4, ["b"] * 5, ["c"] * 6]
    assert drift.token_prefix(sents, 5) == sents[:2]
    with pytest.raises(drift.DriftError, match="lower rsa_tokens"):
        drift.token_prefix(sents, 100)


def test_layer_drift_identical_and_perturbed() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 200, 16))
    noisy = base + rng.normal(size=base.shape) * np.array([0.0, 0.3, 1.5])[:, None, None]
    out = drift.layer_drift(base, noisy, n_boot=20)
    assert out["layers"] == [0, 1, 2]
    assert out["rsa"][0] == pytest.approx(1.0) and out["cka"][0] == pytest.approx(1.0)
    assert out["rsa"][2] < out["rsa"][1] < 1.0  # more noise, less similar
    assert all(lo <= v <= hi for lo, v, hi in zip(out["rsa_low"], out["rsa"], out["rsa_high"],
                                                  strict=True))
    assert np.asarray(out["rsa_map"]).shape == (3, 3)


def test_rsa_replicates_are_the_bootstrap_and_their_variance_is_right() -> None:
    boot = importlib.import_module("bertdrift.similarity.bootstrap")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 157, 12))
    y = x + rng.normal(size=x.shape) * 0.8
    reps = boot.rsa_replicates(x, y, n_boot=25, n_blocks=20, seed=4, max_bytes=1 << 14)
    iv = boot.bootstrap(x, y, n_boot=25, n_blocks=20, seed=4)
    np.testing.assert_allclose(reps.estimate, iv.estimate, atol=1e-12)
    np.testing.assert_allclose(reps.product, iv.samples, atol=1e-12)
    # the linear replicate: Pearson over pairs of words weighted w_i + w_j - 1
    w = torch.tensor([[2.0, 0.0, 1.0, 1.0, 2.0]])  # 5 blocks of 4 words
    xs, ys = x[0, :20], y[0, :20]
    one = boot.rsa_replicates(xs, ys, n_blocks=5, weights=w)
    word_w = np.repeat(w[0].numpy(), 4)
    iu = np.triu_indices(20, 1)
    pw = word_w[iu[0]] + word_w[iu[1]] - 1
    va, vb = (rdm_vectors(t)[0].numpy() for t in (xs, ys))
    ma, mb = (pw * va).sum() / pw.sum(), (pw * vb).sum() / pw.sum()
    ref = (pw * (va - ma) * (vb - mb)).sum() / np.sqrt(
        (pw * (va - ma) ** 2).sum() * (pw * (vb - mb) ** 2).sum())
    assert float(one.linear[0, 0]) == pytest.approx(ref, abs=1e-10)
    # over 200 draws of 200 words, the corrected variance matches the statistic's spread;
    # the product weights' alone overstate it (pair-level noise counted three times)
    x = rng.normal(size=(200, 200, 16))
    y = x + rng.normal(size=x.shape)
    reps = boot.rsa_replicates(x, y, n_boot=100)
    true_var = float(reps.estimate.var())
    fixed = float(boot.replicate_variance(reps.product, reps.linear).mean())
    naive = float(reps.product.var(0).mean())
    assert fixed == pytest.approx(true_var, rel=0.15)
    assert naive > 1.15 * true_var


def test_layer_drift_keeps_paired_rsa_replicates() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 120, 8))
    tuned = base + rng.normal(size=base.shape)
    a = drift.layer_drift(base, tuned, n_boot=10, maps=False, intervals=("rsa",),
                          measures=("rsa",))
    b = drift.layer_drift(base, tuned + 0.3 * rng.normal(size=base.shape), n_boot=10,
                          maps=False, intervals=("rsa",), measures=("rsa",))
    assert np.asarray(a["boot"]["rsa"]).shape == (10, 2)
    assert np.asarray(a["boot"]["rsa_linear"]).shape == (10, 2)
    rows = drift_evidence.stack(a)
    assert rows.shape == (21, 2) and rows[0].tolist() == a["rsa"]
    # the same words and bootstrap seed: the replicates of two comparisons are paired (the
    # same blocks drawn), so two similar comparisons move together
    da = np.asarray(a["boot"]["rsa"]) - a["rsa"]
    db = np.asarray(b["boot"]["rsa"]) - b["rsa"]
    assert np.corrcoef(da[:, 1], db[:, 1])[0, 1] > 0.8


def test_compare_encoders_caches(tmp_path) -> None:
    base_dir, tuned_dir = tmp_path / "base", tmp_path / "tuned"
    tok = load_tokenizer(None)
    for path, seed in ((base_dir, 0), (tuned_dir, 1)):
        model = tiny_bert(num_layers=2, hidden=32, vocab=tok.vocab_size, seed=seed)
        model.save_pretrained(path)
        tok.save_pretrained(path)
    profile = bertdrift.get_profile("tiny", cache_dir=str(tmp_path / "cache"), rsa_tokens=60,
                                    rsa_bootstrap=10, device="cpu")
    sents = [f"the cat number {i} sat on the mat today .".split() for i in range(12)]
    same = drift.compare_encoders(base_dir, sents, profile, chapter="t", name="same",
                                  base_path=str(base_dir))
    assert np.allclose(same["rsa"], 1.0) and np.allclose(same["cka"], 1.0)
    other = drift.compare_encoders(tuned_dir, sents, profile, chapter="t", name="other",
                                   base_path=str(base_dir))
    assert other["meta"]["n_tokens"] == 60 and len(other["rsa"]) == 3
    assert np.asarray(other["boot"]["rsa"]).shape == (10, 3)
    assert max(other["rsa"]) < 0.999  # two different random models
    files = list((tmp_path / "cache" / "results" / "t").glob("other-*.json"))
    assert len(files) == 1
    again = drift.compare_encoders(tuned_dir, sents, profile, chapter="t", name="other",
                                   base_path=str(base_dir))
    assert again == other


def _seed_encoders(tmp_path, monkeypatch, n_seeds: int):
    """A tiny random "pre-trained" encoder and ``n_seeds`` different ones standing in for
    fine-tuning seeds (``finetuned_path`` patched), twelve sentences for every domain, and a
    profile over them."""
    tok = load_tokenizer(None)
    dirs = {}
    for i, name in enumerate(["base", *(f"seed{s}" for s in range(n_seeds))]):
        dirs[name] = tmp_path / name
        tiny_bert(num_layers=2, hidden=32, vocab=tok.vocab_size, seed=i).save_pretrained(
            dirs[name])
        tok.save_pretrained(dirs[name])
    sents = [f"the cat number {i} sat on the mat today .".split() for i in range(12)]
    monkeypatch.setattr(drift, "finetuned_path", lambda task, p, seed=0, freeze=0:
                        dirs[f"seed{seed}"])
    monkeypatch.setattr(drift, "domain_sentences", lambda *a, **k: sents)
    return bertdrift.get_profile("tiny", model=str(dirs["base"]), rsa_tokens=60,
                                 rsa_bootstrap=10, ood_sentences=12, device="cpu",
                                 cache_dir=str(tmp_path / "cache"))


def test_drift_frame_over_seeds_and_their_spread(tmp_path, monkeypatch) -> None:
    """Two fine-tuning seeds (two different small encoders) give two rows per layer and a
    spread; the same seed twice would give none."""
    profile = _seed_encoders(tmp_path, monkeypatch, n_seeds=2)
    frame = drift.drift_frame(profile, ["mnli"], seeds=[0, 1], progress=False)
    assert sorted(frame["seed"].unique()) == [0, 1] and len(frame) == 2 * 3
    spread = drift.seed_spread(frame)
    assert list(spread["seeds"]) == [2, 2, 2]
    layer2 = frame[frame.layers == 2]["rsa"]
    assert spread.loc[("mnli", 2), "min"] == pytest.approx(layer2.min())
    assert spread.loc[("mnli", 2), "std"] == pytest.approx(layer2.std())
    assert layer2.iloc[0] != pytest.approx(layer2.iloc[1])  # different seeds, different drift


def test_change_summary() -> None:
    frame = pd.DataFrame({"layers": [0, 1, 2, 3, 4], "rsa": [1.0, 0.99, 0.98, 0.9, 0.6],
                          "task": "x", "seed": 0, "domain": "x", "in_domain": True})
    row = drift.change_summary(frame).iloc[0]
    assert row["top"] == pytest.approx(0.4)
    assert row["lower_half"] == pytest.approx(0.015)
    assert row["top_share"] == pytest.approx(0.5 / 0.53)
    assert row["half_depth"] == 4


def test_unknown_domain() -> None:
    with pytest.raises(bertdrift.DataError, match="choose one of"):
        domains.all_domain_sentences("klingon", bertdrift.get_profile("tiny"))


@pytest.mark.skipif(not os.environ.get("BERTDRIFT_DATA"), reason="needs the data directory")
@pytest.mark.parametrize("domain", ["mnli", "squad", "parsing", "wikitext", "gum"])
def test_domain_sentences_real_data(domain: str) -> None:
    profile = bertdrift.get_profile("tiny")
    sents = domains.domain_sentences(domain, profile, n_sentences=20, seed=1)
    assert len(sents) == 20
    assert all(3 <= len(s) <= 60 and all(isinstance(w, str) and w for w in s) for s in sents)
    assert sents == domains.domain_sentences(domain, profile, n_sentences=20, seed=1)
    assert sents != domains.domain_sentences(domain, profile, n_sentences=20, seed=2)


def test_shared_sentences_take_an_equal_share_from_each_task(data_dir) -> None:
    profile = bertdrift.get_profile("tiny", rsa_tokens=300, ood_sentences=50)
    sents = drift.shared_sentences(profile)
    by_task = [drift.token_prefix(domains.domain_sentences(t, profile, n_sentences=50), 100)
               for t in ("mnli", "squad", "parsing")]
    assert sents == [s for part in by_task for s in part]
    assert sum(map(len, sents)) >= 300


def test_seed_and_domain_evidence_gather_paired_rows(tmp_path, monkeypatch) -> None:
    """Three "seeds" (small random encoders): pre vs each seed and every pair of seeds, with
    their replicates, from the cached comparisons; the same for every domain."""
    profile = _seed_encoders(tmp_path, monkeypatch, n_seeds=3)
    ev = drift.seed_evidence(profile, ["mnli"], seeds=[0, 1, 2])["mnli"]
    assert ev.seeds == [0, 1, 2] and sorted(ev.pairs) == [(0, 1), (0, 2), (1, 2)]
    assert ev.pre[0].shape == (1 + 2 * 10, 3)
    frame = drift.drift_frame(profile, ["mnli"], seeds=[0, 1, 2], progress=False)
    assert ev.pre[1][0].tolist() == frame[frame.seed == 1]["rsa"].tolist()  # the same cache
    table = drift_evidence.change_table({"mnli": ev})
    assert table["change_low"].notna().all() and len(table) == 3
    doms = drift.domain_evidence(profile, ["mnli"], ["mnli", "wikitext"], seeds=[0, 1])
    assert sorted(doms["mnli"]) == ["mnli", "wikitext"]
    assert sorted(doms["mnli"]["wikitext"]) == [0, 1]
