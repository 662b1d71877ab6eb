"""Structural probes (Hewitt & Manning 2019), one per layer, trained together.

A distance probe learns a rank-``r`` map ``B`` so that ``||B(h_i - h_j)||^2`` approximates the
number of edges between words ``i`` and ``j`` in the dependency tree; a depth probe learns
``||B h_i||^2`` ~ depth of word ``i``. ``B`` has shape ``(layers, dim, rank)`` so every layer's
probe trains in the same pass. Evaluation as in the paper's code: UUAS of the minimum spanning
tree of predicted distances (punctuation excluded), root accuracy (shallowest non-punctuation
word), and Spearman correlations averaged per sentence length and then over lengths 5-50.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path
from scipy.stats import rankdata
from tqdm.auto import tqdm

from bertdrift.errors import ConfigError, DataError
from bertdrift.io import stable_hash
from bertdrift.probing.edge import EarlyStopping, layer_major

PUNCT = frozenset({"PUNCT"})


def parents_from_heads(heads: Sequence[int]) -> np.ndarray:
    """UD heads (1-based, 0 = root) to 0-based parent indices (-1 = root), checked."""
    parents = np.asarray(heads, dtype=np.int64) - 1
    n = len(parents)
    if (parents < -1).any() or (parents >= n).any() or (parents == np.arange(n)).any():
        raise DataError(f"invalid heads {list(heads)}: each must be 0 (root) or another word")
    if (parents == -1).sum() != 1:
        raise DataError(f"heads {list(heads)} must contain exactly one root (head 0)")
    return parents


def tree_distances(parents: np.ndarray) -> np.ndarray:
    """Path lengths (edges) between every pair of words of a tree, ``(n, n)`` float."""
    n = len(parents)
    child = np.flatnonzero(parents >= 0)
    adj = csr_matrix((np.ones(len(child)), (child, parents[child])), shape=(n, n))
    dist = shortest_path(adj, directed=False, unweighted=True)
    if np.isinf(dist).any():
        raise DataError("the heads do not form a connected tree")
    return dist


def tree_depths(parents: np.ndarray) -> np.ndarray:
    root = int(np.flatnonzero(parents == -1)[0])
    return tree_distances(parents)[root]


def mst_edges(dist: np.ndarray) -> set[tuple[int, int]]:
    """Edges ``(i, j)`` with ``i < j`` of a minimum spanning tree (Prim) of a distance matrix."""
    n = len(dist)
    if n < 2:
        return set()
    visited = np.zeros(n, dtype=bool)
    visited[0] = True
    best = dist[0].astype(np.float64).copy()
    link = np.zeros(n, dtype=np.int64)
    edges = set()
    for _ in range(n - 1):
        cand = np.where(visited, np.inf, best)
        j = int(np.argmin(cand))
        i = int(link[j])
        edges.add((min(i, j), max(i, j)))
        visited[j] = True
        closer = dist[j] < best
        best[closer] = dist[j][closer]
        link[closer] = j
    return edges


def _keep(punct: np.ndarray) -> np.ndarray:
    keep = np.flatnonzero(~punct)
    return keep if len(keep) else np.arange(len(punct))


def uuas(preds: Sequence[np.ndarray], golds: Sequence[np.ndarray],
         puncts: Sequence[np.ndarray]) -> float:
    """Undirected unlabelled attachment score of predicted-distance MSTs vs gold-distance MSTs."""
    correct = total = 0
    for pred, gold, punct in zip(preds, golds, puncts, strict=True):
        keep = _keep(punct)
        g = mst_edges(gold[np.ix_(keep, keep)])
        p = mst_edges(pred[np.ix_(keep, keep)])
        correct += len(g & p)
        total += len(g)
    return correct / total if total else float("nan")


def root_accuracy(preds: Sequence[np.ndarray], golds: Sequence[np.ndarray],
                  puncts: Sequence[np.ndarray]) -> float:
    """Share of sentences whose shallowest predicted non-punctuation word is the gold root."""
    hits = []
    for pred, gold, punct in zip(preds, golds, puncts, strict=True):
        keep = _keep(punct)
        hits.append(keep[np.argmin(pred[keep])] == keep[np.argmin(gold[keep])])
    return float(np.mean(hits)) if hits else float("nan")


def _rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ra, rb = rankdata(a, axis=-1), rankdata(b, axis=-1)
    ra = ra - ra.mean(-1, keepdims=True)
    rb = rb - rb.mean(-1, keepdims=True)
    denom = np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(-1) / denom
    return np.nan_to_num(rho, nan=0.0)  # a constant prediction correlates with nothing


def spearman_by_length(preds: Sequence[np.ndarray], golds: Sequence[np.ndarray],
                       lo: int = 5, hi: int = 50) -> float:
    """Hewitt & Manning's DSpr./NSpr.: Spearman per word (distance rows) or per sentence (depth
    vectors), averaged within each sentence length, then over lengths ``lo``..``hi``."""
    by_len: dict[int, list[float]] = {}
    for pred, gold in zip(preds, golds, strict=True):
        n = len(gold)
        if lo <= n <= hi:
            by_len.setdefault(n, []).extend(np.atleast_1d(_rowwise_spearman(pred, gold)))
    if not by_len:
        return float("nan")
    return float(np.mean([np.mean(v) for v in by_len.values()]))


@dataclass
class TreeData:
    """Gold trees of ``S`` sentences, aligned to the rows of a word-feature array.

    - ``starts``, ``lengths``: ``(S,)`` int64, each sentence's first feature row and its
      number of words ``n``;
    - ``distances``: per sentence an ``(n, n)`` array of path lengths between words in the tree;
    - ``depths``: per sentence an ``(n,)`` array, each word's distance from the root;
    - ``punct``: per sentence an ``(n,)`` bool array marking punctuation (left out of UUAS,
      root accuracy and the Spearman scores).

    Usage::

        trees = trees_from_ud(load_ud("dev").to_list(), starts)
        trees.distances[0].shape      # (n, n) for the first sentence
        train_structural_probes(words, train_trees, trees, "distance", StructuralConfig())
    """

    starts: np.ndarray
    lengths: np.ndarray
    distances: list[np.ndarray]
    depths: list[np.ndarray]
    punct: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.lengths)


def trees_from_ud(rows: Sequence[dict], starts: Sequence[int]) -> TreeData:
    """Build gold distances/depths from UD records with ``head`` and ``upos`` columns."""
    dists, depths, puncts, lengths = [], [], [], []
    for row in rows:
        parents = parents_from_heads(row["head"])
        d = tree_distances(parents)
        dists.append(d)
        depths.append(d[int(np.flatnonzero(parents == -1)[0])])
        puncts.append(np.array([u in PUNCT for u in row["upos"]]))
        lengths.append(len(parents))
    return TreeData(np.asarray(starts, dtype=np.int64), np.asarray(lengths), dists, depths,
                    puncts)


@dataclass(frozen=True)
class StructuralConfig:
    rank: int = 64
    epochs: int = 10
    batch_size: int = 20
    lr: float = 1e-3
    patience: int = 2
    """With a development split: stop after ``patience`` epochs without a lower mean
    development loss, keeping the best epoch's weights."""


