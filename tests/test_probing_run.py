"""Probing summaries on hand-made tables, and one small end-to-end run on real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bertdrift
from bertdrift.probing.run import ProbingResults, run_probing
from bertdrift.probing.summary import (
    chapter_numbers,
    expected_layers,
    format_table,
    format_verdict_table,
    mix_entropy,
    summary_table,
    uniform_centre,
    verdict_table,
)


def _edge() -> pd.DataFrame:
    rows = []
    for model, shift in (("pretrained", 0.0), ("mnli", -0.02), ("parsing", 0.01)):
        for task, base in (("pos", 0.9), ("deps", 0.8)):
            for seed, noise in ((0, -0.005), (1, 0.005)):
                rows.append(dict(model=model, task=task, seed=seed, layer="mix",
                                 score=base + shift + noise, metric="accuracy"))
                rows.append(dict(model=model, task=task, seed=seed, layer="0", score=0.5,
                                 metric="accuracy"))
    return pd.DataFrame(rows)


def test_summary_table_pools_fine_tuning_seeds() -> None:
    edge = _edge()
    seed1 = edge[edge.model == "mnli"].assign(model="mnli@1",
                                              score=lambda d: d["score"] - 0.02)
    table = summary_table(pd.concat([edge, seed1]))
    assert "mnli@1" not in table["mean"].columns  # one column per task: the seed mean
    assert table[("change", "mnli")]["deps"] == pytest.approx(-3.0)  # (-2 + -4) / 2
    # the sd runs over fine-tuning and probe seeds together
    pos = 100 * np.array([0.875, 0.885, 0.855, 0.865])
    assert table[("std", "mnli")]["pos"] == pytest.approx(pos.std(ddof=1))


def test_summary_table_changes_and_verdict() -> None:
    table = summary_table(_edge())
    assert list(table.index) == ["pos", "deps"]
    assert table[("mean", "pretrained")]["pos"] == pytest.approx(90.0)
    assert table[("change", "mnli")]["deps"] == pytest.approx(-2.0)
    assert table[("change", "parsing")]["pos"] == pytest.approx(1.0)
    assert table[("std", "mnli")]["pos"] == pytest.approx(100 * np.std([-0.005, 0.005], ddof=1))
    text = format_table(table)
    assert text.loc["pos", "Δ mnli"] == "-2.0"


def test_expected_layer_is_weighted_mean_of_layer_indices() -> None:
    mix = pd.DataFrame([dict(model="pretrained", task="pos", seed=s, layer=k, weight=w)
                        for s in (0, 1) for k, w in enumerate([0.5, 0.25, 0.25])])
    e = expected_layers(mix)
    assert e[("mean", "pretrained")]["pos"] == pytest.approx(0.75)


def _acc_counts(correct: np.ndarray) -> np.ndarray:
    return np.stack([correct.astype(int), np.ones(len(correct), int)], -1)


def _hand_made_results() -> ProbingResults:
    """pos: pre-trained 90 %, mnli 88 %, random encoder 50 %, majority 40 % on the same 200
    sentences; coref: pre-trained no better than always-positive."""
    rng = np.random.default_rng(0)
    n = 200

    def seeds(p: float) -> np.ndarray:
        return np.stack([_acc_counts(rng.random(n) < p) for _ in range(2)])

    def tenney(c: np.ndarray) -> np.ndarray:  # single label, one target: F1 = accuracy
        return np.stack([c[..., 0], c[..., 1] - c[..., 0], c[..., 1] - c[..., 0]], -1)

    res = ProbingResults(*(pd.DataFrame() for _ in range(4)), timings={})
    pos = {"pretrained": seeds(0.9), "mnli": seeds(0.88), "mnli@1": seeds(0.86),
           "random": seeds(0.5)}
    base = _acc_counts(np.arange(n) % 5 < 2)
    for m, c in pos.items():
        res.counts[(m, "pos")] = {"task": c, "tenney": tenney(c)}
    res.baselines["pos"] = {"majority": {"task": base, "tenney": tenney(base)}}
    gold = rng.random(n) < 0.3
    always = np.stack([gold, ~gold, np.zeros(n, bool), np.zeros(n, bool)], -1).astype(int)
    for m in ("pretrained", "mnli", "mnli@1", "random"):
        res.counts[(m, "coref")] = {"task": np.stack([always] * 2),
                                    "tenney": np.stack([always[:, :3]] * 2)}
    res.baselines["coref"] = {"all_positive": {"task": always, "tenney": always[:, :3]}}
    res.metrics = {"pos": "accuracy", "coref": "f1"}
    return res


def test_verdict_table_flags_floors_and_measures_changes() -> None:
    vt = verdict_table(_hand_made_results(), n_boot=300)
    row = vt[(vt.task == "pos") & (vt.metric == "accuracy")].iloc[0]
    assert row["pretrained"] == pytest.approx(90, abs=3)
    assert row["baseline_name"] == "majority" and row["baseline"] == pytest.approx(40)
    assert row["floor"] == "random" and row["informative"]
    assert row["margin_lo"] > 20 and row["margin"] == pytest.approx(40, abs=5)
    # MNLI: the mean of its two fine-tuning seeds, each the mean of its two probe seeds
    res = _hand_made_results()
    acc = {m: 100 * res.counts[(m, "pos")]["task"][..., 0].mean() for m in
           ("pretrained", "mnli", "mnli@1")}
    assert row["mnli"] == pytest.approx((acc["mnli"] + acc["mnli@1"]) / 2)
    assert row["change_mnli"] == pytest.approx(row["mnli"] - acc["pretrained"])
    assert row["change_mnli_lo"] < row["change_mnli"] < row["change_mnli_hi"]
    assert row["mnli_seeds"] == 2 and "mnli@1" not in vt.columns
    coref = vt[(vt.task == "coref") & (vt.metric == "f1")].iloc[0]
    assert not coref["informative"] and coref["margin"] == pytest.approx(0.0)
    assert set(vt.metric) == {"accuracy", "f1", "tenney_f1"}
    text = format_verdict_table(vt)
    assert text.loc[("coref", "f1"), "status"] == "at floor"
    assert list(text.columns)[-1] == "Δ mnli"
    mix = pd.DataFrame([dict(model="pretrained", task=t, seed=0, layer=k, weight=w)
                        for t in ("pos", "coref") for k, w in enumerate([0.5, 0.25, 0.25])])
    control = pd.DataFrame([dict(model="pretrained", task="pos", seed=0, layer="mix",
                                 task_score=0.9, control_score=0.5, selectivity=0.4)])
    nums = chapter_numbers(vt, expected_layers(mix), uniform_centre(mix), control, 2,
                           mix_entropy(mix))
    assert nums["probe_n_informative"] == 1 and nums["probe_floor_list"] == "coref"
    assert nums["probe_informative_list"].startswith("pos +")
    assert nums["probe_el_uniform"] == "1.00" and nums["probe_sel_pos"] == "40.0"
    h = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25)) / np.log(3)
    assert nums["probe_entropy_range"] == f"{h:.2f}–{h:.2f}"
    assert nums["probe_entropy_bimodal"] == f"{np.log(2) / np.log(3):.2f}"


DATA = Path(os.environ.get("BERTDRIFT_DATA", "/work/shared/data"))


@pytest.mark.skipif(not (DATA / "ud-ewt").exists(), reason="needs the UD EWT data directory")
def test_run_probing_end_to_end_on_a_few_sentences(tmp_path: Path, monkeypatch) -> None:
    profile = bertdrift.get_profile(
        "tiny", probe_train_size=12, probe_eval_size=6, probe_eval_targets=None, probe_epochs=2,
        probe_hidden=8,
        probe_dev_size=4, probe_patience=1,
        structural_rank=4, probe_batch_size=6, probe_seeds=(0, 1), data_dir=str(DATA),
        cache_dir=str(tmp_path))
    res = run_probing(profile, models={"pretrained": "minilm"}, tasks=("pos",),
                      structural=("depth",), control=("pos",), progress=False)
    assert set(res.edge["layer"]) == {str(k) for k in range(7)} | {"mix"}
    assert set(res.edge["seed"]) == {0, 1}
    assert res.edge["score"].between(0, 1).all()
    assert set(res.structural["metric"]) == {"root_acc", "nspr"}
    assert res.control["selectivity"].notna().all()
    assert res.counts[("pretrained", "pos")]["task"].shape == (2, 6, 2)  # seeds, sentences, K
    top = res.counts[("pretrained", "pos")]["top"]  # the top layer's head, per seed
    assert top.shape == (2, 6, 2)
    layer6 = res.edge[(res.edge.layer == "6")].sort_values("seed")["score"].to_numpy()
    assert np.allclose(top[..., 0].sum(1) / top[..., 1].sum(1), layer6)
    assert set(res.baselines["pos"]) == {"majority"}
    budget = res.budget[res.budget.task == "pos"].iloc[0]
    # 12 + 4 drawn; at most a fifth (3) held out to stop on
    assert budget["train_sentences"] == 13 and budget["dev_sentences"] == 3
    assert 1 <= budget["epochs_run"] <= 2
    assert res.tree_stats[("pretrained", "depth")][0].shape == (2, 6, 4)
    assert res.tree_baselines["depth"].shape == (6, 4)
    assert (tmp_path / "results" / "probing" / "edge.csv").exists()
    # the features lived only while the units were trained: the cache keeps the results
    assert not (tmp_path / "features").exists() and not list((tmp_path / "tmp").iterdir())

    def no_features(*args, **kwargs):
        raise AssertionError("every unit is cached: no features should be extracted")

    monkeypatch.setattr("bertdrift.probing.run.transient_features", no_features)
    again = run_probing(profile, models={"pretrained": "minilm"}, tasks=("pos",),
                        structural=("depth",), control=("pos",), progress=False)
    pd.testing.assert_frame_equal(res.edge, again.edge)  # read back from the cache
    # a probe fewer (as when a corpus is missing) leaves the other units' keys alone: the pos
    # units are read back, not retrained on the smaller union of sentences
    fewer = run_probing(profile, models={"pretrained": "minilm"}, tasks=("pos",),
                        structural=(), control=("pos",), progress=False)
    pd.testing.assert_frame_equal(res.edge, fewer.edge)
    # a cut unit file is reported and trained again, not trusted or left to fail every call
    monkeypatch.undo()
    unit = next((tmp_path / "results" / "probing" / "units").glob("pretrained-pos-task-*.json"))
    unit.write_text(unit.read_text()[:100])
    with pytest.warns(UserWarning, match="damaged"):
        mended = run_probing(profile, models={"pretrained": "minilm"}, tasks=("pos",),
                             structural=("depth",), control=("pos",), progress=False)
    pd.testing.assert_frame_equal(res.edge, mended.edge)


def test_hash_order_shares_sentences_across_tasks_and_eval_reaches_its_targets() -> None:
    from bertdrift.data.sample import hash_order
    from bertdrift.probing.run import take_eval, take_train

    corpus = [[f"w{i}", f"x{i % 7}", "."] for i in range(200)]
    # two tasks over the same corpus, each with targets in a different subset of sentences
    task_a = [{"tokens": s, "targets": [1] * (1 + i % 3)} for i, s in enumerate(corpus)]
    task_b = [{"tokens": s, "targets": [1]} for i, s in enumerate(corpus) if i % 4]
    a = {tuple(r["tokens"]) for r in take_train(task_a, 40)}
    b = {tuple(r["tokens"]) for r in take_train(task_b, 40)}
    assert len(a & b) >= 25  # a random draw each would share about 40 * 150/200 * 40/200 = 6
    assert list(hash_order(corpus, 0)) != list(hash_order(corpus, 1))
    ev = take_eval(task_a, 10, targets=50)
    assert len(ev) >= 10 and sum(len(r["targets"]) for r in ev) >= 50
    assert sum(len(r["targets"]) for r in ev[:-1]) < 50  # the shortest such prefix
    assert take_eval(task_a, None) == task_a


def test_probes_trained_side_by_side_equal_probes_trained_in_turn(tmp_path: Path) -> None:
    """``train_units`` trains a model's probes side by side (one thread each) when the CPU has
    several threads; every number equals one-probe-at-a-time training."""
    import torch

    def run(threads: int, cache: Path) -> ProbingResults:
        profile = bertdrift.get_profile(
            "tiny", probe_train_size=12, probe_eval_size=6, probe_eval_targets=None,
            probe_epochs=2, probe_hidden=8, probe_dev_size=4, probe_patience=1,
            structural_rank=4, probe_batch_size=6, probe_seeds=(0, 1), data_dir=str(DATA),
            cache_dir=str(cache), device="cpu")
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return run_probing(profile, models={"pretrained": "minilm"}, tasks=("pos", "deps"),
                               structural=("depth",), control=("pos",), progress=False)
        finally:
            torch.set_num_threads(before)

    one, two = run(1, tmp_path / "one"), run(2, tmp_path / "two")
    assert torch.get_num_threads() >= 1
    for name in ("edge", "control", "structural", "mix"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name), atol=1e-6,
                                      check_exact=False)
