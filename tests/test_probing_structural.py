"""Structural-probe metrics against trees worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertdrift.errors import DataError
from bertdrift.probing.structural import (
    StructuralConfig,
    mst_edges,
    parents_from_heads,
    root_accuracy,
    spearman_by_length,
    train_structural_probes,
    tree_distances,
    trees_from_ud,
    uuas,
)

torch.set_num_threads(2)

# "the cat sat on mats ." : the<-cat, cat<-sat, sat=root, on<-mats, mats<-sat, .<-sat
HEADS = [2, 3, 0, 5, 3, 3]
UPOS = ["DET", "NOUN", "VERB", "ADP", "NOUN", "PUNCT"]


def test_tree_distances_and_depths_by_hand() -> None:
    d = tree_distances(parents_from_heads(HEADS))
    assert d[0, 4] == 3  # the-cat-sat-mats
    assert d[3, 1] == 3  # on-mats-sat-cat
    assert d[2].tolist() == [2, 1, 0, 2, 1, 1]
    with pytest.raises(DataError):
        parents_from_heads([0, 0])


def test_uuas_root_accuracy_by_hand() -> None:
    gold = tree_distances(parents_from_heads(HEADS))
    punct = np.array([u == "PUNCT" for u in UPOS])
    assert uuas([gold], [gold], [punct]) == 1.0
    # prediction: a chain the-cat-sat-on-mats over the non-punctuation words
    chain = np.abs(np.subtract.outer(np.arange(6), np.arange(6))).astype(float)
    # gold edges (non-punct): {0-1, 1-2, 2-4, 3-4}; chain MST: {0-1, 1-2, 2-3, 3-4} -> 3/4
    assert mst_edges(chain[:5, :5]) == {(0, 1), (1, 2), (2, 3), (3, 4)}
    assert uuas([chain], [gold], [punct]) == 0.75
    depth = gold[2]
    assert root_accuracy([depth], [depth], [punct]) == 1.0
    wrong = depth.copy()
    wrong[5] = -1.0  # the shallowest word is punctuation: ignored, root still found
    assert root_accuracy([wrong], [depth], [punct]) == 1.0
    wrong[0] = -2.0
    assert root_accuracy([wrong, depth], [depth, depth], [punct, punct]) == 0.5


def test_spearman_by_length_by_hand() -> None:
    gold = np.arange(6, dtype=float)
    assert spearman_by_length([gold * 2 + 1], [gold]) == pytest.approx(1.0)
    assert spearman_by_length([-gold], [gold]) == pytest.approx(-1.0)
    # lengths outside 5..50 are ignored; each length counts once however many sentences
    short = np.arange(3, dtype=float)
    long = np.arange(7, dtype=float)
    value = spearman_by_length([short, gold, gold, long], [-short, gold, gold, -long])
    assert value == pytest.approx(0.0)
    # distance matrices: Spearman per row
    d = tree_distances(parents_from_heads(HEADS))
    assert spearman_by_length([d**2], [d]) == pytest.approx(1.0)


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                         reason="needs a CUDA GPU"))])
def test_distance_probe_recovers_trees_encoded_in_one_layer(device: str) -> None:
    rng = np.random.default_rng(0)
    rows, starts, chunks = [], [], []
    at = 0
    for _ in range(80):
        n = int(rng.integers(5, 10))
        heads = [0] + [int(rng.integers(1, i + 1)) for i in range(1, n)]  # a random tree
        d = tree_distances(parents_from_heads(heads))
        # layer 1 holds a noisy isometric embedding of the tree (classical MDS); layer 0 noise
        j = np.eye(n) - 1 / n
        w, v = np.linalg.eigh(-0.5 * j @ d @ j)
        emb = v[:, -4:] * np.sqrt(np.clip(w[-4:], 0, None))
        x = rng.normal(size=(n, 2, 8)).astype(np.float32)
        x[:, 1, :4] = emb
        chunks.append(x)
        rows.append({"head": heads, "upos": ["X"] * n})
        starts.append(at)
        at += n
    feats = np.concatenate(chunks)
    train, dev = trees_from_ud(rows[:60], starts[:60]), trees_from_ud(rows[60:], starts[60:])
    cfg = StructuralConfig(rank=8, epochs=30, batch_size=10, lr=1e-2)
    res = train_structural_probes(feats, train, dev, "distance", cfg, progress=False,
                                  device=device)
    assert res[1]["dspr"] > res[0]["dspr"] + 0.2, res
    assert res[1]["uuas"] > res[0]["uuas"], res
