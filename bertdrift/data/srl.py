"""PropBank SRL on UD EWT words, and Semantic Proto-Roles v2 (SPR2), as span annotations.

SRL (``ewt-srl/ewt_propbank_srl.{split}.jsonl``, derived from propbank-release and aligned to UD
EWT v2.16 words): ``sent_id, text, tokens, targets``; each target is ``{span1: predicate
[start, end), span2: argument [start, end), label: ARG0 … ARGM-*}``. Sentences whose document
has no PropBank annotation (``info.propbank_doc_available`` false) are skipped.

SPR2 (White et al. 2016; ``spr2/protoroles_eng_ud1.2_11082016.tsv`` + the sentence tokens in
``spr2_ud1.2_sentences.jsonl``): one target per annotated (predicate, argument) pair, following
jiant: responses whose ``Applicable`` is ``no`` are ignored, a pair needs at least one applicable
response, and a property is a positive label when its mean response is >= 4. ``Arg.Tokens.End``
is inclusive in the TSV; spans here are [start, end). Sentences whose reconstructed text does
not verified *and* does not match the annotated predicate lemmas (``status: unverified`` and
``items_pred_lemma_match < items``: only the misaligned ``en-ud-train.conllu 9481``) are
dropped.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

from datasets import Dataset, Features, List, Value

from bertdrift.data._jsonl import check_limit, empty_error, iter_jsonl, require, utf8_errors
from bertdrift.data.sources import resolve
from bertdrift.errors import DataError

SRL_SPLITS = ("train", "dev", "test")
SPAN = List(Value("int32"))
SRL_FEATURES = Features(
    {
        "sent_id": Value("string"), "text": Value("string"), "tokens": List(Value("string")),
        "targets": List({"span1": SPAN, "span2": SPAN, "label": Value("string")}),
    }
)
SPR2_FEATURES = Features(
    {
        "sentence_id": Value("string"), "tokens": List(Value("string")),
        "targets": List({"span1": SPAN, "span2": SPAN, "label": List(Value("string"))}),
    }
)
SPR2_COLUMNS = ("Split", "Sentence.ID", "Pred.Token", "Arg.Tokens.Begin", "Arg.Tokens.End",
                "Property", "Response", "Applicable")


def _check_span(path: Path, lineno: int, span: object, n: int) -> list[int]:
    if (not isinstance(span, list) or len(span) != 2
            or not all(isinstance(x, int) for x in span) or not 0 <= span[0] < span[1] <= n):
        raise DataError(f"{path}:{lineno}: span {span!r} is not [start, end) within {n} words; "
                        "fix or re-download the file")
    return span


def load_srl(
    split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """PropBank SRL on EWT: ``sent_id, text, tokens, targets{span1, span2, label}``."""
    if split not in SRL_SPLITS:
        raise DataError(f"unknown SRL split {split!r}; choose one of {', '.join(SRL_SPLITS)}")
    if limit is not None:
        check_limit(limit)
    path = resolve(f"ewt-srl/ewt_propbank_srl.{split}.jsonl", data_dir=data_dir)
    rows: dict[str, list] = {k: [] for k in SRL_FEATURES}
    seen = False
    for lineno, obj in iter_jsonl(path):
        if limit is not None and len(rows["text"]) >= limit:
            break
        seen = True
        require(path, lineno, obj, "text", "targets")
        if not isinstance(obj["text"], str) or not isinstance(obj["targets"], list):
            raise DataError(f"{path}:{lineno}: 'text' must be a string and 'targets' a list; "
                            "fix or re-download the file")
        if not obj.get("info", {}).get("propbank_doc_available", True):
            continue
        tokens = obj["text"].split(" ")
        targets = []
        for t in obj["targets"]:
            require(path, lineno, t, "span1", "span2", "label")
            targets.append({"span1": _check_span(path, lineno, t["span1"], len(tokens)),
                            "span2": _check_span(path, lineno, t["span2"], len(tokens)),
                            "label": str(t["label"])})
        rows["sent_id"].append(str(obj.get("sent_id", f"{split}-{lineno}")))
        rows["text"].append(obj["text"])
        rows["tokens"].append(tokens)
        rows["targets"].append(targets)
    if not seen and limit != 0:
        raise empty_error(path, "SRL sentences")
    return Dataset.from_dict(rows, features=SRL_FEATURES)


def _spr2_sentences(path: Path) -> dict[str, list[str]]:
    out = {}
    for lineno, obj in iter_jsonl(path):
        require(path, lineno, obj, "sentence_id", "tokens")
        if (obj.get("status") == "unverified"
                and obj.get("items_pred_lemma_match", 0) < obj.get("items", 0)):
            continue  # reconstructed text does not line up with the annotation
        out[obj["sentence_id"]] = obj["tokens"]
    if not out:
        raise empty_error(path, "SPR2 sentences")
    return out


def load_spr2(
    split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """SPR2 pairs: ``sentence_id, tokens, targets{span1 predicate, span2 argument, label}``.

    ``label`` is the list of proto-role properties with mean response >= 4 (may be empty).
    """
    if split not in SRL_SPLITS:
        raise DataError(f"unknown SPR2 split {split!r}; choose one of {', '.join(SRL_SPLITS)}")
    sents = _spr2_sentences(resolve("spr2/spr2_ud1.2_sentences.jsonl", data_dir=data_dir))
    tsv = resolve("spr2/protoroles_eng_ud1.2_11082016.tsv", data_dir=data_dir)
    responses: dict[str, dict[tuple[int, int, int], dict[str, list[int]]]] = defaultdict(dict)
    with utf8_errors(tsv), open(tsv, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise empty_error(tsv, "SPR2 annotations")
        missing = [c for c in SPR2_COLUMNS if c not in header]
        if missing:
            raise DataError(f"{tsv}:1: missing column(s) {', '.join(missing)}; use the official "
                            "SPR2 file")
        col = {c: header.index(c) for c in SPR2_COLUMNS}
        for lineno, rec in enumerate(reader, start=2):
            if len(rec) != len(header):
                raise DataError(f"{tsv}:{lineno}: {len(rec)} columns, expected {len(header)}; "
                                "fix or re-download the file")
            if rec[col["Split"]] != split or rec[col["Sentence.ID"]] not in sents:
                continue
            try:
                key = (int(rec[col["Pred.Token"]]), int(rec[col["Arg.Tokens.Begin"]]),
                       int(rec[col["Arg.Tokens.End"]]) + 1)
            except ValueError as exc:
                raise DataError(f"{tsv}:{lineno}: token indices must be integers; fix the "
                                "file") from exc
            props = responses[rec[col["Sentence.ID"]]].setdefault(key, {})
            resp = rec[col["Response"]]
            if rec[col["Applicable"]] != "no" and resp.isdigit():
                props.setdefault(rec[col["Property"]], []).append(int(resp))
    rows: dict[str, list] = {k: [] for k in SPR2_FEATURES}
    for sid, pairs in responses.items():
        tokens = sents[sid]
        targets = []
        for (pred, a0, a1), props in sorted(pairs.items()):
            if not props:
                continue
            if not (0 <= pred < len(tokens) and 0 <= a0 < a1 <= len(tokens)):
                raise DataError(f"{tsv}: {sid} has a span outside its {len(tokens)} words")
            label = sorted(p for p, r in props.items() if sum(r) / len(r) >= 4)
            targets.append({"span1": [pred, pred + 1], "span2": [a0, a1], "label": label})
        if targets:
            rows["sentence_id"].append(sid)
            rows["tokens"].append(tokens)
            rows["targets"].append(targets)
    ds = Dataset.from_dict(rows, features=SPR2_FEATURES)
    return ds.select(range(min(limit, len(ds)))) if limit is not None else ds
