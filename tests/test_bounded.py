"""The bounded mode: the paper profile's recipes at full length, a few steps each, on the CPU
with the packaged model (what CI can run of the GPU path)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bertdrift import get_profile
from bertdrift.bounded import bounded_profile
from bertdrift.config import TASKS
from bertdrift.errors import ConfigError
from bertdrift.finetune import get_finetuned, run_key


def test_bounded_profile_keeps_the_recipes_and_its_own_cache_keys(tmp_path) -> None:
    paper = get_profile("paper")
    bounded = bounded_profile("paper", max_steps=3, cache_dir=str(tmp_path))
    assert bounded.max_steps == 3
    for task in TASKS:
        full, small = dataclasses.asdict(paper.recipe(task)), dataclasses.asdict(
            bounded.recipe(task))
        for field in ("lr", "epochs", "batch_size", "max_length", "stride", "warmup_ratio",
                      "weight_decay", "head_lr"):
            assert small[field] == full[field], (task, field)
        assert small["train_size"] == 3 * full["batch_size"]
        unbounded = get_profile(bounded, max_steps=None)
        assert run_key(task, bounded, freeze=0, seed=0, cache_frozen=True) != run_key(
            task, unbounded, freeze=0, seed=0, cache_frozen=True)
    assert get_profile("tiny").max_steps is None
    with pytest.raises(ConfigError, match="max_steps"):
        get_profile("tiny", max_steps=0)


def test_paper_recipes_run_bounded_on_the_cpu(data_dir, tmp_path) -> None:
    torch.set_num_threads(2)  # one step of each paper recipe is ~10 s of MiniLM on 2 cores
    P = bounded_profile("paper", max_steps=1, model="minilm", device="cpu", seeds=(0,),
                        cache_dir=str(tmp_path / "cache"))
    for task in TASKS:
        run = get_finetuned(task, P, progress=False)
        last = run.history[-1]
        assert last["steps"] == 1, (task, last)
        assert all(math.isfinite(v) for v in run.metrics.values()), (task, run.metrics)
        assert last["train_samples_per_s"] > 0


def test_probes_stop_after_max_steps(monkeypatch) -> None:
    from bertdrift.probing import structural
    from bertdrift.probing.edge import EdgeProbeConfig, train_edge_probes_seeds

    rng = np.random.default_rng(0)
    n_sent, words = 40, 5
    feats = torch.from_numpy(rng.normal(size=(n_sent * words, 3, 8)).astype(np.float32))
    from bertdrift.probing import encode_targets

    rows = [{"tokens": ["w"] * words, "targets": [{"span1": [0, 1], "span2": None,
                                                   "label": "ab"[i % 2]}]}
            for i in range(n_sent)]
    data = encode_targets(rows, ["a", "b"], [i * words for i in range(n_sent)],
                          multilabel=False, single_span=True)
    res = train_edge_probes_seeds(feats, data, {"eval": data},
                                  EdgeProbeConfig(proj_dim=4, hidden=4, epochs=50, batch_size=4),
                                  seeds=[0], progress=False, max_steps=3)
    assert len(res[0].losses) == 3
    calls = []
    real = structural._loss
    monkeypatch.setattr(structural, "_loss", lambda *a: calls.append(1) or real(*a))
    trees = structural.trees_from_ud(
        [{"head": [0, 1, 1, 2, 2], "upos": ["NOUN"] * words}] * n_sent,
        [i * words for i in range(n_sent)])
    structural.train_structural_probes_seeds(feats, trees, trees, "depth",
                                             structural.StructuralConfig(rank=2, epochs=50,
                                                                         batch_size=4),
                                             seeds=[0], progress=False, max_steps=2)
    assert len(calls) == 2
