"""Loaders for every corpus bertdrift uses, each returning a ``datasets.Dataset``.

Files are found by :func:`bertdrift.data.sources.resolve` (data directory → download cache →
official source). See each module for the exact columns.
"""

from __future__ import annotations

from bertdrift.data.mnli import MNLI_LABELS, load_mnli
from bertdrift.data.sources import resolve
from bertdrift.data.squad import load_squad, split_squad_by_article
from bertdrift.data.ud import load_ud, read_conllu

__all__ = [
    "MNLI_LABELS",
    "load_mnli",
    "load_squad",
    "load_ud",
    "read_conllu",
    "resolve",
    "split_squad_by_article",
]
