"""GUM V11.1.0 (+ GENTLE as ``test2``): dependencies, entities, coreference and constituents.

Documents are assigned to ``train``/``dev``/``test``/``test2`` by the official ``gum/splits.md``.
The 18 ``GUM_reddit_*`` documents are **skipped**: in the distributed files every word is
replaced by ``_`` (their text must be restored from Reddit with GUM's own script), so their
words carry no information for a language model.

``genre`` is the second part of the document name (``GUM_academic_art`` → ``academic``,
``GENTLE_poetry_raven`` → ``poetry``). Entities come from the CorefUD-style ``Entity=`` MISC
annotation: each mention is ``{start, end (exclusive word index), label (entity type),
entity_id}``; ``entity_id`` is the document's entity number as a string, so two mentions in one
document corefer exactly when their ``entity_id`` is equal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from bertdrift.data._cache import cached_dataset
from bertdrift.data._jsonl import check_limit, read_text
from bertdrift.data.sources import resolve
from bertdrift.data.ud import UD_FEATURES, read_conllu
from bertdrift.errors import DataError

GUM_SPLITS = ("train", "dev", "test", "test2")
_MENTION = re.compile(r"\((\d+)-([^()]*)(\)?)|(\d+)\)")
_PTB_ESCAPES = {
    "-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
}
ENTITY_FEATURE = {
    "start": Value("int32"), "end": Value("int32"), "label": Value("string"),
    "entity_id": Value("string"),
}
GUM_FEATURES = Features(
    {
        "doc_id": Value("string"), "genre": Value("string"), **UD_FEATURES,
        "entities": List(ENTITY_FEATURE),
    }
)
SPAN_FEATURE = {"start": Value("int32"), "end": Value("int32"), "label": Value("string")}
CONST_FEATURES = Features(
    {
        "doc_id": Value("string"), "sent_id": Value("string"),
        "tokens": List(Value("string")), "constituents": List(SPAN_FEATURE),
    }
)


def gum_split_docs(split: str, data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Document names of a split from ``gum/splits.md`` (reddit documents excluded)."""
    if split not in GUM_SPLITS:
        raise DataError(f"unknown GUM split {split!r}; choose one of {', '.join(GUM_SPLITS)}")
    path = resolve("gum/splits.md", data_dir=data_dir)
    docs: dict[str, list[str]] = {}
    current: str | None = None
    for line in read_text(path).splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            docs[current] = []
        elif line.strip().startswith("* ") and current is not None:
            docs[current].append(line.strip()[2:].strip())
    if split not in docs:
        raise DataError(f"{path}: no '## {split}' section; use the official GUM splits.md")
    return [d for d in docs[split] if not d.startswith("GUM_reddit_")]


def genre_of(doc_id: str) -> str:
    parts = doc_id.split("_")
    return parts[1] if len(parts) > 2 else ""


def parse_entities(path: Path, sent: dict[str, Any]) -> list[dict[str, Any]]:
    """Mentions of one sentence from the words' ``Entity=`` MISC values."""
    open_: dict[str, list[tuple[int, str]]] = {}
    mentions: list[dict[str, Any]] = []
    for i, misc in enumerate(sent["misc"]):
        value = (misc or {}).get("Entity")
        if not value:
            continue
        pos = 0
        for m in _MENTION.finditer(value):
            if m.start() != pos:
                break
            pos = m.end()
            if m.group(4) is not None:  # closer "12)"
                eid = m.group(4)
                if not open_.get(eid):
                    raise DataError(
                        f"{path}:{sent['line']}: Entity closes {eid} at word {i + 1} without an "
                        "opening bracket in this sentence; fix the file"
                    )
                start, label = open_[eid].pop()
                mentions.append({"start": start, "end": i + 1, "label": label, "entity_id": eid})
            else:
                eid, label = m.group(1), m.group(2).split("-", 1)[0]
                if m.group(3):  # single-word mention "(12-type-...)"
                    mentions.append({"start": i, "end": i + 1, "label": label, "entity_id": eid})
                else:
                    open_.setdefault(eid, []).append((i, label))
        if pos != len(value):
            raise DataError(
                f"{path}:{sent['line']}: cannot read Entity={value!r} at word {i + 1}; fix the "
                "file"
            )
    if any(open_.values()):
        raise DataError(
            f"{path}:{sent['line']}: entity mention(s) {sorted(k for k, v in open_.items() if v)} "
            "are not closed within the sentence; fix the file"
        )
    mentions.sort(key=lambda x: (x["start"], -x["end"]))
    return mentions


