"""The GPU check's code path on the CPU (a tiny model, one step per stage) and its projection
arithmetic."""

from __future__ import annotations

import pytest
import torch
from _family_fixtures import build_family

from bertdrift import get_profile
from bertdrift.gpu_check import WORKLOAD, measure, project, report


def _fake(rate: float) -> dict:
    stages = {f"finetune_{t}": {"samples_per_s": rate, "peak_gib": None}
              for t in ("mnli", "squad", "parsing")}
    stages["features"] = {"sentences_per_s": rate, "peak_gib": None}
    stages["edge_probes"] = {"steps_per_s": rate, "peak_gib": None}
    stages["structural_probes"] = {"steps_per_s": rate, "peak_gib": None}
    return {"model": "m", "device": "cuda", "steps": 1, "layers": 12, "stages": stages}


def test_projection_scales_with_the_measured_rates() -> None:
    paper = get_profile("paper")
    slow, fast = project(_fake(100.0), paper), project(_fake(200.0), paper)
    for name in slow:
        assert slow[name] == pytest.approx(2 * fast[name])
    # MNLI alone: 3 seeds x 3 epochs x (train + eval / 3) samples at 100 samples/s
    mnli = 3 * 3 * (WORKLOAD["mnli"]["train"] + WORKLOAD["mnli"]["eval"] / 3) / 100
    assert slow["02 fine-tuning (3 tasks x seeds)"] > mnli
    assert slow["total"] == pytest.approx(sum(v for k, v in slow.items() if k != "total"))
    assert "projected wall time" in report(_fake(100.0), slow)


def test_measure_runs_every_stage_bounded(data_dir, tmp_path) -> None:
    torch.set_num_threads(1)
    model = build_family("bert", tmp_path / "bert", max_positions=512)
    profile = get_profile("paper", model=str(model), device="cpu")
    measured = measure(profile, steps=1, work=tmp_path / "work", probe_sentences=40)
    assert set(measured["stages"]) == {"finetune_mnli", "finetune_squad", "finetune_parsing",
                                       "features", "edge_probes", "structural_probes"}
    assert all(s["peak_gib"] is None for s in measured["stages"].values())  # no GPU here
    assert measured["stages"]["finetune_squad"]["steps"] == 1
    assert project(measured, profile)["total"] > 0
