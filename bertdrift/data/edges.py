"""The nine edge-probing tasks of Tenney et al. (2019) rebuilt on open data, in one schema.

Every task is a ``datasets.Dataset`` with ``tokens`` (list of words) and ``targets`` (list of
``{span1: [start, end), span2: [start, end) or [-1, -1], label: list[str]}``; ``label`` has one
element except for the multi-label SPR2). Sources, replacing OntoNotes where it is not open:

=========  ================================================================================
pos        UD EWT v2.16 UPOS; one-word spans.
deps       UD EWT: span1 the dependent word, span2 its head word (root arcs, having no head
           word, are left out); label the *universal* relation, subtype dropped
           (``nmod:poss`` → ``nmod``), as in Tenney et al.'s UD task.
consts     GUM phrase-structure trees: every non-terminal span except ROOT and POS
           pre-terminals, label the phrase type without function tags (``NP-SBJ`` → ``NP``).
entities   GUM entity mentions, label the GUM entity type (person, place, …).
coref      GUM mentions: one example per sentence, the previous sentence of the same
           document prepended (so pairs within a sentence and across adjacent sentences are
           seen exactly once); span1 a mention of the current sentence, span2 an earlier mention
           (previous sentence, or starting earlier in the current one; nested pairs skipped);
           label "1" when both belong to the same entity, else "0".
srl        PropBank SRL on EWT: span1 predicate, span2 argument, label ARG0 … ARGM-*.
spr2       SPR2: span1 predicate, span2 argument, label the proto-role properties with mean
           response >= 4 (multi-label; possibly empty).
rel        SemEval-2010 Task 8: span1 e1, span2 e2, label the directed relation.
dpr        DPR: span1 the pronoun, span2 a candidate, label "entailed" when the candidate is
           the referent, else "not_entailed".
=========  ================================================================================

Splits: ``"train"``, ``"dev"`` and ``"test"`` where the source has them, and ``"eval"``: the
dev split where one exists, else test (rel, dpr). ``labels`` always come from the train split;
evaluation targets with a label never seen in training are dropped (counted in
``EdgeTask.dropped``). Metrics: ``accuracy`` for single-label multi-class tasks (equal to
micro-F1 over labels there), ``f1`` of the positive label for the binary coref and dpr tasks,
``micro_f1`` for multi-label spr2. ``limit`` takes a seeded random subset of examples
(sentences) and keeps every target of each.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Features, List, Value

from bertdrift.config import EDGE_TASKS as CONFIG_EDGE_TASKS
from bertdrift.data._cache import cached_dataset
from bertdrift.data.dpr import load_dpr
from bertdrift.data.gum import gum_split_docs, load_gum, load_gum_constituents
from bertdrift.data.sample import subsample
from bertdrift.data.semeval import load_semeval
from bertdrift.data.sources import resolve
from bertdrift.data.srl import load_spr2, load_srl
from bertdrift.data.ud import load_ud, ud_path
from bertdrift.errors import DataError

SPAN = List(Value("int32"))
EDGE_FEATURES = Features(
    {
        "tokens": List(Value("string")),
        "targets": List({"span1": SPAN, "span2": SPAN, "label": List(Value("string"))}),
    }
)
NO_SPAN = [-1, -1]
Example = dict[str, Any]


@dataclass
class EdgeTask:
    """One edge-probing task on one split."""

    name: str
    split: str
    labels: list[str]
    single_span: bool
    multilabel: bool
    metric: str
    data: Dataset
    dropped: int = 0

    @property
    def n_targets(self) -> int:
        return sum(len(t) for t in self.data["targets"])


def _target(span1: list[int], span2: list[int] | None, label: str | list[str]) -> dict:
    return {"span1": span1, "span2": span2 or NO_SPAN,
            "label": label if isinstance(label, list) else [label]}


def _pos(rows: list[Example]) -> list[Example]:
    return [{"tokens": r["tokens"],
             "targets": [_target([i, i + 1], None, u) for i, u in enumerate(r["upos"])]}
            for r in rows]


def _deps(rows: list[Example]) -> list[Example]:
    return [{"tokens": r["tokens"],
             "targets": [_target([i, i + 1], [h - 1, h], d.split(":")[0])
                         for i, (h, d) in enumerate(zip(r["head"], r["deprel"], strict=True))
                         if h > 0]}
            for r in rows]


def _consts(rows: list[Example]) -> list[Example]:
    return [{"tokens": r["tokens"],
             "targets": [_target([c["start"], c["end"]], None, c["label"])
                         for c in r["constituents"]]}
            for r in rows]


def _entities(rows: list[Example]) -> list[Example]:
    return [{"tokens": r["tokens"],
             "targets": [_target([e["start"], e["end"]], None, e["label"])
                         for e in r["entities"]]}
            for r in rows]


def _nested(a: list[int], b: list[int]) -> bool:
    return (a[0] <= b[0] and b[1] <= a[1]) or (b[0] <= a[0] and a[1] <= b[1])


def _coref(rows: list[Example]) -> list[Example]:
    out = []
    prev: Example | None = None
    for r in rows:
        if prev is not None and prev["doc_id"] != r["doc_id"]:
            prev = None
        offset = len(prev["tokens"]) if prev else 0
        earlier = [([m["start"], m["end"]], m["entity_id"]) for m in (prev or {}).get(
            "entities", [])]
        current = [([m["start"] + offset, m["end"] + offset], m["entity_id"])
                   for m in r["entities"]]
        targets = []
        for j, (span, eid) in enumerate(current):
            before = earlier + [c for k, c in enumerate(current)
                                if k != j and (c[0][0], -c[0][1]) < (span[0], -span[1])]
            for other, oid in before:
                if not _nested(span, other):
                    targets.append(_target(span, other, "1" if oid == eid else "0"))
        out.append({"tokens": (prev["tokens"] if prev else []) + r["tokens"],
                    "targets": targets})
        prev = r
    return out


def _srl(rows: list[Example]) -> list[Example]:
    return [{"tokens": r["tokens"],
             "targets": [_target(t["span1"], t["span2"], t["label"]) for t in r["targets"]]}
            for r in rows]


def _rel(rows: list[Example]) -> list[Example]:
    return [{"tokens": r["tokens"], "targets": [_target(r["e1"], r["e2"], r["label"])]}
            for r in rows]


def _dpr(rows: list[Example]) -> list[Example]:
    return [{"tokens": r["tokens"],
             "targets": [_target(r["pronoun"], c["span"],
                                 "entailed" if c["correct"] else "not_entailed")
                         for c in r["candidates"]]}
            for r in rows]


@dataclass(frozen=True)
class _Spec:
    load: Callable[..., Dataset]
    build: Callable[[list[Example]], list[Example]]
    splits: dict[str, str]
    single_span: bool
    multilabel: bool
    metric: str


_UD = {"train": "train", "dev": "dev", "test": "test", "eval": "dev"}
_GUM = {"train": "train", "dev": "dev", "test": "test", "test2": "test2", "eval": "dev"}
_TT = {"train": "train", "test": "test", "eval": "test"}
TASKS: dict[str, _Spec] = {
    "pos": _Spec(load_ud, _pos, _UD, True, False, "accuracy"),
    "deps": _Spec(load_ud, _deps, _UD, False, False, "accuracy"),
    "consts": _Spec(load_gum_constituents, _consts, _GUM, True, False, "accuracy"),
    "entities": _Spec(load_gum, _entities, _GUM, True, False, "accuracy"),
    "coref": _Spec(load_gum, _coref, _GUM, False, False, "f1"),
    "srl": _Spec(load_srl, _srl, _UD, False, False, "accuracy"),
    "spr2": _Spec(load_spr2, _srl, _UD, False, True, "micro_f1"),
    "rel": _Spec(load_semeval, _rel, _TT, False, False, "accuracy"),
    "dpr": _Spec(load_dpr, _dpr, _TT, False, False, "f1"),
}
EDGE_TASKS = CONFIG_EDGE_TASKS
assert tuple(TASKS) == EDGE_TASKS, "data.edges.TASKS must follow config.EDGE_TASKS"
POSITIVE_LABEL = {"coref": "1", "dpr": "entailed"}
"""The positive label of the binary tasks, whose metric is its F1."""


def source_files(name: str, split: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The data files task ``name`` reads for source split ``split`` (for cache keys)."""
    if name in ("pos", "deps"):
        return [ud_path(split, data_dir)]
    if name in ("consts", "entities", "coref"):
        docs = gum_split_docs(split, data_dir)
        sub = ("const", "ptb") if name == "consts" else ("dep", "conllu")
        files = [resolve(f"gum/{sub[0]}/{d}.{sub[1]}", data_dir=data_dir) for d in docs]
        if name == "consts":
            files += [resolve(f"gum/dep/{d}.conllu", data_dir=data_dir) for d in docs]
        return files
    relpath = {
        "srl": f"ewt-srl/ewt_propbank_srl.{split}.jsonl",
        "spr2": "spr2/protoroles_eng_ud1.2_11082016.tsv",
        "rel": f"semeval2010-task8/{'TEST_FILE_FULL' if split == 'test' else 'TRAIN_FILE'}.TXT",
        "dpr": f"dpr/{split}.c.txt",
    }[name]
    files = [resolve(relpath, data_dir=data_dir)]
    if name == "spr2":
        files.append(resolve("spr2/spr2_ud1.2_sentences.jsonl", data_dir=data_dir))
    return files