def _read_doc(path: Path) -> list[dict[str, Any]]:
    doc_id = path.stem
    rows = []
    for sent in read_conllu(path):
        row = {k: sent[k] for k in UD_FEATURES}
        row.update(doc_id=doc_id, genre=genre_of(doc_id), entities=parse_entities(path, sent))
        rows.append(row)
    return rows


def load_gum(
    split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """GUM sentences: the UD columns plus ``doc_id``, ``genre`` and ``entities``.

    ``limit`` keeps the first ``limit`` sentences (document order).
    """
    if limit is not None:
        check_limit(limit)
    docs = gum_split_docs(split, data_dir)
    paths = [resolve(f"gum/dep/{d}.conllu", data_dir=data_dir) for d in docs]

    def build() -> Dataset:
        rows = [r for p in paths for r in _read_doc(p)]
        return Dataset.from_dict({k: [r[k] for r in rows] for k in GUM_FEATURES},
                                 features=GUM_FEATURES)

    ds = cached_dataset(f"gum-{split}", paths, None, build)
    return ds.select(range(min(limit, len(ds)))) if limit is not None else ds


def _unescape(word: str) -> str:
    for code, char in _PTB_ESCAPES.items():
        word = word.replace(code, char)
    return word


def tree_spans(tree: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Leaves of an ``nltk.Tree`` and its phrase spans (no ROOT, no pre-terminals).

    Labels drop PTB function tags and indices (``NP-SBJ-1`` → ``NP``); ``-LRB-`` style labels
    are kept whole.
    """
    import nltk

    leaves: list[str] = []
    spans: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if not isinstance(node, nltk.Tree):
            leaves.append(_unescape(node))
            return
        start = len(leaves)
        for child in node:
            walk(child)
        preterminal = len(node) == 1 and not isinstance(node[0], nltk.Tree)
        if not preterminal and node.label() not in ("ROOT", "", "TOP"):
            label = node.label()
            if not label.startswith("-"):
                label = re.split(r"[-=]", label)[0]
            spans.append({"start": start, "end": len(leaves), "label": label})

    walk(tree)
    spans.sort(key=lambda s: (s["start"], -s["end"]))
    return leaves, spans


def _read_ptb(path: Path) -> list[tuple[int, Any]]:
    """(line number, tree) for each blank-line-separated tree of a ``.ptb`` file."""
    import nltk

    trees, block, start = [], [], 0
    lines = read_text(path).splitlines() + [""]
    for lineno, line in enumerate(lines, start=1):
        if line.strip():
            if not block:
                start = lineno
            block.append(line)
            continue
        if block:
            try:
                trees.append((start, nltk.Tree.fromstring("\n".join(block))))
            except ValueError as exc:
                raise DataError(
                    f"{path}:{start}: cannot parse the bracketed tree starting here ({exc}); "
                    "fix or re-download the file"
                ) from exc
            block = []
    return trees


def load_gum_constituents(
    split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """GUM phrase-structure spans: ``doc_id, sent_id, tokens, constituents``.

    Each tree is checked against its dependency sentence: same number of words and the same
    words (after undoing PTB bracket escapes); ``tokens`` are the dependency words.
    """
    if limit is not None:
        check_limit(limit)
    docs = gum_split_docs(split, data_dir)
    pairs = [
        (resolve(f"gum/const/{d}.ptb", data_dir=data_dir),
         resolve(f"gum/dep/{d}.conllu", data_dir=data_dir))
        for d in docs
    ]

    def build() -> Dataset:
        rows: dict[str, list] = {k: [] for k in CONST_FEATURES}
        for ptb, dep in pairs:
            sents = read_conllu(dep)
            trees = _read_ptb(ptb)
            if len(trees) != len(sents):
                raise DataError(
                    f"{ptb}: {len(trees)} trees but {dep} has {len(sents)} sentences; the files "
                    "must come from the same GUM release"
                )
            for (lineno, tree), sent in zip(trees, sents, strict=True):
                leaves, spans = tree_spans(tree)
                if leaves != sent["tokens"]:
                    raise DataError(
                        f"{ptb}:{lineno}: the tree's words differ from those of "
                        f"{sent['sent_id']} in {dep.name} ({len(leaves)} vs "
                        f"{len(sent['tokens'])} words); the files must come from the same GUM "
                        "release"
                    )
                rows["doc_id"].append(dep.stem)
                rows["sent_id"].append(sent["sent_id"])
                rows["tokens"].append(sent["tokens"])
                rows["constituents"].append(spans)
        return Dataset.from_dict(rows, features=CONST_FEATURES)

    ds = cached_dataset(f"gumconst-{split}", [p for pair in pairs for p in pair], None, build)
    return ds.select(range(min(limit, len(ds)))) if limit is not None else ds
