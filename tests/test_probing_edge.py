"""Edge probes on synthetic features: learning, chance on shuffled labels, batched == per layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertdrift.probing.edge import (
    EdgeProbeConfig,
    SpanTargets,
    encode_targets,
    score,
    train_edge_probes,
)

torch.set_num_threads(2)


def _synthetic(seed: int = 0, n_sents: int = 160, layers: int = 3, dim: int = 12,
               shuffle: bool = False) -> tuple[np.ndarray, SpanTargets, SpanTargets]:
    """Two-span task: label = whether span1's mean at layer 1 (dim 0) exceeds span2's."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 9, n_sents)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    feats = rng.normal(size=(int(lengths.sum()), layers, dim)).astype(np.float32)
    rows, labels = [], []
    for i, n in enumerate(lengths):
        targets = []
        for _ in range(2):
            a, b = sorted(rng.choice(n, 2, replace=False))
            s1, s2 = [0, int(a) + 1], [int(b), int(n)]
            m1 = feats[starts[i] + s1[0]: starts[i] + s1[1], 1, 0].mean()
            m2 = feats[starts[i] + s2[0]: starts[i] + s2[1], 1, 0].mean()
            labels.append("yes" if m1 > m2 else "no")
            targets.append({"span1": s1, "span2": s2, "label": [labels[-1]]})
        rows.append({"tokens": ["w"] * int(n), "targets": targets})
    if shuffle:
        perm = rng.permutation(len(labels))
        flat = [t for r in rows for t in r["targets"]]
        for t, k in zip(flat, perm, strict=True):
            t["label"] = [labels[k]]
    cut = n_sents * 3 // 4
    enc = dict(multilabel=False, single_span=False)
    train = encode_targets(rows[:cut], ["no", "yes"], starts[:cut], **enc)
    dev = encode_targets(rows[cut:], ["no", "yes"], starts[cut:], **enc)
    return feats, train, dev


CFG = EdgeProbeConfig(proj_dim=16, hidden=16, epochs=12, batch_size=16, lr=5e-3, dropout=0.1)


def test_probe_learns_the_informative_layer_and_mix_finds_it() -> None:
    feats, train, dev = _synthetic()
    res = train_edge_probes(feats, train, {"dev": dev}, CFG, seed=0, progress=False)
    s = res.scores["dev"]
    assert s["1"] > 0.85, s
    assert s["0"] < 0.7 and s["2"] < 0.7, s
    assert s["mix"] > 0.7, s
    assert res.mix_weights is not None and int(np.argmax(res.mix_weights)) == 1


def test_probe_is_at_chance_on_shuffled_labels() -> None:
    feats, train, dev = _synthetic(shuffle=True)
    res = train_edge_probes(feats, train, {"dev": dev}, CFG, seed=0, progress=False)
    majority = max(dev.labels.mean(0))
    for key, value in res.scores["dev"].items():
        assert value < majority + 0.15, (key, value, majority)


@pytest.mark.parametrize("layer", [0, 2])
def test_batched_training_equals_training_one_layer_alone(layer: int) -> None:
    feats, train, dev = _synthetic(n_sents=60)
    cfg = EdgeProbeConfig(proj_dim=8, hidden=8, epochs=2, batch_size=8, lr=5e-3, dropout=0.2)
    both = train_edge_probes(feats, train, {"dev": dev}, cfg, seed=3, progress=False,
                             keep_logits=True)
    alone = train_edge_probes(feats, train, {"dev": dev}, cfg, layers=[layer], mix=False,
                              seed=3, progress=False, keep_logits=True)
    np.testing.assert_allclose(both.logits["dev"][layer], alone.logits["dev"][0],
                               rtol=1e-4, atol=1e-5)
    assert both.scores["dev"][str(layer)] == alone.scores["dev"][str(layer)]


def test_scores_by_hand() -> None:
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32)
    logits = np.array([[2, 0, 0], [0, 0, 3], [0, 0, 1], [5, 1, 0]], dtype=np.float32)
    assert score(logits, y, "accuracy", False) == 0.75
    assert score(logits, y, "micro_f1", False) == 0.75
    multi = np.array([[1, 1, 0], [0, 0, 0]], dtype=np.float32)
    pred = np.array([[1, -1, 1], [-1, -1, 1]], dtype=np.float32)
    # tp = 1, predicted = 3, gold = 2 -> F1 = 2 / 5
    assert score(pred, multi, "micro_f1", True) == pytest.approx(0.4)
    binary = np.array([[1, 0], [0, 1], [0, 1]], dtype=np.float32)
    bpred = np.array([[0, 1], [0, 1], [1, 0]], dtype=np.float32)
    # positive class: tp = 1, predicted 2, gold 2 -> F1 = 0.5
    assert score(bpred, binary, "f1", False) == pytest.approx(0.5)


