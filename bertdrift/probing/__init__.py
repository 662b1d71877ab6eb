"""Probing: edge probes, structural probes and control tasks, before vs after fine-tuning.

The experiment of chapter 3 (every model, probe and seed, cached) is
``bertdrift.probing.run.run_probing``.
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