def edge_examples(
    name: str, split: str, *, data_dir: str | os.PathLike[str] | None = None,
    limit_rows: int | None = None,
) -> Dataset:
    """All examples (with at least one target) of task ``name`` on source split ``split``.

    ``limit_rows`` builds from the first rows of the source only (quick checks, not cached).
    """
    spec = TASKS[name]

    def build() -> Dataset:
        rows = spec.load(split, data_dir=data_dir, limit=limit_rows).to_list()
        examples = [ex for ex in spec.build(rows) if ex["targets"]]
        table = pa.Table.from_pydict(
            {"tokens": [ex["tokens"] for ex in examples],
             "targets": [ex["targets"] for ex in examples]},
            schema=EDGE_FEATURES.arrow_schema,
        )
        return Dataset(table)

    if limit_rows is not None:
        return build()
    return cached_dataset(f"edge-{name}-{split}", source_files(name, split, data_dir), None,
                          build)


def label_set(ds: Dataset) -> list[str]:
    """Sorted distinct labels over all targets of an edge dataset."""
    col = ds.data.column("targets").combine_chunks()
    labels = pc.list_flatten(pc.struct_field(pc.list_flatten(col), "label"))
    return sorted(str(x) for x in pc.unique(labels).to_pylist())


def build_edge_task(
    name: str, split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None, seed: int = 0,
) -> EdgeTask:
    """Build edge-probing task ``name`` on ``split`` (see the module docstring)."""
    if name not in TASKS:
        raise DataError(f"unknown edge-probing task {name!r}; choose one of "
                        f"{', '.join(EDGE_TASKS)}")
    spec = TASKS[name]
    if split not in spec.splits:
        raise DataError(f"task {name!r} has no split {split!r}; choose one of "
                        f"{', '.join(spec.splits)}")
    train = edge_examples(name, "train", data_dir=data_dir)
    labels = label_set(train)
    dropped = 0
    if spec.splits[split] == "train":
        data = train
    else:
        data = edge_examples(name, spec.splits[split], data_dir=data_dir)
        if not set(label_set(data)) <= set(labels):
            data, dropped = _drop_unseen(data, set(labels))
    return EdgeTask(name=name, split=split, labels=labels, single_span=spec.single_span,
                    multilabel=spec.multilabel, metric=spec.metric,
                    data=subsample(data, limit, seed), dropped=dropped)


def _drop_unseen(data: Dataset, known: set[str]) -> tuple[Dataset, int]:
    dropped = 0
    examples = []
    for ex in data.to_list():
        keep = [t for t in ex["targets"] if set(t["label"]) <= known]
        dropped += len(ex["targets"]) - len(keep)
        if keep:
            examples.append({"tokens": ex["tokens"], "targets": keep})
    return Dataset.from_list(examples, features=EDGE_FEATURES), dropped
