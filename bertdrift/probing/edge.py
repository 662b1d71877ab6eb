"""Edge probes (Tenney et al. 2019, jiant v1), every layer trained in one pass.

A probe reads frozen word features of one layer: a per-token linear projection, self-attentive
pooling over each span, and an MLP (Linear, tanh, LayerNorm, dropout, Linear) over the one or
two pooled spans; sigmoid/BCE for multi-label tasks, softmax otherwise. ``BatchedEdgeProbe``
holds the parameters of one probe per layer *and* of a scalar-mix probe (softmax-weighted sum of
all layers, Tenney et al. 2019b) as tensors with a head axis, so one optimiser step trains every
head with batched matrix products. Heads never share parameters and Adam is elementwise, so each
head follows exactly the trajectory it would follow alone: each head's initial weights and
dropout masks come from its own generator seeded by ``(seed, head)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bertdrift.errors import ConfigError, DataError
from bertdrift.io import stable_hash
from bertdrift.models import fused_optimizer
from bertdrift.probing.stats import (
    auc,
    best_threshold,
    count_kind,
    metric_from_totals,
    sentence_counts,
)

MIX = "mix"
EDGE_PROBE_VERSION = 5
"""Part of every cached edge-probe result's key: bump it when training arithmetic changes.
2: pooling without padding, fused Adam, projection weights stored layer-major; 3: span pooling
sums with ``embedding_bag``; 4: a sigmoid per label for every task (Tenney's formulation), early
stopping on a development split, per-sentence counts of the mix head stored for bootstraps;
5: per-sentence counts of the top layer's head stored too (chapter 3 judges it)."""
TENNEY_HIDDEN = 256
"""The projection and MLP width of Tenney et al.'s (2019) edge probes (``probe_hidden``'s
default; ``tiny`` uses fewer)."""


@dataclass
class SpanTargets:
    """Edge-probing targets of one split, aligned to rows of a word-feature array.

    With ``S`` sentences, ``T`` targets and ``C`` labels:

    - ``starts``: ``(S,)`` int64, the feature row of each sentence's first word;
    - ``lengths``: ``(S,)`` int64, each sentence's number of words;
    - ``sent``: ``(T,)`` int64, the sentence of each target;
    - ``span1``, ``span2``: ``(T, 2)`` int64 word offsets ``[s, e)`` inside the sentence
      (``span2`` is ``(-1, -1)`` for single-span tasks);
    - ``labels``: ``(T, C)`` float32, one-hot (multi-hot when ``multilabel``);
    - ``label_names``: the ``C`` label strings.

    Usage::

        t = encode_targets(rows, ["NOUN", "VERB"], starts, multilabel=False, single_span=True)
        len(t), t.labels.shape        # T targets, (T, 2)
        train_edge_probes(words, t, {"dev": dev_targets}, EdgeProbeConfig())
    """

    starts: np.ndarray
    lengths: np.ndarray
    sent: np.ndarray
    span1: np.ndarray
    span2: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    multilabel: bool
    single_span: bool

    def __len__(self) -> int:
        return int(len(self.sent))


def encode_targets(
    rows: Sequence[dict],
    label_names: Sequence[str],
    starts: Sequence[int],
    *,
    multilabel: bool,
    single_span: bool,
) -> SpanTargets:
    """Turn edge-probing records (``tokens``, ``targets``) into arrays; ``starts`` per record."""
    index = {name: i for i, name in enumerate(label_names)}
    sent, span1, span2, labels = [], [], [], []
    lengths = []
    for i, row in enumerate(rows):
        n = len(row["tokens"])
        lengths.append(n)
        for t in row["targets"]:
            s1 = tuple(int(v) for v in t["span1"])
            s2 = tuple(int(v) for v in t.get("span2") or (-1, -1))
            for s, e in [s1] + ([] if single_span else [s2]):
                if not 0 <= s < e <= n:
                    raise DataError(f"record {i}: span [{s}, {e}) is outside its {n} words; "
                                    "check the edge-task builder")
            names = t["label"] if isinstance(t["label"], (list, tuple)) else [t["label"]]
            unknown = [x for x in names if x not in index]
            if unknown:
                raise DataError(f"record {i}: labels {unknown} are not in the task's label list")
            if not multilabel and len(names) != 1:
                raise DataError(f"record {i}: a single-label task needs exactly one label per "
                                f"target, got {names}")
            hot = np.zeros(len(label_names), dtype=np.float32)
            hot[[index[x] for x in names]] = 1.0
            sent.append(i)
            span1.append(s1)
            span2.append(s2)
            labels.append(hot)
    if not sent:
        raise DataError("no targets to probe: the split is empty")
    return SpanTargets(
        starts=np.asarray(starts, dtype=np.int64),
        lengths=np.asarray(lengths, dtype=np.int64),
        sent=np.asarray(sent, dtype=np.int64),
        span1=np.asarray(span1, dtype=np.int64).reshape(-1, 2),
        span2=np.asarray(span2, dtype=np.int64).reshape(-1, 2),
        labels=np.stack(labels),
        label_names=list(label_names),
        multilabel=multilabel,
        single_span=single_span,
    )


@dataclass(frozen=True)
class EdgeProbeConfig:
    proj_dim: int = 256
    hidden: int = 256
    epochs: int = 10
    """The most epochs; with a development split, training stops after ``patience`` epochs
    without a lower development loss (mean over heads) and keeps the best epoch's weights."""
    patience: int = 2
    batch_size: int = 32
    """Sentences per step (all their targets go in the same step)."""
    lr: float = 1e-3
    dropout: float = 0.2
    metric: str = "accuracy"
    positive: str | None = None
    """The positive label of a binary task scored by ``f1`` (default: the second label)."""
    mix_lr_factor: float = 10.0
    """The scalar-mix weights learn at ``lr * mix_lr_factor``. jiant uses one learning rate but
    trains for tens of thousands of steps; with the few hundred steps of small profiles, the
    softmax weights would barely leave uniform (E[l] stuck at the middle layer) otherwise."""


def _head_seed(seed: int, key: str, what: str) -> int:
    return int(stable_hash("edge-probe", seed, key, what), 16) % (2**63 - 1)


class BatchedEdgeProbe(nn.Module):
    """One edge probe per selected layer plus, optionally, one scalar-mix probe, for each seed.

    Heads are ordered seed-major: head ``i * G + j`` is probe ``keys[j]`` of ``seeds[i]``, with
    ``G = len(keys)``.
    """

    def __init__(self, n_layers: int, dim: int, n_labels: int, *, layers: Sequence[int],
                 mix: bool, single_span: bool, proj_dim: int, hidden: int, dropout: float,
                 seeds: Sequence[int] = (0,), device: str | torch.device = "cpu") -> None:
        super().__init__()
        if not layers and not mix:
            raise ConfigError("a probe needs at least one layer or the scalar mix")
        if any(not 0 <= layer < n_layers for layer in layers):
            raise ConfigError(f"layers {list(layers)} out of range for {n_layers} layers")
        if not seeds:
            raise ConfigError("at least one probe seed is needed")
        self.layers = list(layers)
        self.mix = mix
        self.seeds = list(seeds)
        self.keys = [str(layer) for layer in self.layers] + ([MIX] if mix else [])
        self.n_spans = 1 if single_span else 2
        self.dropout = dropout
        self.hidden = hidden
        self.proj_dim = proj_dim
        heads = len(self.keys) * len(self.seeds)
        pairs = [(sd, k) for sd in self.seeds for k in self.keys]
        gens = [torch.Generator().manual_seed(_head_seed(sd, k, "init")) for sd, k in pairs]
        self.drop_gens = [torch.Generator(device=device).manual_seed(
            _head_seed(sd, k, "drop")) for sd, k in pairs]

        def uni(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
            bound = 1.0 / fan_in**0.5
            return nn.Parameter(torch.stack(
                [(torch.rand(shape, generator=g) * 2 - 1) * bound for g in gens]))

        s, n_seeds, nl = self.n_spans, len(self.seeds), len(self.layers)
        proj_w = uni((s, dim, proj_dim), dim).detach().view(n_seeds, len(self.keys), s, dim,
                                                            proj_dim)
        proj_b = uni((s, proj_dim), dim).detach().view(n_seeds, len(self.keys), s, proj_dim)
        att_w = uni((s, proj_dim), proj_dim).detach()
        att_b = uni((s,), proj_dim).detach()
        # Per span, in the layout the products read without copies: the layer heads' projections
        # as (layers, dim, seeds, proj) (one layer's seeds side by side), the mix heads' as
        # (seeds, dim, proj); separate parameters per span, so no gradient is scattered into a
        # larger zero tensor. Every head keeps the values its own generator drew above.
        self.proj_w = nn.ParameterList(
            [nn.Parameter(proj_w[:, :nl, k].permute(1, 2, 0, 3).contiguous()) for k in range(s)])
        self.proj_b = nn.ParameterList(
            [nn.Parameter(proj_b[:, :nl, k].permute(1, 0, 2).contiguous()) for k in range(s)])
        self.proj_mix_w = nn.ParameterList(
            [nn.Parameter(proj_w[:, nl, k].contiguous()) for k in range(s)] if mix else [])
        self.proj_mix_b = nn.ParameterList(
            [nn.Parameter(proj_b[:, nl, k].contiguous()) for k in range(s)] if mix else [])
        self.att_w = nn.ParameterList([nn.Parameter(att_w[:, k].contiguous()) for k in range(s)])
        self.att_b = nn.ParameterList([nn.Parameter(att_b[:, k].contiguous()) for k in range(s)])
        self.w1 = uni((s * proj_dim, hidden), s * proj_dim)
        self.b1 = uni((hidden,), s * proj_dim)
        self.ln_g = nn.Parameter(torch.ones(heads, hidden))
        self.ln_b = nn.Parameter(torch.zeros(heads, hidden))
        self.w2 = uni((hidden, n_labels), hidden)
        self.b2 = uni((n_labels,), hidden)
        self.mix_logits = nn.Parameter(torch.zeros(n_seeds, n_layers))
        self.mix_gamma = nn.Parameter(torch.ones(n_seeds))
        self.register_buffer("layer_index", torch.as_tensor(self.layers, dtype=torch.long))
        self.all_layers = self.layers == list(range(n_layers))
        self.to(device)  # weights are drawn on the CPU above, so every device starts alike

    def mix_weights(self) -> np.ndarray:
        """Softmax scalar-mix weights, ``(seeds, n_layers)``."""
        return torch.softmax(self.mix_logits.detach(), -1).cpu().numpy().copy()

    def _project(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Features (layers, N, dim) -> projections (heads, N, proj) for span ``k``.

        ``x`` holds every layer when the probe has a scalar mix, else only the probe's layers
        (see ``needed_layers``). All seeds' probes of one layer share one matrix product (their
        weights side by side); layer heads read constant features, so autograd only tracks the
        weights. The mix heads' inputs depend on the mix weights and are projected separately.
        """
        n_seeds, group = len(self.seeds), len(self.keys)
        nl, n, p = len(self.layers), x.shape[1], self.proj_dim
        parts = []
        if nl:
            h_in = x[self.layer_index] if self.mix and not self.all_layers else x
            w = self.proj_w[k].view(nl, -1, n_seeds * p)
            b = self.proj_b[k].view(nl, 1, n_seeds * p)
            y = torch.baddbmm(b, h_in, w).view(nl, n, n_seeds, p).permute(2, 0, 1, 3)
            parts.append(y)
        if self.mix:
            w = self.mix_gamma[:, None] * torch.softmax(self.mix_logits, -1)  # (seeds, layers)
            mixed = (w @ x.reshape(x.shape[0], -1)).view(n_seeds, n, -1)
            parts.append(torch.baddbmm(self.proj_mix_b[k][:, None], mixed,
                                       self.proj_mix_w[k])[:, None])
        out = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        return out.reshape(n_seeds * group, n, p)

    @property
    def needed_layers(self) -> list[int] | None:
        """The feature layers a batch must carry: ``None`` (all) with a scalar mix or when the
        probe reads every layer, else the probe's own layers, so a one-layer probe never gathers
        the other layers' features."""
        return None if self.mix or self.all_layers else self.layers

    def forward(self, spans: Sequence[SpanBatch]) -> torch.Tensor:
        """Logits (heads, T, labels) for a batch of T targets (one ``SpanBatch`` per span).

        Self-attentive pooling runs over the words of each span only (no padding to the widest
        span): a softmax over each target's words, then their weighted sum, as segment sums.
        """
        pooled = []
        for k, sb in enumerate(spans[: self.n_spans]):
            proj = self._project(sb.x, k)  # (H, N_k, p)
            if sb.target is None:  # every span is one word: pooling is the identity
                # index_select rather than proj[:, idx]: its backward is a vectorised
                # index_add instead of an accumulating index_put, several times faster on CPU
                pooled.append(proj.index_select(1, sb.words))
                continue
            (heads, n, p), t, v = proj.shape, sb.n_targets, len(sb.words)
            att = torch.bmm(proj, self.att_w[k][..., None])[..., 0] + self.att_b[k][:, None]
            logit = att.index_select(1, sb.words)  # (H, V)
            seg = sb.target.expand(heads, -1)
            # the shift only keeps exp() finite; the softmax does not depend on it
            top = logit.new_full((heads, t), float("-inf")).scatter_reduce(
                1, seg, logit.detach(), "amax")
            e = (logit - top.index_select(1, sb.target)).exp()
            a = e / e.new_zeros(heads, t).index_add(1, sb.target, e).index_select(1, sb.target)
            # the weighted sum over each span's words: one bag per (head, target), in one fused
            # gather-scale-sum (its backward scatters to the words and to the weights)
            head = torch.arange(heads, device=proj.device)[:, None]
            pooled.append(F.embedding_bag(
                (head * n + sb.words).reshape(-1), proj.reshape(heads * n, p),
                (head * v + sb.offsets).reshape(-1), mode="sum",
                per_sample_weights=a.reshape(-1)).view(heads, t, p))
        z = torch.cat(pooled, -1)
        h = torch.tanh(torch.baddbmm(self.b1[:, None], z, self.w1))
        h = F.layer_norm(h, (self.hidden,)) * self.ln_g[:, None] + self.ln_b[:, None]
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            masks = [torch.rand(h.shape[1:], generator=g, device=h.device) < keep
                     for g in self.drop_gens]
            h = h * torch.stack(masks).to(h.dtype) / keep
        return torch.baddbmm(self.b2[:, None], h, self.w2)


# -- batching ---------------------------------------------------------------------------------
@dataclass
class SpanBatch:
    """One span of a batch of T targets: the features of the words inside it, and for each of
    the V words of each target's span (targets in order) its row in ``x`` and its target."""

    x: torch.Tensor
    """(layers, N, dim) float32 features of the N distinct words under this span."""
    words: torch.Tensor
    """(V,) row in ``x`` of each span word."""
    target: torch.Tensor | None
    """(V,) target of each span word; ``None`` when every span is one word (then V = T)."""
    offsets: torch.Tensor
    """(T,) where each target's words start in ``words``."""
    n_targets: int


def _batch(feats: torch.Tensor, data: SpanTargets, sents: np.ndarray, by_sent: list[np.ndarray],
           layers: Sequence[int] | None = None, device: torch.device | str = "cpu"
           ) -> tuple[list[SpanBatch], np.ndarray]:
    """The spans of every target of ``sents`` with their words' features (``layers`` of
    layer-major ``feats``, default all) on ``device``, and the target ids. ``feats`` stays on
    the CPU; only each batch's words travel (as stored, float16, then widened there)."""
    tids = np.concatenate([by_sent[s] for s in sents])
    base = data.starts[data.sent[tids]]
    out = []
    for span in ([data.span1] if data.single_span else [data.span1, data.span2]):
        sp = span[tids]
        width = sp[:, 1] - sp[:, 0]
        offsets = np.cumsum(width) - width  # where each target's words start among all V
        rows = np.repeat(base + sp[:, 0] - offsets, width) + np.arange(int(width.sum()))
        needed, inverse = np.unique(rows, return_inverse=True)
        target = None if (width == 1).all() else torch.from_numpy(
            np.repeat(np.arange(len(tids)), width)).to(device)
        cols = torch.from_numpy(needed)
        # index_select, not feats[:, cols]: several times faster for a gather along words
        x = (feats.index_select(1, cols) if layers is None
             else torch.stack([feats[layer].index_select(0, cols) for layer in layers]))
        out.append(SpanBatch(x.to(device).float(),
                             torch.from_numpy(inverse.reshape(-1)).to(device), target,
                             torch.from_numpy(offsets).to(device), len(tids)))
    return out, tids


def _by_sentence(data: SpanTargets) -> list[np.ndarray]:
    order = np.argsort(data.sent, kind="stable")
    bounds = np.searchsorted(data.sent[order], np.arange(len(data.lengths) + 1))
    return [order[bounds[i]: bounds[i + 1]] for i in range(len(data.lengths))]


def _loss(logits: torch.Tensor, y: torch.Tensor, multilabel: bool = True) -> torch.Tensor:
    """Sum over heads of each head's mean binary cross-entropy over every target × label
    decision: a sigmoid per label, as in Tenney et al. (2019) and jiant, for single- and
    multi-label tasks alike (so heads' gradients stay independent)."""
    per = F.binary_cross_entropy_with_logits(
        logits, y.expand_as(logits), reduction="none").mean((1, 2))
    return per.sum()


def decisions(logits: np.ndarray, multilabel: bool, positive: int | None = None,
              threshold: float | None = None) -> np.ndarray:
    """Boolean label decisions ``(T, C)`` of one head for the task-appropriate metric: the
    sigmoid decisions (logit > 0) for multi-label tasks; the argmax label otherwise, except for
    a binary task given a ``threshold`` on the margin ``logit[positive] - logit[other]``."""
    if multilabel:
        return logits > 0
    pred = np.zeros(logits.shape, dtype=bool)
    if threshold is not None and logits.shape[1] == 2:
        k = 1 if positive is None else positive
        on = (logits[:, k] - logits[:, 1 - k]) > threshold
        pred[:, k], pred[:, 1 - k] = on, ~on
        return pred
    pred[np.arange(len(logits)), logits.argmax(-1)] = True
    return pred


def score(logits: np.ndarray, y: np.ndarray, metric: str, multilabel: bool,
          positive: int | None = None, threshold: float | None = None) -> float:
    """Score of one head: ``accuracy``, ``micro_f1``, ``macro_f1``, ``f1`` (binary F1 of label
    index ``positive``; default the second of two labels) or ``mcc`` on the task-appropriate
    decisions (see ``decisions``), or ``tenney_f1``: Tenney et al.'s micro-F1 over every
    target × label sigmoid decision (logit > 0)."""
    gold = y > 0.5
    if metric == "tenney_f1":
        return float(metric_from_totals("micro_f1", sentence_counts(
            logits > 0, gold, np.zeros(len(y), int), 1, "prf")[0]))
    pred = decisions(logits, multilabel, positive, threshold)
    if metric == "f1" and y.shape[1] != 2 and positive is None:
        metric = "micro_f1"
    kind = count_kind(metric)
    totals = sentence_counts(pred, gold, np.zeros(len(y), int), 1, kind, positive)[0]
    return float(metric_from_totals(metric, totals))


@dataclass
class EdgeProbeResult:
    """Scores per head (``"0"``..``"L"`` and ``"mix"``) on each evaluation split, in the task's
    metric (``scores``) and in Tenney et al.'s micro-F1 (``tenney``); for the last head (the
    scalar mix when there is one) the per-sentence counts of both (``counts[split]["task"]``,
    ``counts[split]["tenney"]``, arrays ``(S, K)``, see ``stats.sentence_counts``), the top
    layer's head's counts in the task metric (``counts[split]["top"]``) and, for a
    binary task, ``extra[split]`` with its threshold-free AUC and its MCC; the training budget
    (``epochs_run``, ``best_epoch``, ``steps``)."""

    scores: dict[str, dict[str, float]]
    mix_weights: np.ndarray | None
    losses: list[float] = field(default_factory=list)
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    tenney: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    extra: dict[str, dict[str, float]] = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    steps: int = 0
    threshold: float | None = None


class EarlyStopping:
    """Early stopping on a development loss, shared by the edge and structural probes: after
    each epoch, ``step(model, loss, epoch)`` keeps a copy of the weights when ``loss`` is the
    lowest so far and returns True once ``patience`` epochs have passed without a lower one;
    ``restore(model)`` loads the best weights back (if any were kept)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best, self.best_epoch = float("inf"), 0
        self.state: dict[str, torch.Tensor] | None = None

    def step(self, model: nn.Module, loss: float, epoch: int) -> bool:
        if loss < self.best:
            self.best, self.best_epoch = loss, epoch
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        return epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> bool:
        if self.state is None:
            return False
        model.load_state_dict(self.state)
        return True


WIDEN_BYTES = 1 << 30
"""Features up to this size in float32 are widened once, before training, instead of once per
batch (float16 to float32 is exact either way); larger ones stay float16 in memory."""


def layer_major(feats: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(n_words, n_layers, dim) features as one contiguous (n_layers, n_words, dim) tensor, so
    each batch is a gather along words and every layer's projection one batched product;
    float32 when that takes at most ``WIDEN_BYTES``."""
    t = torch.from_numpy(np.asarray(feats)) if not isinstance(feats, torch.Tensor) else feats
    t = t.permute(1, 0, 2)
    if t.dtype != torch.float32 and t.numel() * 4 <= WIDEN_BYTES:
        return t.to(torch.float32, memory_format=torch.contiguous_format)
    return t.contiguous()


def predict(probe: BatchedEdgeProbe, feats: torch.Tensor, data: SpanTargets,
            batch_size: int = 64) -> np.ndarray:
    """Logits (heads, n_targets, labels) in target order; ``feats`` layer-major."""
    probe.eval()
    device = next(probe.parameters()).device
    by_sent = _by_sentence(data)
    sents = np.array([i for i, t in enumerate(by_sent) if len(t)])
    out = np.zeros((len(probe.keys) * len(probe.seeds), len(data), data.labels.shape[1]), dtype=np.float32)
    with torch.no_grad():
        for b in range(0, len(sents), batch_size):
            spans, tids = _batch(feats, data, sents[b: b + batch_size], by_sent,
                                 probe.needed_layers, device)
            out[:, tids] = probe(spans).cpu().numpy()
    return out


def train_edge_probes(
    feats: torch.Tensor | np.ndarray,
    train: SpanTargets,
    evals: dict[str, SpanTargets],
    config: EdgeProbeConfig,
    *,
    layers: Sequence[int] | None = None,
    mix: bool = True,
    seed: int = 0,
    progress: bool = True,
    keep_logits: bool = False,
    device: str | torch.device = "cpu",
    dev: SpanTargets | None = None,
) -> EdgeProbeResult:
    """Train one probe per layer in ``layers`` (default: all) plus a scalar-mix probe, together.

    ``feats`` is (n_words, n_layers, dim), any float dtype (float16 stays float16 in memory);
    ``train``/``evals`` index its rows. The batch order depends only on ``seed``, so training a
    single layer with the same seed reproduces that layer's head of the batched run (without
    ``dev``: early stopping follows the mean development loss of all heads).
    """
    return train_edge_probes_seeds(feats, train, evals, config, layers=layers, mix=mix,
                                   seeds=[seed], progress=progress,
                                   keep_logits=keep_logits, device=device, dev=dev)[seed]


def _dev_loss(probe: BatchedEdgeProbe, feats: torch.Tensor, dev: SpanTargets) -> float:
    logits = torch.from_numpy(predict(probe, feats, dev))
    return float(F.binary_cross_entropy_with_logits(
        logits, torch.from_numpy(dev.labels).expand_as(logits)))


def _positive(config: EdgeProbeConfig, data: SpanTargets) -> int | None:
    if config.positive in data.label_names:
        return data.label_names.index(config.positive)
    return 1 if config.metric == "f1" and len(data.label_names) == 2 else None


def _margin(logits: np.ndarray, k: int) -> np.ndarray:
    return logits[:, k] - logits[:, 1 - k]


def train_edge_probes_seeds(
    feats: torch.Tensor | np.ndarray,
    train: SpanTargets,
    evals: dict[str, SpanTargets],
    config: EdgeProbeConfig,
    *,
    layers: Sequence[int] | None = None,
    mix: bool = True,
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = True,
    keep_logits: bool = False,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
    dev: SpanTargets | None = None,
) -> dict[int, EdgeProbeResult]:
    """``train_edge_probes`` for several probe seeds in the same pass: each seed has its own
    initial weights and dropout masks; the batch order follows the first seed. The probes train
    on ``device`` (the features stay in CPU memory; each batch's words are copied over).
    ``max_steps`` stops training after that many steps (a bounded run).

    With a ``dev`` split, training runs at most ``config.epochs`` epochs and stops after
    ``config.patience`` epochs without a lower development loss (mean over all heads), keeping
    the best epoch's weights; a binary task's decision threshold is chosen on ``dev`` too (per
    head, maximising the positive class's F1)."""
    feats = layer_major(feats)
    n_layers, n_words, dim = feats.shape
    layers = list(range(n_layers)) if layers is None else list(layers)
    seeds = list(seeds)
    probe = BatchedEdgeProbe(n_layers, dim, train.labels.shape[1], layers=layers, mix=mix,
                             single_span=train.single_span, proj_dim=config.proj_dim,
                             hidden=config.hidden, dropout=config.dropout, seeds=seeds,
                             device=device)
    mix_params = [probe.mix_logits, probe.mix_gamma]
    others = [p for n, p in probe.named_parameters() if not n.startswith("mix_")]
    opt = fused_optimizer(torch.optim.Adam, [
        {"params": others}, {"params": mix_params, "lr": config.lr * config.mix_lr_factor}],
        config.lr)
    rng = np.random.default_rng(seeds[0])
    by_sent = _by_sentence(train)
    sents = np.array([i for i, t in enumerate(by_sent) if len(t)])
    per_epoch = -(-len(sents) // config.batch_size)
    heads = len(probe.keys) * len(seeds)
    step_losses: list[torch.Tensor] = []  # kept on the device: no synchronisation per step
    bar = tqdm(total=config.epochs * per_epoch, desc=f"edge probes ×{heads}",
               disable=not progress, leave=False)
    stopper, epochs_run = EarlyStopping(config.patience), 0
    for epoch in range(config.epochs):
        probe.train()
        order = rng.permutation(sents)
        for b in range(0, len(order), config.batch_size):
            if max_steps is not None and len(step_losses) >= max_steps:
                break
            spans, tids = _batch(feats, train, order[b: b + config.batch_size], by_sent,
                                 probe.needed_layers, device)
            y = torch.from_numpy(train.labels[tids]).to(device)
            loss = _loss(probe(spans), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_losses.append(loss.detach())
            bar.update()
        epochs_run = epoch + 1
        if dev is not None and stopper.step(probe, _dev_loss(probe, feats, dev), epoch + 1):
            break
    bar.close()
    best_epoch = stopper.best_epoch if stopper.restore(probe) else epochs_run
    losses = (torch.stack(step_losses) / heads).tolist() if step_losses else []
    group = len(probe.keys)
    logits_by_split = {split: predict(probe, feats, data) for split, data in evals.items()}
    dev_logits = predict(probe, feats, dev) if dev is not None else None
    weights = probe.mix_weights()
    binary = not train.multilabel and train.labels.shape[1] == 2 and config.metric == "f1"
    top = probe.keys.index(str(max(layers))) if layers else group - 1  # highest layer's head
    out: dict[int, EdgeProbeResult] = {}
    for i, sd in enumerate(seeds):
        res = EdgeProbeResult({}, weights[i] if mix else None, losses, epochs_run=epochs_run,
                              best_epoch=best_epoch, steps=len(step_losses))
        thresholds: list[float | None] = [None] * group
        if binary and dev_logits is not None:
            k = _positive(config, dev)
            assert k is not None
            thresholds = [best_threshold(_margin(dev_logits[i * group + j], k),
                                         dev.labels[:, k] > 0.5) for j in range(group)]
            res.threshold = thresholds[-1]
        for split, data in evals.items():
            logits = logits_by_split[split][i * group: (i + 1) * group]
            pos = _positive(config, data)
            res.scores[split] = {k: score(logits[j], data.labels, config.metric,
                                          data.multilabel, pos, thresholds[j])
                                 for j, k in enumerate(probe.keys)}
            res.tenney[split] = {k: score(logits[j], data.labels, "tenney_f1", data.multilabel)
                                 for j, k in enumerate(probe.keys)}
            last, gold = logits[-1], data.labels > 0.5
            n_sent = len(data.lengths)
            kind = "binary" if binary else count_kind(config.metric)
            res.counts[split] = {
                "task": sentence_counts(decisions(last, data.multilabel, pos, thresholds[-1]),
                                        gold, data.sent, n_sent, kind, pos),
                "tenney": sentence_counts(last > 0, gold, data.sent, n_sent, "prf"),
                "top": sentence_counts(decisions(logits[top], data.multilabel, pos,
                                                 thresholds[top]),
                                       gold, data.sent, n_sent, kind, pos)}
            if binary and pos is not None:
                totals = res.counts[split]["task"].sum(0)
                res.extra[split] = {"auc": auc(_margin(last, pos), gold[:, pos]),
                                    "mcc": float(metric_from_totals("mcc", totals))}
            if keep_logits:
                res.logits[split] = logits
        out[sd] = res
    return out
