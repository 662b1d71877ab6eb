"""Probing: edge probes, structural probes and control tasks, before vs after fine-tuning."""

from __future__ import annotations

from bertdrift.probing.edge import (
    BatchedEdgeProbe,
    EdgeProbeConfig,
    EdgeProbeResult,
    SpanTargets,
    encode_targets,
    score,
    train_edge_probes,
)

__all__ = [
    "BatchedEdgeProbe",
    "EdgeProbeConfig",
    "EdgeProbeResult",
    "SpanTargets",
    "encode_targets",
    "score",
    "train_edge_probes",
]
