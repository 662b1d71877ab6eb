"""Probing (chapter 3): edge probes, structural probes and control tasks, before vs after
fine-tuning.

| module | what it holds |
|---|---|
| ``edge`` | Tenney et al.'s edge probe (span projection, self-attentive pooling, MLP; every layer and the scalar mix trained in one pass): ``SpanTargets``, ``encode_targets``, ``train_edge_probes`` |
| ``structural`` | Hewitt & Manning's distance and depth probes: ``TreeData``, ``trees_from_ud``, ``train_structural_probes``, ``uuas``, ``root_accuracy`` |
| ``control`` | Hewitt & Liang's control tasks and selectivity |
| ``stats`` | metrics from per-sentence counts (Tenney's micro-F1, F1, MCC, AUC) as the score functions ``bertdrift.inference``'s sentence bootstrap resamples, dev-chosen thresholds, trivial baselines, the informative-task rule |
| ``floor`` | ``random_encoder``: the randomly initialised encoder every probe is compared with |
| ``names`` | the probed models' names (``"mnli"`` = seed 0, ``"mnli@1"``, ...) and ``pooled`` tables (one model per fine-tuning task) |
| ``run`` | ``run_probing(profile)``: every probe on every model (every fine-tuning seed) and probe seed, cached |
| ``forgetting`` | each probe read at the scalar mix and the top layer, floors and margins, seed-mean changes with their errors, the ``forgetting`` claim record |
| ``summary`` | the chapter's tables and the numbers its text quotes |
"""

from __future__ import annotations

from bertdrift.probing.control import control_label, control_rows, label_distribution, selectivity
from bertdrift.probing.edge import (
    BatchedEdgeProbe,
    EdgeProbeConfig,
    EdgeProbeResult,
    SpanTargets,
    encode_targets,
    score,
    train_edge_probes,
    train_edge_probes_seeds,
)
from bertdrift.probing.run import ProbingResults, run_probing
from bertdrift.probing.structural import (
    BatchedStructuralProbe,
    StructuralConfig,
    TreeData,
    root_accuracy,
    spearman_by_length,
    train_structural_probes,
    train_structural_probes_seeds,
    trees_from_ud,
    uuas,
)

__all__ = [
    "ProbingResults",
    "run_probing",
    "BatchedEdgeProbe",
    "BatchedStructuralProbe",
    "EdgeProbeConfig",
    "EdgeProbeResult",
    "SpanTargets",
    "StructuralConfig",
    "TreeData",
    "control_label",
    "control_rows",
    "encode_targets",
    "label_distribution",
    "root_accuracy",
    "score",
    "selectivity",
    "spearman_by_length",
    "train_edge_probes",
    "train_edge_probes_seeds",
    "train_structural_probes",
    "train_structural_probes_seeds",
    "trees_from_ud",
    "uuas",
]
