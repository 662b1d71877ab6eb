"""The training loop: resume equals an uninterrupted run, the cached stage, frozen prefixes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _finetune_fixtures import mnli_data, tiny_encoder, tiny_tokenizer, ud_data
from safetensors.torch import load_file

import bertdrift
import bertdrift.finetune as ft
import bertdrift.finetune.runs
import bertdrift.models
from bertdrift import get_profile
from bertdrift.finetune import (
    TrainingInterrupted,
    evaluate_task_model,
    get_finetuned,
    length_grouped_batches,
    load_task_model,
    train_task,
)
from bertdrift.models import encoder_layers, load_encoder, load_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = {"max_length": 32, "batch_size": 4, "epochs": 2, "lr": 1e-3, "train_size": 24,
         "eval_size": 8}


def _profile(tmp_path, task="mnli", **extra):
    over = {f"{task}_{k}": v for k, v in SMALL.items()}
    return get_profile("tiny", cache_dir=str(tmp_path / "cache"), device="cpu", **over, **extra)


def _weights(run_dir):
    return load_task_model(run_dir).state_dict()


def test_length_grouped_batches_cover_everything_once_and_are_seeded():
    lengths = [5, 50, 7, 30, 8, 9, 44, 3, 12, 25, 6, 41]
    a = length_grouped_batches(lengths, 4, seed=1)
    assert sorted(i for b in a for i in b) == list(range(len(lengths)))
    assert a == length_grouped_batches(lengths, 4, seed=1)
    assert a != length_grouped_batches(lengths, 4, seed=2)
    # within one pool, batches are sorted by length: padding is small
    for b in a:
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)


@pytest.mark.parametrize("stop_after", [3, 7])
def test_resume_after_interruption_gives_the_same_weights(tmp_path, stop_after):
    P = _profile(tmp_path)
    tok = tiny_tokenizer(tmp_path)
    full = train_task("mnli", P, tmp_path / "full", data=mnli_data(), encoder=tiny_encoder(),
                      tokenizer=tok, progress=False, checkpoint_every=2)
    with pytest.raises(TrainingInterrupted):
        train_task("mnli", P, tmp_path / "cut", data=mnli_data(), encoder=tiny_encoder(),
                   tokenizer=tok, progress=False, checkpoint_every=2, stop_after=stop_after)
    assert any((tmp_path / "cut").glob("checkpoint-*"))
    assert not (tmp_path / "cut" / "result.json").exists()
    resumed = train_task("mnli", P, tmp_path / "cut", data=mnli_data(), encoder=tiny_encoder(),
                         tokenizer=tok, progress=False, checkpoint_every=2)
    a, b = _weights(full.path), _weights(resumed.path)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["train_loss"] for h in full.history] == pytest.approx(
        [h["train_loss"] for h in resumed.history])
    assert full.metrics == resumed.metrics
    assert not any(resumed.path.glob("checkpoint-*"))  # finished runs drop checkpoints


def test_get_finetuned_caches_and_saves_loadable_models(tmp_path, monkeypatch):
    tok = tiny_tokenizer(tmp_path)
    monkeypatch.setattr(ft.get_task("mnli").__class__, "load", lambda self, p: mnli_data())
    monkeypatch.setattr(bertdrift.models, "load_encoder",
                        lambda name=None, device="cpu": tiny_encoder()
                        if name in (None, "minilm") else load_encoder(name, device))
    monkeypatch.setattr(bertdrift.models, "load_tokenizer",
                        lambda name=None: tok if name in (None, "minilm") else load_tokenizer(name))
    P = _profile(tmp_path)
    first = get_finetuned("mnli", P, progress=False)
    assert first.trained and len(first.history) == 2
    assert set(first.metrics) == {"dev_matched_accuracy", "dev_mismatched_accuracy"}
    assert first.path.parent == P.cache_path / "finetuned" / "mnli"

    def no_training(*args, **kwargs):
        raise AssertionError("get_finetuned trained a second time")

    monkeypatch.setattr(bertdrift.finetune.runs, "fit", no_training)
    second = get_finetuned("mnli", P, progress=False)
    assert not second.trained
    assert second.metrics == first.metrics and second.path == first.path
    # a different seed is a different run
    assert ft.run_dir_for("mnli", P, seed=1) != first.path

    enc = load_encoder(second.encoder_path)
    assert load_tokenizer(second.encoder_path).vocab_size == tok.vocab_size
    model = load_task_model(second)
    assert bertdrift.models.weights_fingerprint(enc) == \
        bertdrift.models.weights_fingerprint(model.encoder)
    scores = evaluate_task_model("mnli", model, P, data=mnli_data(), tokenizer=tok)
    assert scores == pytest.approx(first.metrics)


def test_frozen_prefix_cache_matches_plain_freezing(tmp_path):
    P = _profile(tmp_path, "parsing", parsing_head_lr=1e-2)
    tok = tiny_tokenizer(tmp_path)
    start = tiny_encoder()
    frozen_before = {k: v.clone() for k, v in encoder_layers(start)[0].state_dict().items()}
    runs = {}
    for cache in (True, False):
        runs[cache] = train_task("parsing", P, tmp_path / f"c{cache}", data=ud_data(n_train=24),
                                 encoder=tiny_encoder(), tokenizer=tok, progress=False,
                                 freeze=1, cache_frozen=cache)
    a, b = _weights(runs[True].path), _weights(runs[False].path)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4), k
    for k, v in frozen_before.items():  # the frozen layer did not move
        assert torch.equal(a[f"encoder.encoder.layer.0.{k}"], v)
    assert not torch.equal(a["encoder.encoder.layer.1.output.dense.weight"],
                           start.state_dict()["encoder.layer.1.output.dense.weight"])
    assert runs[True].metrics == pytest.approx(runs[False].metrics)


def test_fused_optimizer_uses_the_fused_kernel_and_falls_back_without_it() -> None:
    from bertdrift.models import fused_optimizer

    w = torch.nn.Parameter(torch.ones(3))
    opt = fused_optimizer(torch.optim.Adam, [{"params": [w]}], 0.1)
    assert opt.defaults["fused"] is True and opt.defaults["lr"] == 0.1

    class NoFused(torch.optim.SGD):  # an optimiser without a fused kernel
        def __init__(self, params: list[dict], lr: float, **kw: object) -> None:
            if kw:
                raise TypeError(f"unexpected {sorted(kw)}")
            super().__init__(params, lr=lr)

    plain = fused_optimizer(NoFused, [{"params": [w]}], 0.5)
    assert isinstance(plain, NoFused) and plain.defaults["lr"] == 0.5


def test_snapshot_steps_fall_at_the_requested_fractions():
    from bertdrift.finetune.loop import snapshot_steps

    assert snapshot_steps([0, 1 / 4, 1 / 2, 1], 10) == [0, 2, 5, 10]
    assert snapshot_steps([0, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1], 126) == [
        0, 4, 8, 16, 32, 63, 126]
    assert snapshot_steps([1 / 32, 1 / 16], 12) == [0, 1]  # fractions that round alike merge
    with pytest.raises(bertdrift.ConfigError):
        get_profile("tiny", snapshot_fractions=[0.5, 2])


def test_snapshots_are_kept_and_survive_an_interruption(tmp_path):
    P = _profile(tmp_path, snapshot_fractions=[0, 1 / 8, 1 / 4, 1 / 2, 1])
    tok = tiny_tokenizer(tmp_path)
    full = train_task("mnli", P, tmp_path / "full", data=mnli_data(), encoder=tiny_encoder(),
                      tokenizer=tok, progress=False, checkpoint_every=2)
    with pytest.raises(TrainingInterrupted):
        train_task("mnli", P, tmp_path / "cut", data=mnli_data(), encoder=tiny_encoder(),
                   tokenizer=tok, progress=False, checkpoint_every=2, stop_after=5)
    resumed = train_task("mnli", P, tmp_path / "cut", data=mnli_data(), encoder=tiny_encoder(),
                         tokenizer=tok, progress=False, checkpoint_every=2)
    kept = ft.snapshots(full, P)
    assert [s.step for s in kept] == [0, 2, 3, 6, 12]  # 12 steps: 24 pairs / 4 x 2 epochs
    assert kept[0].encoder_path == P.model and kept[-1].encoder_path == str(full.encoder_path)
    for a, b in zip(kept[1:-1], ft.snapshots(resumed, P)[1:-1], strict=True):
        wa = load_file(str(Path(a.encoder_path) / "model.safetensors"))
        wb = load_file(str(Path(b.encoder_path) / "model.safetensors"))
        assert all(torch.equal(wa[k], wb[k]) for k in wa), a.step
    mid = ft.load_snapshot_model(full, kept[2])
    last = ft.load_snapshot_model(full, kept[-1])
    done = load_task_model(full)
    assert bertdrift.models.weights_fingerprint(last) == bertdrift.models.weights_fingerprint(done)
    assert bertdrift.models.weights_fingerprint(mid) != bertdrift.models.weights_fingerprint(done)
    assert not ft.run_dir_for("mnli", P) == ft.run_dir_for(
        "mnli", get_profile(P, snapshot_fractions=[]))  # snapshots are part of the run's key


def test_one_process_trains_in_fp32_then_bf16(tmp_path):
    """Precision is per run (our own autocast), not accelerate's process-wide state; only the
    last epoch is evaluated when eval_every_epoch is off."""
    tok = tiny_tokenizer(tmp_path)
    out = {}
    for precision in ("fp32", "bf16", "fp32"):
        P = _profile(tmp_path, precision=precision, eval_every_epoch=False)
        r = train_task("mnli", P, tmp_path / f"run-{precision}-{len(out)}", data=mnli_data(),
                       encoder=tiny_encoder(), tokenizer=tok, progress=False)
        out[len(out)] = r
        assert "dev_matched_accuracy" not in r.history[0]
        assert "dev_matched_accuracy" in r.history[-1] and r.metrics
    fp32_a, fp32_b = _weights(out[0].path), _weights(out[2].path)
    assert all(torch.equal(fp32_a[k], fp32_b[k]) for k in fp32_a)  # bf16 between left no trace