class BatchedStructuralProbe(torch.nn.Module):
    """``B`` of shape ``(seeds * layers, dim, rank)`` (seed-major); ``kind`` is ``"distance"``
    or ``"depth"``. Each (seed, layer) probe has its own seeded initialisation."""

    def __init__(self, layers: Sequence[int], dim: int, rank: int, kind: str,
                 seeds: Sequence[int] = (0,)) -> None:
        super().__init__()
        if kind not in ("distance", "depth"):
            raise ConfigError(f"kind={kind!r}; use 'distance' or 'depth'")
        self.kind = kind
        self.layers = list(layers)
        self.seeds = list(seeds)
        self.rank = rank
        mats = []
        for seed in self.seeds:
            for layer in self.layers:
                g = torch.Generator().manual_seed(
                    int(stable_hash("structural", kind, seed, layer), 16) % (2**63 - 1))
                mats.append((torch.rand(dim, rank, generator=g) * 2 - 1) * 0.05)
        self.proj = torch.nn.Parameter(torch.stack(mats))
        self.register_buffer("layer_index", torch.as_tensor(self.layers, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Layer-major (n_layers, S, n, dim) -> (heads, S, n, n) squared distances, or
        (heads, S, n) squared norms for depth; heads = seeds × layers."""
        n_layers, s, n, d = x.shape
        if self.layers != list(range(n_layers)):
            x = x[self.layer_index]
        nl, ns, r = len(self.layers), len(self.seeds), self.rank
        w = self.proj.view(ns, nl, d, r).permute(1, 2, 0, 3).reshape(nl, d, ns * r)
        p = torch.bmm(x.reshape(nl, s * n, d), w).view(nl, s, n, ns, r)
        p = p.permute(3, 0, 1, 2, 4).reshape(ns * nl, s, n, r)
        sq = (p * p).sum(-1)
        if self.kind == "depth":
            return sq
        flat = p.reshape(ns * nl * s, n, r)
        gram = torch.bmm(flat, flat.transpose(1, 2)).view(ns * nl, s, n, n)
        return (sq[..., :, None] + sq[..., None, :] - 2 * gram).clamp_min(0)


def _pad_batch(feats: torch.Tensor, data: TreeData, sents: np.ndarray, kind: str,
               device: torch.device | str = "cpu"):
    n = int(data.lengths[sents].max())
    pos = np.arange(n)[None]
    mask = pos < data.lengths[sents][:, None]
    rows = np.where(mask, data.starts[sents][:, None] + pos, 0)
    x = feats[:, torch.from_numpy(rows)].to(device).float()
    gold = np.zeros((len(sents), n, n) if kind == "distance" else (len(sents), n), np.float32)
    for k, s in enumerate(sents):
        m = data.lengths[s]
        if kind == "distance":
            gold[k, :m, :m] = data.distances[s]
        else:
            gold[k, :m] = data.depths[s]
    return x, torch.from_numpy(mask).to(device), torch.from_numpy(gold).to(device)


def _loss(pred: torch.Tensor, gold: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """L1 loss normalised by length (depth) or length squared (distance), summed over layers."""
    lengths = mask.sum(1).float()
    if kind == "distance":
        m = (mask[:, :, None] & mask[:, None, :]).float()
        per = ((pred - gold).abs() * m).sum((-1, -2)) / lengths**2
    else:
        per = ((pred - gold).abs() * mask.float()).sum(-1) / lengths
    return per.mean(-1).sum()


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator
                   ) -> list[np.ndarray]:
    """Batches of sentences of similar length (little padding), in random order."""
    order = np.argsort(lengths + rng.uniform(0, 4, len(lengths)), kind="stable")
    batches = [order[b: b + batch_size] for b in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def predict_structure(probe: BatchedStructuralProbe, feats: torch.Tensor, data: TreeData,
                      batch_size: int = 32) -> list[list[np.ndarray]]:
    """Per head (seed-major, then layer), the predicted matrix (distance) or vector (depth) of
    every sentence; ``feats`` layer-major."""
    probe.eval()
    device = probe.proj.device
    heads = len(probe.layers) * len(probe.seeds)
    out: list[list[np.ndarray | None]] = [[None] * len(data) for _ in range(heads)]
    order = np.argsort(data.lengths, kind="stable")
    with torch.no_grad():
        for b in range(0, len(data), batch_size):
            sents = order[b: b + batch_size]
            x, _, _ = _pad_batch(feats, data, sents, probe.kind, device)
            pred = probe(x).cpu().numpy()
            for k, s in enumerate(sents):
                m = data.lengths[s]
                for h in range(heads):
                    out[h][s] = (pred[h, k, :m, :m] if probe.kind == "distance"
                                 else pred[h, k, :m])
    return out  # type: ignore[return-value]


def evaluate_structure(kind: str, preds: list[np.ndarray], data: TreeData) -> dict[str, float]:
    if kind == "distance":
        return {"uuas": uuas(preds, data.distances, data.punct),
                "dspr": spearman_by_length(preds, data.distances)}
    return {"root_acc": root_accuracy(preds, data.depths, data.punct),
            "nspr": spearman_by_length(preds, data.depths)}


STRUCTURAL_METRICS = {"distance": ("uuas", "dspr"), "depth": ("root_acc", "nspr")}


def sentence_stats(kind: str, preds: Sequence[np.ndarray], data: TreeData) -> np.ndarray:
    """Per sentence ``(S, 4)``: for ``distance`` (UUAS edges right, UUAS edges, mean Spearman of
    the distance rows, length); for ``depth`` (root right, 1, Spearman of depths, length), so
    that ``structural_score`` can re-weight sentences in a bootstrap."""
    out = np.zeros((len(data), 4))
    for s, pred in enumerate(preds):
        keep = _keep(data.punct[s])
        if kind == "distance":
            gold = data.distances[s]
            g = mst_edges(gold[np.ix_(keep, keep)])
            p = mst_edges(pred[np.ix_(keep, keep)])
            out[s, :2] = len(g & p), len(g)
        else:
            gold = data.depths[s]
            out[s, :2] = keep[np.argmin(pred[keep])] == keep[np.argmin(gold[keep])], 1
        out[s, 2] = float(np.mean(np.atleast_1d(_rowwise_spearman(pred, gold))))
        out[s, 3] = len(gold)
    return out


def structural_score(metric: str, stats: np.ndarray, weights: np.ndarray | None = None,
                     lo: int = 5, hi: int = 50) -> np.ndarray:
    """``metric`` (uuas / root_acc: a ratio of sums; dspr / nspr: Spearman averaged per length
    over lengths ``lo``..``hi``) from ``sentence_stats``, for each row of sentence
    ``weights`` ``(B, S)`` (default: every sentence once); returns ``(B,)``."""
    w = np.ones((1, len(stats))) if weights is None else np.asarray(weights, np.float64)
    if metric in ("uuas", "root_acc"):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(w @ stats[:, 0] / (w @ stats[:, 1]))
    lengths = stats[:, 3]
    per_len = []
    for n in np.unique(lengths[(lengths >= lo) & (lengths <= hi)]):
        idx = lengths == n
        mass = w[:, idx].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_len.append(np.where(mass > 0, w[:, idx] @ stats[idx, 2] / mass, np.nan))
    if not per_len:
        return np.full(len(w), np.nan)
    return np.nanmean(np.stack(per_len), 0)


def baseline_predictions(kind: str, data: TreeData) -> list[np.ndarray]:
    """The structure-free baselines on the same sentences: for ``distance`` the linear-order
    distance ``|i - j|`` (its spanning tree is the chain of adjacent words); for ``depth`` the
    word's position (left to right, so the first non-punctuation word is the guessed root)."""
    out = []
    for n in data.lengths:
        pos = np.arange(int(n), dtype=np.float64)
        out.append(np.abs(pos[:, None] - pos[None]) if kind == "distance" else pos)
    return out
def train_structural_probes(feats: torch.Tensor | np.ndarray, train: TreeData, dev: TreeData,
                            kind: str, config: StructuralConfig, *,
                            layers: Sequence[int] | None = None, seed: int = 0,
                            progress: bool = True, device: str | torch.device = "cpu"
                            ) -> dict[int, dict[str, float]]:
    """Train a ``kind`` probe per layer together; return each layer's dev metrics."""
    return train_structural_probes_seeds(feats, train, dev, kind, config, layers=layers,
                                         seeds=[seed], progress=progress, device=device)[seed]


def _tree_loss(probe: BatchedStructuralProbe, feats: torch.Tensor, data: TreeData,
               batch_size: int = 32) -> float:
    probe.eval()
    device = probe.proj.device
    total = 0.0
    with torch.no_grad():
        for b in range(0, len(data), batch_size):
            sents = np.arange(b, min(b + batch_size, len(data)))
            x, mask, gold = _pad_batch(feats, data, sents, probe.kind, device)
            total += float(_loss(probe(x), gold, mask, probe.kind)) * len(sents)
    return total / max(len(data), 1)


def train_structural_probes_seeds(feats: torch.Tensor | np.ndarray, train: TreeData,
                                  dev: TreeData, kind: str, config: StructuralConfig, *,
                                  layers: Sequence[int] | None = None,
                                  seeds: Sequence[int] = (0, 1, 2), progress: bool = True,
                                  device: str | torch.device = "cpu",
                                  max_steps: int | None = None,
                                  stop_on: TreeData | None = None, with_stats: bool = False
                                  ) -> dict[int, dict[int, dict[str, Any]]]:
    """Every (seed, layer) probe in one pass: ``{seed: {layer: metrics}}``. Seeds differ in
    initialisation; the batch order follows the first seed. The probes train on ``device``;
    the features stay in CPU memory. With ``stop_on`` (a development split), training stops
    early as in ``StructuralConfig.patience``; ``with_stats`` adds each head's
    ``sentence_stats`` (key ``stats``) and ``epochs_run``. ``max_steps`` stops training after
    that many steps (a bounded run)."""
    feats = layer_major(feats)
    layers = list(range(feats.shape[0])) if layers is None else list(layers)
    seeds = list(seeds)
    probe = BatchedStructuralProbe(layers, feats.shape[2], config.rank, kind, seeds).to(device)
    opt = torch.optim.Adam(probe.parameters(), lr=config.lr)
    rng = np.random.default_rng(seeds[0])
    steps = config.epochs * -(-len(train) // config.batch_size)
    bar = tqdm(total=steps, desc=f"{kind} probes ×{len(layers) * len(seeds)}",
               disable=not progress, leave=False)
    stopper, epochs_run, done = EarlyStopping(config.patience), 0, 0
    for epoch in range(config.epochs):
        probe.train()
        for batch in length_batches(train.lengths, config.batch_size, rng):
            if max_steps is not None and done >= max_steps:
                break
            done += 1
            x, mask, gold = _pad_batch(feats, train, batch, kind, device)
            loss = _loss(probe(x), gold, mask, kind)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update()
        epochs_run = epoch + 1
        if stop_on is not None and stopper.step(probe, _tree_loss(probe, feats, stop_on),
                                                epoch + 1):
            break
    bar.close()
    stopper.restore(probe)
    preds = predict_structure(probe, feats, dev)
    nl = len(layers)
    out: dict[int, dict[int, dict[str, Any]]] = {}
    for i, sd in enumerate(seeds):
        out[sd] = {}
        for h, layer in enumerate(layers):
            if with_stats:  # the metrics from the per-sentence stats: one MST per sentence
                stats = sentence_stats(kind, preds[i * nl + h], dev)
                metrics: dict[str, Any] = {m: float(structural_score(m, stats)[0])
                                           for m in STRUCTURAL_METRICS[kind]}
                metrics.update(stats=stats, epochs_run=epochs_run)
            else:
                metrics = dict(evaluate_structure(kind, preds[i * nl + h], dev))
            out[sd][layer] = metrics
    return out