def test_several_seeds_in_one_pass_equal_the_first_seed_alone() -> None:
    from bertdrift.probing.edge import train_edge_probes_seeds

    feats, train, dev = _synthetic(n_sents=40)
    cfg = EdgeProbeConfig(proj_dim=8, hidden=8, epochs=2, batch_size=8, lr=5e-3, dropout=0.2)
    many = train_edge_probes_seeds(feats, train, {"dev": dev}, cfg, seeds=[3, 5],
                                   progress=False, keep_logits=True)
    one = train_edge_probes(feats, train, {"dev": dev}, cfg, seed=3, progress=False,
                            keep_logits=True)
    np.testing.assert_allclose(many[3].logits["dev"], one.logits["dev"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(many[3].mix_weights, one.mix_weights, rtol=1e-5)
    assert not np.allclose(many[5].logits["dev"], one.logits["dev"])


def test_f1_of_a_named_positive_label_and_empty_multilabel_targets() -> None:
    y = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)  # labels: entailed, not_entailed
    logits = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    # positive = index 0: tp 1, predicted 2, gold 2 -> 0.5
    assert score(logits, y, "f1", False, positive=0) == pytest.approx(0.5)
    rows = [{"tokens": ["a", "b"], "targets": [{"span1": [0, 1], "span2": [1, 2], "label": []}]}]
    enc = encode_targets(rows, ["x", "y"], [0], multilabel=True, single_span=False)
    assert enc.labels.sum() == 0


def test_span_pooling_equals_a_per_target_softmax_over_its_words() -> None:
    """Segment-softmax pooling (no padding) against a plain loop over targets and words."""
    from bertdrift.probing.edge import BatchedEdgeProbe, _batch, _by_sentence, layer_major

    feats, train, _ = _synthetic(n_sents=12)
    x = layer_major(feats)
    probe = BatchedEdgeProbe(3, 12, 2, layers=[0, 2], mix=True, single_span=False, proj_dim=5,
                             hidden=4, dropout=0.0, seeds=[1, 2]).eval()
    by_sent = _by_sentence(train)
    spans, tids = _batch(x, train, np.arange(len(by_sent)), by_sent, probe.needed_layers)
    with torch.no_grad():
        proj = [probe._project(sb.x, k) for k, sb in enumerate(spans)]
        pooled = []
        for k, span in enumerate([train.span1, train.span2]):
            words = [list(range(train.starts[train.sent[t]] + span[t, 0],
                                train.starts[train.sent[t]] + span[t, 1])) for t in tids]
            needed = np.unique(np.concatenate(words))  # the rows of spans[k].x, in order
            torch.testing.assert_close(spans[k].x, x[:, needed])
            rows = []
            for ws in words:
                p = proj[k][:, np.searchsorted(needed, ws)]  # (H, width, proj)
                a = torch.softmax(p @ probe.att_w[k][:, :, None] + probe.att_b[k][:, None, None], 1)
                rows.append((a * p).sum(1))
            pooled.append(torch.stack(rows, 1))
        h = torch.tanh(torch.baddbmm(probe.b1[:, None], torch.cat(pooled, -1), probe.w1))
        h = torch.nn.functional.layer_norm(h, (probe.hidden,)) * probe.ln_g[:, None] \
            + probe.ln_b[:, None]
        want = torch.baddbmm(probe.b2[:, None], h, probe.w2)
        got = probe(spans)
    assert got.shape == (2 * 3, len(tids), 2)
    assert (train.span1[tids, 1] - train.span1[tids, 0]).max() > 1  # multi-word spans occur
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_probes_train_on_the_gpu_like_on_the_cpu() -> None:
    """Same weights at the start, same batches; the GPU's own dropout stream and rounding move
    the logits a little, so only the learned behaviour is compared."""
    feats, train, dev = _synthetic()
    cpu = train_edge_probes(feats, train, {"dev": dev}, CFG, seed=0, progress=False)
    gpu = train_edge_probes(feats, train, {"dev": dev}, CFG, seed=0, progress=False,
                            device="cuda")
    assert gpu.scores["dev"]["1"] > 0.85, gpu.scores
    assert gpu.mix_weights is not None and int(np.argmax(gpu.mix_weights)) == 1
    for key, value in cpu.scores["dev"].items():
        assert abs(gpu.scores["dev"][key] - value) < 0.1, (key, value, gpu.scores["dev"][key])
