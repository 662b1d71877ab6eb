"""Probing summaries on hand-made tables, and one small end-to-end run on real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bertdrift
from bertdrift.probing.run import run_probing
from bertdrift.probing.summary import (
    chapter_numbers,
    expected_layers,
    forgetting_record,
    forgetting_verdict,
    format_table,
    selectivity_table,
    structural_table,
    summary_table,
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


def test_summary_table_changes_and_verdict() -> None:
    table = summary_table(_edge())
    assert list(table.index) == ["pos", "deps"]
    assert table[("mean", "pretrained")]["pos"] == pytest.approx(90.0)
    assert table[("change", "mnli")]["deps"] == pytest.approx(-2.0)
    assert table[("change", "parsing")]["pos"] == pytest.approx(1.0)
    assert table[("std", "mnli")]["pos"] == pytest.approx(100 * np.std([-0.005, 0.005], ddof=1))
    text = format_table(table)
    assert text.loc["pos", "Δ mnli"] == "-2.0"
    verdict = forgetting_verdict(_edge())
    assert verdict["mnli_mean_change"] == pytest.approx(-2.0)
    assert verdict["parsing_worst_change"] == pytest.approx(1.0)


def test_expected_layer_is_weighted_mean_of_layer_indices() -> None:
    mix = pd.DataFrame([dict(model="pretrained", task="pos", seed=s, layer=k, weight=w)
                        for s in (0, 1) for k, w in enumerate([0.5, 0.25, 0.25])])
    e = expected_layers(mix)
    assert e[("mean", "pretrained")]["pos"] == pytest.approx(0.75)


def test_chapter_numbers_on_a_hand_made_run() -> None:
    edge = _edge()
    edge = pd.concat([edge, edge[edge.task == "pos"].assign(task="coref")], ignore_index=True)
    table = summary_table(edge)
    mix = pd.DataFrame([dict(model=m, task=t, seed=0, layer=k, weight=w)
                        for m in ("pretrained", "mnli", "parsing") for t in ("pos", "coref")
                        for k, w in enumerate([0.5, 0.5] if t == "pos" else [0.0, 1.0])])
    structural = pd.DataFrame([dict(model=m, probe="depth", seed=0, layer=k, metric=metric,
                                    value=v + 0.1 * k)
                               for m, v in (("pretrained", 0.3), ("parsing", 0.5))
                               for metric in ("uuas", "root_acc") for k in (0, 1)])
    control = pd.DataFrame([dict(model=m, task=t, seed=0, layer="mix", task_score=0.9,
                                 control_score=c)
                            for t in ("pos", "deps")
                            for m, c in (("pretrained", 0.5), ("mnli", 0.6), ("parsing", 0.7))])
    control["selectivity"] = control["task_score"] - control["control_score"]
    n = chapter_numbers(table, expected_layers(mix), structural, control, n_probe_seeds=2)
    assert n["probe_n_tasks"] == 3 and n["probe_n_seeds"] == 2
    assert n["probe_mean_mnli"] == "-2.0" and n["probe_best_parsing"] == "+1.0"
    assert n["probe_worst_task_mnli"] in {"pos", "deps", "coref"}
    assert n["probe_el_pos"] == "0.50" and n["probe_el_coref"] == "1.00"
    assert n["probe_el_range"] == "0.50–1.00"
    assert n["probe_uuas_pretrained"] == "40.0" and n["probe_root_acc_parsing"] == "60.0"
    assert n["probe_sel_pos"] == "40.0" and n["probe_sel_deps_range"] == "20.0 to 30.0"
    assert forgetting_record(table)["change"]["mnli"]["deps"] == pytest.approx(-2.0)
    assert structural_table(structural).loc[("uuas", "parsing"), 1] == pytest.approx(60.0)
    assert selectivity_table(control).loc[("pos", "mnli"), "control_score"] == pytest.approx(60)


DATA = Path(os.environ.get("BERTDRIFT_DATA", "/work/shared/data"))


@pytest.mark.skipif(not (DATA / "ud-ewt").exists(), reason="needs the UD EWT data directory")
def test_run_probing_end_to_end_on_a_few_sentences(tmp_path: Path) -> None:
    profile = bertdrift.get_profile(
        "tiny", probe_train_size=12, probe_eval_size=6, probe_epochs=1, probe_hidden=8,
        structural_rank=4, probe_batch_size=6, probe_seeds=(0, 1), data_dir=str(DATA),
        cache_dir=str(tmp_path))
    res = run_probing(profile, models={"pretrained": "minilm"}, tasks=("pos",),
                      structural=("depth",), control=("pos",), progress=False)
    assert set(res.edge["layer"]) == {str(k) for k in range(7)} | {"mix"}
    assert set(res.edge["seed"]) == {0, 1}
    assert res.edge["score"].between(0, 1).all()
    assert set(res.structural["metric"]) == {"root_acc", "nspr"}
    assert res.control["selectivity"].notna().all()
    assert (tmp_path / "results" / "probing" / "edge.csv").exists()
    again = run_probing(profile, models={"pretrained": "minilm"}, tasks=("pos",),
                        structural=("depth",), control=("pos",), progress=False)
    pd.testing.assert_frame_equal(res.edge, again.edge)  # read back from the cache
