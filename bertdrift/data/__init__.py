"""Loaders for every corpus bertdrift uses, each returning a ``datasets.Dataset``.

Files are found by :func:`bertdrift.data.sources.resolve` (data directory → download cache →
official source). See each module for the exact columns; :mod:`bertdrift.data.edges` turns the
annotations into the edge-probing schema.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from datasets import Dataset

from bertdrift.config import cache_dir
from bertdrift.config import data_dir as _data_dir
from bertdrift.data._cache import PARSER_VERSION, file_key
from bertdrift.data.domains import domain_sentences
from bertdrift.data.dpr import load_dpr
from bertdrift.data.edges import EDGE_TASKS, EdgeTask, build_edge_task
from bertdrift.data.gum import gum_split_docs, load_gum, load_gum_constituents
from bertdrift.data.mnli import MNLI_LABELS, load_mnli
from bertdrift.data.sample import subsample
from bertdrift.data.semeval import load_semeval
from bertdrift.data.sources import resolve
from bertdrift.data.squad import load_squad, split_squad_by_article
from bertdrift.data.srl import load_spr2, load_srl
from bertdrift.data.text import load_brown, load_wikitext
from bertdrift.data.ud import load_ud, read_conllu
from bertdrift.io import atomic_path, stable_hash

__all__ = [
    "EDGE_TASKS",
    "MNLI_LABELS",
    "EdgeTask",
    "build_edge_task",
    "corpus_sizes",
    "domain_sentences",
    "gum_split_docs",
    "load_brown",
    "load_dpr",
    "load_gum",
    "load_gum_constituents",
    "load_mnli",
    "load_semeval",
    "load_spr2",
    "load_squad",
    "load_srl",
    "load_ud",
    "load_wikitext",
    "read_conllu",
    "resolve",
    "split_squad_by_article",
    "subsample",
]


def _words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def _token_count(ds: Dataset) -> int:
    if "tokens" in ds.column_names:
        return sum(len(t) for t in ds["tokens"])
    if "premise" in ds.column_names:
        return sum(_words(p, h) for p, h in zip(ds["premise"], ds["hypothesis"], strict=True))
    return sum(_words(q) for q in ds["question"]) + sum(
        _words(c) for c in dict.fromkeys(ds["context"]))


# (corpus, split, unit, loader)
_TABLE: list[tuple[str, str, str, Callable[..., Dataset]]] = (
    [("UD EWT v2.16", s, "sentences", lambda s=s, **k: load_ud(s, **k))
     for s in ("train", "dev", "test")]
    + [("GUM V11.1.0 (no reddit)", s, "sentences", lambda s=s, **k: load_gum(s, **k))
       for s in ("train", "dev", "test", "test2")]
    + [("PropBank SRL on EWT", s, "sentences", lambda s=s, **k: load_srl(s, **k))
       for s in ("train", "dev", "test")]
    + [("SPR2", s, "sentences", lambda s=s, **k: load_spr2(s, **k))
       for s in ("train", "dev", "test")]
    + [("SemEval-2010 T8", s, "sentences", lambda s=s, **k: load_semeval(s, **k))
       for s in ("train", "test")]
    + [("DPR", s, "sentences", lambda s=s, **k: load_dpr(s, **k)) for s in ("train", "test")]
    + [("MNLI", s, "pairs", lambda s=s, **k: load_mnli(s, **k))
       for s in ("train", "dev_matched", "dev_mismatched")]
    + [("SQuAD v1.1", "dev", "questions", lambda **k: load_squad("dev", **k))]
    + [("WikiText-2", "test", "sentences", lambda **k: load_wikitext(**k))]
    + [("Brown", "all", "sentences", lambda **k: load_brown(**k))]
)


def corpus_sizes(data_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per corpus split: ``corpus, split, unit, examples, tokens``.

    ``tokens`` counts words (``tokens`` column; else whitespace words of premise + hypothesis,
    or of questions + distinct contexts for SQuAD). MNLI ``train`` is the offline sample. The
    table is cached under ``<cache>/datasets`` keyed by the data files' sizes and mtimes.
    """
    root = _data_dir(data_dir)
    files = sorted(p for p in Path(root).rglob("*") if p.is_file()) if root.exists() else []
    key = stable_hash(PARSER_VERSION, str(root), file_key(files))
    target = cache_dir() / "datasets" / f"corpus_sizes-{key}.csv"
    if target.exists():
        return pd.read_csv(target)
    rows = []
    for corpus, split, unit, load in _TABLE:
        ds = load(data_dir=data_dir)
        rows.append({"corpus": corpus, "split": split, "unit": unit, "examples": len(ds),
                     "tokens": _token_count(ds)})
    table = pd.DataFrame(rows)
    try:
        with atomic_path(target) as tmp:
            table.to_csv(tmp, index=False)
    except OSError:
        pass  # an unwritable cache only costs recounting next time
    return table
