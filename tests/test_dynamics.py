from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bertdrift import dynamics as dy
from bertdrift.config import get_profile


def test_depth_share_known_answers():
    assert dy.depth_share([1.0] * 6) == pytest.approx(1 / 3)
    assert dy.depth_share([0, 0, 0, 0, 0, 2.0]) == pytest.approx(1.0)
    assert dy.depth_share([1, 1, 1, 1, 3, 3]) == pytest.approx(6 / 10)
    assert dy.depth_share([1.0] * 12) == pytest.approx(1 / 3)  # top 4 of 12
    assert dy.depth_share([-0.1, 0, 0, 0, 1, 1]) == pytest.approx(1.0)  # negatives count as 0
    assert math.isnan(dy.depth_share([0.0] * 6))


def test_depth_slope_known_answers():
    assert dy.depth_slope([0.5] * 6) == pytest.approx(0.0, abs=1e-12)
    assert dy.depth_slope(np.arange(1, 7)) == pytest.approx(12 / 7)
    # scale-free: the same shape at a tenth of the size has the same slope
    assert dy.depth_slope(np.arange(1, 7) / 10) == pytest.approx(12 / 7)
    assert dy.depth_slope(np.arange(6, 0, -1)) < 0
    assert math.isnan(dy.depth_slope([0.0] * 6))


def test_half_change_step_interpolates():
    steps = [0, 4, 8, 16]
    assert dy.half_change_step(steps, [0, 0.2, 0.6, 1.0]) == pytest.approx(4 + 0.3 / 0.4 * 4)
    assert dy.half_change_step(steps, [0, 0.5, 0.6, 1.0]) == pytest.approx(4.0)
    assert dy.half_change_step(steps, [0, 0.0, 0.0, 1.0]) == pytest.approx(12.0)
    # non-monotone: the first crossing counts
    assert dy.half_change_step(steps, [0, 0.8, 0.2, 1.0]) == pytest.approx(4 * 0.5 / 0.8)
    assert math.isnan(dy.half_change_step(steps, [0, 0.1, 0.1, 0.0]))


def test_saturation_step_both_directions():
    f = [0, 0.25, 0.5, 1.0]
    assert dy.saturation_step(f, [0.3, 0.6, 0.7, 0.7]) == pytest.approx(0.25 + 0.15 / 0.25 * 0.25)
    assert dy.saturation_step(f, [1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25 * 0.9)  # falling
    assert math.isnan(dy.saturation_step(f, [0.5, 0.6, 0.4, 0.5]))


def test_seed_interval():
    m1, lo1, hi1 = dy.seed_interval([2.0])  # one seed: no spread, so no interval at all
    assert m1 == 2.0 and math.isnan(lo1) and math.isnan(hi1)
    m, lo, hi = dy.seed_interval([1.0, 2.0, 3.0])
    assert m == pytest.approx(2.0) and lo < 1.0 and hi > 3.0 and hi - m == pytest.approx(m - lo)
    assert all(math.isnan(x) for x in dy.seed_interval([float("nan")]))


def synthetic_trajectory(seeds=(0,), top_first: bool = True) -> pd.DataFrame:
    """Six layers; layer l's change grows like (t/T)**p_l, so its half-change step is known:
    (1/2)**(1/p_l) of training (before interpolation error)."""
    total, steps = 64, [0, 2, 4, 8, 16, 32, 64]
    rows = []
    for seed in seeds:
        for step in steps:
            for layer in range(7):
                final = 0.0 if layer == 0 else 0.02 * layer * (1 + 0.1 * seed)
                p = 1.0 if layer == 0 else (0.5 if (layer == 6) == top_first else 2.0)
                change = final * (step / total) ** p
                rows.append({"task": "mnli", "seed": seed, "step": step, "total": total,
                             "fraction": step / total, "layer": layer, "rsa": 1 - change,
                             "cka": 1 - change / 2, "weight_change": change})
    return pd.DataFrame(rows)


def test_frames_and_verdicts_on_a_synthetic_trajectory():
    traj = synthetic_trajectory()
    prof = dy.profile_frame(traj, "rsa")
    assert set(prof["step"]) == {0, 2, 4, 8, 16, 32, 64}
    assert math.isnan(prof.loc[prof["step"] == 0, "share_top"].iloc[0])
    final = prof[prof["step"] == 64].iloc[0]
    assert final["share_top"] == pytest.approx(11 / 21)  # (5 + 6) / (1 + ... + 6)
    half = dy.half_change_frame(traj, "rsa")
    top = half[half["layer"] == 6].iloc[0]
    assert top["half_fraction"] < 0.5  # grows like sqrt: half of it by a quarter of training
    assert dy.top_layer_order(half, "mnli") == "first"
    assert dy.top_layer_order(dy.half_change_frame(synthetic_trajectory(top_first=False)),
                              "mnli") == "last"
    # the top layer runs ahead early, so the top share is largest at the start: it flattens
    assert dy.sharpening(prof, "mnli")["verdict"].startswith("flattens in the one seed")


def test_sharpening_interval_over_seeds():
    traj = synthetic_trajectory(seeds=(0, 1, 2), top_first=False)
    prof = dy.profile_frame(traj)
    s = dy.sharpening(prof, "mnli")
    assert s["diff"] > 0 and s["verdict"] == "sharpens"


def test_dynamics_numbers_keys_and_values():
    traj = synthetic_trajectory(seeds=(0, 1))
    dev = pd.DataFrame([{"task": "mnli", "seed": seed, "step": s, "total": 64,
                         "fraction": s / 64, "metric": "acc", "score": min(0.8, 0.4 + s / 40),
                         "eval_size": 100}
                        for seed in (0, 1) for s in (0, 2, 4, 8, 16, 32, 64)])
    nums = dy.dynamics_numbers(traj, dev, get_profile("tiny"))
    assert nums["dyn_n_seeds"] == 2
    assert nums["dyn_eval_size"] == "mnli 100"
    assert nums["dyn_steps_mnli"] == "0, 2, 4, 8, 16, 32, 64"
    assert nums["dyn_top_order_mnli"] == "first"
    assert nums["dyn_half_mnli"].startswith("layer 1: ")
    assert nums["dyn_share_mnli"].count("step") == 6
    # the dev score saturates at step 16 in both seeds, the change later: an interval of 0 width
    assert nums["dyn_dev_vs_rep_mnli"].startswith("before (difference -")
    assert nums["dyn_top_share_uniform"] == "0.333"
    table = dy.half_change_table(traj)
    assert list(table.index) == [1, 2, 3, 4, 5, 6]


def test_sharpening_number_carries_its_seed_interval():
    traj = synthetic_trajectory(seeds=(0, 1, 2), top_first=False)
    last = (traj["seed"] == 1) & (traj["step"] == 64) & (traj["layer"] == 6)
    traj.loc[last, "rsa"] = 1 - 0.2  # seed 1 ends with a larger top-layer change
    dev = pd.DataFrame([{"task": "mnli", "seed": seed, "step": s, "total": 64,
                         "fraction": s / 64, "metric": "acc", "score": 0.4 + s / 100,
                         "eval_size": 100} for seed in (0, 1, 2) for s in (0, 8, 64)])
    nums = dy.dynamics_numbers(traj, dev, get_profile("tiny"))
    sharp = dy.sharpening(dy.profile_frame(traj), "mnli")
    assert sharp["low"] < sharp["high"]
    assert nums["dyn_sharpen_diff_mnli"] == (
        f"{sharp['diff']:.3f} [{sharp['low']:.3f}, {sharp['high']:.3f}]")


def test_saturation_order_decides_from_the_seed_interval():
    assert dy.saturation_order([0.2, 0.3, 0.25], [0.6, 0.7, 0.65]).startswith("before")
    assert dy.saturation_order([0.8, 0.9, 0.85], [0.2, 0.3, 0.25]).startswith("after")
    # the mean says "after" but the seeds disagree: the interval includes 0
    assert dy.saturation_order([0.9, 0.1, 0.7], [0.5, 0.5, 0.5]).startswith("inconclusive")
    assert dy.saturation_order([0.9], [0.5]) == "after (one seed, no interval)"
    assert dy.saturation_order([float("nan")], [0.5]) == "n/a"


def test_errors_subclass_bertdrift_error():
    from bertdrift.errors import BertdriftError

    with pytest.raises(BertdriftError):
        dy.depth_share([])
    with pytest.raises(BertdriftError):
        dy.crossing_step([0, 1], [0.0], 0.5)


def test_run_trajectory_on_a_tiny_run(tmp_path, monkeypatch):
    """End to end on a tiny random BERT: step 0 is the pre-trained model itself (similarity 1,
    no weight change); later snapshots move; the frame is cached."""
    from _finetune_fixtures import WORDS, mnli_data, tiny_encoder, tiny_tokenizer

    from bertdrift.finetune.runs import train_task

    tok = tiny_tokenizer(tmp_path)
    pre = tmp_path / "pre"
    tiny_encoder().save_pretrained(pre)
    tok.save_pretrained(pre)
    P = get_profile("tiny", cache_dir=str(tmp_path / "cache"), device="cpu", model=str(pre),
                    mnli_train_size=24, mnli_eval_size=8, mnli_batch_size=4, mnli_epochs=2,
                    mnli_lr=1e-2, rsa_tokens=60, snapshot_fractions=[0, 1 / 4, 1 / 2, 1])
    run = train_task("mnli", P, tmp_path / "run", data=mnli_data(), encoder=tiny_encoder(),
                     tokenizer=tok, progress=False)
    monkeypatch.setattr(dy, "_run", lambda task, profile, seed, progress: run)
    rng = np.random.default_rng(0)
    sents = [[str(w) for w in rng.choice(WORDS[:-3], 6)] for _ in range(12)]
    traj = dy.run_trajectory("mnli", P, sentences=sents)
    assert sorted(traj["step"].unique()) == [0, 3, 6, 12]
    assert sorted(traj["layer"].unique()) == [0, 1, 2]
    start, end = traj[traj["step"] == 0], traj[traj["step"] == 12]
    assert np.allclose(start["rsa"], 1.0, atol=1e-4) and np.allclose(start["weight_change"], 0)
    assert (end.loc[end["layer"] > 0, "weight_change"] > 0).all()
    assert (end.loc[end["layer"] > 0, "rsa"] < 1.0).all()
    cached = dy.run_trajectory("mnli", P, sentences=sents)
    assert np.allclose(cached["rsa"], traj["rsa"])
    assert len(dy.profile_frame(traj)) == 4 and len(dy.half_change_frame(traj)) == 2


def test_select_snapshots_nearest_each_once():
    from bertdrift.finetune.runs import Snapshot

    snaps = [Snapshot(s, 64, f"p{s}", None) for s in (0, 2, 4, 8, 16, 32, 64)]
    assert [s.step for s in dy.select_snapshots(snaps, None)] == [0, 2, 4, 8, 16, 32, 64]
    assert [s.step for s in dy.select_snapshots(snaps, [1, 0, 0.25, 0.26])] == [0, 16, 64]


def test_floating_point_noise_is_no_change():
    noise = [1e-15, 4e-15, 0, 2e-15, 0, 9e-15]  # 1 - RSA of a model with itself
    assert math.isnan(dy.depth_share(noise)) and math.isnan(dy.depth_slope(noise))
    assert math.isnan(dy.half_change_step([0, 1], [0, 1e-14]))


def test_sharpening_calls_a_tiny_move_about_the_same():
    prof = pd.DataFrame([{"task": "mnli", "seed": 0, "step": s, "share_top": v}
                         for s, v in ((0, math.nan), (2, 0.781), (20, 0.772))])
    assert dy.sharpening(prof, "mnli")["verdict"].startswith("about the same")
    # three seeds whose moves all lie well inside the margin: equivalent, read as the same
    prof3 = pd.DataFrame([{"task": "mnli", "seed": sd, "step": s, "share_top": v + d}
                          for sd, d in ((0, 0.0), (1, 0.001), (2, -0.001))
                          for s, v in ((0, math.nan), (2, 0.781), (20, 0.782))])
    assert dy.sharpening(prof3, "mnli")["verdict"].startswith("about the same (within")


def test_saturation_together_and_the_record():
    assert dy.saturation_order([0.50, 0.51, 0.49], [0.50, 0.50, 0.50]).startswith("together")
    traj = synthetic_trajectory(seeds=(0, 1, 2), top_first=False)
    dev = pd.DataFrame([{"task": "mnli", "seed": seed, "step": s, "total": 64,
                         "fraction": s / 64, "metric": "acc", "score": min(0.8, 0.4 + s / 40),
                         "eval_size": 100} for seed in (0, 1, 2)
                        for s in (0, 2, 4, 8, 16, 32, 64)])
    rec = dy.dynamics_record(traj, dev)
    sat = rec["saturation"]["parts"]["mnli"]
    assert len(sat["values"]) == 3 and sat["side"] == "below" and sat["models"] == ["mnli"]
    assert all(v < 0 for v in sat["values"])  # the dev score saturates at step 16, earlier
    from bertdrift import claims

    j = claims.judge(next(c for c in claims.CLAIMS if c.key == "saturation"), rec,
                     {"mnli": {"scores": [70.0, 71.0, 72.0], "baseline": 35.0}})
    assert j.verdict == "agree"
